"""Reconciling a ModelVersion: judge its gates, decide its approval, write its status."""

import logging
from typing import Any

from cairn.controllers.conditions import set_condition
from cairn.kube import events, objects
from cairn.registry.approval import decide
from cairn.registry.gates import judge_all, key_metric

Body = dict[str, Any]
MODELS, VERSIONS = "models", "modelversions"

logger = logging.getLogger(__name__)


def reconcile_version(version: Body, model: Body | None) -> None:
    meta, spec, status = version["metadata"], version["spec"], version.get("status") or {}
    generation = meta.get("generation")
    conditions = status.get("conditions")

    if model is None:
        message = f"Model {spec['model']} does not exist; create it (kubectl apply a Model)"
        new_status: Body = {
            "observedGeneration": generation,
            "phase": "Invalid",
            "conditions": set_condition(
                conditions, "Validated", False, "ModelNotFound", message, generation
            ),
        }
        _write(version, status, new_status, "ModelNotFound", message)
        return

    policy = model.get("spec", {}).get("policy") or {}
    validated, results = judge_all(policy.get("gates") or [], spec.get("metrics") or {})
    failed = [r.message for r in results if not r.passed]
    gate_message = "; ".join(failed) if failed else f"{len(results)} gate(s) passed"
    decision = decide(
        validated=validated,
        require_approval=bool(policy.get("requireApproval", False)),
        approval=spec.get("approval") or {},
        model=spec["model"],
        version=int(spec["version"]),
    )
    conditions = set_condition(
        conditions,
        "Validated",
        validated,
        "GatesPassed" if validated else "GatesFailed",
        gate_message,
        generation,
    )
    conditions = set_condition(
        conditions, "Approved", decision.approved, decision.reason, decision.message, generation
    )
    ready = validated and decision.approved
    conditions = set_condition(
        conditions,
        "Ready",
        ready,
        "Ready" if ready else decision.reason,
        "the version may be served" if ready else decision.message,
        generation,
    )
    new_status = {
        "observedGeneration": generation,
        "phase": decision.phase.value,
        "gates": [r.as_status() for r in results],
        "keyMetric": key_metric(spec.get("metrics") or {}, [r.metric for r in results]),
        "conditions": conditions,
    }
    _write(version, status, new_status, decision.reason, f"{decision.message} ({gate_message})")


def _write(version: Body, old: Body, new: Body, reason: str, message: str) -> None:
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    if not changed:
        return
    meta = version["metadata"]
    objects.patch_status(VERSIONS, meta["namespace"], meta["name"], changed)
    if old.get("phase") != new.get("phase"):
        # Named: a Model's reconcile judges its versions too, and its lines carry the Model.
        logger.info(
            "ModelVersion %s: phase %s → %s (%s)",
            version["metadata"]["name"],
            old.get("phase") or "-",
            new.get("phase"),
            reason,
        )
        post = events.warn if new["phase"] in ("Invalid", "Rejected") else events.info
        post(version, reason=reason, message=f"{new['phase']}: {message}")
