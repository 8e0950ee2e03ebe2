"""Reconciling a ModelVersion: judge its gates (metrics and fairness) against its Model's policy,
decide its approval, list the ModelDeployments serving it, and keep its history; the version's
status is written here and nowhere else."""

import datetime
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
from cairn.api.conditions import now as conditions_now
from cairn.api.model import ModelReason
from cairn.api.modelversion import HISTORY_MAX, ModelVersionReason
from cairn.controllers.exclusive import exclusive
from cairn.controllers.parsing import cached, parse
from cairn.kube import cache, events, status
from cairn.observability.reconciles import reconciling
from cairn.registry import fairness, history
from cairn.registry.approval import decide
from cairn.registry.gates import judge_all, key_metric
from cairn.registry.promotion import Candidate, verdict

Body = dict[str, Any]
ConditionType, Reason = ModelVersionConditionType, ModelVersionReason

logger = logging.getLogger(__name__)


def served_by(version: ModelVersion, deployments: list[Body]) -> list[str]:
    """The ModelDeployments whose stable or canary track runs this version, by their status."""
    return sorted(history.roles(version.spec.version, deployments))


def model_of(version: ModelVersion) -> Model | None:
    """The version's Model from the watch cache; None when it does not exist or cannot be read
    (its own controller reports why)."""
    return cached(Model, cache.get(Model, version.namespace, version.spec.model))


def model_inputs(model: Model | None) -> int:
    """A digest of what of a Model its versions' status reads (with_promotion, judged): its spec
    (the generation stands for it), whether it can be read, and the promotion record in its
    status; not latestVersion or conditions, which change with every registration. A Model event
    whose digest is unchanged cannot change any of its versions' status."""
    if model is None:
        return hash(None)
    held = model.status or ModelStatus()
    promotions = [entry.model_dump_json() for entry in held.history or []]
    return hash((model.generation, held.promoted, tuple(held.rolled_back or ()), *promotions))


def status_for(
    version: ModelVersion,
    model: Model | None,
    deployments: list[Body],
    now: datetime.datetime | None = None,
) -> ModelVersionStatus:
    """The version's status: pure, from its spec, its Model, the ModelDeployments of the Model
    (who serves it, and its canary rollbacks) and its status so far (the history grows)."""
    new = judged(version, model, deployments)
    old = version.status or ModelVersionStatus()
    now = now or conditions_now()
    happened = history.decisions(old, new, version.spec.approval, now)
    happened += history.serving(old.history or [], version.spec.version, deployments, now)
    kept = history.merged(old.history or [], happened, HISTORY_MAX)
    return new.model_copy(update={"history": kept or None})


def judged(
    version: ModelVersion, model: Model | None, deployments: list[Body]
) -> ModelVersionStatus:
    """The version's status but its history."""
    spec, old = version.spec, version.status or ModelVersionStatus()
    generation = version.generation
    conditions = old.conditions
    served = served_by(version, deployments) or None
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
            deployments=served,
        )
    policy = model.spec.policy
    passed, results = judge_all(policy.gates or [], spec.metrics or {})
    fair, fairness_results = fairness.judge_all(policy.fairness or [], spec.fairness or [])
    validated = passed and fair
    failed = [r.message or "" for r in results if not r.passed]
    failed += [r.message or "" for r in fairness_results if not r.passed]
    count = len(results) + len(fairness_results)
    gate_message = "; ".join(failed) if failed else f"{count} gate(s) passed"
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
        fairness_gates=fairness_results or None,
        key_metric=key_metric(spec.metrics or {}, [r.metric for r in results]),
        deployments=served,
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
    return status_for(version, model_of(version), deployments)


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
        # Its status has one writer, this controller: the cache unless it lacks our last write.
        body = cache.for_write(ModelVersion, namespace, name)
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
