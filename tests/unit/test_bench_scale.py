"""bench-scale's arithmetic: which status is the operator's answer, the operator's requests from
the API server's Priority and Fairness counters, the API server's latency from its histogram, and
fake nodes that only the bench's pods tolerate."""

import math

import pytest
from bench.scale import kwok, measure


def histogram(group: str, resource: str, verb: str, buckets: dict[str, int]) -> str:
    """apiserver_request_duration_seconds of one (group, resource, verb), as the API server
    exposes it."""
    labels = f'group="{group}",resource="{resource}",verb="{verb}"'
    name = "apiserver_request_duration_seconds"
    lines = [f'{name}_bucket{{{labels},le="{le}"}} {count}' for le, count in buckets.items()]
    lines.append(f"{name}_sum{{{labels}}} 1.0")
    lines.append(f"{name}_count{{{labels}}} {buckets['+Inf']}")
    return "\n".join(lines) + "\n"


DISPATCHED = "apiserver_flowcontrol_dispatched_requests_total"
EXPOSITION = (
    f"# TYPE {DISPATCHED} counter\n"
    f'{DISPATCHED}{{flow_schema="exempt",priority_level="exempt"}} 729\n'
    f'{DISPATCHED}{{flow_schema="cairn-operator-ab12cd",priority_level="exempt"}} 42\n'
    "# TYPE apiserver_request_duration_seconds histogram\n"
    + histogram("cairn.dev", "modelversions", "POST", {"0.1": 8, "1": 10, "+Inf": 10})
    + histogram("cairn.dev", "modelversions", "WATCH", {"0.1": 0, "1": 0, "+Inf": 5})
    + histogram("storage.k8s.io", "csinodes", "GET", {"0.1": 0, "1": 0, "+Inf": 3})
)


def test_a_status_of_kopfs_own_records_is_not_the_operators_answer() -> None:
    assert not measure.answered({"metadata": {"name": "m"}})
    assert not measure.answered({"status": {}})
    assert not measure.answered({"status": {"kopf": {"progress": {}}}})
    assert measure.answered({"status": {"kopf": {}, "conditions": []}})
    assert measure.answered({"status": {"observedGeneration": 1}})


def test_outcome_is_the_phase_with_the_reason_of_its_condition() -> None:
    failed = {
        "status": {
            "phase": "Failed",
            "conditions": [
                {"type": "Running", "status": "False", "reason": "Finished"},
                {"type": "Failed", "status": "True", "reason": "InvalidTrainerSummary"},
            ],
        }
    }
    assert measure.outcome(failed) == "Failed (InvalidTrainerSummary)"
    assert measure.outcome({"status": {"phase": "Running", "conditions": []}}) == "Running"
    assert measure.outcome({"status": {"conditions": []}}) is None


def test_the_operators_requests_are_those_of_its_flow_schema_only() -> None:
    scrape = measure.samples(EXPOSITION)
    assert measure.dispatched(scrape, "cairn-operator-ab12cd") == 42
    assert measure.dispatched(scrape, "cairn-operator-other") == 0


def test_request_latency_leaves_out_watches_and_other_groups() -> None:
    scrape = measure.samples(EXPOSITION)
    buckets = measure.duration_buckets(scrape, frozenset({"cairn.dev"}), frozenset({"WATCH"}))
    assert buckets == {0.1: 8, 1.0: 10, math.inf: 10}


def test_a_window_is_the_difference_of_two_scrapes_and_a_restart_voids_it() -> None:
    before = {0.1: 8.0, 1.0: 10.0, math.inf: 10.0}
    after = {0.1: 18.0, 1.0: 30.0, math.inf: 31.0}
    assert measure.difference(after, before) == {0.1: 10.0, 1.0: 20.0, math.inf: 21.0}
    with pytest.raises(ValueError, match="restarted"):
        measure.difference(before, after)


def test_histogram_quantile_interpolates_inside_the_bucket_as_prometheus_does() -> None:
    buckets = {0.1: 50.0, 1.0: 100.0, math.inf: 100.0}
    assert measure.histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    # Rank 75 is half-way through the (0.1, 1] bucket.
    assert measure.histogram_quantile(0.75, buckets) == pytest.approx(0.55)
    assert measure.histogram_quantile(0.25, buckets) == pytest.approx(0.05)


def test_histogram_quantile_in_the_open_bucket_is_the_largest_bound_and_empty_is_nan() -> None:
    assert measure.histogram_quantile(0.99, {0.1: 50.0, 1.0: 90.0, math.inf: 100.0}) == 1.0
    assert math.isnan(measure.histogram_quantile(0.5, {0.1: 0.0, math.inf: 0.0}))
    assert math.isnan(measure.histogram_quantile(0.5, {}))


def test_the_rest_target_is_one_request_per_object_per_resync() -> None:
    assert measure.rest_target_rps(12400, 30) == pytest.approx(413.33, abs=0.01)


def test_the_last_line_has_the_four_numbers_scripts_read() -> None:
    line = measure.summary_line(12400, 3.21234, 12.345, 512.4)
    assert line == (
        "scale_objects=12400 reconcile_p99_s=3.212 rest_api_rps=12.35 operator_peak_mib=512"
    )


def test_only_the_bench_pods_tolerate_its_fake_nodes() -> None:
    node = kwok.node_body("ab12cd", 7)
    (taint,) = node["spec"]["taints"]
    assert taint["effect"] == "NoSchedule"
    toleration = kwok.toleration()
    assert (toleration["key"], toleration["value"], toleration["effect"]) == (
        taint["key"],
        taint["value"],
        taint["effect"],
    )
    assert toleration["operator"] == "Equal"
    # The pods select this bench's nodes, the nodes are what kwok is told to manage.
    labels = node["metadata"]["labels"]
    assert kwok.selector("ab12cd").items() <= labels.items()
    assert node["metadata"]["name"] == "kwok-ab12cd-007"
