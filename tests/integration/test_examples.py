"""Every manifest under examples/ is accepted by the API server as it is: its schema and CEL rules,
checked by a server-side dry run (nothing is created), so an example never teaches a field the
API refuses."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import utils

from tests.support.kube import Kube

pytestmark = pytest.mark.usefixtures("crds_installed")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MANIFESTS = sorted(EXAMPLES.glob("**/*.yaml"))
GROUP = "cairn.dev"


def dry_run(k8s: Kube, namespace: str, doc: dict[str, Any]) -> dict[str, Any]:
    api_version: str = doc["apiVersion"]
    if api_version.startswith(f"{GROUP}/"):
        version = api_version.split("/", 1)[1]
        plural = doc["kind"].lower() + "s"
        created: dict[str, Any] = k8s.custom.create_namespaced_custom_object(
            GROUP, version, namespace, plural, doc, dry_run="All"
        )
        return created
    found = utils.create_from_dict(k8s.api_client, doc, namespace=namespace, dry_run="All")
    return dict(found[0].to_dict())


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_the_api_server_accepts_the_example(k8s: Kube, namespace: str, path: Path) -> None:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert docs, f"{path} holds no manifest"
    for doc in docs:
        accepted = dry_run(k8s, namespace, doc)
        assert accepted["metadata"]["name"] == doc["metadata"]["name"]
