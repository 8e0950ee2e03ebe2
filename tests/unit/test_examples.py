"""The examples stay runnable: manifests parse, name no namespace, and carry the current code."""

from pathlib import Path

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MANIFESTS = sorted(EXAMPLES.glob("**/*.yaml"))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_manifests_name_no_namespace(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        assert "namespace" not in doc["metadata"], f"{path}: `kubectl apply -n` must choose it"


@pytest.mark.parametrize("folder", ["iris", "iris/broken", "churn", "credit"])
def test_config_maps_carry_their_train_py(folder: str) -> None:
    config_map = yaml.safe_load((EXAMPLES / folder / "configmap.yaml").read_text())
    assert config_map["data"]["train.py"] == (EXAMPLES / folder / "train.py").read_text(), (
        f"examples/{folder}/configmap.yaml is out of date; regenerate it with the command on its "
        "first line"
    )
