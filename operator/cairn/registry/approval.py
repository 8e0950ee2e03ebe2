"""The state of a ModelVersion from its gates, its Model's policy and the approval people set."""

import dataclasses

from cairn.api import Approval, ApprovalState, ModelVersionPhase
from cairn.api.modelversion import ModelVersionReason


@dataclasses.dataclass(frozen=True)
class Decision:
    phase: ModelVersionPhase
    approved: bool
    reason: ModelVersionReason
    message: str


def decide(
    *, validated: bool, require_approval: bool, approval: Approval | None, model: str, version: int
) -> Decision:
    state = approval.state if approval else ApprovalState.PENDING
    by = f" by {approval.by}" if approval and approval.by else ""
    why = f": {approval.reason}" if approval and approval.reason else ""
    if state == ApprovalState.REJECTED:
        return Decision(
            ModelVersionPhase.REJECTED, False, ModelVersionReason.REJECTED, f"rejected{by}{why}"
        )
    if not validated:
        return Decision(
            ModelVersionPhase.INVALID,
            False,
            ModelVersionReason.GATES_FAILED,
            "the version failed its Model's gates",
        )
    if state == ApprovalState.APPROVED:
        return Decision(
            ModelVersionPhase.APPROVED, True, ModelVersionReason.APPROVED, f"approved{by}{why}"
        )
    if require_approval:
        return Decision(
            ModelVersionPhase.PENDING_APPROVAL,
            False,
            ModelVersionReason.PENDING_APPROVAL,
            f"the Model requires approval: run `cairn approve {model} {version}`",
        )
    return Decision(
        ModelVersionPhase.APPROVED,
        True,
        ModelVersionReason.AUTO_APPROVED,
        "gates passed; the Model needs no approval",
    )
