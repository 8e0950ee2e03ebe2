"""Cairn's CRDs on a real API server: bad input is refused with a message naming the field,
records stay immutable, and kubectl shows the columns and documentation people rely on."""

import copy
import json
import os
import shutil
import subprocess
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from cairn.api import GROUP, KINDS, VERSION
from tests.support.cluster import REPO_ROOT
from tests.support.crds import (
    CONTINUOUS_TRAINING,
    DIGEST,
    MODEL,
    MODEL_DEPLOYMENT,
    MODEL_VERSION,
    TRAINING_RUN,
    manifest,
)
from tests.support.kube import Kube
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

PLURALS = {resource.kind_name(): resource.plural() for resource in KINDS}
# The API server publishes a new CRD's OpenAPI (what `kubectl explain` reads) a moment later.
OPENAPI_TIMEOUT = 60

Manifest = dict[str, Any]


def kubectl() -> str:
    """kubectl from $KUBECTL, else the one hack/localkube built, else from $PATH."""
    if os.environ.get("KUBECTL"):
        return os.environ["KUBECTL"]
    script = f". {REPO_ROOT}/hack/localkube/lib.sh && echo $K8S_BIN/kubectl"
    built = subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout.strip()
    found = built if built and os.access(built, os.X_OK) else shutil.which("kubectl")
    if not found:
        pytest.fail("no kubectl: set $KUBECTL, put kubectl on $PATH or run `make localkube`")
    return found


def run_kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    # $KUBECONFIG points at the cluster under test while the `cluster` fixture is active.
    return subprocess.run([kubectl(), *args], capture_output=True, text=True, timeout=60)


def training_run(name: str = "run", **spec: Any) -> Manifest:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingRun",
        "metadata": {"name": name},
        "spec": {"model": "iris", **spec},
    }


def model(name: str = "iris", **spec: Any) -> Manifest:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Model",
        "metadata": {"name": name},
        "spec": spec,
    }


def fair_model(*gates: Any, features: list[str] | None = None) -> Manifest:
    """A Model whose policy has these fairness gates, over the sensitive feature sex."""
    return model(sensitiveFeatures=features or ["sex"], policy={"fairness": list(gates)})


def model_version(name: str = "iris-v1", version: int = 1, **spec: Any) -> Manifest:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {
            "model": "iris",
            "version": version,
            "artifact": {"uri": "pvc://cairn-artifacts/ml/iris/run", "digest": DIGEST},
            **spec,
        },
    }


def model_deployment(name: str = "iris", **spec: Any) -> Manifest:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": "iris", **({"version": 1} if not spec else {}), **spec},
    }


def canary(*steps: Any, **fields: Any) -> dict[str, Any]:
    return {"canary": {"steps": list(steps), **fields}}


def without_status(body: Manifest) -> Manifest:
    return {key: value for key, value in body.items() if key != "status"}


def create(k8s: Kube, namespace: str, body: Manifest) -> Manifest:
    created: Manifest = k8s.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[body["kind"]], body
    )
    return created


def read(k8s: Kube, namespace: str, kind: str, name: str) -> Manifest:
    found: Manifest = k8s.custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[kind], name
    )
    return found


def replace(k8s: Kube, namespace: str, body: Manifest) -> Manifest:
    replaced: Manifest = k8s.custom.replace_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[body["kind"]], body["metadata"]["name"], body
    )
    return replaced


def refusal(call: Any, *args: Any) -> str:
    """The API server's message when it refuses `call(*args)` as invalid."""
    with pytest.raises(ApiException) as raised:
        call(*args)
    error = raised.value
    assert error.status == 422 and error.body, error
    message: str = json.loads(error.body)["message"]
    return message


def edited(body: Manifest, **spec: Any) -> Manifest:
    """`body` with its spec fields changed (None removes one), as `kubectl edit` would send it."""
    changed = copy.deepcopy(body)
    for field, value in spec.items():
        if value is None:
            changed["spec"].pop(field, None)
        else:
            changed["spec"][field] = value
    return changed


LONG = "x" * 64
BAD_MANIFESTS = {
    "model name not a DNS label": (
        training_run(model="Iris_Model"),
        ["spec.model", "must be a lowercase DNS label"],
    ),
    "model name too long for <model>-v<N>": (
        training_run(model="m" * 51),
        ["spec.model", "Too long", "50"],
    ),
    "negative backoffLimit": (
        training_run(backoffLimit=-1),
        ["spec.backoffLimit", "greater than or equal to 0"],
    ),
    "zero activeDeadlineSeconds": (
        training_run(activeDeadlineSeconds=0),
        ["spec.activeDeadlineSeconds", "greater than or equal to 1"],
    ),
    "unknown imagePullPolicy": (
        training_run(imagePullPolicy="Sometimes"),
        ["spec.imagePullPolicy", "Unsupported value", "IfNotPresent"],
    ),
    "code without its ConfigMap": (
        training_run(code={"mountPath": "/code"}),
        ["spec.code.configMap", "Required value"],
    ),
    "dataset digest not sha256": (
        training_run(dataset={"uri": "pvc://data/iris.csv", "digest": "md5:d41d8cd9"}),
        ["spec.dataset.digest", "sha256:<64 lowercase hexadecimal digits>"],
    ),
    "dataset without a URI scheme": (
        training_run(dataset={"uri": "iris.csv"}),
        ["spec.dataset.uri", "must be a URI with a scheme"],
    ),
    "output on an unsupported store": (
        training_run(output={"uri": "http://example.com/model"}),
        ["spec.output.uri", "pvc://<claim>/<path>"],
    ),
    "resource quantity that is not one": (
        training_run(resources={"limits": {"memory": "lots"}}),
        ["spec.resources.limits.memory", "should match"],
    ),
    "environment variable twice": (
        training_run(env=[{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]),
        ["spec.env[1]", "Duplicate value"],
    ),
    "run name too long for its Job": (
        training_run(name="r" * 64),
        ["metadata.name must be at most 63 characters"],
    ),
    "gate with an unknown comparison": (
        model(policy={"gates": [{"metric": "accuracy", "op": "=>", "threshold": 0.9}]}),
        ["spec.policy.gates[0].op", "Unsupported value", '">="'],
    ),
    "gate without a threshold": (
        model(policy={"gates": [{"metric": "accuracy", "op": ">="}]}),
        ["spec.policy.gates[0].threshold", "Required value"],
    ),
    "alias to version 0": (
        model(aliases={"production": 0}),
        ["spec.aliases.production", "greater than or equal to 1"],
    ),
    "alias name not a DNS label": (
        model(aliases={"Production_1": 1}),
        ["spec.aliases", "every alias name must be a lowercase DNS label"],
    ),
    "model name with a dot": (
        model(name="iris.v2"),
        ["metadata.name", "must be a lowercase DNS label"],
    ),
    "version without an artifact": (
        {**model_version(), "spec": {"model": "iris", "version": 1}},
        ["spec.artifact", "Required value"],
    ),
    "version with a bad artifact digest": (
        model_version(artifact={"uri": "pvc://a/b", "digest": "sha256:XYZ"}),
        ["spec.artifact.digest", "sha256:<64 lowercase hexadecimal digits>"],
    ),
    "version 0": (
        model_version(name="iris-v0", version=0),
        ["spec.version", "greater than or equal to 1"],
    ),
    "version named unlike <model>-v<N>": (
        model_version(name="iris-latest"),
        ["metadata.name must be <spec.model>-v<spec.version>"],
    ),
    "deployment with both version and alias": (
        model_deployment(version=1, alias="production"),
        ["set exactly one of spec.version", "or spec.alias"],
    ),
    "deployment with neither version nor alias": (
        model_deployment(replicas=1),
        ["set exactly one of spec.version"],
    ),
    "deployment following an alias that is not a DNS label": (
        model_deployment(alias="Prod_1"),
        ["spec.alias", "must be an alias name"],
    ),
    "deployment with gRPC on its REST port": (
        model_deployment(version=1, grpcPort=8080),
        ["spec.grpcPort", "must differ from spec.port"],
    ),
    "deployment with negative replicas": (
        model_deployment(version=1, replicas=-1),
        ["spec.replicas", "greater than or equal to 0"],
    ),
    "deployment named so that its Service cannot be": (
        model_deployment(name="1iris", version=1),
        ["metadata.name must be a DNS label starting with a letter"],
    ),
    "canary weight above 100": (
        model_deployment(version=1, strategy=canary({"setWeight": 120})),
        ["spec.strategy.canary.steps[0].setWeight", "less than or equal to 100"],
    ),
    "canary without steps": (
        model_deployment(version=1, strategy=canary()),
        ["spec.strategy.canary.steps", "needs at least one step"],
    ),
    "canary step both weight and pause": (
        model_deployment(version=1, strategy=canary({"setWeight": 10, "pause": {}})),
        ["spec.strategy.canary.steps[0]", "exactly one of setWeight"],
    ),
    "canary pause that is not a duration": (
        model_deployment(version=1, strategy=canary({"pause": {"duration": "soon"}})),
        ["spec.strategy.canary.steps[0].pause.duration", "must be a duration"],
    ),
    "analysis metric that is not built in and has no query": (
        model_deployment(
            version=1,
            strategy=canary({"setWeight": 10}, analysis={"metrics": [{"name": "f1", "max": 1}]}),
        ),
        [
            "spec.strategy.canary.analysis.metrics[0]",
            "errorRate, latencyP50, latencyP99, predictionShift or accuracy",
        ],
    ),
    "analysis metric without a threshold": (
        model_deployment(
            version=1,
            strategy=canary({"setWeight": 10}, analysis={"metrics": [{"name": "errorRate"}]}),
        ),
        ["a metric needs a threshold"],
    ),
    "prometheus provider without an address": (
        model_deployment(
            version=1, strategy=canary({"setWeight": 10}, analysis={"provider": "prometheus"})
        ),
        ["provider prometheus needs prometheus.address"],
    ),
    "prometheus address that is not http(s)": (
        model_deployment(
            version=1,
            strategy=canary(
                {"setWeight": 10},
                analysis={"provider": "prometheus", "prometheus": {"address": "file:///etc/x"}},
            ),
        ),
        ["spec.strategy.canary.analysis.prometheus.address", "http:// or https:// URL"],
    ),
    "unknown approval state": (
        model_version(approval={"state": "Maybe"}),
        ["spec.approval.state", "Unsupported value", "Approved"],
    ),
    "approval without a state": (
        model_version(approval={"by": "alice", "reason": "fine"}),
        ["spec.approval.state", "Required value"],
    ),
    "approval that does not say who": (
        model_version(approval={"state": "Approved", "reason": "reviewed"}),
        ["spec.approval.by", "spec.approval.by is required", "cairn approve"],
    ),
    "approval with an empty who": (
        model_version(approval={"state": "Rejected", "by": "", "reason": "drift"}),
        ["spec.approval.by", "spec.approval.by is required"],
    ),
    "approval that does not say why": (
        model_version(approval={"state": "Approved", "by": "alice"}),
        ["spec.approval.reason", "spec.approval.reason is required", "audit trail"],
    ),
    "rejection with an empty reason": (
        model_version(approval={"state": "Rejected", "by": "alice", "reason": ""}),
        ["spec.approval.reason", "spec.approval.reason is required"],
    ),
    "fairness gate on an unknown measure": (
        fair_model({"metric": "demographicParity", "sensitiveFeature": "sex", "max": 0.1}),
        ["spec.policy.fairness[0].metric", "Unsupported value", '"demographicParityDifference"'],
    ),
    "fairness gate without its sensitive feature": (
        fair_model({"metric": "demographicParityDifference", "max": 0.1}),
        ["spec.policy.fairness[0].sensitiveFeature", "Required value"],
    ),
    "fairness gate on a feature that is not a name": (
        fair_model(
            {"metric": "demographicParityDifference", "sensitiveFeature": "sex?", "max": 0.1},
            features=["sex?"],
        ),
        ["spec.policy.fairness[0].sensitiveFeature", "must be a feature name"],
    ),
    "fairness gate on a difference without max": (
        fair_model({"metric": "equalizedOddsDifference", "sensitiveFeature": "sex"}),
        ["spec.policy.fairness[0]", "is gated with max and no min, for example max: 0.1"],
    ),
    "fairness gate on a difference with a min": (
        fair_model({"metric": "accuracyDifference", "sensitiveFeature": "sex", "min": 0.1}),
        ["spec.policy.fairness[0]", "is gated with max and no min"],
    ),
    "fairness gate on the disparate impact ratio with a max": (
        fair_model({"metric": "disparateImpactRatio", "sensitiveFeature": "sex", "max": 0.8}),
        ["spec.policy.fairness[0]", "disparateImpactRatio", "gated with min and no max"],
    ),
    "fairness gate above 1": (
        fair_model({"metric": "demographicParityDifference", "sensitiveFeature": "sex", "max": 5}),
        ["spec.policy.fairness[0].max", "less than or equal to 1"],
    ),
    "fairness gate below 0": (
        fair_model({"metric": "disparateImpactRatio", "sensitiveFeature": "sex", "min": -0.8}),
        ["spec.policy.fairness[0].min", "greater than or equal to 0"],
    ),
    "the same fairness gate twice": (
        fair_model(
            {"metric": "demographicParityDifference", "sensitiveFeature": "sex", "max": 0.1},
            {"metric": "demographicParityDifference", "sensitiveFeature": "sex", "max": 0.2},
        ),
        ["spec.policy.fairness[1]", "Duplicate value"],
    ),
    "fairness gate on a feature not listed as sensitive": (
        fair_model(
            {"metric": "demographicParityDifference", "sensitiveFeature": "race", "max": 0.1}
        ),
        ["spec.policy.fairness", "must be listed in spec.sensitiveFeatures"],
    ),
    "a sensitive feature listed twice": (
        model(sensitiveFeatures=["sex", "sex"]),
        ["spec.sensitiveFeatures[1]", "Duplicate value"],
    ),
}


@pytest.mark.parametrize(("body", "expected"), BAD_MANIFESTS.values(), ids=BAD_MANIFESTS.keys())
def test_malformed_manifest_is_refused_naming_the_field(
    k8s: Kube, namespace: str, body: Manifest, expected: list[str]
) -> None:
    message = refusal(create, k8s, namespace, body)

    for text in expected:
        assert text in message


@pytest.mark.parametrize(
    "text",
    [TRAINING_RUN, MODEL, MODEL_VERSION, MODEL_DEPLOYMENT, CONTINUOUS_TRAINING],
    ids=PLURALS,
)
def test_complete_example_is_stored_without_losing_a_field(
    k8s: Kube, namespace: str, text: str
) -> None:
    example = manifest(text)
    body = without_status(example)

    stored = create(k8s, namespace, body)
    with_status = k8s.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURALS[body["kind"]],
        body["metadata"]["name"],
        {"status": example["status"]},
    )

    # A field missing from the schema would be pruned silently.
    assert stored["spec"] == body["spec"]
    assert with_status["status"] == example["status"]


def test_minimal_run_gets_its_defaults_from_the_api_server(k8s: Kube, namespace: str) -> None:
    create(k8s, namespace, training_run(code={"configMap": {"name": "iris-code"}}))

    spec = read(k8s, namespace, "TrainingRun", "run")["spec"]

    assert spec == {
        "model": "iris",
        "imagePullPolicy": "IfNotPresent",
        "backoffLimit": 0,
        "suspend": False,
        "register": True,
        "code": {"configMap": {"name": "iris-code"}, "mountPath": "/opt/cairn/code"},
    }


def test_model_and_version_defaults(k8s: Kube, namespace: str) -> None:
    bare_model = {key: value for key, value in model().items() if key != "spec"}
    assert create(k8s, namespace, bare_model)["spec"] == {"policy": {"requireApproval": False}}

    # Nobody has decided: a new version carries no approval.
    assert "approval" not in create(k8s, namespace, model_version())["spec"]


def test_training_run_spec_cannot_be_edited_except_suspend(k8s: Kube, namespace: str) -> None:
    run = create(k8s, namespace, training_run(params={"lr": 0.1}))

    changed = refusal(replace, k8s, namespace, edited(run, image="my/trainer:2"))
    added = refusal(replace, k8s, namespace, edited(run, env=[{"name": "A", "value": "1"}]))
    removed = refusal(replace, k8s, namespace, edited(run, params=None))
    param = refusal(replace, k8s, namespace, edited(run, params={"lr": 0.2}))

    assert "spec.image: Forbidden: spec.image cannot change" in changed
    assert "Create a new TrainingRun" in changed
    assert "spec.env: Forbidden" in added
    assert "spec.params: Forbidden" in removed
    assert "spec.params: Forbidden" in param
    suspended = replace(k8s, namespace, edited(run, suspend=True))
    assert suspended["spec"]["suspend"] is True


def test_model_version_is_immutable_except_its_approval(k8s: Kube, namespace: str) -> None:
    version = create(k8s, namespace, model_version(metrics={"accuracy": 0.9}))

    metrics = refusal(replace, k8s, namespace, edited(version, metrics={"accuracy": 0.99}))
    artifact = refusal(
        replace,
        k8s,
        namespace,
        edited(version, artifact={"uri": "pvc://other/place", "digest": DIGEST}),
    )
    source = refusal(replace, k8s, namespace, edited(version, source={"run": "other"}))

    assert "spec.metrics: Forbidden" in metrics
    assert "a ModelVersion is the immutable record" in metrics
    assert "spec.artifact: Forbidden" in artifact
    assert "spec.source: Forbidden" in source
    approval = {"state": "Approved", "by": "alice", "reason": "reviewed"}
    approved = replace(k8s, namespace, edited(version, approval=approval))
    assert approved["spec"]["approval"] == approval
    # An edit of the decision is held to the same rules as a new one.
    unexplained = refusal(
        replace, k8s, namespace, edited(approved, approval={"state": "Rejected", "by": "bob"})
    )
    assert "spec.approval.reason: Invalid value" in unexplained
    assert "spec.approval.reason is required" in unexplained


def test_model_policy_and_aliases_can_be_edited(k8s: Kube, namespace: str) -> None:
    created = create(k8s, namespace, model(aliases={"production": 1}))

    updated = replace(k8s, namespace, edited(created, aliases={"production": 2, "staging": 3}))

    assert updated["spec"]["aliases"] == {"production": 2, "staging": 3}


def test_status_is_written_only_through_the_status_subresource(k8s: Kube, namespace: str) -> None:
    created = create(k8s, namespace, {**training_run(), "status": {"phase": "Succeeded"}})
    assert "status" not in created

    k8s.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "trainingruns", "run", {"status": {"phase": "Running"}}
    )
    current = read(k8s, namespace, "TrainingRun", "run")
    replace(k8s, namespace, {**current, "status": {"phase": "Failed"}})

    assert read(k8s, namespace, "TrainingRun", "run")["status"] == {"phase": "Running"}


def test_kubectl_get_shows_the_columns_and_the_cairn_category(k8s: Kube, namespace: str) -> None:
    create(k8s, namespace, training_run())
    create(k8s, namespace, model())
    create(k8s, namespace, model_version(metrics={"accuracy": 0.97}))
    k8s.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        "trainingruns",
        "run",
        {"status": {"phase": "Succeeded", "keyMetric": "accuracy=0.97", "modelVersion": "iris-v1"}},
    )

    everything = run_kubectl("get", "cairn", "-n", namespace, "-o", "name")
    runs = run_kubectl("get", "tr", "-n", namespace)
    versions = run_kubectl("get", "mv", "-n", namespace)
    models = run_kubectl("get", "mdl", "-n", namespace)

    assert set(everything.stdout.split()) == {
        "trainingrun.cairn.dev/run",
        "model.cairn.dev/iris",
        "modelversion.cairn.dev/iris-v1",
    }, everything.stderr
    header, row = runs.stdout.splitlines()
    assert header.split() == ["NAME", "PHASE", "MODEL", "METRIC", "VERSION", "AGE"]
    assert row.split()[:5] == ["run", "Succeeded", "iris", "accuracy=0.97", "iris-v1"]
    assert versions.stdout.split()[:7] == [
        *("NAME", "MODEL", "VERSION", "APPROVAL", "VALIDATED", "METRIC", "AGE")
    ], versions.stderr
    assert models.stdout.split()[:4] == ["NAME", "LATEST", "ALIASES", "AGE"], models.stderr


def test_model_deployment_columns_defaults_and_scale(k8s: Kube, namespace: str) -> None:
    created = create(k8s, namespace, model_deployment(alias="production"))
    assert created["spec"] == {
        "model": "iris",
        "alias": "production",
        "replicas": 1,
        "imagePullPolicy": "IfNotPresent",
        "port": 8080,
        "grpcPort": 8081,
        "progressDeadlineSeconds": 600,
        "paused": False,
    }
    k8s.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        "modeldeployments",
        "iris",
        {
            "status": {
                "phase": "Progressing",
                "stable": {"version": 3},
                "canary": {"version": 4, "weight": 20},
                "replicas": 2,
                "selector": "cairn.dev/deployment=iris",
            }
        },
    )

    scaled = run_kubectl("scale", "mdep/iris", "-n", namespace, "--replicas=3")
    listing = run_kubectl("get", "mdep", "-n", namespace)
    scale = k8s.custom.get_namespaced_custom_object_scale(
        GROUP, VERSION, namespace, "modeldeployments", "iris"
    )

    assert scaled.returncode == 0, scaled.stderr
    assert read(k8s, namespace, "ModelDeployment", "iris")["spec"]["replicas"] == 3
    assert scale["status"] == {"replicas": 2, "selector": "cairn.dev/deployment=iris"}
    header, row = listing.stdout.splitlines()
    assert header.split() == ["NAME", "MODEL", "STABLE", "CANARY", "WEIGHT", "PHASE", "AGE"]
    assert row.split()[:6] == ["iris", "iris", "3", "4", "20", "Progressing"]


def test_kubectl_explain_shows_the_field_descriptions() -> None:
    def explain(field: str) -> str | None:
        result = run_kubectl("explain", field)
        # kubectl wraps the text to its width: compare words, not lines.
        return " ".join(result.stdout.split()) if result.returncode == 0 else None

    spec = wait_for(
        lambda: explain("trainingrun.spec"),
        timeout=OPENAPI_TIMEOUT,
        message="kubectl explain trainingrun.spec to answer",
    )
    approval = explain("modelversion.spec.approval.state")

    assert "What to train and how." in spec
    assert "Name of the Model this run trains" in spec
    assert "The one field that may change after creation." in spec
    assert approval is not None
    assert "Approved or Rejected" in approval
    fairness = explain("model.spec.policy.fairness.metric")
    assert fairness is not None and "demographicParityDifference, disparateImpactRatio" in fairness
