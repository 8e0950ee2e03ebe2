"""The prometheus provider's queries and how their answers become an interval's measurements;
pure (the controller sends the queries).

A metric's PromQL is a template: {{namespace}}, {{deployment}} (the ModelDeployment), {{track}}
(stable or canary), {{pods}} (a regex matching exactly that track's pod names) and {{interval}}
(the analysis interval, for range vectors) are replaced, and the query runs once per track. The
built-in metrics have queries of their own, which expect the `namespace` and `pod` target labels
that Prometheus' usual Kubernetes pod scrape configuration (and the Prometheus Operator's
PodMonitor) attach.
"""

import math
from collections.abc import Mapping
from typing import Any

from cairn.analysis.judge import Measured, interval_of, metrics_of, min_requests_of
from cairn.api.modeldeployment import CANARY, STABLE, Analysis

Body = dict[str, Any]
TRACKS = (CANARY, STABLE)
REQUESTS = "requests"  # the key of the canary's request count among the queries
# A Deployment's pods are named <deployment>-<pod-template-hash>-<suffix>, both drawn from the
# alphabet Kubernetes uses for generated names, which has no vowels: so ModelDeployment `a`'s
# stable regex cannot match the pods of a ModelDeployment named `a-stable`.
_GENERATED = "[bcdfghjklmnpqrstvwxz2456789]"
_SELECTOR = 'namespace="{{namespace}}",pod=~"{{pods}}"'
_REQUESTS = f"sum(increase(cairn_serving_requests_total{{{_SELECTOR}}}[{{{{interval}}}}]))"
_ERRORS = (
    f'sum(increase(cairn_serving_requests_total{{{_SELECTOR},code=~"5.."}}[{{{{interval}}}}]))'
)
_LATENCY = (
    "histogram_quantile({q}, sum by (le) "
    f"(increase(cairn_serving_request_duration_seconds_bucket{{{_SELECTOR}}}[{{{{interval}}}}])))"
)
BUILTIN_QUERIES = {
    REQUESTS: _REQUESTS,
    # No 5xx series at all is an error rate of 0, not an empty answer.
    "errorRate": f"({_ERRORS} or vector(0)) / {_REQUESTS}",
    "latencyP50": _LATENCY.replace("{q}", "0.5"),
    "latencyP99": _LATENCY.replace("{q}", "0.99"),
    "accuracy": (
        f"sum(increase(cairn_serving_feedback_correct_rows_total{{{_SELECTOR}}}[{{{{interval}}}}]))"
        f" / sum(increase(cairn_serving_feedback_rows_total{{{_SELECTOR}}}[{{{{interval}}}}]))"
    ),
}
# Built-in metrics no single query can measure: they compare the two tracks' distributions.
BUILTIN_ONLY = {"predictionShift": "predictionShift needs provider builtin"}


def pods_regex(deployment: str, track: str) -> str:
    return f"{deployment}-{track}-{_GENERATED}+-{_GENERATED}{{5}}"


def render(template: str, namespace: str, deployment: str, track: str, interval: str) -> str:
    values = {
        "namespace": namespace,
        "deployment": deployment,
        "track": track,
        "pods": pods_regex(deployment, track),
        "interval": interval,
    }
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    return template


def queries(analysis: Analysis, namespace: str, deployment: str) -> dict[tuple[str, str], str]:
    """(metric, track) → PromQL, for every metric of the analysis and each track's requests."""
    interval = interval_of(analysis)
    wanted = {REQUESTS: BUILTIN_QUERIES[REQUESTS]}
    for metric in metrics_of(analysis):
        if metric.query or metric.name in BUILTIN_QUERIES:
            wanted[metric.name] = metric.query or BUILTIN_QUERIES[metric.name]
    return {
        (name, track): render(template, namespace, deployment, track, interval)
        for name, template in wanted.items()
        for track in TRACKS
    }


class QueryError(Exception):
    """A query that Prometheus refused, or whose answer is not one number."""


def value_of(answer: Body) -> float | None:
    """The one number in a /api/v1/query answer; None when it has no sample or is NaN (0/0:
    no requests in the interval)."""
    if answer.get("status") != "success":
        raise QueryError(f"{answer.get('errorType', 'error')}: {answer.get('error', answer)}")
    data = answer.get("data") or {}
    result = data.get("result")
    samples: list[list[Any]]
    if data.get("resultType") == "scalar":
        samples = [result] if result else []
    elif data.get("resultType") == "vector":
        samples = [series["value"] for series in result or []]
    else:
        raise QueryError(f"the query returned a {data.get('resultType')}, not one number")
    if len(samples) > 1:
        raise QueryError(f"the query returned {len(samples)} series; aggregate it to one, sum()")
    if not samples:
        return None
    value = float(samples[0][1])
    return None if math.isnan(value) else value


def measured(
    analysis: Analysis,
    answers: Mapping[tuple[str, str], float | None],
    problems: Mapping[str, str],
) -> Measured:
    """The interval's measurements from the queries' answers (`problems`: metric → why its
    query failed). A track that answered fewer than minRequests requests is not measured."""
    floor = min_requests_of(analysis)
    counted = {track: (answers.get((REQUESTS, track)) or 0.0) >= floor for track in TRACKS}
    values: dict[str, tuple[float | None, float | None]] = {}
    for metric in metrics_of(analysis):
        canary, stable = (answers.get((metric.name, t)) if counted[t] else None for t in TRACKS)
        values[metric.name] = (canary, stable)
    unmeasured = {
        m.name: BUILTIN_ONLY[m.name]
        for m in metrics_of(analysis)
        if not m.query and m.name in BUILTIN_ONLY
    }
    return Measured(answers.get((REQUESTS, CANARY)) or 0.0, values, {**unmeasured, **problems})
