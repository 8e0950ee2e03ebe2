"""`cairn runs|models|versions|lineage|status`: the summaries and tables built from objects shaped
as the API server returns them (tests/support/crds.py's complete examples), at a fixed time."""

import copy
import datetime
import json
from typing import Any

import pytest
import yaml

from cairn.cli import lineage, listing, output, status
from cairn.cli.main import main, program_name
from cairn.kube import objects
from tests.support.crds import MODEL, MODEL_DEPLOYMENT, MODEL_VERSION, TRAINING_RUN, manifest

Body = dict[str, Any]
NOW = datetime.datetime(2026, 1, 2, 4, 4, 5, tzinfo=datetime.UTC)
CREATED = "2026-01-02T03:00:00Z"


def with_meta(text: str, **meta: Any) -> Body:
    obj = manifest(text)
    obj["metadata"].update({"namespace": "ml", "creationTimestamp": CREATED, "generation": 1})
    obj["metadata"].update(meta)
    return obj


def version(number: int, metrics: Body, **status: Any) -> Body:
    obj = with_meta(MODEL_VERSION, uid=f"uid-{number}")
    obj["metadata"]["name"] = f"iris-v{number}"
    obj["spec"].update(version=number, metrics=metrics)
    obj["status"].update(status)
    return obj


def test_output_helpers() -> None:
    assert output.table(("A", "LONGER"), [("x", None), ("wide cell", 0.973684)]) == (
        "A           LONGER\nx           <none>\nwide cell   0.9737"
    )
    seconds = (5, 119, 245, 600, 7260, 4 * 3600 + 60, 30 * 3600, 3 * 86400 + 7200, 20 * 86400)
    assert [output.duration(s) for s in seconds] == [
        *("5s", "119s", "4m5s", "10m", "121m", "4h1m", "30h", "3d2h", "20d")
    ]
    assert output.fields([("Name", "iris"), ("Longer key", None)]) == (
        "Name:        iris\nLonger key:  <none>"
    )


def test_runs_table() -> None:
    succeeded = with_meta(TRAINING_RUN)
    failed = copy.deepcopy(succeeded)
    failed["metadata"]["name"] = "iris-2"
    failed["status"] = {
        "phase": "Failed",
        "failureReason": "OOMKilled",
        "startTime": "2026-01-02T03:00:00Z",
        "conditions": [
            {"type": "Failed", "status": "True", "reason": "OOMKilled", "message": "oom",
             "lastTransitionTime": "2026-01-02T03:00:30Z"},
        ],
    }  # fmt: skip
    summaries = [listing.run_summary(r, NOW) for r in (succeeded, failed)]

    assert summaries[0]["durationSeconds"] == 245  # startTime to completionTime
    assert summaries[1]["durationSeconds"] == 30  # to the Failed condition: no completionTime
    assert listing.runs_table(summaries, NOW).splitlines() == [
        "NAME     MODEL   PHASE       METRIC          VERSION   DURATION   AGE   REASON",
        "iris-1   iris    Succeeded   accuracy=0.97   iris-v1   4m5s       64m   <none>",
        "iris-2   iris    Failed      <none>          <none>    30s        64m   OOMKilled",
    ]


def test_models_table_counts_versions_and_marks_unresolved_aliases() -> None:
    summary = listing.model_summary(with_meta(MODEL), 4)
    assert summary["aliases"] == {"production": 3}
    assert summary["unresolvedAliases"] == {"staging": 4}
    assert listing.models_table([summary], NOW).splitlines() == [
        "NAME   LATEST   VERSIONS   ALIASES                                READY    AGE",
        "iris   4        4          production=3, staging=4 (unresolved)   <none>   64m",
    ]


def test_versions_table_puts_metrics_side_by_side() -> None:
    model = with_meta(MODEL)
    aliases = listing.aliases_by_version(model)
    found = [
        version(3, {"accuracy": 0.97, "f1": 0.96}, phase="Approved"),
        version(4, {"accuracy": 0.95, "loss": 0.12}, phase="PendingApproval"),
    ]
    found[1]["spec"]["approval"] = {"state": "Pending"}
    found[0]["status"]["deployments"] = ["iris", "iris-shadow"]
    found[1]["status"]["deployments"] = []
    summaries = [listing.version_summary(v, aliases) for v in found]
    metrics = listing.metric_columns(summaries, model, [])

    assert metrics == ["accuracy", "f1", "loss"]  # the gate's metric first
    assert summaries[0]["approval"] == "Approved by alice"
    rows = listing.versions_table(summaries, metrics, NOW).splitlines()
    assert rows[0].split() == [
        *("VERSION", "PHASE", "VALIDATED", "APPROVAL", "ALIASES", "SERVED", "BY"),
        *("ACCURACY", "F1", "LOSS", "AGE"),
    ]
    assert rows[1].split() == [
        *("iris-v3", "Approved", "<none>", "Approved", "by", "alice", "production"),
        *("iris,", "iris-shadow"),
        *("0.97", "0.96", "<none>", "64m"),
    ]
    assert rows[2].split() == [
        *("iris-v4", "PendingApproval", "<none>", "Pending", "staging", "(unresolved)", "<none>"),
        *("0.95", "<none>", "0.12", "64m"),
    ]
    # Columns line up: every cell of a column starts where its header does.
    assert rows[1].index("0.97") == rows[0].index("ACCURACY") == rows[2].index("0.95")


def test_lineage_of_a_version_with_its_run_and_previous_version() -> None:
    v3 = version(3, {"accuracy": 0.97})
    v2 = version(2, {"accuracy": 0.93})
    v2["spec"]["source"]["params"] = {"max_depth": 2}
    run = with_meta(TRAINING_RUN, uid=v3["spec"]["source"]["runUid"])

    found = lineage.lineage(v3, run, v2, ["production"], NOW)
    assert found["run"]["exists"] and found["run"]["phase"] == "Succeeded"
    assert found["code"] == {
        "revision": "3f2a9c1",
        "configMap": "iris-code",
        "key": "train.py",
        "mountPath": "/opt/cairn/code",
    }
    assert found["previous"]["paramChanges"] == {"max_depth": [2, 3]}
    text = lineage.lineage_text(found)
    assert "Run:              iris-3 (Succeeded, took 4m5s)" in text
    assert "Code:             ConfigMap iris-code key train.py, revision 3f2a9c1" in text
    assert "Artifact size:    2.0 KiB, joblib" in text
    assert "Previous:         iris-v2 (metrics: accuracy 0.93 → 0.97; params: max_depth 2 → 3)" in (
        text
    )
    assert f"Dataset digest:   {v3['spec']['source']['dataset']['digest']}" in text
    # The image the pod ran, and its digest: a tag can move, a digest cannot.
    assert "Image:            docker.io/cairn/trainer:dev" in text
    assert f"Image digest:     {v3['spec']['source']['imageId']}" in text
    # A run a ContinuousTraining started says so, with what fired.
    assert (
        "Trigger:          ContinuousTraining iris-ct: dataset at 2026-01-02T03:00:00Z: dataset "
        "digest changed"
    ) in text
    del v3["spec"]["source"]["trigger"]
    text = lineage.lineage_text(lineage.lineage(v3, run, v2, ["production"], NOW))
    assert "Trigger:          none recorded (created directly)" in text
    rebuilt = version(4, {"accuracy": 0.97})
    rebuilt["spec"]["source"]["imageId"] = "docker.io/cairn/trainer@sha256:" + "9" * 64
    assert lineage.lineage(rebuilt, None, v3, [], NOW)["previous"]["imageChanged"]

    # A later run of the same name is not the one that trained the version.
    other = with_meta(TRAINING_RUN, uid="another")
    gone = lineage.lineage(v3, other, None, [], NOW)
    assert gone["run"]["exists"] is False and gone["code"]["configMap"] is None
    assert "(deleted; uid 6f1c2b7e" in lineage.lineage_text(gone)
    assert "none (first version)" in lineage.lineage_text(gone)


def test_status_of_a_canary_rollout() -> None:
    mdep = with_meta(MODEL_DEPLOYMENT, generation=3)
    mdep["status"]["canary"].update(lastAnalysisAt="2026-01-02T04:03:50Z", verdict="Pass")
    mdep["status"]["rollback"] = {
        "version": 2,
        "reason": "AnalysisFailed",
        "message": "2 analysis intervals failed",
        "at": "2026-01-02T02:00:00Z",
    }
    summary = status.status_summary(mdep)
    assert summary["canary"]["step"] == 2 and summary["canary"]["steps"] == 4
    assert summary["canary"]["stepAction"] == "pause 1m"
    assert summary["analysis"][0] == {
        "name": "errorRate",
        "value": 0.01,
        "stableValue": 0.0,
        "threshold": "max 0.05",
        "verdict": "Pass",
    }
    text = status.status_text(summary, NOW)
    assert "Canary:    v4, weight 20%, step 2/4: pause 1m, 1/1 ready" in text
    assert "Stable:    v3, 2/2 ready" in text
    assert "Analysis:  judged every 15s: last verdict Pass 15s ago, failed intervals 0/3" in text
    assert "Rollback:  v2 AnalysisFailed 124m ago: 2 analysis intervals failed" in text
    assert "errorRate    0.01     0        max 0.05    <none>   Pass" in text
    assert "latencyP99   <none>   <none>   <none>      <none>   Inconclusive" in text
    assert "Progressing   True     CanaryStep   60m   step 1 of 4, canary weight 20" in text
    # JSON and YAML carry the same summary.
    assert json.loads(output.render(summary, "json", "")) == summary
    assert yaml.safe_load(output.render(summary, "yaml", "")) == summary


def test_step_texts() -> None:
    assert status.step_text({"setWeight": 20}) == "setWeight 20"
    assert status.step_text({"pause": {"duration": "30s"}}) == "pause 30s"
    assert status.step_text({"pause": {}}) == "pause (until `cairn resume`)"


@pytest.fixture
def cluster_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    stored = {
        ("models", "iris"): with_meta(MODEL),
        ("modelversions", "iris-v3"): version(3, {"accuracy": 0.97}),
    }
    monkeypatch.setattr(objects, "get", lambda kind, ns, name: stored.get((kind.plural(), name)))
    monkeypatch.setattr(
        objects,
        "list_",
        lambda kind, ns, labels=None: [o for (p, _), o in stored.items() if p == kind.plural()],
    )


@pytest.mark.usefixtures("cluster_objects")
def test_missing_objects_are_clear_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["versions", "wine", "-n", "ml"]) == 1
    assert "Model wine not found in namespace ml" in capsys.readouterr().err
    assert main(["lineage", "iris", "9", "-n", "ml"]) == 1
    assert "ModelVersion iris-v9 not found in namespace ml" in capsys.readouterr().err
    assert main(["status", "iris", "-n", "ml"]) == 1
    assert "ModelDeployment iris not found in namespace ml" in capsys.readouterr().err


@pytest.mark.usefixtures("cluster_objects")
def test_commands_print_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "-n", "ml", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["versions"] == 1
    assert main(["versions", "iris", "-n", "ml", "-o", "yaml"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)[0]["aliases"] == ["production"]


def test_as_a_kubectl_plugin_the_usage_says_kubectl_cairn() -> None:
    assert program_name("/usr/local/bin/kubectl-cairn") == "kubectl cairn"
    assert program_name("cairn") == "cairn"
