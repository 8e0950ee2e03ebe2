"""metav1.Condition lists: set one condition, keeping lastTransitionTime when nothing changed."""

import datetime
from typing import Any

Condition = dict[str, Any]


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[Condition] | None,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int | None,
) -> list[Condition]:
    """A new list with condition `type_` set; the whole list is what a status write carries."""
    value = "True" if status else "False"
    current = {c["type"]: c for c in conditions or []}
    previous = current.get(type_)
    current[type_] = {
        "type": type_,
        "status": value,
        "observedGeneration": generation or 0,
        "lastTransitionTime": previous["lastTransitionTime"]
        if previous and previous.get("status") == value
        else now(),
        "reason": reason,
        "message": message,
    }
    return list(current.values())


def is_true(conditions: list[Condition] | None, type_: str) -> bool:
    return any(c["type"] == type_ and c["status"] == "True" for c in conditions or [])
