"""The prometheus provider's queries and answers (cairn.analysis.promql)."""

import re

import pytest

from cairn.analysis import judge, promql
from cairn.api.modeldeployment import Analysis

ANALYSIS = Analysis.model_validate(
    {
        "interval": "30s",
        "minRequests": 20,
        "provider": "prometheus",
        "prometheus": {"address": "http://prometheus:9090"},
        "metrics": [
            {"name": "errorRate", "max": 0.05},
            {"name": "p95", "query": 'my_p95{pod=~"{{pods}}",ns="{{namespace}}"}', "max": 0.2},
        ],
    }
)


def judged(measured: judge.Measured) -> tuple[str, list[dict[str, object]]]:
    verdict, results = judge.judge(ANALYSIS, measured)
    return verdict, [r.to_dict() for r in results]


def vector(*values: str) -> dict[str, object]:
    result = [{"metric": {}, "value": [1.0, v]} for v in values]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def test_every_metric_and_the_request_counts_are_asked_for_both_tracks() -> None:
    asked = promql.queries(ANALYSIS, "team", "iris")

    assert set(asked) == {
        (name, track) for name in ("requests", "errorRate", "p95") for track in ("canary", "stable")
    }
    assert asked[("p95", "canary")] == (
        f'my_p95{{pod=~"{promql.pods_regex("iris", "canary")}",ns="team"}}'
    )
    errors = asked[("errorRate", "stable")]
    assert 'code=~"5.."' in errors and "[30s]" in errors and 'namespace="team"' in errors
    assert "{{" not in "".join(asked.values())


def test_a_tracks_pod_regex_matches_its_pods_only() -> None:
    stable = re.compile(promql.pods_regex("a", "stable"))
    assert stable.fullmatch("a-stable-7d9c8b6f5d-x2v4k")
    assert not stable.fullmatch("a-canary-7d9c8b6f5d-x2v4k")
    # ModelDeployment `a-stable`'s pods: generated names have no vowels, "stable" has two.
    assert not stable.fullmatch("a-stable-stable-7d9c8b6f5d-x2v4k")
    assert not stable.fullmatch("a-stable-canary-x2v4k")


def test_answers_are_one_number_or_nothing() -> None:
    assert promql.value_of(vector("0.25")) == 0.25
    assert promql.value_of(vector()) is None
    assert promql.value_of(vector("NaN")) is None  # 0/0: no requests in the interval
    scalar = {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}}
    assert promql.value_of(scalar) == 3.0
    with pytest.raises(promql.QueryError, match="2 series; aggregate"):
        promql.value_of(vector("1", "2"))
    with pytest.raises(promql.QueryError, match="bad_data: parse error"):
        promql.value_of({"status": "error", "errorType": "bad_data", "error": "parse error"})


def test_measurements_judge_like_the_builtin_provider() -> None:
    answers: dict[tuple[str, str], float | None] = {
        ("requests", "canary"): 50.0,
        ("requests", "stable"): 200.0,
        ("errorRate", "canary"): 0.2,
        ("errorRate", "stable"): 0.0,
        ("p95", "canary"): 0.1,
        ("p95", "stable"): 0.1,
    }
    verdict, results = judged(promql.measured(ANALYSIS, answers, {}))
    assert verdict == "Fail"
    assert results[0] == {
        "name": "errorRate",
        "value": 0.2,
        "stableValue": 0.0,
        "threshold": "max 0.05",
        "verdict": "Fail",
    }
    assert results[1]["verdict"] == "Pass"

    idle = {**answers, ("requests", "canary"): 3.0}
    verdict, results = judged(promql.measured(ANALYSIS, idle, {}))
    assert verdict == "Inconclusive" and "value" not in results[0]

    broken = promql.measured(ANALYSIS, {("requests", "canary"): 50.0}, {"p95": "bad_data: x"})
    verdict, results = judged(broken)
    assert verdict == "Inconclusive"
    assert results[1] == {
        "name": "p95",
        "threshold": "max 0.2",
        "verdict": "Inconclusive",
        "message": "bad_data: x",
    }
