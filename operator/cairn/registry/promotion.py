"""Automatic promotion (a Model's spec.policy.promotion): which version holds the alias, and for
each version why it holds it or not (pure).

A version takes the alias from the holder only when it is Ready, was never rolled back, and its
training run scored it better than the holder on the policy's metric, both measured on that
run's own evaluation data (ModelVersion.spec.evaluation). Numbers from different data are never
compared: a version that was compared with another holder waits for a run that compares with
this one. With no holder yet, the newest Ready version takes the alias.
"""

import dataclasses
import math
from collections.abc import Iterable, Sequence

from cairn.api import ModelVersion
from cairn.api.conditions import is_true
from cairn.api.model import Direction, Promotion
from cairn.api.modelversion import ModelVersionReason as Reason


@dataclasses.dataclass(frozen=True)
class Candidate:
    """What promotion needs of a version."""

    version: int
    ready: bool
    value: float | None  # its metric, as its run measured it
    champion_version: int | None  # the holder its run compared it with
    champion_value: float | None  # that holder's metric on the same data

    @classmethod
    def of(cls, version: ModelVersion, metric: str, ready: bool | None = None) -> "Candidate":
        """`ready`: whether the version is Ready, when known better than its status says."""
        evaluation = version.spec.evaluation
        champion = evaluation.champion_metrics or {} if evaluation else {}
        if ready is None:
            ready = bool(version.status and is_true(version.status.conditions, "Ready"))
        return cls(
            version=version.spec.version,
            ready=ready,
            value=(version.spec.metrics or {}).get(metric),
            champion_version=evaluation.champion_version if evaluation else None,
            champion_value=champion.get(metric),
        )


@dataclasses.dataclass(frozen=True)
class Verdict:
    promoted: bool
    reason: Reason
    message: str


def improvement(policy: Promotion, value: float, champion: float) -> float:
    """How much better `value` is than `champion`, in the metric's units (negative: worse)."""
    return value - champion if policy.direction == Direction.MAXIMIZE else champion - value


def beats(policy: Promotion, candidate: Candidate, holder: int) -> bool:
    if candidate.champion_version != holder:
        return False
    value, champion = candidate.value, candidate.champion_value
    if value is None or champion is None or not (math.isfinite(value) and math.isfinite(champion)):
        return False
    gain = improvement(policy, value, champion)
    return gain > 0 and gain >= policy.min_improvement


def holder_after(
    policy: Promotion,
    holder: int | None,
    candidates: Iterable[Candidate],
    rolled_back: set[int],
) -> int | None:
    """The version that holds the alias once every candidate is looked at: a chain of wins,
    each against the holder of its time."""
    eligible = sorted(
        (c for c in candidates if c.ready and c.version not in rolled_back),
        key=lambda c: c.version,
    )
    if holder is None:
        return eligible[-1].version if eligible else None
    while True:
        winners = [c for c in eligible if c.version > holder and beats(policy, c, holder)]
        if not winners:
            return holder
        holder = winners[-1].version


def _numbers(policy: Promotion, candidate: Candidate) -> str:
    return (
        f"{policy.metric} {candidate.value:.4g} against v{candidate.champion_version}'s "
        f"{candidate.champion_value:.4g} on the same evaluation data"
    )


def verdict(
    policy: Promotion,
    candidate: Candidate,
    holder: int | None,
    rolled_back: set[int],
    ever_promoted: Sequence[int],
) -> Verdict:
    """Why the version holds the alias, or why not, for its Promoted condition."""
    alias, version = policy.alias, candidate.version
    if version in rolled_back:
        return Verdict(
            False,
            Reason.ROLLED_BACK,
            f"its canary was rolled back: the policy never moves {alias} to it again",
        )
    if holder == version:
        said = f"holds {alias}"
        if candidate.champion_version is not None and candidate.value is not None:
            said += f": {_numbers(policy, candidate)}"
        return Verdict(True, Reason.PROMOTED, said)
    if version in ever_promoted:
        return Verdict(True, Reason.SUPERSEDED, f"held {alias}; v{holder} holds it now")
    if not candidate.ready:
        return Verdict(False, Reason.NOT_READY, "not Ready (validated and approved)")
    if holder is None:
        return Verdict(
            False,
            Reason.NOT_COMPARED,
            f"no version holds {alias} yet: the policy gives it to the newest Ready version",
        )
    if holder is not None and version < holder:
        return Verdict(False, Reason.SUPERSEDED, f"v{holder}, a later version, holds {alias}")
    if candidate.value is None:
        return Verdict(
            False, Reason.METRIC_MISSING, f"its run reported no {policy.metric}: nothing to compare"
        )
    if candidate.champion_version is None or candidate.champion_value is None:
        return Verdict(
            False,
            Reason.NOT_COMPARED,
            f"its run did not score v{holder}, which holds {alias}, on its evaluation data: "
            "call cairn.training.evaluate (or log_champion_metrics)",
        )
    if candidate.champion_version != holder:
        return Verdict(
            False,
            Reason.CHAMPION_CHANGED,
            f"its run compared it with v{candidate.champion_version}, but v{holder} holds "
            f"{alias} now; a new run compares with it",
        )
    if beats(policy, candidate, holder):
        return Verdict(
            False,
            Reason.PROMOTING,
            f"beats v{holder}: {_numbers(policy, candidate)}; {alias} moves to it next",
        )
    gain = improvement(policy, candidate.value, candidate.champion_value)
    needed = f" (minImprovement {policy.min_improvement:g})" if policy.min_improvement else ""
    return Verdict(
        False,
        Reason.NOT_BETTER,
        f"not better: {_numbers(policy, candidate)}, {gain:+.4g}{needed}",
    )
