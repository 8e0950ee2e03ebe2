"""hack/localkube/netplan.py: the address plan's checks, which decide whether the cluster starts."""

import importlib.util
import ipaddress
from types import ModuleType

import pytest

from tests.support.cluster import REPO_ROOT

pytestmark = pytest.mark.unit


def load_netplan() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "netplan", REPO_ROOT / "hack/localkube/netplan.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


netplan = load_netplan()
NODE_RANGE = ipaddress.ip_network("172.29.0.0/24")


def test_two_distinct_host_addresses_of_the_node_range_are_accepted() -> None:
    assert netplan.node_address_problems(NODE_RANGE, node="172.29.0.1", host="172.29.0.2") == []


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("172.29.1.2", "the host address 172.29.1.2 is not a host address of 172.29.0.0/24"),
        ("172.29.0.0", "the host address 172.29.0.0 is not a host address of 172.29.0.0/24"),
        ("172.29.0.255", "the host address 172.29.0.255 is not a host address of 172.29.0.0/24"),
        ("172.29.0.1", "the node and host addresses are the same (172.29.0.1)"),
    ],
)
def test_a_veth_end_outside_the_range_or_shared_is_refused_by_name(host: str, problem: str) -> None:
    assert netplan.node_address_problems(NODE_RANGE, node="172.29.0.1", host=host) == [problem]
