"""What bench-scale computes from what it observed: which status counts as the operator's first
answer, the operator's requests from the API server's Priority and Fairness counters, and the API
server's own latency from its request-duration histogram. Pure functions (unit-tested)."""

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from cairn.analysis import metrics

# Keys of .status that are not the operator's answer: kopf's own bookkeeping.
NOT_AN_ANSWER = frozenset({"kopf"})
Sample = tuple[str, dict[str, str], float]


def answered(body: Mapping[str, Any]) -> bool:
    """The object carries a status the operator wrote (a phase, conditions, observedGeneration:
    anything but kopf's progress records). Nothing else writes these kinds' status, so the first
    time this holds is the end of the object's first reconcile as a client can see it."""
    status = body.get("status") or {}
    return any(key not in NOT_AN_ANSWER for key in status)


def outcome(body: Mapping[str, Any]) -> str | None:
    """The phase the object reports, with the reason of its condition of that name ("Failed
    (InvalidTrainerSummary)"); None before it reports one."""
    status = body.get("status") or {}
    phase = status.get("phase")
    if not phase:
        return None
    for condition in status.get("conditions") or []:
        true = condition.get("type") == phase and condition.get("status") == "True"
        if true and condition.get("reason"):
            return f"{phase} ({condition['reason']})"
    return str(phase)


def samples(text: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition: (name, labels, value)."""
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def dispatched(scrape: Iterable[Sample], flow_schema: str) -> float:
    """Requests the API server executed under `flow_schema` (apiserver_flowcontrol_
    dispatched_requests_total): every request of the one client that schema matches, watches
    counted once when they start."""
    return sum(
        value
        for name, labels, value in scrape
        if name == "apiserver_flowcontrol_dispatched_requests_total"
        and labels.get("flow_schema") == flow_schema
    )


Buckets = dict[float, float]  # upper bound (le) -> cumulative count


def duration_buckets(
    scrape: Iterable[Sample], groups: frozenset[str], skip_verbs: frozenset[str]
) -> Buckets:
    """apiserver_request_duration_seconds of the requests to resources of API `groups` ("" is
    the core group), summed over resources and verbs, without `skip_verbs` (WATCH, CONNECT: they
    last as long as the client wants)."""
    buckets: Buckets = defaultdict(float)
    for name, labels, value in scrape:
        if (
            name == "apiserver_request_duration_seconds_bucket"
            and labels.get("resource")
            and labels.get("group", "") in groups
            and labels.get("verb") not in skip_verbs
        ):
            buckets[float(labels["le"])] += value
    return dict(buckets)


def difference(after: Buckets, before: Buckets) -> Buckets:
    """The requests between two scrapes. A counter that went down (the API server restarted in
    between) makes the window meaningless: ValueError."""
    delta = {le: count - before.get(le, 0.0) for le, count in after.items()}
    if any(count < 0 for count in delta.values()):
        raise ValueError("the API server's counters went down: it restarted between the scrapes")
    return delta


def histogram_quantile(q: float, buckets: Buckets) -> float:
    """The q-quantile of a cumulative histogram as Prometheus's histogram_quantile() computes
    it (the canary analysis's own function); nan without observations. In the +Inf bucket: the
    largest finite bound (the true value is higher)."""
    found = metrics.quantile(q, {repr(le): count for le, count in buckets.items()})
    return math.nan if found is None else found


def rest_target_rps(objects: int, resync_seconds: float) -> float:
    """The at-rest budget: one request per object per resync interval."""
    return objects / resync_seconds


def summary_line(objects: int, reconcile_p99_s: float, rest_rps: float, peak_mib: float) -> str:
    return (
        f"scale_objects={objects} reconcile_p99_s={reconcile_p99_s:.3f} "
        f"rest_api_rps={rest_rps:.2f} operator_peak_mib={peak_mib:.0f}"
    )
