"""Exact canary weights through a Gateway API HTTPRoute (spec.strategy.canary.trafficRouting
.gatewayAPI): pure.

The user's HTTPRoute sends requests to the Service `<name>-stable`; in every rule that names it
(or `<name>-canary`) the operator keeps both backendRefs, with the canary's weight and the
stable's 100 minus it. The route is the user's object: only those weights are written.
"""

import copy
from typing import Any

from cairn.api import ModelDeploymentSpec
from cairn.api.modeldeployment import CANARY, STABLE
from cairn.controllers.deployment import manifests

Body = dict[str, Any]


class RouteError(Exception):
    """The HTTPRoute cannot carry the split; the message says what to change."""


def route_name(spec: ModelDeploymentSpec) -> str | None:
    """The HTTPRoute a ModelDeployment's canary weights go to, None without trafficRouting."""
    canary = spec.strategy.canary if spec.strategy else None
    routing = canary.traffic_routing if canary else None
    gateway = routing.gateway_api if routing else None
    return gateway.http_route if gateway else None


def _ours(ref: Body, namespace: str, services: tuple[str, str]) -> bool:
    return (
        ref.get("group", "") == ""
        and ref.get("kind", "Service") == "Service"
        and ref.get("namespace", namespace) == namespace
        and ref.get("name") in services
    )


def _services(deployment: str) -> tuple[str, str]:
    return (
        manifests.track_service_name(deployment, STABLE),
        manifests.track_service_name(deployment, CANARY),
    )


def canary_weight(route: Body, deployment: str) -> int | None:
    """The canary's share on the route, %, as the route says now (None: no rule names it)."""
    namespace = route["metadata"]["namespace"]
    stable, canary = _services(deployment)
    for rule in (route.get("spec") or {}).get("rules") or []:
        refs = [r for r in rule.get("backendRefs") or [] if _ours(r, namespace, (stable, canary))]
        if not refs:
            continue
        weights = {r["name"]: int(r.get("weight", 1)) for r in refs}
        total = sum(weights.values())
        return round(100 * weights.get(canary, 0) / total) if total else 0
    return None


def _ref(service: str, port: int, weight: int) -> Body:
    # group and kind spelled out as the API server defaults them, so an unchanged route
    # compares equal and is not written again.
    return {"group": "", "kind": "Service", "name": service, "port": port, "weight": weight}


def with_weight(route: Body, deployment: str, port: int, weight: int) -> list[Body]:
    """The route's rules with the canary at `weight` % in every rule that sends to the
    ModelDeployment's Services (on its `port`); raises RouteError when no rule does."""
    namespace = route["metadata"]["namespace"]
    stable, canary = _services(deployment)
    rules: list[Body] = copy.deepcopy((route.get("spec") or {}).get("rules") or [])
    found = False
    for rule in rules:
        refs = rule.get("backendRefs") or []
        ours = [r for r in refs if _ours(r, namespace, (stable, canary))]
        if not ours:
            continue
        found = True
        kept = [r for r in refs if not _ours(r, namespace, (stable, canary))]
        rule["backendRefs"] = [*kept, _ref(stable, port, 100 - weight), _ref(canary, port, weight)]
    if not found:
        raise RouteError(
            f"HTTPRoute {route['metadata']['name']} has no rule with a backendRef to Service "
            f"{stable}: add one (port {port}) and the operator sets the canary's weight beside it"
        )
    return rules
