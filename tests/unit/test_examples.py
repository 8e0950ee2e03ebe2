"""The examples stay runnable: manifests parse, name no namespace, and carry the current code."""

from pathlib import Path

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MANIFESTS = sorted(EXAMPLES.glob("*/*.yaml"))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_manifests_name_no_namespace(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        assert "namespace" not in doc["metadata"], f"{path}: `kubectl apply -n` must choose it"


def test_iris_config_map_carries_train_py() -> None:
    config_map = yaml.safe_load((EXAMPLES / "iris/configmap.yaml").read_text())
    assert config_map["data"]["train.py"] == (EXAMPLES / "iris/train.py").read_text(), (
        "examples/iris/configmap.yaml is out of date; regenerate it with the command on its "
        "first line"
    )
