"""Diagram: the VPC and the path of a server's request, drawn with Graphviz.

Subnets are boxes grouped by Availability Zone, labelled with their route
table; the NAT gateways, firewall endpoints and servers sit in their subnets;
the internet gateway and the internet outside. The path comes from the
trace (lab/trace.py): the request in bold red, numbered, each step labelled
with the route that decided it; the response dashed blue. Each firewall
endpoint on the path says which source address it sees.
"""
from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path

import graphviz

from .model import RouteTables, Vpc
from .trace import Trace, trace

REQUEST, RESPONSE, QUIET = "#c0392b", "#2471a3", "#7f8c8d"
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}


def _subnet_label(vpc: Vpc, tables: RouteTables, subnet: str) -> str:
    s = vpc.subnet(subnet)
    table = tables.table_for(subnet)
    lines = [f"<B>{s.name}</B> {s.cidr}"]
    if table:
        lines.append(f"route table {table.name}")
        lines += [f"{r.destination} → {r.target}" for r in table.routes]
    return "<" + "<BR/>".join(lines) + ">"


def draw(vpc: Vpc, tables: RouteTables, t: Trace, domains: list[str] | tuple[str, ...] | None = None,
         home_net: list[IPv4Network] | None = None) -> graphviz.Digraph:
    """The diagram of `tables` with the path of trace `t` highlighted; `domains` the names the internet serves
    (the running lab's), `home_net` the firewall's HOME_NET (shown on the firewall endpoints)."""
    served = tuple(domains) if domains else vpc.internet.domains
    home = f"\\nHOME_NET {','.join(map(str, home_net))}" if home_net else ""
    seen = {s.endpoint: s for s in t.request.seen}
    g = graphviz.Digraph("nfwlab", graph_attr={
        "rankdir": "TB", "fontname": "Helvetica", "fontsize": "12", "labelloc": "t", "compound": "true",
        "label": f"{tables.name}: {t.source} → {t.dest}; the firewall sees "
                 f"{t.firewall_sees if t.firewall_sees else 'nothing'}"
                 + ("; outside HOME_NET: its domain lists do not apply" if any("outside HOME_NET" in w
                                                                                for w in t.warnings) else "")},
        node_attr={"fontname": "Helvetica", "fontsize": "11", "shape": "box", "style": "rounded,filled",
                   "fillcolor": "white"},
        edge_attr={"fontname": "Helvetica", "fontsize": "9"})
    on_path = {n for a, b, _ in t.request.steps + t.response.steps for n in (a, b)}
    zones: dict[str, list] = {}
    for s in vpc.subnets:
        zones.setdefault(s.availability_zone, []).append(s)
    with g.subgraph(name="cluster_vpc") as v:
        v.attr(label=f"VPC {vpc.id} {vpc.cidr}", style="rounded", color=QUIET)
        for az, subnets in zones.items():
            with v.subgraph(name=f"cluster_az_{az}") as z:
                z.attr(label=az, style="dashed", color=QUIET)
                for s in subnets:
                    with z.subgraph(name=f"cluster_subnet_{s.name}") as c:
                        c.attr(label=_subnet_label(vpc, tables, s.name), style="rounded,filled",
                               fillcolor="#f4f6f7", color=QUIET, fontsize="10")
                        members = [(x.name, f"{x.name}\\n{x.ip}", "server") for x in vpc.servers if x.subnet == s.name]
                        members += [(n.name, f"NAT gateway {n.name}\\n{n.private_ip} (EIP {n.elastic_ip})", "nat")
                                    for n in vpc.nat_gateways if n.subnet == s.name]
                        members += [(e.name, f"firewall endpoint {e.name}\\n{e.id}\\n{e.ip}"
                                     + (f"\\nsees source {seen[e.name].src}" if e.name in seen else "") + home,
                                     "fw")
                                    for e in vpc.endpoints if e.subnet == s.name]
                        if not members:
                            c.node(f"empty_{s.name}", "", shape="point", style="invis")
                        for name, label, kind in members:
                            fill = {"fw": "#fdebd0", "nat": "#e8f8f5", "server": "white"}[kind]
                            c.node(name, label, fillcolor=fill, penwidth="2.5" if name in on_path else "1",
                                   color=REQUEST if name in on_path else "black")
    g.node(vpc.internet_gateway.name, f"internet gateway\\n{vpc.internet_gateway.id}", shape="box")
    g.node("internet", f"internet {vpc.internet.cidr}\\nweb server {vpc.internet.web_server}\\n"
           + ", ".join(served[:4]) + (f" (+{len(served) - 4})" if len(served) > 4 else ""), shape="box",
           style="rounded,dashed")
    for i, (a, b, why) in enumerate(t.request.steps, 1):
        g.edge(a, b, label=f"{i}. {why}", color=REQUEST, fontcolor=REQUEST, penwidth="2.5")
    for a, b, why in t.response.steps:
        g.edge(a, b, label=why, color=RESPONSE, fontcolor=RESPONSE, style="dashed", constraint="false")
    return g


def diagram(vpc: Vpc, tables: RouteTables, server: str | None = None, dest: str | None = None,
            port: int = 443, domains: list[str] | tuple[str, ...] | None = None,
            home_net: list[IPv4Network] | None = None) -> graphviz.Digraph:
    """The diagram of a server's request (default: the first server to the first name the internet serves:
    `domains`, the running lab's, else the topology's), with HOME_NET's warning if the firewall sees a source
    outside it."""
    served = list(domains) if domains else list(vpc.internet.domains)
    t = trace(vpc, tables, server or vpc.servers[0].name, dest or served[0], port, home_net, served)
    return draw(vpc, tables, t, served, home_net)


def write(graph: graphviz.Digraph, out: Path) -> Path:
    """Writes the diagram: .svg, .png or .pdf rendered by Graphviz's dot, .dot/.gv as its source."""
    if out.suffix in (".dot", ".gv"):
        out.write_text(graph.source)
        return out
    if out.suffix not in FORMATS:
        raise ValueError(f"{out}: unknown format {out.suffix!r}; use .svg, .png, .pdf or .dot")
    out.write_bytes(graph.pipe(format=FORMATS[out.suffix]))
    return out
