"""Export (lab/aws/export.py): a lab as an account dump and as Terraform.

The Terraform is checked by Terraform itself: `terraform init` (offline, from the provider mirror on this machine),
`validate`, `plan -out` and `show -json`, with the provider pointed at a closed local port (a plan of new resources
makes no API call); lab/aws/terraform.py then reads the plan back and its dump must tell the same VPC as
dump_from_lab's. The importer (lab/aws/account.py) closes the circle: lab -> dump -> lab."""
import copy
import ipaddress
import json
import re
import time
from pathlib import Path

import pytest
import yaml
from aws_support import needs_terraform, offline_provider, terraform, terraform_env

from lab.aws.dump import EC2_CALLS, FIREWALL_CALLS, RULE_GROUPS
from lab.aws.export import dump_from_lab, policy_document, terraform_from_lab, write_dump
from lab.aws.terraform import dump_from_terraform
from lab.errors import ConfigError
from lab.model import load_topology, parse_topology
from lab.nextgen import load_any_policy, parse_nextgen, render_any
from lab.policy import parse_policy

ROOT = Path(__file__).resolve().parents[2]
NAT_FIRST, FIREWALL_FIRST, MULTI_AZ = (ROOT / "topologies" / f"{n}.yaml"
                                       for n in ("nat-first", "firewall-first", "multi-az"))
STRICT_ALLOW, DENY_DOMAINS = ROOT / "policies" / "strict-allow.yaml", ROOT / "policies" / "deny-domains.json"
HOME_NET_TRAP, NEXT_GENERATION = ROOT / "policies" / "home-net-trap.json", ROOT / "policies" / "next-generation.json"
DOCUMENTATION = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]

# Every kind of rule group and policy setting the Terraform provider has a block for.
MIXED_POLICY = """
FirewallPolicyName: mixed
FirewallPolicyResponse: {FirewallPolicyName: mixed, Description: "Stateless and stateful groups of every kind"}
FirewallPolicy:
  StatelessDefaultActions: ["aws:forward_to_sfe", "CountAll"]
  StatelessFragmentDefaultActions: ["aws:drop"]
  StatelessCustomActions:
    - ActionName: CountAll
      ActionDefinition: {PublishMetricAction: {Dimensions: [{Value: all}]}}
  StatelessRuleGroupReferences:
    - {ResourceArn: "arn:aws:network-firewall:ap-northeast-1:111122223333:stateless-rulegroup/telnet", Priority: 5}
  StatefulRuleGroupReferences:
    - ResourceArn: arn:aws:network-firewall:ap-northeast-1:111122223333:stateful-rulegroup/modeled
      Override: {Action: DROP_TO_ALERT}
    - ResourceArn: arn:aws:network-firewall:ap-northeast-1:111122223333:stateful-rulegroup/deny-list
    - ResourceArn: arn:aws:network-firewall:ap-northeast-1:111122223333:stateful-rulegroup/tricky
  StatefulEngineOptions:
    RuleOrder: DEFAULT_ACTION_ORDER
    StreamExceptionPolicy: REJECT
    FlowTimeouts: {TcpIdleTimeoutSeconds: 600}
  PolicyVariables:
    RuleVariables:
      HOME_NET: {Definition: ["10.0.128.0/20", "10.0.144.0/20"]}
RuleGroups:
  - RuleGroupName: telnet
    RuleGroupResponse: {RuleGroupName: telnet, Type: STATELESS, Capacity: 10}
    RuleGroup:
      RulesSource:
        StatelessRulesAndCustomActions:
          CustomActions:
            - ActionName: CountTelnet
              ActionDefinition: {PublishMetricAction: {Dimensions: [{Value: telnet}]}}
          StatelessRules:
            - Priority: 10
              RuleDefinition:
                Actions: ["aws:drop", "CountTelnet"]
                MatchAttributes:
                  Protocols: [6]
                  Sources: [{AddressDefinition: 10.0.128.0/17}]
                  DestinationPorts: [{FromPort: 23, ToPort: 23}]
            - Priority: 20
              RuleDefinition:
                Actions: ["aws:pass"]
                MatchAttributes:
                  Protocols: [6]
                  SourcePorts: [{FromPort: 1024, ToPort: 65535}]
                  TCPFlags: [{Flags: [SYN], Masks: [SYN, ACK]}]
  - RuleGroupName: modeled
    RuleGroupResponse: {RuleGroupName: modeled, Type: STATEFUL, Capacity: 50, Description: "StatefulRules, IP sets"}
    RuleGroup:
      RuleVariables:
        IPSets:
          DNS_SERVERS: {Definition: ["203.0.113.53/32"]}
      RulesSource:
        StatefulRules:
          - Action: DROP
            Header: {Protocol: UDP, Source: $HOME_NET, SourcePort: ANY, Direction: FORWARD,
                     Destination: "!$DNS_SERVERS", DestinationPort: "53"}
            RuleOptions:
              - {Keyword: msg, Settings: ['"DNS to an unknown resolver"']}
              - {Keyword: sid, Settings: ["2001"]}
  - RuleGroupName: deny-list
    RuleGroup:
      RulesSource:
        RulesSourceList:
          Targets: [blocked.example, .example.test]
          TargetTypes: [TLS_SNI, HTTP_HOST]
          GeneratedRulesType: DENYLIST
  - RuleGroupName: tricky
    RuleGroup:
      RulesSource:
        RulesString: |
          # what HCL would read as templates: ${braces} and %{percent}, kept as written

            # an indented comment, a blank line above it
          alert tcp $HOME_NET any -> any 8080 (msg:"C:\\temp ${HOME}"; content:"|0d 0a|"; sid:3001; rev:1;)
"""


def split_topology() -> dict:
    """multi-az with one route table sending traffic to both endpoints (Terraform: aws_route resources)."""
    data = yaml.safe_load(MULTI_AZ.read_text())
    data["name"] = "split"
    data["route_tables"][0]["routes"].append({"destination": "10.0.32.0/20", "target": "fw-c"})
    return data


@pytest.fixture()
def mixed(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED_POLICY)
    return path


def rules(rendered_text: str) -> list[str]:
    return [line for line in rendered_text.splitlines() if line and not line.startswith("#")]


def public_addresses(dump: dict) -> set[str]:
    text = json.dumps(dump)
    found = set()
    for m in re.finditer(r'"(\d{1,3}(?:\.\d{1,3}){3})(/\d+)?"', text):
        ip = ipaddress.ip_address(m.group(1))
        if not ip.is_private:
            found.add(m.group(1))
    return found


# --------------------------------------------------------------------------
# policy_document: the effective policy of any policy file, in the one-file form
# --------------------------------------------------------------------------
@pytest.mark.parametrize("path", [STRICT_ALLOW, DENY_DOMAINS, HOME_NET_TRAP, NEXT_GENERATION],
                         ids=lambda p: p.name)
def test_policy_document_runs_the_rules_the_file_runs(path, tmp_path):
    doc = policy_document(path)
    copy_path = tmp_path / "policy.json"  # on its own: every group it needs is in its RuleGroups
    copy_path.write_text(json.dumps(doc))
    assert rules(render_any(load_any_policy(copy_path), "10.0.0.0/16").rules) == \
        rules(render_any(load_any_policy(path), "10.0.0.0/16").rules)


def test_a_lone_rule_group_becomes_the_policy_the_lab_runs_for_it():
    doc = policy_document(DENY_DOMAINS)
    assert doc["FirewallPolicyName"] == "deny-domains"
    assert doc["FirewallPolicy"]["StatefulRuleGroupReferences"] == [{"RuleGroupName": "deny-domains"}]
    assert doc["FirewallPolicy"]["StatefulEngineOptions"] == {"RuleOrder": "DEFAULT_ACTION_ORDER"}
    [group] = doc["RuleGroups"]
    assert group["RuleGroupName"] == "deny-domains" and group["RuleGroupResponse"]["Type"] == "STATEFUL"
    assert group["RuleGroup"]["RulesSource"]["RulesSourceList"]["Targets"] == ["blocked.example"]


def test_a_referenced_group_in_its_own_file_joins_the_document():
    doc = policy_document(HOME_NET_TRAP)  # references deny-domains, found as deny-domains.json next to it
    assert [g["RuleGroupName"] for g in doc["RuleGroups"]] == ["deny-domains"]
    assert doc["FirewallPolicyResponse"]["Description"].startswith("HOME_NET narrowed")


def test_a_strict_order_group_on_its_own_gets_priority_one(tmp_path):
    group = {"RuleGroupName": "strict", "RuleGroup": {
        "StatefulRuleOptions": {"RuleOrder": "STRICT_ORDER"},
        "RulesSource": {"RulesString": 'pass tls $HOME_NET any -> any 443 (msg:"tls"; sid:1;)\n'}}}
    path = tmp_path / "strict.json"
    path.write_text(json.dumps(group))
    doc = policy_document(path)
    assert doc["FirewallPolicy"]["StatefulRuleGroupReferences"] == [{"RuleGroupName": "strict", "Priority": 1}]
    assert doc["FirewallPolicy"]["StatefulEngineOptions"] == {"RuleOrder": "STRICT_ORDER"}
    parse_policy(doc, "doc")


def test_a_stateless_group_and_a_rules_file_on_their_own(tmp_path, mixed):
    telnet = yaml.safe_load(MIXED_POLICY)["RuleGroups"][0]
    path = tmp_path / "telnet.yaml"
    path.write_text(yaml.safe_dump(telnet))
    doc = policy_document(path)
    assert doc["FirewallPolicy"]["StatelessRuleGroupReferences"] == [{"RuleGroupName": "telnet", "Priority": 1}]
    assert "StatefulRuleGroupReferences" not in doc["FirewallPolicy"]
    rules_file = tmp_path / "local.rules"
    rules_file.write_text('alert icmp any any -> any any (msg:"ping"; sid:9;)\n')
    doc = policy_document(rules_file)
    assert doc["RuleGroups"][0]["RuleGroup"]["RulesSource"]["RulesString"] == rules_file.read_text()
    assert doc["FirewallPolicyName"] == "local"


def test_a_broken_policy_file_is_refused_as_the_lab_refuses_it(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"FirewallPolicy": {"StatefulRuleGroupReferences": [{"ResourceArn": "arn:aws:network-firewall:ap-northeast-1:111122223333:stateful-rulegroup/missing"}]}}))
    with pytest.raises(ConfigError, match="rule group 'missing' was not found"):
        policy_document(path)


# --------------------------------------------------------------------------
# dump_from_lab: the describe calls' output
# --------------------------------------------------------------------------
def names(items: list[dict], key: str = "Tags") -> dict[str, dict]:
    return {next(t["Value"] for t in item[key] if t["Key"] == "Name"): item for item in items
            if any(t["Key"] == "Name" for t in item[key])}


def test_dump_holds_every_call_with_the_labs_names_and_ids():
    topo = load_topology(NAT_FIRST)
    dump = dump_from_lab(topo, policy_document(STRICT_ALLOW), account="210987654321")
    assert set(EC2_CALLS) | set(FIREWALL_CALLS) | {RULE_GROUPS, "describe-network-interfaces"} <= set(dump)
    vpc = topo.vpc
    [v] = dump["describe-vpcs"]["Vpcs"]
    assert (v["VpcId"], v["CidrBlock"], v["OwnerId"]) == (vpc.id, "10.0.0.0/16", "210987654321")
    assert names([v])["nat-first"]
    subnets = names(dump["describe-subnets"]["Subnets"])
    assert {n: (s["SubnetId"], s["CidrBlock"], s["AvailabilityZone"]) for n, s in subnets.items()} == \
        {s.name: (s.id, str(s.cidr), s.availability_zone) for s in vpc.subnets}
    assert subnets["firewall"]["AvailableIpAddressCount"] == 16 - 5 - 1  # /28, AWS's five, the endpoint
    [igw] = dump["describe-internet-gateways"]["InternetGateways"]
    assert igw["InternetGatewayId"] == vpc.internet_gateway.id and igw["Attachments"][0]["VpcId"] == vpc.id
    [nat] = dump["describe-nat-gateways"]["NatGateways"]
    [address] = nat["NatGatewayAddresses"]
    assert (nat["NatGatewayId"], nat["SubnetId"], address["PrivateIp"], address["PublicIp"]) == \
        (vpc.nat_gateway.id, vpc.subnet("public").id, "10.0.13.92", "198.51.100.10")
    [eip] = dump["describe-addresses"]["Addresses"]
    assert (eip["AllocationId"], eip["PublicIp"], eip["PrivateIpAddress"], eip["NetworkInterfaceId"]) == \
        (address["AllocationId"], "198.51.100.10", "10.0.13.92", address["NetworkInterfaceId"])
    instances = names([i for r in dump["describe-instances"]["Reservations"] for i in r["Instances"]])
    assert {n: (i["PrivateIpAddress"], i["SubnetId"], i["VpcId"], i["State"]["Name"],
                i["Placement"]["AvailabilityZone"]) for n, i in instances.items()} == \
        {s.name: (str(s.ip), vpc.subnet(s.subnet).id, vpc.id, "running", "ap-northeast-1a") for s in vpc.servers}
    endpoint_enis = [e for e in dump["describe-network-interfaces"]["NetworkInterfaces"]
                     if e["InterfaceType"] == "gateway_load_balancer_endpoint"]
    assert [(e["Description"], e["PrivateIpAddress"], e["SubnetId"]) for e in endpoint_enis] == \
        [(f"VPC Endpoint Interface {vpc.firewall.id}", "10.0.16.10", vpc.subnet("firewall").id)]
    assert public_addresses(dump) <= {"198.51.100.10", "203.0.113.53"}


def test_route_tables_as_describe_route_tables_prints_them():
    topo = load_topology(NAT_FIRST)
    tables = dump_from_lab(topo, policy_document(DENY_DOMAINS))["describe-route-tables"]["RouteTables"]
    by_name = names(tables)
    assert set(by_name) == {t.name for t in topo.route_tables.tables}
    edge = by_name["igw-edge-rtb"]
    assert edge["Associations"] == [{"Main": False, "RouteTableAssociationId": edge["Associations"][0][
        "RouteTableAssociationId"], "RouteTableId": "rtb-0b1c2d3e4f5a60004", "GatewayId": "igw-0f6a7b8c9d0e10001",
        "AssociationState": {"State": "associated"}}]
    assert edge["Routes"][1] == {"DestinationCidrBlock": "10.0.0.0/20", "VpcEndpointId": "vpce-0e5f6a7b8c9d00001",
                                 "Origin": "CreateRoute", "State": "active"}
    assert by_name["private-rtb"]["Routes"][1]["NatGatewayId"] == "nat-0c3d4e5f6a7b80001"
    mains = [t for t in tables if any(a["Main"] for a in t["Associations"])]
    assert len(mains) == 1 and mains[0]["Routes"] == [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local",
                                                       "Origin": "CreateRouteTable", "State": "active"}]
    assert all("SubnetId" not in a and "GatewayId" not in a for a in mains[0]["Associations"])


def test_firewall_policy_and_groups_refer_to_each_other_by_arn():
    topo = load_topology(MULTI_AZ)
    dump = dump_from_lab(topo, policy_document(STRICT_ALLOW), account="210987654321")
    arn = "arn:aws:network-firewall:ap-northeast-1:210987654321:"
    fw = dump["describe-firewall"]
    assert fw["Firewall"]["FirewallArn"] == arn + "firewall/nfwlab-firewall"
    assert fw["Firewall"]["FirewallPolicyArn"] == arn + "firewall-policy/strict-allow"
    assert {az: (s["Attachment"]["SubnetId"], s["Attachment"]["EndpointId"])
            for az, s in fw["FirewallStatus"]["SyncStates"].items()} == \
        {e.availability_zone: (topo.vpc.subnet(e.subnet).id, e.id) for e in topo.vpc.endpoints}
    assert [m["SubnetId"] for m in fw["Firewall"]["SubnetMappings"]] == [topo.vpc.subnet("fw-a").id,
                                                                        topo.vpc.subnet("fw-c").id]
    policy = dump["describe-firewall-policy"]
    assert policy["FirewallPolicyResponse"]["FirewallPolicyArn"] == arn + "firewall-policy/strict-allow"
    [ref] = policy["FirewallPolicy"]["StatefulRuleGroupReferences"]
    [group] = dump[RULE_GROUPS]
    assert ref == {"ResourceArn": group["RuleGroupResponse"]["RuleGroupArn"], "Priority": 10}
    assert group["RuleGroupResponse"]["RuleGroupArn"] == arn + "stateful-rulegroup/egress-web"
    assert (group["RuleGroupResponse"]["Capacity"], group["RuleGroupResponse"]["ConsumedCapacity"]) == (100, 3)
    # what the importer will do: the policy with its groups runs the lab's rules
    doc = {"FirewallPolicyName": "strict-allow", "FirewallPolicy": policy["FirewallPolicy"],
           "RuleGroups": dump[RULE_GROUPS]}
    assert rules(render_any(parse_policy(doc, "dump"), "10.0.0.0/16").rules) == \
        rules(render_any(load_any_policy(STRICT_ALLOW), "10.0.0.0/16").rules)


def test_every_kind_of_group_is_dumped_with_its_type(mixed):
    dump = dump_from_lab(load_topology(MULTI_AZ), policy_document(mixed))
    groups = {g["RuleGroupResponse"]["RuleGroupName"]: g["RuleGroupResponse"] for g in dump[RULE_GROUPS]}
    assert {n: (g["Type"], g["RuleGroupArn"].split(":")[-1]) for n, g in groups.items()} == {
        "telnet": ("STATELESS", "stateless-rulegroup/telnet"), "modeled": ("STATEFUL", "stateful-rulegroup/modeled"),
        "deny-list": ("STATEFUL", "stateful-rulegroup/deny-list"), "tricky": ("STATEFUL", "stateful-rulegroup/tricky")}
    assert groups["deny-list"]["Capacity"] == 100 and groups["deny-list"]["ConsumedCapacity"] == 4
    policy = dump["describe-firewall-policy"]
    assert policy["FirewallPolicyResponse"]["Description"] == "Stateless and stateful groups of every kind"
    assert policy["FirewallPolicy"]["StatefulRuleGroupReferences"][0]["Override"] == {"Action": "DROP_TO_ALERT"}


def test_a_next_generation_policy_is_dumped_in_the_v2_form():
    dump = dump_from_lab(load_topology(NAT_FIRST), policy_document(NEXT_GENERATION))
    policy = dump["describe-firewall-policy"]
    assert set(policy) == {"UpdateToken", "FirewallPolicyV2Response", "FirewallPolicyV2"}
    assert policy["FirewallPolicyV2Response"]["FirewallPolicyV2Name"] == "egress-next-generation"
    parse_nextgen({"FirewallPolicyV2Name": "egress-next-generation", "FirewallPolicyV2": policy["FirewallPolicyV2"],
                   "RuleGroups": dump[RULE_GROUPS]}, "dump")


def test_write_dump_writes_the_dump_layout(tmp_path, mixed):
    dump = dump_from_lab(load_topology(FIREWALL_FIRST), policy_document(mixed))
    written = write_dump(dump, tmp_path / "dump")
    assert {p.name for p in written} == {f"{c}.json" for c in dump if c != RULE_GROUPS} | {
        "describe-rule-group-telnet.json", "describe-rule-group-modeled.json", "describe-rule-group-deny-list.json",
        "describe-rule-group-tricky.json"}
    assert json.loads((tmp_path / "dump" / "describe-route-tables.json").read_text()) == \
        dump["describe-route-tables"]
    assert json.loads((tmp_path / "dump" / "describe-rule-group-telnet.json").read_text()) == dump[RULE_GROUPS][0]


# --------------------------------------------------------------------------
# terraform_from_lab: the HCL itself
# --------------------------------------------------------------------------
def test_terraform_has_no_provider_block_and_safe_names():
    hcl = terraform_from_lab(load_topology(NAT_FIRST), policy_document(STRICT_ALLOW))
    assert 'provider "aws"' not in hcl
    assert 'aws = { source = "hashicorp/aws", version = ">= 5.0" }' in hcl
    for header in re.findall(r'^resource "[a-z_]+" "([^"]+)"', hcl, re.M):
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", header)
    assert 'resource "aws_instance" "server_a"' in hcl and 'tags          = { Name = "server-a" }' in hcl
    assert 'address = "198.51.100.10"' in hcl and 'domain  = "vpc"' in hcl
    assert 'vpc_endpoint_id = local.nfwlab_firewall_endpoints["ap-northeast-1a"]' in hcl
    assert 'gateway_id     = aws_internet_gateway.internet_gateway.id' in hcl  # the edge association


def test_terraform_refuses_a_next_generation_policy():
    with pytest.raises(ConfigError, match="the Terraform provider has no resource for Next Generation policies"):
        terraform_from_lab(load_topology(NAT_FIRST), policy_document(NEXT_GENERATION))


def test_a_table_with_two_endpoints_gets_one_aws_route_per_route():
    hcl = terraform_from_lab(parse_topology(split_topology(), "split"), policy_document(STRICT_ALLOW))
    table = hcl[hcl.index('resource "aws_route_table" "private_a_rtb"'):]
    assert "route {" not in table[:table.index("\n}\n")]
    assert hcl.count('resource "aws_route" ') == 2


# --------------------------------------------------------------------------
# Terraform's own verdict, and the plan read back
# --------------------------------------------------------------------------
# module name -> (topology, policy file); the mixed policy is written by the fixture
MODULES = {"nat_first": (NAT_FIRST, STRICT_ALLOW), "firewall_first": (FIREWALL_FIRST, DENY_DOMAINS),
           "multi_az": (MULTI_AZ, STRICT_ALLOW), "split": ("split", "mixed")}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each module's topology and policy document, its exported HCL, and the whole configuration's plan as
    `terraform show -json` prints it: one init, one validate, one plan for all modules (and the HCL is as
    `terraform fmt` writes it)."""
    workdir = tmp_path_factory.mktemp("terraform")
    env = terraform_env(workdir)
    (workdir / "mixed.yaml").write_text(MIXED_POLICY)
    cases, calls = {}, [offline_provider('"ap-northeast-1"')]
    for name, (topo_path, policy_path) in MODULES.items():
        topo = parse_topology(split_topology(), "split") if topo_path == "split" else load_topology(topo_path)
        doc = policy_document(workdir / "mixed.yaml" if policy_path == "mixed" else policy_path)
        (workdir / name).mkdir()
        (workdir / name / "main.tf").write_text(terraform_from_lab(topo, doc))
        cases[name] = (topo, doc)
        calls.append(f'module "{name}" {{\n  source = "./{name}"\n  ami    = "ami-0123456789abcdef0"\n}}\n')
    (workdir / "main.tf").write_text("\n".join(calls))
    timings = {}
    for step in (("fmt", "-check", "-recursive"), ("init", "-input=false"), ("validate",),
                 ("plan", "-input=false", "-out=plan.bin"), ("show", "-json", "plan.bin")):
        start = time.monotonic()
        shown = terraform(workdir, env, *step)
        timings[step[0]] = round(time.monotonic() - start, 1)
    print(f"terraform timings (s): {timings}")
    return cases, json.loads(shown)


def facts(dump: dict) -> dict:
    """What a dump says about the VPC, by Name tags (ids differ: a plan's are made up)."""
    def name(item: dict, key: str = "Tags") -> str:
        return next(t["Value"] for t in item[key] if t["Key"] == "Name")

    subnets = {s["SubnetId"]: name(s) for s in dump["describe-subnets"]["Subnets"]}
    nats = {n["NatGatewayId"]: name(n) for n in dump["describe-nat-gateways"]["NatGateways"]}
    igws = {g["InternetGatewayId"]: name(g) for g in dump["describe-internet-gateways"]["InternetGateways"]}
    endpoints = {s["Attachment"]["EndpointId"]: az for az, s in dump["describe-firewall"]["FirewallStatus"][
        "SyncStates"].items()}

    def target(route: dict) -> tuple[str, str]:
        if "NatGatewayId" in route:
            return "nat-gateway", nats[route["NatGatewayId"]]
        if "VpcEndpointId" in route:
            return "firewall-endpoint", endpoints[route["VpcEndpointId"]]
        return ("local", "local") if route["GatewayId"] == "local" else ("internet-gateway", igws[route["GatewayId"]])

    tables = {}
    for t in dump["describe-route-tables"]["RouteTables"]:
        main = any(a["Main"] for a in t["Associations"])
        assoc = sorted(subnets.get(a.get("SubnetId"), igws.get(a.get("GatewayId"), "main")) for a in t["Associations"])
        tables["(main)" if main else name(t)] = (assoc, {r["DestinationCidrBlock"]: target(r) for r in t["Routes"]})
    return {
        "subnets": {name(s): (s["CidrBlock"], s["AvailabilityZone"]) for s in dump["describe-subnets"]["Subnets"]},
        "instances": {name(i): (i["PrivateIpAddress"], subnets[i["SubnetId"]], i["Placement"]["AvailabilityZone"])
                      for r in dump["describe-instances"]["Reservations"] for i in r["Instances"]},
        "nats": {name(n): (n["NatGatewayAddresses"][0]["PrivateIp"], n["NatGatewayAddresses"][0]["PublicIp"],
                           subnets[n["SubnetId"]]) for n in dump["describe-nat-gateways"]["NatGateways"]},
        "eips": sorted(a["PublicIp"] for a in dump["describe-addresses"]["Addresses"]),
        "tables": tables,
        "firewall": (dump["describe-firewall"]["Firewall"]["FirewallName"],
                     sorted((az, subnets[s["Attachment"]["SubnetId"]]) for az, s in dump["describe-firewall"][
                         "FirewallStatus"]["SyncStates"].items())),
        "policy": normalized(dump["describe-firewall-policy"]["FirewallPolicy"]),
        "groups": {g["RuleGroupResponse"]["RuleGroupName"]: (g["RuleGroupResponse"]["Type"],
                                                             normalized(g["RuleGroup"])) for g in dump[RULE_GROUPS]},
    }


def normalized(value):
    """ARNs as names, every list in one order (the provider keeps most lists as sets); strings (a RulesString)
    exactly."""
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [normalized(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, str) and value.startswith("arn:aws:network-firewall:"):
        return value.rsplit(":", 1)[-1]
    return value


@needs_terraform
@pytest.mark.parametrize("module", list(MODULES))
def test_the_plan_of_the_exported_terraform_tells_the_same_vpc(exported, module):
    cases, plan = exported
    topo, doc = cases[module]
    from_plan = dump_from_terraform(plan, "plan.json", module=f"module.{module}")
    from_lab = dump_from_lab(topo, doc)
    want, got = facts(from_lab), facts(from_plan)
    for key in want:
        assert got[key] == want[key], key
    # the firewall endpoints' addresses are AWS's to choose: the plan's are the subnets' first free hosts
    enis = [e for e in from_plan["describe-network-interfaces"]["NetworkInterfaces"]
            if e["InterfaceType"] == "gateway_load_balancer_endpoint"]
    assert sorted(e["PrivateIpAddress"] for e in enis) == sorted(
        str(topo.vpc.subnet(e.subnet).cidr.network_address + 4) for e in topo.vpc.endpoints)


@needs_terraform
def test_rules_strings_survive_terraform_exactly(exported):
    cases, plan = exported
    group = dump_from_terraform(plan, "plan.json", module="module.nat_first")[RULE_GROUPS][0]
    source = cases["nat_first"][1]["RuleGroups"][0]["RuleGroup"]["RulesSource"]["RulesString"]
    assert group["RuleGroup"]["RulesSource"]["RulesString"] == source


@needs_terraform
def test_the_split_table_routes_to_both_endpoints(exported):
    _, plan = exported
    dump = dump_from_terraform(plan, "plan.json", module="module.split")
    assert facts(dump)["tables"]["private-a-rtb"][1] == {
        "10.0.0.0/16": ("local", "local"), "0.0.0.0/0": ("firewall-endpoint", "ap-northeast-1a"),
        "10.0.32.0/20": ("firewall-endpoint", "ap-northeast-1c")}


@needs_terraform
@pytest.mark.parametrize("module", ["nat_first", "multi_az"])
def test_the_plan_imports_as_the_same_lab(exported, module):
    from lab.aws import account
    cases, plan = exported
    topo = cases[module][0]
    imported = account.import_dump(dump_from_terraform(plan, "plan.json", module=f"module.{module}"), "plan.json")
    back = parse_topology(imported.topology, "imported")
    assert sorted((s.name, s.cidr, s.availability_zone) for s in back.vpc.subnets) == \
        sorted((s.name, s.cidr, s.availability_zone) for s in topo.vpc.subnets)
    assert sorted((s.name, s.subnet, s.ip) for s in back.vpc.servers) == \
        sorted((s.name, s.subnet, s.ip) for s in topo.vpc.servers)
    assert sorted((n.name, n.subnet, n.private_ip, n.elastic_ip) for n in back.vpc.nat_gateways) == \
        sorted((n.name, n.subnet, n.private_ip, n.elastic_ip) for n in topo.vpc.nat_gateways)
    same_rules(imported.policy, cases[module][1])


def same_rules(imported: dict, exported: dict) -> None:
    """The imported policy runs the rules the exported one runs."""
    assert rules(render_any(parse_policy(imported, "imported"), "10.0.0.0/16").rules) == \
        rules(render_any(parse_policy(copy.deepcopy(exported), "exported"), "10.0.0.0/16").rules)


# --------------------------------------------------------------------------
# The round trip through the importer: lab -> dump -> lab
# --------------------------------------------------------------------------
def comparable(topo):
    """The VPC and its route tables: what a round trip must keep."""
    vpc = topo.vpc
    return (vpc.id, vpc.cidr, vpc.region, vpc.subnets, vpc.servers, vpc.nat_gateways, vpc.endpoints,
            vpc.internet_gateway, [(t.name, t.id, t.associations, t.routes) for t in topo.route_tables.tables])


@pytest.mark.parametrize("topology, policy", [(NAT_FIRST, STRICT_ALLOW), (FIREWALL_FIRST, DENY_DOMAINS),
                                              (MULTI_AZ, STRICT_ALLOW)], ids=lambda p: p.stem)
def test_round_trip_through_the_importer(topology, policy):
    from lab.aws import account
    topo, doc = load_topology(topology), policy_document(policy)
    imported = account.import_dump(dump_from_lab(topo, doc), "export")
    back = parse_topology(imported.topology, "imported")
    assert comparable(back) == comparable(topo)
    same_rules(imported.policy, doc)


def test_round_trip_keeps_the_internet_gateways_name():
    from lab.aws import account
    topo = load_topology(NAT_FIRST)
    imported = account.import_dump(dump_from_lab(topo, policy_document(DENY_DOMAINS)), "export")
    assert parse_topology(imported.topology, "imported").vpc.internet_gateway.name == "internet-gateway"
