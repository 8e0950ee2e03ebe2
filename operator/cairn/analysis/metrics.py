"""A serving pod's counters from its /metrics text, and what changed between two readings: pure.

cairn-serve exports `cairn_serving_requests_total{model,version,protocol,code}` and the histogram
`cairn_serving_request_duration_seconds{model,version,protocol}`; the judge needs, per pod, the
requests answered, those answered with a 5xx (the server's own failures: a 4xx is the client's
mistake and answers the same on every version) and the latency buckets; and for the model-aware
metrics the predictions by class (`cairn_serving_predictions_total{class}`, or a regressor's
`cairn_serving_prediction_value` histogram) and the feedback scores
(`cairn_serving_feedback_rows_total`, `cairn_serving_feedback_correct_rows_total`). gRPC requests
(protocol="grpc") carry in `code` the HTTP status of their gRPC status (UNAVAILABLE 503,
INTERNAL 500, INVALID_ARGUMENT 400, ...: cairn.serving.grpc.server), so they count alike.
"""

import dataclasses
import math
from collections.abc import Iterable, Mapping

from prometheus_client.parser import text_string_to_metric_families

from cairn.api.modeldeployment import PodCounters

REQUESTS = "cairn_serving_requests"
LATENCY = "cairn_serving_request_duration_seconds"
PREDICTIONS = "cairn_serving_predictions"
PREDICTED_VALUES = "cairn_serving_prediction_value"
FEEDBACK_ROWS = "cairn_serving_feedback_rows"
FEEDBACK_CORRECT = "cairn_serving_feedback_correct_rows"


def is_error(code: str) -> bool:
    """5xx: what the errorRate metric counts."""
    return code.startswith("5")


@dataclasses.dataclass(frozen=True)
class Counters:
    """Cumulative counters of one pod (or the sum of an interval's increases)."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: Mapping[str, float] = dataclasses.field(default_factory=dict)  # le → cumulative
    # class:<label> → count, or le:<bound> → cumulative count of a regressor's predictions
    predictions: Mapping[str, float] = dataclasses.field(default_factory=dict)
    feedback_rows: float = 0.0
    feedback_correct: float = 0.0

    def to_status(self, pod: str, track: str) -> PodCounters:
        return PodCounters(
            pod=pod,
            track=track,
            requests=self.requests,
            errors=self.errors,
            buckets=dict(self.buckets),
            predictions=dict(self.predictions) or None,
            feedback_rows=self.feedback_rows or None,
            feedback_correct=self.feedback_correct or None,
        )

    @classmethod
    def from_status(cls, entry: PodCounters) -> "Counters":
        return cls(
            requests=entry.requests,
            errors=entry.errors,
            buckets=dict(entry.buckets),
            predictions=dict(entry.predictions or {}),
            feedback_rows=entry.feedback_rows or 0.0,
            feedback_correct=entry.feedback_correct or 0.0,
        )


def _le_key(le: str) -> str:
    # Normalise "0.5" / "0.50" / "+Inf" so readings compare bucket by bucket.
    return "+Inf" if math.isinf(float(le)) else repr(float(le))


def parse(text: str) -> Counters:
    """The counters in one /metrics page (summed over models, versions and protocols)."""
    requests = errors = rows = correct = 0.0
    buckets: dict[str, float] = {}
    predictions: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels = sample.name, sample.labels
            if name == f"{REQUESTS}_total":
                requests += sample.value
                if is_error(labels.get("code", "")):
                    errors += sample.value
            elif name == f"{LATENCY}_bucket":
                key = _le_key(labels["le"])
                buckets[key] = buckets.get(key, 0.0) + sample.value
            elif name == f"{PREDICTIONS}_total":
                key = f"class:{labels.get('class', '')}"
                predictions[key] = predictions.get(key, 0.0) + sample.value
            elif name == f"{PREDICTED_VALUES}_bucket":
                key = f"le:{_le_key(labels['le'])}"
                predictions[key] = predictions.get(key, 0.0) + sample.value
            elif name == f"{FEEDBACK_ROWS}_total":
                rows += sample.value
            elif name == f"{FEEDBACK_CORRECT}_total":
                correct += sample.value
    return Counters(requests, errors, buckets, predictions, rows, correct)


def increase(now: Counters, before: Counters | None) -> Counters:
    """What a pod served between two readings. A pod not read before gives nothing (its first
    reading is only the baseline); counters that went down mean the server restarted, so all it
    counted since is the increase, as Prometheus' increase() has it."""
    if before is None:
        return Counters()
    if now.requests < before.requests:
        return now
    return Counters(
        requests=now.requests - before.requests,
        errors=max(0.0, now.errors - before.errors),
        buckets=_minus(now.buckets, before.buckets),
        predictions=_minus(now.predictions, before.predictions),
        feedback_rows=max(0.0, now.feedback_rows - before.feedback_rows),
        feedback_correct=max(0.0, now.feedback_correct - before.feedback_correct),
    )


def _minus(now: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    return {key: max(0.0, value - before.get(key, 0.0)) for key, value in now.items()}


def _plus(into: dict[str, float], part: Mapping[str, float]) -> None:
    for key, value in part.items():
        into[key] = into.get(key, 0.0) + value


def total(parts: Iterable[Counters]) -> Counters:
    requests = errors = rows = correct = 0.0
    buckets: dict[str, float] = {}
    predictions: dict[str, float] = {}
    for part in parts:
        requests += part.requests
        errors += part.errors
        rows += part.feedback_rows
        correct += part.feedback_correct
        _plus(buckets, part.buckets)
        _plus(predictions, part.predictions)
    return Counters(requests, errors, buckets, predictions, rows, correct)


def prediction_counts(predictions: Mapping[str, float]) -> dict[str, float]:
    """Predictions per bin: each class's count, or a regressor's histogram bin by bin (its
    cumulative buckets differenced)."""
    classes = {k: v for k, v in predictions.items() if k.startswith("class:")}
    if classes:
        return classes
    bounds = sorted((float(k[3:]), v) for k, v in predictions.items() if k.startswith("le:"))
    counts, below = {}, 0.0
    for bound, cumulative in bounds:
        counts[f"le:{bound!r}"] = max(0.0, cumulative - below)
        below = cumulative
    return counts


def quantile(q: float, buckets: Mapping[str, float]) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated linearly inside the bucket it
    falls in, as PromQL's histogram_quantile(); None without observations."""
    bounds = sorted((float(le), count) for le, count in buckets.items())
    if not bounds or bounds[-1][1] <= 0:
        return None
    rank = q * bounds[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in bounds:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # beyond the largest finite bucket: its bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound
