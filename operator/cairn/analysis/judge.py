"""The judge of a canary: per analysis interval, each metric of the canary against its absolute
thresholds and against the stable's value in the same interval; pure.

An interval in which the canary answered fewer than minRequests requests is Inconclusive: it never
fails the canary and never passes it, so a canary that got no traffic is never promoted.
"""

import dataclasses
import datetime
import re
from collections.abc import Mapping, Sequence

from cairn.analysis import significance
from cairn.analysis.metrics import Counters, increase, prediction_counts, quantile, total
from cairn.api.modeldeployment import (
    BUILTIN_METRICS,
    CERTAIN,
    DEFAULT_ANALYSIS_INTERVAL,
    DEFAULT_ANALYSIS_METRICS,
    DEFAULT_CONFIDENCE,
    DEFAULT_MIN_REQUESTS,
    Analysis,
    AnalysisMetric,
    CanaryStatus,
    MetricResult,
    Verdict,
)
from cairn.monitoring.drift import psi

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float:
    """30s, 2m, 1h30m, 500ms → seconds (the API's Duration pattern)."""
    parts = re.findall(r"([0-9]+)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration such as 30s, 2m or 1h30m")
    return sum(int(number) * _UNITS[unit] for number, unit in parts)


@dataclasses.dataclass(frozen=True)
class Measured:
    """An interval's measurements: each metric's (canary, stable) value, None where there was
    not enough traffic to measure, and the requests the canary answered."""

    canary_requests: float
    values: Mapping[str, tuple[float | None, float | None]]
    problems: Mapping[str, str] = dataclasses.field(default_factory=dict)  # metric → why unmeasured
    # metric → p of the breach of its thresholds (significance), where a test applies
    p_values: Mapping[str, float | None] = dataclasses.field(default_factory=dict)


QUANTILES = {"latencyP50": 0.5, "latencyP99": 0.99}


def measure(name: str, counters: Counters, other: Counters | None = None) -> float | None:
    """A built-in metric of an interval's increases (`other`: the stable's, for
    predictionShift); None when nothing was served."""
    if name == "accuracy":
        rows = counters.feedback_rows
        return counters.feedback_correct / rows if rows > 0 else None
    if counters.requests <= 0:
        return None
    if name == "errorRate":
        return counters.errors / counters.requests
    if name in QUANTILES:
        return quantile(QUANTILES[name], counters.buckets)
    if name == "predictionShift":
        canary = prediction_counts(counters.predictions)
        stable = prediction_counts(other.predictions) if other is not None else {}
        if not sum(canary.values()) or not sum(stable.values()):
            return None
        keys = sorted(set(canary) | set(stable))
        return psi([stable.get(k, 0.0) for k in keys], [canary.get(k, 0.0) for k in keys])
    raise ValueError(f"{name} is not a built-in metric ({', '.join(BUILTIN_METRICS)})")


def breach_p_value(
    metric: AnalysisMetric,
    canary: Counters,
    stable: Counters,
    value: float,
    stable_value: float | None,
) -> float | None:
    """How likely the thresholds `value` breaks are broken by chance (the smallest p of them);
    None when no test applies."""
    name, found = metric.name, []
    if metric.max_ is not None and value > metric.max_:
        if name == "errorRate":
            found.append(significance.rate_above(canary.errors, canary.requests, metric.max_))
        elif name in QUANTILES:
            found.append(significance.over_latency(canary.buckets, metric.max_, QUANTILES[name]))
        elif name == "predictionShift":
            canary_counts = prediction_counts(canary.predictions)
            found.append(significance.shifted(canary_counts, prediction_counts(stable.predictions)))
    if metric.min_ is not None and value < metric.min_ and name == "accuracy":
        found.append(
            significance.rate_below(canary.feedback_correct, canary.feedback_rows, metric.min_)
        )
    ratio = metric.max_ratio_to_stable
    if ratio is not None and stable_value is not None and value > ratio * stable_value:
        if name == "errorRate":
            found.append(
                significance.rate_above_ratio(
                    canary.errors, canary.requests, stable.errors, stable.requests, ratio
                )
            )
        elif name in QUANTILES:
            found.append(significance.slower(canary.buckets, stable.buckets))
    known = [p for p in found if p is not None]
    return min(known) if known else None


def metrics_of(analysis: Analysis) -> list[AnalysisMetric]:
    return list(analysis.metrics or DEFAULT_ANALYSIS_METRICS)


def min_requests_of(analysis: Analysis) -> int:
    return analysis.min_requests or DEFAULT_MIN_REQUESTS


def interval_of(analysis: Analysis) -> str:
    return analysis.interval or DEFAULT_ANALYSIS_INTERVAL


def measure_counters(analysis: Analysis, canary: Counters, stable: Counters) -> Measured:
    """The built-in provider's measurements from the serving pods' counters; a track that
    answered fewer than minRequests requests is not measured."""
    floor = min_requests_of(analysis)
    values: dict[str, tuple[float | None, float | None]] = {}
    problems: dict[str, str] = {}
    p_values: dict[str, float | None] = {}
    for metric in metrics_of(analysis):
        if metric.query or metric.name not in BUILTIN_METRICS:
            problems[metric.name] = "a query needs provider prometheus"
            continue
        value = measure(metric.name, canary, stable) if canary.requests >= floor else None
        stable_value = (
            measure(metric.name, stable)
            if stable.requests >= floor and metric.name != "predictionShift"
            else None
        )
        values[metric.name] = (value, stable_value)
        if value is not None:
            p_values[metric.name] = breach_p_value(metric, canary, stable, value, stable_value)
    return Measured(canary.requests, values, problems, p_values)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def judge_metric(
    metric: AnalysisMetric,
    value: float | None,
    stable_value: float | None,
    problem: str | None = None,
    p_value: float | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> MetricResult:
    """One metric's result: value, stableValue, threshold (in words) and verdict. A threshold
    broken with `p_value` (how likely by chance) at or above 1 - `confidence` is Inconclusive,
    not a failure."""
    words, failed, decided = [], False, False
    if metric.max_ is not None:
        words.append(f"max {_fmt(metric.max_)}")
        if value is not None:
            decided, failed = True, failed or value > metric.max_
    if metric.min_ is not None:
        words.append(f"min {_fmt(metric.min_)}")
        if value is not None:
            decided, failed = True, failed or value < metric.min_
    ratio = metric.max_ratio_to_stable
    if ratio is not None:
        words.append(f"<= {_fmt(ratio)}x stable")
        if value is not None and stable_value is not None:
            decided, failed = True, failed or value > ratio * stable_value
    verdict = Verdict.FAIL if failed else Verdict.PASS if decided else Verdict.INCONCLUSIVE
    if failed and p_value is not None and p_value >= 1 - confidence:
        verdict = Verdict.INCONCLUSIVE
        problem = problem or (
            f"breaks {', '.join(words)}, but it could be chance (p={p_value:.2g}; a failure "
            f"needs p < {1 - confidence:.2g}, confidence {confidence:g})"
        )
    return MetricResult(
        name=metric.name,
        value=value,
        stable_value=stable_value,
        threshold=", ".join(words),
        verdict=verdict,
        p_value=None if p_value is None else float(f"{p_value:.3g}"),
        message=problem,
    )


def judge(analysis: Analysis, measured: Measured) -> tuple[Verdict, list[MetricResult]]:
    """The interval's verdict and each metric's result. Fail when a metric fails; Pass when none
    fails and at least one was decided; Inconclusive otherwise, and always when the canary
    answered fewer than minRequests requests."""
    results = []
    confidence = analysis.confidence or DEFAULT_CONFIDENCE
    for metric in metrics_of(analysis):
        value, stable_value = measured.values.get(metric.name, (None, None))
        results.append(
            judge_metric(
                metric,
                value,
                stable_value,
                measured.problems.get(metric.name),
                measured.p_values.get(metric.name),
                confidence,
            )
        )
    verdicts = {r.verdict for r in results}
    if measured.canary_requests < min_requests_of(analysis):
        verdict = Verdict.INCONCLUSIVE
    elif Verdict.FAIL in verdicts:
        verdict = Verdict.FAIL
    elif Verdict.PASS in verdicts:
        verdict = Verdict.PASS
    else:
        verdict = Verdict.INCONCLUSIVE
    return verdict, results


def failure_message(results: Sequence[MetricResult]) -> str:
    """The failing metrics, for the Degraded condition: errorRate 0.3 (stable 0) > max 0.05."""
    parts = []
    for result in results:
        if result.verdict != Verdict.FAIL:
            continue
        against = (
            f" (stable {_fmt(result.stable_value)})" if result.stable_value is not None else ""
        )
        value = _fmt(result.value) if result.value is not None else "nan"
        parts.append(f"{result.name} {value}{against} breaks {result.threshold}")
    return "; ".join(parts) or "analysis failed"


def due(canary: CanaryStatus, analysis: Analysis, now: datetime.datetime) -> bool:
    """Whether an interval has passed since the metrics were last read."""
    last = canary.last_analysis_at
    return last is None or (now - last).total_seconds() >= duration_seconds(interval_of(analysis))


def record_verdict(canary: CanaryStatus, analysis: Analysis, measured: Measured) -> CanaryStatus:
    """status.canary with an interval judged: its results, verdict and counts."""
    verdict, results = judge(analysis, measured)
    update: dict[str, object] = {"analysis": results, "verdict": verdict}
    if verdict == Verdict.FAIL:
        update["failed_intervals"] = (canary.failed_intervals or 0) + 1
        update["certain_failure"] = any(
            r.verdict == Verdict.FAIL and r.p_value is not None and r.p_value < 1 - CERTAIN
            for r in results
        )
    elif verdict == Verdict.PASS:
        update["passed_intervals"] = (canary.passed_intervals or 0) + 1
    return canary.model_copy(update=update)


def record(
    canary: CanaryStatus,
    analysis: Analysis,
    readings: Mapping[str, tuple[str, Counters]],
    now: datetime.datetime,
) -> CanaryStatus:
    """status.canary after the built-in provider read every serving pod (`readings`: pod →
    (track, counters)): the interval since the last reading judged, and the new readings kept
    as the next interval's baseline. The first reading is only a baseline."""
    before = {entry.pod: Counters.from_status(entry) for entry in canary.counters or []}
    updated = canary.model_copy(
        update={
            "counters": [c.to_status(pod, track) for pod, (track, c) in sorted(readings.items())],
            "last_analysis_at": now,
        }
    )
    increases: dict[str, list[Counters]] = {"stable": [], "canary": []}
    for pod, (track, counters) in readings.items():
        if pod not in before and track == "canary":
            # A canary pod is new with the rollout: all it counted is this rollout's.
            increases["canary"].append(counters)
        else:
            increases.setdefault(track, []).append(increase(counters, before.get(pod)))
    if canary.last_analysis_at is None and not increases["canary"]:
        return updated  # the stable's first reading is only a baseline
    measured = measure_counters(analysis, total(increases["canary"]), total(increases["stable"]))
    return record_verdict(updated, analysis, measured)
