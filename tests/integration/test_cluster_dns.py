"""Cluster DNS: pods reach Services by name (short, namespaced, fully qualified), and the cluster's
resolver answers nothing but the cluster's own names."""

import json
from typing import Any

from tests.support.kube import Kube
from tests.support.wait import wait_for
from tests.support.workloads import (
    TRAINER_IMAGE,
    container,
    pod_logs,
    pod_spec,
    python_pod,
    wait_for_pod_success,
)

SERVER = "web"
CLIENT = """
import json, socket, urllib.request
names = ["web", "web.{ns}", "web.{ns}.svc", "web.{ns}.svc.cluster.local",
         "kubernetes.default.svc.cluster.local"]
found = {{name: socket.gethostbyname(name) for name in names}}
answer = urllib.request.urlopen("http://web.{ns}.svc:8000/hello.txt", timeout=10).read().decode()
outside = {{}}
for name in ("example.com", "deb.debian.org"):
    try:
        outside[name] = socket.gethostbyname(name)
    except OSError as error:
        outside[name] = "refused: " + str(error)
print(json.dumps({{"found": found, "answer": answer, "outside": outside}}))
"""


def web_server(namespace: str) -> list[dict[str, Any]]:
    """A pod that serves one file over HTTP, and its Service."""
    labels = {"app": SERVER}
    serve = container(
        "web",
        TRAINER_IMAGE,
        ["python", "-c", "import http.server, os, pathlib; os.chdir('/tmp');"
         " pathlib.Path('hello.txt').write_text('hello by name');"
         " http.server.test(http.server.SimpleHTTPRequestHandler, port=8000, bind='0.0.0.0')"],
        ports=[{"name": "http", "containerPort": 8000}],
        readinessProbe={"tcpSocket": {"port": 8000}, "periodSeconds": 1},
        volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}],
    )  # fmt: skip
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": SERVER, "labels": labels},
        "spec": pod_spec(serve, volumes=[{"name": "tmp", "emptyDir": {}}]),
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SERVER},
        "spec": {"selector": labels, "ports": [{"port": 8000, "targetPort": "http"}]},
    }
    return [pod, service]


def test_pods_reach_services_by_name_and_nothing_else_resolves(k8s: Kube, namespace: str) -> None:
    pod, service = web_server(namespace)
    k8s.core.create_namespaced_pod(namespace, pod)
    k8s.core.create_namespaced_service(namespace, service)
    wait_for(
        lambda: any(
            c.ready
            for c in k8s.core.read_namespaced_pod(SERVER, namespace).status.container_statuses or []
        ),
        timeout=120,
        message="the web pod to be ready",
    )
    cluster_ip = k8s.core.read_namespaced_service(SERVER, namespace).spec.cluster_ip
    api_ip = k8s.core.read_namespaced_service("kubernetes", "default").spec.cluster_ip

    k8s.core.create_namespaced_pod(
        namespace, python_pod("client", TRAINER_IMAGE, CLIENT.format(ns=namespace))
    )
    wait_for_pod_success(k8s, namespace, "client")

    said = json.loads(pod_logs(k8s, namespace, "client").strip().splitlines()[-1])
    found = said["found"]
    assert {found[n] for n in ("web", f"web.{namespace}", f"web.{namespace}.svc")} == {cluster_ip}
    assert found[f"web.{namespace}.svc.cluster.local"] == cluster_ip
    assert found["kubernetes.default.svc.cluster.local"] == api_ip
    assert said["answer"] == "hello by name"
    # No upstream: names outside the cluster are refused, never looked up elsewhere.
    assert all(answer.startswith("refused") for answer in said["outside"].values()), said
