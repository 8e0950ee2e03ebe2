"""Reconciling a Model: resolve its aliases against its versions, report its latest version."""

import logging
from typing import Any

from cairn.controllers.conditions import is_true, set_condition
from cairn.controllers.deployment import usage
from cairn.kube import events, objects
from cairn.registry.aliases import resolve
from cairn.registry.retention import versions_to_delete

Body = dict[str, Any]
MODELS, VERSIONS, DEPLOYMENTS = "models", "modelversions", "modeldeployments"
MODEL_LABEL = "cairn.dev/model"

logger = logging.getLogger(__name__)


def versions_of(namespace: str, model: str) -> list[Body]:
    return [
        v
        for v in objects.list_(VERSIONS, namespace, f"{MODEL_LABEL}={model}")
        if v["spec"]["model"] == model
    ]


def served_versions(model: Body) -> set[int]:
    """Versions that a ModelDeployment of this model pins or serves (stable or canary)."""
    meta = model["metadata"]
    served: set[int] = set()
    for mdep in objects.list_(DEPLOYMENTS, meta["namespace"]):
        if mdep.get("spec", {}).get("model") != meta["name"]:
            continue
        if mdep["spec"].get("version"):  # pinned, perhaps not served yet
            served.add(int(mdep["spec"]["version"]))
        status = mdep.get("status") or {}
        for track in ("stable", "canary"):
            version = (status.get(track) or {}).get("version")
            if version:
                served.add(int(version))
    return served


def apply_retention(model: Body, versions: list[Body]) -> list[Body]:
    """Delete the versions spec.retention no longer keeps; returns the versions that remain."""
    keep = ((model.get("spec") or {}).get("retention") or {}).get("keepVersions")
    if not keep:
        return versions
    aliases = {
        **((model.get("status") or {}).get("aliases") or {}),
        **((model.get("spec") or {}).get("aliases") or {}),
    }
    protected = {int(v) for v in aliases.values()} | served_versions(model)
    doomed = set(versions_to_delete([int(v["spec"]["version"]) for v in versions], keep, protected))
    for version in versions:
        if int(version["spec"]["version"]) in doomed:
            meta = version["metadata"]
            objects.delete(VERSIONS, meta["namespace"], meta["name"])
            logger.info("deleted %s: spec.retention.keepVersions=%s", meta["name"], keep)
            events.info(
                model,
                reason="VersionRetired",
                message=f"deleted {meta['name']}: spec.retention.keepVersions={keep}",
            )
    return [v for v in versions if int(v["spec"]["version"]) not in doomed]


def reconcile_model(model: Body, versions: list[Body]) -> None:
    meta, spec, status = model["metadata"], model.get("spec") or {}, model.get("status") or {}
    generation = meta.get("generation")
    versions = apply_retention(model, versions)
    usage.prune(meta["namespace"], meta["name"], versions)
    phases = {
        int(v["spec"]["version"]): (v.get("status") or {}).get("phase", "Pending") for v in versions
    }
    ready = {
        int(v["spec"]["version"])
        for v in versions
        if is_true((v.get("status") or {}).get("conditions"), "Ready")
    }
    resolved, problems = resolve(spec.get("aliases") or {}, ready, phases, meta["name"])
    message = "; ".join(problems) if problems else f"{len(resolved)} alias(es) resolved"
    conditions = set_condition(
        status.get("conditions"),
        "AliasesResolved",
        not problems,
        "InvalidAliasTarget" if problems else "Resolved",
        message,
        generation,
    )
    conditions = set_condition(
        conditions,
        "Ready",
        not problems,
        "InvalidAliasTarget" if problems else "Ready",
        message,
        generation,
    )
    latest = max([int(status.get("latestVersion") or 0), *phases])
    old_aliases = status.get("aliases") or {}
    new_status: Body = {
        "observedGeneration": generation,
        # A merge patch removes a key only when it is sent as null.
        "aliases": {**{a: None for a in old_aliases if a not in resolved}, **resolved},
        "conditions": conditions,
    }
    if latest:
        new_status["latestVersion"] = latest
    changed = {
        k: v
        for k, v in new_status.items()
        if (status.get(k) != (resolved if k == "aliases" else v))
    }
    if not changed:
        return
    objects.patch_status(MODELS, meta["namespace"], meta["name"], changed)
    if problems and status.get("conditions") != conditions:
        events.warn(model, reason="InvalidAliasTarget", message=message)
    for alias, version in resolved.items():
        if old_aliases.get(alias) != version:
            logger.info("alias %s → %s-v%s", alias, meta["name"], version)
            events.info(model, reason="AliasMoved", message=f"{alias} → {meta['name']}-v{version}")
