"""ContinuousTrainings for tests: created, asked to retrain, and the runs they started."""

from typing import Any

from tests.support.kube import Kube
from tests.support.training import GROUP, VERSION, get

Body = dict[str, Any]
PLURAL = "continuoustrainings"


def create_ct(k8s: Kube, namespace: str, name: str, template: Body, **spec: Any) -> Body:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ContinuousTraining",
        "metadata": {"name": name},
        "spec": {"model": name, "template": template, **spec},
    }
    created: Body = k8s.custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )
    return created


def patch_ct(k8s: Kube, namespace: str, name: str, patch: Body) -> None:
    k8s.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, patch)


def retrain(k8s: Kube, namespace: str, name: str, reason: str) -> None:
    patch_ct(k8s, namespace, name, {"metadata": {"annotations": {"cairn.dev/retrain": reason}}})


def runs_of(k8s: Kube, namespace: str, ct: str) -> list[str]:
    listing = k8s.custom.list_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "trainingruns",
        label_selector=f"cairn.dev/continuous-training={ct}",
    )
    return sorted(item["metadata"]["name"] for item in listing["items"])


def ct_status(k8s: Kube, namespace: str, name: str) -> Body:
    found: Body = (get(k8s, namespace, PLURAL, name) or {}).get("status") or {}
    return found
