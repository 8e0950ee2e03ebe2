"""Whether a ContinuousTraining has anything to do now, judged from the watch caches alone: the
resync asks every second, so a schedule time is acted on within about a second of coming due,
and a ContinuousTraining with nothing due costs no API call."""

import datetime
from typing import Any

from cairn.analysis.judge import duration_seconds
from cairn.api import ContinuousTraining, ContinuousTrainingStatus
from cairn.api.labels import RETRAIN_ANNOTATION
from cairn.controllers.continuoustraining import runs, sources
from cairn.controllers.parsing import cached

Body = dict[str, Any]


def _elapsed(since: datetime.datetime | None, moment: datetime.datetime, every: str) -> bool:
    return since is None or (moment - since).total_seconds() >= duration_seconds(every)


def unobserved(body: Body) -> bool:
    """Its spec or its cairn.dev/retrain request changed since its status was written (or it
    has no status, or a spec the reconcile has to report)."""
    ct = cached(ContinuousTraining, body)
    if ct is None or ct.status is None or ct.status.observed_generation != ct.generation:
        return True
    request = ct.annotations.get(RETRAIN_ANNOTATION)
    return bool(request) and request != ct.status.observed_request


def due(body: Body, moment: datetime.datetime) -> bool:
    ct = cached(ContinuousTraining, body)
    if ct is None or ct.status is None or unobserved(body):
        return True
    current = ct.status
    triggers = ct.spec.triggers
    checks = (
        current.next_schedule_time is not None and moment >= current.next_schedule_time,
        triggers.dataset is not None
        and _elapsed(
            current.dataset.checked_at if current.dataset else None,
            moment,
            triggers.dataset.check_every,
        ),
        triggers.code is not None
        and _elapsed(
            current.code.checked_at if current.code else None, moment, triggers.code.check_every
        ),
        # While triggers wait, waiting_over says when to look again: a condition that fired
        # and waits must not make every second's resync a reconcile.
        not current.waiting and bool(sources.fired(ct, current.observed_conditions or [])[0]),
        runs_changed(ct, current),
        waiting_over(ct, current, moment),
    )
    return any(checks)


def runs_changed(ct: ContinuousTraining, current: ContinuousTrainingStatus) -> bool:
    """A run finished (or was deleted), or history limits have runs to delete."""
    history = runs.Runs.of(ct)
    if history.active_names != sorted(current.active or []):
        return True
    if runs.beyond_history(ct, history):
        return True
    successful, _ = runs.last_success(history)
    return successful is not None and successful != current.last_successful_run


def waiting_over(
    ct: ContinuousTraining, current: ContinuousTrainingStatus, moment: datetime.datetime
) -> bool:
    """Changes wait for minInterval to pass: it has."""
    if not current.waiting or not ct.spec.min_interval or current.last_trigger is None:
        return bool(current.waiting) and not current.active and not ct.spec.suspend
    return _elapsed(current.last_trigger.time, moment, ct.spec.min_interval)
