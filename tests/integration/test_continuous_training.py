"""ContinuousTraining on the real cluster: every trigger starts one run per change, the policies
skip, replace or debounce, bad triggers are refused or reported and start nothing, and the
runs' versions record what started them."""

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.support.kube import Kube
from tests.support.operator import RunningOperator
from tests.support.retraining import PLURAL, create_ct, ct_status, patch_ct, retrain, runs_of
from tests.support.training import (
    GROUP,
    TREE_TRAINER,
    VERSION,
    condition,
    create_model,
    expect_event,
    get,
    script_config_map,
    wait_for_run,
)
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

Body = dict[str, Any]
# Runs that never start a pod: the tests watch what the ContinuousTraining starts, not training.
SUSPENDED = {"imagePullPolicy": "Never", "command": ["python", "-c", "pass"], "suspend": True}


def wait_for_runs(k8s: Kube, namespace: str, ct: str, count: int, timeout: float = 60) -> list[str]:
    def enough() -> list[str] | None:
        names = runs_of(k8s, namespace, ct)
        return names if len(names) >= count else None

    found: list[str] = wait_for(
        enough,
        timeout=timeout,
        message=f"{count} run(s) of ContinuousTraining {ct}",
        describe=lambda: (
            f"runs {runs_of(k8s, namespace, ct)}; status {ct_status(k8s, namespace, ct)}"
        ),
    )
    return found


def observed(k8s: Kube, namespace: str, name: str, key: str, value: Any) -> Body:
    """The ContinuousTraining once its status has `key` at `value`: a reconcile happened."""
    found: Body = wait_for(
        lambda: (s := ct_status(k8s, namespace, name)) and s.get(key) == value and s,
        timeout=60,
        message=f"ContinuousTraining {name} status.{key} to be {value!r}",
        describe=lambda: str(ct_status(k8s, namespace, name)),
    )
    return found


def test_each_request_starts_one_run_and_forbid_replace_allow_decide_the_next(
    k8s: Kube, namespace: str, operator: RunningOperator
) -> None:
    create_ct(k8s, namespace, "req", SUSPENDED)
    observed(k8s, namespace, "req", "observedGeneration", 1)
    retrain(k8s, namespace, "req", "the partner feed sent new labels")
    assert wait_for_runs(k8s, namespace, "req", 1) == ["req-request-1"]
    run = get(k8s, namespace, "trainingruns", "req-request-1") or {}
    annotations = run["metadata"]["annotations"]
    assert annotations["cairn.dev/trigger-type"] == "request"
    assert annotations["cairn.dev/trigger-reason"] == "requested: the partner feed sent new labels"
    assert run["metadata"]["ownerReferences"][0]["kind"] == "ContinuousTraining"

    # Forbid (the default): the suspended run is still active, so the next request is skipped.
    retrain(k8s, namespace, "req", "again")
    observed(k8s, namespace, "req", "observedRequest", "again")
    assert runs_of(k8s, namespace, "req") == ["req-request-1"]
    expect_event(k8s, namespace, "req", "TriggerSkipped")

    patch_ct(k8s, namespace, "req", {"spec": {"concurrencyPolicy": "Replace"}})
    retrain(k8s, namespace, "req", "replace it")
    wait_for(
        lambda: runs_of(k8s, namespace, "req") == ["req-request-2"],
        timeout=60,
        message="the active run replaced by req-request-2",
        describe=lambda: str(runs_of(k8s, namespace, "req")),
    )
    patch_ct(k8s, namespace, "req", {"spec": {"concurrencyPolicy": "Allow"}})
    retrain(k8s, namespace, "req", "one more beside it")
    assert wait_for_runs(k8s, namespace, "req", 2) == ["req-request-2", "req-request-3"]


def test_min_interval_turns_a_burst_of_ten_requests_into_one_run(
    k8s: Kube, namespace: str, operator: RunningOperator
) -> None:
    create_ct(k8s, namespace, "burst", SUSPENDED, concurrencyPolicy="Allow", minInterval="1h")
    for number in range(10):
        retrain(k8s, namespace, "burst", f"request {number}")
        time.sleep(0.3)
    observed(k8s, namespace, "burst", "observedRequest", "request 9")
    assert runs_of(k8s, namespace, "burst") == ["burst-request-1"]


def test_a_schedule_starts_one_run_per_schedule_time_named_after_it(
    k8s: Kube, namespace: str, operator: RunningOperator
) -> None:
    schedule = {"schedule": {"cron": "*/10 * * * * *"}}
    create_ct(k8s, namespace, "cron", SUSPENDED, triggers=schedule, concurrencyPolicy="Allow")
    names = wait_for_runs(k8s, namespace, "cron", 2, timeout=40)
    times = [int(name.rsplit("-", 1)[1]) for name in names]
    assert all(t % 10 == 0 for t in times) and len(set(times)) == len(times)
    status = ct_status(k8s, namespace, "cron")
    assert status["nextScheduleTime"] > status["lastScheduleTime"]


def test_the_code_trigger_starts_a_run_per_change_of_the_config_map_or_revision(
    k8s: Kube, namespace: str, operator: RunningOperator
) -> None:
    script_config_map(k8s, namespace, "code", "print('one')")
    template = {**SUSPENDED, "code": {"configMap": {"name": "code"}, "revision": "a1"}}
    create_ct(
        k8s,
        namespace,
        "code",
        template,
        triggers={"code": {"checkEvery": "2s"}},
        concurrencyPolicy="Allow",
    )
    assert wait_for_runs(k8s, namespace, "code", 1) == ["code-code-1"]  # never trained with it
    k8s.core.patch_namespaced_config_map("code", namespace, {"data": {"train.py": "print(2)"}})
    assert wait_for_runs(k8s, namespace, "code", 2) == ["code-code-1", "code-code-2"]
    patch_ct(k8s, namespace, "code", {"spec": {"template": {"code": {"revision": "b2"}}}})
    assert len(wait_for_runs(k8s, namespace, "code", 3)) == 3
    status = observed(k8s, namespace, "code", "runsStarted", 3)
    assert status["code"]["trainedRevision"] == "b2"
    time.sleep(5)  # more checks than changes: no run without a change
    assert len(runs_of(k8s, namespace, "code")) == 3


def test_a_watched_condition_becoming_true_starts_a_run(
    k8s: Kube, namespace: str, operator: RunningOperator
) -> None:
    """ModelDeployment `gone` serves a Model that does not exist: its Degraded condition turns
    True (the production-monitoring conditions, Drifted, are watched the same way)."""
    mdep = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": "gone"},
        "spec": {"model": "absent", "version": 1},
    }
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments", mdep)
    watched = {"conditions": [{"kind": "ModelDeployment", "name": "gone", "type": "Degraded"}]}
    create_ct(k8s, namespace, "cond", SUSPENDED, triggers=watched)
    assert wait_for_runs(k8s, namespace, "cond", 1) == ["cond-condition-1"]
    reason = get(k8s, namespace, "trainingruns", "cond-condition-1") or {}
    said = reason["metadata"]["annotations"]["cairn.dev/trigger-reason"]
    assert said.startswith("ModelDeployment gone is Degraded: Model absent does not exist")
    time.sleep(3)
    assert runs_of(k8s, namespace, "cond") == ["cond-condition-1"]  # one transition, one run


def test_a_condition_that_turns_true_within_min_interval_waits_for_it(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    """A model that drifted minutes after the last run stays drifted: the transition waits out
    spec.minInterval instead of being lost (a request in the same spot is skipped). Here the
    watched condition is a TrainingRun's Failed, which the test can time."""
    failing = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingRun",
        "metadata": {"name": "flaky"},
        "spec": {**SUSPENDED, "model": "flaky", "command": ["python", "-c", "raise SystemExit(3)"]},
    }
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingruns", failing)
    watched = {"conditions": [{"kind": "TrainingRun", "name": "flaky", "type": "Failed"}]}
    create_ct(
        k8s,
        namespace,
        "late",
        SUSPENDED,
        triggers=watched,
        minInterval="40s",
        concurrencyPolicy="Allow",
    )
    retrain(k8s, namespace, "late", "the first version")
    assert wait_for_runs(k8s, namespace, "late", 1) == ["late-request-1"]
    patch = {"spec": {"suspend": False}}
    k8s.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "trainingruns", "flaky", patch
    )
    waiting: Body = wait_for(
        lambda: (s := ct_status(k8s, namespace, "late")).get("waiting") and s,
        timeout=40,
        message="the Failed transition to wait for spec.minInterval",
        describe=lambda: (
            f"{ct_status(k8s, namespace, 'late')}; flaky: "
            f"{(get(k8s, namespace, 'trainingruns', 'flaky') or {}).get('status')}"
        ),
    )
    assert "TrainingRun flaky is Failed" in waiting["waiting"]
    assert "waits: spec.minInterval 40s" in waiting["waiting"]
    assert runs_of(k8s, namespace, "late") == ["late-request-1"]
    assert wait_for_runs(k8s, namespace, "late", 2) == ["late-condition-2", "late-request-1"]
    observed(k8s, namespace, "late", "waiting", None)
    time.sleep(3)
    assert len(runs_of(k8s, namespace, "late")) == 2  # the transition was acted on once


@pytest.mark.parametrize(
    ("triggers", "says"),
    [
        ({"schedule": {"cron": "0 3 * *"}}, "must be a cron schedule"),
        ({"schedule": {"cron": "@sometimes"}}, "must be a cron schedule"),
        ({"schedule": {"cron": "0 3 * * *", "timeZone": "not a zone!"}}, "IANA time zone"),
        ({"conditions": [{"kind": "Secret", "name": "x", "type": "Ready"}]}, "kind"),
        ({"dataset": {}}, "triggers.dataset needs template.dataset.uri"),
        ({"code": {}}, "triggers.code needs template.code"),
    ],
)
def test_the_api_server_refuses_triggers_a_rule_can_judge(
    k8s: Kube, namespace: str, triggers: Body, says: str
) -> None:
    with pytest.raises(ApiException) as refused:
        create_ct(k8s, namespace, "bad", {"command": ["true"]}, triggers=triggers)
    assert refused.value.status == 422 and says in (refused.value.body or "")


@pytest.mark.parametrize(
    ("triggers", "reason", "field"),
    [
        ({"schedule": {"cron": "0 3 * 13 *"}}, "InvalidSchedule", "spec.triggers.schedule.cron"),
        (
            {"schedule": {"cron": "0 3 * * *", "timeZone": "Mars/Olympus"}},
            "InvalidSchedule",
            "spec.triggers.schedule.timeZone",
        ),
        (
            {"conditions": [{"kind": "ModelDeployment", "name": "nowhere", "type": "Drifted"}]},
            "ConditionSourceNotFound",
            "spec.triggers.conditions[0]",
        ),
    ],
)
def test_triggers_only_the_operator_can_judge_make_it_not_ready_and_start_nothing(
    k8s: Kube, namespace: str, operator: RunningOperator, triggers: Body, reason: str, field: str
) -> None:
    create_ct(k8s, namespace, "bad", SUSPENDED, triggers=triggers)
    retrain(k8s, namespace, "bad", "try anyway")
    found = wait_for(
        lambda: (
            (c := condition(get(k8s, namespace, PLURAL, "bad") or {}, "Ready"))
            and c["status"] == "False"
            and c
        ),
        timeout=60,
        message="Ready=False on ContinuousTraining bad",
    )
    assert found["reason"] == reason and found["message"].startswith(field)
    expect_event(k8s, namespace, "bad", reason)
    assert runs_of(k8s, namespace, "bad") == []


def test_the_dataset_trigger_trains_on_new_rows_once_and_the_version_records_why(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    data = artifacts / "data"
    data.mkdir()
    csv = data / "rows.csv"
    csv.write_text("a,b,target\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(40)))
    script_config_map(k8s, namespace, "tiny", TREE_TRAINER)
    template = {
        "image": "docker.io/cairn/trainer:dev",
        "imagePullPolicy": "Never",
        "code": {"configMap": {"name": "tiny", "key": "train.py"}},
        "dataset": {"uri": "pvc://cairn-artifacts/data/rows.csv"},
    }
    create_model(k8s, namespace, "rows", {})
    create_ct(k8s, namespace, "rows", template, triggers={"dataset": {"checkEvery": "3s"}})
    assert wait_for_runs(k8s, namespace, "rows", 1, timeout=90) == ["rows-dataset-1"]
    run = wait_for_run(k8s, namespace, "rows-dataset-1", "Succeeded", timeout=240, registered=True)
    version = get(k8s, namespace, "modelversions", run["status"]["modelVersion"]) or {}
    trigger = version["spec"]["source"]["trigger"]
    assert trigger["type"] == "dataset" and trigger["continuousTraining"] == "rows"
    first = ct_status(k8s, namespace, "rows")["dataset"]["trainedDigest"]
    assert first == version["spec"]["source"]["dataset"]["digest"]  # the probe reads as training

    with csv.open("a") as more:
        more.write("".join(f"{i},{i % 5},{i % 2}\n" for i in range(40, 80)))
    assert wait_for_runs(k8s, namespace, "rows", 2, timeout=90)[-1] == "rows-dataset-2"
    wait_for_run(k8s, namespace, "rows-dataset-2", "Succeeded", timeout=240, registered=True)
    time.sleep(8)  # further checks find the same rows
    assert runs_of(k8s, namespace, "rows") == ["rows-dataset-1", "rows-dataset-2"]
