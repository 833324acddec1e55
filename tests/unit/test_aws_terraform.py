"""`terraform show -json` as an account dump (lab/aws/terraform.py).

The plan read here is Terraform's own: a hand-written configuration (count, for_each, a child module, a local map
of the firewall's endpoints, an endpoint picked by a subnet's Availability Zone, aws_route and inline routes, an
edge association, a main route table association, logging) planned offline with the provider mirror on this
machine and its endpoints on a closed local port. Error cases change that plan the way other configurations
would (a dynamic block, an expression that names no zone). A state is written out by hand: `terraform apply` would
need AWS."""
import copy
import json
import time
from pathlib import Path

import pytest
from aws_support import MIRROR, needs_terraform, offline_provider, terraform, terraform_env

from lab.aws import terraform as tf
from lab.aws.dump import EC2_CALLS, FIREWALL_CALLS, RULE_GROUPS
from lab.aws.terraform import cli_config, dump_from_terraform, find_provider_mirror
from lab.errors import ConfigError
from lab.model import parse_topology

MAIN_TF = r'''
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.0" }
  }
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

''' + offline_provider("var.region") + r'''
locals {
  zones = { a = "eu-west-1a", b = "eu-west-1b" }
}

resource "aws_vpc" "main" {
  cidr_block = "10.20.0.0/16"
  tags       = { Name = "staging" }
}

resource "aws_internet_gateway" "igw" {
  tags = { Name = "igw" }
}

resource "aws_internet_gateway_attachment" "igw" {
  internet_gateway_id = aws_internet_gateway.igw.id
  vpc_id              = aws_vpc.main.id
}

resource "aws_subnet" "public" {
  for_each          = local.zones
  vpc_id            = aws_vpc.main.id
  cidr_block        = each.key == "a" ? "10.20.0.0/24" : "10.20.1.0/24"
  availability_zone = each.value
}

resource "aws_subnet" "firewall" {
  count             = 2
  vpc_id            = aws_vpc.main.id
  cidr_block        = cidrsubnet("10.20.2.0/24", 4, count.index)
  availability_zone = ["eu-west-1a", "eu-west-1b"][count.index]
  tags              = { Name = "fw-${count.index}" }
}

module "app" {
  source = "./app"
  vpc_id = aws_vpc.main.id
  ami    = "ami-0123456789abcdef0"
}

resource "aws_eip" "nat" {
  for_each = aws_subnet.public
  domain   = "vpc"
  address  = each.key == "a" ? "198.51.100.20" : null
}

resource "aws_nat_gateway" "nat" {
  for_each      = aws_subnet.public
  allocation_id = aws_eip.nat[each.key].id
  subnet_id     = each.value.id
  private_ip    = each.key == "a" ? "10.20.0.10" : null
}

resource "aws_networkfirewall_rule_group" "allow" {
  name     = "egress-allow"
  type     = "STATEFUL"
  capacity = 100
  rule_group {
    rule_variables {
      ip_sets {
        key = "WEB"
        ip_set {
          definition = ["203.0.113.0/24"]
        }
      }
    }
    rules_source {
      rules_string = <<-EOT
        # updates only
        pass tls $HOME_NET any -> $WEB 443 (tls.sni; content:"updates.example"; startswith; nocase; endswith; msg:"updates"; flow:to_server, established; sid:1001; rev:1;)
      EOT
    }
  }
}

resource "aws_networkfirewall_rule_group" "file" {
  name     = "from-file"
  type     = "STATEFUL"
  capacity = 10
  rules    = file("${path.module}/extra.rules")
}

resource "aws_networkfirewall_firewall_policy" "main" {
  name = "egress"
  firewall_policy {
    stateless_default_actions          = ["aws:forward_to_sfe"]
    stateless_fragment_default_actions = ["aws:forward_to_sfe"]
    stateful_engine_options {
      rule_order              = "DEFAULT_ACTION_ORDER"
      stream_exception_policy = "DROP"
    }
    stateful_rule_group_reference {
      resource_arn = aws_networkfirewall_rule_group.file.arn
    }
    stateful_rule_group_reference {
      resource_arn = aws_networkfirewall_rule_group.allow.arn
      override {
        action = "DROP_TO_ALERT"
      }
    }
    policy_variables {
      rule_variables {
        key = "HOME_NET"
        ip_set {
          definition = ["10.20.0.0/16"]
        }
      }
    }
  }
}

resource "aws_networkfirewall_firewall" "main" {
  name                = "egress-firewall"
  vpc_id              = aws_vpc.main.id
  firewall_policy_arn = aws_networkfirewall_firewall_policy.main.arn
  delete_protection   = true
  subnet_mapping {
    subnet_id = aws_subnet.firewall[0].id
  }
  subnet_mapping {
    subnet_id = aws_subnet.firewall[1].id
  }
  tags = { Environment = "staging" }
}

resource "aws_networkfirewall_logging_configuration" "main" {
  firewall_arn = aws_networkfirewall_firewall.main.arn
  logging_configuration {
    log_destination_config {
      log_destination_type = "CloudWatchLogs"
      log_type             = "ALERT"
      log_destination      = { logGroup = "/staging/alert" }
    }
  }
}

locals {
  endpoints = {
    for s in aws_networkfirewall_firewall.main.firewall_status[0].sync_states :
    s.availability_zone => s.attachment[0].endpoint_id
  }
}

# the servers' subnet: to the firewall endpoint of its zone; also the VPC's main route table
resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block      = "0.0.0.0/0"
    vpc_endpoint_id = local.endpoints["eu-west-1a"]
  }
  tags = { Name = "private-rtb" }
}

resource "aws_route_table_association" "private" {
  subnet_id      = module.app.subnet_id
  route_table_id = aws_route_table.private.id
}

resource "aws_main_route_table_association" "main" {
  vpc_id         = aws_vpc.main.id
  route_table_id = aws_route_table.private.id
}

resource "aws_route_table" "firewall_a" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.nat["a"].id
  }
}

resource "aws_route_table" "firewall_b" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.nat["b"].id
  }
}

resource "aws_route_table_association" "firewall_a" {
  subnet_id      = aws_subnet.firewall[0].id
  route_table_id = aws_route_table.firewall_a.id
}

resource "aws_route_table_association" "firewall_b" {
  subnet_id      = aws_subnet.firewall[1].id
  route_table_id = aws_route_table.firewall_b.id
}

resource "aws_route_table" "public" {
  for_each = aws_subnet.public
  vpc_id   = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.igw.id
  }
}

# the return path, through the endpoint in the public subnet's own zone
resource "aws_route" "public_return" {
  for_each               = aws_route_table.public
  route_table_id         = each.value.id
  destination_cidr_block = "10.20.10.0/24"
  vpc_endpoint_id = one([
    for s in aws_networkfirewall_firewall.main.firewall_status[0].sync_states : s.attachment[0].endpoint_id
    if s.availability_zone == aws_subnet.public[each.key].availability_zone
  ])
}

resource "aws_route_table_association" "public" {
  for_each       = aws_subnet.public
  subnet_id      = each.value.id
  route_table_id = aws_route_table.public[each.key].id
}

resource "aws_route_table" "edge" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = "edge-rtb" }
}

resource "aws_route" "edge_a" {
  route_table_id         = aws_route_table.edge.id
  destination_cidr_block = aws_subnet.public["a"].cidr_block
  vpc_endpoint_id        = local.endpoints["eu-west-1a"]
}

resource "aws_route" "edge_b" {
  route_table_id         = aws_route_table.edge.id
  destination_cidr_block = aws_subnet.public["b"].cidr_block
  vpc_endpoint_id        = local.endpoints["eu-west-1b"]
}

resource "aws_route_table_association" "edge" {
  gateway_id     = aws_internet_gateway.igw.id
  route_table_id = aws_route_table.edge.id
}
'''

APP_TF = r'''
variable "vpc_id" { type = string }
variable "ami" { type = string }

resource "aws_subnet" "private" {
  vpc_id            = var.vpc_id
  cidr_block        = "10.20.10.0/24"
  availability_zone = "eu-west-1a"
  tags              = { Name = "app-private" }
}

resource "aws_instance" "app" {
  ami           = var.ami
  instance_type = "t3.small"
  subnet_id     = aws_subnet.private.id
  private_ip    = "10.20.10.21"
  tags          = { Name = "app-1", Role = "app" }
}

resource "aws_instance" "spare" {
  ami           = var.ami
  instance_type = "t3.micro"
  subnet_id     = aws_subnet.private.id
}

output "subnet_id" { value = aws_subnet.private.id }
'''

EXTRA_RULES = 'drop tcp $HOME_NET any -> any 23 (msg:"no telnet"; sid:2001; rev:1;)\n'


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> dict:
    """`terraform show -json` of the configuration's plan (one init, one plan for every test here)."""
    workdir = tmp_path_factory.mktemp("plan")
    env = terraform_env(workdir)
    (workdir / "main.tf").write_text(MAIN_TF)
    (workdir / "extra.rules").write_text(EXTRA_RULES)
    (workdir / "app").mkdir()
    (workdir / "app" / "main.tf").write_text(APP_TF)
    timings = {}
    for step in (("init", "-input=false"), ("plan", "-input=false", "-out=plan.bin"), ("show", "-json", "plan.bin")):
        start = time.monotonic()
        shown = terraform(workdir, env, *step)
        timings[step[0]] = round(time.monotonic() - start, 1)
    print(f"terraform timings (s): {timings}")
    return json.loads(shown)


@pytest.fixture(scope="module")
def dump(plan) -> dict:
    return dump_from_terraform(plan, "plan.json")


def named(items: list[dict], key: str = "Tags") -> dict[str, dict]:
    return {next(t["Value"] for t in item[key] if t["Key"] == "Name"): item for item in items}


def endpoint_of(dump: dict, az: str) -> str:
    return dump["describe-firewall"]["FirewallStatus"]["SyncStates"][az]["Attachment"]["EndpointId"]


# --------------------------------------------------------------------------
# The provider mirror
# --------------------------------------------------------------------------
def test_find_provider_mirror_finds_a_5x_provider_two_levels_down(tmp_path, monkeypatch):
    home = tmp_path / ".terraform.d"
    (home / "plugins" / "registry.terraform.io" / "hashicorp" / "aws" / "4.67.0" / "linux_amd64").mkdir(parents=True)
    monkeypatch.setattr(tf, "MIRROR_BASES", (tmp_path / "nowhere", home))
    assert find_provider_mirror() is None  # 4.x is not enough
    (home / "plugins" / "registry.terraform.io" / "hashicorp" / "aws" / "5.31.0" / "linux_amd64").mkdir(parents=True)
    assert find_provider_mirror() == home / "plugins"


@needs_terraform
def test_the_mirror_on_this_machine_holds_the_provider():
    assert MIRROR is not None and any((MIRROR / "registry.terraform.io" / "hashicorp" / "aws").glob("5.*"))
    text = cli_config(MIRROR)
    assert f'path    = "{MIRROR}"' in text and 'exclude = ["registry.terraform.io/hashicorp/aws"]' in text


# --------------------------------------------------------------------------
# A plan
# --------------------------------------------------------------------------
@needs_terraform
def test_a_plan_gives_every_call_with_made_up_stable_ids(plan, dump):
    assert set(EC2_CALLS) | set(FIREWALL_CALLS) | {RULE_GROUPS, "describe-network-interfaces",
                                                    "describe-logging-configuration"} == set(dump)
    [vpc] = dump["describe-vpcs"]["Vpcs"]
    assert vpc["VpcId"].startswith("vpc-") and len(vpc["VpcId"]) == 21 and vpc["CidrBlock"] == "10.20.0.0/16"
    assert dump_from_terraform(copy.deepcopy(plan), "again.json") == dump  # the same ids on every run
    subnets = named(dump["describe-subnets"]["Subnets"])
    assert {n: (s["CidrBlock"], s["AvailabilityZone"], s["VpcId"]) for n, s in subnets.items()} == {
        "public-a": ("10.20.0.0/24", "eu-west-1a", vpc["VpcId"]), "public-b": ("10.20.1.0/24", "eu-west-1b",
                                                                              vpc["VpcId"]),
        "fw-0": ("10.20.2.0/28", "eu-west-1a", vpc["VpcId"]), "fw-1": ("10.20.2.16/28", "eu-west-1b", vpc["VpcId"]),
        "app-private": ("10.20.10.0/24", "eu-west-1a", vpc["VpcId"])}  # through the module's var.vpc_id
    assert subnets["public-a"]["SubnetArn"].startswith("arn:aws:ec2:eu-west-1:123456789012:subnet/")  # var.region
    [igw] = dump["describe-internet-gateways"]["InternetGateways"]
    assert igw["Attachments"] == [{"State": "available", "VpcId": vpc["VpcId"]}]  # aws_internet_gateway_attachment


@needs_terraform
def test_unknown_addresses_are_the_first_free_hosts(dump):
    subnets = {s["SubnetId"]: n for n, s in named(dump["describe-subnets"]["Subnets"]).items()}
    instances = named([i for r in dump["describe-instances"]["Reservations"] for i in r["Instances"]])
    assert {n: (i["PrivateIpAddress"], subnets[i["SubnetId"]], i["InstanceType"], i["State"]["Name"],
                i["Placement"]["AvailabilityZone"]) for n, i in instances.items()} == {
        "app-1": ("10.20.10.21", "app-private", "t3.small", "running", "eu-west-1a"),
        "spare": ("10.20.10.4", "app-private", "t3.micro", "running", "eu-west-1a")}
    assert {"Key": "Role", "Value": "app"} in instances["app-1"]["Tags"]
    nats = named(dump["describe-nat-gateways"]["NatGateways"])
    assert {n: (g["NatGatewayAddresses"][0]["PrivateIp"], g["NatGatewayAddresses"][0]["PublicIp"],
                subnets[g["SubnetId"]]) for n, g in nats.items()} == {
        "nat-a": ("10.20.0.10", "198.51.100.20", "public-a"),  # address = ...
        "nat-b": ("10.20.1.4", "198.51.100.10", "public-b")}  # none: a documentation address
    addresses = {a["PublicIp"]: a for a in dump["describe-addresses"]["Addresses"]}
    assert addresses["198.51.100.20"]["AllocationId"] == nats["nat-a"]["NatGatewayAddresses"][0]["AllocationId"]
    assert addresses["198.51.100.20"]["PrivateIpAddress"] == "10.20.0.10"
    endpoints = {e["Description"]: (e["PrivateIpAddress"], subnets[e["SubnetId"]])
                 for e in dump["describe-network-interfaces"]["NetworkInterfaces"]
                 if e["InterfaceType"] == "gateway_load_balancer_endpoint"}
    assert endpoints == {f"VPC Endpoint Interface {endpoint_of(dump, 'eu-west-1a')}": ("10.20.2.4", "fw-0"),
                         f"VPC Endpoint Interface {endpoint_of(dump, 'eu-west-1b')}": ("10.20.2.20", "fw-1")}


@needs_terraform
def test_routes_reach_the_endpoint_of_the_zone_their_expression_names(dump):
    subnets = {s["SubnetId"]: n for n, s in named(dump["describe-subnets"]["Subnets"]).items()}
    nats = {g["NatGatewayId"]: n for n, g in named(dump["describe-nat-gateways"]["NatGateways"]).items()}
    [igw] = dump["describe-internet-gateways"]["InternetGateways"]
    vpce = {endpoint_of(dump, az): az for az in ("eu-west-1a", "eu-west-1b")}

    def target(r: dict) -> str:
        if "VpcEndpointId" in r:
            return vpce[r["VpcEndpointId"]]
        if "NatGatewayId" in r:
            return nats[r["NatGatewayId"]]
        return "igw" if r["GatewayId"] == igw["InternetGatewayId"] else r["GatewayId"]

    tables = {}
    for t in dump["describe-route-tables"]["RouteTables"]:
        assoc = sorted("main" if a["Main"] else subnets.get(a.get("SubnetId")) or
                       ("igw" if a.get("GatewayId") == igw["InternetGatewayId"] else "?") for a in t["Associations"])
        [name] = named([t])
        tables[name] = (assoc, {r["DestinationCidrBlock"]: target(r) for r in t["Routes"]})
    assert tables == {
        "private-rtb": (["app-private", "main"], {"10.20.0.0/16": "local", "0.0.0.0/0": "eu-west-1a"}),
        "firewall-a": (["fw-0"], {"10.20.0.0/16": "local", "0.0.0.0/0": "nat-a"}),
        "firewall-b": (["fw-1"], {"10.20.0.0/16": "local", "0.0.0.0/0": "nat-b"}),
        "public-a": (["public-a"], {"10.20.0.0/16": "local", "0.0.0.0/0": "igw", "10.20.10.0/24": "eu-west-1a"}),
        "public-b": (["public-b"], {"10.20.0.0/16": "local", "0.0.0.0/0": "igw", "10.20.10.0/24": "eu-west-1b"}),
        "edge-rtb": (["igw"], {"10.20.0.0/16": "local", "10.20.0.0/24": "eu-west-1a",
                               "10.20.1.0/24": "eu-west-1b"})}


@needs_terraform
def test_the_firewall_policy_and_groups_in_the_apis_shapes(dump):
    fw = dump["describe-firewall"]["Firewall"]
    arn = "arn:aws:network-firewall:eu-west-1:123456789012:"
    assert (fw["FirewallName"], fw["FirewallArn"], fw["FirewallPolicyArn"], fw["DeleteProtection"], fw["Tags"]) == (
        "egress-firewall", arn + "firewall/egress-firewall", arn + "firewall-policy/egress", True,
        [{"Key": "Environment", "Value": "staging"}])
    assert sorted(dump["describe-firewall"]["FirewallStatus"]["SyncStates"]) == ["eu-west-1a", "eu-west-1b"]
    policy = dump["describe-firewall-policy"]
    assert policy["FirewallPolicyResponse"]["FirewallPolicyName"] == "egress"
    body = policy["FirewallPolicy"]
    assert sorted(body["StatefulRuleGroupReferences"], key=lambda r: r["ResourceArn"]) == [
        {"ResourceArn": arn + "stateful-rulegroup/egress-allow", "Override": {"Action": "DROP_TO_ALERT"}},
        {"ResourceArn": arn + "stateful-rulegroup/from-file"}]  # each override on its own group
    assert body["StatefulEngineOptions"] == {"RuleOrder": "DEFAULT_ACTION_ORDER", "StreamExceptionPolicy": "DROP"}
    assert body["PolicyVariables"] == {"RuleVariables": {"HOME_NET": {"Definition": ["10.20.0.0/16"]}}}
    groups = {g["RuleGroupResponse"]["RuleGroupName"]: g for g in dump[RULE_GROUPS]}
    assert groups["from-file"]["RuleGroup"] == {"RulesSource": {"RulesString": EXTRA_RULES}}
    allow = groups["egress-allow"]
    assert allow["RuleGroup"]["RuleVariables"] == {"IPSets": {"WEB": {"Definition": ["203.0.113.0/24"]}}}
    assert allow["RuleGroup"]["RulesSource"]["RulesString"].startswith("# updates only\npass tls $HOME_NET any")
    assert (allow["RuleGroupResponse"]["Type"], allow["RuleGroupResponse"]["Capacity"]) == ("STATEFUL", 100)
    assert dump["describe-logging-configuration"] == {
        "FirewallArn": arn + "firewall/egress-firewall", "LoggingConfiguration": {"LogDestinationConfigs": [
            {"LogType": "ALERT", "LogDestinationType": "CloudWatchLogs",
             "LogDestination": {"logGroup": "/staging/alert"}}]}}


@needs_terraform
def test_the_plans_dump_imports_as_a_lab(dump):
    account = pytest.importorskip("lab.aws.account")
    imported = account.import_dump(copy.deepcopy(dump), "plan.json")
    topo = parse_topology(imported.topology, "imported")
    assert {s.name for s in topo.vpc.servers} == {"app-1", "spare"}
    assert sorted(str(e.ip) for e in topo.vpc.endpoints) == ["10.20.2.20", "10.20.2.4"]
    assert len(topo.route_tables.tables) == 6


# --------------------------------------------------------------------------
# What a plan can't tell
# --------------------------------------------------------------------------
def config_resource(plan: dict, address: str) -> dict:
    return next(r for r in plan["configuration"]["root_module"]["resources"] if r["address"] == address)


@needs_terraform
def test_a_dynamic_subnet_mapping_is_named(plan):
    changed = copy.deepcopy(plan)
    del config_resource(changed, "aws_networkfirewall_firewall.main")["expressions"]["subnet_mapping"]
    with pytest.raises(ConfigError, match=r"aws_networkfirewall_firewall\.main: subnet_mapping: the plan does "
                                          "not tell which subnets") as e:
        dump_from_terraform(changed, "plan.json")
    assert "one subnet_mapping block per subnet" in e.value.hint


@needs_terraform
def test_a_route_to_the_firewall_that_names_no_zone_is_refused_with_two_endpoints(plan):
    changed = copy.deepcopy(plan)
    expression = config_resource(changed, "aws_route.edge_a")["expressions"]["vpc_endpoint_id"]
    expression["references"] = ["aws_networkfirewall_firewall.main.firewall_status[0].sync_states",
                                "aws_networkfirewall_firewall.main"]
    with pytest.raises(ConfigError, match=r"aws_route\.edge_a: vpc_endpoint_id: firewall "
                                          r"aws_networkfirewall_firewall\.main has endpoints in eu-west-1a, "
                                          "eu-west-1b") as e:
        dump_from_terraform(changed, "plan.json")
    assert 'local.endpoints["eu-west-1a"]' in e.value.hint


@needs_terraform
def test_an_inline_route_table_naming_two_zones_is_refused(plan):
    changed = copy.deepcopy(plan)
    expression = config_resource(changed, "aws_route_table.private")["expressions"]["route"]
    expression["references"] = ['local.endpoints["eu-west-1a"]', 'local.endpoints["eu-west-1b"]', "local.endpoints"]
    with pytest.raises(ConfigError, match=r"aws_route_table\.private: route \(0\.0\.0\.0/0\)\.vpc_endpoint_id: the "
                                          "expression names endpoints in eu-west-1a, eu-west-1b"):
        dump_from_terraform(changed, "plan.json")


@needs_terraform
def test_a_subnet_without_a_zone_is_refused(plan):
    changed = copy.deepcopy(plan)
    subnet = next(r for r in changed["planned_values"]["root_module"]["resources"]
                  if r["address"] == 'aws_subnet.public["a"]')
    del subnet["values"]["availability_zone"]
    with pytest.raises(ConfigError, match=r'aws_subnet\.public\["a"\]: availability_zone: is unknown in the plan'):
        dump_from_terraform(changed, "plan.json")


@needs_terraform
def test_a_module_without_its_vpc_is_refused(plan):
    with pytest.raises(ConfigError, match=r"module\.app\.aws_subnet\.private: vpc_id: the plan does not tell which "
                                          "VPC"):
        dump_from_terraform(plan, "plan.json", module="module.app")


# --------------------------------------------------------------------------
# A state (hand-written: `terraform apply` would need AWS)
# --------------------------------------------------------------------------
ACCOUNT, REGION = "210987654321", "eu-central-1"
ARN = f"arn:aws:network-firewall:{REGION}:{ACCOUNT}:"


def resource(address: str, values: dict) -> dict:
    rtype, name = address.split(".")[:2]
    return {"address": address, "mode": "managed", "type": rtype, "name": name.split("[")[0], "values": values}


def route(**target: str) -> dict:
    keys = ("carrier_gateway_id", "core_network_arn", "destination_prefix_list_id", "egress_only_gateway_id",
            "gateway_id", "ipv6_cidr_block", "local_gateway_id", "nat_gateway_id", "network_interface_id",
            "transit_gateway_id", "vpc_endpoint_id", "vpc_peering_connection_id")
    return {k: target.get(k, "") for k in keys} | {"cidr_block": target["cidr_block"]}


def state() -> dict:
    return {"format_version": "1.0", "terraform_version": "1.11.4", "values": {"root_module": {"resources": [
        resource("aws_vpc.main", {"id": "vpc-0a1b2c3d4e5f60777", "cidr_block": "10.30.0.0/16",
                                  "arn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-0a1b2c3d4e5f60777",
                                  "owner_id": ACCOUNT, "default_route_table_id": "rtb-0a1b2c3d4e5f60700",
                                  "tags": {"Name": "prod"}}),
        resource("aws_subnet.public", {"id": "subnet-0a1b2c3d4e5f60701", "vpc_id": "vpc-0a1b2c3d4e5f60777",
                                       "cidr_block": "10.30.0.0/24", "availability_zone": "eu-central-1a"}),
        resource("aws_subnet.firewall", {"id": "subnet-0a1b2c3d4e5f60702", "vpc_id": "vpc-0a1b2c3d4e5f60777",
                                         "cidr_block": "10.30.1.0/28", "availability_zone": "eu-central-1a"}),
        resource("aws_subnet.private", {"id": "subnet-0a1b2c3d4e5f60703", "vpc_id": "vpc-0a1b2c3d4e5f60777",
                                        "cidr_block": "10.30.8.0/24", "availability_zone": "eu-central-1a"}),
        resource("aws_internet_gateway.igw", {"id": "igw-0a1b2c3d4e5f60704", "vpc_id": "vpc-0a1b2c3d4e5f60777"}),
        resource("aws_eip.nat", {"id": "eipalloc-0a1b2c3d4e5f60705", "public_ip": "203.0.113.7", "domain": "vpc"}),
        resource("aws_nat_gateway.nat", {"id": "nat-0a1b2c3d4e5f60706", "subnet_id": "subnet-0a1b2c3d4e5f60701",
                                         "allocation_id": "eipalloc-0a1b2c3d4e5f60705", "private_ip": "10.30.0.9",
                                         "public_ip": "203.0.113.7", "network_interface_id": "eni-0a1b2c3d4e5f60707",
                                         "association_id": "eipassoc-0a1b2c3d4e5f60708",
                                         "connectivity_type": "public"}),
        resource("aws_instance.web", {"id": "i-0a1b2c3d4e5f60709", "subnet_id": "subnet-0a1b2c3d4e5f60703",
                                      "private_ip": "10.30.8.40", "ami": "ami-0a1b2c3d4e5f60710",
                                      "instance_type": "t3.micro",
                                      "primary_network_interface_id": "eni-0a1b2c3d4e5f60711"}),
        resource("aws_networkfirewall_rule_group.deny", {
            "id": ARN + "stateful-rulegroup/deny", "arn": ARN + "stateful-rulegroup/deny", "name": "deny",
            "type": "STATEFUL", "capacity": 100, "rules": None, "rule_group": [{
                "rules_source": [{"rules_string": None, "stateful_rule": [], "stateless_rules_and_custom_actions": [],
                                  "rules_source_list": [{"generated_rules_type": "DENYLIST",
                                                         "target_types": ["TLS_SNI"],
                                                         "targets": ["blocked.example"]}]}],
                "rule_variables": [], "reference_sets": [], "stateful_rule_options": []}]}),
        resource("aws_networkfirewall_firewall_policy.main", {
            "id": ARN + "firewall-policy/main", "arn": ARN + "firewall-policy/main", "name": "main",
            "firewall_policy": [{"stateless_default_actions": ["aws:forward_to_sfe"],
                                 "stateless_fragment_default_actions": ["aws:forward_to_sfe"],
                                 "stateful_rule_group_reference": [{"resource_arn": ARN + "stateful-rulegroup/deny",
                                                                    "priority": None, "override": []}]}]}),
        resource("aws_networkfirewall_firewall.main", {
            "id": ARN + "firewall/main", "arn": ARN + "firewall/main", "name": "main",
            "vpc_id": "vpc-0a1b2c3d4e5f60777", "firewall_policy_arn": ARN + "firewall-policy/main",
            "subnet_mapping": [{"subnet_id": "subnet-0a1b2c3d4e5f60702", "ip_address_type": "IPV4"}],
            "firewall_status": [{"sync_states": [{"availability_zone": "eu-central-1a", "attachment": [
                {"endpoint_id": "vpce-0a1b2c3d4e5f60712", "subnet_id": "subnet-0a1b2c3d4e5f60702"}]}]}]}),
        resource("aws_route_table.private", {
            "id": "rtb-0a1b2c3d4e5f60713", "vpc_id": "vpc-0a1b2c3d4e5f60777",
            "route": [route(cidr_block="0.0.0.0/0", vpc_endpoint_id="vpce-0a1b2c3d4e5f60712")]}),
        resource("aws_route_table.firewall", {
            "id": "rtb-0a1b2c3d4e5f60714", "vpc_id": "vpc-0a1b2c3d4e5f60777",
            "route": [route(cidr_block="0.0.0.0/0", nat_gateway_id="nat-0a1b2c3d4e5f60706"),
                      route(cidr_block="10.40.0.0/16", transit_gateway_id="tgw-0a1b2c3d4e5f60799")]}),
        resource("aws_route_table_association.private", {"id": "rtbassoc-0a1b2c3d4e5f60715",
                                                         "subnet_id": "subnet-0a1b2c3d4e5f60703",
                                                         "route_table_id": "rtb-0a1b2c3d4e5f60713",
                                                         "gateway_id": None}),
        resource("aws_route_table_association.firewall", {"id": "rtbassoc-0a1b2c3d4e5f60716",
                                                          "subnet_id": "subnet-0a1b2c3d4e5f60702",
                                                          "route_table_id": "rtb-0a1b2c3d4e5f60714",
                                                          "gateway_id": None}),
    ]}}}


def test_a_state_keeps_every_id_and_address():
    dump = dump_from_terraform(state(), "terraform.tfstate.json")
    [vpc] = dump["describe-vpcs"]["Vpcs"]
    assert (vpc["VpcId"], vpc["OwnerId"]) == ("vpc-0a1b2c3d4e5f60777", ACCOUNT)  # the account from the ARNs
    [nat] = dump["describe-nat-gateways"]["NatGateways"]
    assert nat["NatGatewayAddresses"][0] == {
        "AllocationId": "eipalloc-0a1b2c3d4e5f60705", "NetworkInterfaceId": "eni-0a1b2c3d4e5f60707",
        "PrivateIp": "10.30.0.9", "PublicIp": "203.0.113.7", "AssociationId": "eipassoc-0a1b2c3d4e5f60708",
        "IsPrimary": True, "Status": "succeeded"}
    [reservation] = dump["describe-instances"]["Reservations"]
    assert (reservation["Instances"][0]["InstanceId"], reservation["Instances"][0]["PrivateIpAddress"],
            reservation["Instances"][0]["ImageId"]) == ("i-0a1b2c3d4e5f60709", "10.30.8.40", "ami-0a1b2c3d4e5f60710")
    fw = dump["describe-firewall"]
    assert fw["FirewallStatus"]["SyncStates"]["eu-central-1a"]["Attachment"] == {
        "SubnetId": "subnet-0a1b2c3d4e5f60702", "EndpointId": "vpce-0a1b2c3d4e5f60712", "Status": "READY"}
    tables = {t["RouteTableId"]: t for t in dump["describe-route-tables"]["RouteTables"]}
    assert tables["rtb-0a1b2c3d4e5f60713"]["Routes"][1]["VpcEndpointId"] == "vpce-0a1b2c3d4e5f60712"
    assert tables["rtb-0a1b2c3d4e5f60714"]["Routes"][2]["TransitGatewayId"] == "tgw-0a1b2c3d4e5f60799"
    # the VPC's main route table, which the state does not manage, is there as on AWS
    assert tables["rtb-0a1b2c3d4e5f60700"]["Associations"][0]["Main"] is True
    assert dump["describe-firewall-policy"]["FirewallPolicy"]["StatefulRuleGroupReferences"] == [
        {"ResourceArn": ARN + "stateful-rulegroup/deny"}]
    assert dump[RULE_GROUPS][0]["RuleGroup"]["RulesSource"] == {"RulesSourceList": {
        "Targets": ["blocked.example"], "TargetTypes": ["TLS_SNI"], "GeneratedRulesType": "DENYLIST"}}
    enis = {e["InterfaceType"]: e for e in dump["describe-network-interfaces"]["NetworkInterfaces"]}
    assert enis["gateway_load_balancer_endpoint"]["PrivateIpAddress"] == "10.30.1.4"


def test_a_state_without_names_gets_its_resource_names():
    dump = dump_from_terraform(state(), "terraform.tfstate.json")
    assert sorted(named(dump["describe-subnets"]["Subnets"])) == ["firewall", "private", "public"]
    assert "web" in named([i for r in dump["describe-instances"]["Reservations"] for i in r["Instances"]])


def test_what_is_not_terraform_output_is_refused():
    with pytest.raises(ConfigError, match="neither a plan"):
        dump_from_terraform({"format_version": "1.0"}, "x.json")
    with pytest.raises(ConfigError, match="no resources in module.nowhere"):
        dump_from_terraform(state(), "x.json", module="module.nowhere")


def test_two_firewalls_are_refused():
    doc = state()
    resources = doc["values"]["root_module"]["resources"]
    second = copy.deepcopy(next(r for r in resources if r["type"] == "aws_networkfirewall_firewall"))
    second["address"], second["name"] = "aws_networkfirewall_firewall.other", "other"
    second["values"].update({"id": ARN + "firewall/other", "arn": ARN + "firewall/other", "name": "other"})
    resources.append(second)
    with pytest.raises(ConfigError, match="2 firewalls"):
        dump_from_terraform(doc, "x.json")


def test_a_subnet_of_another_vpc_is_refused():
    doc = state()
    subnet = next(r for r in doc["values"]["root_module"]["resources"] if r["address"] == "aws_subnet.private")
    subnet["values"]["vpc_id"] = "vpc-0fffffffffffffff0"
    with pytest.raises(ConfigError, match=r"aws_subnet\.private: vpc_id: vpc-0fffffffffffffff0 is not a VPC of this "
                                          "configuration"):
        dump_from_terraform(doc, "x.json")


def test_a_managed_rule_group_is_refused():
    doc = state()
    policy = next(r for r in doc["values"]["root_module"]["resources"] if r["type"].endswith("firewall_policy"))
    policy["values"]["firewall_policy"][0]["stateful_rule_group_reference"][0]["resource_arn"] = (
        f"arn:aws:network-firewall:{REGION}:aws-managed:stateful-rulegroup/ThreatSignaturesBotnetActionOrder")
    with pytest.raises(ConfigError, match="is not a rule group of this configuration"):
        dump_from_terraform(doc, "x.json")


def test_nfwlab_import_reads_terraform_from_a_file_and_from_standard_input(tmp_path, monkeypatch, capsys):
    import io

    from lab.cli import main
    from lab.model import load_topology
    # the state with an Elastic IP outside the lab's internet block (203.0.113.0/24), so it runs as a lab
    text = json.dumps(state()).replace("203.0.113.7", "198.51.100.7")
    shown = tmp_path / "state.json"
    shown.write_text(text)
    assert main(["import", "--terraform", str(shown), "--out", str(tmp_path / "a"), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert Path(written["topology"]).name == "state.yaml"
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert main(["import", "--terraform", "-", "--out", str(tmp_path / "b"), "--json"]) == 0
    assert Path(json.loads(capsys.readouterr().out)["topology"]).name == "terraform.yaml"
    from_file = load_topology(tmp_path / "a" / "state.yaml")
    from_stdin = load_topology(tmp_path / "b" / "terraform.yaml")
    assert from_file.vpc == from_stdin.vpc and from_file.route_tables.tables == from_stdin.route_tables.tables
    (tmp_path / "broken.json").write_text("{")
    assert main(["import", "--terraform", str(tmp_path / "broken.json"), "--out", str(tmp_path / "c")]) == 2
    assert "broken.json: not valid JSON" in capsys.readouterr().err
