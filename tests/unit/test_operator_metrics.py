"""The operator's metric helpers, the gauge kept from the watch cache, and the metrics server."""

import asyncio
import datetime
from typing import Any

import kopf
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from cairn.api import TrainingRunPhase as Phase
from cairn.api import TrainingRunReason as Reason
from cairn.controllers import settings
from cairn.controllers.trainingrun import handlers as trainingrun_handlers
from cairn.controllers.trainingrun.observe import Observation
from cairn.controllers.trainingrun.transitions import training_seconds
from cairn.kube import cache
from cairn.observability import logs, metrics, server
from cairn.observability.reconciles import reconciling
from tests.support.operator import free_local_port


def sample(name: str, **labels: str) -> float:
    found = metrics.REGISTRY.get_sample_value(name, labels)
    return found or 0.0


class Boom(Exception):
    pass


def test_reconciling_counts_successes_and_times_them() -> None:
    before = sample("cairn_operator_reconciles_total", kind="Model", result="success")
    timed = sample("cairn_operator_reconcile_duration_seconds_count", kind="Model")

    with reconciling("Model", "ml", "iris") as reconcile_id:
        current = logs.current()
        assert current is not None
        assert (current.kind, current.namespace, current.name) == ("Model", "ml", "iris")
        assert current.id == reconcile_id and len(reconcile_id) == 8

    assert logs.current() is None
    assert sample("cairn_operator_reconciles_total", kind="Model", result="success") == before + 1
    assert sample("cairn_operator_reconcile_duration_seconds_count", kind="Model") == timed + 1


def test_reconciling_counts_an_exception_as_an_error_and_lets_it_through() -> None:
    errors = sample("cairn_operator_reconciles_total", kind="TrainingRun", result="error")

    with pytest.raises(Boom), reconciling("TrainingRun", "ml", "iris-1"):
        raise Boom

    assert sample("cairn_operator_reconciles_total", kind="TrainingRun", result="error") == (
        errors + 1
    )


def test_a_reconcile_cut_short_by_the_operator_stopping_is_not_an_error() -> None:
    counted = {
        result: sample("cairn_operator_reconciles_total", kind="Model", result=result)
        for result in ("success", "error")
    }

    with pytest.raises(cache.NotInstalled), reconciling("Model", "ml", "iris"):
        raise cache.NotInstalled("the caches are gone: the operator is stopping")

    for result, before in counted.items():
        assert sample("cairn_operator_reconciles_total", kind="Model", result=result) == before


def test_each_reconcile_gets_its_own_id() -> None:
    with (
        reconciling("Model", "ml", "a") as first,
        reconciling("ModelVersion", "ml", "a-v1") as inner,
    ):
        assert first != inner
        assert logs.current() is not None and logs.current().name == "a-v1"  # type: ignore[union-attr]
    assert logs.current() is None


def test_event_helpers_count_by_their_label() -> None:
    trained = sample("cairn_operator_training_duration_seconds_count", result="failed")
    versions = sample("cairn_operator_model_versions_registered_total", namespace="team-a")
    rollouts = sample("cairn_operator_rollouts_total", outcome="rolled_back")
    verdicts = sample("cairn_operator_analysis_verdicts_total", verdict="Inconclusive")

    metrics.training_finished("failed", 42.0)
    metrics.version_registered("team-a")
    metrics.rollout_finished("rolled_back", 90.0)
    metrics.analysis_judged("Inconclusive")

    assert sample("cairn_operator_training_duration_seconds_count", result="failed") == trained + 1
    assert sample("cairn_operator_model_versions_registered_total", namespace="team-a") == (
        versions + 1
    )
    assert sample("cairn_operator_rollouts_total", outcome="rolled_back") == rollouts + 1
    assert sample(
        "cairn_operator_rollout_duration_seconds_bucket", outcome="rolled_back", le="120.0"
    )
    assert sample("cairn_operator_analysis_verdicts_total", verdict="Inconclusive") == verdicts + 1


def test_a_rollout_of_unknown_duration_is_counted_not_timed() -> None:
    rollouts = sample("cairn_operator_rollouts_total", outcome="aborted")
    timed = sample("cairn_operator_rollout_duration_seconds_count", outcome="aborted")

    metrics.rollout_finished("aborted", None)

    assert sample("cairn_operator_rollouts_total", outcome="aborted") == rollouts + 1
    assert sample("cairn_operator_rollout_duration_seconds_count", outcome="aborted") == timed


def test_an_unknown_verdict_is_refused_rather_than_becoming_a_series() -> None:
    with pytest.raises(ValueError, match="'Maybe' is not a verdict"):
        metrics.analysis_judged("Maybe")


def test_known_label_values_exist_at_zero_before_anything_happens() -> None:
    for outcome in ("promoted", "rolled_back", "aborted"):
        assert (
            metrics.REGISTRY.get_sample_value("cairn_operator_rollouts_total", {"outcome": outcome})
            is not None
        )
    for verdict in ("Pass", "Fail", "Inconclusive"):
        labels = {"verdict": verdict}
        assert (
            metrics.REGISTRY.get_sample_value("cairn_operator_analysis_verdicts_total", labels)
            is not None
        )


def test_observed_gauge_reads_its_source_at_scrape_time() -> None:
    gauge = metrics.ObservedGauge("test_things", "Things", ("namespace", "phase"))
    assert [f.samples for f in gauge.collect()] == [[]]

    counts: dict[tuple[str, ...], int] = {("ml", "Running"): 2}
    gauge.watch(lambda: counts)
    counts[("ml", "Failed")] = 1
    (family,) = gauge.collect()
    assert {(tuple(s.labels.values()), s.value) for s in family.samples} == {
        (("ml", "Failed"), 1),
        (("ml", "Running"), 2),
    }

    gauge.watch(None)
    assert [f.samples for f in gauge.collect()] == [[]]


def _phases(status: kopf.Status) -> Any:
    indexed: Any = trainingrun_handlers.trainingrun_phases(  # type: ignore[call-arg]
        namespace="ml", status=status
    )
    return asyncio.run(indexed)


def test_trainingrun_phases_index_and_its_counts() -> None:
    assert _phases(kopf.Body({"status": {"phase": "Running"}}).status) == {("ml", "Running"): True}
    # A run the operator has not observed yet has no phase: it is pending.
    assert _phases(kopf.Body({}).status) == {("ml", "Pending"): True}

    # kopf's index maps each key to a store of one value per object.
    index: dict[tuple[str, str], list[bool]] = {
        ("ml", "Running"): [True, True],
        ("ml", "Succeeded"): [True],
        ("team-a", "Failed"): [],
    }
    trainingrun_handlers.count_trainingruns(trainingrun_phases=index)  # type: ignore[call-arg]
    try:
        assert sample("cairn_operator_trainingruns", namespace="ml", phase="Running") == 2
        assert sample("cairn_operator_trainingruns", namespace="ml", phase="Succeeded") == 1
        assert (
            metrics.REGISTRY.get_sample_value(
                "cairn_operator_trainingruns", {"namespace": "team-a", "phase": "Failed"}
            )
            is None
        )
    finally:
        trainingrun_handlers.stop_counting_trainingruns()  # type: ignore[call-arg]
    assert (
        metrics.REGISTRY.get_sample_value(
            "cairn_operator_trainingruns", {"namespace": "ml", "phase": "Running"}
        )
        is None
    )


def _seen(phase: Phase, start: str | None, end: str | None) -> Observation:
    return Observation(phase, Reason.SUCCEEDED, "", start_time=start, completion_time=end)


def test_training_seconds_from_the_jobs_start_to_its_end() -> None:
    now = datetime.datetime(2026, 1, 1, 12, 10, tzinfo=datetime.UTC)
    succeeded = _seen(Phase.SUCCEEDED, "2026-01-01T12:00:00+00:00", "2026-01-01T12:01:30+00:00")
    # A failed Job has no completionTime: it ended when the operator saw it fail.
    failed = _seen(Phase.FAILED, "2026-01-01T12:00:00Z", None)

    assert training_seconds(succeeded, now) == 90
    assert training_seconds(failed, now) == 600
    assert training_seconds(_seen(Phase.FAILED, None, None), now) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:8081", ("0.0.0.0", 8081)),
        ("127.0.0.1:9100", ("127.0.0.1", 9100)),
        ("[::]:8081", ("::", 8081)),
        ("0", None),
        ("", None),
    ],
)
def test_parse_address(text: str, expected: tuple[str, int] | None) -> None:
    assert server.parse_address(text) == expected


@pytest.mark.parametrize("text", ["8081", ":8081", "host:", "host:http", "host:70000"])
def test_bad_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        server.parse_address(text)


def test_metrics_address_from_memo_then_environment_then_default() -> None:
    memo = kopf.Memo(metrics_addr="127.0.0.1:1")
    env = {"CAIRN_METRICS_ADDR": "127.0.0.1:2"}

    assert settings.metrics_address(memo, env) == "127.0.0.1:1"
    assert settings.metrics_address(kopf.Memo(), env) == "127.0.0.1:2"
    assert settings.metrics_address(kopf.Memo(), {}) == "0.0.0.0:8081"


def test_server_serves_the_registry_and_stops() -> None:
    assert server.start("0") is None
    address = f"127.0.0.1:{free_local_port()}"
    served = server.start(address)
    assert served is not None
    try:
        assert served.url == f"http://{address}/metrics"
        with requests.Session() as session:
            session.trust_env = False
            response = session.get(served.url, timeout=5)
        assert response.status_code == 200
        families = {f.name for f in text_string_to_metric_families(response.text)}
        assert {
            "cairn_operator_reconciles",
            "cairn_operator_build_info",
            "process_cpu_seconds",
        } <= (families)
    finally:
        served.stop()
    with pytest.raises(requests.ConnectionError), requests.Session() as session:
        session.trust_env = False
        session.get(served.url, timeout=5)


def test_serve_metrics_refuses_to_start_on_a_busy_port() -> None:
    address = f"127.0.0.1:{free_local_port()}"
    first = server.start(address)
    assert first is not None
    memo: Any = kopf.Memo(metrics_addr=address)
    try:
        with pytest.raises(kopf.PermanentError, match=f"cannot serve metrics at {address}"):
            settings.serve_metrics(memo=memo, logger=None)  # type: ignore[call-arg, arg-type]
    finally:
        first.stop()
