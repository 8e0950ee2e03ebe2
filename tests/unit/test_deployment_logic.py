"""The pure parts of the ModelDeployment controller: which version to serve, the manifests of
its Deployment and Service, the rollout plan and the status."""

import dataclasses
from typing import Any

from cairn.api import Model, ModelDeployment, ModelDeploymentSpec, ModelVersion
from cairn.api.modeldeployment import ModelDeploymentReason
from cairn.controllers.deployment import manifests
from cairn.controllers.deployment.rollout import Plan, TrackPlan, plan
from cairn.controllers.deployment.status import Observed, compute_status
from cairn.controllers.deployment.target import Refusal, Target, resolve, wanted_version

Body = dict[str, Any]
DIGEST = "sha256:" + "ab" * 32
V1 = Target("iris", 1, "pvc://cairn-artifacts/iris/iris-1", DIGEST)
V2 = Target("iris", 2, "pvc://cairn-artifacts/iris/iris-2", DIGEST)
T = "2026-01-01T00:00:00Z"


def spec_of(**spec: Any) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate({"model": "iris", **spec})


def mdep(**spec: Any) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {"name": "iris", "namespace": "ml", "generation": 2, "uid": "u"},
            "spec": {"model": "iris", "replicas": 1, "port": 8080, **spec},
        }
    )


def model(spec_aliases: Body | None = None, status_aliases: Body | None = None) -> Model:
    return Model.model_validate(
        {
            "metadata": {"name": "iris", "namespace": "ml"},
            "spec": {"aliases": spec_aliases or {}},
            "status": {"aliases": status_aliases or {}},
        }
    )


def condition(type_: str, ready: bool, message: str = "", reason: str = "Ready") -> Body:
    status = "True" if ready else "False"
    return {
        "type": type_,
        "status": status,
        "lastTransitionTime": T,
        "reason": reason,
        "message": message,
    }


def version(phase: str, ready: bool, uri: str = V1.artifact_uri, message: str = "") -> ModelVersion:
    return ModelVersion.model_validate(
        {
            "metadata": {"name": "iris-v1", "namespace": "ml"},
            "spec": {"model": "iris", "version": 1, "artifact": {"uri": uri, "digest": DIGEST}},
            "status": {"phase": phase, "conditions": [condition("Ready", ready, message)]},
        }
    )


def deployment(target: Target, replicas: int = 1, ready: int = 1, **status: Any) -> Body:
    built = manifests.build_deployment(mdep(), "stable", target, replicas)
    built["metadata"]["generation"] = 1
    built["status"] = {
        "observedGeneration": 1,
        "replicas": replicas,
        "readyReplicas": ready,
        "updatedReplicas": replicas,
        "availableReplicas": ready,
        **status,
    }
    return built


def test_a_pinned_version_or_the_alias_target_is_wanted() -> None:
    assert wanted_version(spec_of(version=3), model()) == 3
    followed = wanted_version(spec_of(alias="production"), model({}, {"production": 4}))
    assert followed == 4


def test_an_alias_that_does_not_resolve_is_refused_saying_why() -> None:
    unresolved = wanted_version(spec_of(alias="production"), model({"production": 5}, {}))
    missing = wanted_version(spec_of(alias="canary"), model())

    assert isinstance(unresolved, Refusal) and unresolved.reason == "AliasNotResolved"
    assert "version 5, which is not Validated and Approved" in unresolved.message
    assert isinstance(missing, Refusal) and "spec.aliases.canary" in missing.message
    absent = wanted_version(spec_of(version=1), None)
    assert absent == Refusal(
        ModelDeploymentReason.MODEL_NOT_FOUND, "Model iris does not exist; create it first"
    )


def test_only_a_ready_version_with_a_pvc_artifact_is_a_target() -> None:
    spec = spec_of(version=1)
    assert resolve(spec, 1, version("Approved", True)) == V1

    pending = resolve(spec, 1, version("PendingApproval", False))
    rejected = resolve(spec, 1, version("Rejected", False, message="rejected by bob: drift"))
    missing = resolve(spec, 1, None)
    local = resolve(spec, 1, version("Approved", True, uri="file:///tmp/iris"))

    assert pending == Refusal(
        ModelDeploymentReason.VERSION_NOT_READY,
        "iris-v1 is PendingApproval; run `cairn approve iris 1`; it is not served",
    )
    assert isinstance(rejected, Refusal) and "rejected by bob: drift" in rejected.message
    assert isinstance(missing, Refusal) and missing.reason == "VersionNotFound"
    assert isinstance(local, Refusal) and local.reason == "UnsupportedArtifact"


def test_the_stable_deployment_runs_cairn_serve_locked_down_with_the_artifact_read_only() -> None:
    built = manifests.build_deployment(mdep(replicas=3), "stable", V1, 3)
    pod = built["spec"]["template"]["spec"]
    (server,) = pod["containers"]

    assert built["metadata"]["name"] == "iris-stable"
    assert built["spec"]["selector"]["matchLabels"] == {
        "cairn.dev/deployment": "iris",
        "cairn.dev/track": "stable",
    }
    assert built["spec"]["template"]["metadata"]["labels"]["cairn.dev/version"] == "1"
    assert built["spec"]["replicas"] == 3
    assert server["command"] == ["cairn-serve"]
    args = server["args"]
    assert args[args.index("--model-dir") + 1] == "/cairn/model"
    assert args[args.index("--name") + 1] == "iris"
    assert args[args.index("--version") + 1] == "1"
    assert args[args.index("--expected-digest") + 1] == DIGEST
    assert server["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert server["securityContext"]["readOnlyRootFilesystem"] is True
    assert server["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert server["volumeMounts"] == [
        {"name": "model", "mountPath": "/cairn/model", "readOnly": True, "subPath": "iris/iris-1"}
    ]
    assert pod["volumes"] == [
        {
            "name": "model",
            "persistentVolumeClaim": {"claimName": "cairn-artifacts", "readOnly": True},
        }
    ]
    assert manifests.served_target(built) == V1


def test_a_prediction_log_mounts_its_claim_and_leaves_sensitive_features_out() -> None:
    watched = mdep(monitoring={"log": {"sampleRate": 0.05}})
    target = dataclasses.replace(V1, sensitive_features=("age", "sex"))
    built = manifests.build_deployment(watched, "stable", target, 1)
    pod = built["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    args = server["args"]
    assert args[args.index("--log-sample-rate") + 1] == "0.05"
    # The claim's root, writable; the log under predictions/<model> in it.
    assert args[args.index("--log-dir") + 1] == "/cairn/predictions/predictions/iris"
    assert args[args.index("--sensitive-features") + 1] == "age,sex"
    assert {"name": "predictions", "mountPath": "/cairn/predictions"} in server["volumeMounts"]
    assert {
        "name": "predictions",
        "persistentVolumeClaim": {"claimName": "cairn-artifacts", "readOnly": False},
    } in pod["volumes"]
    assert server["env"][0]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # Which version runs is unchanged by them.
    assert manifests.served_target(built) == V1
    elsewhere = mdep(monitoring={"log": {"sampleRate": 1, "uri": "pvc://logs/team-a/iris"}})
    args = manifests.build_deployment(elsewhere, "stable", V1, 1)["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]
    assert args[args.index("--log-dir") + 1] == "/cairn/predictions/team-a/iris"
    assert "--sensitive-features" not in args


def test_serving_pods_go_where_the_spec_places_them_and_a_move_rolls_them() -> None:
    placed = mdep(
        nodeSelector={"pool": "inference"},
        tolerations=[
            {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
        ],
    )
    pod = manifests.build_deployment(placed, "canary", V1, 1)["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "inference"}
    assert pod["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
    ]
    unplaced = manifests.build_deployment(mdep(), "stable", V1, 1)
    assert "nodeSelector" not in unplaced["spec"]["template"]["spec"]
    assert "tolerations" not in unplaced["spec"]["template"]["spec"]
    # A new placement is a new manifest: the Deployment is applied again and its pods roll.
    assert manifests.needs_apply(manifests.build_deployment(placed, "stable", V1, 1), unplaced)


def test_the_service_selects_every_track_on_the_port() -> None:
    service = manifests.build_service(mdep(port=9000))

    assert service["spec"]["selector"] == {"cairn.dev/deployment": "iris"}
    assert service["spec"]["ports"][0]["port"] == 9000
    assert manifests.url("iris", "ml", 9000) == "http://iris.ml.svc:9000"


def test_an_unchanged_manifest_is_not_applied_again() -> None:
    first = manifests.build_deployment(mdep(), "stable", V1, 1)
    again = manifests.build_deployment(mdep(), "stable", V1, 1)
    scaled = manifests.build_deployment(mdep(), "stable", V1, 2)

    assert not manifests.needs_apply(again, first)
    assert manifests.needs_apply(scaled, first)
    assert manifests.needs_apply(first, None)


def test_the_plan_never_serves_a_refused_version_and_holds_when_paused() -> None:
    spec = spec_of(replicas=2)
    assert plan(spec, V1, None) == Plan(stable=TrackPlan(V1, 2))
    assert plan(spec, None, None) == Plan(stable=None)
    assert plan(spec, None, V1) == Plan(stable=TrackPlan(V1, 2))
    assert plan(spec, V2, V1) == Plan(stable=TrackPlan(V2, 2))
    paused = spec_of(replicas=2, paused=True)
    assert plan(paused, V2, V1) == Plan(stable=TrackPlan(V1, 2), held=V2)


def conditions(status: Body) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def status_of(deployment_: ModelDeployment, seen: Observed) -> Body:
    return compute_status(deployment_, seen).to_dict()


def test_status_of_a_served_version() -> None:
    status = status_of(mdep(), Observed(V1, Plan(TrackPlan(V1, 1)), deployment(V1)))

    assert status["phase"] == "Available"
    assert conditions(status) == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("False", "Complete"),
        "Degraded": ("False", "Healthy"),
    }
    assert status["stable"] == {"version": 1, "replicas": 1, "readyReplicas": 1}
    assert status["selector"] == "cairn.dev/deployment=iris"
    assert status["url"] == "http://iris.ml.svc:8080"
    assert "canary" not in status


def test_status_while_pods_start_and_after_the_deadline() -> None:
    starting = deployment(V1, ready=0, updatedReplicas=1)
    stuck = deployment(
        V1,
        ready=0,
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet iris-stable-1 has timed out progressing.",
            }
        ],
    )
    seen = Observed(V1, Plan(TrackPlan(V1, 1)), starting)

    assert status_of(mdep(), seen)["phase"] == "Progressing"
    degraded = status_of(mdep(), Observed(V1, Plan(TrackPlan(V1, 1)), stuck))
    assert degraded["phase"] == "Degraded"
    assert conditions(degraded)["Degraded"] == ("True", "ProgressDeadlineExceeded")


def test_status_of_a_refused_version_with_and_without_one_served() -> None:
    refusal = Refusal(
        ModelDeploymentReason.VERSION_NOT_READY,
        "iris-v2 is PendingApproval; run `cairn approve iris 2`",
    )
    nothing = status_of(mdep(version=2), Observed(refusal, Plan(None), None))
    still = status_of(mdep(version=2), Observed(refusal, Plan(TrackPlan(V1, 1)), deployment(V1)))

    assert nothing["phase"] == "Degraded"
    assert conditions(nothing)["Available"] == ("False", "VersionNotReady")
    assert conditions(nothing)["Degraded"] == ("True", "VersionNotReady")
    assert "cairn approve iris 2" in nothing["message"]
    assert conditions(still)["Available"] == ("True", "MinimumReplicasAvailable")
    assert still["message"].endswith("still serving iris-v1")


def test_status_of_a_paused_version_change() -> None:
    seen = Observed(V2, Plan(TrackPlan(V1, 1), held=V2), deployment(V1))
    status = status_of(mdep(paused=True), seen)

    assert status["phase"] == "Paused"
    assert conditions(status)["Progressing"] == ("False", "RolloutPaused")
    assert status["stable"]["version"] == 1
