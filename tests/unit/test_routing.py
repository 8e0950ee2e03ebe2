"""Exact weights through a Gateway API HTTPRoute (controllers/deployment/routing.py) and the
replica plan that goes with them."""

import pytest

from cairn.api import ModelDeploymentSpec
from cairn.controllers.deployment import routing
from cairn.controllers.deployment.rollout import split

ROUTE = {
    "metadata": {"name": "web", "namespace": "team"},
    "spec": {
        "parentRefs": [{"name": "gateway"}],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/v2/models/iris"}}],
                "backendRefs": [{"name": "iris-stable", "port": 8080}],
            },
            {"backendRefs": [{"name": "docs", "port": 80}]},
        ],
    },
}


def test_weights_are_set_beside_the_stable_backend_and_nothing_else_changes() -> None:
    rules = routing.with_weight(ROUTE, "iris", 8080, 10)

    service = {"group": "", "kind": "Service", "port": 8080}
    assert rules[0]["backendRefs"] == [
        {**service, "name": "iris-stable", "weight": 90},
        {**service, "name": "iris-canary", "weight": 10},
    ]
    assert rules[0]["matches"] == ROUTE["spec"]["rules"][0]["matches"]  # type: ignore[index]
    assert rules[1] == {"backendRefs": [{"name": "docs", "port": 80}]}
    assert ROUTE["spec"]["rules"][0]["backendRefs"] == [  # type: ignore[index]
        {"name": "iris-stable", "port": 8080}
    ]  # the route read is not modified in place
    assert routing.canary_weight(ROUTE, "iris") == 0
    moved = {**ROUTE, "spec": {"rules": rules}}
    assert routing.canary_weight(moved, "iris") == 10
    back = routing.with_weight(moved, "iris", 8080, 0)
    assert back[0]["backendRefs"][1] == {**service, "name": "iris-canary", "weight": 0}


def test_a_route_without_the_stable_service_is_refused_with_the_fix() -> None:
    with pytest.raises(
        routing.RouteError, match="no rule with a backendRef to Service fraud-stable"
    ):
        routing.with_weight(ROUTE, "fraud", 8080, 10)
    assert routing.canary_weight(ROUTE, "fraud") is None


def test_a_routed_canary_gets_the_pods_its_share_needs_and_the_stable_keeps_all() -> None:
    assert split(4, 10, routed=True) == (4, 1)
    assert split(4, 60, routed=True) == (4, 3)
    assert split(4, 100, routed=True) == (4, 4)
    assert split(4, 0, routed=True) == (4, 0)
    assert split(4, 10) == (3, 1)  # by replica ratio, for comparison


def test_the_route_name_comes_from_the_canary_strategy() -> None:
    routed = {"steps": [{"setWeight": 5}], "trafficRouting": {"gatewayAPI": {"httpRoute": "web"}}}
    spec = ModelDeploymentSpec.model_validate({"model": "iris", "strategy": {"canary": routed}})
    assert routing.route_name(spec) == "web"
    plain = {"model": "iris", "strategy": {"canary": {"steps": [{"setWeight": 5}]}}}
    assert routing.route_name(ModelDeploymentSpec.model_validate(plain)) is None
