"""Which triggers of a ContinuousTraining fire now, and whether a run starts for them (pure).

Two kinds of trigger. Edges fire once, for an event: a schedule time, a new cairn.dev/retrain
value; when a run cannot start for one (suspend, Forbid, minInterval) it is skipped, said in an
Event, and gone. Levels fire while something differs from what the last run trained on: the
dataset's digest, the code's hash or revision, a watched condition True since a transition no run
has acted on (a model that drifted stays drifted: the alarm must not be lost because the last run
was recent); when a run cannot start they wait, and fire once it can. However many fire at once,
one run starts for all of them.
"""

import dataclasses
import datetime
from collections.abc import Sequence

from cairn.api import ConcurrencyPolicy, ContinuousTrainingSpec, TriggerType

LEVELS = frozenset({TriggerType.DATASET, TriggerType.CODE, TriggerType.CONDITION})
# Of several firing at once, the run is named after the first in this order.
PRECEDENCE = (
    TriggerType.REQUEST,
    TriggerType.CONDITION,
    TriggerType.CODE,
    TriggerType.DATASET,
    TriggerType.SCHEDULE,
)


@dataclasses.dataclass(frozen=True)
class Firing:
    """A trigger that fired: its type, what fired in words, and when (a schedule time, or now)."""

    type: TriggerType
    reason: str
    time: datetime.datetime

    @property
    def level(self) -> bool:
        return self.type in LEVELS


@dataclasses.dataclass(frozen=True)
class Decision:
    """What to do about the firings: start one run (for `started`), replace the active runs
    first, skip some (with why), or let level triggers wait (with why)."""

    started: tuple[Firing, ...] = ()
    replace: tuple[str, ...] = ()
    skipped: tuple[tuple[Firing, str], ...] = ()
    waiting: str | None = None

    @property
    def run_type(self) -> TriggerType | None:
        """The trigger the run is named after."""
        types = {firing.type for firing in self.started}
        return next((t for t in PRECEDENCE if t in types), None)

    @property
    def reason(self) -> str:
        return "; ".join(firing.reason for firing in self.started)


def decide(
    spec: ContinuousTrainingSpec,
    firings: Sequence[Firing],
    active: Sequence[str],
    last_started: datetime.datetime | None,
    min_interval_seconds: float | None,
    now: datetime.datetime,
) -> Decision:
    """Start a run for `firings`, or say why not. `active`: the runs started and not finished;
    `last_started`: when the last run started."""
    if not firings:
        return Decision()
    why: str | None = None
    if spec.suspend:
        why = "spec.suspend is true"
    elif min_interval_seconds and last_started is not None:
        elapsed = (now - last_started).total_seconds()
        if elapsed < min_interval_seconds:
            why = f"spec.minInterval {spec.min_interval}: the last run started {elapsed:.0f}s ago"
    if why is None and active and spec.concurrency_policy == ConcurrencyPolicy.FORBID:
        why = f"concurrencyPolicy Forbid: {', '.join(sorted(active))} still running"
    if why is not None:
        edges = tuple((firing, why) for firing in firings if not firing.level)
        levels = [firing for firing in firings if firing.level]
        waiting = "; ".join(f.reason for f in levels) + f" waits: {why}" if levels else None
        return Decision(skipped=edges, waiting=waiting)
    replace = tuple(active) if spec.concurrency_policy == ConcurrencyPolicy.REPLACE else ()
    return Decision(started=tuple(firings), replace=replace)


def run_name(
    ct: str, trigger: TriggerType, number: int, schedule_time: datetime.datetime | None
) -> str:
    """A scheduled run is named after its schedule time (so no restart can start it twice); the
    others after the count of runs started, which only grows."""
    if trigger == TriggerType.SCHEDULE and schedule_time is not None:
        return f"{ct}-schedule-{int(schedule_time.timestamp())}"
    return f"{ct}-{trigger.value}-{number}"
