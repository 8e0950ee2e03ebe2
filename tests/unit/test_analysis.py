"""Canary analysis (cairn.analysis): reading cairn-serve's /metrics, increases between readings,
latency quantiles from the histogram, and the judge — no traffic is Inconclusive, never a pass."""

import datetime
from typing import Any

import pytest
from prometheus_client import generate_latest

from cairn.analysis import judge, metrics
from cairn.analysis.metrics import Counters
from cairn.api.modeldeployment import Analysis, CanaryStatus
from cairn.serving.metrics import ServingMetrics

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def page(observations: list[tuple[int, float]]) -> str:
    """A real cairn-serve /metrics page after the given (code, seconds) requests."""
    served = ServingMetrics("iris", "2", ["a", "b"], [0, 1])
    for code, seconds in observations:
        served.observe_request("v2", code, seconds)
    return generate_latest(served.registry).decode()


def test_parse_reads_requests_5xx_errors_and_latency_buckets() -> None:
    counters = metrics.parse(page([(200, 0.003)] * 8 + [(400, 0.001), (503, 0.2)]))

    assert counters.requests == 10
    assert counters.errors == 1  # a 4xx is the client's mistake, not the server's
    assert counters.buckets["+Inf"] == 10
    assert counters.buckets["0.005"] == 9
    assert counters.buckets["0.1"] == 9 and counters.buckets["0.25"] == 10


def test_increase_is_a_baseline_first_and_survives_a_restart() -> None:
    before = Counters(10, 1, {"0.1": 8, "+Inf": 10})
    now = Counters(30, 2, {"0.1": 25, "+Inf": 30})

    assert metrics.increase(now, None) == Counters()
    assert metrics.increase(now, before) == Counters(20, 1, {"0.1": 17, "+Inf": 20})
    restarted = Counters(5, 0, {"0.1": 5, "+Inf": 5})
    assert metrics.increase(restarted, before) == restarted


def test_quantiles_interpolate_inside_buckets() -> None:
    buckets = {"0.1": 50.0, "0.2": 100.0, "+Inf": 100.0}
    assert metrics.quantile(0.5, buckets) == pytest.approx(0.1)
    assert metrics.quantile(0.75, buckets) == pytest.approx(0.15)
    assert metrics.quantile(0.99, {"0.1": 0.0, "+Inf": 10.0}) == pytest.approx(0.1)
    assert metrics.quantile(0.5, {"+Inf": 0.0}) is None


def fast(requests: float, errors: float = 0) -> Counters:
    return Counters(requests, errors, {"0.01": requests, "0.1": requests, "+Inf": requests})


def slow(requests: float) -> Counters:
    return Counters(requests, 0, {"0.01": 0, "0.1": requests, "+Inf": requests})


def judged(
    given: dict[str, object], canary: Counters, stable: Counters
) -> tuple[str, list[dict[str, Any]]]:
    analysis = Analysis.model_validate(given)
    verdict, results = judge.judge(analysis, judge.measure_counters(analysis, canary, stable))
    return verdict, [r.to_dict() for r in results]


SPEC = {
    "minRequests": 20,
    "metrics": [
        {"name": "errorRate", "max": 0.05},
        {"name": "latencyP99", "maxRatioToStable": 2},
    ],
}
ANALYSIS = Analysis.model_validate(SPEC)


def test_no_traffic_is_inconclusive_never_a_pass() -> None:
    verdict, results = judged(SPEC, Counters(), fast(100))
    assert verdict == "Inconclusive"
    assert {r["verdict"] for r in results} == {"Inconclusive"}
    few, _ = judged(SPEC, fast(19), fast(100))
    assert few == "Inconclusive"


def test_thresholds_and_the_comparison_with_the_stable() -> None:
    ok, results = judged(SPEC, fast(100, errors=2), fast(100))
    assert ok == "Pass"
    assert results[0] == {
        "name": "errorRate",
        "value": 0.02,
        "stableValue": 0.0,
        "threshold": "max 0.05",
        "verdict": "Pass",
    }
    bad, results = judged(SPEC, fast(100, errors=20), fast(100))
    assert bad == "Fail" and results[0]["verdict"] == "Fail"
    measured = judge.measure_counters(ANALYSIS, fast(100, errors=20), fast(100))
    failing = judge.judge(ANALYSIS, measured)[1]
    assert "errorRate 0.2 (stable 0) breaks max 0.05" in judge.failure_message(failing)
    slower, results = judged(SPEC, slow(100), fast(100))
    assert slower == "Fail" and results[1]["verdict"] == "Fail"
    assert results[1]["threshold"] == "<= 2x stable"
    # No stable traffic: the comparison cannot be made, the absolute threshold still decides.
    alone, results = judged(SPEC, slow(100), Counters())
    assert alone == "Pass" and results[1]["verdict"] == "Inconclusive"
    # The defaults: errorRate max 0.05 and latencyP99 at most 2x the stable's.
    assert judged({}, fast(100, errors=10), fast(100))[0] == "Fail"


def test_record_keeps_a_baseline_then_counts_intervals() -> None:
    first = judge.record(
        CanaryStatus(version=2),
        ANALYSIS,
        {"c": ("canary", fast(5)), "s": ("stable", fast(5))},
        T0,
    )
    # The stable's first reading is a baseline; the new canary pod's counts are all this
    # rollout's: 5 requests, too few to judge.
    assert first.verdict == "Inconclusive" and first.last_analysis_at == T0
    assert [c.pod for c in first.counters or []] == ["c", "s"]
    later = T0 + datetime.timedelta(seconds=3)
    assert not judge.due(first, Analysis(interval="5s"), later)
    assert judge.due(first, Analysis(interval="3s"), later)

    passed = judge.record(
        first, ANALYSIS, {"c": ("canary", fast(45)), "s": ("stable", fast(105))}, later
    )
    assert passed.verdict == "Pass" and passed.passed_intervals == 1
    failed = judge.record(
        passed, ANALYSIS, {"c": ("canary", fast(85, 20)), "s": ("stable", fast(200))}, later
    )
    assert failed.verdict == "Fail" and failed.failed_intervals == 1
    idle = judge.record(failed, ANALYSIS, {"c": ("canary", fast(85, 20))}, later)
    assert idle.verdict == "Inconclusive"
    assert idle.failed_intervals == 1 and idle.passed_intervals == 1


def test_a_canary_failing_hard_fails_its_first_interval_beyond_doubt() -> None:
    """30% of answers 500 from a new canary: the first reading judges it, and it is certain
    enough to roll back without waiting for failureLimit."""
    first = judge.record(
        CanaryStatus(version=2),
        ANALYSIS,
        {"c": ("canary", fast(60, errors=18)), "s": ("stable", fast(500))},
        T0,
    )
    assert first.verdict == "Fail" and first.failed_intervals == 1
    assert first.certain_failure
    (error_rate, _) = first.analysis or []
    assert error_rate.p_value is not None and error_rate.p_value < 1e-6


def test_a_breach_that_could_be_chance_is_inconclusive_not_a_failure() -> None:
    # 2 errors in 25 requests is 8 %, over max 5 %, but well within chance for a 5 % rate.
    verdict, results = judged(SPEC, fast(25, errors=2), fast(100))
    assert verdict != "Fail" and results[0]["verdict"] == "Inconclusive"
    assert "could be chance" in results[0]["message"]
    assert results[0]["pValue"] > 0.05
    # With a confidence of 0.5 the same breach (p about 0.36) counts.
    loose, results = judged({**SPEC, "confidence": 0.5}, fast(25, errors=2), fast(100))
    assert loose == "Fail" and results[0]["pValue"] == pytest.approx(0.358, abs=0.001)


def test_a_canary_predicting_differently_fails_prediction_shift() -> None:
    spec = {"minRequests": 20, "metrics": [{"name": "predictionShift", "max": 0.2}]}
    stable = Counters(300, 0, {}, {"class:0": 100, "class:1": 100, "class:2": 100})
    same = Counters(150, 0, {}, {"class:0": 48, "class:1": 52, "class:2": 50})
    swapped = Counters(150, 0, {}, {"class:0": 50, "class:1": 0, "class:2": 100})
    assert judged(spec, same, stable)[0] == "Pass"
    verdict, results = judged(spec, swapped, stable)
    assert verdict == "Fail" and results[0]["value"] > 0.2 and results[0]["pValue"] < 1e-6


def test_accuracy_from_feedback_fails_below_its_minimum() -> None:
    spec = {"minRequests": 20, "metrics": [{"name": "accuracy", "min": 0.9}]}
    good = Counters(100, feedback_rows=100, feedback_correct=97)
    bad = Counters(100, feedback_rows=100, feedback_correct=70)
    assert judged(spec, good, fast(100))[0] == "Pass"
    verdict, results = judged(spec, bad, fast(100))
    assert verdict == "Fail" and results[0]["value"] == 0.7
    unlabelled = Counters(100)
    assert judged(spec, unlabelled, fast(100))[0] == "Inconclusive"


def test_durations() -> None:
    assert judge.duration_seconds("1h30m") == 5400
    assert judge.duration_seconds("500ms") == 0.5
    with pytest.raises(ValueError):
        judge.duration_seconds("10")


def test_a_query_metric_needs_the_prometheus_provider_and_never_passes_without() -> None:
    custom = {"minRequests": 1, "metrics": [{"name": "mine", "query": "up", "max": 1}]}
    verdict, results = judged(custom, fast(100), fast(100))
    assert verdict == "Inconclusive" and results[0]["verdict"] == "Inconclusive"
    assert results[0]["message"] == "a query needs provider prometheus"
