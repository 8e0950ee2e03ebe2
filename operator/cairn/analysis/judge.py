"""The judge of a canary: per analysis interval, each metric of the canary against its absolute
thresholds and against the stable's value in the same interval; pure.

An interval in which the canary answered fewer than minRequests requests is Inconclusive: it never
fails the canary and never passes it, so a canary that got no traffic is never promoted.
"""

import dataclasses
import datetime
import re
from collections.abc import Mapping, Sequence

from cairn.analysis.metrics import Counters, increase, quantile, total
from cairn.api.modeldeployment import (
    BUILTIN_METRICS,
    DEFAULT_ANALYSIS_INTERVAL,
    DEFAULT_ANALYSIS_METRICS,
    DEFAULT_MIN_REQUESTS,
    Analysis,
    AnalysisMetric,
    CanaryStatus,
    MetricResult,
    Verdict,
)

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


def measure(name: str, counters: Counters) -> float | None:
    """A built-in metric of an interval's increases; None when nothing was served."""
    if counters.requests <= 0:
        return None
    if name == "errorRate":
        return counters.errors / counters.requests
    if name == "latencyP50":
        return quantile(0.5, counters.buckets)
    if name == "latencyP99":
        return quantile(0.99, counters.buckets)
    raise ValueError(f"{name} is not a built-in metric ({', '.join(BUILTIN_METRICS)})")


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
    for metric in metrics_of(analysis):
        if metric.query or metric.name not in BUILTIN_METRICS:
            problems[metric.name] = "a query needs provider prometheus"
            continue
        values[metric.name] = (
            measure(metric.name, canary) if canary.requests >= floor else None,
            measure(metric.name, stable) if stable.requests >= floor else None,
        )
    return Measured(canary.requests, values, problems)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def judge_metric(
    metric: AnalysisMetric,
    value: float | None,
    stable_value: float | None,
    problem: str | None = None,
) -> MetricResult:
    """One metric's result: value, stableValue, threshold (in words) and verdict."""
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
    return MetricResult(
        name=metric.name,
        value=value,
        stable_value=stable_value,
        threshold=", ".join(words),
        verdict=verdict,
        message=problem,
    )


def judge(analysis: Analysis, measured: Measured) -> tuple[Verdict, list[MetricResult]]:
    """The interval's verdict and each metric's result. Fail when a metric fails; Pass when none
    fails and at least one was decided; Inconclusive otherwise, and always when the canary
    answered fewer than minRequests requests."""
    results = []
    for metric in metrics_of(analysis):
        value, stable_value = measured.values.get(metric.name, (None, None))
        results.append(
            judge_metric(metric, value, stable_value, measured.problems.get(metric.name))
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
    if canary.last_analysis_at is None:
        return updated
    increases: dict[str, list[Counters]] = {"stable": [], "canary": []}
    for pod, (track, counters) in readings.items():
        increases.setdefault(track, []).append(increase(counters, before.get(pod)))
    measured = measure_counters(analysis, total(increases["canary"]), total(increases["stable"]))
    return record_verdict(updated, analysis, measured)
