"""The objects whose conditions a ContinuousTraining watches (spec.triggers.conditions): read from
the watch caches, and which of their conditions became True since the last look."""

import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from cairn.api import (
    Condition,
    ConditionTrigger,
    ContinuousTraining,
    Model,
    ModelDeployment,
    ModelVersion,
    Resource,
    TrainingRun,
)
from cairn.api.continuoustraining import ConditionObservation, ConditionSourceKind
from cairn.kube import cache

Body = dict[str, Any]
KINDS: dict[ConditionSourceKind, type[Resource]] = {
    ConditionSourceKind.MODEL_DEPLOYMENT: ModelDeployment,
    ConditionSourceKind.MODEL: Model,
    ConditionSourceKind.MODEL_VERSION: ModelVersion,
    ConditionSourceKind.TRAINING_RUN: TrainingRun,
}
CONDITIONS = TypeAdapter(list[Condition])


def key(trigger: ConditionTrigger) -> str:
    return f"{trigger.kind}/{trigger.name}/{trigger.type}"


def read(namespace: str, trigger: ConditionTrigger) -> Body | None:
    return cache.get(KINDS[trigger.kind], namespace, trigger.name)


def true_since(body: Body, type_: str) -> tuple[datetime.datetime, str] | None:
    """When the condition last became True, and its message; None while it is not True."""
    try:
        conditions = CONDITIONS.validate_python((body.get("status") or {}).get("conditions") or [])
    except ValidationError:
        return None
    found = next((c for c in conditions if c.type == type_), None)
    if found is None or found.status != "True":
        return None
    return found.last_transition_time, found.message


def fired(
    ct: ContinuousTraining, observed: list[ConditionObservation]
) -> tuple[list[str], list[ConditionObservation]]:
    """The watched conditions that became True since they were last acted on (in words), and
    the transitions now acted on. A condition True when first watched fires once."""
    seen = {o.source: o for o in observed}
    reasons: list[str] = []
    kept: list[ConditionObservation] = []
    for trigger in ct.spec.triggers.conditions or []:
        source = key(trigger)
        body = read(ct.namespace, trigger)
        state = true_since(body, trigger.type) if body is not None else None
        before = seen.get(source)
        if state is None:
            if before is not None:
                kept.append(before)
            continue
        since, message = state
        if before is None or since > before.last_transition_time:
            reasons.append(f"{trigger.kind} {trigger.name} is {trigger.type}: {message}")
        kept.append(ConditionObservation(source=source, last_transition_time=since))
    return reasons, kept


def watching(ct: Body, kind: str, name: str) -> bool:
    """Whether a ContinuousTraining (its body) watches a condition of that object."""
    triggers = ((ct.get("spec") or {}).get("triggers") or {}).get("conditions") or []
    return any(t.get("kind") == kind and t.get("name") == name for t in triggers)
