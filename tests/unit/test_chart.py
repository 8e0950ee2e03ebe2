"""The Helm chart charts/cairn, rendered by the real helm binary (`make helm` builds it).

What a platform team gets from `helm install`: the kinds, the RBAC (least privilege, no
wildcards, nothing cluster-scoped in namespaced mode but the approval policy), the approval
policy, the operator's hardening, and values that are refused with a message naming the field.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from cairn import __version__
from tests.support.cluster import REPO_ROOT
from tests.support.helm import CHART, helm

Manifest = dict[str, Any]
RELEASE, NAMESPACE = "cairn", "cairn-system"
NAMESPACED = {"watchNamespaces": ["team-a", "team-b"]}
APPROVER = "cairn-approver"
NO_APPROVALS = {"approvals": {"enforce": False, "approverRole": {"create": False}}}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}

# Every permission the operator holds in a namespace it watches, and the code that needs it.
EXPECTED_NAMESPACED_RULES = {
    # kopf watches and annotates all five kinds; the controllers read them (kube/objects.py)
    ("cairn.dev", "trainingruns"): {"get", "list", "watch", "patch", "create", "delete"},
    ("cairn.dev", "models"): {"get", "list", "watch", "patch", "create"},
    ("cairn.dev", "modelversions"): {"get", "list", "watch", "patch", "create", "delete"},
    ("cairn.dev", "modeldeployments"): {"get", "list", "watch", "patch"},
    ("cairn.dev", "continuoustrainings"): {"get", "list", "watch", "patch"},
    ("cairn.dev", "trainingruns/status"): {"patch"},
    ("cairn.dev", "models/status"): {"patch"},
    ("cairn.dev", "modelversions/status"): {"patch"},
    ("cairn.dev", "modeldeployments/status"): {"patch"},
    ("cairn.dev", "continuoustrainings/status"): {"patch"},
    ("cairn.dev", "trainingruns/finalizers"): {"update"},
    ("cairn.dev", "models/finalizers"): {"update"},
    ("cairn.dev", "modeldeployments/finalizers"): {"update"},
    ("cairn.dev", "continuoustrainings/finalizers"): {"update"},
    ("batch", "jobs"): {"get", "list", "watch", "create", "patch"},
    ("", "pods"): {"list", "watch", "create", "delete"},
    ("", "pods/log"): {"get"},
    ("", "pods/proxy"): {"get"},
    ("", "persistentvolumeclaims"): {"get"},
    ("", "configmaps"): {"get"},
    ("apps", "deployments"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "services"): {"get", "create", "patch"},
    ("", "events"): {"create", "list"},
    ("gateway.networking.k8s.io", "httproutes"): {"get", "patch"},
}
# Cluster-wide only: kopf's scanning of CRDs.
EXPECTED_CLUSTER_ONLY_RULES = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
}


def render(tmp_path: Path, values: dict[str, Any] | None = None) -> list[Manifest]:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values or {}))
    out = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", str(values_file))
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def render_error(tmp_path: Path, values: dict[str, Any]) -> str:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    done = helm("template", RELEASE, str(CHART), "-f", str(values_file), check=False)
    assert done.returncode != 0, f"helm accepted {values}"
    return done.stderr


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    # The approver ClusterRole is for people, not the operator: see the approval tests.
    return [
        m
        for m in manifests
        if m["kind"] == kind and not (kind == "ClusterRole" and m["metadata"]["name"] == APPROVER)
    ]


def the(manifests: list[Manifest], kind: str) -> Manifest:
    (found,) = of_kind(manifests, kind)
    return found


def container(manifests: list[Manifest]) -> Manifest:
    (operator,) = the(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(operator)


def env(manifests: list[Manifest]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container(manifests)["env"]}


def granted(role: Manifest) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) → verbs, over all of a Role's rules."""
    verbs: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                verbs.setdefault((group, resource), set()).update(rule["verbs"])
    return verbs


@pytest.mark.parametrize("values", [{}, NAMESPACED], ids=["cluster-wide", "namespaced"])
def test_lint_is_clean_even_strict(values: dict[str, Any], tmp_path: Path) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    for strict in ([], ["--strict"]):
        out = helm("lint", str(CHART), "-f", str(values_file), *strict).stdout
        assert "0 chart(s) failed" in out, out
        assert "[WARNING]" not in out and "[ERROR]" not in out, out


def test_app_version_is_the_operators() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__


def test_default_is_cluster_wide(tmp_path: Path) -> None:
    manifests = render(tmp_path)

    assert sorted(m["kind"] for m in manifests) == sorted(
        ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "Service"]
        + ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ClusterRole"]
        + ["CustomResourceDefinition"] * 5
    )
    assert container(manifests)["args"] == ["--all-namespaces"]
    assert "CAIRN_NAMESPACES" not in env(manifests)
    binding = the(manifests, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "cairn", "namespace": NAMESPACE}
    ]
    assert binding["roleRef"]["name"] == the(manifests, "ClusterRole")["metadata"]["name"]


def test_namespaced_mode_has_a_role_per_namespace_and_nothing_cluster_scoped(
    tmp_path: Path,
) -> None:
    manifests = render(tmp_path, NAMESPACED)
    bare = render(tmp_path, {**NAMESPACED, **NO_APPROVALS})

    assert not of_kind(manifests, "ClusterRole") and not of_kind(manifests, "ClusterRoleBinding")
    # Only the approval policy (bound to the watched namespaces) and the approver role, which a
    # namespace administrator without cluster rights turns off.
    cluster_scoped = {
        "ClusterRole",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
    assert {m["kind"] for m in bare} & cluster_scoped == set()
    roles = {m["metadata"]["namespace"]: m for m in of_kind(manifests, "Role")}
    bindings = {m["metadata"]["namespace"]: m for m in of_kind(manifests, "RoleBinding")}
    assert set(roles) == set(bindings) == {"team-a", "team-b"}
    for namespace, binding in bindings.items():
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": roles[namespace]["metadata"]["name"],
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "cairn", "namespace": NAMESPACE}
        ]
    assert "args" not in container(manifests)
    assert env(manifests)["CAIRN_NAMESPACES"] == "team-a,team-b"
    # No permission to list namespaces or CRDs, so kopf must not try.
    assert env(manifests)["CAIRN_SCANNING"] == "false"


@pytest.mark.parametrize("values", [{}, NAMESPACED], ids=["cluster-wide", "namespaced"])
def test_no_wildcard_in_any_rule(values: dict[str, Any], tmp_path: Path) -> None:
    manifests = render(tmp_path, values)
    roles = of_kind(manifests, "ClusterRole") + of_kind(manifests, "Role")
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert not any("*" in item for item in rule[key]), (role["kind"], rule)
            assert "nonResourceURLs" not in rule, rule


def test_rules_are_exactly_what_the_controllers_use(tmp_path: Path) -> None:
    for role in of_kind(render(tmp_path, NAMESPACED), "Role"):
        assert granted(role) == EXPECTED_NAMESPACED_RULES
    cluster_role = the(render(tmp_path), "ClusterRole")
    assert granted(cluster_role) == EXPECTED_NAMESPACED_RULES | EXPECTED_CLUSTER_ONLY_RULES
    # Cluster-scoped grants are read-only.
    for verbs in EXPECTED_CLUSTER_ONLY_RULES.values():
        assert not verbs & WRITE_VERBS


@pytest.mark.parametrize("values", [{}, NAMESPACED], ids=["cluster-wide", "namespaced"])
def test_only_approvers_may_approve_and_only_as_themselves(
    values: dict[str, Any], tmp_path: Path
) -> None:
    manifests = render(tmp_path, values)
    policy = the(manifests, "ValidatingAdmissionPolicy")
    binding = the(manifests, "ValidatingAdmissionPolicyBinding")
    (approver,) = [m for m in manifests if m["metadata"]["name"] == APPROVER]

    assert policy["spec"]["failurePolicy"] == "Fail"
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert (rule["resources"], rule["operations"]) == (["modelversions"], ["CREATE", "UPDATE"])
    checks = " ".join(v["expression"] for v in policy["spec"]["validations"])
    assert ".resource('modelversions')" in checks and ".check('approve').allowed()" in checks
    assert "object.spec.approval.by == request.userInfo.username" in checks
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
        **(
            {
                "matchResources": {
                    "namespaceSelector": {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/metadata.name",
                                "operator": "In",
                                "values": ["team-a", "team-b"],
                            }
                        ]
                    }
                }
            }
            if values
            else {}
        ),
    }
    assert granted(approver)[("cairn.dev", "modelversions")] >= {"patch", "approve"}
    # The operator itself is never an approver.
    for role in of_kind(manifests, "ClusterRole") + of_kind(manifests, "Role"):
        assert "approve" not in {v for r in role["rules"] for v in r["verbs"]}, role
    assert not {"ValidatingAdmissionPolicy", "ClusterRole"} & {
        m["kind"] for m in render(tmp_path, NO_APPROVALS) if m["metadata"]["name"] != "cairn"
    }


def test_crds_are_the_generated_ones_and_kept_on_uninstall(tmp_path: Path) -> None:
    rendered = {
        m["metadata"]["name"]: m for m in of_kind(render(tmp_path), "CustomResourceDefinition")
    }
    generated = {}
    for path in sorted((REPO_ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        generated[crd["metadata"]["name"]] = crd

    assert set(rendered) == set(generated)
    for name, crd in rendered.items():
        assert crd["spec"] == generated[name]["spec"], f"{name}: run make crds"
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    assert not of_kind(render(tmp_path, {"crds": {"install": False}}), "CustomResourceDefinition")


def test_the_operator_runs_hardened(tmp_path: Path) -> None:
    manifests = render(tmp_path)
    deployment = the(manifests, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    operator = container(manifests)

    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["shareProcessNamespace"] is True  # a SIGTERM during its imports ends it
    assert operator["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert [m["mountPath"] for m in operator["volumeMounts"]] == ["/tmp"]
    assert "emptyDir" in volumes[operator["volumeMounts"][0]["name"]]
    assert operator["resources"]["requests"] and operator["resources"]["limits"]["memory"]
    assert pod["serviceAccountName"] == the(manifests, "ServiceAccount")["metadata"]["name"]


def test_the_pod_runs_as_the_images_user(tmp_path: Path) -> None:
    dockerfile = (REPO_ROOT / "images/operator/Dockerfile").read_text()
    (user,) = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
    context = the(render(tmp_path), "Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert (str(context["runAsUser"]), str(context["runAsGroup"])) == user


def test_probes_use_kopfs_health_endpoint_and_metrics_have_a_service(tmp_path: Path) -> None:
    manifests = render(tmp_path)
    operator = container(manifests)
    ports = {p["name"]: p["containerPort"] for p in operator["ports"]}

    assert ports == {"health": 8080, "metrics": 8081}
    assert env(manifests)["CAIRN_HEALTH_ADDR"] == "0.0.0.0:8080"
    assert env(manifests)["CAIRN_METRICS_ADDR"] == "0.0.0.0:8081"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert operator[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    service = the(manifests, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8081, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = the(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_service_monitor_and_dashboard_when_asked(tmp_path: Path) -> None:
    manifests = render(
        tmp_path,
        {"metrics": {"serviceMonitor": {"enabled": True}}, "grafanaDashboard": {"enabled": True}},
    )
    monitor = the(manifests, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        the(manifests, "Service")["metadata"]["labels"].items()
    )
    dashboard = the(manifests, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["cairn.json"]) == json.loads(
        (CHART / "dashboards/cairn.json").read_text()
    )
    assert not of_kind(render(tmp_path), "ServiceMonitor")
    assert not of_kind(render(tmp_path), "ConfigMap")


def test_operator_settings_become_its_environment(tmp_path: Path) -> None:
    manifests = render(
        tmp_path,
        {
            "defaults": {
                "trainerImage": "registry.example.com:5000/ml/trainer:1.2",
                "serverImage": "ghcr.io/acme/server@sha256:" + "a" * 64,
            },
            "logFormat": "json",
            "logLevel": "debug",
        },
    )
    assert {k: v for k, v in env(manifests).items() if k.startswith("CAIRN_ANALYSIS_")} == {
        "CAIRN_ANALYSIS_INTERVAL": "10s",
        "CAIRN_ANALYSIS_FAILURE_LIMIT": "2",
        "CAIRN_ANALYSIS_MIN_REQUESTS": "20",
    }
    analysis = {"interval": "1m", "failureLimit": 3, "minRequests": 50}
    tuned = env(render(tmp_path, {"defaults": {"analysis": analysis}}))
    assert tuned["CAIRN_ANALYSIS_INTERVAL"] == "1m"
    assert tuned["CAIRN_ANALYSIS_FAILURE_LIMIT"] == "3"
    assert tuned["CAIRN_ANALYSIS_MIN_REQUESTS"] == "50"
    assert env(manifests)["CAIRN_TRAINER_IMAGE"] == "registry.example.com:5000/ml/trainer:1.2"
    assert env(manifests)["CAIRN_SERVER_IMAGE"] == "ghcr.io/acme/server@sha256:" + "a" * 64
    assert env(manifests)["CAIRN_LOG_FORMAT"] == "json"
    assert container(manifests)["args"] == ["--all-namespaces", "--verbose"]


def test_artifact_claims_in_each_watched_namespace(tmp_path: Path) -> None:
    persistence = {"enabled": True, "storageClassName": "", "size": "5Gi"}
    claims = of_kind(
        render(tmp_path, {**NAMESPACED, "artifacts": {"persistence": persistence}}),
        "PersistentVolumeClaim",
    )
    assert {c["metadata"]["namespace"] for c in claims} == {"team-a", "team-b"}
    for claim in claims:
        assert claim["metadata"]["name"] == "cairn-artifacts"  # what pvc:// URIs default to
        assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert claim["spec"]["storageClassName"] == ""
        assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    (default_class,) = of_kind(
        render(tmp_path, {"artifacts": {"persistence": {"enabled": True}}}),
        "PersistentVolumeClaim",
    )
    assert default_class["metadata"]["namespace"] == NAMESPACE
    assert "storageClassName" not in default_class["spec"]
    assert not of_kind(render(tmp_path), "PersistentVolumeClaim")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"logFormat": "xml"}, "/logFormat"),
        ({"logLevel": "trace"}, "/logLevel"),
        ({"replicas": "1"}, "/replicas"),
        ({"replicas": 2}, "/replicas"),
        ({"watchNamespaces": ["team-*"]}, "/watchNamespaces/0"),
        ({"watchNamespaces": "team-a"}, "/watchNamespaces"),
        ({"defaults": {"trainerImage": "My Trainer"}}, "/defaults/trainerImage"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"defaults": {"analysis": {"interval": "10"}}}, "/defaults/analysis/interval"),
        ({"defaults": {"analysis": {"failureLimit": 0}}}, "/defaults/analysis/failureLimit"),
        ({"metrics": {"port": 8080}}, "/metrics/port"),
        ({"crds": {"install": "yes"}}, "/crds/install"),
        ({"artifacts": {"persistence": {"size": "ten gigs"}}}, "/artifacts/persistence/size"),
        ({"logformat": "json"}, "'logformat' not allowed"),
        ({"approvals": {"policyName": "Approvals!"}}, "/approvals/policyName"),
        ({"approvals": {"approverRole": {"name": ""}}}, "/approvals/approverRole/name"),
    ],
)
def test_bad_values_fail_naming_the_field(
    values: dict[str, Any], field: str, tmp_path: Path
) -> None:
    message = render_error(tmp_path, values)
    assert field in message, message


def test_a_service_monitor_without_its_service_is_refused(tmp_path: Path) -> None:
    values = {"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}}
    assert "metrics.service.enabled" in render_error(tmp_path, values)


def test_no_network_policy_unless_asked(tmp_path: Path) -> None:
    assert not of_kind(render(tmp_path), "NetworkPolicy")


def test_network_policies_fence_serving_ingress_and_training_egress(tmp_path: Path) -> None:
    values = {
        "watchNamespaces": ["ml", "ml-staging"],
        "networkPolicy": {
            "enabled": True,
            "servingFrom": ["web"],
            "apiServerCIDRs": ["172.29.0.1/32"],
            "trainingEgress": {"namespaces": ["cairn-storage"], "cidrs": ["10.9.0.0/16"]},
        },
    }
    policies = of_kind(render(tmp_path, values), "NetworkPolicy")
    found = {(p["metadata"]["namespace"], p["metadata"]["name"]): p["spec"] for p in policies}
    assert set(found) == {
        (ns, name) for ns in ("ml", "ml-staging") for name in ("cairn-serving", "cairn-training")
    }
    serving = found[("ml", "cairn-serving")]
    assert serving["podSelector"]["matchExpressions"] == [
        {"key": "cairn.dev/deployment", "operator": "Exists"}
    ]
    assert serving["policyTypes"] == ["Ingress"]
    sources = serving["ingress"][0]["from"]
    assert {"podSelector": {}} in sources  # its own namespace
    assert {"ipBlock": {"cidr": "172.29.0.1/32"}} in sources
    (by_name,) = [s for s in sources if "namespaceSelector" in s]
    assert by_name["namespaceSelector"]["matchExpressions"][0]["values"] == ["web"]
    training = found[("ml", "cairn-training")]
    assert training["policyTypes"] == ["Ingress", "Egress"]
    dns, allowed = training["egress"]
    assert {"protocol": "UDP", "port": 53} in dns["ports"]
    assert {"ipBlock": {"cidr": "10.9.0.0/16"}} in allowed["to"]


def test_training_pods_get_only_dns_when_nothing_else_is_allowed(tmp_path: Path) -> None:
    values = {"networkPolicy": {"enabled": True}}
    policies = of_kind(render(tmp_path, values), "NetworkPolicy")
    training = next(p for p in policies if p["metadata"]["name"] == "cairn-training")
    assert training["metadata"]["namespace"] == NAMESPACE  # cluster-wide: the release's
    assert len(training["spec"]["egress"]) == 1


def test_a_network_policy_value_that_is_no_cidr_is_refused(tmp_path: Path) -> None:
    error = render_error(tmp_path, {"networkPolicy": {"apiServerCIDRs": ["the api server"]}})
    assert "apiServerCIDRs" in error
