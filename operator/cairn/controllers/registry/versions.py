"""Reconciling a ModelVersion: judge its gates against its Model's policy, decide its approval, and
list the ModelDeployments serving it; the version's status is written here and nowhere else."""

import logging
from typing import Any

from cairn.api import (
    Condition,
    Model,
    ModelDeployment,
    ModelStatus,
    ModelVersion,
    ModelVersionConditionType,
    ModelVersionPhase,
    ModelVersionStatus,
)
from cairn.api.conditions import find, set_condition
from cairn.api.model import ModelReason
from cairn.api.modelversion import ModelVersionReason
from cairn.controllers.exclusive import exclusive
from cairn.controllers.parsing import cached, parse
from cairn.kube import cache, events, objects, status
from cairn.observability.reconciles import reconciling
from cairn.registry.approval import decide
from cairn.registry.gates import judge_all, key_metric
from cairn.registry.promotion import Candidate, verdict

Body = dict[str, Any]
ConditionType, Reason = ModelVersionConditionType, ModelVersionReason

logger = logging.getLogger(__name__)


def served_by(version: ModelVersion, deployments: list[Body]) -> list[str]:
    """The ModelDeployments whose stable or canary track runs this version, by their status."""
    names = []
    for mdep in deployments:
        if mdep["metadata"].get("deletionTimestamp"):
            continue
        mdep_status = mdep.get("status") or {}
        tracks = (mdep_status.get("stable") or {}, mdep_status.get("canary") or {})
        if any(track.get("version") == version.spec.version for track in tracks):
            names.append(str(mdep["metadata"]["name"]))
    return sorted(names)


def model_of(version: ModelVersion) -> Model | None:
    """The version's Model from the watch cache; None when it does not exist or cannot be read
    (its own controller reports why)."""
    return cached(Model, cache.get(Model, version.namespace, version.spec.model))


def status_for(
    version: ModelVersion, model: Model | None, deployments: list[str]
) -> ModelVersionStatus:
    """The version's status: pure, from its spec, its Model and who serves it."""
    spec, old = version.spec, version.status or ModelVersionStatus()
    generation = version.generation
    conditions = old.conditions
    if model is None:
        message = f"Model {spec.model} does not exist or cannot be read; create it (kubectl "
        message += "apply a Model) or see its Ready condition"
        for type_ in (ConditionType.VALIDATED, ConditionType.READY):
            conditions = set_condition(
                conditions, type_, False, Reason.MODEL_NOT_FOUND, message, generation
            )
        return ModelVersionStatus(
            observed_generation=generation,
            phase=ModelVersionPhase.INVALID,
            conditions=conditions,
            deployments=deployments or None,
        )
    policy = model.spec.policy
    validated, results = judge_all(policy.gates or [], spec.metrics or {})
    failed = [r.message or "" for r in results if not r.passed]
    gate_message = "; ".join(failed) if failed else f"{len(results)} gate(s) passed"
    decision = decide(
        validated=validated,
        require_approval=policy.require_approval,
        approval=spec.approval,
        model=spec.model,
        version=spec.version,
    )
    ready = validated and decision.approved
    conditions = set_condition(
        conditions,
        ConditionType.VALIDATED,
        validated,
        Reason.GATES_PASSED if validated else Reason.GATES_FAILED,
        gate_message,
        generation,
    )
    conditions = set_condition(
        conditions,
        ConditionType.APPROVED,
        decision.approved,
        decision.reason,
        decision.message,
        generation,
    )
    conditions = set_condition(
        conditions,
        ConditionType.READY,
        ready,
        Reason.READY if ready else decision.reason,
        "the version may be served" if ready else decision.message,
        generation,
    )
    conditions = with_promotion(version, model, ready, conditions)
    return ModelVersionStatus(
        observed_generation=generation,
        phase=decision.phase,
        conditions=conditions,
        gates=results,
        key_metric=key_metric(spec.metrics or {}, [r.metric for r in results]),
        deployments=deployments or None,
    )


def with_promotion(
    version: ModelVersion, model: Model, ready: bool, conditions: list[Condition]
) -> list[Condition]:
    """The Promoted condition under a promotion policy: whether the policy moved its alias here,
    and if not, why (with both numbers); none without a policy."""
    policy = model.spec.policy.promotion
    if policy is None:
        return [c for c in conditions if c.type != ConditionType.PROMOTED]
    held = model.status or ModelStatus()
    ever = [
        e.to_version
        for e in held.history or []
        if e.action == ModelReason.PROMOTED and e.alias == policy.alias and e.to_version
    ]
    said = verdict(
        policy,
        Candidate.of(version, policy.metric, ready),
        held.promoted,
        set(held.rolled_back or []),
        ever,
    )
    reason, message = said.reason, said.message
    if not said.promoted and policy.alias in (model.spec.aliases or {}):
        reason = Reason.OVERRIDDEN
        message = f"spec.aliases pins {policy.alias}: the policy moves nothing ({message})"
    return set_condition(
        conditions, ConditionType.PROMOTED, said.promoted, reason, message, version.generation
    )


def desired_status(version: ModelVersion) -> ModelVersionStatus:
    deployments = cache.of_model(ModelDeployment, version.namespace, version.spec.model)
    return status_for(version, model_of(version), served_by(version, deployments))


def transition_event(new: ModelVersionStatus) -> tuple[str, str]:
    """The reason and message of the Event for a change of phase."""
    ready = find(new.conditions, ConditionType.READY)
    approved = find(new.conditions, ConditionType.APPROVED)
    validated = find(new.conditions, ConditionType.VALIDATED)
    # Approved's reason says how: AutoApproved, Approved, PendingApproval, GatesFailed, Rejected.
    deciding = approved or ready
    reason = deciding.reason if deciding else str(new.phase)
    said = approved.message if approved else (ready.message if ready else "")
    if validated and approved:
        said += f" ({validated.message})"
    return reason, f"{new.phase}: {said}"


def up_to_date(body: Body | None) -> bool:
    """Whether the cached version already has the status its reconcile would write: the
    periodic resync then costs no API call."""
    if body is None:
        return True
    version = cached(ModelVersion, body)
    if version is None:
        return False
    return status.as_body(version.status) == status.as_body(desired_status(version))


def reconcile_version(namespace: str, name: str) -> None:
    with (
        exclusive(ModelVersion.plural(), namespace, name),
        reconciling("ModelVersion", namespace, name),
    ):
        body = objects.get(ModelVersion, namespace, name)
        version = parse(ModelVersion, body) if body is not None else None
        if version is None:
            return
        new = desired_status(version)
        old = version.status or ModelVersionStatus()
        if not status.write(version, version.status, new) or old.phase == new.phase:
            return
        reason, message = transition_event(new)
        logger.info("phase %s → %s (%s)", old.phase or "-", new.phase, reason)
        post = (
            events.warn
            if new.phase in (ModelVersionPhase.INVALID, ModelVersionPhase.REJECTED)
            else events.info
        )
        post(version, reason=reason, message=message)


def resync_version(namespace: str, name: str) -> None:
    """The periodic visit: from the cache, and only when something changed, from the API."""
    if not up_to_date(cache.get(ModelVersion, namespace, name)):
        reconcile_version(namespace, name)
