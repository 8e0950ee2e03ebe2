#!/usr/bin/env python3
"""Checks that the local cluster's address ranges overlap nothing the host uses.

Reads the host's addresses and routes (`ip -json`) and its resolvers (/etc/resolv.conf), ignores
the interfaces the cluster itself owns, and exits non-zero naming every overlap. With --node and
--host it also checks the two ends of the veth pair: distinct host addresses of the NODE range.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def ip_json(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run(["ip", "-json", "-4", *args], check=True, capture_output=True, text=True)
    entries: list[dict[str, Any]] = json.loads(out.stdout or "[]")
    return entries


def host_networks(own_interfaces: set[str]) -> Iterable[tuple[str, Network]]:
    """Every network the host has an address in or a route to, outside our own interfaces."""
    for link in ip_json("addr", "show"):
        name = str(link.get("ifname"))
        if name in own_interfaces:
            continue
        for info in link.get("addr_info", []):
            net = ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}").network
            if not net.is_loopback:
                yield f"address on {name}", net
    for route in ip_json("route", "show", "table", "all"):
        dst, dev = str(route.get("dst")), str(route.get("dev"))
        if (
            dev in own_interfaces
            or dst in ("default", "None")
            or route.get("type")
            in (
                "local",
                "broadcast",
            )
        ):
            continue
        net = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
        if not net.is_loopback:
            yield f"route via {dev}", net


def resolvers(path: str = "/etc/resolv.conf") -> Iterable[tuple[str, Network]]:
    try:
        with open(path, encoding="utf-8") as resolv_conf:
            lines = resolv_conf.read().splitlines()
    except OSError:
        return
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            addr = ipaddress.ip_address(parts[1])
            if addr.version == 4:
                yield "resolver", ipaddress.ip_network(f"{addr}/32")


def node_address_problems(node_range: Network, **addresses: str | None) -> list[str]:
    """The node's and the host's ends of the veth pair: usable, distinct addresses of the range."""
    problems = []
    reserved = (node_range.network_address, node_range.broadcast_address)
    for name, address in addresses.items():
        if address is None:
            continue
        ip = ipaddress.ip_address(address)
        if ip not in node_range or ip in reserved:
            problems.append(f"the {name} address {address} is not a host address of {node_range}")
    given = [a for a in addresses.values() if a is not None]
    if len(set(given)) < len(given):
        problems.append(f"the node and host addresses are the same ({given[0]})")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--own", default="", help="comma-separated interfaces the cluster owns")
    parser.add_argument("--node", help="the node's address (in the NODE range)")
    parser.add_argument("--host", help="the host's end of the veth pair (in the NODE range)")
    parser.add_argument("ranges", nargs="*", help="NAME=CIDR ranges the cluster will use")
    args = parser.parse_args()

    own = {name for name in args.own.split(",") if name}
    ours = {
        name: ipaddress.ip_network(cidr) for name, cidr in (r.split("=", 1) for r in args.ranges)
    }
    problems = []
    names = list(ours)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if ours[a].overlaps(ours[b]):
                problems.append(f"{a} {ours[a]} overlaps {b} {ours[b]}")
    if "NODE" in ours:
        problems += node_address_problems(ours["NODE"], node=args.node, host=args.host)
    for what, net in [*host_networks(own), *resolvers()]:
        for name, mine in ours.items():
            if mine.overlaps(net):
                problems.append(f"{name} {mine} overlaps the host's {what} {net}")
    for problem in problems:
        print(f"[localkube] error: {problem}; choose another range or address", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
