"""The VPC model, topology files and their compilation into Linux routing tables."""
import json
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import yaml
from vpc_routes import differences, expected_routes, kernel_routes_by_interface, topology_document

from lab.errors import ConfigError
from lab.model import load_topology, parse_route_tables, parse_topology
from lab.routing import EDGE_TABLE, IGW_LINK_GATEWAY, format_route_tables, kernel_routes, policy_rules, route_table_json

ROOT = Path(__file__).resolve().parent.parent.parent  # the repository, wherever pytest runs from
TOPOLOGIES = ROOT / "topologies"
NAT_FIRST = TOPOLOGIES / "nat-first.yaml"


@pytest.fixture(scope="module")
def vpc():
    return load_topology(NAT_FIRST).vpc


def load_design(path, vpc):
    topology = load_topology(path)
    assert topology.vpc == vpc
    return topology.route_tables


def tables(vpc, design):
    out = {}
    for r in kernel_routes(vpc, load_design(TOPOLOGIES / f"{design}.yaml", vpc)):
        out.setdefault(r.table, {})[str(r.dst)] = (r.kind, r.dev, str(r.gateway) if r.gateway else None)
    return out


def test_vpc_matches_the_scenario(vpc):
    assert str(vpc.cidr) == "10.0.0.0/16"
    assert str(vpc.nat_gateway.private_ip) == "10.0.13.92"
    assert str(vpc.server("server-a").ip) == "10.0.136.108"
    assert vpc.server("server-b").subnet == "private"
    assert vpc.dns_ip == IPv4Address("10.0.0.2")


def test_nat_first_routes(vpc):
    t = tables(vpc, "nat-first")
    private, public, firewall = 102, 100, 101  # subnet order in vpc.yaml: public, firewall, private
    assert t[private]["0.0.0.0/0"] == ("via", "br-public", "10.0.13.92")
    assert t[public]["0.0.0.0/0"] == ("via", "br-firewall", "10.0.16.10")
    assert t[firewall]["0.0.0.0/0"] == ("via", "igw", str(IGW_LINK_GATEWAY))
    # Ingress routing: returning traffic for the NAT gateway's subnet goes to the firewall.
    assert t[EDGE_TABLE]["10.0.0.0/20"] == ("via", "br-firewall", "10.0.16.10")
    assert t[EDGE_TABLE]["0.0.0.0/0"] == ("blackhole", "", None)
    # The local route reaches every subnet directly.
    assert t[private]["10.0.0.0/20"] == ("link", "br-public", None)


def test_firewall_first_routes(vpc):
    t = tables(vpc, "firewall-first")
    private, public, firewall = 102, 100, 101
    assert t[private]["0.0.0.0/0"] == ("via", "br-firewall", "10.0.16.10")
    assert t[firewall]["0.0.0.0/0"] == ("via", "br-public", "10.0.13.92")
    assert t[public]["0.0.0.0/0"] == ("via", "igw", str(IGW_LINK_GATEWAY))
    # Return path: the private subnet's CIDR, more specific than local, goes back through the firewall.
    assert t[public]["10.0.128.0/20"] == ("via", "br-firewall", "10.0.16.10")
    # No edge route table: the internet gateway delivers by the local route only.
    assert t[EDGE_TABLE]["10.0.0.0/20"] == ("link", "br-public", None)
    assert t[EDGE_TABLE]["0.0.0.0/0"] == ("blackhole", "", None)


def test_designs_use_the_same_tables_so_a_switch_only_replaces_routes(vpc):
    a, b = tables(vpc, "nat-first"), tables(vpc, "firewall-first")
    assert set(a) == set(b)
    assert [r.iif for r in policy_rules(vpc)] == ["br-public", "br-firewall", "br-private", "igw"]


def test_route_more_specific_than_local_but_wider_than_a_subnet_wins(vpc):
    design = parse_route_tables({"name": "x", "route_tables": [
        {"name": "all", "id": "rtb-1", "associations": ["private", "public", "firewall"],
         "routes": [{"destination": "10.0.128.0/17", "target": "firewall-endpoint"}]}]}, vpc)
    routes = {str(r.dst): r for r in kernel_routes(vpc, design) if r.table == 100}
    assert "10.0.128.0/20" not in routes  # the /17 covers the private subnet entirely
    assert routes["10.0.128.0/17"].gateway == IPv4Address("10.0.16.10")


def test_route_tables_print_as_aws_shows_them(vpc):
    design = load_design(NAT_FIRST, vpc)
    text = format_route_tables(vpc, design)
    assert "Edge association: igw-" in text
    assert "0.0.0.0/0          nat-0c3d4e5f6a7b80001" in text
    js = route_table_json(vpc, design)
    private = next(t for t in js["RouteTables"] if t["Tags"][0]["Value"] == "private-rtb")
    assert private["Routes"][0] == {"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local",
                                    "Origin": "CreateRouteTable", "State": "active"}
    assert private["Routes"][1]["NatGatewayId"] == vpc.nat_gateway.id
    edge = next(t for t in js["RouteTables"] if t["Tags"][0]["Value"] == "igw-edge-rtb")
    assert edge["Associations"][0]["GatewayId"] == vpc.internet_gateway.id
    assert "no edge route table" in format_route_tables(vpc, load_design(TOPOLOGIES / "firewall-first.yaml", vpc))


def test_malformed_topologies_are_refused_naming_file_and_field(malformed):
    data, message = malformed
    with pytest.raises(ConfigError) as e:
        parse_topology(data, "my-vpc.yaml")
    assert message in str(e.value)
    assert str(e.value).startswith("my-vpc.yaml: ") and e.value.hint


def test_servers_with_count_get_numbered_names_and_consecutive_addresses():
    data = yaml.safe_load(NAT_FIRST.read_text())
    data["servers"] = [{"name": "app-{n}", "subnet": "private", "ip": "10.0.130.10", "count": 50}]
    vpc = parse_topology(data, "t.yaml").vpc
    assert [s.name for s in vpc.servers][:3] == ["app-1", "app-2", "app-3"] and len(vpc.servers) == 50
    assert str(vpc.server("app-50").ip) == "10.0.130.59"


def test_every_shipped_topology_is_valid():
    paths = sorted(TOPOLOGIES.glob("*.yaml"))
    assert {"asymmetric", "firewall-first", "multi-az", "nat-first", "scale-50"} <= {p.stem for p in paths}
    for path in paths:
        assert load_topology(path).vpc.endpoints, path


def test_targets_may_be_written_as_aws_ids(vpc):
    design = parse_route_tables({"name": "ids", "route_tables": [
        {"name": "all", "id": "rtb-1", "associations": ["private", "public", "firewall"],
         "routes": [{"destination": "0.0.0.0/0", "target": vpc.nat_gateway.id}]}]}, vpc)
    assert design.tables[0].routes[-1].target == "nat-gateway"


@pytest.mark.parametrize("value, ok", [(None, True), (2, True), (350, True), (0, False), (351, False),
                                       ("60", False), (True, False)])
def test_a_nat_gateway_idle_timeout_is_350_seconds_or_shorter(value, ok):
    data = yaml.safe_load(NAT_FIRST.read_text())
    if value is not None:
        data["nat_gateways"][0]["tcp_idle_timeout"] = value
    if ok:
        assert parse_topology(data, "t.yaml").vpc.nat_gateways[0].tcp_idle_timeout == (value or 350)
    else:
        with pytest.raises(ConfigError, match=r"t.yaml: nat_gateways\[0\].tcp_idle_timeout"):
            parse_topology(data, "t.yaml")


@pytest.mark.parametrize("eip, refused", [
    ("198.51.100.20", None),                          # documentation ranges: what the lab's own topologies use
    ("192.0.2.7", None),                              # TEST-NET-1 is documentation too
    ("10.1.2.3", "10.1.2.3 is not a public address"),  # private
    ("172.16.0.9", "is not a public address"),
    ("100.64.0.1", "is not a public address"),        # shared address space (carrier-grade NAT)
    ("127.0.0.1", "is not a public address"),
    ("10.0.200.1", "is not a public address"),        # private first, and inside the VPC
    ("203.0.113.50", "is inside the internet block 203.0.113.0/24"),
])
def test_an_elastic_ip_is_public_and_outside_the_vpc_and_the_internet_block(eip, refused):
    # Any globally routable address is accepted too (IPv4Address.is_global): an import keeps the account's own
    # Elastic IPs. The tests write documentation and private addresses only.
    data = yaml.safe_load(NAT_FIRST.read_text())
    data["nat_gateways"][0]["elastic_ip"] = eip
    if refused is None:
        assert str(parse_topology(data, "t.yaml").vpc.nat_gateway.elastic_ip) == eip
    else:
        with pytest.raises(ConfigError, match=r"t.yaml: nat_gateways\[0\].elastic_ip") as e:
            parse_topology(data, "t.yaml")
        assert refused in str(e.value) and e.value.hint


def test_an_elastic_ip_inside_the_vpc_cidr_is_refused():
    # An address both public and inside the VPC: a VPC whose CIDR is a documentation block.
    data = yaml.safe_load(NAT_FIRST.read_text())
    data["nat_gateways"][0]["elastic_ip"] = "10.0.0.1"
    with pytest.raises(ConfigError, match="is not a public address"):
        parse_topology(data, "t.yaml")
    from lab import model
    vpc_cidr = model.IPv4Network("192.0.2.0/24")
    with pytest.raises(ConfigError, match=r"192.0.2.9 is inside the VPC CIDR 192.0.2.0/24"):
        model._elastic_ip(model._Reader("t.yaml"), model.IPv4Address("192.0.2.9"), vpc_cidr, "x")


def test_the_internet_block_stays_in_the_documentation_ranges():
    data = yaml.safe_load(NAT_FIRST.read_text())
    data["internet"]["cidr"], data["internet"]["web_server"] = "192.0.2.0/24", "192.0.2.10"
    with pytest.raises(ConfigError, match=r"internet.cidr: 192.0.2.0/24 is not in 198.51.100.0/24 or 203.0.113.0/24"):
        parse_topology(data, "t.yaml")


ROUTER_NAT_FIRST = ROOT / "tests" / "data" / "vpc-router-nat-first.json"  # `ip -j` in a real lab's VPC router


def test_the_live_route_check_sees_a_stale_next_hop():
    """The check the live tests make (tests/vpc_routes.py), on what a real VPC router's kernel held in
    nat-first: it agrees with nat-first's file, and names each route that differs from firewall-first's or that
    one stale next hop breaks."""
    router = json.loads(ROUTER_NAT_FIRST.read_text())
    kernel = kernel_routes_by_interface(router["rules"], router["routes"])
    assert kernel["br-private"] == {("0.0.0.0/0", "10.0.13.92", "br-public"), ("10.0.0.0/20", "", "br-public"),
                                    ("10.0.16.0/28", "", "br-firewall"), ("10.0.128.0/20", "", "br-private")}

    def expected(name):
        return expected_routes(topology_document(TOPOLOGIES / f"{name}.yaml"), router["addresses"], "169.254.0.2")
    assert differences(expected("nat-first"), kernel) == []
    assert "iif br-private: the kernel lacks 0.0.0.0/0 via 10.0.16.10 dev br-firewall" in differences(
        expected("firewall-first"), kernel)
    # The same destinations, one next hop stale: the private subnet's default route still to the old NAT address.
    stale = json.loads(ROUTER_NAT_FIRST.read_text())
    (default,) = [r for r in stale["routes"] if r.get("table") == "102" and r["dst"] == "default"]
    default["gateway"] = "10.0.13.93"
    assert differences(expected("nat-first"), kernel_routes_by_interface(stale["rules"], stale["routes"])) == [
        "iif br-private: the kernel lacks 0.0.0.0/0 via 10.0.13.92 dev br-public",
        "iif br-private: the kernel has 0.0.0.0/0 via 10.0.13.93 dev br-public, which the topology does not give"]
    # ... or its device wrong, the address right.
    default["gateway"], default["dev"] = "10.0.13.92", "br-private"
    assert len(differences(expected("nat-first"), kernel_routes_by_interface(stale["rules"], stale["routes"]))) == 2
