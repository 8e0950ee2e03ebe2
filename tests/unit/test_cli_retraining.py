"""`cairn retrain`, `cairn ct` and `cairn history`: what they write and print, from objects
shaped as the API server returns them, at a fixed time."""

import datetime
from typing import Any

import pytest

from cairn.cli import listing, retraining
from cairn.cli.main import main
from cairn.kube import events
from tests.support.crds import CONTINUOUS_TRAINING, MODEL, MODEL_DEPLOYMENT, manifest
from tests.support.fake_kube import FakeKube

Body = dict[str, Any]
NOW = datetime.datetime(2026, 1, 2, 4, 0, 0, tzinfo=datetime.UTC)
NS = "ml"


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> FakeKube:
    made = FakeKube()
    made.install(monkeypatch)
    monkeypatch.setattr(listing, "now", lambda: NOW)
    return made


def ct_body() -> Body:
    body = manifest(CONTINUOUS_TRAINING)
    body["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    return body


def test_retrain_sets_a_new_request_each_time(
    kube: FakeKube, capsys: pytest.CaptureFixture[str]
) -> None:
    kube.add("continuoustrainings", ct_body())
    assert main(["retrain", "iris-ct", "-n", NS, "--reason", "new labels from QA"]) == 0
    said = capsys.readouterr().out
    annotations = kube.store[("continuoustrainings", NS, "iris-ct")]["metadata"]["annotations"]
    value = annotations["cairn.dev/retrain"]
    assert value.startswith("new labels from QA (") and value in said


def test_retrain_of_a_missing_ct_names_it_and_how_to_list(
    kube: FakeKube, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["retrain", "nope", "-n", NS, "--reason", "x"]) == 1
    error = capsys.readouterr().err
    assert "ContinuousTraining nope not found in namespace ml" in error
    assert "cairn ct -n ml" in error


def test_retrain_needs_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["retrain", "iris-ct"])
    assert "--reason" in capsys.readouterr().err


def test_ct_lists_triggers_last_trigger_next_schedule_and_version(
    kube: FakeKube, capsys: pytest.CaptureFixture[str]
) -> None:
    kube.add("continuoustrainings", ct_body())
    assert main(["ct", "-n", NS]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == [
        *("NAME", "MODEL", "TRIGGERS", "LAST", "TRIGGER", "LAST", "RUN", "NEXT"),
        *("VERSION", "READY"),
    ]
    assert row.split() == [
        *("iris-ct", "iris", "code,conditions,dataset,schedule,request", "dataset", "60m"),
        *("ago", "iris-ct-dataset-4", "in", "22h", "iris-v3", "True"),
    ]


def test_ct_in_an_empty_namespace_says_so(
    kube: FakeKube, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ct", "-n", NS]) == 0
    assert capsys.readouterr().out.strip() == "No ContinuousTrainings in namespace ml."


def at(seconds: int) -> str:
    return (NOW + datetime.timedelta(seconds=seconds - 600)).isoformat().replace("+00:00", "Z")


def run(name: str, trigger: str, start: int, end: int, metric: str) -> Body:
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": at(start),
            "labels": {"cairn.dev/model": "iris", "cairn.dev/continuous-training": "iris-ct"},
            "annotations": {
                "cairn.dev/trigger-type": trigger,
                "cairn.dev/trigger-reason": f"{trigger} fired",
                "cairn.dev/trigger-time": at(start),
            },
        },
        "status": {
            "phase": "Succeeded",
            "keyMetric": metric,
            "startTime": at(start),
            "completionTime": at(end),
        },
    }


def condition(type_: str, status: str, reason: str, when: int, message: str = "") -> Body:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": at(when),
    }


def version(number: int, registered: int, promoted: Body) -> Body:
    return {
        "metadata": {"name": f"iris-v{number}", "creationTimestamp": at(registered)},
        "status": {
            "keyMetric": f"f1_macro=0.{number}",
            "conditions": [
                condition("Validated", "True", "GatesPassed", registered),
                condition("Approved", "True", "AutoApproved", registered),
                promoted,
            ],
        },
    }


def test_history_is_one_timeline_in_the_order_things_happened() -> None:
    model = manifest(MODEL)
    model["status"]["history"] = [
        {
            "time": at(30),
            "action": "Promoted",
            "alias": "production",
            "toVersion": 1,
            "by": "policy",
            "reason": "iris-v1 is Ready",
        },
    ]
    runs = [run("iris-ct-dataset-1", "dataset", 0, 30, "f1_macro=0.1")]
    runs.append(run("iris-ct-request-2", "request", 100, 130, "f1_macro=0.05"))
    versions = [
        version(1, 30, condition("Promoted", "True", "Promoted", 30)),
        version(2, 130, condition("Promoted", "False", "NotBetter", 131, "0.05 against 0.1")),
    ]
    mdep = manifest(MODEL_DEPLOYMENT)
    mdep["status"] = {"rollback": {"version": 3, "reason": "AnalysisFailed", "at": at(200)}}
    posted = [
        # Events keep fractions of a second; conditions do not. Both sort by the second.
        {"reason": "Serving", "lastTimestamp": at(30)[:-1] + ".2Z", "message": "serving iris-v1"},
        {"reason": "StepStarted", "lastTimestamp": at(40), "message": "not in the timeline"},
    ]
    entries = retraining.timeline(model, versions, runs, [(mdep, posted)])
    assert [(e["what"], e["subject"]) for e in entries] == [
        ("trigger dataset", "iris-ct-dataset-1"),
        ("run created", "iris-ct-dataset-1"),
        ("run succeeded", "iris-ct-dataset-1"),
        ("version registered", "iris-v1"),
        ("validated", "iris-v1"),
        ("approved", "iris-v1"),
        # The promotion is the Model's alias move; the version's Promoted=True adds nothing.
        ("alias promoted", "production - → 1"),
        ("serving", "iris-prod"),
        ("trigger request", "iris-ct-request-2"),
        ("run created", "iris-ct-request-2"),
        ("run succeeded", "iris-ct-request-2"),
        ("version registered", "iris-v2"),
        ("validated", "iris-v2"),
        ("approved", "iris-v2"),
        ("promoted", "iris-v2"),
        # No RolledBack Event any more: the status's rollback still tells it.
        ("rolled back", "iris-prod"),
    ]
    refused = entries[14]
    assert refused["detail"] == "not promoted: NotBetter: 0.05 against 0.1"
    assert entries[1]["detail"] == "by ContinuousTraining iris-ct"


def test_history_asks_for_the_events_of_each_deployment_of_the_model(
    kube: FakeKube, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = manifest(MODEL)
    del model["status"]["history"]
    kube.add("models", model)
    mdep = manifest(MODEL_DEPLOYMENT)
    kube.add("modeldeployments", mdep)
    other = manifest(MODEL_DEPLOYMENT)
    other["metadata"]["name"] = "other"
    other["spec"]["model"] = "wine"
    kube.add("modeldeployments", other)
    asked: list[tuple[str, str, str]] = []

    def events_of(namespace: str, kind: str, name: str) -> list[Body]:
        asked.append((namespace, kind, name))
        return [{"reason": "Promoted", "lastTimestamp": at(10), "message": "iris-v2 promoted"}]

    monkeypatch.setattr(events, "of", events_of)
    assert main(["history", "iris", "-n", NS]) == 0
    assert asked == [(NS, "ModelDeployment", mdep["metadata"]["name"])]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["AGE", "WHAT", "SUBJECT", "DETAIL"]
    assert lines[-1].split() == ["9m50s", "canary", "promoted", "iris-prod", "iris-v2", "promoted"]


def test_history_of_a_missing_model_is_a_clear_error(
    kube: FakeKube, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "nope", "-n", NS]) == 1
    assert "Model nope not found in namespace ml" in capsys.readouterr().err


def recorded(time: int, action: str, **fields: Any) -> Body:
    return {"time": at(time), "action": action, **fields}


def test_history_tells_what_the_versions_and_the_model_recorded_once_events_are_gone() -> None:
    model = manifest(MODEL)
    model["status"]["history"] = [
        recorded(5, "VersionApproved", version=1, by="alice", reason="first review"),
        recorded(60, "VersionRejected", version=2, by="bob", reason="unfair"),
    ]
    v2 = {
        "metadata": {"name": "iris-v2", "creationTimestamp": at(50)},
        "spec": {"version": 2},
        "status": {
            "history": [
                recorded(51, "GatesFailed", by="policy", reason="demographicParityDifference"),
                recorded(60, "Rejected", by="bob", reason="unfair"),
                recorded(70, "Serving", to="canary", by="ModelDeployment/iris-prod"),
                recorded(
                    80,
                    "CanaryRolledBack",
                    by="ModelDeployment/iris-prod",
                    reason="AnalysisFailed: errorRate",
                ),
                recorded(80, "Serving", **{"from": "canary"}, by="ModelDeployment/iris-prod"),
            ]
        },
    }
    mdep = manifest(MODEL_DEPLOYMENT)
    mdep["status"] = {"rollback": {"version": 2, "reason": "AnalysisFailed", "at": at(80)}}

    entries = retraining.timeline(model, [v2], [], [(mdep, [])])

    assert [(e["what"], e["subject"], e["detail"]) for e in entries] == [
        # iris-v1 is gone: its approval survives in the Model's history.
        ("approved", "iris-v1", "Approved by alice: first review"),
        ("version registered", "iris-v2", ""),
        ("validated", "iris-v2", "not validated: GatesFailed: demographicParityDifference"),
        ("approved", "iris-v2", "not approved: Rejected by bob: unfair"),
        ("serving", "iris-v2", "ModelDeployment/iris-prod: - → canary"),
        ("serving", "iris-v2", "ModelDeployment/iris-prod: canary → -"),
        # Told once: the version's history, not again from the ModelDeployment's status.
        ("rolled back", "iris-v2", "ModelDeployment/iris-prod: AnalysisFailed: errorRate"),
    ]
