"""Reconciling a Model: its latest version, its aliases resolved against its versions, and the
versions its retention policy removes; the Model's status is written here and nowhere else."""

import logging
from typing import Any

from pydantic import ValidationError

from cairn.api import Model, ModelConditionType, ModelDeployment, ModelStatus, ModelVersion
from cairn.api.conditions import find, is_true, set_condition
from cairn.api.model import ModelReason
from cairn.controllers.exclusive import exclusive
from cairn.controllers.parsing import parse
from cairn.kube import cache, events, objects, status
from cairn.observability.reconciles import reconciling
from cairn.registry.aliases import resolve
from cairn.registry.retention import versions_to_delete

Body = dict[str, Any]

logger = logging.getLogger(__name__)


def versions_of(model: Model) -> list[ModelVersion]:
    """The model's versions from the watch cache; one that breaks the API is left out (its own
    controller reports it)."""
    found = []
    for body in cache.of_model(ModelVersion, model.namespace, model.name):
        try:
            found.append(ModelVersion.model_validate(body))
        except ValidationError:
            continue
    return found


def served_versions(model: Model) -> set[int]:
    """Versions that a ModelDeployment of this model pins or serves (stable or canary)."""
    served: set[int] = set()
    for mdep in cache.of_model(ModelDeployment, model.namespace, model.name):
        spec, mdep_status = mdep.get("spec") or {}, mdep.get("status") or {}
        if spec.get("version"):  # pinned, perhaps not served yet
            served.add(int(spec["version"]))
        for track in ("stable", "canary"):
            version = (mdep_status.get(track) or {}).get("version")
            if version:
                served.add(int(version))
    return served


def retired(model: Model, versions: list[ModelVersion]) -> list[ModelVersion]:
    """The versions spec.retention no longer keeps: never one an alias names or a deployment
    uses."""
    keep = model.spec.retention.keep_versions if model.spec.retention else None
    if not keep:
        return []
    current = model.status or ModelStatus()
    protected = {*(current.aliases or {}).values(), *(model.spec.aliases or {}).values()}
    protected |= served_versions(model)
    doomed = set(versions_to_delete([v.spec.version for v in versions], keep, protected))
    return [v for v in versions if v.spec.version in doomed]


def status_for(model: Model, versions: list[ModelVersion]) -> ModelStatus:
    """The Model's status: pure, from its spec and its versions."""
    old = model.status or ModelStatus()
    generation = model.generation
    phases = {v.spec.version: v.status.phase if v.status else None for v in versions}
    ready = {v.spec.version for v in versions if v.status and is_true(v.status.conditions, "Ready")}
    resolved, problems = resolve(model.spec.aliases or {}, ready, phases, model.name)
    reason = ModelReason.INVALID_ALIAS_TARGET if problems else None
    message = "; ".join(problems) if problems else f"{len(resolved)} alias(es) resolved"
    conditions = set_condition(
        old.conditions,
        ModelConditionType.ALIASES_RESOLVED,
        not problems,
        reason or ModelReason.RESOLVED,
        message,
        generation,
    )
    conditions = set_condition(
        conditions,
        ModelConditionType.READY,
        not problems,
        reason or ModelReason.READY,
        message,
        generation,
    )
    # The latest version never goes down: a deleted version's number is not given again.
    latest = max([old.latest_version or 0, *phases]) or None
    return ModelStatus(
        observed_generation=generation,
        latest_version=latest,
        aliases=resolved or None,
        conditions=conditions,
    )


def up_to_date(cached: Body | None) -> bool:
    """Whether the cached Model already has the status its reconcile would write, and nothing
    to retire: the periodic resync then costs no API call."""
    if cached is None:
        return True
    try:
        model = Model.model_validate(cached)
    except ValidationError:
        return False
    versions = versions_of(model)
    if retired(model, versions):
        return False
    return status.as_body(model.status) == status.as_body(status_for(model, versions))


def reconcile_model(namespace: str, name: str) -> None:
    with exclusive(Model.plural(), namespace, name), reconciling("Model", namespace, name):
        body = objects.get(Model, namespace, name)
        model = parse(Model, body) if body is not None else None
        if model is None:
            return
        versions = versions_of(model)
        doomed = retired(model, versions)
        keep = model.spec.retention.keep_versions if model.spec.retention else None
        for version in doomed:
            objects.delete(ModelVersion, namespace, version.name)
            logger.info("deleted %s: spec.retention.keepVersions=%s", version.name, keep)
            events.info(
                model,
                reason="VersionRetired",
                message=f"deleted {version.name}: spec.retention.keepVersions={keep}",
            )
        kept = [v for v in versions if v not in doomed]
        old, new = model.status or ModelStatus(), status_for(model, kept)
        if not status.write(model, model.status, new):
            return
        ready = find(new.conditions, ModelConditionType.READY)
        if ready and ready.status == "False" and old.conditions != new.conditions:
            events.warn(model, reason=ready.reason, message=ready.message)
        for alias, number in (new.aliases or {}).items():
            if (old.aliases or {}).get(alias) != number:
                logger.info("alias %s → %s-v%s", alias, name, number)
                events.info(model, reason="AliasMoved", message=f"{alias} → {name}-v{number}")


def resync_model(namespace: str, name: str) -> None:
    """The periodic visit (and a version's change): from the cache, and only when something
    changed, from the API server."""
    if not up_to_date(cache.get(Model, namespace, name)):
        reconcile_model(namespace, name)
