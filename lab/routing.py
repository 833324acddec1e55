"""Routing: turns a topology's AWS route tables into the VPC router's Linux tables.

Pure logic, no kernel calls. The VPC router has one bridge per subnet and one
link to the internet gateway. Each association point (a subnet's bridge, the
internet gateway link) gets a fixed Linux routing table and an `iif` policy
rule, set once at `up`; a topology's route tables only decide what those tables contain, so
switching them live replaces routes and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from .model import FIREWALL_ENDPOINT, LOCAL, RouteTable, RouteTables, Vpc

# Link between the VPC router and the internet gateway (never leaves the lab).
IGW_LINK_ROUTER = IPv4Address("169.254.0.1")
IGW_LINK_GATEWAY = IPv4Address("169.254.0.2")
IGW_LINK_PREFIX = 30
IGW_PORT = "igw"  # interface name of that link in the VPC router

TABLE_BASE = 100  # subnets get 100, 101, ... in VPC order
EDGE_TABLE = 200  # traffic arriving from the internet gateway
RULE_PRIORITY = 1000


@dataclass(frozen=True, order=True)
class KernelRoute:
    """One route in a Linux routing table of the VPC router."""

    table: int
    dst: IPv4Network
    kind: str  # "via" (next hop), "link" (on-link, a subnet's bridge) or "blackhole"
    dev: str = ""
    gateway: IPv4Address | None = None

    def describe(self) -> str:
        if self.kind == "blackhole":
            return f"blackhole {self.dst} table {self.table}"
        if self.kind == "link":
            return f"{self.dst} dev {self.dev} table {self.table}"
        return f"{self.dst} via {self.gateway} dev {self.dev} table {self.table}"


@dataclass(frozen=True, order=True)
class PolicyRule:
    priority: int
    iif: str
    table: int


def association_tables(vpc: Vpc) -> dict[str, int]:
    """Association point -> Linux table id: one per subnet, one for the IGW."""
    tables = {s.name: TABLE_BASE + i for i, s in enumerate(vpc.subnets)}
    tables[vpc.internet_gateway.name] = EDGE_TABLE
    return tables


def policy_rules(vpc: Vpc) -> list[PolicyRule]:
    """The `iif` rules of the VPC router: fixed for the life of the lab."""
    ports = {s.name: s.bridge for s in vpc.subnets} | {vpc.internet_gateway.name: IGW_PORT}
    return [PolicyRule(RULE_PRIORITY + i, ports[name], table)
            for i, (name, table) in enumerate(association_tables(vpc).items())]


def _next_hop(vpc: Vpc, target: str) -> tuple[str, IPv4Address]:
    kind = vpc.target_kind(target)
    if kind == "nat-gateway":
        nat = vpc.nat(target)
        return vpc.subnet(nat.subnet).bridge, nat.private_ip
    if kind == FIREWALL_ENDPOINT:
        endpoint = vpc.endpoint(target)
        return vpc.subnet(endpoint.subnet).bridge, endpoint.ip
    if kind == "internet-gateway":
        return IGW_PORT, IGW_LINK_GATEWAY
    raise ValueError(f"no next hop for target {target!r}")


def _table_routes(vpc: Vpc, table_id: int, table: RouteTable | None) -> list[KernelRoute]:
    routes = list(table.routes) if table else []
    explicit = [r for r in routes if r.target != LOCAL]
    out: list[KernelRoute] = []
    # The local route (the VPC CIDR) reaches every subnet directly, except
    # where a more specific route covers the whole subnet (AWS lets a route
    # more specific than the local route send a subnet's traffic elsewhere).
    for s in vpc.subnets:
        covered = any(r.destination.prefixlen > vpc.cidr.prefixlen and s.cidr.subnet_of(r.destination)
                      for r in explicit)
        if not covered:
            out.append(KernelRoute(table_id, s.cidr, "link", s.bridge))
    for r in explicit:
        dev, gw = _next_hop(vpc, r.target)
        out.append(KernelRoute(table_id, r.destination, "via", dev, gw))
    if not any(r.destination.prefixlen == 0 for r in explicit):
        # AWS drops what no route matches; never fall through to another table.
        out.append(KernelRoute(table_id, IPv4Network("0.0.0.0/0"), "blackhole"))
    return sorted(out)


def kernel_routes(vpc: Vpc, tables: RouteTables) -> list[KernelRoute]:
    """Every route of every association table for `tables`.

    The internet gateway without an edge route table delivers by the local
    route only (no ingress routing)."""
    out: list[KernelRoute] = []
    for name, table_id in association_tables(vpc).items():
        out += _table_routes(vpc, table_id, tables.table_for(name))
    return out


def route_table_json(vpc: Vpc, route_tables: RouteTables) -> dict:
    """The route tables as `aws ec2 describe-route-tables` would print them."""
    subnet_ids = {s.name: s.id for s in vpc.subnets}
    tables = []
    for t in route_tables.tables:
        assocs = []
        for i, a in enumerate(t.associations):
            entry = {"Main": False, "RouteTableAssociationId": f"rtbassoc-{t.id[4:]}{i}",
                     "RouteTableId": t.id, "AssociationState": {"State": "associated"}}
            if a == vpc.internet_gateway.name:
                entry["GatewayId"] = vpc.internet_gateway.id
            else:
                entry["SubnetId"] = subnet_ids[a]
            assocs.append(entry)
        routes = []
        for r in t.routes:
            route = {"DestinationCidrBlock": str(r.destination)}
            key = {LOCAL: "GatewayId", "internet-gateway": "GatewayId", "nat-gateway": "NatGatewayId",
                   FIREWALL_ENDPOINT: "VpcEndpointId"}[vpc.target_kind(r.target)]
            route[key] = vpc.target_id(r.target)
            route["Origin"] = "CreateRouteTable" if r.target == LOCAL else "CreateRoute"
            route["State"] = "active"
            routes.append(route)
        tables.append({"Associations": assocs, "RouteTableId": t.id, "Routes": routes,
                       "Tags": [{"Key": "Name", "Value": t.name}], "VpcId": vpc.id})
    return {"RouteTables": tables}


def format_route_tables(vpc: Vpc, tables: RouteTables) -> str:
    """Route tables as the VPC console shows them: routes, then associations."""
    lines = [f"Topology {tables.name}: {tables.description}", ""]
    subnets = {s.name: s for s in vpc.subnets}
    for t in tables.tables:
        lines.append(f"Route table {t.id} ({t.name})")
        for a in t.associations:
            if a == vpc.internet_gateway.name:
                lines.append(f"  Edge association: {vpc.internet_gateway.id} ({a})")
            else:
                lines.append(f"  Subnet association: {subnets[a].id} ({a} {subnets[a].cidr})")
        lines.append(f"  {'Destination':<18} {'Target':<24} Status")
        for r in t.routes:
            target = vpc.target_id(r.target)
            label = "" if r.target == LOCAL else f"  ({r.target})"
            lines.append(f"  {r.destination!s:<18} {target:<24} Active{label}")
        lines.append("")
    if tables.table_for(vpc.internet_gateway.name) is None:
        lines.append(f"Internet gateway {vpc.internet_gateway.id}: no edge route table (no ingress routing)")
    return "\n".join(lines).rstrip() + "\n"


def diff_route_tables(vpc: Vpc, before: RouteTables, after: RouteTables) -> str:
    """What changes from one tables's route tables to another's, table by table (matched by association)."""
    def label(target: str) -> str:
        return LOCAL if target == LOCAL else f"{vpc.target_id(target)} ({target})"

    lines = [f"Route tables {before.name} -> {after.name}:"]
    associations = [s.name for s in vpc.subnets] + [vpc.internet_gateway.name]
    for a in associations:
        old, new = before.table_for(a), after.table_for(a)
        where = f"{a} (edge association)" if a == vpc.internet_gateway.name else f"subnet {a}"
        if old is None and new is None:
            continue
        if new is None:
            assert old is not None
            lines.append(f"  {where}: route table {old.name} removed" + (" (no ingress routing)" if
                                                                       a == vpc.internet_gateway.name else ""))
            continue
        if old is None:
            lines.append(f"  {where}: route table {new.name} added")
            old_routes: dict = {}
        else:
            old_routes = {r.destination: r.target for r in old.routes}
        new_routes = {r.destination: r.target for r in new.routes}
        changes = []
        for dest in sorted(set(old_routes) | set(new_routes), key=lambda d: (d.prefixlen, d)):
            o, n = old_routes.get(dest), new_routes.get(dest)
            if o == n:
                continue
            if o is not None and n is not None:
                changes.append(f"  {dest!s:<16} {label(o)}  =>  {label(n)}")
            elif n is not None:
                changes.append(f"+ {dest!s:<16} -> {label(n)}")
            elif o is not None:
                changes.append(f"- {dest!s:<16} -> {label(o)}")
        if changes:
            lines.append(f"  {where}, route table {new.name}:")
            lines += [f"      {c}" for c in changes]
    if len(lines) == 1:
        lines.append("  no change")
    return "\n".join(lines) + "\n"
