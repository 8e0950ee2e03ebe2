"""The local cluster of hack/localkube: its network containment, and a clean stop and restart.

Containment is proven by reading the rules and routes, never by sending a packet off the machine.
These tests act on the cluster that hack/localkube runs; against any other cluster (kind, a
user's own) they have nothing to check, so they are skipped there with the reason.
"""

import ipaddress
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import REPO_ROOT, Cluster, is_localkube
from tests.support.kube import Kube

LIB = REPO_ROOT / "hack/localkube/lib.sh"
CONTAIN_CHAIN = "CAIRN-CONTAIN"


def localkube_settings() -> dict[str, str]:
    """The address plan and paths exactly as the scripts compute them."""
    names = "NODE_IP NODE_CIDR POD_CIDR SERVICE_CIDR NODE_BRIDGE POD_BRIDGE RUN D CGROUP_ROOT"
    script = f". {LIB}; for v in {names}; do printf '%s=%s\\n' $v \"${{!v}}\"; done"
    out = subprocess.run(["bash", "-c", script], check=True, capture_output=True, text=True)
    return dict(line.split("=", 1) for line in out.stdout.splitlines())


def run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def external_interface() -> str:
    routes = json.loads(run("ip", "-json", "route", "show", "default"))
    return str(routes[0]["dev"])


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def chain_rules(table: str, chain: str) -> list[str]:
    result = subprocess.run(["iptables", "-t", table, "-S", chain], capture_output=True, text=True)
    return result.stdout.splitlines() if result.returncode == 0 else []


def make(target: str) -> None:
    subprocess.run(["make", "-C", str(REPO_ROOT), target], check=True, timeout=600)


@pytest.fixture(scope="module")
def local(cluster: Cluster) -> dict[str, str]:
    if not is_localkube(cluster.kubeconfig):
        pytest.fail(
            f"the cluster under test ({cluster.kubeconfig}) is not hack/localkube's", pytrace=False
        )
    return localkube_settings()


@pytest.mark.usefixtures("k8s")
def test_containment_net_is_in_place(local: dict[str, str]) -> None:
    ext = external_interface()
    assert ext not in (local["NODE_BRIDGE"], local["POD_BRIDGE"])

    # Our chain is the first thing every forwarded and every locally sent packet meets.
    for hook in ("FORWARD", "OUTPUT"):
        assert chain_rules("filter", hook)[1] == f"-A {hook} -j {CONTAIN_CHAIN}"
    rules = chain_rules("filter", CONTAIN_CHAIN)
    reject = "-j REJECT --reject-with icmp-net-prohibited"
    assert f"-A {CONTAIN_CHAIN} -s {local['POD_CIDR']} -o {ext} {reject}" in rules
    for cidr in (local["POD_CIDR"], local["SERVICE_CIDR"], local["NODE_CIDR"]):
        assert f"-A {CONTAIN_CHAIN} -d {cidr} -o {ext} {reject}" in rules
    # The check is the kernel's own: `iptables -C` exits 0 only when the exact rule exists.
    check = ["iptables", "-C", CONTAIN_CHAIN, "-s", local["POD_CIDR"], "-o", ext]
    subprocess.run([*check, "-j", "REJECT", "--reject-with", "icmp-net-prohibited"], check=True)

    # The node address lives on our portless bridge; the service range is routed to it.
    addrs = json.loads(run("ip", "-json", "-4", "addr", "show", local["NODE_BRIDGE"]))
    assert local["NODE_IP"] in [a["local"] for a in addrs[0]["addr_info"]]
    route = json.loads(run("ip", "-json", "route", "show", local["SERVICE_CIDR"]))
    assert route and route[0]["dev"] == local["NODE_BRIDGE"]
    # A ClusterIP with no kube-proxy rule would be routed to the bridge, not the default route.
    probe_ip = str(ipaddress.ip_network(local["SERVICE_CIDR"])[-2])
    [route_to_probe] = json.loads(run("ip", "-json", "route", "get", probe_ip))
    assert route_to_probe["dev"] == local["NODE_BRIDGE"]


def test_node_and_api_use_the_node_bridge_address(local: dict[str, str], k8s: Kube) -> None:
    node = k8s.core.list_node().items[0]
    internal = [a.address for a in node.status.addresses if a.type == "InternalIP"]
    assert internal == [local["NODE_IP"]]
    # Pods reach the API server through the `kubernetes` Service, which must lead to the node
    # bridge address, never the external interface's.
    endpoints = k8s.core.read_namespaced_endpoints("kubernetes", "default")
    assert [a.ip for s in endpoints.subsets for a in s.addresses] == [local["NODE_IP"]]


@pytest.fixture
def restores_cluster(local: dict[str, str]) -> Iterator[None]:
    yield
    make("cluster-up")  # whatever the test did, the tests after it get a running cluster


def recorded_pids(run_dir: Path) -> dict[str, int]:
    return {pid_file.stem: int(pid_file.read_text()) for pid_file in run_dir.glob("*.pid")}


def our_mounts(state_dir: str) -> list[str]:
    targets = run("findmnt", "-rn", "-o", "TARGET").splitlines()
    return [t for t in targets if t == state_dir or t.startswith(state_dir + "/")]


@pytest.mark.usefixtures("restores_cluster")
def test_cluster_down_leaves_nothing_and_up_recovers_from_a_kill(
    local: dict[str, str], k8s: Kube
) -> None:
    run_dir = Path(local["RUN"])
    pids = recorded_pids(run_dir)
    assert {"etcd", "kube-apiserver", "kubelet", "containerd", "kube-proxy"} <= pids.keys()

    # A run killed half-way: two components die without any cleanup. cluster-up completes it.
    for name in ("kubelet", "kube-apiserver"):
        os.kill(pids[name], signal.SIGKILL)
    make("cluster-up")
    node = k8s.core.list_node().items[0]
    assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"
    restarted = recorded_pids(run_dir)
    assert all(restarted[name] != pids[name] for name in ("kubelet", "kube-apiserver"))
    pids = restarted

    make("cluster-down")
    still_running = [name for name, pid in pids.items() if Path(f"/proc/{pid}").exists()]
    assert still_running == []
    assert not link_exists(local["POD_BRIDGE"])
    assert not link_exists(local["NODE_BRIDGE"])
    assert chain_rules("filter", CONTAIN_CHAIN) == []
    assert [line for line in run("iptables-save").splitlines() if "KUBE-" in line] == []
    assert run("ip", "route", "show", local["SERVICE_CIDR"]).strip() == ""
    assert our_mounts(local["D"]) == []
    assert list(Path("/sys/fs/cgroup").glob(f"*/{local['CGROUP_ROOT'].lstrip('/')}")) == []

    make("cluster-up")
    for hook in ("FORWARD", "OUTPUT"):
        assert chain_rules("filter", hook)[1] == f"-A {hook} -j {CONTAIN_CHAIN}"
    assert link_exists(local["NODE_BRIDGE"])
