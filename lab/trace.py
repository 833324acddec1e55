"""Trace: the path a flow takes through the VPC, from the route tables alone (no packet is sent).

Follows a packet hop by hop, both directions, with the same routes the lab
puts in the kernel (lab/routing.py): the route table of the subnet a packet
comes from (or the internet gateway's edge table), the longest prefix
match, the target, the address translations of NAT gateways and the
internet gateway. It reports the address each firewall endpoint sees, and
warns about what breaks inspection on AWS: a return path that skips the
firewall (asymmetric routing), a flow that never crosses it, a source in the
endpoint's own subnet, and a HOME_NET that does not cover the source the
firewall sees. With a policy (lab/verdict.py), it also states the policy's
verdict at the firewall hop: the rule that decides, or the default action, or
that the packet is needed to tell; without one it traces routes only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from .model import RouteTables, Vpc
from .routing import EDGE_TABLE, _table_routes, association_tables
from .verdict import PolicyRules, Verdict, decide, name_of

MAX_HOPS = 32


@dataclass(frozen=True)
class Hop:
    """One step of the path, in AWS's words."""

    where: str  # "server-a", "route table private-rtb (rtb-...)", "nat-gateway"
    what: str  # "0.0.0.0/0 -> nat-0c3... (nat-gateway)", "source 10.0.136.108 -> 10.0.13.92"

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(frozen=True)
class Sighting:
    """A firewall endpoint inspecting the flow in one direction."""

    endpoint: str
    availability_zone: str
    direction: str  # "request" | "response"
    src: IPv4Address
    dst: IPv4Address


@dataclass
class Leg:
    """One direction of a flow: its hops, whether it arrives, and the endpoints that inspect it."""

    hops: list[Hop] = field(default_factory=list)
    steps: list[tuple[str, str, str]] = field(default_factory=list)  # (from node, to node, why) in order
    reached: bool = False
    problem: str = ""  # why the packet did not arrive
    seen: list[Sighting] = field(default_factory=list)


@dataclass
class Trace:
    source: str
    source_ip: IPv4Address
    dest: str
    dest_ip: IPv4Address
    port: int
    request: Leg
    response: Leg
    warnings: list[str] = field(default_factory=list)
    verdict: Verdict | None = None  # the policy's, at the firewall hop (None: routes only)
    routes_only: str = "no policy was judged"  # why there is no verdict

    @property
    def firewall_sees(self) -> IPv4Address | None:
        """The source address the firewall sees for the request (None if it is never crossed)."""
        return self.request.seen[0].src if self.request.seen else None

    @property
    def blocked(self) -> bool:
        """Whether the policy drops or rejects the request (the routes alone would deliver it)."""
        return self.verdict is not None and self.verdict.action in ("drop", "reject")

    def _end(self) -> str:
        if not self.request.reached:
            return "dropped: " + self.request.problem
        if self.verdict is None:
            return f"arrives (routes only: {self.routes_only})"
        if self.verdict.action is None:
            return "arrives by the routes; the policy's verdict needs the packet (see above)"
        if self.blocked:
            verb = "drops" if self.verdict.action == "drop" else "rejects"
            return f"the firewall {verb} it ({self.verdict.by}); by the routes alone it would arrive"
        return f"arrives: the routes deliver it and the firewall passes it ({self.verdict.by})"

    def describe(self) -> str:
        lines = [f"trace {self.source} ({self.source_ip}) -> {self.dest} ({self.dest_ip}:{self.port})", "request:"]
        judged = False
        for h in self.request.hops:
            lines.append(f"  {h}")
            if self.verdict is not None and not judged and h.where.startswith("firewall endpoint"):
                lines += [f"    {v}" for v in self.verdict.lines()]
                judged = True
        lines.append(f"  => {self._end()}")
        if self.request.reached:
            lines.append("response (by the routes, were the request let through):" if self.blocked else "response:")
            lines += [f"  {h}" for h in self.response.hops]
            lines.append(f"  => {'arrives' if self.response.reached else 'dropped: ' + self.response.problem}")
        for s in self.request.seen + self.response.seen:
            lines.append(f"firewall endpoint {s.endpoint} ({s.availability_zone}) sees the {s.direction}: "
                         f"source {s.src}, destination {s.dst}")
        if not self.request.seen and not self.response.seen:
            lines.append("the firewall sees nothing of this flow")
        lines += [f"WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)


class _Walker:
    """Moves one packet through the lab's routing, recording hops."""

    def __init__(self, vpc: Vpc, route_tables: RouteTables):
        self.vpc, self.route_tables = vpc, route_tables
        self.tables = association_tables(vpc)
        self.owner: dict[IPv4Address, str] = {s.ip: s.name for s in vpc.servers}
        self.owner.update({n.private_ip: n.name for n in vpc.nat_gateways})
        self.owner.update({e.ip: e.name for e in vpc.endpoints})
        self.subnet_of: dict[str, str] = {s.name: s.subnet for s in vpc.servers}
        self.subnet_of.update({n.name: n.subnet for n in vpc.nat_gateways})
        self.subnet_of.update({e.name: e.subnet for e in vpc.endpoints})
        self.nat_by_ip = {n.private_ip: n for n in vpc.nat_gateways}
        self.nat_by_eip = {n.elastic_ip: n for n in vpc.nat_gateways}
        self.gateway_target = {n.private_ip: n.name for n in vpc.nat_gateways}
        self.gateway_target.update({e.ip: e.name for e in vpc.endpoints})
        self.nat_names = {n.name for n in vpc.nat_gateways}

    def _route(self, association: str, dst: IPv4Address, path: Leg) -> tuple[str, str | None, str]:
        """The VPC router's decision for a packet from `association`: (kind, next node, the route behind it)."""
        table = self.route_tables.table_for(association)
        table_id = self.tables[association]
        routes = [r for r in _table_routes(self.vpc, table_id, table) if dst in r.dst]
        best = max(routes, key=lambda r: r.dst.prefixlen)
        if table is None:
            where = (f"internet gateway {self.vpc.internet_gateway.id} (no edge route table)"
                     if table_id == EDGE_TABLE else f"subnet {association} (no route table)")
        else:
            where = f"route table {table.name} ({table.id})"
        name = table.name if table else "local only"
        if best.kind == "blackhole":
            path.hops.append(Hop(where, f"no route for {dst}"))
            return "drop", None, ""
        if best.kind == "link":
            path.hops.append(Hop(where, f"{self.vpc.cidr} -> local"))
            owner = self.owner.get(dst)
            return ("deliver", owner, f"{name}: {self.vpc.cidr} local") if owner else ("drop", None, "")
        if best.dev == "igw":
            target = self.vpc.internet_gateway.name
        else:
            assert best.gateway is not None  # a route that is not on-link has a next hop
            target = self.gateway_target[best.gateway]
        path.hops.append(Hop(where, f"{best.dst} -> {self.vpc.target_id(target)} ({target})"))
        return "forward", target, f"{name}: {best.dst} -> {target}"

    def walk(self, start: str, src: IPv4Address, dst: IPv4Address, direction: str,
             conntrack: dict, arriving: str | None = None) -> tuple[Leg, IPv4Address, IPv4Address]:
        """Sends (src, dst) from node `start` until it arrives or is dropped; returns the path and the
        addresses at arrival (after translations). `arriving="from-internet"` starts at the internet
        gateway with a packet coming in."""
        path = Leg()
        node, association = start, arriving
        vpc = self.vpc
        for _ in range(MAX_HOPS):
            if node == "internet":
                if dst in vpc.internet.cidr:
                    path.reached = True
                    return path, src, dst
                path.problem = f"{dst} is not on the lab's internet"
                return path, src, dst
            if node == vpc.internet_gateway.name:
                if association == "from-internet":  # inbound: Elastic IP -> private IP
                    nat = self.nat_by_eip.get(dst)
                    if nat is None:
                        path.hops.append(Hop(f"internet gateway {vpc.internet_gateway.id}", f"{dst} is no Elastic IP"))
                        path.problem = f"nothing in the VPC answers to {dst}"
                        return path, src, dst
                    path.hops.append(Hop(f"internet gateway {vpc.internet_gateway.id}",
                                         f"destination {dst} -> {nat.private_ip} ({nat.name}'s Elastic IP)"))
                    dst = nat.private_ip
                    kind, nxt, why = self._route(vpc.internet_gateway.name, dst, path)
                else:  # outbound: only addresses with an Elastic IP go out
                    nat = self.nat_by_ip.get(src)
                    if nat is None:
                        path.hops.append(Hop(f"internet gateway {vpc.internet_gateway.id}",
                                             f"source {src} has no Elastic IP"))
                        path.problem = f"{src} has no public address: the internet gateway drops it"
                        return path, src, dst
                    path.hops.append(Hop(f"internet gateway {vpc.internet_gateway.id}",
                                         f"source {src} -> {nat.elastic_ip} (Elastic IP)"))
                    src = nat.elastic_ip
                    path.steps.append((node, "internet", f"as {nat.elastic_ip}"))
                    node, association = "internet", None
                    continue
            elif node in self.subnet_of and association is not None and node not in self.nat_names:
                # A node receiving the packet: the destination, or a firewall endpoint passing it on.
                if any(e.name == node for e in vpc.endpoints):
                    e = vpc.endpoint(node)
                    path.seen.append(Sighting(e.name, e.availability_zone, direction, src, dst))
                    path.hops.append(Hop(f"firewall endpoint {e.id} ({e.name}, {e.availability_zone})",
                                         f"inspects {src} -> {dst}"))
                    kind, nxt, why = self._route(e.subnet, dst, path)
                elif self.owner.get(dst) == node:
                    path.hops.append(Hop(node, f"receives it ({dst})"))
                    path.reached = True
                    return path, src, dst
                else:
                    path.problem = f"{node} is not {dst} and does not forward"
                    return path, src, dst
            elif node in self.nat_names and association is not None:
                nat = vpc.nat(node)
                if dst == nat.private_ip and (nat.name, src) in conntrack:
                    original = conntrack[(nat.name, src)]
                    path.hops.append(Hop(f"NAT gateway {nat.id} ({nat.name})", f"destination {dst} -> {original}"))
                    dst = original
                elif dst == nat.private_ip:
                    path.hops.append(Hop(nat.name, f"receives it ({dst})"))
                    path.reached = True
                    return path, src, dst
                elif dst not in vpc.cidr:
                    path.hops.append(Hop(f"NAT gateway {nat.id} ({nat.name})", f"source {src} -> {nat.private_ip}"))
                    conntrack[(nat.name, dst)] = src
                    src = nat.private_ip
                kind, nxt, why = self._route(nat.subnet, dst, path)
            else:  # the source node sends to the VPC router
                subnet = self.subnet_of[node]
                path.hops.append(Hop(node, f"sends {src} -> {dst} to the VPC router (subnet {subnet})"))
                kind, nxt, why = self._route(subnet, dst, path)
            if kind == "drop" or nxt is None:
                path.problem = path.hops[-1].what if path.hops else "dropped"
                return path, src, dst
            path.steps.append((node, nxt, why))
            node, association = nxt, "router"
        path.problem = f"routing loop: more than {MAX_HOPS} hops"
        return path, src, dst


def resolve(vpc: Vpc, what: str, domains: list[str] | tuple[str, ...] | None = None) -> tuple[str, IPv4Address]:
    """A trace end: a node name, an address, or a name the lab's internet serves (`domains`: the running lab's,
    `up --domains`; default the topology's)."""
    served = tuple(domains) if domains else vpc.internet.domains
    for s in vpc.servers:
        if what in (s.name, str(s.ip)):
            return s.name, s.ip
    if what in served:
        return what, vpc.internet.web_server
    try:
        ip = IPv4Address(what)
    except ValueError:
        raise ValueError(f"{what!r} is neither a server of the topology, an address, nor a name its internet "
                         f"serves ({', '.join(served)})") from None
    return str(ip), ip


def trace(vpc: Vpc, tables: RouteTables, source: str, dest: str, port: int = 443,
          home_net: list[IPv4Network] | None = None, domains: list[str] | tuple[str, ...] | None = None) -> Trace:
    """The path of a flow from a server to a destination and back, and what the firewall sees (routes only:
    `judge` adds the policy's verdict)."""
    src_name, src_ip = resolve(vpc, source, domains)
    if src_name not in {s.name for s in vpc.servers}:
        raise ValueError(f"the source must be a server of the topology ({', '.join(s.name for s in vpc.servers)})")
    dst_name, dst_ip = resolve(vpc, dest, domains)
    walker = _Walker(vpc, tables)
    conntrack: dict = {}
    request, out_src, out_dst = walker.walk(src_name, src_ip, dst_ip, "request", conntrack)
    response = Leg()
    if request.reached:
        start = "internet" if dst_ip in vpc.internet.cidr else walker.owner.get(dst_ip, dst_name)
        if start == "internet":
            response, _, _ = walker.walk(vpc.internet_gateway.name, out_dst, out_src, "response", conntrack,
                                         arriving="from-internet")
            response.hops.insert(0, Hop("internet", f"{dest} answers {out_dst} -> {out_src}"))
            response.steps.insert(0, ("internet", vpc.internet_gateway.name, f"to {out_src}"))
        else:
            response, _, _ = walker.walk(start, out_dst, out_src, "response", conntrack)
    t = Trace(src_name, src_ip, dst_name, dst_ip, port, request, response)
    t.warnings = _warnings(vpc, t, home_net)
    return t


def judge(t: Trace, rules: PolicyRules, lab: str = "default") -> Trace:
    """`t` with the policy's verdict at the first firewall endpoint the request crosses (`lab`: the lab's name,
    for the `trace --live` command a verdict that needs the packet names)."""
    if not t.request.seen:
        t.verdict, t.routes_only = None, "the firewall does not see the request: no policy applies"
        return t
    seen = t.request.seen[0]
    named = "" if lab == "default" else f"--name {lab} "
    t.verdict = decide(rules, str(seen.src), str(seen.dst), t.port, name_of(t.dest),
                       f"nfwlab {named}trace --live {t.source} {t.dest}:{t.port}")
    return t


def _warnings(vpc: Vpc, t: Trace, home_net: list[IPv4Network] | None) -> list[str]:
    out = []
    server = vpc.server(t.source)
    endpoint_subnets = {e.subnet: e for e in vpc.endpoints}
    if server.subnet in endpoint_subnets:
        out.append(f"{t.source} is in the firewall endpoint's own subnet ({server.subnet}): AWS does not inspect "
                   "traffic from there; put workloads in other subnets")
    if not t.request.reached:
        out.append(f"the request does not arrive: {t.request.problem}")
        return out
    if t.response.hops and not t.response.reached:
        out.append(f"the response does not arrive: {t.response.problem}")
    there = {s.endpoint for s in t.request.seen}
    back = {s.endpoint for s in t.response.seen}
    if not there and not back:
        out.append("the flow never crosses the firewall: nothing inspects it")
    elif there != back:
        skipped = sorted(there ^ back)
        which = "return" if there - back else "outbound"
        out.append(f"asymmetric routing: the {which} path skips firewall endpoint {', '.join(skipped)}; the stateful "
                   "engine sees one direction only (mid-stream traffic), which AWS does not support")
    if home_net is not None and t.request.seen:
        seen = t.request.seen[0].src
        if not any(seen in n for n in home_net):
            out.append(f"the firewall sees source {seen}, outside HOME_NET ({', '.join(map(str, home_net))}): "
                       "rules on $HOME_NET (domain lists) do not apply to this flow")
    return out

