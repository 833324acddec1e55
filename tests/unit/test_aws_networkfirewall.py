"""The lab's Network Firewall API (lab/aws/networkfirewall.py) through real boto3 clients and the AWS CLI, served
by the endpoint `nfwlab serve` runs (lab/aws/serve.py) on 127.0.0.1, with no moto behind it (no Docker). The call sequences of the Terraform AWS provider
(v5.100) are replayed where it matters: its waiters, its UpdateToken chaining, its logging configuration steps."""
from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import boto3
import pytest
from aws_support import aws_cli
from botocore.config import Config
from botocore.exceptions import ClientError
from werkzeug.serving import make_server

from lab.aws import shapes
from lab.aws.networkfirewall import AwsError, NetworkFirewallApi, service_model
from lab.aws.serve import Endpoint as ServeEndpoint

REGION = "ap-northeast-1"
ZONES = {"subnet-0a01": "ap-northeast-1a", "subnet-0a02": "ap-northeast-1a", "subnet-0c01": "ap-northeast-1c",
         "subnet-0d01": "ap-northeast-1d"}
VPC = "vpc-0abc"
CREDENTIAL = re.compile(r"Credential=[^/,]+/\d{8}/([^/,]+)/network-firewall/aws4_request")
UUID = re.compile(r"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$")
OPEN = ["aws:forward_to_sfe"]
Endpoint = Callable[..., tuple[NetworkFirewallApi, Any]]


def subnet_zone(region: str, subnet: str) -> str | None:
    return ZONES.get(subnet) if region == REGION else None


class ShapeChecked:
    """The API as `nfwlab serve` calls it, with every answer also checked against the operation's output shape
    (member names and JSON types): a misspelt response field fails the test."""

    def __init__(self, api: NetworkFirewallApi):
        self.api = api

    def handle(self, operation: str, region: str, request: dict[str, Any]) -> dict[str, Any]:
        answer = self.api.handle(operation, region, request)
        wrong = [p for p in shapes.problems(service_model().operation_model(operation).output_shape, answer)
                 if "failed to satisfy constraint" not in p]
        if wrong:
            raise AwsError("InternalServerError", "; ".join(wrong), 500)
        return answer


def no_moto(environ: dict[str, Any], start: Any) -> list[bytes]:
    start("404 Not Found", [("Content-Type", "text/plain")])
    return [b"only Network Firewall is served in these tests"]


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    """endpoint(**NetworkFirewallApi arguments) -> (api, boto3 client in ap-northeast-1); `client.at(region)`
    gives a client for another region of the same endpoint. No AWS configuration of the machine is read."""
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    servers: list[Any] = []

    def start(**kwargs: Any) -> tuple[NetworkFirewallApi, Any]:
        kwargs.setdefault("subnet_zone", subnet_zone)
        api = NetworkFirewallApi(**kwargs)
        # The endpoint `nfwlab serve` runs (lab/aws/serve.py), on a port of its own; no moto behind it.
        server = make_server("127.0.0.1", 0, no_moto, threaded=True)
        server.app = ServeEndpoint(ShapeChecked(api), server.server_port, status=dict,  # type: ignore[arg-type]
                                   moto_app=no_moto)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        url = f"http://127.0.0.1:{server.server_port}"

        def client(region: str = REGION) -> Any:
            made = boto3.client("network-firewall", endpoint_url=url, region_name=region,
                                aws_access_key_id="test", aws_secret_access_key="test",
                                config=Config(retries={"max_attempts": 1}))
            made.at = client
            made.url = url
            return made
        return api, client()

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def code(e: pytest.ExceptionInfo[ClientError]) -> str:
    return str(e.value.response["Error"]["Code"])


def message(e: pytest.ExceptionInfo[ClientError]) -> str:
    return str(e.value.response["Error"]["Message"])


def refused(call: Callable[..., Any], **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as e:
        call(**kwargs)
    return code(e), message(e)


def stateful(client: Any, name: str, rules: str = "pass tcp any any -> any 443 (sid:1;)\n", **kw: Any) -> str:
    return str(client.create_rule_group(RuleGroupName=name, Type="STATEFUL", Capacity=kw.pop("Capacity", 10),
                                        Rules=rules, **kw)["RuleGroupResponse"]["RuleGroupArn"])


def stateless(client: Any, name: str) -> str:
    rule = {"Priority": 1, "RuleDefinition": {"Actions": ["aws:forward_to_sfe"], "MatchAttributes": {
        "Protocols": [6, 17], "Sources": [{"AddressDefinition": f"10.0.{i}.0/24"} for i in range(3)]}}}
    return str(client.create_rule_group(
        RuleGroupName=name, Type="STATELESS", Capacity=10,
        RuleGroup={"RulesSource": {"StatelessRulesAndCustomActions": {"StatelessRules": [rule]}}})[
        "RuleGroupResponse"]["RuleGroupArn"])


def policy(client: Any, name: str, stateful_arns: Sequence[str] = (), stateless_arns: Sequence[str] = (),
           **doc: Any) -> str:
    document = {"StatelessDefaultActions": OPEN, "StatelessFragmentDefaultActions": OPEN,
                "StatefulRuleGroupReferences": [{"ResourceArn": a} for a in stateful_arns],
                "StatelessRuleGroupReferences": [{"ResourceArn": a, "Priority": i + 1}
                                                 for i, a in enumerate(stateless_arns)], **doc}
    return str(client.create_firewall_policy(FirewallPolicyName=name, FirewallPolicy=document)[
        "FirewallPolicyResponse"]["FirewallPolicyArn"])


def firewall(client: Any, name: str, policy_arn: str, subnets: tuple[str, ...] = ("subnet-0a01", "subnet-0c01"),
             **kw: Any) -> str:
    return str(client.create_firewall(FirewallName=name, FirewallPolicyArn=policy_arn, VpcId=VPC,
                                      SubnetMappings=[{"SubnetId": s} for s in subnets], **kw)["Firewall"]["FirewallArn"])


# ---------------------------------------------------------------------- rule groups
def test_rule_group_create_describe_update_delete(endpoint: Endpoint) -> None:
    _, nfw = endpoint()
    created = nfw.create_rule_group(RuleGroupName="web", Type="STATEFUL", Capacity=10, Description="web",
                                    Rules="pass tcp any any -> any 80 (sid:1;)\n# note\ndrop tcp any any -> any any (sid:2;)\n")
    response = created["RuleGroupResponse"]
    arn = response["RuleGroupArn"]
    assert arn == "arn:aws:network-firewall:ap-northeast-1:123456789012:stateful-rulegroup/web"
    assert UUID.match(created["UpdateToken"]) and UUID.match(response["RuleGroupId"])
    assert (response["Type"], response["Capacity"], response["ConsumedCapacity"], response["RuleGroupStatus"],
            response["NumberOfAssociations"]) == ("STATEFUL", 10, 2, "ACTIVE", 0)
    assert response["EncryptionConfiguration"]["Type"] == "AWS_OWNED_KMS_KEY"

    described = nfw.describe_rule_group(RuleGroupArn=arn)  # what Terraform reads
    assert described["UpdateToken"] == created["UpdateToken"]
    assert described["RuleGroup"]["RulesSource"]["RulesString"].startswith("pass tcp any any -> any 80")
    assert described["RuleGroupResponse"]["RuleGroupArn"] == arn
    by_name = nfw.describe_rule_group(RuleGroupName="web", Type="STATEFUL")
    assert by_name["RuleGroupResponse"]["RuleGroupId"] == response["RuleGroupId"]

    updated = nfw.update_rule_group(RuleGroupArn=arn, Type="STATEFUL", UpdateToken=created["UpdateToken"],
                                    Rules="alert tcp any any -> any 22 (sid:3;)", Description="ssh",
                                    EncryptionConfiguration={"Type": "AWS_OWNED_KMS_KEY"})
    assert updated["UpdateToken"] != created["UpdateToken"]
    again = nfw.describe_rule_group(RuleGroupArn=arn)
    assert again["UpdateToken"] == updated["UpdateToken"]
    assert again["RuleGroup"]["RulesSource"]["RulesString"] == "alert tcp any any -> any 22 (sid:3;)"
    assert again["RuleGroupResponse"]["Description"] == "ssh"
    # a stale token: the one the first update used
    assert refused(nfw.update_rule_group, RuleGroupArn=arn, UpdateToken=created["UpdateToken"],
                   Rules="pass ip any any -> any any (sid:4;)")[0] == "InvalidTokenException"

    meta = nfw.describe_rule_group_metadata(RuleGroupArn=arn)
    assert (meta["RuleGroupName"], meta["Type"], meta["Capacity"]) == ("web", "STATEFUL", 10)
    assert nfw.list_rule_groups()["RuleGroups"] == [{"Name": "web", "Arn": arn}]
    assert nfw.list_rule_groups(Type="STATELESS")["RuleGroups"] == []
    assert nfw.list_rule_groups(Scope="MANAGED")["RuleGroups"] == []

    deleted = nfw.delete_rule_group(RuleGroupArn=arn)
    assert deleted["RuleGroupResponse"]["RuleGroupStatus"] == "DELETING"
    # Terraform's waitRuleGroupDeleted: ResourceNotFoundException at once means deleted
    assert refused(nfw.describe_rule_group, RuleGroupArn=arn)[0] == "ResourceNotFoundException"
    assert refused(nfw.delete_rule_group, RuleGroupArn=arn)[0] == "ResourceNotFoundException"


def test_rule_group_refusals(endpoint: Endpoint) -> None:
    api, nfw = endpoint()
    stateful(nfw, "web")
    assert refused(nfw.create_rule_group, RuleGroupName="web", Type="STATEFUL", Capacity=10, Rules="x") == (
        "InvalidRequestException", "A resource with the specified name already exists: rule group web "
        "(arn:aws:network-firewall:ap-northeast-1:123456789012:stateful-rulegroup/web)")
    both = {"RulesSource": {"RulesString": "pass ip any any -> any any (sid:1;)"}}
    assert refused(nfw.create_rule_group, RuleGroupName="two", Type="STATEFUL", Capacity=10, Rules="x",
                   RuleGroup=both) == ("InvalidRequestException",
                                       "Exactly one of Rules or RuleGroup must be set (given: Rules, RuleGroup)")
    assert refused(nfw.create_rule_group, RuleGroupName="none", Type="STATEFUL", Capacity=10)[0] == \
        "InvalidRequestException"
    assert "STATELESS rule group takes RuleGroup" in refused(
        nfw.create_rule_group, RuleGroupName="sl", Type="STATELESS", Capacity=10, Rules="pass ip any any -> any any")[1]
    assert "takes exactly one of" in refused(nfw.create_rule_group, RuleGroupName="mixed", Type="STATEFUL", Capacity=10,
                                             RuleGroup={"RulesSource": {"RulesString": "x", "StatefulRules": []}})[1]
    # the capacity: "You can't change or exceed this capacity when you update the rule group"
    assert "needs capacity 2 but its Capacity is 1" in refused(
        nfw.create_rule_group, RuleGroupName="small", Type="STATEFUL", Capacity=1,
        Rules="pass tcp any any -> any 1 (sid:1;)\npass tcp any any -> any 2 (sid:2;)")[1]
    assert refused(nfw.create_rule_group, RuleGroupName="huge", Type="STATEFUL", Capacity=30001, Rules="x")[0] == \
        "InvalidRequestException"
    # a name breaking the model's pattern reaches the server (botocore checks no patterns): ValidationException
    kind, text = refused(nfw.create_rule_group, RuleGroupName="bad name", Type="STATEFUL", Capacity=1, Rules="x")
    assert kind == "ValidationException"
    assert text == ("1 validation error detected: Value 'bad name' at 'ruleGroupName' failed to satisfy constraint: "
                    "Member must satisfy regular expression pattern: ^[a-zA-Z0-9-]+$")
    # by name, a rule group needs its Type ("required for requests that do not include the RuleGroupARN")
    assert refused(nfw.describe_rule_group, RuleGroupName="web")[0] == "InvalidRequestException"
    assert refused(nfw.describe_rule_group, RuleGroupName="web", Type="STATELESS")[0] == "ResourceNotFoundException"
    assert refused(nfw.describe_rule_group, RuleGroupName="nope", Type="STATEFUL")[0] == "ResourceNotFoundException"
    # Capacity is required by the model: boto3 refuses it before sending, the API as AWS would
    with pytest.raises(AwsError) as e:
        api.handle("CreateRuleGroup", REGION, {"RuleGroupName": "c", "Type": "STATEFUL", "Rules": "x"})
    assert (e.value.code, e.value.message) == ("ValidationException", "1 validation error detected: Value null at "
                                               "'capacity' failed to satisfy constraint: Member must not be null")


def test_stateless_capacity_and_dry_run(endpoint: Endpoint) -> None:
    api, nfw = endpoint()
    arn = stateless(nfw, "sl")
    # AWS's example: protocols ["UDP","TCP"] and three sources need 6
    assert nfw.describe_rule_group(RuleGroupArn=arn)["RuleGroupResponse"]["ConsumedCapacity"] == 6
    assert arn.endswith(":stateless-rulegroup/sl")
    calls: list[str] = []
    api._after_commit = calls.append  # noqa: SLF001 (counting commits)
    dry = nfw.create_rule_group(RuleGroupName="dry", Type="STATEFUL", Capacity=5, DryRun=True,
                                Rules="pass tcp any any -> any 1 (sid:1;)\npass tcp any any -> any 2 (sid:2;)")
    assert dry["RuleGroupResponse"]["ConsumedCapacity"] == 2
    assert calls == [] and [g["Name"] for g in nfw.list_rule_groups()["RuleGroups"]] == ["sl"]


# ---------------------------------------------------------------------- policies
def test_policy_references_capacity_and_delete_in_use(endpoint: Endpoint) -> None:
    _, nfw = endpoint()
    web, sl = stateful(nfw, "web", Capacity=100), stateless(nfw, "sl")
    created = nfw.create_firewall_policy(FirewallPolicyName="pol", Description="first", FirewallPolicy={
        "StatelessDefaultActions": OPEN, "StatelessFragmentDefaultActions": OPEN,
        "StatelessRuleGroupReferences": [{"ResourceArn": sl, "Priority": 10}],
        "StatefulRuleGroupReferences": [{"ResourceArn": web}]}, Tags=[{"Key": "team", "Value": "net"}])
    response = created["FirewallPolicyResponse"]
    arn = response["FirewallPolicyArn"]
    assert arn == "arn:aws:network-firewall:ap-northeast-1:123456789012:firewall-policy/pol"
    described = nfw.describe_firewall_policy(FirewallPolicyArn=arn)
    r = described["FirewallPolicyResponse"]
    assert (r["FirewallPolicyStatus"], r["ConsumedStatelessRuleCapacity"], r["ConsumedStatefulRuleCapacity"],
            r["NumberOfAssociations"], r["Description"], r["Tags"]) == (
        "ACTIVE", 10, 100, 0, "first", [{"Key": "team", "Value": "net"}])
    assert described["FirewallPolicy"]["StatefulRuleGroupReferences"] == [{"ResourceArn": web}]
    assert nfw.describe_rule_group(RuleGroupArn=web)["RuleGroupResponse"]["NumberOfAssociations"] == 1

    kind, text = refused(nfw.delete_rule_group, RuleGroupArn=web)
    assert kind == "InvalidOperationException"
    assert text.startswith("Unable to delete the object because it is still in use") and "pol" in text

    # Terraform's update: the whole document, the description only when set, the token it read
    updated = nfw.update_firewall_policy(FirewallPolicyArn=arn, UpdateToken=described["UpdateToken"],
                                         FirewallPolicy={"StatelessDefaultActions": ["aws:drop"],
                                                         "StatelessFragmentDefaultActions": ["aws:drop"]},
                                         EncryptionConfiguration={"Type": "AWS_OWNED_KMS_KEY"})
    assert updated["UpdateToken"] != described["UpdateToken"]
    after = nfw.describe_firewall_policy(FirewallPolicyName="pol")
    assert "Description" not in after["FirewallPolicyResponse"]
    assert after["FirewallPolicy"]["StatelessDefaultActions"] == ["aws:drop"]
    assert refused(nfw.update_firewall_policy, FirewallPolicyArn=arn, UpdateToken=described["UpdateToken"],
                   FirewallPolicy={"StatelessDefaultActions": OPEN, "StatelessFragmentDefaultActions": OPEN}
                   )[0] == "InvalidTokenException"
    nfw.delete_rule_group(RuleGroupArn=web)  # no longer referenced
    assert nfw.list_firewall_policies()["FirewallPolicies"] == [{"Name": "pol", "Arn": arn}]
    assert nfw.delete_firewall_policy(FirewallPolicyArn=arn)["FirewallPolicyResponse"]["FirewallPolicyStatus"] == \
        "DELETING"
    assert refused(nfw.describe_firewall_policy, FirewallPolicyArn=arn)[0] == "ResourceNotFoundException"


def test_policy_refusals(endpoint: Endpoint) -> None:
    _, nfw = endpoint()
    web, sl = stateful(nfw, "web"), stateless(nfw, "sl")
    strict = nfw.create_rule_group(
        RuleGroupName="strict", Type="STATEFUL", Capacity=10, RuleGroup={
            "RulesSource": {"RulesString": "pass tcp any any -> any 443 (sid:9;)"},
            "StatefulRuleOptions": {"RuleOrder": "STRICT_ORDER"}})["RuleGroupResponse"]["RuleGroupArn"]
    policy(nfw, "pol", [web])
    assert refused(nfw.create_firewall_policy, FirewallPolicyName="pol", FirewallPolicy={
        "StatelessDefaultActions": OPEN, "StatelessFragmentDefaultActions": OPEN})[1].startswith(
        "A resource with the specified name already exists: firewall policy pol")
    unknown = web.replace("/web", "/nope")
    kind, text = refused(policy, client=nfw, name="p1", stateful_arns=[unknown])
    assert (kind, text) == ("InvalidRequestException", f"StatefulRuleGroupReferences[0]: rule group {unknown} does "
                                                       "not exist")
    assert refused(policy, client=nfw, name="p2", stateful_arns=[sl]) == (
        "InvalidRequestException", f"StatefulRuleGroupReferences[0]: rule group {sl} is a STATELESS rule group, "
                                   "not STATEFUL")
    assert refused(policy, client=nfw, name="p3", stateless_arns=[web])[0] == "InvalidRequestException"
    # AWS's words for a priority in a default-order policy
    assert refused(nfw.create_firewall_policy, FirewallPolicyName="p4", FirewallPolicy={
        "StatelessDefaultActions": OPEN, "StatelessFragmentDefaultActions": OPEN,
        "StatefulRuleGroupReferences": [{"ResourceArn": web, "Priority": 1}]})[1] == (
        "Priority cannot be provided, parameter: [1], context: StatefulRuleGroupReferences[0][Priority=1]")
    assert "they must match" in refused(policy, client=nfw, name="p5", stateful_arns=[strict])[1]
    policy(nfw, "p6", [], StatefulEngineOptions={"RuleOrder": "STRICT_ORDER"},
           StatefulRuleGroupReferences=[{"ResourceArn": strict, "Priority": 100}],
           StatefulDefaultActions=["aws:drop_established"])
    assert "only valid when using the strict rule order" in refused(
        policy, client=nfw, name="p7", stateful_arns=[web], StatefulDefaultActions=["aws:drop_strict"])[1]
    assert "standard actions" in refused(nfw.create_firewall_policy, FirewallPolicyName="p8", FirewallPolicy={
        "StatelessDefaultActions": ["aws:pass", "aws:drop"], "StatelessFragmentDefaultActions": OPEN})[1]
    assert "standard actions" in refused(nfw.create_firewall_policy, FirewallPolicyName="p9", FirewallPolicy={
        "StatelessDefaultActions": ["aws:pass", "metric"], "StatelessFragmentDefaultActions": OPEN})[1]
    assert refused(nfw.create_firewall_policy, FirewallPolicyName="p10", FirewallPolicy={
        "StatelessDefaultActions": OPEN, "StatelessFragmentDefaultActions": OPEN,
        "StatelessRuleGroupReferences": [{"ResourceArn": sl, "Priority": 1}, {"ResourceArn": sl, "Priority": 1}]}
    )[0] == "InvalidRequestException"
    # an update the policies using the group can't take is refused too
    token = nfw.describe_rule_group(RuleGroupArn=web)["UpdateToken"]
    assert refused(nfw.update_rule_group, RuleGroupArn=web, UpdateToken=token, RuleGroup={
        "RulesSource": {"RulesString": "pass ip any any -> any any (sid:1;)"},
        "StatefulRuleOptions": {"RuleOrder": "STRICT_ORDER"}})[1].startswith(
        "Firewall policy pol uses this rule group: StatefulRuleGroupReferences[0]")
    assert nfw.describe_rule_group(RuleGroupArn=web)["UpdateToken"] == token
    managed = "arn:aws:network-firewall:ap-northeast-1:aws-managed:stateful-rulegroup/ThreatSignaturesBotnet"
    assert "no AWS managed rule groups" in refused(policy, client=nfw, name="p11", stateful_arns=[managed])[1]


def test_next_generation_policy(endpoint: Endpoint) -> None:
    _, nfw = endpoint()
    fw_group = nfw.create_rule_group(RuleGroupName="fw-rules", Type="FIREWALL", Capacity=10, FirewallRuleGroup={
        "RulesSource": {"FirewallRules": [{"Action": "ACCEPT", "ActionScope": "FLOW", "Hook": "TCP_FLOW_START",
                                           "Protocol": "TCP", "DestPorts": "443"}]}})["RuleGroupResponse"]
    ips = nfw.create_rule_group(RuleGroupName="ips", Type="IPS", Capacity=10,
                                Rules="alert http any any -> any any (msg:\"x\"; sid:5;)")["RuleGroupResponse"]
    assert ips["Type"] == "IPS" and nfw.describe_rule_group(RuleGroupArn=ips["RuleGroupArn"])["IpsRuleGroup"] == {
        "RulesSource": {"RulesString": "alert http any any -> any any (msg:\"x\"; sid:5;)"}}
    document = {"FirewallDefaultAction": "DROP", "PolicyMode": "ENFORCE",
                "FirewallRuleGroupEntries": [{"Priority": 1, "ResourceArn": fw_group["RuleGroupArn"]}, {
                    "Priority": 2, "InlineRuleGroup": {"RulesSource": {
                        "RulesString": "accept:hook tcp:all any any -> any any (sid:7;)"}}}],
                "IpsRuleGroupEntries": [{"ResourceArn": ips["RuleGroupArn"], "Override": {"Action": "DROP_TO_ALERT"}}]}
    created = nfw.create_firewall_policy_v2(FirewallPolicyV2Name="ng", FirewallPolicyV2=document)
    arn = created["FirewallPolicyV2Response"]["FirewallPolicyV2Arn"]
    assert arn.endswith(":firewall-policy/ng")
    described = nfw.describe_firewall_policy_v2(FirewallPolicyV2Arn=arn)
    assert described["FirewallPolicyV2"] == document
    response = described["FirewallPolicyV2Response"]
    assert (response["FirewallPolicyV2Status"], response["ConsumedFirewallRuleCapacity"],
            response["ConsumedIpsRuleCapacity"]) == ("ACTIVE", 11, 10)
    assert refused(nfw.describe_firewall_policy, FirewallPolicyArn=arn)[0] == "InvalidRequestException"
    assert nfw.list_firewall_policies_v2()["FirewallPoliciesV2"] == [{"Name": "ng", "Arn": arn}]
    assert nfw.list_firewall_policies()["FirewallPolicies"] == []

    fw = firewall(nfw, "ngfw", arn)
    config = nfw.describe_firewall(FirewallArn=fw)["FirewallStatus"]["SyncStates"]["ap-northeast-1a"]["Config"]
    assert set(config) == {arn, fw_group["RuleGroupArn"], ips["RuleGroupArn"]}
    assert refused(nfw.delete_firewall_policy_v2, FirewallPolicyV2Arn=arn)[0] == "InvalidOperationException"
    updated = nfw.update_firewall_policy_v2(FirewallPolicyV2Arn=arn, UpdateToken=described["UpdateToken"],
                                            FirewallPolicyV2={**document, "PolicyMode": "MONITOR"})
    assert nfw.describe_firewall(FirewallArn=fw)["FirewallStatus"]["SyncStates"]["ap-northeast-1a"]["Config"][arn][
        "UpdateToken"] == updated["UpdateToken"]

    def v2(name: str, **doc: Any) -> tuple[str, str]:
        return refused(nfw.create_firewall_policy_v2, FirewallPolicyV2Name=name, FirewallPolicyV2=doc)
    both = {"Priority": 1, "ResourceArn": fw_group["RuleGroupArn"], "InlineRuleGroup": {"RulesSource": {
        "RulesString": "x"}}}
    assert "either ResourceArn or InlineRuleGroup" in v2("a", FirewallRuleGroupEntries=[both])[1]
    assert "is a IPS rule group, not FIREWALL" in v2("b", FirewallRuleGroupEntries=[
        {"Priority": 1, "ResourceArn": ips["RuleGroupArn"]}])[1]
    assert "unique Priority" in v2("c", FirewallRuleGroupEntries=[
        {"Priority": 1, "ResourceArn": fw_group["RuleGroupArn"]}, {"Priority": 1, "InlineRuleGroup": {
            "RulesSource": {"RulesString": "x"}}}])[1]
    assert "embedded rule group" in v2("d", FirewallRuleGroupEntries=[{"Priority": 1, "InlineRuleGroup": {
        "RulesSource": {"RulesSourceList": {"Targets": [".example.com"], "TargetTypes": ["TLS_SNI"],
                                            "GeneratedRulesType": "ALLOWLIST"}}}}])[1]
    assert refused(nfw.create_rule_group, RuleGroupName="fw-rules", Type="IPS", Capacity=1, Rules="x")[0] == \
        "InvalidRequestException"  # the stateful-rulegroup/ name is taken


# ---------------------------------------------------------------------- firewalls
def test_firewall_as_terraform_drives_it(endpoint: Endpoint) -> None:
    """aws_networkfirewall_firewall in provider v5.100: create, waitFirewallCreated (Status READY), the updates
    in its order with the UpdateToken of each answer, subnets with waitFirewallUpdated's token, delete and
    waitFirewallDeleted (ResourceNotFoundException)."""
    _, nfw = endpoint()
    web = stateful(nfw, "web")
    pol, other = policy(nfw, "pol", [web]), policy(nfw, "other")
    created = nfw.create_firewall(FirewallName="fw", FirewallPolicyArn=pol, VpcId=VPC, Description="first",
                                  SubnetMappings=[{"SubnetId": "subnet-0a01"}, {"SubnetId": "subnet-0c01"}],
                                  Tags=[{"Key": "env", "Value": "lab"}])
    arn = created["Firewall"]["FirewallArn"]
    assert arn == "arn:aws:network-firewall:ap-northeast-1:123456789012:firewall/fw"
    out = nfw.describe_firewall(FirewallArn=arn)
    assert out["FirewallStatus"]["Status"] == "READY" and out["FirewallStatus"]["ConfigurationSyncStateSummary"] == \
        "IN_SYNC"
    record = out["Firewall"]
    assert (record["DeleteProtection"], record["SubnetChangeProtection"], record["FirewallPolicyChangeProtection"],
            record["VpcId"], record["Description"], record["Tags"]) == (False, False, False, VPC, "first",
                                                                         [{"Key": "env", "Value": "lab"}])
    assert record["SubnetMappings"] == [{"SubnetId": "subnet-0a01", "IPAddressType": "IPV4"},
                                        {"SubnetId": "subnet-0c01", "IPAddressType": "IPV4"}]
    states = out["FirewallStatus"]["SyncStates"]
    assert sorted(states) == ["ap-northeast-1a", "ap-northeast-1c"]  # one per AZ
    endpoints = {az: s["Attachment"]["EndpointId"] for az, s in states.items()}
    assert all(re.fullmatch(r"vpce-[0-9a-f]{17}", e) for e in endpoints.values()) and len(set(endpoints.values())) == 2
    assert states["ap-northeast-1a"]["Attachment"]["SubnetId"] == "subnet-0a01"
    assert states["ap-northeast-1a"]["Attachment"]["Status"] == "READY"
    policy_token = nfw.describe_firewall_policy(FirewallPolicyArn=pol)["UpdateToken"]
    group_token = nfw.describe_rule_group(RuleGroupArn=web)["UpdateToken"]
    assert states["ap-northeast-1c"]["Config"] == {pol: {"SyncStatus": "IN_SYNC", "UpdateToken": policy_token},
                                                   web: {"SyncStatus": "IN_SYNC", "UpdateToken": group_token}}
    assert nfw.describe_firewall_policy(FirewallPolicyArn=pol)["FirewallPolicyResponse"]["NumberOfAssociations"] == 1

    token = out["UpdateToken"]
    updates: list[tuple[Callable[..., Any], dict[str, Any]]] = [
        (nfw.update_firewall_delete_protection, {"DeleteProtection": True}),
        (nfw.update_firewall_description, {"Description": "second"}),
        (nfw.update_firewall_analysis_settings, {"EnabledAnalysisTypes": ["TLS_SNI"]}),
        (nfw.update_firewall_encryption_configuration, {"EncryptionConfiguration": {"Type": "CUSTOMER_KMS",
                                                                                    "KeyId": "alias/lab"}}),
        (nfw.update_firewall_policy_change_protection, {"FirewallPolicyChangeProtection": False}),
        (nfw.associate_firewall_policy, {"FirewallPolicyArn": other}),
        (nfw.update_subnet_change_protection, {"SubnetChangeProtection": False}),
    ]
    for call, kwargs in updates:
        answer = call(FirewallArn=arn, UpdateToken=token, **kwargs)
        assert answer["FirewallArn"] == arn and answer["UpdateToken"] != token
        assert all(answer[k] == v for k, v in kwargs.items() if k != "EncryptionConfiguration")
        token = answer["UpdateToken"]
    record = nfw.describe_firewall(FirewallName="fw")["Firewall"]
    assert (record["DeleteProtection"], record["Description"], record["EnabledAnalysisTypes"],
            record["EncryptionConfiguration"], record["FirewallPolicyArn"]) == (
        True, "second", ["TLS_SNI"], {"Type": "CUSTOMER_KMS", "KeyId": "alias/lab"}, other)
    assert refused(nfw.update_firewall_description, FirewallArn=arn, UpdateToken=out["UpdateToken"],
                   Description="stale")[0] == "InvalidTokenException"

    nfw.associate_subnets(FirewallArn=arn, UpdateToken=token, SubnetMappings=[{"SubnetId": "subnet-0d01"}])
    token = nfw.describe_firewall(FirewallArn=arn)["UpdateToken"]  # waitFirewallUpdated's answer
    nfw.disassociate_subnets(FirewallArn=arn, UpdateToken=token, SubnetIds=["subnet-0c01"])
    states = nfw.describe_firewall(FirewallArn=arn)["FirewallStatus"]["SyncStates"]
    assert sorted(states) == ["ap-northeast-1a", "ap-northeast-1d"]
    assert states["ap-northeast-1a"]["Attachment"]["EndpointId"] == endpoints["ap-northeast-1a"]  # stable

    kind, text = refused(nfw.delete_firewall, FirewallArn=arn)
    assert kind == "InvalidOperationException" and "DeleteProtection" in text
    assert refused(nfw.delete_firewall_policy, FirewallPolicyArn=other)[0] == "InvalidOperationException"
    nfw.update_firewall_delete_protection(FirewallArn=arn, DeleteProtection=False)  # no token: unconditional
    deleted = nfw.delete_firewall(FirewallArn=arn)
    assert deleted["FirewallStatus"]["Status"] == "DELETING"
    assert refused(nfw.describe_firewall, FirewallArn=arn)[0] == "ResourceNotFoundException"
    nfw.delete_firewall_policy(FirewallPolicyArn=other)


def test_firewall_refusals(endpoint: Endpoint) -> None:
    _, nfw = endpoint()
    pol = policy(nfw, "pol")
    assert refused(firewall, client=nfw, name="f1", policy_arn=pol, subnets=("subnet-0a01", "subnet-0f99")) == (
        "InvalidRequestException", "Subnet subnet-0f99 does not exist in ap-northeast-1")
    kind, text = refused(firewall, client=nfw, name="f2", policy_arn=pol, subnets=("subnet-0a01", "subnet-0a02"))
    assert kind == "InvalidRequestException" and "different Availability Zone" in text and "subnet-0a01" in text
    assert refused(firewall, client=nfw, name="f3", policy_arn=pol, subnets=())[0] == "InvalidRequestException"
    assert "does not exist" in refused(firewall, client=nfw, name="f4", policy_arn=pol + "x")[1]
    assert "TransitGatewayId" in refused(firewall, client=nfw, name="f5", policy_arn=pol,
                                         TransitGatewayId="tgw-0abc")[1]
    arn = firewall(nfw, "fw", pol, SubnetChangeProtection=True, FirewallPolicyChangeProtection=True)
    assert refused(firewall, client=nfw, name="fw", policy_arn=pol)[1].startswith(
        "A resource with the specified name already exists: firewall fw")
    # the protections refuse what they guard
    assert refused(nfw.associate_subnets, FirewallArn=arn, SubnetMappings=[{"SubnetId": "subnet-0d01"}])[0] == \
        "InvalidOperationException"
    assert refused(nfw.disassociate_subnets, FirewallArn=arn, SubnetIds=["subnet-0c01"])[0] == \
        "InvalidOperationException"
    assert refused(nfw.associate_firewall_policy, FirewallArn=arn, FirewallPolicyArn=pol)[0] == \
        "InvalidOperationException"
    nfw.update_subnet_change_protection(FirewallArn=arn, SubnetChangeProtection=False)
    assert "different Availability Zone" in refused(nfw.associate_subnets, FirewallArn=arn,
                                                    SubnetMappings=[{"SubnetId": "subnet-0a02"}])[1]
    assert "not associated" in refused(nfw.disassociate_subnets, FirewallArn=arn, SubnetIds=["subnet-0d01"])[1]
    nfw.disassociate_subnets(FirewallArn=arn, SubnetIds=["subnet-0c01"])
    assert "last Availability Zone" in refused(nfw.disassociate_subnets, FirewallArn=arn,
                                               SubnetIds=["subnet-0a01"])[1]
    assert refused(nfw.describe_firewall, FirewallName="nope")[0] == "ResourceNotFoundException"
    assert refused(nfw.describe_firewall)[0] == "InvalidRequestException"
    assert refused(nfw.describe_firewall, FirewallArn=arn, FirewallName="other")[0] == "InvalidRequestException"
    assert refused(nfw.update_firewall_description, FirewallArn=arn, Description="x",
                   UpdateToken="00000000-0000-0000-0000-000000000000")[0] == "InvalidTokenException"

    meta = nfw.describe_firewall_metadata(FirewallArn=arn)
    assert (meta["Status"], meta["FirewallPolicyArn"], meta["SupportedAvailabilityZones"]) == (
        "READY", pol, {"ap-northeast-1a": {"IPAddressType": "IPV4"}})
    assert nfw.list_firewalls()["Firewalls"] == [{"FirewallName": "fw", "FirewallArn": arn}]
    assert nfw.list_firewalls(VpcIds=["vpc-0def"])["Firewalls"] == []


def test_subnet_zone_none_refused_and_endpoint_ids_per_firewall(endpoint: Endpoint) -> None:
    seen: list[tuple[str, str]] = []

    def zone(region: str, subnet: str) -> str | None:
        seen.append((region, subnet))
        return None if subnet == "subnet-0bad" else "ap-northeast-1a"
    _, nfw = endpoint(subnet_zone=zone)
    pol = policy(nfw, "pol")
    assert refused(firewall, client=nfw, name="f", policy_arn=pol, subnets=("subnet-0bad",)) == (
        "InvalidRequestException", "Subnet subnet-0bad does not exist in ap-northeast-1")
    assert seen == [(REGION, "subnet-0bad")]
    one, two = firewall(nfw, "one", pol, subnets=("subnet-0a01",)), firewall(nfw, "two", pol, subnets=("subnet-0a01",))

    def endpoint_id(arn: str) -> str:
        return str(nfw.describe_firewall(FirewallArn=arn)["FirewallStatus"]["SyncStates"]["ap-northeast-1a"][
            "Attachment"]["EndpointId"])
    assert endpoint_id(one) == endpoint_id(one) != endpoint_id(two)


# ---------------------------------------------------------------------- logging
def test_logging_one_destination_per_call(endpoint: Endpoint) -> None:
    commits: list[str] = []
    _, nfw = endpoint(after_commit=commits.append)
    arn = firewall(nfw, "fw", policy(nfw, "pol"))
    alert = {"LogType": "ALERT", "LogDestinationType": "CloudWatchLogs", "LogDestination": {"logGroup": "alerts"}}
    flow = {"LogType": "FLOW", "LogDestinationType": "S3", "LogDestination": {"bucketName": "flows", "prefix": "x"}}
    tls = {"LogType": "TLS", "LogDestinationType": "KinesisDataFirehose", "LogDestination": {"deliveryStream": "t"}}
    assert nfw.describe_logging_configuration(FirewallArn=arn)["LoggingConfiguration"] == {"LogDestinationConfigs": []}
    # Terraform's addLoggingConfigurations: [A], then [A, B]
    nfw.update_logging_configuration(FirewallArn=arn, LoggingConfiguration={"LogDestinationConfigs": [alert]})
    answer = nfw.update_logging_configuration(FirewallArn=arn,
                                              LoggingConfiguration={"LogDestinationConfigs": [alert, flow]})
    assert answer["LoggingConfiguration"]["LogDestinationConfigs"] == [alert, flow]
    described = nfw.describe_logging_configuration(FirewallArn=arn)
    assert described["FirewallArn"] == arn and described["LoggingConfiguration"]["LogDestinationConfigs"] == [
        alert, flow]
    kind, text = refused(nfw.update_logging_configuration, FirewallArn=arn,
                         LoggingConfiguration={"LogDestinationConfigs": [tls]})
    assert kind == "InvalidRequestException" and "only one of the following actions" in text
    moved = {**flow, "LogDestination": {"bucketName": "elsewhere"}}
    nfw.update_logging_configuration(FirewallArn=arn, LoggingConfiguration={"LogDestinationConfigs": [alert, moved]})
    assert "You can't change the LogDestinationType" in refused(
        nfw.update_logging_configuration, FirewallArn=arn, LoggingConfiguration={"LogDestinationConfigs": [
            alert, {**moved, "LogDestinationType": "CloudWatchLogs", "LogDestination": {"logGroup": "g"}}]})[1]
    assert "needs the key bucketName" in refused(
        nfw.update_logging_configuration, FirewallArn=arn, LoggingConfiguration={"LogDestinationConfigs": [
            alert, moved, {**tls, "LogDestinationType": "S3", "LogDestination": {"prefix": "p"}}]})[1]
    count = len(commits)
    nfw.update_logging_configuration(FirewallArn=arn, LoggingConfiguration={"LogDestinationConfigs": [alert, moved]})
    assert len(commits) == count  # nothing changed, nothing committed
    # Terraform's removeLoggingConfiguration for two: [A], then no configuration at all
    nfw.update_logging_configuration(FirewallName="fw", LoggingConfiguration={"LogDestinationConfigs": [alert]})
    nfw.update_logging_configuration(FirewallName="fw")
    assert nfw.describe_logging_configuration(FirewallArn=arn)["LoggingConfiguration"]["LogDestinationConfigs"] == []
    assert refused(nfw.describe_logging_configuration, FirewallName="nope")[0] == "ResourceNotFoundException"


# ---------------------------------------------------------------------- tags
def test_tags_on_every_resource(endpoint: Endpoint) -> None:
    _, nfw = endpoint()
    group = stateful(nfw, "web", Tags=[{"Key": "a", "Value": "1"}])
    pol = policy(nfw, "pol")
    fw = firewall(nfw, "fw", pol)
    for arn in (group, pol, fw):
        nfw.tag_resource(ResourceArn=arn, Tags=[{"Key": "b", "Value": "2"}, {"Key": "c", "Value": "3"}])
        nfw.untag_resource(ResourceArn=arn, TagKeys=["c"])
    assert nfw.list_tags_for_resource(ResourceArn=group)["Tags"] == [{"Key": "a", "Value": "1"},
                                                                      {"Key": "b", "Value": "2"}]
    assert nfw.describe_firewall(FirewallArn=fw)["Firewall"]["Tags"] == [{"Key": "b", "Value": "2"}]
    assert nfw.describe_firewall_policy(FirewallPolicyArn=pol)["FirewallPolicyResponse"]["Tags"] == [
        {"Key": "b", "Value": "2"}]
    first = nfw.list_tags_for_resource(ResourceArn=group, MaxResults=1)
    assert first["Tags"] == [{"Key": "a", "Value": "1"}]
    assert nfw.list_tags_for_resource(ResourceArn=group, MaxResults=1, NextToken=first["NextToken"])["Tags"] == [
        {"Key": "b", "Value": "2"}]
    assert refused(nfw.tag_resource, ResourceArn=group + "x", Tags=[{"Key": "a", "Value": "1"}])[0] == \
        "ResourceNotFoundException"
    assert refused(nfw.list_tags_for_resource, ResourceArn=group + "x")[0] == "ResourceNotFoundException"
    assert refused(nfw.tag_resource, ResourceArn=group, Tags=[{"Key": "aws:x", "Value": "1"}])[0] == \
        "InvalidRequestException"


# ---------------------------------------------------------------------- the store
def test_before_commit_refusal_changes_nothing(endpoint: Endpoint) -> None:
    seen: list[dict[str, Any]] = []

    def before(region: str, snapshot: dict[str, Any]) -> None:
        seen.append(snapshot)
        rules = [g["RuleGroup"]["RulesSource"].get("RulesString", "") for g in snapshot["rule_groups"]]
        if any("sid:666" in r for r in rules):
            raise AwsError("InvalidRequestException", "the lab's Suricata refuses the rules")
    commits: list[str] = []
    api, nfw = endpoint(before_commit=before, after_commit=commits.append)
    arn = stateful(nfw, "web")
    before_update = nfw.describe_rule_group(RuleGroupArn=arn)
    assert seen[-1]["rule_groups"][0]["RuleGroupResponse"]["RuleGroupArn"] == arn
    assert refused(nfw.update_rule_group, RuleGroupArn=arn, UpdateToken=before_update["UpdateToken"],
                   Rules="drop ip any any -> any any (sid:666;)") == (
        "InvalidRequestException", "the lab's Suricata refuses the rules")
    assert "sid:666" in seen[-1]["rule_groups"][0]["RuleGroup"]["RulesSource"]["RulesString"]  # it saw the change
    after = nfw.describe_rule_group(RuleGroupArn=arn)
    assert after["UpdateToken"] == before_update["UpdateToken"]
    assert after["RuleGroup"] == before_update["RuleGroup"]
    assert refused(stateful, client=nfw, name="evil", rules="drop ip any any -> any any (sid:666;)")[0] == \
        "InvalidRequestException"
    assert [g["Name"] for g in nfw.list_rule_groups()["RuleGroups"]] == ["web"]
    assert commits == [REGION]  # only the first create
    assert api.state(REGION)["rule_groups"][0]["UpdateToken"] == before_update["UpdateToken"]


def test_after_commit_once_per_change(endpoint: Endpoint) -> None:
    commits: list[str] = []
    _, nfw = endpoint(after_commit=commits.append)
    arn = stateful(nfw, "web")
    nfw.describe_rule_group(RuleGroupArn=arn)
    nfw.list_rule_groups()
    refused(stateful, client=nfw, name="web")
    pol = policy(nfw, "pol", [arn])
    fw = firewall(nfw, "fw", pol)
    nfw.update_firewall_description(FirewallArn=fw, Description="x")
    nfw.tag_resource(ResourceArn=fw, Tags=[{"Key": "k", "Value": "v"}])
    nfw.untag_resource(ResourceArn=fw, TagKeys=["absent"])  # nothing removed: no change
    assert commits == [REGION] * 5
    nfw.at("us-east-1").create_rule_group(RuleGroupName="web", Type="STATEFUL", Capacity=1, Rules="x")
    assert commits[-1] == "us-east-1"


def test_state_is_the_describe_outputs_per_region(endpoint: Endpoint) -> None:
    api, nfw = endpoint()
    group = stateful(nfw, "web")
    pol = policy(nfw, "pol", [group])
    fw = firewall(nfw, "fw", pol)
    nfw.update_logging_configuration(FirewallArn=fw, LoggingConfiguration={"LogDestinationConfigs": [
        {"LogType": "ALERT", "LogDestinationType": "CloudWatchLogs", "LogDestination": {"logGroup": "a"}}]})
    state = api.state(REGION)
    assert state["firewalls"] == [api.handle("DescribeFirewall", REGION, {"FirewallArn": fw})]
    assert state["policies"] == [api.handle("DescribeFirewallPolicy", REGION, {"FirewallPolicyArn": pol})]
    assert state["rule_groups"] == [api.handle("DescribeRuleGroup", REGION, {"RuleGroupArn": group})]
    assert state["logging"] == {fw: api.handle("DescribeLoggingConfiguration", REGION, {"FirewallArn": fw})}
    state["firewalls"][0]["Firewall"]["VpcId"] = "vpc-0bad"  # a copy
    assert api.state(REGION)["firewalls"][0]["Firewall"]["VpcId"] == VPC
    assert api.state("us-east-1") == {"firewalls": [], "policies": [], "rule_groups": [], "logging": {}}
    # the region comes from the request's credential scope
    east = nfw.at("us-east-1")
    assert east.list_rule_groups()["RuleGroups"] == []
    east.create_rule_group(RuleGroupName="web", Type="STATEFUL", Capacity=1, Rules="x")
    assert east.list_rule_groups()["RuleGroups"][0]["Arn"].startswith("arn:aws:network-firewall:us-east-1:")


def test_model_checks_and_unknown_operations() -> None:
    api = NetworkFirewallApi(subnet_zone=subnet_zone)

    def error(operation: str, request: Any) -> tuple[str, str]:
        with pytest.raises(AwsError) as e:
            api.handle(operation, REGION, request)
        return e.value.code, e.value.message
    kind, text = error("ListRuleGroups", {"Typo": 1})
    assert kind == "ValidationException" and 'Unknown parameter in request: "Typo"' in text
    kind, text = error("CreateRuleGroup", {"RuleGroupName": "x", "Type": "STATEFULL", "Capacity": "10", "Rules": "r"})
    assert text.startswith("2 validation errors detected: ") and "enum value set" in text and "valid types: int" in text
    assert "at 'firewallPolicy.statelessRuleGroupReferences.1.member.priority'" in error("CreateFirewallPolicy", {
        "FirewallPolicyName": "p", "FirewallPolicy": {"StatelessDefaultActions": OPEN,
                                                      "StatelessFragmentDefaultActions": OPEN,
                                                      "StatelessRuleGroupReferences": [
                                                          {"ResourceArn": "arn:aws:x", "Priority": 0}]}})[1]
    assert error("NoSuchOperation", {})[0] == "UnknownOperationException"
    assert error("CreateTLSInspectionConfiguration", {})[0] == "UnsupportedOperationException"
    assert error("ListRuleGroups", [])[0] == "SerializationException"
    assert AwsError("ThrottlingException", "slow", 429).body() == {"__type": "ThrottlingException", "message": "slow"}
    assert {"CreateFirewall", "UpdateFirewallAnalysisSettings", "CreateFirewallPolicyV2", "DescribeFirewallMetadata",
            "DescribeRuleGroupMetadata", "ListTagsForResource"} <= set(api.operations)


def test_concurrent_changes(endpoint: Endpoint) -> None:
    commits: list[str] = []
    api, _ = endpoint(after_commit=commits.append)

    def create(i: int) -> None:
        for j in range(5):
            api.handle("CreateRuleGroup", REGION, {"RuleGroupName": f"g{i}-{j}", "Type": "STATEFUL", "Capacity": 1,
                                                   "Rules": f"pass ip any any -> any any (sid:{i * 10 + j};)"})
    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(api.state(REGION)["rule_groups"]) == 40 and len(commits) == 40


def test_aws_cli(endpoint: Endpoint) -> None:
    _, nfw = endpoint()
    aws = aws_cli(nfw.url, REGION)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return aws("network-firewall", *args)
    created = cli("create-rule-group", "--rule-group-name", "cli", "--type", "STATEFUL", "--capacity", "10",
                  "--rules", "pass tls any any -> any 443 (tls.sni; content:\"example.com\"; sid:1;)")
    assert created.returncode == 0, created.stderr
    arn = json.loads(created.stdout)["RuleGroupResponse"]["RuleGroupArn"]
    described = cli("describe-rule-group", "--rule-group-arn", arn)
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["RuleGroup"]["RulesSource"]["RulesString"].endswith("sid:1;)")
    missing = cli("describe-rule-group", "--rule-group-name", "nope", "--type", "STATEFUL")
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr
