"""Automatic promotion on the real cluster: each run scores the production version beside its own
model on its own test rows; the alias moves only to a version that beats it there, the
ModelDeployment following the alias rolls it out as a canary, and a pin in spec.aliases freezes
the policy."""

from pathlib import Path
from typing import Any

import pytest

from tests.support.kube import Kube
from tests.support.operator import RunningOperator
from tests.support.training import (
    GROUP,
    VERSION,
    condition,
    create_model,
    create_run,
    get,
    script_config_map,
    wait_for_run,
)
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

Body = dict[str, Any]
# A stump, a model that always answers the commonest class, or a forest: three qualities on the
# same wine rows, each scored beside the production version by cairn.training.evaluate.
TRAINER = """
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier
from cairn import training

data = training.load_dataset()
X_train, X_test, y_train, y_test = train_test_split(
    data.X, data.y, test_size=0.3, random_state=0, stratify=data.y
)
kind = training.param("kind", "forest")
model = {
    "stump": lambda: DecisionTreeClassifier(max_depth=1, random_state=0),
    "constant": lambda: DummyClassifier(strategy="most_frequent"),
    "forest": lambda: RandomForestClassifier(n_estimators=100, random_state=0),
}[kind]().fit(X_train, y_train)
macro = lambda truth, predicted: f1_score(truth, predicted, average="macro")
training.evaluate(model, X_test, y_test, {"f1_macro": macro})
training.save_model(model)
"""
POLICY = {"promotion": {"alias": "production", "metric": "f1_macro"}}


def train(k8s: Kube, namespace: str, name: str, kind: str) -> Body:
    create_run(
        k8s,
        namespace,
        name,
        model="wine",
        code="promote",
        params={"kind": kind},
        dataset={"uri": "sklearn://wine"},
    )
    run: Body = wait_for_run(k8s, namespace, name, "Succeeded", timeout=240, registered=True)
    return run


def production(k8s: Kube, namespace: str, expected: int) -> Body:
    def at_expected() -> Body | None:
        model = get(k8s, namespace, "models", "wine")
        aliases = ((model or {}).get("status") or {}).get("aliases") or {}
        return model if aliases.get("production") == expected else None

    found: Body = wait_for(
        at_expected,
        timeout=60,
        message=f"production to name version {expected}",
        describe=lambda: str((get(k8s, namespace, "models", "wine") or {}).get("status")),
    )
    return found


def promoted(k8s: Kube, namespace: str, version: str, reason: str) -> Body:
    """The version's Promoted condition, once the policy's verdict on it is `reason` (the
    version's condition follows the Model's alias a moment later)."""

    def judged() -> Body | None:
        found = condition(get(k8s, namespace, "modelversions", version) or {}, "Promoted")
        return found if found and found["reason"] == reason else None

    said: Body = wait_for(
        judged,
        timeout=60,
        message=f"{version}'s Promoted condition to say {reason}",
        describe=lambda: str(
            condition(get(k8s, namespace, "modelversions", version) or {}, "Promoted")
        ),
    )
    return said


def test_only_a_better_version_takes_production_and_the_canary_rolls_it_out(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    script_config_map(k8s, namespace, "promote", TRAINER)
    create_model(k8s, namespace, "wine", {"policy": POLICY})

    first = train(k8s, namespace, "stump", "stump")
    assert first["status"].get("champion") is None  # nothing to beat yet
    production(k8s, namespace, 1)
    mdep = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": "wine"},
        "spec": {
            "model": "wine",
            "alias": "production",
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "2s"}}]}},
        },
    }
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments", mdep)

    worse = train(k8s, namespace, "constant", "constant")
    assert worse["status"]["champion"]["version"] == 1  # given v1, mounted, to score
    said = promoted(k8s, namespace, "wine-v2", "NotBetter")
    assert said["status"] == "False"
    evaluation = (get(k8s, namespace, "modelversions", "wine-v2") or {})["spec"]["evaluation"]
    assert evaluation["championVersion"] == 1
    mine = worse["status"]["metrics"]["f1_macro"]
    theirs = evaluation["championMetrics"]["f1_macro"]
    assert mine < theirs  # on the same rows: the stump beats a constant answer
    assert f"f1_macro {mine:.4g} against v1's {theirs:.4g}" in said["message"]
    production(k8s, namespace, 1)

    better = train(k8s, namespace, "forest", "forest")
    model = production(k8s, namespace, 3)
    moved = model["status"]["history"][-1]
    assert (moved["action"], moved["fromVersion"], moved["toVersion"]) == ("Promoted", 1, 3)
    assert (
        better["status"]["metrics"]["f1_macro"]
        > better["status"]["evaluation"]["championMetrics"]["f1_macro"]
    )
    assert promoted(k8s, namespace, "wine-v3", "Promoted")["status"] == "True"
    # The ModelDeployment follows: a canary of v3 beside v1, then v3 promoted to stable.
    wait_for(
        lambda: (
            ((get(k8s, namespace, "modeldeployments", "wine") or {}).get("status") or {})
            .get("stable", {})
            .get("version")
            == 3
        ),
        timeout=180,
        message="the ModelDeployment to serve v3 as its stable",
        describe=lambda: str((get(k8s, namespace, "modeldeployments", "wine") or {}).get("status")),
    )


def test_a_pinned_alias_is_never_moved_by_the_policy(
    k8s: Kube, namespace: str, operator: RunningOperator, artifacts: Path
) -> None:
    script_config_map(k8s, namespace, "promote", TRAINER)
    create_model(k8s, namespace, "wine", {"policy": POLICY, "aliases": {"production": 1}})
    train(k8s, namespace, "stump", "stump")
    train(k8s, namespace, "forest", "forest")
    model = production(k8s, namespace, 1)
    overridden = condition(model, "PromotionOverridden")
    assert overridden["status"] == "True"
    assert "spec.aliases pins production to 1" in overridden["message"]
    said = promoted(k8s, namespace, "wine-v2", "PromotionOverridden")
    assert said["status"] == "False"
