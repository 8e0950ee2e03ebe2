"""A canary routed by a Gateway API HTTPRoute on the real cluster: the operator writes each
step's exact weights into the user's route, keeps per-track Services behind it, gives the canary
only the pods its share needs, and hands all traffic back to the stable when it promotes."""

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cairn.cli.main import main
from tests.support.deployments import (
    create_deployment,
    describe,
    infer,
    service_base,
    wait_serving,
)
from tests.support.kube import Kube, read_or_none
from tests.support.operator import RunningOperator
from tests.support.rollouts import canary_spec, set_version, status_of, two_versions, wait_at_step
from tests.support.training import condition, expect_events, get
from tests.support.wait import wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")

Body = dict[str, Any]
GATEWAY_API = ("gateway.networking.k8s.io", "v1", "httproutes")
INSTALL = Path(__file__).resolve().parents[2] / "hack/localkube/gateway-api.sh"


@pytest.fixture(scope="module")
def gateway_api(k8s: Kube) -> Iterator[None]:
    """The Gateway API's CRDs, removed afterwards unless they were there before."""
    ext = k8s.api_client
    from kubernetes.client import ApiextensionsV1Api

    crds = ApiextensionsV1Api(ext)
    present = read_or_none(crds.read_custom_resource_definition, "httproutes." + GATEWAY_API[0])
    subprocess.run([str(INSTALL)], check=True)
    yield
    if present is None:
        subprocess.run([str(INSTALL), "--delete"], check=True)


def route_refs(k8s: Kube, namespace: str, name: str) -> list[Body]:
    route = k8s.custom.get_namespaced_custom_object(
        GATEWAY_API[0], GATEWAY_API[1], namespace, GATEWAY_API[2], name
    )
    refs: list[Body] = route["spec"]["rules"][0]["backendRefs"]
    return refs


def wait_route(k8s: Kube, namespace: str, stable: int, canary: int) -> None:
    service = {"group": "", "kind": "Service", "port": 8080}
    wanted = [
        {**service, "name": "gw-stable", "weight": stable},
        {**service, "name": "gw-canary", "weight": canary},
    ]
    wait_for(
        lambda: route_refs(k8s, namespace, "web") == wanted,
        timeout=30,
        message=f"the HTTPRoute to send {stable}/{canary}",
        describe=lambda: str(route_refs(k8s, namespace, "web")),
    )


@pytest.mark.usefixtures("gateway_api")
def test_a_routed_canary_gets_exact_weights_on_the_httproute(
    k8s: Kube, namespace: str, artifacts: Path, operator: RunningOperator
) -> None:
    two_versions(k8s, namespace, artifacts)
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web"},
        "spec": {
            "parentRefs": [{"name": "edge"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/v2/models/iris"}}],
                    "backendRefs": [{"name": "gw-stable", "port": 8080}],
                }
            ],
        },
    }
    k8s.custom.create_namespaced_custom_object(*GATEWAY_API[:2], namespace, GATEWAY_API[2], route)
    steps: list[Body] = [{"setWeight": 10}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]
    strategy = canary_spec(steps, analysis=None)
    strategy["canary"]["trafficRouting"] = {"gatewayAPI": {"httpRoute": "web"}}
    create_deployment(k8s, namespace, "gw", version=1, replicas=2, strategy=strategy)
    wait_serving(k8s, namespace, "gw", 1)

    set_version(k8s, namespace, "gw", 2)
    status = wait_at_step(k8s, namespace, "gw", 1, 10)
    wait_route(k8s, namespace, 90, 10)
    # The exact weight needs one canary pod; the stable keeps both of its own.
    assert status["stable"]["replicas"] == 2 and status["canary"]["replicas"] == 1
    # Each track's Service reaches that track only; the main one the stable.
    assert infer(service_base(k8s, namespace, "gw-canary"))["model_version"] == "2"
    assert infer(service_base(k8s, namespace, "gw-stable"))["model_version"] == "1"
    assert {infer(service_base(k8s, namespace, "gw"))["model_version"] for _ in range(20)} == {"1"}
    # The route's other fields are the user's and stay as they were.
    live = k8s.custom.get_namespaced_custom_object(
        *GATEWAY_API[:2], namespace, GATEWAY_API[2], "web"
    )
    assert live["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge"}
    ]
    assert live["spec"]["rules"][0]["matches"][0]["path"]["value"] == "/v2/models/iris"

    assert main(["resume", "gw", "-n", namespace]) == 0
    status = wait_at_step(k8s, namespace, "gw", 3, 60)
    wait_route(k8s, namespace, 40, 60)
    assert status["stable"]["replicas"] == 2 and status["canary"]["replicas"] == 2

    assert main(["resume", "gw", "-n", namespace]) == 0
    wait_serving(k8s, namespace, "gw", 2)
    wait_route(k8s, namespace, 100, 0)
    wait_for(
        lambda: read_or_none(k8s.apps.read_namespaced_deployment, "gw-canary", namespace) is None,
        timeout=60,
        message="the canary Deployment to be removed",
        describe=lambda: describe(k8s, namespace, "gw"),
    )
    expect_events(k8s, namespace, "gw", {"RolloutStarted", "Promoted"})


@pytest.mark.usefixtures("gateway_api")
def test_a_missing_httproute_holds_the_canary_and_says_so(
    k8s: Kube, namespace: str, artifacts: Path, operator: RunningOperator
) -> None:
    two_versions(k8s, namespace, artifacts)
    strategy = canary_spec([{"setWeight": 50}], analysis=None)
    strategy["canary"]["trafficRouting"] = {"gatewayAPI": {"httpRoute": "absent"}}
    create_deployment(k8s, namespace, "lost", version=1, strategy=strategy)
    wait_serving(k8s, namespace, "lost", 1)

    set_version(k8s, namespace, "lost", 2)
    degraded = wait_for(
        lambda: (lambda c: c if c.get("status") == "True" else None)(
            condition(get(k8s, namespace, "modeldeployments", "lost") or {}, "Degraded")
        ),
        timeout=120,
        message="the missing route to be reported",
        describe=lambda: describe(k8s, namespace, "lost"),
    )
    assert degraded["reason"] == "TrafficRoutingFailed"
    assert "HTTPRoute absent" in degraded["message"] and "not found" in degraded["message"]
    status = status_of(k8s, namespace, "lost")
    assert status["stable"]["version"] == 1 and status["canary"]["step"] == 0  # never promoted
