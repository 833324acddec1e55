"""Model: the VPC and its route tables as AWS users describe them.

Plain, typed data loaded from YAML files and validated whole before anything
is created. Holds names and addresses only: no Docker, no kernel handles.
Errors name the file, the field and what to do.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

LOCAL = "local"


# --------------------------------------------------------------------------
# The VPC
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Subnet:
    name: str
    id: str
    cidr: IPv4Network
    availability_zone: str

    @property
    def router_ip(self) -> IPv4Address:
        """The VPC router's address in the subnet (AWS: base + 1)."""
        return self.cidr.network_address + 1

    @property
    def bridge(self) -> str:
        """Interface name of the subnet's bridge in the VPC router."""
        return f"br-{self.name}"[:15]


@dataclass(frozen=True)
class Server:
    name: str
    subnet: str
    ip: IPv4Address


@dataclass(frozen=True)
class NatGateway:
    name: str
    id: str
    subnet: str
    private_ip: IPv4Address
    elastic_ip: IPv4Address


@dataclass(frozen=True)
class FirewallEndpoint:
    """An AWS Network Firewall and its endpoint (a route target) in one subnet."""

    name: str  # the node name of the firewall in the lab
    firewall_name: str  # AWS firewall name, as written in the alert log
    id: str  # vpce-...
    subnet: str
    ip: IPv4Address


@dataclass(frozen=True)
class InternetGateway:
    name: str
    id: str


@dataclass(frozen=True)
class Internet:
    """The emulated internet: one segment behind the internet gateway."""

    name: str
    cidr: IPv4Network
    web_server: IPv4Address
    domains: tuple[str, ...]

    @property
    def gateway_ip(self) -> IPv4Address:
        """The internet gateway's address on the internet segment."""
        return self.cidr.network_address + 1


@dataclass(frozen=True)
class Vpc:
    id: str
    cidr: IPv4Network
    region: str
    subnets: tuple[Subnet, ...]
    servers: tuple[Server, ...]
    nat_gateway: NatGateway
    firewall: FirewallEndpoint
    internet_gateway: InternetGateway
    internet: Internet
    source: str = "<vpc>"

    @property
    def dns_ip(self) -> IPv4Address:
        """The Amazon-provided DNS server (VPC base + 2)."""
        return self.cidr.network_address + 2

    def subnet(self, name: str) -> Subnet:
        for s in self.subnets:
            if s.name == name:
                return s
        raise KeyError(name)

    def server(self, name: str) -> Server:
        for s in self.servers:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def availability_zone(self) -> str:
        return self.subnet(self.firewall.subnet).availability_zone

    def targets(self) -> dict[str, str]:
        """Route targets by name and by AWS id -> canonical target name."""
        names = {
            LOCAL: LOCAL,
            self.nat_gateway.name: self.nat_gateway.name,
            self.nat_gateway.id: self.nat_gateway.name,
            "firewall-endpoint": "firewall-endpoint",
            self.firewall.id: "firewall-endpoint",
            self.internet_gateway.name: self.internet_gateway.name,
            self.internet_gateway.id: self.internet_gateway.name,
        }
        return names

    def target_id(self, target: str) -> str:
        """The AWS id a route shows for a canonical target name."""
        return {
            LOCAL: LOCAL,
            self.nat_gateway.name: self.nat_gateway.id,
            "firewall-endpoint": self.firewall.id,
            self.internet_gateway.name: self.internet_gateway.id,
        }[target]


# --------------------------------------------------------------------------
# Route tables and designs
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    destination: IPv4Network
    target: str  # canonical name: "local", the NAT gateway's, "firewall-endpoint", the IGW's


@dataclass(frozen=True)
class RouteTable:
    name: str
    id: str
    associations: tuple[str, ...]  # subnet names, or the internet gateway (edge association)
    routes: tuple[Route, ...]

    def is_edge(self, vpc: Vpc) -> bool:
        return vpc.internet_gateway.name in self.associations


@dataclass(frozen=True)
class Design:
    name: str
    description: str
    route_tables: tuple[RouteTable, ...]
    source: str = "<design>"

    def table_for(self, association: str) -> RouteTable | None:
        for t in self.route_tables:
            if association in t.associations:
                return t
        return None


# --------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------
class _Reader:
    """Reads a mapping from a YAML file, naming file and field in every error."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, what: str, fix: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where}: {what}", fix)

    def mapping(self, data: Any, where: str, required: Iterable[str], optional: Iterable[str] = ()) -> dict:
        if not isinstance(data, dict):
            raise self.fail(where, f"expected a mapping, got {type(data).__name__}", "write it as `key: value` lines")
        required, optional = list(required), list(optional)
        unknown = sorted(set(data) - set(required) - set(optional))
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}" if where else unknown[0], "unknown field",
                            f"known fields here: {', '.join(required + optional)}")
        for key in required:
            if key not in data:
                raise self.fail(f"{where}.{key}" if where else key, "missing", "add it")
        return data

    def text(self, data: Any, where: str) -> str:
        if not isinstance(data, str) or not data.strip():
            raise self.fail(where, f"expected a non-empty string, got {data!r}", "give a name or id")
        return data

    def items(self, data: Any, where: str) -> list:
        if not isinstance(data, list) or not data:
            raise self.fail(where, f"expected a non-empty list, got {data!r}", "write one `- item` per line")
        return data

    def network(self, data: Any, where: str) -> IPv4Network:
        try:
            return ipaddress.IPv4Network(str(data), strict=True)
        except ValueError as e:
            raise self.fail(where, f"{data!r} is not an IPv4 CIDR block ({e})", "write it like 10.0.128.0/20") from None

    def address(self, data: Any, where: str) -> IPv4Address:
        try:
            return ipaddress.IPv4Address(str(data))
        except ValueError:
            raise self.fail(where, f"{data!r} is not an IPv4 address", "write it like 10.0.136.108") from None


def _load_yaml(path: Path) -> Any:
    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file", "check the path") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}", "fix the syntax at the line shown") from None


DOCUMENTATION_RANGES = (IPv4Network("198.51.100.0/24"), IPv4Network("203.0.113.0/24"))


def _public(reader: _Reader, addr: IPv4Address | IPv4Network, where: str) -> None:
    net = addr if isinstance(addr, IPv4Network) else IPv4Network(addr)
    if not any(net.subnet_of(r) for r in DOCUMENTATION_RANGES):
        raise reader.fail(where, f"{addr} is not in 198.51.100.0/24 or 203.0.113.0/24",
                          "emulated public addresses must come from the documentation ranges")


def load_vpc(path: str | Path) -> Vpc:
    path = Path(path)
    return parse_vpc(_load_yaml(path), str(path))


def parse_vpc(data: Any, source: str = "<vpc>") -> Vpc:
    r = _Reader(source)
    top = r.mapping(data, "", ["vpc", "subnets", "servers", "nat_gateway", "firewall", "internet_gateway", "internet"])
    v = r.mapping(top["vpc"], "vpc", ["id", "cidr", "region"])
    vpc_cidr = r.network(v["cidr"], "vpc.cidr")

    subnets: list[Subnet] = []
    for i, s in enumerate(r.items(top["subnets"], "subnets")):
        where = f"subnets[{i}]"
        s = r.mapping(s, where, ["name", "id", "cidr", "availability_zone"])
        cidr = r.network(s["cidr"], f"{where}.cidr")
        if not cidr.subnet_of(vpc_cidr):
            raise r.fail(f"{where}.cidr", f"{cidr} is outside the VPC CIDR {vpc_cidr}", "pick a block inside the VPC")
        for other in subnets:
            if cidr.overlaps(other.cidr):
                raise r.fail(f"{where}.cidr", f"{cidr} overlaps subnet {other.name} ({other.cidr})",
                             "subnets of one VPC must not overlap")
            if other.name == s["name"]:
                raise r.fail(f"{where}.name", f"duplicate subnet name {s['name']!r}", "give each subnet its own name")
        subnets.append(Subnet(r.text(s["name"], f"{where}.name"), r.text(s["id"], f"{where}.id"), cidr,
                              r.text(s["availability_zone"], f"{where}.availability_zone")))
    by_name = {s.name: s for s in subnets}
    used: dict[IPv4Address, str] = {}

    def place(addr_data: Any, subnet_data: Any, where: str, addr_field: str, owner: str) -> tuple[str, IPv4Address]:
        subnet_name = r.text(subnet_data, f"{where}.subnet")
        if subnet_name not in by_name:
            raise r.fail(f"{where}.subnet", f"no subnet named {subnet_name!r}",
                         f"use one of: {', '.join(by_name)}")
        subnet = by_name[subnet_name]
        field_name = f"{where}.{addr_field}"
        addr = r.address(addr_data, field_name)
        if addr not in subnet.cidr:
            raise r.fail(field_name, f"{addr} is outside subnet {subnet.name} ({subnet.cidr})",
                         "pick an address inside the subnet")
        reserved = {subnet.cidr.network_address + k for k in range(4)} | {subnet.cidr.broadcast_address}
        if addr in reserved:
            raise r.fail(field_name, f"{addr} is reserved by AWS in {subnet.cidr} (first four and last address)",
                         "pick another address")
        if addr in used:
            raise r.fail(field_name, f"{addr} is already used by {used[addr]}", "give each node its own address")
        used[addr] = owner
        return subnet_name, addr

    n = r.mapping(top["nat_gateway"], "nat_gateway", ["name", "id", "subnet", "private_ip", "elastic_ip"])
    nat_subnet, nat_ip = place(n["private_ip"], n["subnet"], "nat_gateway", "private_ip", n["name"])
    eip = r.address(n["elastic_ip"], "nat_gateway.elastic_ip")
    _public(r, eip, "nat_gateway.elastic_ip")
    nat = NatGateway(r.text(n["name"], "nat_gateway.name"), r.text(n["id"], "nat_gateway.id"), nat_subnet, nat_ip, eip)

    f = r.mapping(top["firewall"], "firewall", ["name", "firewall_name", "endpoint_id", "subnet", "endpoint_ip"])
    fw_subnet, fw_ip = place(f["endpoint_ip"], f["subnet"], "firewall", "endpoint_ip", "the firewall endpoint")
    firewall = FirewallEndpoint(r.text(f["name"], "firewall.name"), r.text(f["firewall_name"], "firewall.firewall_name"),
                                r.text(f["endpoint_id"], "firewall.endpoint_id"), fw_subnet, fw_ip)

    g = r.mapping(top["internet_gateway"], "internet_gateway", ["name", "id"])
    igw = InternetGateway(r.text(g["name"], "internet_gateway.name"), r.text(g["id"], "internet_gateway.id"))

    servers: list[Server] = []
    for i, s in enumerate(r.items(top["servers"], "servers")):
        where = f"servers[{i}]"
        s = r.mapping(s, where, ["name", "subnet", "ip"])
        name = r.text(s["name"], f"{where}.name")
        if any(x.name == name for x in servers):
            raise r.fail(f"{where}.name", f"duplicate server name {name!r}", "give each server its own name")
        if s["subnet"] == fw_subnet:
            raise r.fail(f"{where}.subnet", f"{name} is in the firewall endpoint's own subnet, where AWS does not "
                         "inspect traffic", "put servers in a private subnet")
        subnet_name, ip = place(s["ip"], s["subnet"], where, "ip", name)
        servers.append(Server(name, subnet_name, ip))

    net = r.mapping(top["internet"], "internet", ["cidr", "web_server", "domains"], ["name"])
    inet_cidr = r.network(net["cidr"], "internet.cidr")
    _public(r, inet_cidr, "internet.cidr")
    web = r.address(net["web_server"], "internet.web_server")
    if web not in inet_cidr or web == inet_cidr.network_address + 1:
        raise r.fail("internet.web_server", f"{web} must be inside {inet_cidr} and not its first host (the gateway's)",
                     "pick another address in internet.cidr")
    domains = tuple(validate_domain(r.text(d, f"internet.domains[{i}]"), f"{source}: internet.domains[{i}]")
                    for i, d in enumerate(r.items(net["domains"], "internet.domains")))
    internet = Internet(net.get("name", "internet"), inet_cidr, web, domains)

    return Vpc(r.text(v["id"], "vpc.id"), vpc_cidr, r.text(v["region"], "vpc.region"), tuple(subnets),
               tuple(servers), nat, firewall, igw, internet, source)


def validate_domain(name: str, where: str = "domain") -> str:
    """A DNS name as the lab serves it: lower case, letters/digits/hyphens, dots between labels."""
    d = name.strip().lower()
    labels = d.split(".")
    ok = 0 < len(d) <= 253 and len(labels) >= 2 and all(
        0 < len(lab) <= 63 and lab[0] != "-" and lab[-1] != "-" and all(c.isalnum() or c == "-" for c in lab)
        and lab.isascii() for lab in labels)
    if not ok:
        raise ConfigError(f"{where}: {name!r} is not a valid domain name", "write it like blocked.example")
    return d


def load_design(path: str | Path, vpc: Vpc) -> Design:
    path = Path(path)
    return parse_design(_load_yaml(path), vpc, str(path))


def parse_design(data: Any, vpc: Vpc, source: str = "<design>") -> Design:
    r = _Reader(source)
    top = r.mapping(data, "", ["name", "route_tables"], ["description"])
    targets = vpc.targets()
    associable = {s.name for s in vpc.subnets} | {vpc.internet_gateway.name}
    associated: dict[str, str] = {}
    tables: list[RouteTable] = []
    for i, t in enumerate(r.items(top["route_tables"], "route_tables")):
        where = f"route_tables[{i}]"
        t = r.mapping(t, where, ["name", "id", "associations", "routes"])
        name = r.text(t["name"], f"{where}.name")
        assocs = []
        for j, a in enumerate(r.items(t["associations"], f"{where}.associations")):
            a = r.text(a, f"{where}.associations[{j}]")
            if a not in associable:
                raise r.fail(f"{where}.associations[{j}]", f"nothing named {a!r} to associate",
                             f"associate subnets or the internet gateway: {', '.join(sorted(associable))}")
            if a in associated:
                raise r.fail(f"{where}.associations[{j}]", f"{a} is already associated with route table {associated[a]}",
                             "a subnet or gateway has exactly one route table")
            associated[a] = name
            assocs.append(a)
        edge = vpc.internet_gateway.name in assocs
        if edge and len(assocs) > 1:
            raise r.fail(f"{where}.associations", "an edge route table is associated with the internet gateway only",
                         "use a separate route table for subnets")
        routes: list[Route] = []
        for j, rt in enumerate(r.items(t["routes"], f"{where}.routes")):
            rw = f"{where}.routes[{j}]"
            rt = r.mapping(rt, rw, ["destination", "target"])
            dest = r.network(rt["destination"], f"{rw}.destination")
            tgt = r.text(str(rt["target"]), f"{rw}.target")
            if tgt not in targets:
                raise r.fail(f"{rw}.target", f"unknown target {tgt!r}",
                             f"use one of: {', '.join(sorted(k for k in targets if k == targets[k]))} (or their ids)")
            tgt = targets[tgt]
            if tgt == LOCAL and dest != vpc.cidr:
                raise r.fail(f"{rw}.destination", f"the local route covers the VPC CIDR {vpc.cidr}, not {dest}",
                             f"write `destination: {vpc.cidr}` for target local")
            if tgt != LOCAL and dest == vpc.cidr:
                raise r.fail(f"{rw}.destination", f"{dest} is the local route's destination",
                             "route a more specific block (a subnet CIDR) to the target instead")
            if any(x.destination == dest for x in routes):
                raise r.fail(f"{rw}.destination", f"duplicate route for {dest}", "keep one route per destination")
            if edge and tgt not in (LOCAL, "firewall-endpoint"):
                raise r.fail(f"{rw}.target", f"an edge route table can only route to the firewall endpoint, not {tgt}",
                             "use target firewall-endpoint")
            if edge and tgt != LOCAL and not dest.subnet_of(vpc.cidr):
                raise r.fail(f"{rw}.destination", f"edge routes must be for blocks inside the VPC, not {dest}",
                             "route a subnet CIDR, such as the NAT gateway's subnet")
            routes.append(Route(dest, tgt))
        if not any(x.target == LOCAL for x in routes):
            routes.insert(0, Route(vpc.cidr, LOCAL))  # AWS creates the local route in every table
        tables.append(RouteTable(name, r.text(t["id"], f"{where}.id"), tuple(assocs), tuple(routes)))
    missing = [s.name for s in vpc.subnets if s.name not in associated]
    if missing:
        raise r.fail("route_tables", f"subnet {missing[0]} has no route table",
                     f"add {missing[0]} to the associations of one route table")
    return Design(r.text(top["name"], "name"), str(top.get("description", "")).strip(), tuple(tables), source)
