"""A real Prometheus (Debian's) on this machine that scrapes one namespace's serving pods, with
the `namespace` and `pod` target labels a cluster's Prometheus attaches.

Debian builds Prometheus without Kubernetes service discovery, so a thread here plays that
part: it lists the namespace's running pods every second and writes them as file_sd targets,
which Prometheus re-reads when the file changes.
"""

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
import yaml

from tests.support.kube import Kube
from tests.support.operator import free_local_port
from tests.support.wait import wait_for

BINARY = "/usr/bin/prometheus"  # Debian's package `prometheus` (hack/localkube/deps.sh)
SCRAPE_INTERVAL = "1s"


def scrape_config(targets: Path) -> dict[str, object]:
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [
            {
                "job_name": "kubernetes-pods",
                "file_sd_configs": [{"files": [str(targets)], "refresh_interval": "1s"}],
            }
        ],
    }


def pod_targets(k8s: Kube, namespace: str) -> list[dict[str, object]]:
    """Every running pod's port named http (the serving pods' /metrics), labelled as
    Prometheus' Kubernetes pod discovery and the usual relabelling would label it."""
    targets: list[dict[str, object]] = []
    for pod in k8s.core.list_namespaced_pod(namespace).items:
        if pod.status.phase != "Running" or not pod.status.pod_ip:
            continue
        for container in pod.spec.containers:
            for port in container.ports or []:
                if port.name == "http":
                    targets.append(
                        {
                            "targets": [f"{pod.status.pod_ip}:{port.container_port}"],
                            "labels": {"namespace": namespace, "pod": pod.metadata.name},
                        }
                    )
    return targets


@contextmanager
def discovering(k8s: Kube, namespace: str, targets: Path) -> Iterator[None]:
    """Keep `targets` up to date with the namespace's pods until the block ends."""
    stop = threading.Event()

    def run() -> None:
        written = None
        while not stop.is_set():
            found = json.dumps(pod_targets(k8s, namespace), sort_keys=True)
            if found != written:
                partial = targets.with_suffix(".partial")
                partial.write_text(found)
                partial.replace(targets)  # Prometheus never reads half a file
                written = found
            stop.wait(1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@contextmanager
def running_prometheus(k8s: Kube, namespace: str, workdir: Path) -> Iterator[str]:
    """Prometheus scraping `namespace`'s pods; yields its base URL, stops it after."""
    if shutil.which(BINARY) is None:
        raise RuntimeError(f"{BINARY} is missing: run hack/localkube/deps.sh (apt prometheus)")
    targets = workdir / "targets.json"
    targets.write_text("[]")
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(targets)))
    # On this machine's address toward the node (the host's end of the local cluster's veth
    # pair): this machine and the pods reach it, so an in-cluster operator
    # (CAIRN_TEST_OPERATOR=chart) can query it too.
    address = f"{address_toward(node_address(k8s))}:{free_local_port()}"
    log = (workdir / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address={address}",
            "--web.enable-lifecycle",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{address}"
    try:
        wait_for(
            lambda: _ready(url) or process.poll() is not None,
            timeout=60,
            message=f"Prometheus at {url} to be ready (log {workdir / 'prometheus.log'})",
        )
        if process.poll() is not None:
            raise RuntimeError(f"Prometheus exited: {(workdir / 'prometheus.log').read_text()}")
        with discovering(k8s, namespace, targets):
            yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def node_address(k8s: Kube) -> str:
    node = k8s.core.list_node().items[0]
    return str(next(a.address for a in node.status.addresses if a.type == "InternalIP"))


def address_toward(destination: str) -> str:
    """The address this machine sends from to `destination`, which answers come back to."""
    out = subprocess.run(
        ["ip", "-json", "route", "get", destination], check=True, capture_output=True, text=True
    )
    return str(json.loads(out.stdout)[0]["prefsrc"])


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/-/ready", timeout=2).ok
    except requests.RequestException:
        return False


def scraped_pods(url: str, namespace: str) -> set[str]:
    """The pods of `namespace` Prometheus scrapes successfully."""
    answer = requests.get(
        f"{url}/api/v1/query", params={"query": f'up{{namespace="{namespace}"}} == 1'}, timeout=5
    ).json()
    return {series["metric"]["pod"] for series in answer["data"]["result"]}
