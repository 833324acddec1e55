"""The VPC router's routes as its kernel holds them (`ip -j` in the router), and as a topology file says they
must be: worked out here from the file's own route tables, targets and addresses and from the router's
interface addresses, not by lab/routing.py (the code that wrote them), so that a stale or wrong next hop shows.

    assert_router_follows(lab, "firewall-first")   # every association's routes: destination, next hop, device
"""
from __future__ import annotations

import json
from functools import cache
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

import yaml

from lab.nodes import ROUTER

ROOT = Path(__file__).resolve().parent.parent
# destination, next hop ("" on the link, "blackhole" for a drop), device ("" for a blackhole)
Route = tuple[str, str, str]
Routes = dict[str, set[Route]]  # the router's interface a packet arrives on (its `iif` rule) -> its table's routes


def topology_document(name_or_path: str | Path) -> dict[str, Any]:
    """A topology file as plain data: a name in topologies/ or a path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = ROOT / "topologies" / f"{name_or_path}.yaml"
    return yaml.safe_load(path.read_text())


def _networks(addresses: list[dict[str, Any]]) -> dict[str, list[IPv4Interface]]:
    return {i["ifname"]: [IPv4Interface(f"{a['local']}/{a['prefixlen']}") for a in i.get("addr_info", [])
                          if a.get("family", "inet") == "inet"] for i in addresses}


def kernel_routes_by_interface(rules: list[dict[str, Any]], routes: list[dict[str, Any]]) -> Routes:
    """`ip -j rule` and `ip -j route show table all` as, per `iif` rule, the routes of the table it looks up."""
    tables = {str(r["table"]): r["iif"] for r in rules if "iif" in r}
    out: Routes = {iif: set() for iif in tables.values()}
    for r in routes:
        iif = tables.get(str(r.get("table", "main")))
        if iif is None:
            continue
        dst = "0.0.0.0/0" if r["dst"] == "default" else str(IPv4Network(r["dst"]))
        hop = "blackhole" if r.get("type") == "blackhole" else r.get("gateway", "")
        out[iif].add((dst, hop, r.get("dev", "")))
    return out


def expected_routes(topology: dict[str, Any], router_addresses: list[dict[str, Any]], igw_address: str) -> Routes:
    """What the topology's route tables say each association's table holds. A route's next hop is its target's
    address (a NAT gateway's private_ip, a firewall endpoint's ip, the internet gateway's address on its link),
    reached on the router's interface in the target's network. The local route reaches each subnet on the
    router's interface in it, unless a route more specific than the VPC CIDR covers the subnet; a table with
    no 0.0.0.0/0 route drops what nothing matches (a blackhole), as AWS does."""
    interfaces = _networks(router_addresses)

    def interface_for(address: IPv4Address | IPv4Network) -> str:
        for name, nets in interfaces.items():
            if any((address == n.network) if isinstance(address, IPv4Network) else (address in n.network)
                   for n in nets if n.network.prefixlen < 32):
                return name
        raise AssertionError(f"the VPC router has no interface in {address}: {interfaces}")

    vpc = IPv4Network(topology["vpc"]["cidr"])
    subnets = {s["name"]: IPv4Network(s["cidr"]) for s in topology["subnets"]}
    igw = topology["internet_gateway"]
    targets: dict[str, tuple[str, str]] = {}  # target (name or id) -> (address, router interface)
    for nat in topology.get("nat_gateways", []):
        targets[nat["name"]] = targets[nat["id"]] = (nat["private_ip"], interface_for(subnets[nat["subnet"]]))
    endpoints = topology["firewall"]["endpoints"]
    for e in endpoints:
        targets[e["name"]] = targets[e["id"]] = (e["ip"], interface_for(subnets[e["subnet"]]))
    if len(endpoints) == 1:
        targets["firewall-endpoint"] = targets[endpoints[0]["name"]]
    targets[igw["name"]] = targets[igw["id"]] = (igw_address, interface_for(IPv4Address(igw_address)))

    points = {name: interface_for(cidr) for name, cidr in subnets.items()} | {igw["name"]: targets[igw["name"]][1]}
    out: Routes = {}
    for point, iif in points.items():
        table = next((t for t in topology["route_tables"] if point in t["associations"]), None)
        explicit = [(IPv4Network(r["destination"]), r["target"]) for r in (table or {}).get("routes", [])
                    if r["target"] != "local"]
        routes: set[Route] = {(str(cidr), "", interface_for(cidr)) for cidr in subnets.values()
                              if not any(d.prefixlen > vpc.prefixlen and cidr.subnet_of(d) for d, _ in explicit)}
        routes |= {(str(d), *targets[t]) for d, t in explicit}
        if not any(d.prefixlen == 0 for d, _ in explicit):
            routes.add(("0.0.0.0/0", "blackhole", ""))
        out[iif] = routes
    return out


def differences(expected: Routes, kernel: Routes) -> list[str]:
    """Each route one side has and the other lacks, by the interface its table serves; [] when they agree."""
    def show(r: Route) -> str:
        return f"{r[0]} blackhole" if r[1] == "blackhole" else f"{r[0]} {'via ' + r[1] + ' ' if r[1] else ''}dev {r[2]}"
    out = []
    for iif in sorted(set(expected) | set(kernel)):
        want, have = expected.get(iif, set()), kernel.get(iif, set())
        out += [f"iif {iif}: the kernel lacks {show(r)}" for r in sorted(want - have)]
        out += [f"iif {iif}: the kernel has {show(r)}, which the topology does not give" for r in sorted(have - want)]
    return out


def _ip_json(lab: Any, node: str, *commands: str) -> list[list[dict[str, Any]]]:
    code, out, err = lab.exec(node, ["sh", "-c", "; ".join(f"ip -j -4 {c}" for c in commands)])
    assert code == 0, f"`ip` in {node}: {err}"
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def router_kernel(lab: Any) -> tuple[Routes, list[dict[str, Any]]]:
    """The router's routes by `iif` rule, and its addresses, read from its kernel."""
    rules, routes, addresses = _ip_json(lab, ROUTER, "rule show", "route show table all", "addr show")
    return kernel_routes_by_interface(rules, routes), addresses


@cache
def _igw_address(lab: Any, igw: str, router_networks: tuple[IPv4Network, ...]) -> str:
    (addresses,) = _ip_json(lab, igw, "addr show")
    found = [str(n.ip) for nets in _networks(addresses).values() for n in nets
             if n.network in router_networks and not n.is_loopback]
    assert len(found) == 1, f"the internet gateway {igw} has no single address on a link to the VPC router: {found}"
    return found[0]


def router_differences(lab: Any, topology: str | Path) -> list[str]:
    """How the VPC router's kernel differs from what `topology`'s route tables say ([] when it follows them)."""
    doc = topology_document(topology)
    kernel, addresses = router_kernel(lab)
    networks = tuple(sorted({n.network for nets in _networks(addresses).values() for n in nets}))
    igw = _igw_address(lab, doc["internet_gateway"]["name"], networks)
    return differences(expected_routes(doc, addresses, igw), kernel)


def assert_router_follows(lab: Any, topology: str | Path) -> None:
    problems = router_differences(lab, topology)
    assert not problems, f"the VPC router's kernel does not follow {topology}:\n  " + "\n  ".join(problems)
