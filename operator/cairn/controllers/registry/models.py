"""Reconciling a Model: its latest version, its aliases resolved against its versions, and the
versions its retention policy removes; the Model's status is written here and nowhere else."""

import dataclasses
import datetime
import logging
from typing import Any

from cairn.api import Model, ModelConditionType, ModelDeployment, ModelStatus, ModelVersion
from cairn.api.conditions import find, is_true, set_condition
from cairn.api.conditions import now as conditions_now
from cairn.api.model import HISTORY_MAX, ROLLED_BACK_MAX, HistoryEntry, ModelReason
from cairn.api.modeldeployment import TRACKS
from cairn.controllers.exclusive import exclusive
from cairn.controllers.parsing import cached, parse
from cairn.kube import cache, events, objects, status
from cairn.observability.reconciles import reconciling
from cairn.registry import history
from cairn.registry.aliases import resolve
from cairn.registry.promotion import Candidate, holder_after
from cairn.registry.retention import versions_to_delete

Body = dict[str, Any]

logger = logging.getLogger(__name__)


def versions_of(model: Model) -> list[ModelVersion]:
    """The model's versions from the watch cache; one that breaks the API is left out (its own
    controller reports it)."""
    found = (
        cached(ModelVersion, b) for b in cache.of_model(ModelVersion, model.namespace, model.name)
    )
    return [v for v in found if v is not None]


def served_versions(model: Model) -> set[int]:
    """Versions that a ModelDeployment of this model pins or serves (stable or canary)."""
    served: set[int] = set()
    for mdep in cache.of_model(ModelDeployment, model.namespace, model.name):
        spec, mdep_status = mdep.get("spec") or {}, mdep.get("status") or {}
        if spec.get("version"):  # pinned, perhaps not served yet
            served.add(int(spec["version"]))
        for track in TRACKS:
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


def rollbacks_of(model: Model) -> dict[int, str]:
    """Versions of the promotion alias whose canary a ModelDeployment following the alias rolled
    back (version → ModelDeployment), from the watch cache."""
    policy = model.spec.policy.promotion
    if policy is None:
        return {}
    found: dict[int, str] = {}
    for mdep in cache.of_model(ModelDeployment, model.namespace, model.name):
        rollback = (mdep.get("status") or {}).get("rollback") or {}
        if (mdep.get("spec") or {}).get("alias") == policy.alias and rollback.get("version"):
            found[int(rollback["version"])] = str(mdep["metadata"]["name"])
    return found


@dataclasses.dataclass(frozen=True)
class PromotionState:
    holder: int | None
    rolled_back: list[int]
    happened: list[HistoryEntry]


def promote(
    model: Model,
    versions: list[ModelVersion],
    rollbacks: dict[int, str],
    now: datetime.datetime,
) -> PromotionState:
    """Where the promotion policy's alias goes: back from a rolled-back version to the one it
    replaced, then on to every version that beats its holder; nowhere while spec.aliases pins
    it."""
    policy, old = model.spec.policy.promotion, model.status or ModelStatus()
    if policy is None:
        return PromotionState(None, [], [])
    holder, rolled_back = old.promoted, list(old.rolled_back or [])
    if policy.alias in (model.spec.aliases or {}):
        # Pinned in spec: a freeze. The policy moves nothing until the pin is removed.
        return PromotionState(holder, rolled_back, [])
    happened: list[HistoryEntry] = []
    if holder is not None and holder in rollbacks and holder not in rolled_back:
        rolled_back.append(holder)
        previous = previous_holder(old.history or [], policy.alias, holder)
        happened.append(
            HistoryEntry(
                time=now,
                action=ModelReason.ROLLED_BACK,
                alias=policy.alias,
                from_version=holder,
                to_version=previous,
                by="policy",
                reason=f"the canary of {model.name}-v{holder} in ModelDeployment "
                f"{rollbacks[holder]} was rolled back",
            )
        )
        holder = previous
    candidates = [Candidate.of(v, policy.metric) for v in versions]
    chosen = holder_after(policy, holder, candidates, set(rolled_back))
    if chosen is not None and chosen != holder:
        winner = next(c for c in candidates if c.version == chosen)
        said = f"{model.name}-v{chosen} is Ready" + (
            f" and beats v{holder}: {policy.metric} {winner.value:.4g} against "
            f"{winner.champion_value:.4g} on the same evaluation data"
            if holder is not None and winner.value is not None and winner.champion_value is not None
            else ""
        )
        happened.append(
            HistoryEntry(
                time=now,
                action=ModelReason.PROMOTED,
                alias=policy.alias,
                from_version=holder,
                to_version=chosen,
                by="policy",
                reason=said,
            )
        )
    return PromotionState(chosen, sorted(rolled_back)[-ROLLED_BACK_MAX:], happened)


def previous_holder(history: list[HistoryEntry], alias: str, version: int) -> int | None:
    """The version the policy moved `alias` away from when it moved it to `version`."""
    for entry in reversed(history):
        if entry.alias == alias and entry.to_version == version and entry.action == "Promoted":
            return entry.from_version
    return None


def status_for(
    model: Model,
    versions: list[ModelVersion],
    rollbacks: dict[int, str] | None = None,
    now: datetime.datetime | None = None,
    retired: list[int] | None = None,
) -> ModelStatus:
    """The Model's status: pure, from its spec, its versions, the rollbacks of its promotion
    alias's ModelDeployments, and the versions its retention just deleted (for the history)."""
    old = model.status or ModelStatus()
    now = now or conditions_now()
    generation = model.generation
    phases = {v.spec.version: v.status.phase if v.status else None for v in versions}
    ready = {v.spec.version for v in versions if v.status and is_true(v.status.conditions, "Ready")}
    pinned = model.spec.aliases or {}
    resolved, problems = resolve(pinned, ready, phases, model.name)
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
    promotion = promote(model, versions, rollbacks or {}, now)
    policy = model.spec.policy.promotion
    if policy is not None:
        overridden = policy.alias in pinned
        if not overridden and promotion.holder is not None:
            resolved[policy.alias] = promotion.holder
        conditions = set_condition(
            conditions,
            ModelConditionType.PROMOTION_OVERRIDDEN,
            overridden,
            ModelReason.PINNED if overridden else ModelReason.NOT_PINNED,
            f"spec.aliases pins {policy.alias} to {pinned[policy.alias]}: the promotion policy "
            "does not move it until the pin is removed"
            if overridden
            else f"the promotion policy moves {policy.alias}",
            generation,
        )
    else:
        conditions = [c for c in conditions if c.type != ModelConditionType.PROMOTION_OVERRIDDEN]
    managed = policy.alias if policy is not None and policy.alias not in pinned else None
    happened = promotion.happened + spec_moves(old.aliases or {}, resolved, managed, now)
    happened += [
        HistoryEntry(
            time=now,
            action=ModelReason.VERSION_RETIRED,
            from_version=number,
            by="retention",
            reason="spec.retention.keepVersions",
        )
        for number in retired or []
    ]
    # Approvals and rejections are the versions' own history; the Model keeps a copy, which
    # outlives a version that retention deletes.
    decided = history.for_model(
        {v.spec.version: (v.status.history if v.status else None) or [] for v in versions}
    )
    recorded = history.merged(
        [*(old.history or []), *happened][-HISTORY_MAX:], decided, HISTORY_MAX
    )
    # The latest version never goes down: a deleted version's number is not given again.
    latest = max([old.latest_version or 0, *phases]) or None
    return ModelStatus(
        observed_generation=generation,
        latest_version=latest,
        aliases=resolved or None,
        conditions=conditions,
        promoted=promotion.holder,
        rolled_back=promotion.rolled_back or None,
        history=recorded or None,
    )


def spec_moves(
    before: dict[str, int], after: dict[str, int], managed: str | None, now: datetime.datetime
) -> list[HistoryEntry]:
    """Alias moves that people (or Git) made in spec.aliases, for the history; `managed`: the
    alias the promotion policy moves (its moves are recorded as promotions)."""
    return [
        HistoryEntry(
            time=now,
            action=ModelReason.ALIAS_MOVED,
            alias=alias,
            from_version=before.get(alias),
            to_version=after.get(alias),
            by="spec",
            reason="spec.aliases names it" if alias in after else "removed from spec.aliases",
        )
        for alias in sorted(set(before) | set(after))
        if alias != managed and before.get(alias) != after.get(alias)
    ]


def up_to_date(body: Body | None) -> bool:
    """Whether the cached Model already has the status its reconcile would write, and nothing
    to retire: the periodic resync then costs no API call."""
    if body is None:
        return True
    model = cached(Model, body)
    if model is None:
        return False
    versions = versions_of(model)
    if retired(model, versions):
        return False
    new = status_for(model, versions, rollbacks_of(model))
    return status.as_body(model.status) == status.as_body(new)


def reconcile_model(namespace: str, name: str) -> None:
    with exclusive(Model.plural(), namespace, name), reconciling("Model", namespace, name):
        # Its status has one writer, this controller: the cache unless it lacks our last write.
        body = cache.for_write(Model, namespace, name)
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
                reason=ModelReason.VERSION_RETIRED,
                message=f"deleted {version.name}: spec.retention.keepVersions={keep}",
            )
        kept = [v for v in versions if v not in doomed]
        old = model.status or ModelStatus()
        new = status_for(model, kept, rollbacks_of(model), retired=[v.spec.version for v in doomed])
        if not status.write(model, model.status, new):
            return
        ready = find(new.conditions, ModelConditionType.READY)
        if ready and ready.status == "False" and old.conditions != new.conditions:
            events.warn(model, reason=ready.reason, message=ready.message)
        for entry in new.history or []:
            if entry not in (old.history or []) and entry.action in ANNOUNCED:
                announce(model, entry)


# Retirements have their own Event; approvals and rejections are announced by their versions.
ANNOUNCED = frozenset({ModelReason.ALIAS_MOVED, ModelReason.PROMOTED, ModelReason.ROLLED_BACK})


def announce(model: Model, entry: HistoryEntry) -> None:
    """A line in the log and an Event for each alias move, promotion and rollback."""
    moved = f"{entry.alias} → " + (
        f"{model.name}-v{entry.to_version}" if entry.to_version else "nothing"
    )
    message = f"{moved} (by {entry.by}: {entry.reason})"
    logger.info("%s: %s", entry.action, message)
    post = events.warn if entry.action == ModelReason.ROLLED_BACK else events.info
    post(model, reason=entry.action, message=message)


def resync_model(namespace: str, name: str) -> None:
    """The periodic visit (and a version's change): from the cache, and only when something
    changed, from the API server."""
    if not up_to_date(cache.get(Model, namespace, name)):
        reconcile_model(namespace, name)
