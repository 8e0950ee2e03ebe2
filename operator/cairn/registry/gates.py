"""Metric gates of a Model's policy, judged against a version's metrics (pure)."""

import dataclasses
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}


@dataclasses.dataclass(frozen=True)
class GateResult:
    metric: str
    op: str
    threshold: float
    value: float | None
    passed: bool
    message: str

    def as_status(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def judge(gate: Mapping[str, Any], metrics: Mapping[str, float]) -> GateResult:
    metric, op, threshold = gate["metric"], gate["op"], float(gate["threshold"])
    value = metrics.get(metric)
    if value is None or not math.isfinite(float(value)):
        known = ", ".join(sorted(metrics)) or "none"
        return GateResult(
            metric,
            op,
            threshold,
            None,
            False,
            f"metric {metric} was not reported by the run (reported: {known})",
        )
    passed = COMPARISONS[op](float(value), threshold)
    verdict = "passes" if passed else "fails"
    return GateResult(
        metric,
        op,
        threshold,
        float(value),
        passed,
        f"{metric}={value:g} {verdict} {op} {threshold:g}",
    )


def judge_all(
    gates: Sequence[Mapping[str, Any]], metrics: Mapping[str, float]
) -> tuple[bool, list[GateResult]]:
    results = [judge(gate, metrics) for gate in gates]
    return all(result.passed for result in results), results


def key_metric(metrics: Mapping[str, float], preferred: Sequence[str] = ()) -> str | None:
    """The headline metric for `kubectl get`: the first gated one, else accuracy, else the
    first reported; as name=value."""
    for name in [*preferred, "accuracy", *metrics]:
        if name in metrics:
            return f"{name}={metrics[name]:.4g}"
    return None
