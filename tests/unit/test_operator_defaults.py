"""Installation-wide settings the operator reads from its environment (the Helm chart sets them)."""

import kopf
import pytest

from cairn.api import ModelDeployment, ModelDeploymentSpec, TrainingRun
from cairn.controllers import defaults
from cairn.controllers import settings as controller_settings
from cairn.controllers.deployment import manifests
from cairn.controllers.deployment.target import Target
from cairn.controllers.trainingrun import jobspec


def test_images_default_to_the_dev_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAIRN_TRAINER_IMAGE", raising=False)
    monkeypatch.delenv("CAIRN_SERVER_IMAGE", raising=False)
    assert defaults.trainer_image() == "docker.io/cairn/trainer:dev"
    assert defaults.server_image() == "docker.io/cairn/server:dev"


def test_a_run_without_an_image_gets_the_installations_trainer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAIRN_TRAINER_IMAGE", "registry.example.com/ml/trainer:1.2")
    body = {"metadata": {"name": "r", "namespace": "ml", "uid": "u"}, "spec": {"model": "iris"}}
    run = TrainingRun.model_validate(body)
    job = jobspec.build_job(run)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/ml/trainer:1.2"

    run.spec.image = "mine:1"  # the object's own choice wins
    (container,) = jobspec.build_job(run)["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "mine:1"


def test_a_model_deployment_without_an_image_gets_the_installations_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAIRN_SERVER_IMAGE", "registry.example.com/ml/server:1.2")
    mdep = ModelDeployment.model_validate(
        {"metadata": {"name": "iris", "namespace": "ml", "uid": "u"}, "spec": {"model": "iris"}}
    )
    target = Target("iris", 1, "pvc://cairn-artifacts/iris/iris-1", "sha256:" + "ab" * 32)

    built = manifests.build_deployment(mdep, "stable", target, 1)

    (container,) = built["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/ml/server:1.2"


@pytest.mark.parametrize(
    ("environ", "disabled"),
    [({}, False), ({"CAIRN_SCANNING": "true"}, False), ({"CAIRN_SCANNING": "false"}, True)],
)
def test_scanning_is_off_only_when_asked(environ: dict[str, str], disabled: bool) -> None:
    settings = kopf.OperatorSettings()
    controller_settings.configure(
        settings, instance="cairn-0", scanning=controller_settings.scanning(environ)
    )
    assert settings.scanning.disabled is disabled


def canary(analysis: dict[str, object] | None) -> ModelDeploymentSpec:
    strategy: dict[str, object] = {"steps": [{"setWeight": 50}]}
    if analysis is not None:
        strategy["analysis"] = analysis
    return ModelDeploymentSpec.model_validate({"model": "iris", "strategy": {"canary": strategy}})


def analysis_of(spec: ModelDeploymentSpec) -> dict[str, object]:
    assert spec.strategy is not None and spec.strategy.canary is not None
    assert spec.strategy.canary.analysis is not None
    return spec.strategy.canary.analysis.to_dict()


def test_unset_analysis_settings_come_from_the_installation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("INTERVAL", "FAILURE_LIMIT", "MIN_REQUESTS"):
        monkeypatch.delenv(f"CAIRN_ANALYSIS_{variable}", raising=False)
    filled = defaults.with_analysis_defaults(canary({"minRequests": 5}))
    assert analysis_of(filled) == {
        "interval": "10s",
        "failureLimit": 2,
        "minRequests": 5,  # the object's own setting wins
        "provider": "builtin",
    }
    settings = defaults.settings_of(filled)
    assert settings is not None and settings.failure_limit == 2  # what status records

    monkeypatch.setenv("CAIRN_ANALYSIS_INTERVAL", "30s")
    monkeypatch.setenv("CAIRN_ANALYSIS_FAILURE_LIMIT", "3")
    spec = canary({})
    filled = defaults.with_analysis_defaults(spec)
    assert analysis_of(filled) == {
        "interval": "30s",
        "failureLimit": 3,
        "minRequests": 20,
        "provider": "builtin",
    }
    assert analysis_of(spec) == {"provider": "builtin"}  # not modified
    no_analysis = canary(None)
    assert defaults.with_analysis_defaults(no_analysis) is no_analysis


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("CAIRN_ANALYSIS_INTERVAL", "10", "CAIRN_ANALYSIS_INTERVAL: '10' is not a duration"),
        ("CAIRN_ANALYSIS_FAILURE_LIMIT", "0", "must be a whole number of at least 1"),
        ("CAIRN_ANALYSIS_MIN_REQUESTS", "many", "must be a whole number of at least 1"),
    ],
)
def test_a_bad_analysis_default_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=says):
        defaults.analysis()
