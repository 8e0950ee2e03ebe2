"""The local cluster of hack/localkube: sealed in a network namespace of its own, and a clean stop
and restart.

Containment is proven by reading routes and rules (`ip route get` asks the kernel where a packet
would go without sending one), never by sending a packet off the machine. These tests act on the
cluster that hack/localkube runs; against any other cluster (kind, a user's own) they fail with
the reason.
"""

import ipaddress
import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import REPO_ROOT, Cluster, is_localkube
from tests.support.kube import Kube

LOCALKUBE = REPO_ROOT / "hack/localkube"
# Addresses off this machine, whatever its network: documentation ranges and public resolvers.
OUTSIDE_ADDRESSES = ("192.0.2.1", "198.51.100.7", "203.0.113.9", "1.1.1.1", "8.8.8.8")
CLUSTER_RANGES = ("NODE_CIDR", "POD_CIDR", "SERVICE_CIDR")
# One of the machine-wide settings the kubelet sets at start (its value), and one of ours.
MARKER_SETTING, KUBELET_VALUE, MARKER_VALUE = "kernel.keys.root_maxkeys", "1000000", "999999"


def localkube_settings() -> dict[str, str]:
    """The address plan and paths exactly as the scripts compute them."""
    names = (
        "NODE_NAME NODE_IP HOST_IP NODE_CIDR POD_CIDR SERVICE_CIDR HOST_LINK NODE_LINK POD_BRIDGE"
        " CLUSTER_NETNS RUN D CGROUP_ROOT TUNABLES_SAVED"
    )
    sources = f". {LOCALKUBE}/lib.sh; . {LOCALKUBE}/kernel.sh"
    script = f"{sources}; for v in {names}; do printf '%s=%s\\n' $v \"${{!v}}\"; done"
    out = subprocess.run(["bash", "-c", script], check=True, capture_output=True, text=True)
    return dict(line.split("=", 1) for line in out.stdout.splitlines())


def run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def in_cluster(local: dict[str, str], *command: str) -> list[str]:
    """`command` as run in the cluster's network namespace (mounts stay the host's)."""
    return ["nsenter", f"--net={local['CLUSTER_NETNS']}", *command]


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def host_firewall() -> str:
    """The host's iptables and ip6tables rules, without counters and timestamps."""
    dumps = [run(tool) for tool in ("iptables-save", "ip6tables-save")]
    lines = (line for dump in dumps for line in dump.splitlines() if not line.startswith("#"))
    return "\n".join(re.sub(r" \[\d+:\d+\]$", "", line) for line in lines)


def sysctl(name: str) -> str:
    return run("sysctl", "-n", name).strip()


def host_sysctls() -> dict[str, str]:
    names = ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables")
    return {name: sysctl(name) for name in names}


def make(target: str) -> None:
    subprocess.run(["make", "-C", str(REPO_ROOT), target], check=True, timeout=600)


@pytest.fixture(scope="module")
def local(cluster: Cluster) -> dict[str, str]:
    if not is_localkube(cluster.kubeconfig):
        pytest.fail(
            f"the cluster under test ({cluster.kubeconfig}) is not hack/localkube's", pytrace=False
        )
    return localkube_settings()


def outside_addresses() -> set[str]:
    """Addresses no packet of the cluster may reach: the host's own (but loopback and our veth
    end), its gateways and resolvers, and a few that are off any machine."""
    found = set(OUTSIDE_ADDRESSES)
    for link in json.loads(run("ip", "-json", "-4", "addr", "show")):
        found.update(a["local"] for a in link.get("addr_info", []) if link["ifname"] != "lo")
    for route in json.loads(run("ip", "-json", "-4", "route", "show", "table", "all")):
        if "gateway" in route:
            found.add(route["gateway"])
    resolv_conf = Path("/etc/resolv.conf")
    for line in resolv_conf.read_text().splitlines() if resolv_conf.exists() else []:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and ":" not in parts[1]:
            found.add(parts[1])
    return found


def in_cluster_ranges(local: dict[str, str], address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(local[name]) for name in CLUSTER_RANGES)


def route_error(local: dict[str, str], address: str, *packet: str) -> str:
    """The kernel's answer, in the cluster's namespace, to where a packet for `address` goes:
    its error, or '' when a route exists."""
    command = in_cluster(local, "ip", "route", "get", address, *packet)
    result = subprocess.run(command, capture_output=True, text=True)
    return result.stderr.strip() if result.returncode else ""


def running_pod_ip(k8s: Kube) -> str:
    pods = k8s.core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns")
    ips = [p.status.pod_ip for p in pods.items if p.status.phase == "Running" and p.status.pod_ip]
    assert ips, "CoreDNS has no running pod to look from"
    return str(ips[0])


def test_nothing_in_the_cluster_has_a_route_off_the_machine(
    local: dict[str, str], k8s: Kube
) -> None:
    # The namespace's own routes: the three cluster ranges and nothing else, in IPv4 and IPv6.
    routes = json.loads(run(*in_cluster(local, "ip", "-json", "-4", "route", "show")))
    assert "default" not in [r["dst"] for r in routes]
    ranges = [ipaddress.IPv4Network(local[name]) for name in CLUSTER_RANGES]
    for destination in (ipaddress.IPv4Network(r["dst"]) for r in routes):
        assert any(destination.subnet_of(r) for r in ranges), destination
    v6_routes = json.loads(run(*in_cluster(local, "ip", "-json", "-6", "route", "show")))
    assert [r["dst"] for r in v6_routes if not r["dst"].startswith(("fe80::", "ff00::"))] == []

    pod_ip = running_pod_ip(k8s)
    outside = sorted(a for a in outside_addresses() if not in_cluster_ranges(local, a))
    assert len(outside) >= len(OUTSIDE_ADDRESSES)
    for address in outside:
        # Sent by a component, and forwarded for a pod: neither has anywhere to go.
        assert "unreachable" in route_error(local, address), address
        from_pod = ("from", pod_ip, "iif", local["POD_BRIDGE"])
        assert "unreachable" in route_error(local, address, *from_pod), address
    # The contrast: inside the cluster's ranges the same questions have answers.
    assert route_error(local, local["HOST_IP"]) == ""
    assert route_error(local, pod_ip) == ""


def test_every_component_runs_in_the_cluster_namespace(local: dict[str, str]) -> None:
    namespace = os.stat(local["CLUSTER_NETNS"]).st_ino
    host = os.stat("/proc/self/ns/net").st_ino
    assert namespace != host
    pids = recorded_pids(Path(local["RUN"]))
    assert {"etcd", "kube-apiserver", "kubelet", "containerd", "kube-proxy"} <= pids.keys()
    for name, pid in pids.items():
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == namespace, name


@pytest.mark.usefixtures("k8s")
def test_the_host_reaches_the_cluster_through_one_veth_pair_and_keeps_its_firewall(
    local: dict[str, str],
) -> None:
    # kube-proxy's rules are the namespace's; the host's tables have none of them.
    assert "KUBE-SERVICES" in run(*in_cluster(local, "iptables-save", "-t", "nat"))
    assert "KUBE-" not in host_firewall()
    assert "KUBE-" not in run("ip6tables-save")

    # The host's end of the pair holds the host address; pods and services are routed through
    # the node address at the other end.
    addrs = json.loads(run("ip", "-json", "-4", "addr", "show", local["HOST_LINK"]))
    assert [a["local"] for a in addrs[0]["addr_info"]] == [local["HOST_IP"]]
    for cidr in (local["POD_CIDR"], local["SERVICE_CIDR"]):
        [route] = json.loads(run("ip", "-json", "route", "show", cidr))
        assert (route["dev"], route["gateway"]) == (local["HOST_LINK"], local["NODE_IP"])
    probe_ip = str(ipaddress.ip_network(local["SERVICE_CIDR"])[-2])
    [route_to_probe] = json.loads(run("ip", "-json", "route", "get", probe_ip))
    assert route_to_probe["dev"] == local["HOST_LINK"]


def test_node_and_api_use_the_node_address(local: dict[str, str], k8s: Kube) -> None:
    addrs = json.loads(
        run(*in_cluster(local, "ip", "-json", "-4", "addr", "show", local["NODE_LINK"]))
    )
    assert [a["local"] for a in addrs[0]["addr_info"]] == [local["NODE_IP"]]
    node = k8s.core.read_node(local["NODE_NAME"])
    internal = [a.address for a in node.status.addresses if a.type == "InternalIP"]
    assert internal == [local["NODE_IP"]]
    # Pods reach the API server through the `kubernetes` Service, which must lead to the node
    # address, never the host's.
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
    firewall, sysctls = host_firewall(), host_sysctls()
    run_dir = Path(local["RUN"])
    pids = recorded_pids(run_dir)
    assert {"etcd", "kube-apiserver", "kubelet", "containerd", "kube-proxy"} <= pids.keys()

    # A run killed half-way: two components die without any cleanup. cluster-up completes it.
    for name in ("kubelet", "kube-apiserver"):
        os.kill(pids[name], signal.SIGKILL)
    make("cluster-up")
    node = k8s.core.read_node(local["NODE_NAME"])
    assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"
    restarted = recorded_pids(run_dir)
    assert all(restarted[name] != pids[name] for name in ("kubelet", "kube-apiserver"))
    pids = restarted

    make("cluster-down")
    still_running = [name for name, pid in pids.items() if Path(f"/proc/{pid}").exists()]
    assert still_running == []
    assert not link_exists(local["HOST_LINK"])
    assert not Path(local["CLUSTER_NETNS"]).exists()
    for cidr in (local["POD_CIDR"], local["SERVICE_CIDR"], local["NODE_CIDR"]):
        assert run("ip", "route", "show", cidr).strip() == ""
    assert our_mounts(local["D"]) == []
    assert list(Path("/sys/fs/cgroup").glob(f"*/{local['CGROUP_ROOT'].lstrip('/')}")) == []
    # The host's firewall and sysctls are the same with the cluster up, down and up again.
    assert (host_firewall(), host_sysctls()) == (firewall, sysctls)
    assert not Path(local["TUNABLES_SAVED"]).exists()

    # What cluster-down puts back is what the machine had, whatever the kubelet set: proven
    # with a value of the test's own (this machine may already hold the kubelet's).
    original = sysctl(MARKER_SETTING)
    run("sysctl", "-qw", f"{MARKER_SETTING}={MARKER_VALUE}")
    try:
        make("cluster-up")
        assert sysctl(MARKER_SETTING) == KUBELET_VALUE
        make("cluster-down")
        assert sysctl(MARKER_SETTING) == MARKER_VALUE
    finally:
        run("sysctl", "-qw", f"{MARKER_SETTING}={original}")

    make("cluster-up")
    assert link_exists(local["HOST_LINK"])
    assert Path(local["CLUSTER_NETNS"]).exists()
    assert (host_firewall(), host_sysctls()) == (firewall, sysctls)
