"""Export: a lab (its topology and its policy) as an account dump, or as Terraform for the same VPC.

`dump_from_lab` gives what the read-only AWS CLI calls of lab/aws/dump.py would print for an account holding the
lab's VPC: its EC2 parts with the lab's ids and a Name tag with the lab's name on each, and the firewall, its
policy and rule groups with ARNs in the lab's region. `write_dump` writes it in dump.py's layout, so
`import_dump` (lab/aws/account.py) reads it back: one importer for a real account, a Terraform plan and the lab.

`terraform_from_lab` writes the same VPC as Terraform (hashicorp/aws >= 5.0), without a provider block.

The shape builders (`vpc_shape`, `subnet_shape`, ...) are shared with lab/aws/terraform.py, which builds the
same calls' output from `terraform show -json`.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import textwrap
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from ..documents import read_document
from ..errors import ConfigError
from ..model import FIREWALL_ENDPOINT, LOCAL, Topology
from ..nextgen import is_nextgen, load_any_policy
from ..policy import DEFAULT_ORDER, STRICT_ORDER, parse_any_group, rules_file_policy
from ..routing import route_table_json
from ..stateless import StatelessGroup, is_stateless
from .dump import REFERENCE_LISTS, RULE_GROUPS, Dump, rule_group_references

DEFAULT_ACCOUNT = "123456789012"
FORWARD = ["aws:forward_to_sfe"]
GROUP_BODIES = ("RuleGroup", "FirewallRuleGroup", "IpsRuleGroup")  # describe-rule-group's body, by group type
BODY_TYPES = {"FirewallRuleGroup": "FIREWALL", "IpsRuleGroup": "IPS"}
DEFAULT_CAPACITY = 100
AMI_PLACEHOLDER = "ami-0123456789abcdef0"


# --------------------------------------------------------------------------
# Ids and names
# --------------------------------------------------------------------------
def digest(*parts: str) -> str:
    """A stable hex digest of `parts` (the seed of every made-up id)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def aws_id(prefix: str, *seed: str) -> str:
    """An EC2-looking id: `prefix-` and 17 hex digits, stable for the seed."""
    return f"{prefix}-{digest(prefix, *seed)[:17]}"


def uuid_id(*seed: str) -> str:
    """A Network Firewall-looking id (a UUID's shape), stable for the seed."""
    h = digest("uuid", *seed)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def nfw_arn(region: str, account: str, kind: str, name: str) -> str:
    """arn:aws:network-firewall:REGION:ACCOUNT:KIND/NAME (kind: firewall, firewall-policy, stateful-rulegroup...)."""
    return f"arn:aws:network-firewall:{region}:{account}:{kind}/{name}"


def group_arn_kind(group_type: str) -> str:
    return "stateless-rulegroup" if group_type == "STATELESS" else "stateful-rulegroup"


def arn_name(ref: str) -> str:
    """A rule group's or policy's name from its ARN (…/NAME), or the name itself."""
    return ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref


def tag_list(name: str | None, tags: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """EC2's Tags: [{"Key", "Value"}], Name first."""
    out = {"Name": name} if name else {}
    for k, v in (tags or {}).items():
        out.setdefault(str(k), str(v))
    return [{"Key": k, "Value": v} for k, v in out.items()]


def private_dns(ip: str | IPv4Address, region: str) -> str:
    domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return f"ip-{str(ip).replace('.', '-')}.{domain}"


# --------------------------------------------------------------------------
# Shapes: one resource as its describe call prints it
# --------------------------------------------------------------------------
def vpc_shape(vpc_id: str, cidr: str, account: str, tags: list[dict[str, str]]) -> dict[str, Any]:
    return {"OwnerId": account, "InstanceTenancy": "default",
            "CidrBlockAssociationSet": [{"AssociationId": aws_id("vpc-cidr-assoc", vpc_id), "CidrBlock": cidr,
                                         "CidrBlockState": {"State": "associated"}}],
            "IsDefault": False, "Tags": tags, "VpcId": vpc_id, "State": "available", "CidrBlock": cidr,
            "DhcpOptionsId": aws_id("dopt", account)}


def subnet_shape(subnet_id: str, vpc_id: str, cidr: str, az: str, account: str, region: str,
                 tags: list[dict[str, str]], free: int | None = None) -> dict[str, Any]:
    size = IPv4Network(cidr).num_addresses - 5  # AWS reserves the first four and the last address
    return {"AvailabilityZone": az, "AvailableIpAddressCount": size if free is None else free, "CidrBlock": cidr,
            "DefaultForAz": False, "MapPublicIpOnLaunch": False, "State": "available", "SubnetId": subnet_id,
            "VpcId": vpc_id, "OwnerId": account, "AssignIpv6AddressOnCreation": False,
            "Ipv6CidrBlockAssociationSet": [], "Tags": tags,
            "SubnetArn": f"arn:aws:ec2:{region}:{account}:subnet/{subnet_id}"}


def igw_shape(igw_id: str, vpc_ids: Sequence[str], account: str, tags: list[dict[str, str]]) -> dict[str, Any]:
    return {"Attachments": [{"State": "available", "VpcId": v} for v in vpc_ids], "InternetGatewayId": igw_id,
            "OwnerId": account, "Tags": tags}


def address_shape(allocation_id: str, public_ip: str, account: str, region: str, tags: list[dict[str, str]],
                  association_id: str | None = None, eni: str | None = None,
                  private_ip: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"AllocationId": allocation_id}
    if association_id:
        out.update({"AssociationId": association_id, "Domain": "vpc", "NetworkInterfaceId": eni,
                    "NetworkInterfaceOwnerId": account, "PrivateIpAddress": private_ip})
    else:
        out["Domain"] = "vpc"
    out.update({"Tags": tags, "PublicIpv4Pool": "amazon", "NetworkBorderGroup": region, "PublicIp": public_ip})
    return out


def nat_shape(nat_id: str, subnet_id: str, vpc_id: str, private_ip: str, tags: list[dict[str, str]],
              allocation_id: str | None, public_ip: str | None, eni: str, association_id: str | None,
              connectivity: str = "public") -> dict[str, Any]:
    address: dict[str, Any] = {}
    if allocation_id:
        address["AllocationId"] = allocation_id
    address.update({"NetworkInterfaceId": eni, "PrivateIp": private_ip})
    if public_ip:
        address["PublicIp"] = public_ip
    if association_id:
        address["AssociationId"] = association_id
    address.update({"IsPrimary": True, "Status": "succeeded"})
    return {"NatGatewayAddresses": [address], "NatGatewayId": nat_id, "State": "available", "SubnetId": subnet_id,
            "VpcId": vpc_id, "Tags": tags, "ConnectivityType": connectivity}


def reservation_shape(instance_id: str, image_id: str, instance_type: str, subnet_id: str, vpc_id: str, ip: str,
                      az: str, eni: str, account: str, region: str, tags: list[dict[str, str]]) -> dict[str, Any]:
    dns = private_dns(ip, region)
    interface = {"Attachment": {"AttachmentId": aws_id("eni-attach", eni), "DeleteOnTermination": True,
                                "DeviceIndex": 0, "Status": "attached", "NetworkCardIndex": 0},
                 "Description": "", "Groups": [], "Ipv6Addresses": [], "NetworkInterfaceId": eni, "OwnerId": account,
                 "PrivateDnsName": dns, "PrivateIpAddress": ip,
                 "PrivateIpAddresses": [{"Primary": True, "PrivateDnsName": dns, "PrivateIpAddress": ip}],
                 "SourceDestCheck": True, "Status": "in-use", "SubnetId": subnet_id, "VpcId": vpc_id,
                 "InterfaceType": "interface"}
    instance = {"AmiLaunchIndex": 0, "ImageId": image_id, "InstanceId": instance_id, "InstanceType": instance_type,
                "Placement": {"AvailabilityZone": az, "GroupName": "", "Tenancy": "default"},
                "PrivateDnsName": dns, "PrivateIpAddress": ip, "State": {"Code": 16, "Name": "running"},
                "SubnetId": subnet_id, "VpcId": vpc_id, "Architecture": "x86_64", "NetworkInterfaces": [interface],
                "SecurityGroups": [], "SourceDestCheck": True, "Tags": tags}
    return {"ReservationId": aws_id("r", instance_id), "OwnerId": account, "Groups": [], "Instances": [instance]}


def eni_shape(eni: str, subnet_id: str, vpc_id: str, az: str, ip: str, account: str, region: str, kind: str,
              description: str, tags: list[dict[str, str]], requester_managed: bool,
              association: dict[str, Any] | None = None, instance_id: str | None = None) -> dict[str, Any]:
    """describe-network-interfaces' entry. kind: AWS's InterfaceType (interface, nat_gateway,
    gateway_load_balancer_endpoint)."""
    dns = private_dns(ip, region)
    out: dict[str, Any] = {}
    if association:
        out["Association"] = association
    if instance_id:
        out["Attachment"] = {"AttachmentId": aws_id("eni-attach", eni), "DeleteOnTermination": True,
                             "DeviceIndex": 0, "InstanceId": instance_id, "InstanceOwnerId": account,
                             "Status": "attached"}
    out.update({"AvailabilityZone": az, "Description": description, "Groups": [], "InterfaceType": kind,
                "Ipv6Addresses": [], "NetworkInterfaceId": eni, "OwnerId": account, "PrivateDnsName": dns,
                "PrivateIpAddress": ip,
                "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": ip, "PrivateDnsName": dns}],
                "RequesterManaged": requester_managed, "SourceDestCheck": kind == "interface", "Status": "in-use",
                "SubnetId": subnet_id, "TagSet": tags, "VpcId": vpc_id})
    return out


def local_route(cidr: str) -> dict[str, str]:
    return {"DestinationCidrBlock": cidr, "GatewayId": "local", "Origin": "CreateRouteTable", "State": "active"}


def main_association(table_id: str) -> dict[str, Any]:
    return {"Main": True, "RouteTableAssociationId": aws_id("rtbassoc", table_id, "main"), "RouteTableId": table_id,
            "AssociationState": {"State": "associated"}}


def route_table_shape(table_id: str, vpc_id: str, account: str, routes: list[dict[str, Any]],
                      associations: list[dict[str, Any]], tags: list[dict[str, str]]) -> dict[str, Any]:
    return {"Associations": associations, "PropagatingVgws": [], "RouteTableId": table_id, "Routes": routes,
            "Tags": tags, "VpcId": vpc_id, "OwnerId": account}


def firewall_shape(name: str, arn: str, policy_arn: str, vpc_id: str, endpoints: Sequence[tuple[str, str, str]],
                   synced: Sequence[str], tags: list[dict[str, str]], description: str | None = None,
                   delete_protection: bool = False, subnet_change_protection: bool = False,
                   policy_change_protection: bool = False) -> dict[str, Any]:
    """describe-firewall's output; endpoints: (availability zone, subnet id, endpoint id); synced: the ARNs
    (policy and rule groups) each endpoint reports in sync."""
    config = {a: {"SyncStatus": "IN_SYNC", "UpdateToken": uuid_id("token", a)} for a in synced}
    firewall: dict[str, Any] = {
        "FirewallName": name, "FirewallArn": arn, "FirewallPolicyArn": policy_arn, "VpcId": vpc_id,
        "SubnetMappings": [{"SubnetId": s, "IPAddressType": "IPV4"} for _, s, _ in endpoints],
        "DeleteProtection": delete_protection, "SubnetChangeProtection": subnet_change_protection,
        "FirewallPolicyChangeProtection": policy_change_protection}
    if description:
        firewall["Description"] = description
    firewall.update({"FirewallId": uuid_id("firewall", arn), "Tags": tags,
                     "EncryptionConfiguration": {"KeyId": "AWS_OWNED_KMS_KEY", "Type": "AWS_OWNED_KMS_KEY"}})
    states = {az: {"Attachment": {"SubnetId": s, "EndpointId": e, "Status": "READY"}, "Config": config}
              for az, s, e in endpoints}
    return {"UpdateToken": uuid_id("token", arn), "Firewall": firewall,
            "FirewallStatus": {"Status": "READY", "ConfigurationSyncStateSummary": "IN_SYNC", "SyncStates": states}}


def policy_shape(name: str, arn: str, body: dict[str, Any], description: str | None = None,
                 tags: list[dict[str, str]] | None = None, v2: bool = False) -> dict[str, Any]:
    """describe-firewall-policy's output (describe-firewall-policy-v2's with v2)."""
    key = "FirewallPolicyV2" if v2 else "FirewallPolicy"
    response: dict[str, Any] = {f"{key}Name": name, f"{key}Arn": arn, f"{key}Id": uuid_id("policy", arn)}
    if description:
        response["Description"] = description
    response.update({f"{key}Status": "ACTIVE", "Tags": tags or [], "NumberOfAssociations": 1,
                     "EncryptionConfiguration": {"KeyId": "AWS_OWNED_KMS_KEY", "Type": "AWS_OWNED_KMS_KEY"}})
    return {"UpdateToken": uuid_id("token", arn), f"{key}Response": response, key: body}


def rule_group_shape(name: str, arn: str, group_type: str, capacity: int, body_key: str, body: dict[str, Any],
                     consumed: int | None = None, description: str | None = None,
                     tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """describe-rule-group's output."""
    response: dict[str, Any] = {"RuleGroupArn": arn, "RuleGroupName": name, "RuleGroupId": uuid_id("group", arn)}
    if description:
        response["Description"] = description
    response.update({"Type": group_type, "Capacity": capacity, "RuleGroupStatus": "ACTIVE", "Tags": tags or []})
    if consumed is not None:
        response["ConsumedCapacity"] = consumed
    response.update({"NumberOfAssociations": 1,
                     "EncryptionConfiguration": {"KeyId": "AWS_OWNED_KMS_KEY", "Type": "AWS_OWNED_KMS_KEY"}})
    return {"UpdateToken": uuid_id("token", arn), body_key: body, "RuleGroupResponse": response}


def logging_shape(firewall_arn: str, configs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"FirewallArn": firewall_arn, "LoggingConfiguration": {"LogDestinationConfigs": configs}}


# --------------------------------------------------------------------------
# The lab's policy as one document
# --------------------------------------------------------------------------
def group_name_of(data: Any) -> str | None:
    """A rule group document's name (RuleGroupName, or RuleGroupResponse.RuleGroupName)."""
    if not isinstance(data, dict):
        return None
    name = data.get("RuleGroupName") or (data.get("RuleGroupResponse") or {}).get("RuleGroupName")
    return str(name) if name else None


def group_entry(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """A rule group document as an entry of the one-file form's RuleGroups: {RuleGroupName, <body>,
    RuleGroupResponse}, whatever form it was written in (describe-rule-group output, or its RuleGroup part)."""
    response = dict(data.get("RuleGroupResponse") or {})
    body_key = next((k for k in GROUP_BODIES if k in data), None)
    if body_key is None:  # the RuleGroup part on its own
        body_key = "RuleGroup"
        body = {k: v for k, v in data.items() if k not in ("RuleGroupName", "RuleGroupResponse", "Capacity")}
    else:
        body = data[body_key]
    if "Capacity" in data and "Capacity" not in response:
        response["Capacity"] = data["Capacity"]
    response["RuleGroupName"] = name
    if "Type" not in response:
        response["Type"] = BODY_TYPES.get(body_key) or ("STATELESS" if is_stateless({"RuleGroup": body})
                                                        else "STATEFUL")
    return {"RuleGroupName": name, body_key: copy.deepcopy(body), "RuleGroupResponse": response}


def _lone_group_policy(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A rule group on its own as the lab runs it (policy.policy_from_group): a policy with AWS's defaults around
    the group, the group its only reference."""
    policy: dict[str, Any] = {"StatelessDefaultActions": list(FORWARD),
                              "StatelessFragmentDefaultActions": list(FORWARD)}
    if entry["RuleGroupResponse"].get("Type") == "STATELESS":
        policy["StatelessRuleGroupReferences"] = [{"RuleGroupName": name, "Priority": 1}]
    else:
        order = (entry["RuleGroup"].get("StatefulRuleOptions") or {}).get("RuleOrder") or DEFAULT_ORDER
        reference: dict[str, Any] = {"RuleGroupName": name}
        if order == STRICT_ORDER:
            reference["Priority"] = 1
        policy["StatefulRuleGroupReferences"] = [reference]
        policy["StatefulEngineOptions"] = {"RuleOrder": order}
    return {"FirewallPolicyName": name, "FirewallPolicy": policy, "RuleGroups": [entry]}


def _references(data: dict[str, Any]) -> list[str]:
    """The names of the rule groups a policy document references (Classic or Next Generation)."""
    out: list[str] = []
    v2 = is_nextgen(data)
    for _, _, e in rule_group_references(data.get("FirewallPolicyV2" if v2 else "FirewallPolicy"), v2):
        ref = e.get("ResourceArn") or e.get("RuleGroupName")
        if isinstance(ref, str) and arn_name(ref) not in out:
            out.append(arn_name(ref))
    return out


def policy_document(path: str | Path, extra: Sequence[str | Path] = ()) -> dict[str, Any]:
    """The lab's effective policy for any policy file it accepts, in its one-file form: the policy's keys
    (describe-firewall-policy's, or -v2's) and a `RuleGroups` list holding every group it references.

    A rule group on its own becomes the policy the lab runs for it (AWS's defaults around it); a Suricata rules
    file (*.rules) one RulesString group. `extra`: files of referenced rule groups, as `nfwlab up` takes them.
    The file is validated as the lab validates it (ConfigError otherwise)."""
    path = Path(path)
    if path.suffix == ".rules":
        rules_file_policy(path)
        entry = group_entry(path.stem, {"RuleGroup": {"RulesSource": {"RulesString": path.read_text()}},
                                        "RuleGroupResponse": {"Type": "STATEFUL"}})
        return _lone_group_policy(path.stem, entry)
    policy = load_any_policy(path, extra)
    data = read_document(path, "policy or rule group file")
    available: dict[str, dict[str, Any]] = {}
    for p in extra:
        gdata = read_document(p, "rule group file")
        if isinstance(gdata, dict):
            available.setdefault(group_name_of(gdata) or Path(p).stem, gdata)
    if "FirewallPolicy" not in data and not is_nextgen(data):  # a rule group on its own
        group = parse_any_group(data, str(path))
        return _lone_group_policy(group.name, group_entry(group.name, data))
    for entry in data.get("RuleGroups") or []:
        name = group_name_of(entry)
        if name:
            available[name] = entry
    groups = []
    for name in _references(data):
        if name not in available:
            for ext in (".json", ".yaml", ".yml"):
                candidate = path.parent / f"{name}{ext}"
                if candidate.is_file():
                    available[name] = read_document(candidate, "rule group file")
                    break
        groups.append(group_entry(name, available[name]))  # found: the policy loaded above
    key = "FirewallPolicyV2" if is_nextgen(data) else "FirewallPolicy"
    out: dict[str, Any] = {f"{key}Name": policy.name, key: copy.deepcopy(data[key]), "RuleGroups": groups}
    if data.get(f"{key}Response"):
        out[f"{key}Response"] = copy.deepcopy(data[f"{key}Response"])
    return out


def _needed_capacity(entry: dict[str, Any]) -> int | None:
    """The capacity a rule group's rules use, as the lab counts it (None: not countable here)."""
    try:
        if "RuleGroup" not in entry:
            return None
        group = parse_any_group({"RuleGroupName": entry["RuleGroupName"], "RuleGroup": entry["RuleGroup"]},
                                "<export>")
    except ConfigError:
        return None
    return group.consumed_capacity() if isinstance(group, StatelessGroup) else len(group.rules)


def _policy_parts(document: dict[str, Any], region: str, account: str
                  ) -> tuple[str, str, bool, dict[str, Any], list[dict[str, Any]], dict[str, str]]:
    """(policy name, policy ARN, Next Generation?, policy body with ARNs, RuleGroups entries, group name -> ARN)."""
    v2 = is_nextgen(document)
    key = "FirewallPolicyV2" if v2 else "FirewallPolicy"
    if not isinstance(document.get(key), dict):
        raise ConfigError("the policy document has no FirewallPolicy (nor FirewallPolicyV2)",
                          "give the lab's one-file policy form: policy_document(path) makes it from any policy file")
    name = (document.get(f"{key}Name") or (document.get(f"{key}Response") or {}).get(f"{key}Name") or "policy")
    entries = [group_entry(group_name_of(e) or f"group-{i + 1}", e)
               for i, e in enumerate(document.get("RuleGroups") or [])]
    arns = {e["RuleGroupName"]: nfw_arn(region, account, group_arn_kind(e["RuleGroupResponse"]["Type"]),
                                        e["RuleGroupName"]) for e in entries}
    body = copy.deepcopy(document[key])
    lists = REFERENCE_LISTS[v2]
    if not v2:
        body.setdefault("StatelessDefaultActions", list(FORWARD))
        body.setdefault("StatelessFragmentDefaultActions", list(FORWARD))
    for lst in lists:
        for ref in body.get(lst) or []:
            target = ref.pop("RuleGroupName", None) or ref.get("ResourceArn")
            if isinstance(target, str):
                gname = arn_name(target)
                if gname not in arns:
                    raise ConfigError(f"the policy references rule group {gname}, which its RuleGroups list lacks",
                                      "policy_document(path) gathers every referenced group")
                ordered = {"ResourceArn": arns[gname]}
                ordered.update({k: v for k, v in ref.items() if k != "ResourceArn"})
                ref.clear()
                ref.update(ordered)
    return str(name), nfw_arn(region, account, "firewall-policy", str(name)), v2, body, entries, arns


# --------------------------------------------------------------------------
# The lab as an account dump
# --------------------------------------------------------------------------
def dump_from_lab(topology: Topology, policy_document: dict[str, Any], account: str = DEFAULT_ACCOUNT) -> Dump:
    """The lab's VPC and policy as the read-only describe calls print them (lab/aws/dump.py)."""
    vpc, region = topology.vpc, topology.vpc.region
    subnets = {s.name: s for s in vpc.subnets}
    dump: Dump = {}
    dump["describe-vpcs"] = {"Vpcs": [vpc_shape(vpc.id, str(vpc.cidr), account, tag_list(topology.name))]}
    used: dict[str, int] = {s.name: 0 for s in vpc.subnets}
    for placed in [*(s.subnet for s in vpc.servers), *(n.subnet for n in vpc.nat_gateways),
                   *(e.subnet for e in vpc.endpoints)]:
        used[placed] += 1
    dump["describe-subnets"] = {"Subnets": [
        subnet_shape(s.id, vpc.id, str(s.cidr), s.availability_zone, account, region, tag_list(s.name),
                     s.cidr.num_addresses - 5 - used[s.name]) for s in vpc.subnets]}

    tables = route_table_json(vpc, topology.route_tables)["RouteTables"]
    for t in tables:
        t["PropagatingVgws"] = []
        t["OwnerId"] = account
    # AWS gives every VPC a main route table (the local route only): subnets without a table of their own use
    # it. Every subnet of a lab has its own, so the main table serves none.
    main_id = aws_id("rtb", vpc.id, "main")
    tables.append(route_table_shape(main_id, vpc.id, account, [local_route(str(vpc.cidr))],
                                    [main_association(main_id)], []))
    dump["describe-route-tables"] = {"RouteTables": tables}

    igw = vpc.internet_gateway
    dump["describe-internet-gateways"] = {"InternetGateways": [
        igw_shape(igw.id, [vpc.id], account, tag_list(igw.name))]}

    nats, addresses, interfaces = [], [], []
    for n in vpc.nat_gateways:
        alloc, eni = aws_id("eipalloc", vpc.id, n.name), aws_id("eni", vpc.id, n.name)
        assoc = aws_id("eipassoc", vpc.id, n.name)
        subnet = subnets[n.subnet]
        nats.append(nat_shape(n.id, subnet.id, vpc.id, str(n.private_ip), tag_list(n.name), alloc,
                              str(n.elastic_ip), eni, assoc))
        addresses.append(address_shape(alloc, str(n.elastic_ip), account, region, tag_list(n.name), assoc, eni,
                                       str(n.private_ip)))
        interfaces.append(eni_shape(eni, subnet.id, vpc.id, subnet.availability_zone, str(n.private_ip), account,
                                    region, "nat_gateway", f"Interface for NAT Gateway {n.id}", [], True,
                                    {"IpOwnerId": "amazon", "PublicDnsName": "", "PublicIp": str(n.elastic_ip),
                                     "AllocationId": alloc, "AssociationId": assoc}))
    dump["describe-nat-gateways"] = {"NatGateways": nats}
    dump["describe-addresses"] = {"Addresses": addresses}

    reservations = []
    for s in vpc.servers:
        subnet = subnets[s.subnet]
        instance_id, eni = aws_id("i", vpc.id, s.name), aws_id("eni", vpc.id, s.name)
        reservations.append(reservation_shape(instance_id, AMI_PLACEHOLDER, "t3.micro", subnet.id,
                                              vpc.id, str(s.ip), subnet.availability_zone, eni, account, region,
                                              tag_list(s.name)))
        interfaces.append(eni_shape(eni, subnet.id, vpc.id, subnet.availability_zone, str(s.ip), account, region,
                                    "interface", "", tag_list(s.name), False, instance_id=instance_id))
    dump["describe-instances"] = {"Reservations": reservations}
    for e in vpc.endpoints:
        subnet = subnets[e.subnet]
        interfaces.append(eni_shape(aws_id("eni", vpc.id, e.name), subnet.id, vpc.id, e.availability_zone,
                                    str(e.ip), account, region, "gateway_load_balancer_endpoint",
                                    f"VPC Endpoint Interface {e.id}", tag_list(e.name), True))
    dump["describe-network-interfaces"] = {"NetworkInterfaces": interfaces}

    name, policy_arn, v2, body, entries, arns = _policy_parts(policy_document, region, account)
    firewall_arn = nfw_arn(region, account, "firewall", vpc.firewall_name)
    dump["describe-firewall"] = firewall_shape(
        vpc.firewall_name, firewall_arn, policy_arn, vpc.id,
        [(e.availability_zone, subnets[e.subnet].id, e.id) for e in vpc.endpoints], [policy_arn, *arns.values()],
        tag_list(vpc.firewall_name))
    key = "FirewallPolicyV2" if v2 else "FirewallPolicy"
    description = (policy_document.get(f"{key}Response") or {}).get("Description")
    dump["describe-firewall-policy"] = policy_shape(name, policy_arn, body, description, v2=v2)
    groups = []
    for entry in entries:
        response = entry["RuleGroupResponse"]
        body_key = next(k for k in GROUP_BODIES if k in entry)
        needed = _needed_capacity(entry)
        capacity = response.get("Capacity") or max(DEFAULT_CAPACITY, needed or 0)
        groups.append(rule_group_shape(entry["RuleGroupName"], arns[entry["RuleGroupName"]], response["Type"],
                                       capacity, body_key, entry[body_key], needed, response.get("Description")))
    dump[RULE_GROUPS] = groups
    dump["describe-logging-configuration"] = logging_shape(firewall_arn, [
        {"LogType": kind, "LogDestinationType": "CloudWatchLogs",
         "LogDestination": {"logGroup": f"/aws/network-firewall/{vpc.firewall_name}/{kind.lower()}"}}
        for kind in ("ALERT", "FLOW")])
    return dump


def write_dump(dump: Dump, folder: Path) -> list[Path]:
    """Writes a dump in lab/aws/dump.py's layout (one JSON file per call, one per rule group); the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for call, content in dump.items():
        if call == RULE_GROUPS:
            for group in content:
                name = group_name_of(group)
                if not name or not re.fullmatch(r"[A-Za-z0-9-]+", name):
                    raise ConfigError(f"a rule group's name {name!r} can't name its file",
                                      "AWS names rule groups with letters, digits and '-'")
                path = folder / f"{RULE_GROUPS}-{name}.json"
                path.write_text(json.dumps(group, indent=4) + "\n")
                written.append(path)
            continue
        path = folder / f"{call}.json"
        path.write_text(json.dumps(content, indent=4) + "\n")
        written.append(path)
    return written


# --------------------------------------------------------------------------
# The lab as Terraform
# --------------------------------------------------------------------------
def hcl_string(text: str) -> str:
    """A quoted HCL string for `text`: escapes, and template sequences (${, %{) kept literal."""
    out = json.dumps(text, ensure_ascii=False)
    return out.replace("${", "$${").replace("%{", "%%{")


def _hcl_text(text: str, indent: str) -> str:
    """A multi-line text (Suricata rules) as an indented heredoc when it can be one exactly, else a string."""
    lines = text.split("\n")
    body = lines[:-1] if text.endswith("\n") else lines
    marker = "EOT"
    while any(line.strip() == marker for line in body):
        marker += "X"
    flush = any(line and not line[0].isspace() for line in body)  # `<<-` strips the smallest indent: ours
    if len(body) < 2 or not flush or "\r" in text:
        return hcl_string(text)
    inner = indent + "  "
    content = "\n".join((inner + line) if line else "" for line in body)
    content = content.replace("${", "$${").replace("%{", "%%{")
    heredoc = f"<<-{marker}\n{content}\n{inner}{marker}"
    return heredoc if text.endswith("\n") else f"chomp({heredoc})"


def _hcl_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return hcl_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_hcl_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_hcl_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no HCL for {value!r}")


class _Raw(str):
    """An HCL expression written as is (a reference, a function call)."""


class _Block:
    """An HCL block: attributes (aligned, as `terraform fmt` writes them) and nested blocks, in order."""

    def __init__(self, header: str):
        self.header = header
        self.items: list[tuple[str, Any]] = []

    def set(self, key: str, value: Any) -> _Block:
        if value is not None:
            self.items.append((key, value))
        return self

    def block(self, header: str) -> _Block:
        child = _Block(header)
        self.items.append(("", child))
        return child

    def render(self, indent: str = "") -> str:
        lines = [f"{indent}{self.header} {{"]
        inner = indent + "  "
        run: list[tuple[str, str]] = []

        def flush() -> None:
            width = max((len(k) for k, _ in run), default=0)
            lines.extend(f"{inner}{k.ljust(width)} = {v}" for k, v in run)
            run.clear()

        for key, value in self.items:
            if isinstance(value, _Block):
                flush()
                lines.append(value.render(inner))
            elif isinstance(value, _Text):
                flush()
                lines.append(f"{inner}{key} = {_hcl_text(value, inner)}")
            else:
                run.append((key, value if isinstance(value, _Raw) else _hcl_value(value)))
        flush()
        lines.append(f"{indent}}}")
        return "\n".join(lines)


class _Text(str):
    """A multi-line text attribute (written as a heredoc where it can be)."""


class _Names:
    """Terraform-safe resource names from the lab's names, unique per resource type."""

    def __init__(self) -> None:
        self.used: dict[str, set[str]] = {}

    def __call__(self, rtype: str, name: str) -> str:
        ident = re.sub(r"[^A-Za-z0-9_]", "_", name.strip()) or "x"
        if not re.match(r"[A-Za-z_]", ident):
            ident = "_" + ident
        taken = self.used.setdefault(rtype, set())
        candidate, n = ident, 2
        while candidate in taken:
            candidate, n = f"{ident}_{n}", n + 1
        taken.add(candidate)
        return candidate


def _tf_variables(block: _Block, variables: dict[str, Any], sets: str, one: str) -> None:
    for key, value in (variables or {}).items():
        entry = block.block(sets)
        entry.set("key", key)
        entry.block(one).set("definition", list(value.get("Definition") or []))


def _tf_custom_actions(block: _Block, actions: list[dict[str, Any]], header: str) -> None:
    for action in actions or []:
        a = block.block(header)
        a.set("action_name", action.get("ActionName"))
        metric = a.block("action_definition").block("publish_metric_action")
        for dim in (action.get("ActionDefinition") or {}).get("PublishMetricAction", {}).get("Dimensions") or []:
            metric.block("dimension").set("value", dim.get("Value"))


def _tf_ports(block: _Block, header: str, ports: list[dict[str, Any]]) -> None:
    for p in ports or []:
        b = block.block(header)
        b.set("from_port", p.get("FromPort"))
        b.set("to_port", p.get("ToPort"))


def _tf_rule_group(resource: _Block, entry: dict[str, Any]) -> None:
    """describe-rule-group's RuleGroup as the resource's rule_group block."""
    body = entry["RuleGroup"]
    rg = resource.block("rule_group")
    variables = body.get("RuleVariables") or {}
    if variables.get("IPSets") or variables.get("PortSets"):
        rv = rg.block("rule_variables")
        _tf_variables(rv, variables.get("IPSets") or {}, "ip_sets", "ip_set")
        _tf_variables(rv, variables.get("PortSets") or {}, "port_sets", "port_set")
    references = (body.get("ReferenceSets") or {}).get("IPSetReferences") or {}
    if references:
        rs = rg.block("reference_sets")
        for key, value in references.items():
            ref = rs.block("ip_set_references")
            ref.set("key", key)
            ref.block("ip_set_reference").set("reference_arn", value.get("ReferenceArn"))
    src = body.get("RulesSource") or {}
    out = rg.block("rules_source")
    if "RulesString" in src:
        out.set("rules_string", _Text(src["RulesString"]))
    if "RulesSourceList" in src:
        lst = src["RulesSourceList"]
        b = out.block("rules_source_list")
        b.set("generated_rules_type", lst.get("GeneratedRulesType"))
        b.set("target_types", list(lst.get("TargetTypes") or []))
        b.set("targets", list(lst.get("Targets") or []))
    for rule in src.get("StatefulRules") or []:
        b = out.block("stateful_rule")
        b.set("action", rule.get("Action"))
        header = rule.get("Header") or {}
        h = b.block("header")
        for key, aws in (("destination", "Destination"), ("destination_port", "DestinationPort"),
                         ("direction", "Direction"), ("protocol", "Protocol"), ("source", "Source"),
                         ("source_port", "SourcePort")):
            h.set(key, header.get(aws, "FORWARD" if aws == "Direction" else "ANY"))
        for option in rule.get("RuleOptions") or []:
            o = b.block("rule_option")
            o.set("keyword", option.get("Keyword"))
            if option.get("Settings"):
                o.set("settings", list(option["Settings"]))
    stateless = src.get("StatelessRulesAndCustomActions")
    if stateless:
        b = out.block("stateless_rules_and_custom_actions")
        _tf_custom_actions(b, stateless.get("CustomActions") or [], "custom_action")
        for rule in stateless.get("StatelessRules") or []:
            r = b.block("stateless_rule")
            r.set("priority", rule.get("Priority"))
            definition = rule.get("RuleDefinition") or {}
            d = r.block("rule_definition")
            d.set("actions", list(definition.get("Actions") or []))
            match = definition.get("MatchAttributes") or {}
            m = d.block("match_attributes")
            if match.get("Protocols"):
                m.set("protocols", list(match["Protocols"]))
            for header, aws in (("source", "Sources"), ("destination", "Destinations")):
                for a in match.get(aws) or []:
                    m.block(header).set("address_definition", a.get("AddressDefinition"))
            _tf_ports(m, "source_port", match.get("SourcePorts") or [])
            _tf_ports(m, "destination_port", match.get("DestinationPorts") or [])
            for flags in match.get("TCPFlags") or []:
                f = m.block("tcp_flag")
                f.set("flags", list(flags.get("Flags") or []))
                if flags.get("Masks"):
                    f.set("masks", list(flags["Masks"]))
    order = (body.get("StatefulRuleOptions") or {}).get("RuleOrder")
    if order:
        rg.block("stateful_rule_options").set("rule_order", order)


NEXT_GENERATION_HINT = ("keep the Terraform for the VPC and the firewall by exporting the lab with a Classic policy, "
                        "and create the Next Generation policy with the AWS CLI (`aws network-firewall "
                        "create-firewall-policy-v2`, its document from the dump: write_dump's "
                        "describe-firewall-policy.json); then set the firewall's firewall_policy_arn to its ARN")


def terraform_from_lab(topology: Topology, policy_document: dict[str, Any]) -> str:
    """The lab's VPC, firewall and policy as Terraform for hashicorp/aws (>= 5.0); no provider block.

    What AWS decides itself is not written: the firewall endpoints' addresses (AWS picks them in their
    subnets), the servers' image (the `ami` variable), security groups (the VPC's default)."""
    if is_nextgen(policy_document):
        # hashicorp/aws 5.100.0 has aws_networkfirewall_firewall_policy (Classic) and no resource for V2.
        raise ConfigError("the lab's policy is a Next Generation policy (FirewallPolicyV2): the Terraform "
                          "provider has no resource for Next Generation policies", NEXT_GENERATION_HINT)
    vpc = topology.vpc
    names = _Names()
    blocks: list[str] = []

    def add(block: _Block, comment: str = "") -> None:
        lines = textwrap.wrap(comment, 116) if comment else []
        blocks.append("".join(f"# {line}\n" for line in lines) + block.render())

    def tags(name: str) -> _Raw:
        return _Raw("{ Name = " + hcl_string(name) + " }")

    head = _Block("terraform")
    head.block("required_providers").set("aws", _Raw('{ source = "hashicorp/aws", version = ">= 5.0" }'))
    add(head)
    ami = _Block('variable "ami"')
    ami.set("description", "The servers' image. The placeholder does for the lab's own endpoint (nfwlab serve); "
            f"on AWS give an x86_64 Linux AMI of {vpc.region}")
    ami.set("type", _Raw("string"))
    ami.set("default", AMI_PLACEHOLDER)
    add(ami)

    vpc_name = names("aws_vpc", topology.name)
    vpc_ref = f"aws_vpc.{vpc_name}.id"
    b = _Block(f'resource "aws_vpc" "{vpc_name}"')
    b.set("cidr_block", str(vpc.cidr)).set("tags", tags(topology.name))
    add(b, f"{topology.name}: {topology.route_tables.description}" if topology.route_tables.description
        else topology.name)

    subnet_ref: dict[str, str] = {}
    for s in vpc.subnets:
        n = names("aws_subnet", s.name)
        subnet_ref[s.name] = f"aws_subnet.{n}.id"
        b = _Block(f'resource "aws_subnet" "{n}"')
        b.set("vpc_id", _Raw(vpc_ref)).set("cidr_block", str(s.cidr)).set("availability_zone", s.availability_zone)
        b.set("tags", tags(s.name))
        add(b)

    igw = vpc.internet_gateway
    igw_name = names("aws_internet_gateway", igw.name)
    b = _Block(f'resource "aws_internet_gateway" "{igw_name}"')
    b.set("vpc_id", _Raw(vpc_ref)).set("tags", tags(igw.name))
    add(b)

    nat_ref: dict[str, str] = {}
    for nat in vpc.nat_gateways:
        eip = names("aws_eip", nat.name)
        b = _Block(f'resource "aws_eip" "{eip}"')
        b.set("domain", "vpc").set("address", str(nat.elastic_ip)).set("tags", tags(nat.name))
        add(b, f"{nat.name}'s Elastic IP: `address` asks for this one (a BYOIP pool's); leave it out for any")
        n = names("aws_nat_gateway", nat.name)
        nat_ref[nat.name] = f"aws_nat_gateway.{n}.id"
        b = _Block(f'resource "aws_nat_gateway" "{n}"')
        b.set("allocation_id", _Raw(f"aws_eip.{eip}.id")).set("subnet_id", _Raw(subnet_ref[nat.subnet]))
        b.set("private_ip", str(nat.private_ip)).set("tags", tags(nat.name))
        b.set("depends_on", _Raw(f"[aws_internet_gateway.{igw_name}]"))
        add(b)

    for server in vpc.servers:
        n = names("aws_instance", server.name)
        b = _Block(f'resource "aws_instance" "{n}"')
        b.set("ami", _Raw("var.ami")).set("instance_type", "t3.micro")
        b.set("subnet_id", _Raw(subnet_ref[server.subnet])).set("private_ip", str(server.ip))
        b.set("tags", tags(server.name))
        add(b)

    # The policy and its rule groups
    name, _, _, body, entries, _ = _policy_parts(policy_document, vpc.region, DEFAULT_ACCOUNT)
    group_ref: dict[str, str] = {}
    for entry in entries:
        if "RuleGroup" not in entry:
            raise ConfigError(f"rule group {entry['RuleGroupName']} is a {entry['RuleGroupResponse']['Type']} rule "
                              "group (Next Generation)", NEXT_GENERATION_HINT)
        n = names("aws_networkfirewall_rule_group", entry["RuleGroupName"])
        group_ref[entry["RuleGroupName"]] = f"aws_networkfirewall_rule_group.{n}.arn"
        response = entry["RuleGroupResponse"]
        b = _Block(f'resource "aws_networkfirewall_rule_group" "{n}"')
        b.set("name", entry["RuleGroupName"]).set("type", response["Type"])
        b.set("capacity", response.get("Capacity") or max(DEFAULT_CAPACITY, _needed_capacity(entry) or 0))
        b.set("description", response.get("Description"))
        _tf_rule_group(b, entry)
        add(b)
    policy_name = names("aws_networkfirewall_firewall_policy", name)
    p = _Block(f'resource "aws_networkfirewall_firewall_policy" "{policy_name}"')
    p.set("name", name)
    p.set("description", (policy_document.get("FirewallPolicyResponse") or {}).get("Description"))
    fp = p.block("firewall_policy")
    fp.set("stateless_default_actions", body.get("StatelessDefaultActions") or FORWARD)
    fp.set("stateless_fragment_default_actions", body.get("StatelessFragmentDefaultActions") or FORWARD)
    if body.get("StatefulDefaultActions"):
        fp.set("stateful_default_actions", list(body["StatefulDefaultActions"]))
    if body.get("TLSInspectionConfigurationArn"):
        fp.set("tls_inspection_configuration_arn", body["TLSInspectionConfigurationArn"])
    engine = body.get("StatefulEngineOptions") or {}
    if engine:
        eb = fp.block("stateful_engine_options")
        eb.set("rule_order", engine.get("RuleOrder"))
        eb.set("stream_exception_policy", engine.get("StreamExceptionPolicy"))
        idle = (engine.get("FlowTimeouts") or {}).get("TcpIdleTimeoutSeconds")
        if idle is not None:
            eb.block("flow_timeouts").set("tcp_idle_timeout_seconds", idle)
    home = ((body.get("PolicyVariables") or {}).get("RuleVariables") or {})
    if home:
        _tf_variables(fp.block("policy_variables"), home, "rule_variables", "ip_set")
    for ref in body.get("StatelessRuleGroupReferences") or []:
        r = fp.block("stateless_rule_group_reference")
        r.set("priority", ref.get("Priority")).set("resource_arn", _Raw(group_ref[arn_name(ref["ResourceArn"])]))
    for ref in body.get("StatefulRuleGroupReferences") or []:
        r = fp.block("stateful_rule_group_reference")
        r.set("priority", ref.get("Priority")).set("resource_arn", _Raw(group_ref[arn_name(ref["ResourceArn"])]))
        if (ref.get("Override") or {}).get("Action"):
            r.block("override").set("action", ref["Override"]["Action"])
    _tf_custom_actions(fp, body.get("StatelessCustomActions") or [], "stateless_custom_action")
    add(p)

    fw_name = names("aws_networkfirewall_firewall", vpc.firewall_name)
    f = _Block(f'resource "aws_networkfirewall_firewall" "{fw_name}"')
    f.set("name", vpc.firewall_name).set("firewall_policy_arn", _Raw(f"aws_networkfirewall_firewall_policy."
                                                                     f"{policy_name}.arn"))
    f.set("vpc_id", _Raw(vpc_ref))
    for e in vpc.endpoints:
        f.block("subnet_mapping").set("subnet_id", _Raw(subnet_ref[e.subnet]))
    f.set("tags", tags(vpc.firewall_name))
    add(f, "One endpoint per subnet mapping (per Availability Zone); AWS picks each endpoint's address in its subnet: "
           + ", ".join(f"the lab's {e.name} is {e.ip}" for e in vpc.endpoints))
    endpoints_local = f"{fw_name}_endpoints"
    loc = _Block("locals")
    loc.set(endpoints_local, _Raw(
        "{\n    for s in aws_networkfirewall_firewall." + fw_name + ".firewall_status[0].sync_states :\n"
        "    s.availability_zone => s.attachment[0].endpoint_id\n  }"))
    add(loc, "The firewall's endpoint (vpce-...) in each Availability Zone: the routes' targets")

    # Route tables: inline routes, unless a table sends traffic to two targets of one kind (then aws_route
    # resources, so that `terraform show -json` of a plan tells which route goes where).
    def target(route_target: str) -> tuple[str, str, str]:
        kind = vpc.target_kind(route_target)
        if kind == "nat-gateway":
            return "nat_gateway_id", nat_ref[route_target], kind
        if kind == FIREWALL_ENDPOINT:
            az = vpc.endpoint(route_target).availability_zone
            return "vpc_endpoint_id", f"local.{endpoints_local}[{hcl_string(az)}]", kind
        return "gateway_id", f"aws_internet_gateway.{igw_name}.id", kind

    for t in topology.route_tables.tables:
        n = names("aws_route_table", t.name)
        routes = [(r, *target(r.target)) for r in t.routes if r.target != LOCAL]
        kinds: dict[str, set[str]] = {}
        for _, _, ref, kind in routes:
            kinds.setdefault(kind, set()).add(ref)
        separate = any(len(refs) > 1 for refs in kinds.values())
        b = _Block(f'resource "aws_route_table" "{n}"')
        b.set("vpc_id", _Raw(vpc_ref))
        if not separate:
            for route, key, ref, _ in routes:
                b.block("route").set("cidr_block", str(route.destination)).set(key, _Raw(ref))
        b.set("tags", tags(t.name))
        add(b, "Edge route table (ingress routing): associated with the internet gateway" if t.is_edge(vpc) else "")
        if separate:
            for i, (route, key, ref, _) in enumerate(routes, 1):
                rn = names("aws_route", f"{n}_{i}")
                rb = _Block(f'resource "aws_route" "{rn}"')
                rb.set("route_table_id", _Raw(f"aws_route_table.{n}.id"))
                rb.set("destination_cidr_block", str(route.destination)).set(key, _Raw(ref))
                add(rb)
        for a in t.associations:
            an = names("aws_route_table_association", f"{n}_{a}")
            ab = _Block(f'resource "aws_route_table_association" "{an}"')
            if a == igw.name:
                ab.set("gateway_id", _Raw(f"aws_internet_gateway.{igw_name}.id"))
            else:
                ab.set("subnet_id", _Raw(subnet_ref[a]))
            ab.set("route_table_id", _Raw(f"aws_route_table.{n}.id"))
            add(ab)

    header = (f"# The nfwlab topology {topology.name} and policy {name} as Terraform (hashicorp/aws >= 5.0), "
              f"written by nfwlab.\n# Region {vpc.region}: set your provider's region to it (the subnets name its "
              "Availability Zones).\n# Not written: the emulated internet, security groups (the VPC's default), "
              "the servers' image (var.ami).\n")
    return header + "\n" + "\n\n".join(blocks) + "\n"
