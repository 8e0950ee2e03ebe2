"""The ContinuousTraining controller against the in-memory API (tests/support/fake_kube.py), with
a clock the test moves: each trigger starts exactly one run per change, policies skip or wait,
and a crash after any API call never starts a run twice. The real-cluster tests run the same
paths with real pods."""

import contextlib
import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from cairn.controllers.continuoustraining import reconcile as ct_controller
from cairn.controllers.continuoustraining.due import due
from cairn.kube import workloads
from tests.support.fake_kube import Crash, FakeKube, faults

NS = "ml"
UTC = datetime.UTC
CREATED = datetime.datetime(2026, 1, 1, tzinfo=UTC)  # the fake's creationTimestamp
DIGEST_A, DIGEST_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
Body = dict[str, Any]


class Clock:
    def __init__(self) -> None:
        self.moment = CREATED + datetime.timedelta(seconds=1)

    def __call__(self) -> datetime.datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += datetime.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    made = Clock()
    monkeypatch.setattr(ct_controller, "now", made)
    return made


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKube]:
    made = FakeKube()
    made.install(monkeypatch)
    made.add("persistentvolumeclaims", {"metadata": {"name": "cairn-artifacts"}})
    yield made


def create(kube: FakeKube, name: str = "wine", **spec: Any) -> None:
    template = spec.pop("template", {"dataset": {"uri": "pvc://cairn-artifacts/data/wine.csv"}})
    kube.add(
        "continuoustrainings",
        {"metadata": {"name": name}, "spec": {"model": "wine", "template": template, **spec}},
    )


def reconcile(name: str = "wine") -> None:
    ct_controller.reconcile(NS, name)


def runs(kube: FakeKube) -> list[str]:
    return sorted(r["metadata"]["name"] for r in kube.objects_of("trainingruns"))


def status(kube: FakeKube, name: str = "wine") -> Body:
    found: Body = kube.store[("continuoustrainings", NS, name)].get("status") or {}
    return found


def request(kube: FakeKube, value: str, name: str = "wine") -> None:
    kube._patch(
        "continuoustrainings", NS, name, {"metadata": {"annotations": {"cairn.dev/retrain": value}}}
    )


def finish(kube: FakeKube, run: str, phase: str = "Succeeded") -> None:
    kube._patch_status("trainingruns", NS, run, {"phase": phase, "modelVersion": "wine-v1"})


def test_each_new_retrain_value_starts_one_run(kube: FakeKube, clock: Clock) -> None:
    create(kube)
    reconcile()
    assert runs(kube) == []
    request(kube, "new labels from the partner feed")
    reconcile()
    reconcile()
    assert runs(kube) == ["wine-request-1"]
    run = kube.store[("trainingruns", NS, "wine-request-1")]
    assert run["metadata"]["annotations"]["cairn.dev/trigger-type"] == "request"
    assert "partner feed" in run["metadata"]["annotations"]["cairn.dev/trigger-reason"]
    assert run["metadata"]["labels"]["cairn.dev/continuous-training"] == "wine"
    assert run["spec"]["model"] == "wine"
    assert status(kube)["lastTrigger"]["run"] == "wine-request-1"
    finish(kube, "wine-request-1")
    request(kube, "again")
    reconcile()
    assert runs(kube) == ["wine-request-1", "wine-request-2"]
    assert kube.reasons("wine").count("Triggered") == 2


def test_a_schedule_missed_while_down_starts_one_catch_up_run_and_says_what_was_missed(
    kube: FakeKube, clock: Clock
) -> None:
    create(kube, triggers={"schedule": {"cron": "*/10 * * * * *"}}, concurrencyPolicy="Allow")
    reconcile()
    assert runs(kube) == [] and status(kube)["nextScheduleTime"] == "2026-01-01T00:00:10Z"
    clock.advance(34)  # 10, 20 and 30 came due while nobody looked
    reconcile()
    at_30 = int((CREATED + datetime.timedelta(seconds=30)).timestamp())
    assert runs(kube) == [f"wine-schedule-{at_30}"]
    missed = [m for o, t, r, m in kube.events if r == "MissedSchedule"]
    assert len(missed) == 1 and "missed 2 schedule time(s)" in missed[0]
    assert "2026-01-01T00:00:10+00:00, 2026-01-01T00:00:20+00:00" in missed[0]
    reconcile()
    assert len(runs(kube)) == 1


def test_a_crash_at_any_call_of_a_scheduled_start_never_starts_it_twice(
    monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    def world() -> FakeKube:
        made = FakeKube()
        made.install(monkeypatch)
        create(made, triggers={"schedule": {"cron": "*/10 * * * * *"}})
        clock.moment = CREATED + datetime.timedelta(seconds=12)
        return made

    clean = world()
    reconcile()
    calls = len(clean.calls)
    assert runs(clean) == ["wine-schedule-1767225610"]
    for fault in faults(calls, clean.writes):
        kube = world()
        kube.calls.clear()
        kube.writes.clear()
        kube.fault = fault
        with contextlib.suppress(Crash, ApiException):
            reconcile()
        kube.fault = None
        for _ in range(3):
            reconcile()
        assert runs(kube) == ["wine-schedule-1767225610"], fault
        assert status(kube)["lastScheduleTime"] == "2026-01-01T00:00:10Z", fault


def test_forbid_skips_while_a_run_is_active_replace_replaces_allow_runs_both(
    kube: FakeKube, clock: Clock
) -> None:
    create(kube)
    request(kube, "one")
    reconcile()
    request(kube, "two")
    reconcile()
    assert runs(kube) == ["wine-request-1"]
    skipped = [m for o, t, r, m in kube.events if r == "TriggerSkipped"]
    assert skipped == [
        "requested: two: skipped, concurrencyPolicy Forbid: wine-request-1 still running"
    ]

    kube._patch("continuoustrainings", NS, "wine", {"spec": {"concurrencyPolicy": "Replace"}})
    request(kube, "three")
    reconcile()
    assert runs(kube) == ["wine-request-2"]  # the active run was deleted

    kube._patch("continuoustrainings", NS, "wine", {"spec": {"concurrencyPolicy": "Allow"}})
    request(kube, "four")
    reconcile()
    assert runs(kube) == ["wine-request-2", "wine-request-3"]


def test_a_run_the_watch_has_not_shown_yet_still_counts_as_active(
    kube: FakeKube, clock: Clock
) -> None:
    """Under a burst the watch runs seconds behind the operator's own creates: the next
    schedule time must still see the run it started at the last one."""
    create(kube, triggers={"schedule": {"cron": "*/10 * * * * *"}})
    reconcile()
    kube.lag()
    clock.advance(10)
    reconcile()
    first = runs(kube)
    assert len(first) == 1 and status(kube)["active"] == first
    clock.advance(10)
    reconcile()
    assert runs(kube) == first  # Forbid: one run at a time, though the cache has not seen it
    assert status(kube)["active"] == first
    assert "still running" in [m for o, t, r, m in kube.events if r == "TriggerSkipped"][-1]
    kube.catch_up()
    calls = len(kube.calls)
    reconcile()
    assert not [c for c in kube.calls[calls:] if c.endswith("/status")]  # nothing to correct


def test_min_interval_turns_a_burst_of_requests_into_one_run(kube: FakeKube, clock: Clock) -> None:
    create(kube, minInterval="10m", concurrencyPolicy="Allow")
    for number in range(10):
        request(kube, f"burst {number}")
        reconcile()
        clock.advance(5)
    assert runs(kube) == ["wine-request-1"]
    assert sum(r == "TriggerSkipped" for _, _, r, _ in kube.events) == 9


def probe_finishes(kube: FakeKube, digest: str) -> None:
    (pod,) = kube.objects_of("pods")
    container = {
        "name": "probe",
        "state": {
            "terminated": {
                "exitCode": 0,
                "message": json.dumps({"digest": digest, "rows": 3}),
                "finishedAt": "2026-01-01T00:00:02Z",
            }
        },
    }
    kube.store[("pods", NS, pod["metadata"]["name"])]["status"] = {
        "phase": "Succeeded",
        "containerStatuses": [container],
    }


def test_the_dataset_trigger_trains_on_new_data_once(kube: FakeKube, clock: Clock) -> None:
    create(kube, triggers={"dataset": {"checkEvery": "30s"}})
    reconcile()
    (probe,) = kube.objects_of("pods")
    env = {e["name"]: e["value"] for e in probe["spec"]["containers"][0]["env"]}
    assert env["CAIRN_DATASET_PATH"] == "/cairn/claims/cairn-artifacts/data/wine.csv"
    assert probe["spec"]["volumes"][0]["persistentVolumeClaim"]["readOnly"] is True
    probe_finishes(kube, DIGEST_A)
    reconcile()
    assert runs(kube) == ["wine-dataset-1"]  # never trained on: train now
    assert not kube.objects_of("pods")  # the probe is gone once read
    finish(kube, "wine-dataset-1")
    clock.advance(31)
    reconcile()
    probe_finishes(kube, DIGEST_A)
    reconcile()
    assert runs(kube) == ["wine-dataset-1"]  # same data: nothing
    clock.advance(31)
    reconcile()
    probe_finishes(kube, DIGEST_B)
    reconcile()
    assert runs(kube) == ["wine-dataset-1", "wine-dataset-2"]
    assert status(kube)["dataset"]["trainedDigest"] == DIGEST_B


def test_a_refused_dataset_probe_is_reported_and_tried_again_at_the_next_check(
    kube: FakeKube, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusal = json.dumps({"message": 'pods "wine-probe" is forbidden: exceeded quota: no-pods'})

    def refused(namespace: str, pod: Body) -> Body:
        kube.calls.append(f"create pods/{pod['metadata']['name']}")
        error = ApiException(status=403, reason="Forbidden")
        error.body = refusal
        raise error

    monkeypatch.setattr(workloads, "create_pod", refused)
    create(kube, triggers={"dataset": {"checkEvery": "30s"}})
    reconcile()  # does not raise: the refusal is the user's to see
    said = status(kube)["dataset"]["message"]
    assert "was refused" in said and "exceeded quota" in said
    assert [r for _, _, r, _ in kube.events] == ["DatasetCheckFailed"]
    assert runs(kube) == []
    tried = len([c for c in kube.calls if c.startswith("create pods/")])
    clock.advance(10)
    reconcile()
    assert len([c for c in kube.calls if c.startswith("create pods/")]) == tried  # not yet due
    clock.advance(21)
    reconcile()
    assert len([c for c in kube.calls if c.startswith("create pods/")]) == tried + 1


def test_the_first_run_waits_for_the_first_dataset_check_and_trains_on_both(
    kube: FakeKube, clock: Clock
) -> None:
    kube.add("configmaps", {"metadata": {"name": "code"}, "data": {"train.py": "print(1)"}})
    template = {
        "code": {"configMap": {"name": "code"}},
        "dataset": {"uri": "pvc://cairn-artifacts/data/wine.csv"},
    }
    create(kube, template=template, triggers={"code": {}, "dataset": {}})
    reconcile()
    assert runs(kube) == []  # the code is known, the dataset's digest not yet
    assert "the first check of the dataset" in status(kube)["waiting"]
    probe_finishes(kube, DIGEST_A)
    reconcile()
    assert runs(kube) == ["wine-code-1"]  # one run for both
    finish(kube, "wine-code-1")
    clock.advance(5)
    reconcile()
    assert runs(kube) == ["wine-code-1"]  # neither fires again: the run recorded both
    assert status(kube)["dataset"]["trainedDigest"] == DIGEST_A
    assert "waiting" not in status(kube)


def test_the_code_trigger_follows_the_config_map_and_the_revision(
    kube: FakeKube, clock: Clock
) -> None:
    kube.add("configmaps", {"metadata": {"name": "code"}, "data": {"train.py": "print(1)"}})
    template = {"code": {"configMap": {"name": "code"}, "revision": "a1"}}
    create(
        kube, template=template, triggers={"code": {"checkEvery": "10s"}}, concurrencyPolicy="Allow"
    )
    reconcile()
    assert runs(kube) == ["wine-code-1"]
    reconcile()
    assert runs(kube) == ["wine-code-1"]
    kube.store[("configmaps", NS, "code")]["data"]["train.py"] = "print(2)"
    clock.advance(11)
    reconcile()
    assert runs(kube) == ["wine-code-1", "wine-code-2"]
    kube._patch(
        "continuoustrainings", NS, "wine", {"spec": {"template": {"code": {"revision": "b2"}}}}
    )
    reconcile()  # a new revision is seen at once
    assert runs(kube) == ["wine-code-1", "wine-code-2", "wine-code-3"]


def test_a_watched_condition_starts_one_run_per_transition_to_true(
    kube: FakeKube, clock: Clock
) -> None:
    kube.add(
        "modeldeployments",
        {"metadata": {"name": "wine"}, "spec": {"model": "wine", "alias": "production"}},
    )

    def drifted(at: str) -> None:
        condition = {
            "type": "Drifted",
            "status": "True",
            "lastTransitionTime": at,
            "reason": "FeaturesDrifted",
            "message": "3 of 13 features drifted",
        }
        kube._patch_status("modeldeployments", NS, "wine", {"conditions": [condition]})

    trigger = {"kind": "ModelDeployment", "name": "wine", "type": "Drifted"}
    create(kube, triggers={"conditions": [trigger]}, concurrencyPolicy="Allow")
    reconcile()
    assert runs(kube) == []
    drifted("2026-01-01T00:00:05Z")
    assert due(kube.store[("continuoustrainings", NS, "wine")], clock())
    reconcile()
    reconcile()
    assert runs(kube) == ["wine-condition-1"]
    drifted("2026-01-01T00:10:00Z")  # false in between, true again
    reconcile()
    assert runs(kube) == ["wine-condition-1", "wine-condition-2"]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (
            {"triggers": {"schedule": {"cron": "0 3 * * *", "timeZone": "Mars/Olympus"}}},
            "spec.triggers.schedule.timeZone",
        ),
        (
            {
                "triggers": {
                    "conditions": [{"kind": "ModelDeployment", "name": "absent", "type": "Drifted"}]
                }
            },
            "spec.triggers.conditions[0]",
        ),
    ],
)
def test_a_trigger_that_cannot_work_makes_the_ct_not_ready_and_nothing_runs(
    kube: FakeKube, clock: Clock, spec: Body, field: str
) -> None:
    create(kube, **spec)
    request(kube, "please")
    reconcile()
    assert runs(kube) == []
    ready = next(c for c in status(kube)["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["message"].startswith(field)


def test_history_limits_delete_the_oldest_finished_runs(kube: FakeKube, clock: Clock) -> None:
    create(kube, concurrencyPolicy="Allow", successfulRunsHistoryLimit=1, failedRunsHistoryLimit=1)
    for number, phase in enumerate(["Succeeded", "Failed", "Succeeded", "Failed"], 1):
        request(kube, str(number))
        reconcile()
        finish(kube, f"wine-request-{number}", phase)
    reconcile()
    assert runs(kube) == ["wine-request-3", "wine-request-4"]
    assert status(kube)["lastSuccessfulRun"] == "wine-request-3"
