"""An identity of the operator's own for bench-scale, so that the API server counts its requests
apart from everyone else's on the shared cluster: a ServiceAccount (bound to cluster-admin for the
bench's lifetime), a kubeconfig with a token for it, and a FlowSchema that matches only it.
apiserver_request_total has no label for the client; the Priority and Fairness counters
(apiserver_flowcontrol_dispatched_requests_total) are labelled by FlowSchema. The schema sends the
requests to the `exempt` priority level, as the admin identity other benches run the operator
with: the count changes, the queueing does not."""

import base64
import dataclasses
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

TOKEN_SECONDS = 6 * 3600  # longer than any bench-scale run
PRECEDENCE = 1000  # before the built-in `service-accounts` schema (9000)


@dataclasses.dataclass(frozen=True)
class OperatorIdentity:
    name: str  # of the ServiceAccount, the ClusterRoleBinding and the FlowSchema
    namespace: str
    kubeconfig: Path


def create(core: Any, namespace: str, name: str, directory: Path) -> OperatorIdentity:
    """The ServiceAccount `name` in `namespace`, its binding and FlowSchema (both named `name`),
    and a kubeconfig for it in `directory`. delete() removes what namespace deletion does not."""
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
    )
    subject = {"kind": "ServiceAccount", "name": name, "namespace": namespace}
    client.RbacAuthorizationV1Api().create_cluster_role_binding(
        {
            "metadata": {"name": name, "labels": {"cairn.dev/bench": "1"}},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [subject],
        }
    )
    client.FlowcontrolApiserverV1Api().create_flow_schema(
        {
            "metadata": {"name": name, "labels": {"cairn.dev/bench": "1"}},
            "spec": {
                "matchingPrecedence": PRECEDENCE,
                "priorityLevelConfiguration": {"name": "exempt"},
                "rules": [
                    {
                        "subjects": [
                            {
                                "kind": "ServiceAccount",
                                "serviceAccount": {"name": name, "namespace": namespace},
                            }
                        ],
                        "resourceRules": [
                            {
                                "verbs": ["*"],
                                "apiGroups": ["*"],
                                "resources": ["*"],
                                "namespaces": ["*"],
                                "clusterScope": True,
                            }
                        ],
                        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                    }
                ],
            },
        }
    )
    token = core.create_namespaced_service_account_token(
        name,
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=TOKEN_SECONDS)
        ),
    ).status.token
    kubeconfig = directory / f"{name}.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(_kubeconfig(token)))
    kubeconfig.chmod(0o600)
    return OperatorIdentity(name, namespace, kubeconfig)


def _kubeconfig(token: str) -> dict[str, Any]:
    """A kubeconfig for the same API server as the bench's, authenticating with `token`."""
    current = client.Configuration.get_default_copy()
    cluster: dict[str, Any] = {"server": current.host}
    if current.ssl_ca_cert:
        ca = Path(current.ssl_ca_cert).read_bytes()
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bench", "cluster": cluster}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "operator"}}],
        "current-context": "bench",
    }


def delete(name: str) -> None:
    """The cluster-scoped binding and FlowSchema (the ServiceAccount goes with its namespace)."""
    for remove in (
        client.RbacAuthorizationV1Api().delete_cluster_role_binding,
        client.FlowcontrolApiserverV1Api().delete_flow_schema,
    ):
        try:
            remove(name)
        except client.ApiException as error:
            if error.status != 404:
                raise
