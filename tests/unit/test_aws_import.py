"""lab/aws/account.py: an account dump (tests/data/account, AWS's output shapes) imported into a topology the
lab's model accepts and a policy its loader accepts; refusals that name the dump file and field."""
import copy
import datetime
import json
from pathlib import Path

import pytest
import yaml

from lab.aws.account import Imported, Names, clean_name, import_dump, load_dump, write_imported
from lab.errors import ConfigError
from lab.model import load_topology, parse_topology
from lab.nextgen import NextGenPolicy, load_any_policy, render_any
from lab.policy import Policy

ROOT = Path(__file__).resolve().parents[2]

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "account"
VPC = "vpc-0a1b2c3d4e5f60720"
NAT = "nat-0f1e2d3c4b5a69701"
IGW = "igw-0c1d2e3f4a5b60730"
VPCE_A, VPCE_B = "vpce-0e1f2a3b4c5d61001", "vpce-0e1f2a3b4c5d61002"
GROUP_ARN = "arn:aws:network-firewall:eu-west-1:111122223333:stateful-rulegroup/egress-allow"
SUBNETS = {"public-a": "subnet-0a1b2c3d4e5f61001", "private-a": "subnet-0a1b2c3d4e5f61002",
           "firewall-a": "subnet-0a1b2c3d4e5f61003", "firewall-b": "subnet-0a1b2c3d4e5f61004"}


@pytest.fixture(scope="module")
def fixture_dump():
    return load_dump(FIXTURE)


@pytest.fixture
def dump(fixture_dump):
    return copy.deepcopy(fixture_dump)


@pytest.fixture(scope="module")
def imported(fixture_dump):
    return import_dump(copy.deepcopy(fixture_dump), str(FIXTURE))


def tables_by_id(imported):
    return {t["id"]: t for t in imported.topology["route_tables"]}


def copy_fixture(tmp_path, without=()):
    folder = tmp_path / "dump"
    folder.mkdir()
    for p in FIXTURE.glob("*.json"):
        if p.name not in without:
            (folder / p.name).write_text(p.read_text())
    return folder


# --------------------------------------------------------------------------
# The fixture
# --------------------------------------------------------------------------
def test_the_dump_holds_every_file_and_the_rule_groups_as_one_list(fixture_dump):
    assert {"describe-vpcs", "describe-subnets", "describe-route-tables", "describe-nat-gateways",
            "describe-internet-gateways", "describe-addresses", "describe-instances", "describe-network-interfaces",
            "describe-firewall", "describe-firewall-policy", "describe-logging-configuration",
            "describe-rule-group"} == set(fixture_dump)
    assert [g["RuleGroupResponse"]["RuleGroupName"] for g in fixture_dump["describe-rule-group"]] == ["egress-allow"]


def test_the_fixture_imports_to_a_topology_the_model_accepts(imported):
    assert isinstance(imported, Imported)
    topology = parse_topology(imported.topology, "imported.yaml")
    vpc = topology.vpc
    assert (vpc.id, str(vpc.cidr), vpc.region) == (VPC, "10.20.0.0/16", "eu-west-1")
    assert topology.name == "egress-demo"  # the VPC's Name tag
    assert [(s.name, s.id, str(s.cidr), s.availability_zone) for s in vpc.subnets] == [
        ("public-a", SUBNETS["public-a"], "10.20.0.0/24", "eu-west-1a"),
        ("private-a", SUBNETS["private-a"], "10.20.10.0/24", "eu-west-1a"),
        ("firewall-a", SUBNETS["firewall-a"], "10.20.1.0/28", "eu-west-1a"),
        ("firewall-b", SUBNETS["firewall-b"], "10.20.1.16/28", "eu-west-1b")]
    # "App Server" and "app_server" make the same name: the second gets a suffix.
    assert [(s.name, s.subnet, str(s.ip)) for s in vpc.servers] == [("app-server", "private-a", "10.20.10.21"),
                                                                     ("app-server-2", "private-a", "10.20.10.22")]
    nat = vpc.nat_gateway
    assert (nat.name, nat.id, nat.subnet, str(nat.private_ip), str(nat.elastic_ip)) == (
        "nat-a", NAT, "public-a", "10.20.0.10", "198.51.100.20")
    assert "tcp_idle_timeout" not in imported.topology["nat_gateways"][0]
    # Two endpoints, one per AZ, named as multi-az.yaml names them; addresses from their network interfaces.
    assert [(e.name, e.id, e.subnet, str(e.ip), e.availability_zone, e.firewall_name) for e in vpc.endpoints] == [
        ("fw-a", VPCE_A, "firewall-a", "10.20.1.8", "eu-west-1a", "egress-firewall"),
        ("fw-b", VPCE_B, "firewall-b", "10.20.1.25", "eu-west-1b", "egress-firewall")]
    assert (vpc.internet_gateway.name, vpc.internet_gateway.id) == ("egress-demo-igw", IGW)
    assert str(vpc.internet.cidr) == "203.0.113.0/24" and str(vpc.internet.web_server) == "203.0.113.10"
    # the lab's own names, then the one name the policy's rules pass
    assert vpc.internet.domains == ("allowed.example", "blocked.example", "example.test", "a.example.test",
                                    "updates.example.com")


def test_route_tables_keep_their_ids_associations_and_routes(imported):
    design = parse_topology(imported.topology, "imported.yaml").route_tables
    tables = {t.id: t for t in design.tables}
    assert set(tables) == {f"rtb-0d1e2f3a4b5c6100{i}" for i in range(1, 6)}
    private = tables["rtb-0d1e2f3a4b5c61002"]
    assert private.name == "private-a-rtb" and private.associations == ("private-a",)
    assert [(str(r.destination), r.target) for r in private.routes] == [("10.20.0.0/16", "local"),
                                                                        ("0.0.0.0/0", "nat-a")]
    public = tables["rtb-0d1e2f3a4b5c61003"]
    assert [(str(r.destination), r.target) for r in public.routes][-1] == ("0.0.0.0/0", "fw-a")  # GatewayId vpce-
    firewall = tables["rtb-0d1e2f3a4b5c61004"]
    assert firewall.associations == ("firewall-a",)
    assert [(str(r.destination), r.target) for r in firewall.routes][-1] == ("0.0.0.0/0", "egress-demo-igw")


def test_a_subnet_without_an_explicit_association_uses_the_main_route_table(imported):
    main = tables_by_id(imported)["rtb-0d1e2f3a4b5c61001"]
    assert main["name"] == "rtb-0d1e2f3a4b5c61001"  # no Name tag: its id
    assert main["associations"] == ["firewall-b"]
    design = parse_topology(imported.topology, "imported.yaml").route_tables
    assert design.table_for("firewall-b").id == "rtb-0d1e2f3a4b5c61001"


def test_the_edge_association_makes_the_internet_gateways_route_table(imported):
    topology = parse_topology(imported.topology, "imported.yaml")
    edge = topology.route_tables.table_for(topology.vpc.internet_gateway.name)
    assert edge is not None and edge.id == "rtb-0d1e2f3a4b5c61005" and edge.name == "igw-ingress-rtb"
    assert edge.is_edge(topology.vpc)
    assert [(str(r.destination), r.target) for r in edge.routes] == [("10.20.0.0/16", "local"),
                                                                     ("10.20.0.0/24", "fw-a")]


def test_the_notes_name_the_peering_route_and_where_the_firewall_logs(imported):
    peering = [n for n in imported.notes if "pcx-0f0e0d0c0b0a09080" in n]
    assert len(peering) == 1
    assert "10.30.0.0/16" in peering[0] and "VPC peering" in peering[0] and "RouteTables[1].Routes[1]" in peering[0]
    assert not any(r["destination"] == "10.30.0.0/16" for t in imported.topology["route_tables"]
                   for r in t["routes"])
    assert any("ALERT" in n and "/aws/network-firewall/egress-firewall/alert" in n for n in imported.notes)


def test_the_policy_loads_with_the_labs_loader_strict_order_with_the_groups_rules(imported, tmp_path):
    assert set(imported.policy) == {"FirewallPolicyName", "FirewallPolicy", "RuleGroups"}
    assert imported.policy["FirewallPolicyName"] == "egress-strict"
    assert "UpdateToken" not in imported.policy["RuleGroups"][0]
    topology_file, policy_file = write_imported(imported, tmp_path, "staging")
    policy = load_any_policy(policy_file)
    assert isinstance(policy, Policy)
    assert policy.rule_order == "STRICT_ORDER"
    assert policy.default_actions == ("aws:drop_established", "aws:alert_established")
    assert [g.group.name for g in policy.groups] == ["egress-allow"] and policy.groups[0].priority == 100
    rules = [r.text for r in policy.groups[0].group.rules]
    assert len(rules) == 2 and all(r.startswith("pass ") for r in rules)
    assert 'tls.sni; content:"updates.example.com"' in rules[0] and "sid:1001;" in rules[0]
    assert 'http.host; content:"updates.example.com"' in rules[1] and "sid:1002;" in rules[1]
    rendered = render_any(policy, "10.20.0.0/16")
    assert "sid:1001;" in rendered.rules and rendered.home_net == "10.20.0.0/16"
    topology = load_topology(topology_file)
    assert topology.vpc.id == VPC and topology.name == "egress-demo"


def test_write_imported_writes_a_header_and_refuses_to_overwrite(imported, tmp_path):
    topology_file, policy_file = write_imported(imported, tmp_path / "out", "staging")
    assert (topology_file.name, policy_file.name) == ("staging.yaml", "staging-policy.json")
    text = topology_file.read_text()
    assert text.startswith(f"# Imported from an AWS account dump: {FIXTURE}\n")
    assert "pcx-0f0e0d0c0b0a09080" in text.split("\nname:")[0]  # the notes, in the header
    assert yaml.safe_load(text) == imported.topology
    assert json.loads(policy_file.read_text()) == imported.policy
    with pytest.raises(ConfigError, match="staging.yaml: already exists"):
        write_imported(imported, tmp_path / "out", "staging")
    topology_file.unlink()
    with pytest.raises(ConfigError, match="staging-policy.json: already exists"):  # either file: nothing written
        write_imported(imported, tmp_path / "out", "staging")
    assert not topology_file.exists()
    write_imported(imported, tmp_path / "out", "staging", force=True)
    assert topology_file.exists()
    with pytest.raises(ConfigError, match="can't name the imported files"):
        write_imported(imported, tmp_path, "../elsewhere")


# --------------------------------------------------------------------------
# Refusals: each names the dump file (and the field), and what to run or change
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name, command", [
    ("describe-vpcs.json", f"aws ec2 describe-vpcs --vpc-ids {VPC} --region eu-west-1 --output json"),
    ("describe-subnets.json", f"aws ec2 describe-subnets --filters Name=vpc-id,Values={VPC} --region eu-west-1"),
    ("describe-route-tables.json", "aws ec2 describe-route-tables --filters Name=vpc-id"),
    ("describe-nat-gateways.json", f"aws ec2 describe-nat-gateways --filter Name=vpc-id,Values={VPC}"),
    ("describe-internet-gateways.json", f"describe-internet-gateways --filters Name=attachment.vpc-id,Values={VPC}"),
    ("describe-addresses.json", "aws ec2 describe-addresses --region eu-west-1 --output json"),
    ("describe-instances.json", "aws ec2 describe-instances --filters"),
    ("describe-firewall.json", "aws network-firewall describe-firewall --firewall-name <name>"),
    ("describe-firewall-policy.json", "aws network-firewall describe-firewall-policy --firewall-policy-arn "
                                      "arn:aws:network-firewall:eu-west-1:111122223333:firewall-policy/egress-strict"),
])
def test_a_missing_file_is_refused_naming_it_and_the_command_that_makes_it(tmp_path, name, command):
    folder = copy_fixture(tmp_path, without=(name,))
    with pytest.raises(ConfigError) as e:
        load_dump(folder)
    assert str(e.value).startswith(f"{folder / name}: missing from the dump")
    assert command in e.value.hint and f"> {folder}/{name}" in e.value.hint
    assert "scripts/aws-dump.sh" in e.value.hint


def test_optional_files_may_be_missing(tmp_path):
    folder = copy_fixture(tmp_path, without=("describe-network-interfaces.json", "describe-logging-configuration.json"))
    imported = import_dump(load_dump(folder), str(folder))
    assert not any(n.startswith("logging:") for n in imported.notes)


def test_bad_json_is_refused_naming_the_file(tmp_path):
    folder = copy_fixture(tmp_path)
    (folder / "describe-route-tables.json").write_text('{"RouteTables": [')
    with pytest.raises(ConfigError, match=r"describe-route-tables.json: not valid JSON") as e:
        load_dump(folder)
    assert "aws ec2 describe-route-tables" in e.value.hint
    (folder / "describe-route-tables.json").write_text("[]")
    with pytest.raises(ConfigError, match=r"describe-route-tables.json: expected a JSON object"):
        load_dump(folder)
    with pytest.raises(ConfigError, match="not a folder"):
        load_dump(folder / "nowhere")


def test_a_vpc_without_the_firewall_is_refused(dump):
    with pytest.raises(ConfigError) as e:
        import_dump(dump, "acct", vpc_id="vpc-0aaaaaaaaaaaaaaa1")
    assert str(e.value).startswith("acct: describe-firewall.json: Firewall.VpcId: ")
    assert f"is in {VPC}, not in vpc-0aaaaaaaaaaaaaaa1" in str(e.value)
    assert "list-firewalls --vpc-ids vpc-0aaaaaaaaaaaaaaa1" in e.value.hint
    assert import_dump(dump, "acct", vpc_id=VPC).topology["vpc"]["id"] == VPC  # the firewall's own VPC, named


def test_a_firewall_without_endpoints_is_refused(dump):
    dump["describe-firewall"]["FirewallStatus"]["SyncStates"] = {}
    with pytest.raises(ConfigError, match=r"acct: describe-firewall.json: FirewallStatus.SyncStates: .*no endpoint"):
        import_dump(dump, "acct")


def test_a_missing_rule_group_is_refused_naming_its_arn_and_the_command(dump):
    dump["describe-rule-group"] = []
    with pytest.raises(ConfigError) as e:
        import_dump(dump, str(FIXTURE))
    assert "describe-firewall-policy.json: FirewallPolicy.StatefulRuleGroupReferences[0].ResourceArn: " \
           f"rule group {GROUP_ARN} is not in the dump" in str(e.value)
    assert (f"aws network-firewall describe-rule-group --region eu-west-1 --rule-group-arn {GROUP_ARN} --output json "
            f"> {FIXTURE}/describe-rule-group-egress-allow.json") in e.value.hint


def test_a_rule_group_the_lab_refuses_is_named_by_its_dump_file(dump):
    group = dump["describe-rule-group"][0]
    group["RuleGroup"]["RulesSource"]["RulesString"] = "pass tls any any -> any any (msg:\"no sid\";)"
    with pytest.raises(ConfigError, match=r"acct: describe-rule-group-egress-allow.json: .*has no sid"):
        import_dump(dump, "acct")


def test_a_policy_other_than_the_firewalls_is_refused(dump):
    dump["describe-firewall-policy"]["FirewallPolicyResponse"]["FirewallPolicyArn"] = \
        "arn:aws:network-firewall:eu-west-1:111122223333:firewall-policy/other"
    with pytest.raises(ConfigError, match=r"describe-firewall-policy.json: FirewallPolicyResponse.FirewallPolicyArn: "
                                          r"the dump's policy is .*/other, but firewall egress-firewall uses"):
        import_dump(dump, "acct")


def test_a_route_to_a_nat_gateway_missing_from_the_dump_is_refused_naming_the_route(dump):
    dump["describe-route-tables"]["RouteTables"][1]["Routes"][2]["NatGatewayId"] = "nat-0aaaaaaaaaaaaaaa9"
    with pytest.raises(ConfigError) as e:
        import_dump(dump, "acct")
    assert str(e.value).startswith("acct: describe-route-tables.json: RouteTables[1].Routes[2].NatGatewayId: "
                                   "nat-0aaaaaaaaaaaaaaa9 is not in describe-nat-gateways.json")


def test_an_edge_route_table_with_subnets_is_refused(dump):
    edge = dump["describe-route-tables"]["RouteTables"][4]
    edge["Associations"].append({"Main": False, "RouteTableAssociationId": "rtbassoc-0b1c2d3e4f5a60009",
                                 "RouteTableId": edge["RouteTableId"], "SubnetId": SUBNETS["public-a"],
                                 "AssociationState": {"State": "associated"}})
    del dump["describe-route-tables"]["RouteTables"][2]["Associations"][0]
    with pytest.raises(ConfigError, match=r"describe-route-tables.json: RouteTables\[4\].Associations\[0\]: .*"
                                          r"internet gateway and with subnets \(public-a\)"):
        import_dump(dump, "acct")


def test_no_public_nat_gateway_is_refused_and_a_private_one_is_a_note(dump):
    nat = dump["describe-nat-gateways"]["NatGateways"][0]
    private = {**copy.deepcopy(nat), "NatGatewayId": "nat-0bbbbbbbbbbbbbbb1", "ConnectivityType": "private",
               "NatGatewayAddresses": [{"PrivateIp": "10.20.0.11", "IsPrimary": True}]}
    dump["describe-nat-gateways"]["NatGateways"].append(private)
    dump["describe-route-tables"]["RouteTables"][1]["Routes"].append(
        {"DestinationCidrBlock": "10.40.0.0/16", "NatGatewayId": "nat-0bbbbbbbbbbbbbbb1", "Origin": "CreateRoute",
         "State": "active"})
    imported = import_dump(copy.deepcopy(dump), "acct")
    assert any("nat-0bbbbbbbbbbbbbbb1 is a private NAT gateway" in n for n in imported.notes)
    assert any("route 10.40.0.0/16 -> nat-0bbbbbbbbbbbbbbb1" in n for n in imported.notes)
    assert [n["id"] for n in imported.topology["nat_gateways"]] == [NAT]
    dump["describe-nat-gateways"]["NatGateways"] = [private]
    del dump["describe-route-tables"]["RouteTables"][1]["Routes"][2]
    with pytest.raises(ConfigError, match=r"acct: describe-nat-gateways.json: NatGateways: no available public NAT"):
        import_dump(dump, "acct")


def test_no_instance_and_no_internet_gateway_are_refused(dump):
    no_igw = copy.deepcopy(dump)
    no_igw["describe-internet-gateways"]["InternetGateways"][0]["Attachments"] = []
    with pytest.raises(ConfigError, match=r"describe-internet-gateways.json: InternetGateways: no internet gateway"):
        import_dump(no_igw, "acct")
    dump["describe-instances"]["Reservations"] = []
    with pytest.raises(ConfigError, match=r"describe-instances.json: Reservations: no running instance"):
        import_dump(dump, "acct")


# --------------------------------------------------------------------------
# Names, notes and AWS's variants
# --------------------------------------------------------------------------
def test_clean_names_fit_the_labs_limits():
    assert clean_name("App Server", 15) == "app-server"
    assert clean_name("  42nd_Web.Server!! ", 15) == "nd-web-server"  # starts with a letter
    assert clean_name("Firewall subnet for AZ b", 12) == "firewall-sub"
    assert clean_name("Ünïcode 😀", 15) == "n-code" and clean_name("1234", 15) == ""
    names = Names(12)
    assert [names.claim("Firewall subnet A", "x"), names.claim("Firewall subnet B", "x"),
            names.claim("Firewall subnet C", "x"), names.claim(None, "subnet-3c3c"), names.claim("99", "subnet-3c3c")] \
        == ["firewall-sub", "firewall-s-2", "firewall-s-3", "subnet-3c3c", "subnet-3c3-2"]
    nodes = Names(15, ("vpc-router", "internet"))
    assert nodes.claim("Internet", "i-1") == "internet-2" and nodes.claim("VPC Router", "i-1") == "vpc-router-2"


def test_names_come_from_ids_when_there_is_no_name_tag_and_are_trimmed_and_de_duplicated(dump):
    subnets = dump["describe-subnets"]["Subnets"]
    subnets[0]["Tags"] = []
    subnets[2]["Tags"] = [{"Key": "Name", "Value": "Firewall subnet for AZ a"}]
    subnets[3]["Tags"] = [{"Key": "Name", "Value": "Firewall subnet for AZ b"}]
    instances = [r["Instances"][0] for r in dump["describe-instances"]["Reservations"]]
    instances[0]["Tags"] = [{"Key": "Role", "Value": "app"}]
    instances[1]["Tags"] = [{"Key": "Name", "Value": "A very long application server name"}]
    dump["describe-nat-gateways"]["NatGateways"][0]["Tags"] = []
    dump["describe-internet-gateways"]["InternetGateways"][0]["Tags"] = [{"Key": "Name", "Value": "fw-a"}]
    imported = import_dump(dump, "acct", name="my lab")
    topology = parse_topology(imported.topology, "t.yaml")
    assert [s.name for s in topology.vpc.subnets] == ["subnet-1001", "private-a", "firewall-sub", "firewall-s-2"]
    assert [s.name for s in topology.vpc.servers] == ["i-9abc0001", "a-very-long-app"]
    assert topology.vpc.nat_gateway.name == "nat-b5a69701"  # nat- and the id's last 8 hex digits
    assert topology.vpc.internet_gateway.name == "fw-a-2"  # the endpoints keep fw-a and fw-b
    assert topology.name == "my lab"


def test_only_the_vpcs_resources_are_used(dump):
    other = "vpc-0ccccccccccccccc1"
    subnet = {**copy.deepcopy(dump["describe-subnets"]["Subnets"][1]), "SubnetId": "subnet-0ccccccccccccccc1",
              "VpcId": other, "CidrBlock": "172.31.0.0/20"}
    dump["describe-subnets"]["Subnets"].append(subnet)
    instance = copy.deepcopy(dump["describe-instances"]["Reservations"][0])
    instance["Instances"][0].update(InstanceId="i-0ccccccccccccccc1", VpcId=other, SubnetId=subnet["SubnetId"],
                                    PrivateIpAddress="172.31.0.10")
    dump["describe-instances"]["Reservations"].append(instance)
    table = {**copy.deepcopy(dump["describe-route-tables"]["RouteTables"][0]), "VpcId": other,
             "RouteTableId": "rtb-0ccccccccccccccc1"}
    dump["describe-route-tables"]["RouteTables"].append(table)
    dump["describe-vpcs"]["Vpcs"].append({**dump["describe-vpcs"]["Vpcs"][0], "VpcId": other,
                                          "CidrBlock": "172.31.0.0/16"})
    imported = import_dump(dump, "acct")
    assert "subnet-0ccccccccccccccc1" not in str(imported.topology)
    assert "172.31" not in str(imported.topology) and "rtb-0ccccccccccccccc1" not in str(imported.topology)


def test_stopped_and_terminated_instances_and_public_ips(dump):
    reservations = dump["describe-instances"]["Reservations"]
    gone = copy.deepcopy(reservations[1])
    gone["Instances"][0].update(InstanceId="i-0ddddddddddddddd1", State={"Code": 48, "Name": "terminated"},
                                PrivateIpAddress="10.20.10.30")
    reservations.append(gone)
    reservations[0]["Instances"][0]["PublicIpAddress"] = "192.0.2.44"
    no_ip = copy.deepcopy(reservations[1])
    no_ip["Instances"][0].update(InstanceId="i-0ddddddddddddddd2")
    del no_ip["Instances"][0]["PrivateIpAddress"]
    reservations.append(no_ip)
    reservations[1]["Instances"][0]["State"] = {"Code": 80, "Name": "stopped"}
    imported = import_dump(dump, "acct")
    assert [s["ip"] for s in imported.topology["servers"]] == ["10.20.10.21", "10.20.10.22"]
    notes = "\n".join(imported.notes)
    assert "instance i-0ddddddddddddddd1 is terminated: left out" in notes
    assert "instance i-0ddddddddddddddd2 has no private IPv4 address: left out" in notes
    assert "its public IP 192.0.2.44 is left out" in notes
    assert "(app-server-2) is stopped on AWS; the lab runs it" in notes


def test_without_network_interfaces_an_endpoint_gets_its_subnets_first_free_address(dump):
    del dump["describe-network-interfaces"]
    imported = import_dump(dump, "acct")
    assert [e["ip"] for e in imported.topology["firewall"]["endpoints"]] == ["10.20.1.4", "10.20.1.20"]
    assert any(f"firewall endpoint {VPCE_A} (fw-a): address 10.20.1.4, the first free one" in n
               for n in imported.notes)
    parse_topology(imported.topology, "t.yaml")


def test_an_endpoint_interface_is_found_by_its_type_in_the_subnet_when_the_description_says_nothing(dump):
    for eni in dump["describe-network-interfaces"]["NetworkInterfaces"]:
        eni["Description"] = ""
    imported = import_dump(dump, "acct")
    assert [e["ip"] for e in imported.topology["firewall"]["endpoints"]] == ["10.20.1.8", "10.20.1.25"]


def test_one_endpoint_is_named_firewall_and_vpc_endpoint_id_routes_reach_it(dump):
    del dump["describe-firewall"]["FirewallStatus"]["SyncStates"]["eu-west-1b"]
    route = dump["describe-route-tables"]["RouteTables"][2]["Routes"][1]
    route["VpcEndpointId"] = route.pop("GatewayId")  # the other way a route to a GWLB endpoint is written
    imported = import_dump(dump, "acct")
    assert [(e["name"], e["id"]) for e in imported.topology["firewall"]["endpoints"]] == [("firewall", VPCE_A)]
    assert tables_by_id(imported)["rtb-0d1e2f3a4b5c61003"]["routes"][-1] == {"destination": "0.0.0.0/0",
                                                                             "target": "firewall"}
    parse_topology(imported.topology, "t.yaml")


def test_routes_the_lab_cannot_emulate_become_notes(dump):
    routes = dump["describe-route-tables"]["RouteTables"][1]["Routes"]
    routes += [{"DestinationIpv6CidrBlock": "::/0", "EgressOnlyInternetGatewayId": "eigw-0a1b2c3d4e5f60001",
                "Origin": "CreateRoute", "State": "active"},
               {"DestinationPrefixListId": "pl-6da54004", "GatewayId": "vpce-0fffffffffffffff1",
                "Origin": "CreateRoute", "State": "active"},
               {"DestinationCidrBlock": "10.50.0.0/16", "TransitGatewayId": "tgw-0a1b2c3d4e5f60001",
                "Origin": "CreateRoute", "State": "active"},
               {"DestinationCidrBlock": "10.60.0.0/16", "InstanceId": "i-0eeeeeeeeeeeeeee1",
                "NetworkInterfaceId": "eni-0eeeeeeeeeeeeeee1", "InstanceOwnerId": "111122223333",
                "Origin": "CreateRoute", "State": "active"},
               {"DestinationCidrBlock": "10.70.0.0/16", "NatGatewayId": "nat-0eeeeeeeeeeeeeee1",
                "Origin": "CreateRoute", "State": "blackhole"},
               {"DestinationCidrBlock": "10.80.0.0/16", "GatewayId": "vgw-0a1b2c3d4e5f60001",
                "Origin": "EnableVgwRoutePropagation", "State": "active"},
               {"DestinationCidrBlock": "10.90.0.0/16", "GatewayId": "vpce-0fffffffffffffff2",
                "Origin": "CreateRoute", "State": "active"}]
    imported = import_dump(dump, "acct")
    notes = "\n".join(imported.notes)
    for expected in ("route ::/0 is IPv6", "route pl-6da54004 (a prefix list) is not emulated",
                     "tgw-0a1b2c3d4e5f60001 (a transit gateway) is not emulated",
                     "i-0eeeeeeeeeeeeeee1 (an instance) is not emulated",
                     "route 10.70.0.0/16 is a blackhole", "vgw-0a1b2c3d4e5f60001 (a virtual private gateway",
                     "vpce-0fffffffffffffff2 is not one of firewall egress-firewall's endpoints"):
        assert expected in notes
    private = tables_by_id(imported)["rtb-0d1e2f3a4b5c61002"]
    assert [r["destination"] for r in private["routes"]] == ["10.20.0.0/16", "0.0.0.0/0"]


def test_a_route_table_associated_with_nothing_is_left_out_with_a_note(dump):
    tables = dump["describe-route-tables"]["RouteTables"]
    tables.append({**copy.deepcopy(tables[3]), "RouteTableId": "rtb-0d1e2f3a4b5c61009", "Associations": [],
                   "Tags": [{"Key": "Name", "Value": "spare"}]})
    imported = import_dump(dump, "acct")
    assert "rtb-0d1e2f3a4b5c61009" not in tables_by_id(imported)
    assert "route table rtb-0d1e2f3a4b5c61009 (spare) is associated with nothing: left out" in imported.notes


def test_the_main_table_keeps_its_explicit_subnets_and_gets_the_others(dump):
    tables = dump["describe-route-tables"]["RouteTables"]
    del tables[4]["Associations"][0]  # no edge association: the gateway's table is associated with nothing
    tables[0]["Associations"].append({"Main": False, "RouteTableAssociationId": "rtbassoc-0b1c2d3e4f5a60008",
                                      "RouteTableId": tables[0]["RouteTableId"], "SubnetId": SUBNETS["firewall-a"],
                                      "AssociationState": {"State": "associated"}})
    del tables[3]["Associations"][0]
    imported = import_dump(dump, "acct")
    assert tables_by_id(imported)["rtb-0d1e2f3a4b5c61001"]["associations"] == ["firewall-a", "firewall-b"]
    topology = parse_topology(imported.topology, "t.yaml")
    assert topology.route_tables.table_for("egress-demo-igw") is None  # no ingress routing
    tables[0]["Associations"] = tables[0]["Associations"][1:]  # no main table left
    with pytest.raises(ConfigError, match=r"describe-route-tables.json: RouteTables: subnets .*firewall-b.* have no "
                                          r"explicit association and the dump has no main route table"):
        import_dump(dump, "acct")


def test_the_nat_gateways_elastic_ip_may_come_from_describe_addresses(dump):
    del dump["describe-nat-gateways"]["NatGateways"][0]["NatGatewayAddresses"][0]["PublicIp"]
    imported = import_dump(copy.deepcopy(dump), "acct")
    assert imported.topology["nat_gateways"][0]["elastic_ip"] == "198.51.100.20"
    dump["describe-addresses"]["Addresses"] = []
    with pytest.raises(ConfigError, match=r"describe-nat-gateways.json: NatGateways\[0\].NatGatewayAddresses\[0\]."
                                          r"PublicIp: public NAT gateway .* has no Elastic IP"):
        import_dump(dump, "acct")


def test_boto3s_datetimes_become_iso_text_in_the_policy(dump):
    when = datetime.datetime(2025, 3, 4, 9, 19, 40, tzinfo=datetime.UTC)
    dump["describe-rule-group"][0]["RuleGroupResponse"]["LastModifiedTime"] = when
    dump["describe-nat-gateways"]["NatGateways"][0]["CreateTime"] = when
    imported = import_dump(dump, "acct")
    assert imported.policy["RuleGroups"][0]["RuleGroupResponse"]["LastModifiedTime"] == "2025-03-04T09:19:40+00:00"
    json.dumps(imported.policy)
    yaml.safe_dump(imported.topology)


def test_the_internet_serves_the_labs_defaults_when_the_policy_names_no_domain(dump):
    group = dump["describe-rule-group"][0]
    group["RuleGroup"]["RulesSource"]["RulesString"] = \
        "pass tcp $HOME_NET any -> $EXTERNAL_NET 443 (msg:\"https\"; flow:to_server; sid:1; rev:1;)"
    imported = import_dump(dump, "acct")
    assert imported.topology["internet"]["domains"] == ["allowed.example", "blocked.example", "example.test",
                                                        "a.example.test"]


def test_a_domain_list_names_the_internets_domains(dump):
    group = dump["describe-rule-group"][0]
    group["RuleGroup"] = {"RulesSource": {"RulesSourceList": {
        "Targets": [".example.org", "api.example.net"], "TargetTypes": ["TLS_SNI", "HTTP_HOST"],
        "GeneratedRulesType": "ALLOWLIST"}}, "StatefulRuleOptions": {"RuleOrder": "STRICT_ORDER"}}
    imported = import_dump(dump, "acct")
    assert imported.topology["internet"]["domains"][-2:] == ["example.org", "api.example.net"]


def test_a_next_generation_policy_imports_with_the_v2_keys_and_loads(dump, tmp_path):
    document = json.loads((ROOT / "policies" / "next-generation.json").read_text())
    arn = dump["describe-firewall"]["Firewall"]["FirewallPolicyArn"]
    dump["describe-firewall-policy"] = {
        "UpdateToken": "1a2b3c4d-0000-4000-8000-000000000001",
        "FirewallPolicyV2Response": {"FirewallPolicyV2Name": "egress-next-generation", "FirewallPolicyV2Arn": arn,
                                     "FirewallPolicyV2Status": "ACTIVE", "NumberOfAssociations": 1},
        "FirewallPolicyV2": document["FirewallPolicyV2"]}
    imported = import_dump(dump, "acct")
    assert set(imported.policy) == {"FirewallPolicyV2Name", "FirewallPolicyV2", "RuleGroups"}
    assert imported.policy["RuleGroups"] == []  # its groups are inline
    assert "allowed.example" in imported.topology["internet"]["domains"]
    _, policy_file = write_imported(imported, tmp_path, "ng")
    policy = load_any_policy(policy_file)
    assert isinstance(policy, NextGenPolicy) and policy.name == "egress-next-generation"


def test_an_address_outside_its_subnet_is_refused_naming_the_field(dump):
    dump["describe-nat-gateways"]["NatGateways"][0]["NatGatewayAddresses"][0]["PrivateIp"] = "10.83.135.59"
    with pytest.raises(ConfigError, match=r"acct: describe-nat-gateways.json: NatGateways\[0\].NatGatewayAddresses"
                                          r"\[0\].PrivateIp: 10.83.135.59 is outside its subnet "
                                          r"subnet-0a1b2c3d4e5f61001 \(10.20.0.0/24\)"):
        import_dump(dump, "acct")
