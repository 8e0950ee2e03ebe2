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
import json, socket, time, urllib.request
names = ["web", "web.{ns}", "web.{ns}.svc", "web.{ns}.svc.cluster.local",
         "kubernetes.default.svc.cluster.local"]
found = {{name: socket.gethostbyname(name) for name in names}}
# kube-proxy programs a new Service's rules a moment after it exists: refused until then.
for attempt in range(30):
    try:
        answer = urllib.request.urlopen("http://web.{ns}.svc:8000/hello.txt", timeout=10)
        answer = answer.read().decode()
        break
    except OSError:
        if attempt == 29:
            raise
        time.sleep(1)
outside = {{}}
for name in ("example.com", "deb.debian.org"):
    try:
        outside[name] = socket.gethostbyname(name)
    except OSError as error:
        outside[name] = "refused: " + str(error)
# The resolver's own answer to a name outside the cluster: its response code (5: REFUSED).
nameserver = next(line.split()[1] for line in open("/etc/resolv.conf")
                  if line.startswith("nameserver"))
question = b"".join(bytes([len(p)]) + p.encode() for p in "example.com".split(".")) + b"\\0"
query = b"\\x12\\x34\\x01\\0\\0\\x01\\0\\0\\0\\0\\0\\0" + question + b"\\0\\x01\\0\\x01"
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.settimeout(5)
udp.sendto(query, (nameserver, 53))
reply = udp.recv(512)
rcode = {{"id": reply[:2].hex(), "rcode": reply[3] & 0x0F, "answers": reply[6] * 256 + reply[7]}}
print(json.dumps({{"found": found, "answer": answer, "outside": outside,
                  "nameserver": nameserver, "example.com": rcode}}))
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
    # The pod's resolver is kube-dns, and it refuses the name itself (no forwarding).
    dns_ip = k8s.core.read_namespaced_service("kube-dns", "kube-system").spec.cluster_ip
    assert said["nameserver"] == dns_ip
    assert said["example.com"] == {"id": "1234", "rcode": 5, "answers": 0}
