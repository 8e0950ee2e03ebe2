"""kopf handlers for ContinuousTrainings: thin, each calls the same reconcile. A resync looks at
every ContinuousTraining each second from the watch caches (controllers.continuoustraining.due),
and reconciles those with something due: a schedule time, a check of data or code, a finished
run, a watched condition that became True."""

import datetime
from typing import Any

import kopf

from cairn.api import GROUP, VERSION, ContinuousTraining
from cairn.controllers import resync
from cairn.controllers.continuoustraining.due import due, unobserved
from cairn.controllers.continuoustraining.reconcile import reconcile
from cairn.controllers.workqueue import enqueue
from cairn.kube import cache

PLURAL = ContinuousTraining.plural()
TICK_SECONDS = 1


@kopf.on.event(GROUP, VERSION, PLURAL)
async def on_continuous_training(
    type: str | None, namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> None:
    """Reconcile a ContinuousTraining that is new, first seen by this process (type None: the
    initial listing), or whose spec or cairn.dev/retrain request its status has not observed;
    its own status writes need nothing. An event handler rather than kopf's create and update
    handlers, which keep the last handled spec in an annotation (one more write per object) and
    read it back on every event, a status write each run it starts. It only queues the
    reconcile (controllers.workqueue)."""
    if namespace and type != "DELETED" and (type in (None, "ADDED") or unobserved(dict(body))):
        enqueue(reconcile, namespace, name)


@kopf.index(GROUP, VERSION, PLURAL)
async def resync_continuoustrainings(
    namespace: str | None, name: str, **_: Any
) -> dict[tuple[str | None, str], float]:
    return {(namespace, name): TICK_SECONDS}


def resync_continuous_training(namespace: str, name: str) -> None:
    # Until the cache shows this process's last status write, it shows the schedule time that
    # write handled as still due; the next tick looks again.
    if cache.behind(ContinuousTraining, namespace, name):
        return
    body = cache.get(ContinuousTraining, namespace, name)
    if body is not None and due(body, datetime.datetime.now(datetime.UTC)):
        reconcile(namespace, name)


resync.register(resync_continuoustrainings, resync_continuous_training)
