"""Metric gates of a Model's policy, judged against a version's metrics (pure)."""

import math
import operator
from collections.abc import Callable, Mapping, Sequence

from cairn.api import Gate, GateOp, GateResult

COMPARISONS: dict[GateOp, Callable[[float, float], bool]] = {
    GateOp.GE: operator.ge,
    GateOp.GT: operator.gt,
    GateOp.LE: operator.le,
    GateOp.LT: operator.lt,
    GateOp.EQ: operator.eq,
}


def judge(gate: Gate, metrics: Mapping[str, float]) -> GateResult:
    value = metrics.get(gate.metric)
    if value is None or not math.isfinite(float(value)):
        known = ", ".join(sorted(metrics)) or "none"
        return GateResult(
            metric=gate.metric,
            op=gate.op,
            threshold=gate.threshold,
            value=None,
            passed=False,
            message=f"metric {gate.metric} was not reported by the run (reported: {known})",
        )
    passed = COMPARISONS[gate.op](float(value), gate.threshold)
    verdict = "passes" if passed else "fails"
    return GateResult(
        metric=gate.metric,
        op=gate.op,
        threshold=gate.threshold,
        value=float(value),
        passed=passed,
        message=f"{gate.metric}={value:g} {verdict} {gate.op.value} {gate.threshold:g}",
    )


def judge_all(gates: Sequence[Gate], metrics: Mapping[str, float]) -> tuple[bool, list[GateResult]]:
    results = [judge(gate, metrics) for gate in gates]
    return all(result.passed for result in results), results


def key_metric(metrics: Mapping[str, float], preferred: Sequence[str] = ()) -> str | None:
    """The headline metric for `kubectl get`: the first gated one, else accuracy, else the
    first reported; as name=value."""
    for name in [*preferred, "accuracy", *metrics]:
        if name in metrics:
            return f"{name}={metrics[name]:.4g}"
    return None
