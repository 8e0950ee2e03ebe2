"""The durable audit trail (pure): what happened to a version, found by comparing its status
before and after a reconcile, and the bounded histories in status that keep it after the API
server has dropped the Events.

A history is oldest first and keeps its newest entries. An entry is added once: every function
here returns nothing new when called again on the status it produced, so a periodic resync that
finds nothing changed writes nothing.
"""

import datetime
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

from cairn.api import Approval, ModelVersionStatus
from cairn.api.common import TEXT_MAX, Condition
from cairn.api.conditions import find
from cairn.api.model import HistoryEntry as ModelHistoryEntry
from cairn.api.model import ModelReason
from cairn.api.modeldeployment import TRACKS
from cairn.api.modelversion import HistoryEntry, ModelVersionConditionType, ModelVersionReason

Body = dict[str, Any]


class Timed(Protocol):
    @property
    def time(self) -> datetime.datetime: ...


Entry = TypeVar("Entry", bound=Timed)
Reason, ConditionType = ModelVersionReason, ModelVersionConditionType

# What the Approved condition says when the gates, not a person, decided: the gate entry tells.
JUDGED_BY_GATES = frozenset({Reason.GATES_FAILED, Reason.MODEL_NOT_FOUND})
DECIDED_BY_A_PERSON = frozenset({Reason.APPROVED, Reason.REJECTED})
# Promotion verdicts worth keeping; the others (NotReady, NotCompared, ...) are transient.
PROMOTION_VERDICTS = frozenset(
    {Reason.PROMOTED, Reason.NOT_BETTER, Reason.SUPERSEDED, Reason.ROLLED_BACK}
)
POLICY = "policy"
# A version's approvals and rejections, copied into its Model's history.
COPIED_TO_MODEL = {
    Reason.APPROVED: ModelReason.VERSION_APPROVED,
    Reason.REJECTED: ModelReason.VERSION_REJECTED,
}


def clipped(text: str | None) -> str | None:
    """A message as long as a history entry holds (a failing gate's message can be longer)."""
    if text is None or len(text) <= TEXT_MAX:
        return text
    return text[: TEXT_MAX - 1] + "…"


def merged(old: Sequence[Entry], new: Sequence[Entry], limit: int) -> list[Entry]:
    """`old` with the entries of `new` it lacks, in time order, the newest `limit` kept. An entry
    no newer than the oldest kept one of a full history is not added: it would be dropped at
    once, and adding it again and again would never settle."""
    floor = old[0].time if len(old) >= limit else None
    added: list[Entry] = [e for e in new if e not in old and (floor is None or e.time > floor)]
    if not added:
        return list(old)
    return sorted([*old, *added], key=lambda e: e.time)[-limit:]  # stable: ties keep their order


def entry(
    time: datetime.datetime,
    action: str,
    *,
    from_: str | None = None,
    to: str | None = None,
    by: str | None = None,
    reason: str | None = None,
) -> HistoryEntry:
    """A version's history entry (`from` is a Python keyword: the field is `from_`)."""
    return HistoryEntry.model_validate(
        {
            "time": time,
            "action": action,
            "from": from_,
            "to": to,
            "by": by,
            "reason": clipped(reason),
        }
    )


def _changed(before: Condition | None, after: Condition | None) -> bool:
    if after is None:
        return False
    if before is None:
        return True
    return (before.status, before.reason, before.message) != (
        after.status,
        after.reason,
        after.message,
    )


def decisions(
    old: ModelVersionStatus,
    new: ModelVersionStatus,
    approval: Approval | None,
    now: datetime.datetime,
) -> list[HistoryEntry]:
    """Gate verdicts, approvals, rejections and promotion verdicts that `new` tells and `old`
    did not."""
    entries: list[HistoryEntry] = []
    phases = {"from_": old.phase, "to": new.phase}
    before = find(old.conditions, ConditionType.VALIDATED)
    after = find(new.conditions, ConditionType.VALIDATED)
    if after is not None and (before is None or before.status != after.status):
        entries.append(entry(now, after.reason, by=POLICY, reason=after.message, **phases))
    before = find(old.conditions, ConditionType.APPROVED)
    after = find(new.conditions, ConditionType.APPROVED)
    if _changed(before, after) and after is not None and after.reason not in JUDGED_BY_GATES:
        if before is not None and before.reason in DECIDED_BY_A_PERSON and approval is None:
            # Who removed spec.approval is not recorded on the object: only that it was.
            said = f"spec.approval was removed; {after.message}"
            entries.append(entry(now, Reason.APPROVAL_WITHDRAWN, reason=said, **phases))
        elif after.reason in DECIDED_BY_A_PERSON and approval is not None:
            said = approval.reason or after.message
            entries.append(entry(now, after.reason, by=approval.by, reason=said, **phases))
        else:
            entries.append(entry(now, after.reason, by=POLICY, reason=after.message, **phases))
    before = find(old.conditions, ConditionType.PROMOTED)
    after = find(new.conditions, ConditionType.PROMOTED)
    if (
        after is not None
        and after.reason in PROMOTION_VERDICTS
        and (before is None or before.reason != after.reason)
    ):
        entries.append(entry(now, after.reason, by=POLICY, reason=after.message))
    return entries


def roles(version: int, deployments: Sequence[Body]) -> dict[str, str]:
    """The ModelDeployments serving `version` and the track each serves it on."""
    found: dict[str, str] = {}
    for mdep in deployments:
        if mdep["metadata"].get("deletionTimestamp"):
            continue
        status = mdep.get("status") or {}
        for track in TRACKS:
            if (status.get(track) or {}).get("version") == version:
                found[str(mdep["metadata"]["name"])] = track
    return found


def _by(name: str) -> str:
    return f"ModelDeployment/{name}"


def recorded_roles(history: Sequence[HistoryEntry]) -> dict[str, str]:
    """The track each ModelDeployment served the version on, as the history last recorded it."""
    found: dict[str, str] = {}
    for entry in history:
        if entry.action == Reason.SERVING and entry.by:
            name = entry.by.removeprefix("ModelDeployment/")
            if entry.to:
                found[name] = entry.to
            else:
                found.pop(name, None)
    return found


def serving(
    history: Sequence[HistoryEntry],
    version: int,
    deployments: Sequence[Body],
    now: datetime.datetime,
) -> list[HistoryEntry]:
    """Changes in who serves the version on which track, and canary rollbacks of it, that the
    history does not have yet."""
    before, after = recorded_roles(history), roles(version, deployments)
    entries = [
        entry(
            now,
            Reason.SERVING,
            from_=before.get(name),
            to=after.get(name),
            by=_by(name),
            reason=f"{_by(name)} serves it on its {after[name]} track"
            if name in after
            else f"{_by(name)} no longer serves it",
        )
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]
    for mdep in deployments:
        rollback = (mdep.get("status") or {}).get("rollback") or {}
        if rollback.get("version") != version or not rollback.get("at"):
            continue
        name = str(mdep["metadata"]["name"])
        at = datetime.datetime.fromisoformat(str(rollback["at"]).replace("Z", "+00:00"))
        said = f"{rollback.get('reason')}: {rollback.get('message')}"
        entries.append(entry(at, Reason.CANARY_ROLLED_BACK, by=_by(name), reason=said))
    return entries


def for_model(histories: Mapping[int, Sequence[HistoryEntry]]) -> list[ModelHistoryEntry]:
    """The approvals and rejections in the versions' histories (version → history), as entries
    of their Model's history, which outlives the versions."""
    return sorted(
        (
            ModelHistoryEntry(
                time=entry.time,
                action=COPIED_TO_MODEL[entry.action],
                version=version,
                by=entry.by,
                reason=entry.reason,
            )
            for version, history in histories.items()
            for entry in history
            if entry.action in COPIED_TO_MODEL
        ),
        key=lambda e: e.time,
    )
