"""make soak: the operator and the model server over a long stretch, under steady traffic with a
rollout every few minutes, on the real cluster; their memory is sampled the whole time.

`cairn-operator` runs as its own process watching a fresh namespace with two ModelDeployments of
iris: `steady`, whose one pod serves the same version for the whole soak (the server's memory is
the kubelet's figure for its container), and `rolling`, moved to a new,
equally good version every --every minutes through a canary judged every 5 s. A thread sends
~40 requests/s to both Services, each on a new connection, all on the cluster's own addresses,
from the first answer of each: kube-proxy programs a new Service's endpoints a moment after the
ModelDeployment is Available, and refuses connections until then (the soak's 33 to 39 errors in
stops 18 to 20 were all that moment, before any rollout).

Growth is the last sample minus the first one taken after a warm-up (the first rollout for the
operator, a minute of traffic for the server). Every answer that is not a 200 is an error: no
version here is bad. The last line is

    soak_minutes=<m> operator_rss_growth_mib=<x> server_rss_growth_mib=<y> errors=<n>

(targets: growth <= 20 MiB each, 0 errors).
"""

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import (
    bench_namespace,
    claim_artifacts,
    delete_with_artifacts,
    start_operator,
    stop_process,
)
from bench.rollout.bench_rollout import (
    GROUP,
    VERSION,
    Bench,
    Traffic,
    healthy_model,
    save,
    version_body,
)
from kubernetes import client, config

Body = dict[str, Any]
MIB = 1024 * 1024


def deployment(name: str, version: int, canary: bool) -> Body:
    spec: Body = {"model": "iris", "version": version, "imagePullPolicy": "Never"}
    if canary:
        spec["strategy"] = {
            "canary": {"steps": [{"setWeight": 50}], "analysis": {"interval": "5s"}}
        }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def server_rss_mib(core: client.CoreV1Api, namespace: str, deployment_name: str) -> float | None:
    """The resident memory of the (one) server container of a ModelDeployment, as the kubelet
    reports it (its stats summary, through the API server's node proxy)."""
    pods = core.list_namespaced_pod(
        namespace, label_selector=f"cairn.dev/deployment={deployment_name}"
    ).items
    running = [p for p in pods if p.status and p.status.phase == "Running"]
    if len(running) != 1:
        return None
    pod = running[0]
    # Raw bytes: the client would hand back the repr of a body it fails to parse.
    response = core.connect_get_node_proxy_with_path(
        pod.spec.node_name, "stats/summary", _preload_content=False
    )
    summary = json.loads(bytes(response.data))
    for stats in summary.get("pods") or []:
        if stats["podRef"]["name"] == pod.metadata.name:
            for container in stats.get("containers") or []:
                rss = (container.get("memory") or {}).get("rssBytes")
                if container["name"] == "server" and rss is not None:
                    return float(rss) / MIB
    return None


class Sampler(threading.Thread):
    """Samples the operator's and the steady server's memory every 10 s."""

    def __init__(self, operator_pid: int, namespace: str) -> None:
        super().__init__(daemon=True)
        self.operator_pid, self.namespace = operator_pid, namespace
        self.core = client.CoreV1Api()
        self.operator: list[tuple[float, float]] = []
        self.server: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(10):
            now = time.monotonic()
            self.operator.append((now, rss_mib(self.operator_pid)))
            served = server_rss_mib(self.core, self.namespace, "steady")
            if served is not None:
                self.server.append((now, served))


def growth(samples: list[tuple[float, float]], after: float) -> float:
    warm = [mib for moment, mib in samples if moment >= after]
    if len(warm) < 2:
        raise SystemExit("too few memory samples for a growth: run the soak longer")
    return warm[-1] - warm[0]


def failure_report(
    traffic: list[Traffic], names: tuple[str, ...], moved_at: list[float], limit: int = 40
) -> list[str]:
    """One line per failed request (the first `limit`): which Service, how long after the
    latest rollout's version move it was sent, and what went wrong."""
    failed = sorted(
        (sent, name, why)
        for sender, name in zip(traffic, names, strict=True)
        for sent, why in sender.failures
    )
    lines = []
    for sent, name, why in failed[:limit]:
        before = [moment for moment in moved_at if moment <= sent]
        since = (
            f"{sent - before[-1]:7.2f} s after rollout {len(before)}"
            if before
            else "before any rollout"
        )
        lines.append(f"  failed: {name:7} {since}: {why}")
    if len(failed) > limit:
        lines.append(f"  ... and {len(failed) - limit} more")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30, help="length (default 30)")
    parser.add_argument("--every", type=float, default=5, help="minutes between rollouts")
    args = parser.parse_args()
    config.load_kube_config()
    core, custom = client.CoreV1Api(), client.CustomObjectsApi()
    namespace = bench_namespace(core, "soak")
    claim_artifacts(namespace)
    log = Path("/tmp") / f"{namespace}-operator.log"
    operator = start_operator(namespace, log)
    rollouts = int(args.minutes // args.every)
    traffic: list[Traffic] = []
    moved_at: list[float] = []  # wall-clock time of each rollout's version move
    sampler = Sampler(operator.pid, namespace)
    try:
        model = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Model", "metadata": {"name": "iris"}}
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "models", model)
        for number in range(1, rollouts + 2):
            digest = save(namespace, f"v{number}", healthy_model(1.0 + number / 10))
            body = version_body(number, f"v{number}", digest)
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "modelversions", body)
        for name, canary in (("steady", False), ("iris", True)):
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, "modeldeployments", deployment(name, 1, canary)
            )
        bench = Bench(namespace)  # follows the ModelDeployment named iris: the rolling one
        bench.wait(
            "v1 to serve",
            lambda: (
                (bench.status().get("stable") or {}).get("version") == 1
                and bench.status().get("phase") == "Available"
            ),
        )
        bench.wait(
            "steady to serve",
            lambda: (
                (
                    custom.get_namespaced_custom_object(
                        GROUP, VERSION, namespace, "modeldeployments", "steady"
                    ).get("status")
                    or {}
                ).get("phase")
                == "Available"
            ),
        )
        for name in ("steady", "iris"):
            ip = core.read_namespaced_service(name, namespace).spec.cluster_ip
            traffic.append(Traffic(f"http://{ip}:8080/v2/models/iris/infer"))
        for sender, name in zip(traffic, ("steady", "rolling"), strict=True):
            seconds = sender.until_answered()
            print(f"{name}: the Service first answered {seconds:.2f} s after the soak began asking")
        for sender in traffic:
            sender.start()
        started = time.monotonic()
        sampler.start()
        server_warm = started + 60
        operator_warm = None
        for number in range(2, rollouts + 2):
            time.sleep(max(0.0, started + (number - 1) * args.every * 60 - time.monotonic()))
            moved_at.append(time.time())
            seconds, rolled_back = bench.healthy_rollout(number)
            operator_warm = operator_warm or time.monotonic()
            outcome = "ROLLED BACK" if rolled_back else "promoted"
            minute = (time.monotonic() - started) / 60
            print(f"[{minute:4.1f} min] v{number} {outcome} in {seconds:.1f} s", flush=True)
        time.sleep(max(0.0, started + args.minutes * 60 - time.monotonic()))
        sampler.stop.set()
        sampler.join(timeout=30)
    finally:
        for sender in traffic:
            sender.stop.set()
            sender.join(timeout=15)
        stop_process(operator)
        delete_with_artifacts(core, namespace)

    errors = sum(n for sender in traffic for code, n in sender.codes.items() if code != 200)
    answered = sum(sum(sender.codes.values()) for sender in traffic)
    operator_growth = growth(sampler.operator, operator_warm or started)
    server_growth = growth(sampler.server, server_warm)
    print(
        f"{answered} requests, {rollouts} rollouts; answers by code: {[s.codes for s in traffic]}"
    )
    print(
        f"operator RSS {sampler.operator[0][1]:.0f} -> {sampler.operator[-1][1]:.0f} MiB; "
        f"steady server {sampler.server[0][1]:.0f} -> {sampler.server[-1][1]:.0f} MiB"
    )
    for line in failure_report(traffic, ("steady", "rolling"), moved_at):
        print(line)
    print("targets: growth <= 20 MiB each, 0 errors")
    print(
        f"soak_minutes={args.minutes:g} operator_rss_growth_mib={operator_growth:.1f} "
        f"server_rss_growth_mib={server_growth:.1f} errors={errors}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
