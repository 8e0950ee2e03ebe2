"""A serving pod's counters from its /metrics text, and what changed between two readings: pure.

cairn-serve exports `cairn_serving_requests_total{model,version,protocol,code}` and the histogram
`cairn_serving_request_duration_seconds{model,version,protocol}`; the judge needs, per pod, the
requests answered, those answered with a 5xx (the server's own failures: a 4xx is the client's
mistake and answers the same on every version) and the latency buckets. gRPC requests
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


def is_error(code: str) -> bool:
    """5xx: what the errorRate metric counts."""
    return code.startswith("5")


@dataclasses.dataclass(frozen=True)
class Counters:
    """Cumulative counters of one pod (or the sum of an interval's increases)."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: Mapping[str, float] = dataclasses.field(default_factory=dict)  # le → cumulative

    def to_status(self, pod: str, track: str) -> PodCounters:
        return PodCounters(
            pod=pod,
            track=track,
            requests=self.requests,
            errors=self.errors,
            buckets=dict(self.buckets),
        )

    @classmethod
    def from_status(cls, entry: PodCounters) -> "Counters":
        return cls(requests=entry.requests, errors=entry.errors, buckets=dict(entry.buckets))


def _le_key(le: str) -> str:
    # Normalise "0.5" / "0.50" / "+Inf" so readings compare bucket by bucket.
    return "+Inf" if math.isinf(float(le)) else repr(float(le))


def parse(text: str) -> Counters:
    """The counters in one /metrics page (summed over models, versions and protocols)."""
    requests = errors = 0.0
    buckets: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == REQUESTS:
            for sample in family.samples:
                if sample.name == f"{REQUESTS}_total":
                    requests += sample.value
                    if is_error(sample.labels.get("code", "")):
                        errors += sample.value
        elif family.name == LATENCY:
            for sample in family.samples:
                if sample.name == f"{LATENCY}_bucket":
                    key = _le_key(sample.labels["le"])
                    buckets[key] = buckets.get(key, 0.0) + sample.value
    return Counters(requests, errors, buckets)


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
        buckets={le: max(0.0, v - before.buckets.get(le, 0.0)) for le, v in now.buckets.items()},
    )


def total(parts: Iterable[Counters]) -> Counters:
    requests = errors = 0.0
    buckets: dict[str, float] = {}
    for part in parts:
        requests += part.requests
        errors += part.errors
        for le, value in part.buckets.items():
            buckets[le] = buckets.get(le, 0.0) + value
    return Counters(requests, errors, buckets)


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
