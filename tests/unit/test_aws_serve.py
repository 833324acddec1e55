"""`nfwlab serve` without Docker: the real endpoint (moto's EC2 and STS, the lab's Network Firewall API, the
reconciler) with a recording stand-in for the lab, driven by boto3, the AWS CLI and Terraform. The real lab's
side (containers, packets, alerts) is tests/integration/test_aws_endpoint.py."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from aws_support import ROOT, aws_cli, example_copy, free_port, targets, terraform, terraform_env
from aws_support import settled as settled_at
from botocore.exceptions import ClientError

from lab.aws.serve import STATUS_PATH, Service
from lab.errors import ConfigError
from lab.model import load_topology
from lab.nextgen import load_any_policy

REGION = "ap-northeast-1"


class RecordingLab:
    """Stands in for lab.Lab: loads what the reconciler writes, as the lab would, and records each step."""

    def __init__(self, steps: list[tuple[str, Any]], name: str, topology: Path, policy_file: Path):
        self.steps, self.name = steps, name
        self.topology = load_topology(topology)
        self.policy = load_any_policy(policy_file)
        self.policy_kind = self.policy.kind
        self.refuse: str | None = None

    @property
    def vpc(self) -> Any:
        return self.topology.vpc

    def up(self) -> float:
        self.steps.append(("up", self.topology))
        return 0.0

    def switch(self, path: Path) -> float:
        self.topology = load_topology(path)
        self.steps.append(("switch", self.topology))
        return 0.0

    def apply_policy(self, path: Path) -> None:
        self.policy = load_any_policy(path)
        self.steps.append(("apply_policy", self.policy))

    def check_policy(self, policy: Any) -> None:
        self.steps.append(("check_policy", policy))
        for group in getattr(policy, "groups", ()):
            for rule in group.group.rules:
                if "engine-refuses" in rule.text:
                    raise ConfigError(f"rule group {group.group.name}: {rule.where}: Suricata refused "
                                      f"{rule.text}")

    def down(self) -> None:
        self.steps.append(("down", None))


@pytest.fixture
def service(tmp_path: Path) -> Any:
    steps: list[tuple[str, Any]] = []
    svc = Service("unit", free_port(), workdir=tmp_path / "serve", settle=0.3,
                  lab_factory=lambda name, topology, policy_file: RecordingLab(steps, name, topology, policy_file),
                  log=lambda line: None)
    svc.start()
    svc.steps = steps  # type: ignore[attr-defined]
    yield svc
    svc.stop()


def settled(svc: Service, timeout: float = 30.0) -> dict[str, Any]:
    return settled_at(svc.url, timeout)


def client(svc: Service, service_name: str) -> Any:
    return boto3.client(service_name, endpoint_url=svc.url, region_name=REGION, aws_access_key_id="test",
                        aws_secret_access_key="test")


# ------------------------------------------------------------------ who may call
def test_a_forged_host_is_refused(service: Service) -> None:
    """DNS rebinding: a page on evil.example resolved to 127.0.0.1 sends its own name as Host."""
    port = service.port
    answer = requests.get(service.url + STATUS_PATH, headers={"Host": f"evil.example:{port}"}, timeout=5)
    assert answer.status_code == 403 and "not this endpoint" in answer.json()["message"]
    assert requests.get(service.url + STATUS_PATH, timeout=5).status_code == 200


def test_a_cross_origin_request_is_refused(service: Service) -> None:
    """A browser sends Origin with every cross-origin POST; AWS SDKs and Terraform never do."""
    answer = requests.post(service.url + "/", data='{"RuleGroupName": "x"}',
                           headers={"Origin": "http://127.0.0.1:8000", "Content-Type": "text/plain",
                                    "X-Amz-Target": "NetworkFirewall_20201112.ListRuleGroups"}, timeout=5)
    assert answer.status_code == 403
    assert "access-control-allow-origin" not in {k.lower() for k in answer.headers}


def test_moto_s_own_api_is_not_served(service: Service) -> None:
    assert requests.post(service.url + "/moto-api/reset", timeout=5).status_code == 404


# ------------------------------------------------------------ EC2, STS, Network Firewall
def test_public_addresses_come_from_documentation_ranges(service: Service) -> None:
    ec2 = client(service, "ec2")
    made = [ec2.allocate_address(Domain="vpc")["PublicIp"] for _ in range(3)]
    assert len(set(made)) == 3 and all(a.startswith("198.51.100.") for a in made)
    assert ec2.allocate_address(Domain="vpc", Address="198.51.100.10")["PublicIp"] == "198.51.100.10"


def test_caller_identity(service: Service) -> None:
    assert client(service, "sts").get_caller_identity()["Account"] == "123456789012"


def _vpc_with_firewall(svc: Service) -> dict[str, str]:
    """A minimal complete VPC made with boto3: a server, a NAT gateway, a firewall, the write-up's
    nat-first routes."""
    ec2, nfw = client(svc, "ec2"), client(svc, "network-firewall")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    az = f"{REGION}a"
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/20", AvailabilityZone=az)["Subnet"]["SubnetId"]
    fw_subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.16.0/28", AvailabilityZone=az)["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.128.0/20", AvailabilityZone=az)["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    eip = ec2.allocate_address(Domain="vpc", Address="198.51.100.10")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=eip)["NatGateway"]["NatGatewayId"]
    ec2.run_instances(ImageId="ami-0123456789abcdef0", MinCount=1, MaxCount=1, SubnetId=private,
                      PrivateIpAddress="10.0.136.108")
    group = nfw.create_rule_group(RuleGroupName="deny", Type="STATEFUL", Capacity=100, RuleGroup={
        "RulesSource": {"RulesSourceList": {"Targets": ["blocked.example"], "TargetTypes": ["TLS_SNI"],
                                            "GeneratedRulesType": "DENYLIST"}}})["RuleGroupResponse"]
    policy = nfw.create_firewall_policy(FirewallPolicyName="policy", FirewallPolicy={
        "StatelessDefaultActions": ["aws:forward_to_sfe"], "StatelessFragmentDefaultActions": ["aws:forward_to_sfe"],
        "StatefulRuleGroupReferences": [{"ResourceArn": group["RuleGroupArn"]}]})["FirewallPolicyResponse"]
    firewall = nfw.create_firewall(FirewallName="fw", FirewallPolicyArn=policy["FirewallPolicyArn"], VpcId=vpc,
                                   SubnetMappings=[{"SubnetId": fw_subnet}])
    endpoint = next(iter(firewall["FirewallStatus"]["SyncStates"].values()))["Attachment"]["EndpointId"]
    for subnet, target in ((private, {"NatGatewayId": nat}), (public, {"VpcEndpointId": endpoint}),
                           (fw_subnet, {"GatewayId": igw})):
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", **target)
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    edge = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=edge, DestinationCidrBlock="10.0.0.0/20", VpcEndpointId=endpoint)
    ec2.associate_route_table(RouteTableId=edge, GatewayId=igw)
    return {"vpc": vpc, "endpoint": endpoint, "group": group["RuleGroupArn"], "igw": igw, "private": private}


def test_a_complete_vpc_brings_the_lab_up_once(service: Service) -> None:
    made = _vpc_with_firewall(service)
    status = settled(service)
    assert status["state"] == "up", status
    ups = [s for kind, s in service.steps if kind == "up"]  # type: ignore[attr-defined]
    assert len(ups) == 1
    topology = ups[0]
    assert [str(s.ip) for s in topology.vpc.servers] == ["10.0.136.108"]
    assert [str(n.elastic_ip) for n in topology.vpc.nat_gateways] == ["198.51.100.10"]
    assert [e.id for e in topology.vpc.endpoints] == [made["endpoint"]]
    edge = [t for t in topology.route_tables.tables if t.is_edge(topology.vpc)]
    assert len(edge) == 1 and [str(r.destination) for r in edge[0].routes if r.target != "local"] == ["10.0.0.0/20"]


def test_a_route_moved_to_the_endpoint_and_back_keeps_one_target(service: Service) -> None:
    """EC2's ReplaceRoute takes VpcEndpointId like any target (moto 5.2 ignores it; lab/aws/moto_fixes.py)."""
    made = _vpc_with_firewall(service)
    ec2 = client(service, "ec2")
    table = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [made["private"]]}])
    table_id = table["RouteTables"][0]["RouteTableId"]

    def default_route() -> dict[str, Any]:
        tables = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]["Routes"]
        return next(r for r in tables if r["DestinationCidrBlock"] == "0.0.0.0/0")
    ec2.replace_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", VpcEndpointId=made["endpoint"])
    assert default_route().get("GatewayId") == made["endpoint"] and "NatGatewayId" not in default_route()
    ec2.replace_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=made["igw"])
    assert default_route().get("GatewayId") == made["igw"]
    with pytest.raises(ClientError):
        ec2.replace_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", VpcEndpointId="vpce-0123456789abcdef0")


def test_a_rule_group_update_the_engine_refuses_fails_and_changes_nothing(service: Service) -> None:
    made = _vpc_with_firewall(service)
    settled(service)
    nfw = client(service, "network-firewall")
    described = nfw.describe_rule_group(RuleGroupArn=made["group"])
    bad = {"RulesSource": {"RulesString": 'drop tls any any -> any any (msg:"engine-refuses"; sid:7; rev:1;)'}}
    with pytest.raises(ClientError) as refused:
        nfw.update_rule_group(RuleGroupArn=made["group"], UpdateToken=described["UpdateToken"], RuleGroup=bad)
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidRequestException" and "sid:7" in error["Message"]
    assert "rule group deny" in error["Message"]
    after = nfw.describe_rule_group(RuleGroupArn=made["group"])
    assert after["UpdateToken"] == described["UpdateToken"] and after["RuleGroup"] == described["RuleGroup"]
    # The lab's own parser refuses before the engine is asked: a rule the lab can't read names itself.
    with pytest.raises(ClientError) as unreadable:
        nfw.update_rule_group(RuleGroupArn=made["group"], UpdateToken=described["UpdateToken"],
                              RuleGroup={"RulesSource": {"RulesString": "drop tls any any -> any any (sid:8;"}})
    assert unreadable.value.response["Error"]["Code"] == "InvalidRequestException"
    assert not [s for kind, s in service.steps if kind == "apply_policy"]  # type: ignore[attr-defined]


def test_a_rule_group_update_is_applied_live(service: Service) -> None:
    made = _vpc_with_firewall(service)
    settled(service)
    nfw = client(service, "network-firewall")
    token = nfw.describe_rule_group(RuleGroupArn=made["group"])["UpdateToken"]
    nfw.update_rule_group(RuleGroupArn=made["group"], UpdateToken=token, RuleGroup={
        "RulesSource": {"RulesSourceList": {"Targets": ["blocked.example", "example.test"],
                                            "TargetTypes": ["TLS_SNI"], "GeneratedRulesType": "DENYLIST"}}})
    status = settled(service)
    applied = [p for kind, p in service.steps if kind == "apply_policy"]  # type: ignore[attr-defined]
    assert len(applied) == 1 and "policy applied live" in " ".join(status["actions"])
    assert [kind for kind, _ in service.steps].count("up") == 1  # type: ignore[attr-defined]


def test_deleting_the_firewall_takes_the_lab_down(service: Service) -> None:
    _vpc_with_firewall(service)
    settled(service)
    nfw = client(service, "network-firewall")
    nfw.delete_firewall(FirewallName="fw")
    status = settled(service)
    assert status["state"] == "waiting" and [k for k, _ in service.steps][-1] == "down"  # type: ignore[attr-defined]


def test_a_second_firewall_is_refused(service: Service) -> None:
    made = _vpc_with_firewall(service)
    nfw = client(service, "network-firewall")
    policy = nfw.describe_firewall(FirewallName="fw")["Firewall"]["FirewallPolicyArn"]
    ec2 = client(service, "ec2")
    subnet = ec2.create_subnet(VpcId=made["vpc"], CidrBlock="10.0.17.0/28",
                               AvailabilityZone=f"{REGION}c")["Subnet"]["SubnetId"]
    with pytest.raises(ClientError) as refused:
        nfw.create_firewall(FirewallName="fw2", FirewallPolicyArn=policy, VpcId=made["vpc"],
                            SubnetMappings=[{"SubnetId": subnet}])
    assert "one firewall" in refused.value.response["Error"]["Message"]


# ------------------------------------------------------------------ Terraform
def test_terraform_example_builds_both_designs_and_destroys(service: Service, tmp_path: Path) -> None:
    env, work = terraform_env(tmp_path), example_copy(tmp_path)
    url = f"-var=endpoint={service.url}"
    terraform(work, env, "init", "-input=false")
    terraform(work, env, "apply", "-auto-approve", "-input=false", url)
    settled(service)
    steps = service.steps  # type: ignore[attr-defined]
    ups = [t for kind, t in steps if kind == "up"]
    assert len(ups) == 1, [k for k, _ in steps]
    running = ups[0]
    assert targets(running) == targets(load_topology(ROOT / "topologies" / "nat-first.yaml"))
    assert {str(s.ip) for s in running.vpc.servers} == {"10.0.136.108", "10.0.140.23"}

    terraform(work, env, "apply", "-auto-approve", "-input=false", url, "-var=design=firewall-first")
    status = settled(service)
    kinds = [k for k, _ in steps]
    assert kinds.count("up") == 1 and "down" not in kinds and "switch" in kinds, (kinds, status)
    switched = [t for kind, t in steps if kind == "switch"][-1]
    assert targets(switched) == targets(load_topology(ROOT / "topologies" / "firewall-first.yaml"))

    terraform(work, env, "destroy", "-auto-approve", "-input=false", url)
    status = settled(service)
    assert [k for k, _ in steps][-1] == "down" and status["state"] == "waiting"
    ec2 = client(service, "ec2")
    assert not [v for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")]
    assert client(service, "network-firewall").list_firewalls()["Firewalls"] == []


def test_the_aws_cli_builds_a_firewall_on_the_endpoint(service: Service) -> None:
    """The AWS CLI as users run it against the endpoint: EC2 and STS through moto, Network Firewall the lab's,
    AWS's error codes in its output."""
    import json
    aws = aws_cli(service.url, REGION)

    def cli(*args: str, ok: bool = True) -> Any:
        done = aws(*args)
        if not ok:
            assert done.returncode != 0
            return done.stderr
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout or "{}")
    assert cli("sts", "get-caller-identity")["Account"] == "123456789012"
    vpc = cli("ec2", "create-vpc", "--cidr-block", "10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = cli("ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", "10.0.16.0/28", "--availability-zone",
                 f"{REGION}a")["Subnet"]["SubnetId"]
    group = cli("network-firewall", "create-rule-group", "--rule-group-name", "deny", "--type", "STATEFUL",
                "--capacity", "10", "--rules", 'drop tls $HOME_NET any -> $EXTERNAL_NET 443 (tls.sni; '
                'content:"blocked.example"; msg:"deny"; sid:1; rev:1;)')["RuleGroupResponse"]["RuleGroupArn"]
    policy = cli("network-firewall", "create-firewall-policy", "--firewall-policy-name", "p", "--firewall-policy",
                 json.dumps({"StatelessDefaultActions": ["aws:forward_to_sfe"],
                             "StatelessFragmentDefaultActions": ["aws:forward_to_sfe"],
                             "StatefulRuleGroupReferences": [{"ResourceArn": group}]}))
    arn = policy["FirewallPolicyResponse"]["FirewallPolicyArn"]
    made = cli("network-firewall", "create-firewall", "--firewall-name", "fw", "--firewall-policy-arn", arn,
               "--vpc-id", vpc, "--subnet-mappings", f"SubnetId={subnet}")
    endpoint = made["FirewallStatus"]["SyncStates"][f"{REGION}a"]["Attachment"]["EndpointId"]
    # EC2 sees the endpoint as AWS shows a firewall's: a Gateway Load Balancer endpoint, so routes can target it.
    endpoints = cli("ec2", "describe-vpc-endpoints", "--vpc-endpoint-ids", endpoint)["VpcEndpoints"]
    assert [e["VpcEndpointType"] for e in endpoints] == ["GatewayLoadBalancer"]
    described = cli("network-firewall", "describe-firewall", "--firewall-name", "fw")
    assert described["FirewallStatus"]["Status"] == "READY"
    cli("network-firewall", "update-firewall-description", "--firewall-name", "fw", "--description", "new",
        "--update-token", described["UpdateToken"])
    stale = cli("network-firewall", "update-firewall-description", "--firewall-name", "fw", "--description", "again",
                "--update-token", described["UpdateToken"], ok=False)
    assert "InvalidTokenException" in stale
    in_use = cli("network-firewall", "delete-firewall-policy", "--firewall-policy-arn", arn, ok=False)
    assert "InvalidOperationException" in in_use
    bad = cli("network-firewall", "create-rule-group", "--rule-group-name", "bad", "--type", "STATEFUL",
              "--capacity", "10", "--rules", "drop tls any any -> any 443 (sid:2;", ok=False)
    assert "InvalidRequestException" in bad and "rule group bad" in bad
    cli("network-firewall", "delete-firewall", "--firewall-name", "fw")
    assert cli("network-firewall", "list-firewalls")["Firewalls"] == []
    assert cli("ec2", "describe-vpc-endpoints")["VpcEndpoints"] == []


def test_status_answers_while_the_lab_comes_up(tmp_path: Path) -> None:
    import threading
    steps: list[tuple[str, Any]] = []
    coming_up, release = threading.Event(), threading.Event()

    class SlowLab(RecordingLab):
        def up(self) -> float:
            coming_up.set()
            release.wait(30)
            return super().up()
    svc = Service("unit", free_port(), workdir=tmp_path / "serve", settle=0.2,
                  lab_factory=lambda name, topology, policy_file: SlowLab(steps, name, topology, policy_file),
                  log=lambda line: None)
    svc.start()
    try:
        _vpc_with_firewall(svc)
        assert coming_up.wait(30)
        status = requests.get(svc.url + STATUS_PATH, timeout=2).json()
        assert not status["settled"] and status["state"] == "waiting"
        release.set()
        assert settled(svc)["state"] == "up"
    finally:
        release.set()
        svc.stop()


def test_a_next_generation_policy_is_checked_with_both_sections_groups() -> None:
    """The lab's one-file form of a V2 policy carries the groups of its firewall section and of its IPS section."""
    from lab.aws.reconcile import policy_document
    from lab.nextgen import parse_any_policy

    def group(name: str, kind: str, rules: str) -> dict[str, Any]:
        return {"RuleGroupResponse": {"RuleGroupName": name, "Type": kind, "Capacity": 10,
                                      "RuleGroupArn": f"arn:aws:network-firewall:{REGION}:123456789012:"
                                                      f"stateful-rulegroup/{name}"},
                "RuleGroup": {"RulesSource": {"RulesString": rules}}, "UpdateToken": "t"}
    ips = group("ips", "STATEFUL", 'alert tls $HOME_NET any -> any any (tls.sni; content:"x.example"; '
                'msg:"seen"; sid:9; rev:1;)')
    described = {"UpdateToken": "t", "FirewallPolicyV2Response": {"FirewallPolicyV2Name": "ng"},
                 "FirewallPolicyV2": {"FirewallDefaultAction": "ACCEPT", "PolicyMode": "ENFORCE",
                                      "IpsRuleGroupEntries": [{"ResourceArn": ips["RuleGroupResponse"]["RuleGroupArn"]}]}}
    doc = policy_document({"rule_groups": [ips]}, described)
    assert [g["RuleGroupResponse"]["RuleGroupName"] for g in doc["RuleGroups"]] == ["ips"]
    assert "UpdateToken" not in doc and all("UpdateToken" not in g for g in doc["RuleGroups"])
    assert parse_any_policy(doc, "ng").kind == "next-generation"
