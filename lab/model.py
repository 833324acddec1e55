"""Model: the VPC and its route tables as AWS users describe them.

Plain, typed data loaded from YAML files and validated whole before anything
is created. Holds names and addresses only: no Docker, no kernel handles.
Errors name the file, the field and what to do.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from .documents import read_document
from .errors import ConfigError

NAT_TCP_IDLE_TIMEOUT = 350  # seconds: a NAT gateway's idle timeout for TCP, fixed on AWS

LOCAL = "local"
FIREWALL_ENDPOINT = "firewall-endpoint"
RESERVED_NAMES = ("vpc-router", "internet")  # nodes the lab always has
NODE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,14}$")  # also an interface name in the VPC router: at most 15
SERVICE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
SUBNET_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,11}$")  # its bridge is br-<name>: at most 15
AWS_ID_RE = re.compile(r"^(nat|vpce|igw|tgw|pcx|eni|vgw|eigw|lgw|cagw)-[0-9a-f]+$")


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
    # AWS: "If a connection that's using a NAT gateway is idle for 350 seconds or more, the connection
    # times out." Fixed on AWS; a topology may shorten it so that a test sees it in seconds.
    tcp_idle_timeout: int = NAT_TCP_IDLE_TIMEOUT


@dataclass(frozen=True)
class FirewallEndpoint:
    """One endpoint (a route target, vpce-...) of the AWS Network Firewall, in one subnet and AZ.

    In the lab each endpoint is a firewall node running its own Suricata."""

    name: str  # the node name in the lab
    firewall_name: str  # AWS firewall name, as written in the logs
    id: str  # vpce-...
    subnet: str
    ip: IPv4Address
    availability_zone: str


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
    nat_gateways: tuple[NatGateway, ...]
    endpoints: tuple[FirewallEndpoint, ...]
    internet_gateway: InternetGateway
    internet: Internet
    source: str = field(default="<vpc>", compare=False)

    @property
    def dns_ip(self) -> IPv4Address:
        """The Amazon-provided DNS server (VPC base + 2)."""
        return self.cidr.network_address + 2

    @property
    def nat_gateway(self) -> NatGateway:
        """The first NAT gateway (the only one in a single-AZ VPC)."""
        return self.nat_gateways[0]

    @property
    def firewall(self) -> FirewallEndpoint:
        """The first firewall endpoint (the only one in a single-AZ VPC)."""
        return self.endpoints[0]

    @property
    def firewall_name(self) -> str:
        return self.endpoints[0].firewall_name

    @property
    def availability_zone(self) -> str:
        return self.endpoints[0].availability_zone

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

    def targets(self) -> dict[str, str]:
        """Route targets by name and by AWS id -> canonical target name (the node's name)."""
        names = {LOCAL: LOCAL, self.internet_gateway.name: self.internet_gateway.name,
                 self.internet_gateway.id: self.internet_gateway.name}
        for n in self.nat_gateways:
            names[n.name] = names[n.id] = n.name
        for e in self.endpoints:
            names[e.name] = names[e.id] = e.name
        if len(self.endpoints) == 1:
            names[FIREWALL_ENDPOINT] = self.endpoints[0].name  # the one endpoint, by its role
        return names

    def target_kind(self, target: str) -> str:
        """local | nat-gateway | firewall-endpoint | internet-gateway for a canonical target name."""
        if target == LOCAL:
            return LOCAL
        if any(n.name == target for n in self.nat_gateways):
            return "nat-gateway"
        if any(e.name == target for e in self.endpoints):
            return FIREWALL_ENDPOINT
        if target == self.internet_gateway.name:
            return "internet-gateway"
        raise KeyError(target)

    def target_id(self, target: str) -> str:
        """The AWS id a route shows for a canonical target name."""
        ids = {LOCAL: LOCAL, self.internet_gateway.name: self.internet_gateway.id}
        ids.update({n.name: n.id for n in self.nat_gateways})
        ids.update({e.name: e.id for e in self.endpoints})
        return ids[target]

    def nat(self, name: str) -> NatGateway:
        for n in self.nat_gateways:
            if n.name == name:
                return n
        raise KeyError(name)

    def endpoint(self, name: str) -> FirewallEndpoint:
        for e in self.endpoints:
            if e.name == name:
                return e
        raise KeyError(name)


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
class RouteTables:
    """A topology's route tables: what a running lab can switch live (`nfwlab switch`)."""

    name: str  # the topology's name
    description: str
    tables: tuple[RouteTable, ...]
    source: str = "<topology>"

    def table_for(self, association: str) -> RouteTable | None:
        for t in self.tables:
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
        unknown = sorted(set(data) - set(required) - set(optional), key=str)  # YAML keys may be numbers too
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


DOCUMENTATION_RANGES = (IPv4Network("198.51.100.0/24"), IPv4Network("203.0.113.0/24"))  # the emulated internet
# RFC 5737's three documentation ranges (TEST-NET-1, -2, -3): public in the lab, never routed anywhere.
DOCUMENTATION_NETWORKS = (IPv4Network("192.0.2.0/24"), *DOCUMENTATION_RANGES)


def _public(reader: _Reader, addr: IPv4Address | IPv4Network, where: str) -> None:
    net = addr if isinstance(addr, IPv4Network) else IPv4Network(addr)
    if not any(net.subnet_of(r) for r in DOCUMENTATION_RANGES):
        raise reader.fail(where, f"{addr} is not in 198.51.100.0/24 or 203.0.113.0/24",
                          "emulated public addresses must come from the documentation ranges")


def _elastic_ip(reader: _Reader, eip: IPv4Address, vpc_cidr: IPv4Network, where: str) -> None:
    """An Elastic IP: a public address (an account's own, as an import keeps it, or a documentation address),
    outside the VPC. The lab gives it no route out: it exists between the internet gateway and the lab's internet."""
    if not (eip.is_global or any(eip in n for n in DOCUMENTATION_NETWORKS)):
        raise reader.fail(where, f"{eip} is not a public address (private, shared or special-purpose)",
                          "an Elastic IP is a public IPv4 address: the account's own, or one from the "
                          "documentation ranges 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24")
    if eip in vpc_cidr:
        raise reader.fail(where, f"{eip} is inside the VPC CIDR {vpc_cidr}", "an Elastic IP is outside the VPC")


VPC_FIELDS = ["vpc", "subnets", "servers", "nat_gateways", "firewall", "internet_gateway", "internet"]


def parse_vpc(data: Any, source: str = "<vpc>") -> Vpc:
    """The VPC part of a topology (everything but its route tables), validated whole."""
    r = _Reader(source)
    top = r.mapping(data, "", VPC_FIELDS, ["name", "description", "route_tables"])
    v = r.mapping(top["vpc"], "vpc", ["id", "cidr", "region"])
    vpc_cidr = r.network(v["cidr"], "vpc.cidr")

    subnets: list[Subnet] = []
    for i, s in enumerate(r.items(top["subnets"], "subnets")):
        where = f"subnets[{i}]"
        s = r.mapping(s, where, ["name", "id", "cidr", "availability_zone"])
        name = r.text(s["name"], f"{where}.name")
        if not SUBNET_NAME_RE.match(name):
            raise r.fail(f"{where}.name", f"{name!r} can't name the subnet's bridge in Linux (br-{name})",
                         "use 1-12 characters: lower-case letters, digits and '-', starting with a letter")
        cidr = r.network(s["cidr"], f"{where}.cidr")
        if not cidr.subnet_of(vpc_cidr):
            raise r.fail(f"{where}.cidr", f"{cidr} is outside the VPC CIDR {vpc_cidr}", "pick a block inside the VPC")
        for other in subnets:
            if cidr.overlaps(other.cidr):
                raise r.fail(f"{where}.cidr", f"{cidr} overlaps subnet {other.name} ({other.cidr})",
                             "subnets of one VPC must not overlap")
            if other.name == name:
                raise r.fail(f"{where}.name", f"duplicate subnet name {name!r}", "give each subnet its own name")
        if cidr.prefixlen > 28:
            raise r.fail(f"{where}.cidr", f"{cidr} is smaller than AWS allows (/28 at most)", "use /16 to /28")
        subnets.append(Subnet(name, r.text(s["id"], f"{where}.id"), cidr,
                              r.text(s["availability_zone"], f"{where}.availability_zone")))
    by_name = {s.name: s for s in subnets}
    used: dict[IPv4Address, str] = {}
    nodes: dict[str, str] = {n: "the lab itself" for n in RESERVED_NAMES}

    def node_name(data: Any, where: str, linux_interface: bool = True) -> str:
        name = r.text(data, where)
        if not (NODE_NAME_RE if linux_interface else SERVICE_NAME_RE).match(name):
            raise r.fail(where, f"{name!r} can't be a node name (it also names a Linux interface)",
                         "use 1-15 characters: lower-case letters, digits and '-', starting with a letter")
        if name in nodes:
            raise r.fail(where, f"the name {name!r} is already taken by {nodes[name]}", "give each node its own name")
        nodes[name] = where
        return name

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

    nats: list[NatGateway] = []
    eips: dict[IPv4Address, str] = {}
    for i, n in enumerate(r.items(top["nat_gateways"], "nat_gateways")):
        where = f"nat_gateways[{i}]"
        if isinstance(n, dict) and "elastic_ip" not in n:
            raise r.fail(f"{where}.elastic_ip", "missing: a public NAT gateway needs an Elastic IP",
                         "add elastic_ip: a public address, such as one from 198.51.100.0/24")
        n = r.mapping(n, where, ["name", "id", "subnet", "private_ip", "elastic_ip"], ["tcp_idle_timeout"])
        idle = n.get("tcp_idle_timeout", NAT_TCP_IDLE_TIMEOUT)
        if not isinstance(idle, int) or isinstance(idle, bool) or not 1 <= idle <= NAT_TCP_IDLE_TIMEOUT:
            raise r.fail(f"{where}.tcp_idle_timeout", f"{idle!r} is not a number of seconds from 1 to 350",
                         "leave it out for AWS's 350 seconds; shorten it only to see the timeout in a test")
        name = node_name(n["name"], f"{where}.name")
        subnet, ip = place(n["private_ip"], n["subnet"], where, "private_ip", name)
        eip = r.address(n["elastic_ip"], f"{where}.elastic_ip")
        _elastic_ip(r, eip, vpc_cidr, f"{where}.elastic_ip")
        if eip in eips:
            raise r.fail(f"{where}.elastic_ip", f"{eip} is already the Elastic IP of {eips[eip]}",
                         "each NAT gateway has its own Elastic IP")
        eips[eip] = name
        nats.append(NatGateway(name, r.text(n["id"], f"{where}.id"), subnet, ip, eip, idle))

    f = r.mapping(top["firewall"], "firewall", ["name", "endpoints"])
    firewall_name = r.text(f["name"], "firewall.name")
    endpoints: list[FirewallEndpoint] = []
    for i, e in enumerate(r.items(f["endpoints"], "firewall.endpoints")):
        where = f"firewall.endpoints[{i}]"
        e = r.mapping(e, where, ["name", "id", "subnet", "ip"])
        name = node_name(e["name"], f"{where}.name")
        subnet, ip = place(e["ip"], e["subnet"], where, "ip", f"firewall endpoint {name}")
        az = by_name[subnet].availability_zone
        if any(x.availability_zone == az for x in endpoints):
            raise r.fail(f"{where}.subnet", f"the firewall already has an endpoint in {az}",
                         "AWS Network Firewall has one endpoint per Availability Zone")
        endpoints.append(FirewallEndpoint(name, firewall_name, r.text(e["id"], f"{where}.id"), subnet, ip, az))

    g = r.mapping(top["internet_gateway"], "internet_gateway", ["name", "id"])
    # Its interfaces in the VPC router and in itself have fixed names (igw, eth0, eth1).
    igw = InternetGateway(node_name(g["name"], "internet_gateway.name", linux_interface=False),
                          r.text(g["id"], "internet_gateway.id"))

    servers: list[Server] = []
    for i, s in enumerate(r.items(top["servers"], "servers")):
        where = f"servers[{i}]"
        s = r.mapping(s, where, ["name", "subnet", "ip"], ["count"])
        count = s.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 250:
            raise r.fail(f"{where}.count", f"{count!r} is not a number of servers from 1 to 250",
                         "write count: 50 (with {n} in the name: app-{n} gives app-1, app-2, ...)")
        pattern = r.text(s["name"], f"{where}.name")
        if count > 1 and "{n}" not in pattern:
            raise r.fail(f"{where}.name", "with count, the name needs {n} for the server's number",
                         "write name: app-{n}")
        first = r.address(s["ip"], f"{where}.ip")
        for k in range(count):
            name = node_name(pattern.replace("{n}", str(k + 1)), f"{where}.name")
            subnet_name, ip = place(str(first + k), s["subnet"], where, "ip" if count == 1 else f"ip (+{k})", name)
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
    internet = Internet(r.text(net.get("name", "internet"), "internet.name"), inet_cidr, web, domains)
    for i, n in enumerate(nats):
        if n.elastic_ip in inet_cidr:
            raise r.fail(f"nat_gateways[{i}].elastic_ip", f"{n.elastic_ip} is inside the internet block {inet_cidr}",
                         "the internet block holds the servers' destinations: pick an Elastic IP outside internet.cidr")

    return Vpc(r.text(v["id"], "vpc.id"), vpc_cidr, r.text(v["region"], "vpc.region"), tuple(subnets),
               tuple(servers), tuple(nats), tuple(endpoints), igw, internet, source)


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



def parse_route_tables(data: Any, vpc: Vpc, source: str = "<topology>") -> RouteTables:
    r = _Reader(source)
    top = r.mapping(data, "", ["name", "route_tables"], ["description"] + VPC_FIELDS)
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
                raise r.fail(f"{where}.associations[{j}]",
                             f"{a} is already associated with route table {associated[a]}",
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
                if AWS_ID_RE.match(tgt):
                    raise r.fail(f"{rw}.target", f"{tgt} is not in this VPC (it is in another VPC, or it does "
                                 "not exist)", f"route to a target of {vpc.id}: "
                                 f"{', '.join(sorted(k for k in targets if k == targets[k]))} (or their ids)")
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
            if edge and vpc.target_kind(tgt) not in (LOCAL, FIREWALL_ENDPOINT):
                raise r.fail(f"{rw}.target", f"an edge route table can only route to a firewall endpoint, not {tgt}",
                             "use a firewall endpoint as the target")
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
    return RouteTables(r.text(top["name"], "name"), str(top.get("description", "")).strip(), tuple(tables), source)


@dataclass(frozen=True)
class Topology:
    """A whole VPC as one file describes it: its parts, and its route tables."""

    vpc: Vpc
    route_tables: RouteTables

    @property
    def name(self) -> str:
        return self.route_tables.name

    @property
    def source(self) -> str:
        return self.route_tables.source


def parse_topology(data: Any, source: str = "<topology>") -> Topology:
    """A topology file's content, validated whole: the VPC's parts first, then its route tables."""
    vpc = parse_vpc(data, source)
    return Topology(vpc, parse_route_tables(data, vpc, source))


def load_topology(path: str | Path) -> Topology:
    path = Path(path)
    return parse_topology(read_document(path, "topology file"), str(path))
