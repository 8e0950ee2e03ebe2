"""kopf handlers for ContinuousTrainings: thin, each calls the same reconcile. A resync looks at
every ContinuousTraining each second from the watch caches (controllers.continuoustraining.due),
and reconciles those with something due: a schedule time, a check of data or code, a finished
run, a watched condition that became True."""

import datetime
from typing import Any

import kopf

from cairn.api import GROUP, VERSION, ContinuousTraining
from cairn.controllers import resync
from cairn.controllers.continuoustraining.due import due
from cairn.controllers.continuoustraining.reconcile import reconcile
from cairn.kube import cache

PLURAL = ContinuousTraining.plural()
TICK_SECONDS = 1


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
@kopf.on.update(GROUP, VERSION, PLURAL, field="metadata.annotations")
def on_continuous_training(namespace: str | None, name: str, **_: Any) -> None:
    if namespace:
        reconcile(namespace, name)


@kopf.index(GROUP, VERSION, PLURAL)
def resync_continuoustrainings(
    namespace: str | None, name: str, **_: Any
) -> dict[tuple[str | None, str], float]:
    return {(namespace, name): TICK_SECONDS}


def resync_continuous_training(namespace: str, name: str) -> None:
    body = cache.get(ContinuousTraining, namespace, name)
    if body is not None and due(body, datetime.datetime.now(datetime.UTC)):
        reconcile(namespace, name)


resync.register(resync_continuoustrainings, resync_continuous_training)
