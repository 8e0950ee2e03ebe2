"""metav1.Condition lists, as Kubernetes' meta.SetStatusCondition handles them: one entry per type,
lastTransitionTime kept while the status does not change."""

import datetime
from collections.abc import Sequence

from cairn.api.common import MESSAGE_MAX, Condition, ConditionStatus


def now() -> datetime.datetime:
    """The present, to the second: metav1.Time has no finer precision."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def find(conditions: Sequence[Condition] | None, type_: str) -> Condition | None:
    return next((c for c in conditions or () if c.type == type_), None)


def is_true(conditions: Sequence[Condition] | None, type_: str) -> bool:
    found = find(conditions, type_)
    return found is not None and found.status == ConditionStatus.TRUE


def set_condition(
    conditions: Sequence[Condition] | None,
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int | None,
) -> list[Condition]:
    """A new list with condition `type_` set (`status` None: Unknown); the whole list is what a
    status write carries."""
    value = (
        ConditionStatus.UNKNOWN
        if status is None
        else ConditionStatus.TRUE
        if status
        else ConditionStatus.FALSE
    )
    previous = find(conditions, type_)
    unchanged = previous if previous is not None and previous.status == value else None
    updated = Condition(
        type=type_,
        status=value,
        observed_generation=generation or 0,
        last_transition_time=unchanged.last_transition_time if unchanged else now(),
        reason=reason,
        message=message[:MESSAGE_MAX],
    )
    kept = [c for c in conditions or () if c.type != type_]
    # The list keeps its order, so a write that changes nothing else compares equal.
    position = next((i for i, c in enumerate(conditions or ()) if c.type == type_), len(kept))
    return [*kept[:position], updated, *kept[position:]]
