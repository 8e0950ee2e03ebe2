"""The Argo CD health checks in charts/cairn/argocd, run as Lua against objects whose status the
operator's own code wrote.

Argo CD runs health scripts in gopher-lua, a Lua 5.1: lupa's Lua 5.1 runs them here, with the
object as the global `obj`, as Argo CD passes it. Every fixture's status comes from the
controllers' pure status functions (each kind's status_for, plan + compute_status), so a
change in what the operator writes shows up here, and each object is validated by the API
models, so no fixture has a field the API does not.

`python -m tests.unit.test_argocd_health` rewrites the ConfigMap and values snippets from the
.lua files after a script changed.
"""

import copy
import json
import sys
from pathlib import Path
from typing import Any

import lupa.lua51  # type: ignore[import-untyped]
import pytest
import yaml

from cairn.api import (
    ContinuousTraining,
    ContinuousTrainingReason,
    ContinuousTrainingStatus,
    Model,
    ModelDeployment,
    ModelVersion,
    TrainingRun,
    TrainingRunPhase,
)
from cairn.api.base import Resource
from cairn.api.modeldeployment import ModelDeploymentReason
from cairn.api.trainingrun import RegistrationReason, TrainingRunReason
from cairn.controllers.continuoustraining import reconcile as ct_controller
from cairn.controllers.deployment.rollout import Progress, plan
from cairn.controllers.deployment.status import Observed, compute_status
from cairn.controllers.deployment.target import Refusal
from cairn.controllers.registry import models as model_controller
from cairn.controllers.registry import versions as version_controller
from cairn.controllers.trainingrun import reconcile as run_controller
from cairn.controllers.trainingrun import status as run_status
from cairn.controllers.trainingrun.observe import Observation, observe
from cairn.kube import status as status_writer
from cairn.registry.registration import RegistrationError
from tests.support.fake_kube import merge
from tests.unit.test_deployment_logic import V1, V2, deployment
from tests.unit.test_rollout_logic import ANALYSIS, at, canary
from tests.unit.test_trainingrun_observe import job, pod, terminated

Body = dict[str, Any]
REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / "charts/cairn/argocd"
KINDS = ("TrainingRun", "Model", "ModelVersion", "ModelDeployment", "ContinuousTraining")
API: dict[str, type[Resource]] = {
    "ContinuousTraining": ContinuousTraining,
    "TrainingRun": TrainingRun,
    "Model": Model,
    "ModelVersion": ModelVersion,
    "ModelDeployment": ModelDeployment,
}
DIGEST = "sha256:" + "ab" * 32
STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing"}


# --- running the scripts --------------------------------------------------------------------------


def script(kind: str) -> str:
    return (ARGOCD / "health" / f"{kind}.lua").read_text()


def health(kind: str, obj: Body) -> tuple[str, str]:
    """What Argo CD would show: the script's hs.status and hs.message."""
    API[kind].model_validate(obj)  # the fixture is a valid object of its kind
    lua = lupa.lua51.LuaRuntime()
    # Through JSON, as Argo CD hands the object over: nulls gone, numbers as numbers.
    lua.globals()["obj"] = lua.table_from(json.loads(json.dumps(obj)), recursive=True)
    hs = lua.execute(script(kind))
    status, message = hs["status"], hs["message"]
    assert status in STATUSES, status
    assert isinstance(message, str) and message, message
    return str(status), message


def merged(obj: Body, status: Any) -> Body:
    """obj after the operator's status write (a JSON merge patch of status), as the API server
    applies it."""

    before = obj.get("status") or {}
    after = status if isinstance(status, dict) else status.to_dict()
    patch = status_writer.merge_patch(before, after)
    result = copy.deepcopy(obj)
    result["status"] = merge(before, patch)
    return result


def meta(name: str, generation: int = 1) -> Body:
    return {"name": name, "namespace": "ml", "uid": f"uid-{name}", "generation": generation}


# --- TrainingRun ----------------------------------------------------------------------------------


def training_run(**spec: Any) -> Body:
    return {
        "apiVersion": "cairn.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": meta("iris-1"),
        "spec": {"model": "iris", "dataset": {"uri": "sklearn://iris"}, **spec},
    }


def observed_run(run: Body, job_body: Body | None, pods: list[Body]) -> Body:
    seen = observe(job_body, pods)
    typed = TrainingRun.model_validate(run)
    job_name = "iris-1" if job_body is not None else None
    return merged(run, run_status.status_for(typed, seen, seen.message, job_name))


SUMMARY = {
    "metrics": {"accuracy": 0.97},
    "artifact": {"uri": "pvc://cairn-artifacts/iris/iris-1", "digest": DIGEST, "size": 2048},
    "dataset": {"uri": "sklearn://iris", "digest": DIGEST},
}


def succeeded_run(run: Body) -> Body:
    pods = [pod("iris-1-x", "Succeeded", terminated(0, "Completed", json.dumps(SUMMARY)))]
    return observed_run(run, job(("Complete", "")), pods)


def test_training_run_pending_running_and_suspended() -> None:
    run = training_run()
    assert health("TrainingRun", run)[0] == "Progressing"  # no status yet
    assert health("TrainingRun", observed_run(run, None, [])) == (
        "Progressing",
        "creating the training Job",
    )
    running = observed_run(run, job(active=1), [pod("iris-1-x", "Running", {"running": {}})])
    assert health("TrainingRun", running) == ("Progressing", "training, attempt 1")

    suspended = training_run(suspend=True)
    suspended["metadata"]["generation"] = 2
    still_running = merged(suspended, running["status"])  # the operator has not seen it yet
    assert health("TrainingRun", still_running) == (
        "Progressing",
        "waiting for the Cairn operator to observe generation 2",
    )
    stopped = observed_run(suspended, job(suspend=True), [])
    assert health("TrainingRun", stopped)[0] == "Suspended"


def test_training_run_failed_is_degraded_with_its_reason() -> None:
    failed = observed_run(
        training_run(),
        job(("Failed", "BackoffLimitExceeded"), failed=1),
        [pod("iris-1-x", "Failed", terminated(3))],
    )
    assert failed["status"]["failureReason"] == "NonZeroExit"
    assert health("TrainingRun", failed) == (
        "Degraded",
        "NonZeroExit: container trainer of pod iris-1-x exited with code 3",
    )
    # Final: a later spec change (suspend) the operator never looks at does not hide it.
    failed["metadata"]["generation"] = 5
    assert health("TrainingRun", failed)[0] == "Degraded"


def registered_as(run: Body, outcome: int | RegistrationError, patch: pytest.MonkeyPatch) -> Body:
    """The run after its registration gave `outcome` (a version number, or why not)."""

    def register(_: TrainingRun) -> int:
        if isinstance(outcome, RegistrationError):
            raise outcome
        return outcome

    patch.setattr(run_controller, "register", register)
    typed = TrainingRun.model_validate(run)
    return merged(run, run_controller.with_registration(typed, typed.status))  # type: ignore[arg-type]


def test_training_run_is_healthy_once_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    trained = succeeded_run(training_run())
    assert health("TrainingRun", trained) == (
        "Progressing",
        "trained; registering the model version",
    )
    registered = registered_as(trained, 1, monkeypatch)
    assert health("TrainingRun", registered) == ("Healthy", "registered as ModelVersion iris-v1")

    retrying = RegistrationError(
        RegistrationReason.MODEL_UNAVAILABLE, "Model iris is being deleted", retry=True
    )
    waiting = registered_as(trained, retrying, monkeypatch)
    assert health("TrainingRun", waiting) == (
        "Progressing",
        "trained; not registered yet: Model iris is being deleted",
    )
    refused = RegistrationError(
        RegistrationReason.VERSION_REFUSED, "the API server refused it", retry=False
    )
    assert health("TrainingRun", registered_as(trained, refused, monkeypatch)) == (
        "Degraded",
        "VersionRefused: the API server refused it",
    )

    unregistered = succeeded_run(training_run(register=False))
    assert health("TrainingRun", unregistered)[0] == "Healthy"


def test_training_run_waiting_for_its_claim_is_degraded() -> None:
    run = training_run()
    missing = Observation(
        TrainingRunPhase.PENDING,
        TrainingRunReason.ARTIFACT_CLAIM_MISSING,
        "PersistentVolumeClaim cairn-artifacts does not exist",
    )
    status = run_status.status_for(TrainingRun.model_validate(run), missing, missing.message, None)
    assert health("TrainingRun", merged(run, status)) == (
        "Degraded",
        "ArtifactClaimMissing: PersistentVolumeClaim cairn-artifacts does not exist",
    )


# --- Model and ModelVersion -----------------------------------------------------------------------


def model(generation: int = 1, **spec: Any) -> Body:
    return {
        "apiVersion": "cairn.dev/v1alpha1",
        "kind": "Model",
        "metadata": meta("iris", generation),
        "spec": {"policy": {"gates": [{"metric": "accuracy", "op": ">=", "threshold": 0.9}]}}
        | spec,
    }


def model_version(number: int, accuracy: float, **approval: Any) -> Body:
    return {
        "apiVersion": "cairn.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": meta(f"iris-v{number}"),
        "spec": {
            "model": "iris",
            "version": number,
            "artifact": {"uri": f"pvc://cairn-artifacts/iris/iris-{number}", "digest": DIGEST},
            "metrics": {"accuracy": accuracy},
            "approval": {"state": "Pending", **approval},
        },
    }


def judged(version: Body, owner: Body | None) -> Body:
    typed = ModelVersion.model_validate(version)
    model_ = Model.model_validate(owner) if owner is not None else None
    return merged(version, version_controller.status_for(typed, model_, []))


def test_model_version_states() -> None:
    strict = model(policy={"requireApproval": True})
    assert health("ModelVersion", model_version(1, 0.97))[0] == "Progressing"

    pending = judged(model_version(1, 0.97), strict)
    assert health("ModelVersion", pending) == (
        "Suspended",
        "the Model requires approval: run `cairn approve iris 1`",
    )
    # `cairn approve` writes spec.approval: until the operator judges it, still Progressing.
    approving = copy.deepcopy(pending)
    approving["spec"]["approval"] = {"state": "Approved", "by": "alice"}
    approving["metadata"]["generation"] = 2
    assert health("ModelVersion", approving)[0] == "Progressing"
    approved = judged(approving, strict)
    assert health("ModelVersion", approved) == (
        "Healthy",
        "approved; may be served (accuracy=0.97)",
    )

    auto = judged(model_version(2, 0.95), model())
    assert health("ModelVersion", auto)[0] == "Healthy"
    invalid = judged(model_version(3, 0.5), model())
    assert health("ModelVersion", invalid) == ("Degraded", "accuracy=0.5 fails >= 0.9")
    orphan = judged(model_version(4, 0.97), None)
    assert health("ModelVersion", orphan)[0] == "Degraded"
    assert "Model iris does not exist" in health("ModelVersion", orphan)[1]
    rejected = judged(model_version(5, 0.97, state="Rejected", by="bob"), model())
    assert health("ModelVersion", rejected) == ("Degraded", "rejected by bob")


def test_model_states() -> None:
    v1 = judged(model_version(1, 0.97), model())
    v2 = judged(model_version(2, 0.5), model())
    assert health("Model", model())[0] == "Progressing"

    versions = [ModelVersion.model_validate(v) for v in (v1, v2)]
    pinned = model(aliases={"production": 1})
    ready = merged(pinned, model_controller.status_for(Model.model_validate(pinned), versions))
    assert health("Model", ready) == ("Healthy", "latest version 2; production=1")

    moved = model(generation=2, aliases={"production": 2})
    moved["status"] = ready["status"]
    assert health("Model", moved) == (
        "Progressing",
        "waiting for the Cairn operator to observe generation 2",
    )
    bad = merged(moved, model_controller.status_for(Model.model_validate(moved), versions))
    status, message = health("Model", bad)
    assert status == "Degraded"
    assert message.startswith("InvalidAliasTarget: production → 2: iris-v2 is Invalid")


# --- ModelDeployment ------------------------------------------------------------------------------

STEPS = [{"setWeight": 50}, {"pause": {"duration": "1m"}}, {"pause": {}}]
ANALYSIS_SPEC = ANALYSIS


def model_deployment(generation: int = 1, **spec: Any) -> Body:
    return {
        "apiVersion": "cairn.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": meta("iris", generation),
        "spec": {
            "model": "iris",
            "version": 2,
            "replicas": 2,
            "port": 8080,
            "strategy": {"canary": {"steps": STEPS, "analysis": ANALYSIS}},
        }
        | spec,
    }


def reconciled(
    mdep: Body, progress: Progress, target: Any = V2, stable: Body | None = None
) -> Body:
    """The status compute_status gives mdep after plan() decided from `progress`."""
    typed = ModelDeployment.model_validate(mdep)
    chosen = plan(typed.spec, target if not isinstance(target, Refusal) else None, V1, progress)
    running = stable or deployment(V1, replicas=2, ready=2)
    canary_deployment = (
        deployment(chosen.canary.target, replicas=1, ready=1) if chosen.canary else None
    )
    seen = Observed(target, chosen, running, canary_deployment)
    return merged(mdep, compute_status(typed, seen))


def test_model_deployment_available_and_progressing() -> None:
    pinned = model_deployment(version=1)
    assert health("ModelDeployment", pinned)[0] == "Progressing"
    available = reconciled(pinned, Progress(now=at(0)), target=V1)
    assert health("ModelDeployment", available) == ("Healthy", "2/2 pods of iris-v1 ready")

    rollout = model_deployment()
    walking = reconciled(rollout, Progress(canary(0), now=at(1)))
    status, message = health("ModelDeployment", walking)
    assert status == "Progressing"
    assert message.startswith("canary iris-v2 at step 1/3, weight 50%")
    # A timed pause is progress: it ends by itself.
    timed = reconciled(rollout, Progress(canary(1, passedIntervals=1), now=at(2)))
    assert health("ModelDeployment", timed)[0] == "Progressing"

    edited = copy.deepcopy(available)
    edited["metadata"]["generation"] = 2
    assert health("ModelDeployment", edited)[0] == "Progressing"


def test_model_deployment_paused_or_at_a_manual_pause_is_suspended() -> None:
    gate = reconciled(model_deployment(), Progress(canary(2), now=at(5)))
    assert gate["status"]["phase"] == "Paused"
    status, message = health("ModelDeployment", gate)
    assert status == "Suspended" and "waits for `cairn resume`" in message
    # Seen from the steps alone too (the status.phase aside).
    gate["status"]["phase"] = "Progressing"
    assert health("ModelDeployment", gate)[0] == "Suspended"

    paused = model_deployment(paused=True)
    held = reconciled(paused, Progress(canary(0), now=at(1)))
    assert health("ModelDeployment", held) == (
        "Suspended",
        "paused (spec.paused is true); `cairn resume` goes on",
    )


def test_model_deployment_rolled_back_or_refused_is_degraded() -> None:
    rollout = model_deployment()
    aborted = reconciled(
        rollout, Progress(canary(0), annotations={"cairn.dev/abort": "2"}, now=at(2))
    )
    assert aborted["status"]["rollback"]["reason"] == "Aborted"
    status, message = health("ModelDeployment", aborted)
    assert status == "Degraded" and message.startswith("Aborted: aborted with `cairn abort`")

    results = [
        {"name": "errorRate", "value": 0.5, "stableValue": 0.0, "threshold": "max 0.05",
         "verdict": "Fail"},
    ]  # fmt: skip
    failing = Progress(canary(0, failedIntervals=2, analysis=results), now=at(20))
    failed = reconciled(rollout, failing)
    status, message = health("ModelDeployment", failed)
    assert status == "Degraded" and message.startswith("AnalysisFailed: 2 analysis intervals")

    refusal = Refusal(
        ModelDeploymentReason.VERSION_NOT_READY, "iris-v2 is PendingApproval; it is not served"
    )
    refused = reconciled(rollout, Progress(now=at(1)), target=refusal)
    status, message = health("ModelDeployment", refused)
    assert status == "Degraded" and message.startswith("VersionNotReady: iris-v2")


# --- ContinuousTraining ---------------------------------------------------------------------------


def continuous_training(**spec: Any) -> Body:
    return {
        "apiVersion": "cairn.dev/v1alpha1",
        "kind": "ContinuousTraining",
        "metadata": meta("churn"),
        "spec": {"model": "churn", "template": {"dataset": {"uri": "sklearn://wine"}}} | spec,
    }


def ct_status(ct: Body, problems: list[Any] | None = None, **fields: Any) -> Body:
    typed = ContinuousTraining.model_validate(ct)
    current = ContinuousTrainingStatus.model_validate(fields)
    return merged(ct, ct_controller.with_conditions(typed, current, problems or []))


def test_continuous_training_states() -> None:
    assert health("ContinuousTraining", continuous_training())[0] == "Progressing"
    idle = ct_status(continuous_training())
    assert health("ContinuousTraining", idle) == ("Healthy", "watching its triggers")
    last = {
        "type": "dataset",
        "reason": "changed",
        "time": "2026-01-01T00:00:00Z",
        "run": "churn-dataset-2",
    }
    training = ct_status(continuous_training(), active=["churn-dataset-2"], lastTrigger=last)
    assert health("ContinuousTraining", training) == ("Progressing", "training: churn-dataset-2")
    done = ct_status(continuous_training(), lastTrigger=last, lastSuccessfulVersion="churn-v2")
    assert health("ContinuousTraining", done) == (
        "Healthy",
        "last run churn-dataset-2 (dataset); last version churn-v2",
    )
    problem = ct_controller.Problem(
        ContinuousTrainingReason.INVALID_SCHEDULE, "spec.triggers.schedule.timeZone: 'Mars'"
    )
    broken = ct_status(continuous_training(), [problem])
    status, message = health("ContinuousTraining", broken)
    assert status == "Degraded" and message.startswith("InvalidSchedule: spec.triggers.schedule")
    assert health("ContinuousTraining", ct_status(continuous_training(suspend=True)))[0] == (
        "Suspended"
    )


# --- the ready-to-paste snippets ------------------------------------------------------------------


def health_key(kind: str) -> str:
    return f"resource.customizations.health.cairn.dev_{kind}"


def block(key: str, text: str, indent: str) -> str:
    """`key: |` and the script as a YAML literal block, byte for byte."""
    lines = [f"{indent}  {line}" if line else "" for line in text.rstrip("\n").split("\n")]
    return f"{indent}{key}: |\n" + "\n".join(lines) + "\n"


CM_HEADER = """\
# Argo CD health checks for Cairn's kinds, generated from health/*.lua (do not edit here:
# edit the .lua file and run `python -m tests.unit.test_argocd_health`).
# Merge the data entries into the argocd-cm ConfigMap of your Argo CD installation, e.g.
#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file argocd-cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
"""
VALUES_HEADER = """\
# Argo CD health checks for Cairn's kinds as values of the argo-cd Helm chart
# (https://github.com/argoproj/argo-helm), generated from health/*.lua: do not edit here.
#   helm upgrade argocd argo/argo-cd -n argocd --reuse-values -f values-argo-cd.yaml
configs:
  cm:
"""


def rendered() -> dict[Path, str]:
    """The snippet files as they must read, from the .lua files."""
    cm = CM_HEADER + "".join(block(health_key(k), script(k), "  ") for k in KINDS)
    values = VALUES_HEADER + "".join(block(health_key(k), script(k), "    ") for k in KINDS)
    return {ARGOCD / "argocd-cm.yaml": cm, ARGOCD / "values-argo-cd.yaml": values}


def test_the_snippets_embed_exactly_the_lua_files() -> None:
    for path, text in rendered().items():
        assert path.read_text() == text, (
            f"{path.relative_to(REPO)} differs from health/*.lua: run "
            "`python -m tests.unit.test_argocd_health`"
        )
    cm = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    values = yaml.safe_load((ARGOCD / "values-argo-cd.yaml").read_text())
    for kind in KINDS:
        assert cm["data"][health_key(kind)] == script(kind)
        assert values["configs"]["cm"][health_key(kind)] == script(kind)


def test_scripts_use_only_what_argo_cds_lua_has() -> None:
    """gopher-lua is a Lua 5.1 without os and io in health scripts: no 5.3 operators either."""
    for kind in KINDS:
        text = script(kind)
        for forbidden in ("os.", "io.", "require", "//", "goto", "<const>"):
            assert forbidden not in text, f"{kind}.lua uses {forbidden}"


if __name__ == "__main__":
    for target, content in rendered().items():
        target.write_text(content)
        print(f"wrote {target.relative_to(REPO)}", file=sys.stderr)
