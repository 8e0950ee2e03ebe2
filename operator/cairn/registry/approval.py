"""The state of a ModelVersion from its gates, its Model's policy and the approval people set."""

import dataclasses
import enum


class VersionPhase(enum.StrEnum):
    INVALID = "Invalid"
    PENDING_APPROVAL = "PendingApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"


@dataclasses.dataclass(frozen=True)
class Decision:
    phase: VersionPhase
    approved: bool
    reason: str
    message: str


def decide(
    *, validated: bool, require_approval: bool, approval: dict[str, str], model: str, version: int
) -> Decision:
    state = approval.get("state", "Pending")
    by = f" by {approval['by']}" if approval.get("by") else ""
    why = f": {approval['reason']}" if approval.get("reason") else ""
    if state == "Rejected":
        return Decision(VersionPhase.REJECTED, False, "Rejected", f"rejected{by}{why}")
    if not validated:
        return Decision(
            VersionPhase.INVALID, False, "GatesFailed", "the version failed its Model's gates"
        )
    if state == "Approved":
        return Decision(VersionPhase.APPROVED, True, "Approved", f"approved{by}{why}")
    if require_approval:
        return Decision(
            VersionPhase.PENDING_APPROVAL,
            False,
            "PendingApproval",
            f"the Model requires approval: run `cairn approve {model} {version}`",
        )
    return Decision(
        VersionPhase.APPROVED, True, "AutoApproved", "gates passed; the Model needs no approval"
    )
