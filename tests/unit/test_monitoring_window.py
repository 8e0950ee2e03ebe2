"""Monitoring windows from the counters of several serving pods: restarts, new pods, too little
traffic, drift and live performance; and the conditions they give a ModelDeployment."""

import datetime
import json
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_wine  # type: ignore[import-untyped]
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

from cairn.api import ModelDeployment
from cairn.api.modeldeployment import ModelDeploymentStatus
from cairn.api.monitoring import Monitoring, MonitoringStatus, MonitoringVerdict
from cairn.controllers.deployment import monitor, readings
from cairn.kube import workloads
from cairn.monitoring.profile import Profile, build
from cairn.monitoring.window import Reading, rebase, totals, verdict

UTC = datetime.UTC
START = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
X, Y = load_wine(return_X_y=True)
TRAIN, TEST, Y_TRAIN, Y_TEST = train_test_split(X, Y, test_size=0.4, random_state=0)
NAMES = [f"f{i}" for i in range(13)]
BASELINE = build(TRAIN, NAMES, predictions=Y_TRAIN, classes=[0, 1, 2])


def reading(rows: np.ndarray, *how: Any, **named: Any) -> Reading:
    """What a server that answered `rows` (predicting the first class) reports: `answer`,
    parsed."""
    return Reading.parse(answer(rows, *how, **named))


def answer(
    rows: np.ndarray,
    instance: str = "a",
    started: datetime.datetime = START - datetime.timedelta(hours=1),
    feedback: tuple[int, int, float] = (0, 0, 0.0),
    baseline: Profile | None = BASELINE,
) -> dict[str, Any]:
    """The body of a server's /v2/models/<model>/monitoring after it answered `rows`."""
    features = []
    for index, (_, histogram) in enumerate(BASELINE.features):
        counts, missing = (
            histogram.count(rows[:, index])
            if len(rows)
            else (
                np.zeros(histogram.bins, dtype=np.int64),
                0,
            )
        )
        features.append({"counts": counts.tolist(), "missing": missing})
    predicted = np.zeros(4, dtype=np.int64)
    predicted[0] = len(rows)
    raw: dict[str, Any] = {
        "instance": instance,
        "startedAt": started.isoformat(),
        "baseline": baseline.to_dict() if baseline else None,
        "rows": len(rows),
        "features": features,
        "prediction": {"counts": predicted[:4].tolist(), "missing": 0},
        "feedback": {
            "matchedRows": feedback[0],
            "correctRows": feedback[1],
            "absoluteError": feedback[2],
        },
    }
    return raw


def test_a_window_is_what_each_pod_counted_since_it_began() -> None:
    early, late = TEST[:20], TEST[:50]
    at_start = {"a": reading(early), "c-old": reading(early, "c")}
    now = {
        "a": reading(late),  # the same counters, grown by 30 rows
        "b": reading(TEST[:7], "b", started=START + datetime.timedelta(seconds=5)),  # new pod
        "c-old": reading(TEST[:3], "c2", started=START + datetime.timedelta(seconds=9)),  # restart
        "d": reading(TEST[:40], "d"),  # first seen now, started long before: not this window's
    }
    counted = totals(at_start, now, START)
    assert counted is not None
    assert counted.rows == 30 + 7 + 3
    first = BASELINE.features[0][1]
    parts = [first.count(rows[:, 0])[0] for rows in (TEST[20:50], TEST[:7], TEST[:3])]
    expected = np.sum(parts, axis=0)
    assert counted.features[0][:-1].tolist() == expected.tolist()


def test_a_pod_first_seen_mid_window_counts_from_then_on() -> None:
    """A window whose first read found no pod (the proxy failed, say) must not wait forever: the
    pod, started long before, counts from the reading in which it first appears."""
    seen = {"a": reading(TEST[:20])}
    started_with = rebase({}, seen, START)
    assert started_with == seen
    assert totals(started_with, seen, START) is not None
    counted = totals(started_with, {"a": reading(TEST[:50])}, START)
    assert counted is not None and counted.rows == 30
    # A pod that restarted before the window began is taken again from its new counters.
    restarted = {"a": reading(TEST[:5], "a2", started=START - datetime.timedelta(seconds=1))}
    assert rebase(seen, restarted, START) == restarted
    # One that started within the window is not: all it counted belongs to the window.
    new = {"b": reading(TEST[:5], "b", started=START + datetime.timedelta(seconds=1))}
    assert rebase(seen, new, START) == seen


def test_a_pod_not_ready_at_the_windows_start_counts_everything_it_answered() -> None:
    """A pod still starting when the window began (its counters started before, while its model
    loaded) was sent nothing by its Service until it was ready: all its rows are this window's,
    not a baseline (CI: 178 rows and their labels, sent as the pod became ready, never counted)."""
    answered = {"a": reading(TEST[:30], feedback=(30, 28, 0.0))}
    starting = frozenset({"a"})
    assert rebase({}, answered, START, starting) == {}
    counted = totals({}, answered, START, starting)
    assert counted is not None and counted.rows == 30 and counted.feedback[0] == 30
    # Read at a window's start, it counts from that reading on like any other pod.
    later = {"a": reading(TEST[:50])}
    counted = totals(answered, later, START, starting)
    assert counted is not None and counted.rows == 20


def test_the_monitor_counts_a_pod_that_became_ready_within_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    watched = mdep({"window": {"duration": "1m", "minRows": 10}})
    ready = [False]
    one_pod_answering(monkeypatch, [json.dumps(answer(TEST[:30]))], ready)
    try:
        first = monitor.observe(watched, 1, START)
        assert first is not None and first.verdict == MonitoringVerdict.COLLECTING
        ready[0] = True
        collecting = with_status(watched, first)
        judged = monitor.observe(collecting, 1, START + datetime.timedelta(seconds=61))
        assert judged is not None and judged.verdict == MonitoringVerdict.NO_DRIFT
        assert judged.rows == 30
    finally:
        monitor.forget("ml", "wine")


def test_a_pod_unready_at_a_windows_end_is_counted_from_its_last_reading_not_from_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ready, then unready at a window's end (an overloaded probe), then ready again: the next
    window counts what it answered since the last reading, never again what earlier windows
    counted, nor loses what it answered while unread."""
    watched = mdep({"window": {"duration": "1m", "minRows": 10}})
    ready = [True]
    # Read at 20 rows; unread at 35; read again at 50.
    one_pod_answering(monkeypatch, [json.dumps(answer(TEST[:n])) for n in (20, 50)], ready)
    try:
        status = monitor.observe(watched, 1, START)
        ready[0] = False
        for seconds in (61, 122):  # ends without it (no rows: waits), then one more window
            status = monitor.observe(
                with_status(watched, status), 1, START + datetime.timedelta(seconds=seconds)
            )
        ready[0] = True
        judged = monitor.observe(
            with_status(watched, status), 1, START + datetime.timedelta(seconds=700)
        )
        assert judged is not None and judged.rows == 30  # 20 to 50: each row once
    finally:
        monitor.forget("ml", "wine")


def monitoring(**window: Any) -> Monitoring:
    return Monitoring.model_validate(
        {"window": {"duration": "1m", "minRows": 40, **window}, "performance": {"min": 0.9}}
    )


def test_a_window_waits_for_its_duration_and_its_rows_then_says_not_enough_data() -> None:
    settings = monitoring()
    few = totals({}, {"a": reading(TEST[:10], started=START)}, START)
    assert few is not None
    assert verdict(settings, BASELINE, few, 1, START, START, 0.5) is None  # too early
    assert verdict(settings, BASELINE, few, 1, START, START, 3) is None  # waits for rows
    late = verdict(settings, BASELINE, few, 1, START, START, 10)
    assert late is not None and late.verdict == MonitoringVerdict.NOT_ENOUGH_DATA
    assert "10 rows" in (late.message or "") and "minRows" in (late.message or "")


def test_shifted_wine_drifts_and_unshifted_does_not() -> None:
    settings = monitoring()
    steady = totals({}, {"a": reading(TEST, started=START)}, START)
    assert steady is not None
    calm = verdict(settings, BASELINE, steady, 1, START, START, 1)
    assert calm is not None and calm.verdict == MonitoringVerdict.NO_DRIFT
    assert calm.drifted_features == 0 and calm.features_compared == 13
    shifted = TEST.copy()
    shifted[:, :7] *= 1.5
    moved = totals({}, {"a": reading(shifted, started=START)}, START)
    assert moved is not None
    found = verdict(settings, BASELINE, moved, 1, START, START, 1)
    assert found is not None and found.verdict == MonitoringVerdict.DRIFTED
    assert found.features is not None
    assert {f.name for f in found.features if f.drifted} == set(NAMES[:7])
    assert [f.drifted for f in found.features] == sorted(
        (f.drifted for f in found.features), reverse=True
    )  # drifted ones first
    assert "7 of 13 features drifted" in (found.message or "")
    assert found.prediction is not None and found.prediction.drifted  # all answered class 0


def test_live_accuracy_comes_from_the_feedback_counted_in_the_window() -> None:
    settings = monitoring()
    at_start = {"a": reading(TEST[:0], feedback=(100, 95, 0.0))}
    now = {"a": reading(TEST, feedback=(180, 155, 0.0))}
    counted = totals(at_start, now, START)
    assert counted is not None
    judged = verdict(settings, BASELINE, counted, 1, START, START, 1)
    assert judged is not None and judged.performance is not None
    assert judged.performance.rows == 80 and judged.performance.value == pytest.approx(60 / 80)


def mdep(monitoring_spec: dict[str, Any] | None) -> ModelDeployment:
    spec: dict[str, Any] = {"model": "wine", "alias": "production"}
    if monitoring_spec is not None:
        spec["monitoring"] = monitoring_spec
    return ModelDeployment.model_validate(
        {"metadata": {"name": "wine", "namespace": "ml", "generation": 2}, "spec": spec}
    )


def test_conditions_follow_the_verdicts_and_go_with_spec_monitoring() -> None:
    watched = mdep({"window": {"minRows": 40}, "performance": {"min": 0.9, "minRows": 50}})
    settings = watched.spec.monitoring
    assert settings is not None
    shifted = TEST.copy()
    shifted[:, :7] *= 1.5
    counted = totals({}, {"a": reading(shifted, started=START, feedback=(60, 30, 0.0))}, START)
    assert counted is not None
    judged = verdict(settings, BASELINE, counted, 3, START, START, 1)
    found = monitor.conditions(watched, judged, None)
    assert found is not None
    by_type = {c.type: c for c in found}
    assert (by_type["Drifted"].status, by_type["Drifted"].reason) == ("True", "DriftDetected")
    degraded = by_type["PerformanceDegraded"]
    assert (degraded.status, degraded.reason) == ("True", "BelowMinimum")
    assert "accuracy 0.5 on 60 labelled rows" in degraded.message
    # Without spec.monitoring, the conditions go.
    assert monitor.conditions(mdep(None), None, found) is None


def test_a_pod_the_windows_first_read_missed_is_read_again_until_it_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ready pod that the window's first read did not reach (the API server's pod proxy
    failed) counts from the next visit that reaches it, not from the window's end: the rows
    it answers in between are this window's."""
    watched = mdep({"window": {"duration": "1m", "minRows": 10}})
    # What the pod answers, read after read: None is a proxy error.
    answers = [None, json.dumps(answer(TEST[:20])), json.dumps(answer(TEST[:50]))]
    one_pod_answering(monkeypatch, answers)
    try:
        first = monitor.observe(watched, 1, START)
        assert first is not None and first.verdict == MonitoringVerdict.COLLECTING
        collecting = with_status(watched, first)
        assert monitor.observe(collecting, 1, START + datetime.timedelta(seconds=10)) == first
        assert len(answers) == 1  # read again at the next visit, and no more until the end
        monitor.observe(collecting, 1, START + datetime.timedelta(seconds=20))
        assert len(answers) == 1
        judged = monitor.observe(collecting, 1, START + datetime.timedelta(seconds=61))
        assert judged is not None and judged.verdict == MonitoringVerdict.NO_DRIFT
        assert judged.rows == 30
    finally:
        monitor.forget("ml", "wine")


def test_a_pod_that_answers_without_counters_is_not_read_again_within_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An answer that is not counters (another server on the port) is not a passing failure:
    the window reads the pod at its start and its end only, as before."""
    watched = mdep({"window": {"duration": "1m", "minRows": 10}})
    answers: list[str | None] = ["<html>not found</html>", json.dumps(answer(TEST[:50]))]
    one_pod_answering(monkeypatch, answers)
    try:
        first = monitor.observe(watched, 1, START)
        assert first is not None
        collecting = with_status(watched, first)
        monitor.observe(collecting, 1, START + datetime.timedelta(seconds=10))
        assert len(answers) == 1
        # Its counters count from the next window: this one has no rows to judge.
        assert monitor.observe(collecting, 1, START + datetime.timedelta(seconds=61)) == first
        assert answers == []
    finally:
        monitor.forget("ml", "wine")


def one_pod_answering(
    monkeypatch: pytest.MonkeyPatch, answers: list[str | None], ready: list[bool] | None = None
) -> None:
    """One stable pod, whose monitoring reads return `answers` in turn (None: the API server's
    pod proxy failed); ready while `ready[0]` is (always, without it)."""
    readiness = ready if ready is not None else [True]
    monkeypatch.setattr(readings, "serving_pods", lambda _: [("wine-1", "stable", readiness[0])])
    monkeypatch.setattr(workloads, "read_pod_path", lambda *_: answers.pop(0))


def with_status(watched: ModelDeployment, monitoring: MonitoringStatus | None) -> ModelDeployment:
    """The ModelDeployment once its status holds `monitoring` (what the reconcile wrote)."""
    return watched.model_copy(update={"status": ModelDeploymentStatus(monitoring=monitoring)})
