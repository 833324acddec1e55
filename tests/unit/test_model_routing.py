"""The VPC model, design files and their compilation into Linux routing tables."""
from ipaddress import IPv4Address

import pytest
import yaml

from lab.errors import ConfigError
from lab.model import load_design, load_vpc, parse_design, parse_vpc
from lab.routing import EDGE_TABLE, IGW_LINK_GATEWAY, format_route_tables, kernel_routes, policy_rules, route_table_json

VPC_FILE = "designs/vpc.yaml"


@pytest.fixture(scope="module")
def vpc():
    return load_vpc(VPC_FILE)


def raw_vpc():
    with open(VPC_FILE) as f:
        return yaml.safe_load(f)


def tables(vpc, design):
    out = {}
    for r in kernel_routes(vpc, load_design(f"designs/{design}.yaml", vpc)):
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
    design = parse_design({"name": "x", "route_tables": [
        {"name": "all", "id": "rtb-1", "associations": ["private", "public", "firewall"],
         "routes": [{"destination": "10.0.128.0/17", "target": "firewall-endpoint"}]}]}, vpc)
    routes = {str(r.dst): r for r in kernel_routes(vpc, design) if r.table == 100}
    assert "10.0.128.0/20" not in routes  # the /17 covers the private subnet entirely
    assert routes["10.0.128.0/17"].gateway == IPv4Address("10.0.16.10")


def test_route_tables_print_as_aws_shows_them(vpc):
    design = load_design("designs/nat-first.yaml", vpc)
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
    assert "no edge route table" in format_route_tables(vpc, load_design("designs/firewall-first.yaml", vpc))


@pytest.mark.parametrize("path, value, message", [
    (("subnets", 0, "cidr"), "10.1.0.0/20", "outside the VPC CIDR"),
    (("subnets", 1, "cidr"), "10.0.0.0/24", "overlaps subnet public"),
    (("servers", 1, "ip"), "10.0.136.108", "servers\\[1\\].ip: 10.0.136.108 is already used by server-a"),
    (("servers", 0, "ip"), "10.0.200.1", "outside subnet private"),
    (("servers", 0, "ip"), "10.0.128.1", "reserved by AWS"),
    (("servers", 0, "subnet"), "firewall", "not inspect"),
    (("servers", 0, "subnet"), "nowhere", "no subnet named"),
    (("nat_gateway", "elastic_ip"), "8.8.8.8", "documentation ranges"),
    (("internet", "domains"), ["bad name"], "not a valid domain"),
    (("vpc", "cidr"), "10.0.0.0/33", "not an IPv4 CIDR"),
    (("vpc", "colour"), "blue", "unknown field"),
])
def test_bad_vpc_files_are_refused_naming_the_field(path, value, message):
    data = raw_vpc()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=message) as e:
        parse_vpc(data, "my-vpc.yaml")
    assert str(e.value).startswith("my-vpc.yaml: ")


@pytest.mark.parametrize("change, message", [
    (lambda d: d["route_tables"][0]["routes"].append({"destination": "0.0.0.0/0", "target": "local"}), "local route covers"),
    (lambda d: d["route_tables"][0]["routes"][1].update(target="nat-99"), "unknown target 'nat-99'"),
    (lambda d: d["route_tables"][1]["associations"].append("private"), "already associated"),
    (lambda d: d["route_tables"].pop(0), "subnet private has no route table"),
    (lambda d: d["route_tables"][3]["routes"].append({"destination": "0.0.0.0/0", "target": "nat-gateway"}),
     "edge route table can only route to the firewall endpoint"),
    (lambda d: d["route_tables"][0]["routes"].append({"destination": "0.0.0.0/0", "target": "internet-gateway"}),
     "duplicate route"),
    (lambda d: d.update(colour="red"), "unknown field"),
])
def test_bad_design_files_are_refused(vpc, change, message):
    with open("designs/nat-first.yaml") as f:
        data = yaml.safe_load(f)
    change(data)
    with pytest.raises(ConfigError, match=message):
        parse_design(data, vpc, "mine.yaml")


def test_targets_may_be_written_as_aws_ids(vpc):
    design = parse_design({"name": "ids", "route_tables": [
        {"name": "all", "id": "rtb-1", "associations": ["private", "public", "firewall"],
         "routes": [{"destination": "0.0.0.0/0", "target": vpc.nat_gateway.id}]}]}, vpc)
    assert design.route_tables[0].routes[-1].target == "nat-gateway"
