"""The watch caches stay current while every handler thread is busy: kopf runs Cairn's index
functions in its event loop, not behind the reconciles in its handler thread pool."""

import asyncio
import concurrent.futures
import logging
import threading
import time
from typing import Any

from kopf._cogs.configs import configuration
from kopf._cogs.structs import bodies, references
from kopf._core.engines import indexing
from kopf._core.intents import registries
from kopf._core.reactor import inventory

import cairn.controllers  # noqa: F401  (registers the handlers with kopf)
from cairn.api import GROUP, VERSION, ModelVersion
from cairn.controllers import resync

RECONCILE_SECONDS = 3.0
RAW: Any = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "ModelVersion",
    "metadata": {
        "name": "iris-v1",
        "namespace": "ml",
        "uid": "0f8b6c1e-0000-4000-8000-000000000001",
        "resourceVersion": "7",
        "labels": {"cairn.dev/model": "iris"},
        "managedFields": [{"manager": "cairn-operator", "operation": "Update"}],
    },
    "spec": {"model": "iris", "version": 1, "artifact": {"uri": "pvc://a/iris/v1"}},
}


async def _index_one_event(executor: concurrent.futures.Executor) -> indexing.OperatorIndexers:
    registry = registries.get_default_registry()
    settings = configuration.OperatorSettings()
    settings.execution.executor = executor
    indexers = indexing.OperatorIndexers()
    indexers.ensure(registry._indexing.get_all_handlers())
    memory = await inventory.ResourceMemories().recall(RAW)
    resource = references.Resource(
        GROUP, VERSION, ModelVersion.plural(), namespaced=True, verbs=frozenset({"list", "watch"})
    )
    await indexing.index_resource(
        indexers=indexers,
        registry=registry,
        settings=settings,
        resource=resource,
        raw_event={"type": "ADDED", "object": RAW},
        memory=memory.indexing_memory,
        logger=logging.getLogger(__name__),
        memo=memory.memo,
        body=bodies.Body(RAW),
    )
    return indexers


def test_a_new_version_reaches_the_caches_while_every_handler_thread_is_busy() -> None:
    busy = threading.Event()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    pool.submit(busy.wait)  # a reconcile that holds kopf's only handler thread for a while
    ends = threading.Timer(RECONCILE_SECONDS, busy.set)
    ends.start()
    try:
        started = time.monotonic()
        indexers = asyncio.run(_index_one_event(pool))
        took = time.monotonic() - started
    finally:
        busy.set()
        ends.cancel()
        pool.shutdown()
    assert took < RECONCILE_SECONDS / 2  # it did not wait for the reconcile's thread
    by_name = list(indexers.indices["cached_versions"][("ml", "iris-v1")])
    assert [body["spec"] for body in by_name] == [RAW["spec"]]
    assert "managedFields" not in by_name[0]["metadata"]
    assert list(indexers.indices["cached_versions_by_model"][("ml", "iris")]) == by_name
    # The resync walks the cache's index by name (controllers.resync, `every`).
    assert resync.intervals(indexers.indices["cached_versions"], every=30) == {
        ("ml", "iris-v1"): 30
    }
