"""Trace: paths through the route tables, both ways, and the warnings `nfwlab check` raises (no Docker)."""
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import yaml

from lab.model import load_topology, parse_topology
from lab.trace import trace

ROOT = Path(__file__).resolve().parents[2]  # the repository, wherever pytest runs from

NAT, SERVER_A = IPv4Address("10.0.13.92"), IPv4Address("10.0.136.108")


def topo(name):
    t = load_topology(ROOT / "topologies" / f"{name}.yaml")
    return t.vpc, t.route_tables


@pytest.mark.parametrize("design, seen", [("nat-first", NAT), ("firewall-first", SERVER_A)])
def test_the_firewall_sees_the_nat_gateway_or_the_server(design, seen):
    t = trace(*topo(design), "server-a", "blocked.example", 443)
    assert t.request.reached and t.response.reached and not t.warnings
    assert t.firewall_sees == seen
    assert [s.direction for s in t.request.seen + t.response.seen] == ["request", "response"]
    text = t.describe()
    assert f"sees the request: source {seen}, destination 203.0.113.10" in text
    assert "vpce-0e5f6a7b8c9d00001" in text and "source 10.0.13.92 -> 198.51.100.10 (Elastic IP)" in text


def test_nat_first_hops_follow_the_route_tables_in_aws_terms():
    hops = [str(h) for h in trace(*topo("nat-first"), "server-a", "203.0.113.10").request.hops]
    assert hops[1] == "route table private-rtb (rtb-0b1c2d3e4f5a60001): 0.0.0.0/0 -> nat-0c3d4e5f6a7b80001 (nat-gateway)"
    assert hops[2] == "NAT gateway nat-0c3d4e5f6a7b80001 (nat-gateway): source 10.0.136.108 -> 10.0.13.92"
    assert hops[3].startswith("route table public-rtb") and hops[3].endswith("vpce-0e5f6a7b8c9d00001 (firewall)")


def test_a_missing_return_route_is_asymmetric():
    t = trace(*topo("asymmetric"), "server-a", "blocked.example")
    assert [s.direction for s in t.request.seen + t.response.seen] == ["request"]
    assert any("asymmetric routing: the return path skips firewall endpoint firewall" in w for w in t.warnings)


def test_home_net_that_misses_the_source_the_firewall_sees():
    private = [IPv4Network("10.0.128.0/20")]
    assert any("outside HOME_NET" in w for w in trace(*topo("nat-first"), "server-a", "blocked.example",
                                                       home_net=private).warnings)
    assert trace(*topo("firewall-first"), "server-a", "blocked.example", home_net=private).warnings == []


def changed(name, edit):
    data = yaml.safe_load((ROOT / "topologies" / f"{name}.yaml").read_text())
    edit(data)
    t = parse_topology(data, "t.yaml")
    return t.vpc, t.route_tables


def test_a_server_in_the_firewall_subnet_is_not_inspected():
    def edit(d):
        d["subnets"][1]["cidr"] = "10.0.16.0/24"
        d["servers"].append({"name": "server-f", "subnet": "firewall", "ip": "10.0.16.100"})
    t = trace(*changed("firewall-first", edit), "server-f", "blocked.example")
    assert any("firewall endpoint's own subnet" in w for w in t.warnings)


def test_a_design_without_the_firewall_warns_that_nothing_inspects_the_flow():
    def edit(d):
        d["route_tables"][1]["routes"][1]["target"] = "internet-gateway"  # public subnet straight out
        del d["route_tables"][3]  # and no ingress routing back through the firewall
    t = trace(*changed("nat-first", edit), "server-a", "blocked.example")
    assert t.firewall_sees is None and t.request.reached
    assert any("never crosses the firewall" in w for w in t.warnings)


def test_no_route_means_dropped():
    def edit(d):
        d["route_tables"][0]["routes"] = [{"destination": "10.0.0.0/16", "target": "local"}]
    t = trace(*changed("nat-first", edit), "server-a", "blocked.example")
    assert not t.request.reached and "no route for 203.0.113.10" in t.request.problem


def test_multi_az_servers_use_the_endpoint_of_their_own_az():
    vpc, design = topo("multi-az")
    for server, endpoint, az in (("server-a", "fw-a", "ap-northeast-1a"), ("server-c", "fw-c", "ap-northeast-1c")):
        t = trace(vpc, design, server, "blocked.example")
        assert {(s.endpoint, s.availability_zone) for s in t.request.seen + t.response.seen} == {(endpoint, az)}
        assert t.firewall_sees == vpc.server(server).ip and not t.warnings


def test_unknown_ends_are_refused():
    with pytest.raises(ValueError, match="neither a server"):
        trace(*topo("nat-first"), "server-a", "nowhere.example")
    with pytest.raises(ValueError, match="the source must be a server"):
        trace(*topo("nat-first"), "203.0.113.10", "server-a")
