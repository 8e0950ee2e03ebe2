"""Periodic, level-based resync of Cairn's objects, without kopf timers.

kopf puts its finalizer on every object that has a timer or a daemon. With timers, no TrainingRun,
Model or ModelVersion could be deleted while the operator is not running (uninstalled, crashed,
scaled to zero), and their namespaces would hang in Terminating. Instead, each controller declares
a kopf index (indexes add no finalizer) of the objects it wants revisited and how often, keyed
`(namespace, name)`, and registers how to reconcile one; a single task started with the operator
walks the indexes and reconciles each object when it is due.
"""

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import kopf

TICK_SECONDS = 1.0
CONCURRENCY = 8

Key = tuple[str, str]
Reconcile = Callable[[str, str], None]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Resync:
    index: str  # the name of the kopf index handler, as kopf passes it to handlers
    reconcile: Reconcile  # (namespace, name) → None


RESYNCS: list[Resync] = []


def register(index: Callable[..., Any], reconcile: Reconcile) -> None:
    """Revisit the objects of the kopf index handler `index` with `reconcile`. The index maps
    (namespace, name) to the interval in seconds; an object absent from it is not revisited."""
    RESYNCS.append(Resync(index.__name__, reconcile))


def due(intervals: Mapping[Key, float], last: dict[Key, float], now: float) -> list[Key]:
    """Keys whose interval has passed since their last visit; a key seen for the first time is
    visited one interval later (the handler that put it in the index has just reconciled it)."""
    ready = []
    for key, interval in intervals.items():
        seen = last.setdefault(key, now)
        if now - seen >= interval:
            last[key] = now
            ready.append(key)
    for key in set(last) - set(intervals):
        del last[key]
    return ready


def _intervals(index: Any) -> dict[Key, float]:
    return {key: min(store) for key, store in list(index.items()) if store}


async def _run(resyncs: list[tuple[Resync, Any]]) -> None:
    last: dict[str, dict[Key, float]] = {r.index: {} for r, _ in resyncs}
    limit = asyncio.Semaphore(CONCURRENCY)

    async def visit(resync: Resync, key: Key) -> None:
        async with limit:
            try:
                await asyncio.to_thread(resync.reconcile, *key)
            except Exception:  # one object's failure must not stop the others' resync
                logger.exception("resync of %s %s/%s failed", resync.index, *key)

    while True:
        await asyncio.sleep(TICK_SECONDS)
        now = time.monotonic()
        visits = [
            visit(resync, key)
            for resync, index in resyncs
            for key in due(_intervals(index), last[resync.index], now)
        ]
        await asyncio.gather(*visits)


@kopf.on.startup()
async def start_resync(memo: kopf.Memo, **kwargs: Any) -> None:
    resyncs = [(r, kwargs[r.index]) for r in RESYNCS]
    memo["resync_task"] = asyncio.create_task(_run(resyncs))


@kopf.on.cleanup()
async def stop_resync(memo: kopf.Memo, **_: Any) -> None:
    task = memo.get("resync_task")
    if task is not None:
        task.cancel()
