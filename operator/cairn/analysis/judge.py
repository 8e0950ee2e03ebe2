"""The judge of a canary: per analysis interval, each metric of the canary against its absolute
thresholds and against the stable's value in the same interval; pure.

An interval in which the canary answered fewer than minRequests requests is Inconclusive: it never
fails the canary and never passes it, so a canary that got no traffic is never promoted.
"""

import dataclasses
import datetime
import re
from collections.abc import Mapping, Sequence
from typing import Any

from cairn.analysis.metrics import Counters, increase, quantile, total

Body = dict[str, Any]
PASS, FAIL, INCONCLUSIVE = "Pass", "Fail", "Inconclusive"
DEFAULT_INTERVAL = "10s"
DEFAULT_FAILURE_LIMIT = 2
DEFAULT_MIN_REQUESTS = 20
# Without spec.strategy.canary.analysis.metrics.
DEFAULT_METRICS: tuple[Body, ...] = (
    {"name": "errorRate", "max": 0.05},
    {"name": "latencyP99", "maxRatioToStable": 2.0},
)
BUILTIN = ("errorRate", "latencyP50", "latencyP99")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float:
    """30s, 2m, 1h30m, 500ms → seconds (the API's Duration pattern)."""
    parts = re.findall(r"([0-9]+)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration such as 30s, 2m or 1h30m")
    return sum(int(number) * _UNITS[unit] for number, unit in parts)


def stamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


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
    raise ValueError(f"{name} is not a built-in metric (errorRate, latencyP50, latencyP99)")


def metrics_of(analysis: Body) -> list[Body]:
    return list(analysis.get("metrics") or DEFAULT_METRICS)


def min_requests_of(analysis: Body) -> int:
    return int(analysis.get("minRequests", DEFAULT_MIN_REQUESTS))


def measure_counters(analysis: Body, canary: Counters, stable: Counters) -> Measured:
    """The built-in provider's measurements from the serving pods' counters; a track that
    answered fewer than minRequests requests is not measured."""
    floor = min_requests_of(analysis)
    values: dict[str, tuple[float | None, float | None]] = {}
    problems: dict[str, str] = {}
    for metric in metrics_of(analysis):
        name = metric["name"]
        if metric.get("query") or name not in BUILTIN:
            problems[name] = "a query needs provider prometheus"
            continue
        values[name] = (
            measure(name, canary) if canary.requests >= floor else None,
            measure(name, stable) if stable.requests >= floor else None,
        )
    return Measured(canary.requests, values, problems)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def judge_metric(
    metric: Body, value: float | None, stable_value: float | None, problem: str | None = None
) -> Body:
    """One metric's result: value, stableValue, threshold (in words) and verdict."""
    words, failed, decided = [], False, False
    limit_max, limit_min = metric.get("max"), metric.get("min")
    ratio = metric.get("maxRatioToStable")
    if limit_max is not None:
        words.append(f"max {_fmt(limit_max)}")
        if value is not None:
            decided, failed = True, failed or value > limit_max
    if limit_min is not None:
        words.append(f"min {_fmt(limit_min)}")
        if value is not None:
            decided, failed = True, failed or value < limit_min
    if ratio is not None:
        words.append(f"<= {_fmt(ratio)}x stable")
        if value is not None and stable_value is not None:
            decided, failed = True, failed or value > ratio * stable_value
    verdict = FAIL if failed else PASS if decided else INCONCLUSIVE
    result: Body = {"name": metric["name"], "threshold": ", ".join(words), "verdict": verdict}
    if value is not None:
        result["value"] = value
    if stable_value is not None:
        result["stableValue"] = stable_value
    if problem:
        result["message"] = problem
    return result


def judge(analysis: Body, measured: Measured) -> tuple[str, list[Body]]:
    """The interval's verdict and each metric's result. Fail when a metric fails; Pass when none
    fails and at least one was decided; Inconclusive otherwise, and always when the canary
    answered fewer than minRequests requests."""
    results = []
    for metric in metrics_of(analysis):
        name = metric["name"]
        value, stable_value = measured.values.get(name, (None, None))
        results.append(judge_metric(metric, value, stable_value, measured.problems.get(name)))
    verdicts = {r["verdict"] for r in results}
    if measured.canary_requests < min_requests_of(analysis):
        verdict = INCONCLUSIVE
    elif FAIL in verdicts:
        verdict = FAIL
    elif PASS in verdicts:
        verdict = PASS
    else:
        verdict = INCONCLUSIVE
    return verdict, results


def failure_message(results: Sequence[Body]) -> str:
    """The failing metrics, for the Degraded condition: errorRate 0.3 (stable 0) > max 0.05."""
    parts = []
    for result in results:
        if result["verdict"] != FAIL:
            continue
        stable = result.get("stableValue")
        against = f" (stable {_fmt(stable)})" if stable is not None else ""
        parts.append(
            f"{result['name']} {_fmt(result.get('value', float('nan')))}{against} "
            f"breaks {result['threshold']}"
        )
    return "; ".join(parts) or "analysis failed"


def due(canary_status: Body, analysis: Body, now: datetime.datetime) -> bool:
    """Whether an interval has passed since the metrics were last read."""
    last = parse_time(canary_status.get("lastAnalysisAt"))
    interval = duration_seconds(analysis.get("interval", DEFAULT_INTERVAL))
    return last is None or (now - last).total_seconds() >= interval


def record_verdict(canary_status: Body, analysis: Body, measured: Measured) -> Body:
    """status.canary with an interval judged: its results, verdict and counts."""
    verdict, results = judge(analysis, measured)
    updated = {**canary_status, "analysis": results, "verdict": verdict}
    if verdict == FAIL:
        updated["failedIntervals"] = int(canary_status.get("failedIntervals") or 0) + 1
    elif verdict == PASS:
        updated["passedIntervals"] = int(canary_status.get("passedIntervals") or 0) + 1
    return updated


def record(
    canary_status: Body,
    analysis: Body,
    readings: Mapping[str, tuple[str, Counters]],
    now: datetime.datetime,
) -> Body:
    """status.canary after the built-in provider read every serving pod (`readings`: pod →
    (track, counters)): the interval since the last reading judged, and the new readings kept
    as the next interval's baseline. The first reading is only a baseline."""
    updated = dict(canary_status)
    before = {
        entry["pod"]: Counters.from_status(entry) for entry in canary_status.get("counters") or []
    }
    updated["counters"] = [c.to_status(pod, track) for pod, (track, c) in sorted(readings.items())]
    updated["lastAnalysisAt"] = stamp(now)
    if canary_status.get("lastAnalysisAt") is None:
        return updated
    increases: dict[str, list[Counters]] = {"stable": [], "canary": []}
    for pod, (track, counters) in readings.items():
        increases.setdefault(track, []).append(increase(counters, before.get(pod)))
    measured = measure_counters(analysis, total(increases["canary"]), total(increases["stable"]))
    return record_verdict(updated, analysis, measured)
