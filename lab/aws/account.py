"""Import of an AWS account dump (lab/aws/dump.py's layout) into the lab's topology and one-file policy.

`load_dump` reads a dump folder, `import_dump` turns a dump (from a folder, from boto3 or from an export) into a
topology the lab's model accepts and a policy its loader accepts, with notes on what it approximated or dropped,
and `write_imported` writes both files. Every refusal names the dump file, the field and what to run or change.
"""
from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..model import RESERVED_NAMES, parse_topology, validate_domain
from ..nextgen import parse_nextgen
from ..policy import RuleGroup, parse_any_group, parse_policy
from ..stateless import StatelessGroup
from .dump import (
    EC2_CALLS,
    FIREWALL_CALLS,
    OPTIONAL_EC2_CALLS,
    OPTIONAL_FIREWALL_CALLS,
    RULE_GROUPS,
    Dump,
    rule_group_references,
)

NODE_NAME_MAX, SUBNET_NAME_MAX, TABLE_NAME_MAX = 15, 12, 63  # lab/model.py's limits (route tables: the lab's own)
INTERNET = {"cidr": "203.0.113.0/24", "web_server": "203.0.113.10"}
DEFAULT_DOMAINS = ["allowed.example", "blocked.example", "example.test", "a.example.test"]
DUMP_SCRIPT = "scripts/aws-dump.sh"
GATEWAY_NAME_MAX = 40  # model.SERVICE_NAME_RE
RUNNING_STATES = ("pending", "running", "stopping", "stopped")
GONE_STATES = ("shutting-down", "terminated")
NAT_STATES = ("available", "pending")
# The top-level key each call's output holds.
TOP_KEYS = {"describe-vpcs": "Vpcs", "describe-subnets": "Subnets", "describe-route-tables": "RouteTables",
            "describe-nat-gateways": "NatGateways", "describe-internet-gateways": "InternetGateways",
            "describe-addresses": "Addresses", "describe-instances": "Reservations",
            "describe-network-interfaces": "NetworkInterfaces"}
# Route targets the lab has no node for, by the route's field: what they are, for the notes.
UNSUPPORTED_TARGETS = {"TransitGatewayId": "a transit gateway", "VpcPeeringConnectionId": "a VPC peering connection",
                       "InstanceId": "an instance", "NetworkInterfaceId": "a network interface",
                       "LocalGatewayId": "a local gateway", "CarrierGatewayId": "a carrier gateway",
                       "EgressOnlyInternetGatewayId": "an egress-only internet gateway",
                       "CoreNetworkArn": "a Cloud WAN core network", "OdbNetworkArn": "an ODB network"}


@dataclass(frozen=True)
class Imported:
    """What an account dump becomes: a topology (the lab's format, YAML-able), a policy (the lab's one-file
    form), and what was approximated or dropped on the way."""

    topology: dict[str, Any]
    policy: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    source: str = ""


# --------------------------------------------------------------------------
# Reading a dump folder
# --------------------------------------------------------------------------
def _region_of(arn: Any) -> str | None:
    parts = arn.split(":") if isinstance(arn, str) else []
    return parts[3] if len(parts) > 5 and parts[3] else None


def _command(call: str, folder: str, vpc_id: str | None = None, region: str | None = None,
             firewall: dict[str, Any] | None = None, arn: str | None = None) -> str:
    """The AWS CLI command that writes `call`'s file of a dump in `folder`."""
    firewall = firewall or {}
    region = region or _region_of(firewall.get("FirewallArn")) or "<region>"
    vpc = vpc_id or firewall.get("VpcId") or "<vpc-id>"
    in_vpc = f"--filters Name=vpc-id,Values={vpc}"
    args = {"describe-vpcs": f"ec2 describe-vpcs --vpc-ids {vpc}",
            "describe-subnets": f"ec2 describe-subnets {in_vpc}",
            "describe-route-tables": f"ec2 describe-route-tables {in_vpc}",
            "describe-nat-gateways": f"ec2 describe-nat-gateways --filter Name=vpc-id,Values={vpc}",
            "describe-internet-gateways": f"ec2 describe-internet-gateways --filters Name=attachment.vpc-id,"
                                          f"Values={vpc}",
            "describe-addresses": "ec2 describe-addresses",
            "describe-instances": f"ec2 describe-instances {in_vpc}",
            "describe-network-interfaces": f"ec2 describe-network-interfaces {in_vpc}",
            "describe-firewall": "network-firewall describe-firewall " + (
                f"--firewall-arn {firewall['FirewallArn']}" if firewall.get("FirewallArn") else
                f"--firewall-name <name> (the name: aws network-firewall list-firewalls --region {region} "
                f"--vpc-ids {vpc})"),
            "describe-firewall-policy": "network-firewall describe-firewall-policy --firewall-policy-arn "
                                        + str(firewall.get("FirewallPolicyArn") or "<the firewall's "
                                              "FirewallPolicyArn>")
                                        + " (describe-firewall-policy-v2 --firewall-policy-v2-arn ... for a Next "
                                          "Generation policy)",
            "describe-logging-configuration": "network-firewall describe-logging-configuration --firewall-arn "
                                              + str(firewall.get("FirewallArn") or "<firewall-arn>")}
    if call.startswith(RULE_GROUPS + "-") or call == RULE_GROUPS:
        name = call[len(RULE_GROUPS) + 1:] or "<name>"
        return (f"aws network-firewall describe-rule-group --region {region} --rule-group-arn {arn or '<arn>'} "
                f"--output json > {folder}/{RULE_GROUPS}-{name}.json")
    cmd, _, after = args[call].partition(" (")
    return f"aws {cmd} --region {region} --output json > {folder}/{call}.json" + (f" ({after}" if after else "")


def _hint(call: str, folder: str, **known: Any) -> str:
    return (f"run `{_command(call, folder, **known)}`, or make the whole dump with `{DUMP_SCRIPT} --region REGION "
            f"--vpc-id VPC_ID --out {folder}`")


def _read_json(path: Path, call: str, folder: str, **known: Any) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing from the dump", _hint(call, folder, **known)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read ({e.__class__.__name__})", _hint(call, folder, **known)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})", "write it again: " + _hint(call, folder, **known)) \
            from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object (what `aws ... --output json` prints), got "
                          f"{type(data).__name__}", _hint(call, folder, **known))
    return data


def load_dump(folder: Path) -> Dump:
    """A dump folder's files (lab/aws/dump.py), each parsed; the rule groups as one list under "describe-rule-group".

    A required file missing or not JSON is a ConfigError naming the file and the command that writes it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder", f"give the folder {DUMP_SCRIPT} --out wrote")
    dump: Dump = {}
    known: dict[str, Any] = {}
    # The firewall first: its VPC, region and ARNs fill in the commands of the other files' hints.
    for call in ("describe-firewall", *EC2_CALLS, *FIREWALL_CALLS[1:]):
        dump[call] = _read_json(folder / f"{call}.json", call, str(folder), **known)
        if call == "describe-firewall" and isinstance(dump[call].get("Firewall"), dict):
            known = {"firewall": dump[call]["Firewall"]}
    for call in (*OPTIONAL_EC2_CALLS, *OPTIONAL_FIREWALL_CALLS):
        if (folder / f"{call}.json").exists():
            dump[call] = _read_json(folder / f"{call}.json", call, str(folder), **known)
    dump[RULE_GROUPS] = [_read_json(p, p.stem, str(folder), **known)
                         for p in sorted(folder.glob(f"{RULE_GROUPS}-*.json"))]
    return dump


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------
def clean_name(text: Any, limit: int) -> str:
    """`text` as a lab name: lower case, letters, digits and '-', starting with a letter, at most `limit`
    characters; "" when nothing usable is left."""
    s = re.sub(r"[^a-z0-9]+", "-", str(text or "").lower())
    s = re.sub(r"^[^a-z]+", "", s)
    return s[:limit].strip("-")


class Names:
    """Names in one namespace, made unique with a suffix (-2, -3, ...) that keeps them within the limit."""

    def __init__(self, limit: int, taken: tuple[str, ...] | list[str] = ()):
        self.limit, self.taken = limit, set(taken)

    def claim(self, wanted: Any, fallback: str, limit: int | None = None) -> str:
        limit = limit or self.limit
        base = clean_name(wanted, limit) or clean_name(fallback, limit) or "x"
        name, k = base, 2
        while name in self.taken:
            suffix = f"-{k}"
            name = base[:limit - len(suffix)].rstrip("-") + suffix
            k += 1
        self.taken.add(name)
        return name


def _tag(resource: dict[str, Any], key: str = "Name") -> str | None:
    for t in resource.get("Tags") or resource.get("TagSet") or []:
        if isinstance(t, dict) and t.get("Key") == key and str(t.get("Value") or "").strip():
            return str(t["Value"]).strip()
    return None


def _tail(resource_id: str, n: int) -> str:
    return resource_id.rsplit("-", 1)[-1][-n:]


def _plain(data: Any) -> Any:
    """JSON data only: boto3's datetimes as the CLI prints them (ISO 8601)."""
    if isinstance(data, dict):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_plain(v) for v in data]
    if isinstance(data, datetime.datetime | datetime.date):
        return data.isoformat()
    return data


# --------------------------------------------------------------------------
# The importer
# --------------------------------------------------------------------------
class _Importer:
    def __init__(self, dump: Dump, source: str, vpc_id: str | None):
        if not isinstance(dump, dict):
            raise ConfigError(f"{source}: not an account dump (got {type(dump).__name__})",
                              f"load it with load_dump, or make one with {DUMP_SCRIPT}")
        self.dump: Dump = dump
        self.source: str = source
        self.notes: list[str] = []
        self.nodes = Names(NODE_NAME_MAX, RESERVED_NAMES)  # node names: servers, NAT gateways, endpoints, the IGW
        fw_doc = self.document("describe-firewall")
        firewall = fw_doc.get("Firewall")
        if not isinstance(firewall, dict):
            raise self.fail("describe-firewall", "Firewall", "missing: not describe-firewall output",
                            self.hint("describe-firewall"))
        self.firewall: dict[str, Any] = firewall
        self.fw_status: dict[str, Any] = fw_doc.get("FirewallStatus") or {}
        fw_vpc = firewall.get("VpcId")
        if vpc_id is not None and fw_vpc != vpc_id:
            raise self.fail("describe-firewall", "Firewall.VpcId",
                            f"the dump's firewall {firewall.get('FirewallName')} is in {fw_vpc}, not in {vpc_id}: "
                            f"the dump has no firewall for {vpc_id}",
                            f"dump {vpc_id}'s firewall (`aws network-firewall list-firewalls --vpc-ids {vpc_id}` "
                            f"names it; {DUMP_SCRIPT} --vpc-id {vpc_id} finds it), or import {fw_vpc}")
        if not isinstance(fw_vpc, str) or not fw_vpc:
            raise self.fail("describe-firewall", "Firewall.VpcId", "missing", self.hint("describe-firewall"))
        self.vpc_id: str = fw_vpc

    # ---------------------------------------------------------------- access
    def label(self, call: str) -> str:
        return f"{self.source}: {call}.json"

    def fail(self, call: str, where: str, what: str, fix: str) -> ConfigError:
        return ConfigError(f"{self.label(call)}: {where}: {what}" if where else f"{self.label(call)}: {what}", fix)

    @property
    def folder(self) -> str:
        return self.source if Path(self.source).is_dir() else "<dump folder>"

    def hint(self, call: str) -> str:
        firewall = getattr(self, "firewall", None)
        vpc = getattr(self, "vpc_id", None)
        return f"run `{_command(call, self.folder, vpc_id=vpc, firewall=firewall)}` ({DUMP_SCRIPT} makes every file)"

    def document(self, call: str, optional: bool = False) -> dict[str, Any]:
        data = self.dump.get(call)
        if data is None:
            if optional:
                return {}
            raise ConfigError(f"{self.label(call)}: missing from the dump", self.hint(call))
        if not isinstance(data, dict):
            raise self.fail(call, "", f"expected a JSON object, got {type(data).__name__}", self.hint(call))
        return data

    def items(self, call: str, optional: bool = False) -> list[tuple[str, dict[str, Any]]]:
        """(field path, item) for each item of the call's list, e.g. ("Subnets[2]", {...})."""
        key = TOP_KEYS[call]
        doc = self.document(call, optional)
        if optional and not doc:
            return []
        items = doc.get(key)
        if not isinstance(items, list):
            raise self.fail(call, key, f"missing or not a list: not {call} output", self.hint(call))
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.fail(call, f"{key}[{i}]", f"expected an object, got {type(item).__name__}",
                                self.hint(call))
            out.append((f"{key}[{i}]", item))
        return out

    def need(self, call: str, where: str, item: dict[str, Any], key: str) -> Any:
        value = item.get(key)
        if value in (None, ""):
            raise self.fail(call, f"{where}.{key}", "missing", "give the call's whole output: " + self.hint(call))
        return value

    def network(self, call: str, where: str, value: Any) -> IPv4Network:
        try:
            return IPv4Network(str(value))
        except ValueError:
            raise self.fail(call, where, f"{value!r} is not an IPv4 CIDR block", self.hint(call)) from None

    def address(self, call: str, where: str, value: Any) -> IPv4Address:
        try:
            return IPv4Address(str(value))
        except ValueError:
            raise self.fail(call, where, f"{value!r} is not an IPv4 address", self.hint(call)) from None

    def inside(self, call: str, where: str, addr: IPv4Address, subnet: dict[str, Any]) -> None:
        """AWS gives an interface an address of its own subnet: anything else is a broken (or made-up) dump."""
        if addr not in subnet["net"]:
            raise self.fail(call, where, f"{addr} is outside its subnet {subnet['id']} ({subnet['net']})",
                            "an address of an interface is in its subnet on AWS: dump again, all files at once: "
                            + self.hint(call))

    # ---------------------------------------------------------------- the VPC
    def run(self, name: str | None) -> Imported:
        vpc = self.vpc()
        subnets = self.subnets()
        endpoints_raw = self.endpoint_states(subnets)
        for e in endpoints_raw:
            self.nodes.taken.add(e["name"])
        igw = self.internet_gateway()
        servers = self.servers(subnets)
        nats = self.nat_gateways(subnets)
        used = {IPv4Address(s["ip"]) for s in servers} | {IPv4Address(n["private_ip"]) for n in nats}
        endpoints = self.endpoint_addresses(endpoints_raw, subnets, used)
        tables = self.route_tables(subnets, igw, nats, endpoints)
        policy = self.policy()
        domains = self.domains(policy)
        self.logging_notes()
        # The region from the firewall's ARN, else from an Availability Zone's name (eu-west-1a: eu-west-1).
        region = vpc["region"] or next(iter(subnets.values()))["availability_zone"].rstrip("abcdefghijklmnopqrstuvwxyz")
        topology_name = (name or "").strip() or clean_name(vpc["tag"], 63) or vpc["id"]
        topology: dict[str, Any] = {
            "name": topology_name,
            "description": f"Imported from {self.source}: {vpc['id']} ({region}), firewall "
                           f"{self.firewall.get('FirewallName')}",
            "vpc": {"id": vpc["id"], "cidr": vpc["cidr"], "region": region},
            "subnets": [{k: s[k] for k in ("name", "id", "cidr", "availability_zone")} for s in subnets.values()],
            "servers": servers,
            "nat_gateways": [{k: n[k] for k in ("name", "id", "subnet", "private_ip", "elastic_ip")} for n in nats],
            "firewall": {"name": str(self.firewall.get("FirewallName") or "firewall"),
                         "endpoints": [{k: e[k] for k in ("name", "id", "subnet", "ip")} for e in endpoints]},
            "internet_gateway": {"name": igw["name"], "id": igw["id"]},
            "internet": {**INTERNET, "domains": domains},
            "route_tables": tables,
        }
        try:
            parse_topology(topology, "the imported topology")
        except ConfigError as e:
            raise ConfigError(f"{self.source}: {e.message}", e.hint) from None
        return Imported(topology, policy, self.notes, self.source)

    def vpc(self) -> dict[str, Any]:
        for where, v in self.items("describe-vpcs"):
            if v.get("VpcId") != self.vpc_id:
                continue
            cidr = self.network("describe-vpcs", f"{where}.CidrBlock", self.need("describe-vpcs", where, v,
                                                                                   "CidrBlock"))
            others = [a.get("CidrBlock") for a in v.get("CidrBlockAssociationSet") or []
                      if isinstance(a, dict) and a.get("CidrBlock") not in (None, str(cidr))
                      and (a.get("CidrBlockState") or {}).get("State", "associated") == "associated"]
            if others:
                self.notes.append(f"VPC {self.vpc_id}: secondary CIDR blocks {', '.join(map(str, others))} left "
                                  f"out: the lab's VPC has one CIDR block ({cidr})")
            if v.get("Ipv6CidrBlockAssociationSet"):
                self.notes.append(f"VPC {self.vpc_id}: IPv6 left out: the lab's VPC is IPv4 only")
            self.vpc_cidr = cidr
            region = _region_of(self.firewall.get("FirewallArn")) or ""
            return {"id": self.vpc_id, "cidr": str(cidr), "region": region, "tag": _tag(v)}
        raise self.fail("describe-vpcs", "Vpcs", f"no VPC {self.vpc_id} (the firewall's VPC)",
                        self.hint("describe-vpcs"))

    def subnets(self) -> dict[str, dict[str, Any]]:
        """The VPC's subnets by id, each with its lab name."""
        names = Names(SUBNET_NAME_MAX)
        out: dict[str, dict[str, Any]] = {}
        for where, s in self.items("describe-subnets"):
            if s.get("VpcId", self.vpc_id) != self.vpc_id:
                continue
            sid = self.need("describe-subnets", where, s, "SubnetId")
            if not s.get("CidrBlock"):
                self.notes.append(f"subnet {sid}: IPv6-only, left out (the lab is IPv4 only)")
                continue
            cidr = self.network("describe-subnets", f"{where}.CidrBlock", s["CidrBlock"])
            if not cidr.subnet_of(self.vpc_cidr):
                raise self.fail("describe-subnets", f"{where}.CidrBlock",
                                f"subnet {sid} ({cidr}) is in a secondary CIDR block of {self.vpc_id}, outside "
                                f"{self.vpc_cidr}: the lab's VPC has one CIDR block",
                                "import a VPC whose subnets are all in its primary CIDR block")
            az = str(self.need("describe-subnets", where, s, "AvailabilityZone"))
            out[sid] = {"name": names.claim(_tag(s), f"subnet-{_tail(sid, 4)}"), "id": sid, "cidr": str(cidr),
                        "availability_zone": az, "where": where, "net": cidr}
        if not out:
            raise self.fail("describe-subnets", "Subnets", f"no subnet of {self.vpc_id}",
                            self.hint("describe-subnets"))
        return out

    def endpoint_states(self, subnets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """The firewall's endpoints from its sync states (their addresses come later)."""
        states = self.fw_status.get("SyncStates")
        if not isinstance(states, dict) or not states:
            raise self.fail("describe-firewall", "FirewallStatus.SyncStates",
                            f"firewall {self.firewall.get('FirewallName')} has no endpoint (no sync states)",
                            "wait until the firewall's endpoints are created, then dump again: "
                            + self.hint("describe-firewall"))
        found = []
        for az in sorted(states):
            where = f"FirewallStatus.SyncStates.{az}.Attachment"
            attachment = (states[az] or {}).get("Attachment") or {}
            endpoint_id = self.need("describe-firewall", where, attachment, "EndpointId")
            subnet_id = self.need("describe-firewall", where, attachment, "SubnetId")
            if subnet_id not in subnets:
                raise self.fail("describe-firewall", f"{where}.SubnetId",
                                f"endpoint {endpoint_id}'s subnet {subnet_id} is not a subnet of {self.vpc_id} in "
                                "describe-subnets.json", self.hint("describe-subnets"))
            status = attachment.get("Status", "READY")
            if status != "READY":
                self.notes.append(f"firewall endpoint {endpoint_id} ({az}) is {status} on AWS; the lab runs it")
            found.append({"id": endpoint_id, "subnet_id": subnet_id, "az": subnets[subnet_id]["availability_zone"]})
        names = Names(NODE_NAME_MAX, RESERVED_NAMES)
        for e in found:
            e["name"] = "firewall" if len(found) == 1 else names.claim(f"fw-{e['az'][-1]}", f"fw-{_tail(e['id'], 4)}")
        return found

    def internet_gateway(self) -> dict[str, str]:
        for where, g in self.items("describe-internet-gateways"):
            attached = [a for a in g.get("Attachments") or [] if isinstance(a, dict)
                        and a.get("VpcId") == self.vpc_id and a.get("State", "available") in ("available", "attached")]
            if attached:
                gid = str(self.need("describe-internet-gateways", where, g, "InternetGatewayId"))
                self.igw_id = gid
                # its name is a service's, not an interface's: the model allows 40 characters
                return {"name": self.nodes.claim(_tag(g), "internet-gateway", GATEWAY_NAME_MAX), "id": gid}
        raise self.fail("describe-internet-gateways", "InternetGateways",
                        f"no internet gateway attached to {self.vpc_id}: the lab emulates a VPC that reaches the "
                        "internet through one", "attach an internet gateway to the VPC, or dump again: "
                        + self.hint("describe-internet-gateways"))

    def servers(self, subnets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for r_where, reservation in self.items("describe-instances"):
            for j, inst in enumerate(reservation.get("Instances") or []):
                where = f"{r_where}.Instances[{j}]"
                iid = str(inst.get("InstanceId") or where)
                subnet_id = inst.get("SubnetId")
                state = (inst.get("State") or {}).get("Name", "running")
                ours = inst.get("VpcId") == self.vpc_id or subnet_id in subnets
                if not ours:
                    continue
                if state in GONE_STATES:
                    self.notes.append(f"instance {iid} is {state}: left out")
                    continue
                if state not in RUNNING_STATES:
                    self.notes.append(f"instance {iid} is in state {state!r}: left out")
                    continue
                if subnet_id not in subnets:
                    self.notes.append(f"instance {iid}: its subnet {subnet_id} is not among {self.vpc_id}'s: left "
                                      "out")
                    continue
                ip = inst.get("PrivateIpAddress")
                if not ip:
                    self.notes.append(f"instance {iid} has no private IPv4 address: left out")
                    continue
                addr = self.address("describe-instances", f"{where}.PrivateIpAddress", ip)
                self.inside("describe-instances", f"{where}.PrivateIpAddress", addr, subnets[subnet_id])
                name = self.nodes.claim(_tag(inst), f"i-{_tail(iid, 8)}")
                if state != "running":
                    self.notes.append(f"instance {iid} ({name}) is {state} on AWS; the lab runs it")
                if inst.get("PublicIpAddress"):
                    self.notes.append(f"instance {iid} ({name}): its public IP {inst['PublicIpAddress']} is left "
                                      "out: the lab's servers reach the internet through the NAT gateway only")
                extra = [n for n in inst.get("NetworkInterfaces") or []
                         if isinstance(n, dict) and (n.get("Attachment") or {}).get("DeviceIndex", 0) != 0]
                if extra:
                    self.notes.append(f"instance {iid} ({name}): {len(extra)} secondary network interface(s) left "
                                      f"out; the server has its primary address {addr}")
                out.append({"name": name, "subnet": subnets[subnet_id]["name"], "ip": str(addr)})
        if not out:
            raise self.fail("describe-instances", "Reservations",
                            f"no running instance in {self.vpc_id}: the lab needs at least one server",
                            "launch an instance in a private subnet, or dump again: " + self.hint("describe-instances"))
        return out

    def nat_gateways(self, subnets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        addresses = {a.get("AllocationId"): a for _, a in self.items("describe-addresses")}
        out: list[dict[str, Any]] = []
        self.skipped_nats: dict[str, str] = {}
        self.all_nats: set[str] = set()
        for where, n in self.items("describe-nat-gateways"):
            if n.get("VpcId", self.vpc_id) != self.vpc_id:
                continue
            nid = str(self.need("describe-nat-gateways", where, n, "NatGatewayId"))
            self.all_nats.add(nid)
            state = n.get("State", "available")
            if state not in NAT_STATES:
                self.skipped_nats[nid] = f"is {state}"
                self.notes.append(f"NAT gateway {nid} is {state}: left out")
                continue
            if n.get("ConnectivityType", "public") != "public":
                self.skipped_nats[nid] = "is a private NAT gateway"
                self.notes.append(f"NAT gateway {nid} is a private NAT gateway: left out (the lab emulates public "
                                  "NAT gateways only)")
                continue
            subnet_id = n.get("SubnetId")
            if subnet_id not in subnets:
                self.skipped_nats[nid] = "has no subnet of the VPC (a regional NAT gateway?)"
                self.notes.append(f"NAT gateway {nid}: no subnet of {self.vpc_id} (SubnetId {subnet_id}): left out; "
                                  "the lab's NAT gateways live in one subnet")
                continue
            addrs = [a for a in n.get("NatGatewayAddresses") or [] if isinstance(a, dict)]
            primary = next((a for a in addrs if a.get("IsPrimary")), addrs[0] if addrs else None)
            if primary is None:
                raise self.fail("describe-nat-gateways", f"{where}.NatGatewayAddresses",
                                f"NAT gateway {nid} has no address", self.hint("describe-nat-gateways"))
            k = addrs.index(primary)
            a_where = f"{where}.NatGatewayAddresses[{k}]"
            private_ip = self.address("describe-nat-gateways", f"{a_where}.PrivateIp",
                                      self.need("describe-nat-gateways", a_where, primary, "PrivateIp"))
            self.inside("describe-nat-gateways", f"{a_where}.PrivateIp", private_ip, subnets[subnet_id])
            public_ip = primary.get("PublicIp") or (addresses.get(primary.get("AllocationId")) or {}).get("PublicIp")
            if not public_ip:
                raise self.fail("describe-nat-gateways", f"{a_where}.PublicIp",
                                f"public NAT gateway {nid} has no Elastic IP (neither here nor in "
                                "describe-addresses.json by its AllocationId)",
                                "wait until the NAT gateway is available, then dump again: "
                                + self.hint("describe-nat-gateways"))
            eip = self.address("describe-nat-gateways", f"{a_where}.PublicIp", public_ip)
            if len(addrs) > 1:
                self.notes.append(f"NAT gateway {nid}: {len(addrs) - 1} secondary address(es) left out; the lab "
                                  f"translates to the primary Elastic IP {eip}")
            name = self.nodes.claim(_tag(n), f"nat-{_tail(nid, 8)}")
            if state != "available":
                self.notes.append(f"NAT gateway {nid} ({name}) is {state} on AWS; the lab runs it")
            out.append({"name": name, "id": nid, "subnet": subnets[subnet_id]["name"], "private_ip": str(private_ip),
                        "elastic_ip": str(eip), "subnet_id": subnet_id})
        if not out:
            raise self.fail("describe-nat-gateways", "NatGateways",
                            f"no available public NAT gateway in {self.vpc_id}: the lab emulates a VPC whose "
                            "servers reach the internet through one",
                            "create a public NAT gateway, or dump again: " + self.hint("describe-nat-gateways"))
        return out

    def endpoint_addresses(self, endpoints: list[dict[str, Any]], subnets: dict[str, dict[str, Any]],
                           used: set[IPv4Address]) -> list[dict[str, Any]]:
        """Each endpoint's address: its network interface's (describe-network-interfaces), else the first free
        address of its subnet."""
        enis = self.items("describe-network-interfaces", optional=True)
        for _, eni in enis:
            for a in [eni.get("PrivateIpAddress")] + [p.get("PrivateIpAddress") for p in
                                                      eni.get("PrivateIpAddresses") or [] if isinstance(p, dict)]:
                try:
                    used.add(IPv4Address(str(a)))
                except ValueError:
                    pass
        out = []
        for e in endpoints:
            subnet = subnets[e["subnet_id"]]
            found = next(((w, n) for w, n in enis if e["id"] in str(n.get("Description") or "").split()), None) \
                or next(((w, n) for w, n in enis if n.get("SubnetId") == e["subnet_id"]
                         and n.get("InterfaceType") == "gateway_load_balancer_endpoint"), None)
            if found is not None and found[1].get("PrivateIpAddress"):
                ip = self.address("describe-network-interfaces", f"{found[0]}.PrivateIpAddress",
                                  found[1]["PrivateIpAddress"])
                self.inside("describe-network-interfaces", f"{found[0]}.PrivateIpAddress", ip, subnet)
            else:
                net: IPv4Network = subnet["net"]
                free = [net.network_address + k for k in range(4, net.num_addresses - 1)
                        if net.network_address + k not in used]
                if not free:
                    raise self.fail("describe-subnets", f"{subnet['where']}.CidrBlock",
                                    f"no free address left in {net} for firewall endpoint {e['id']}",
                                    "give describe-network-interfaces.json, which holds the endpoint's address: "
                                    + self.hint("describe-network-interfaces"))
                ip = free[0]
                self.notes.append(f"firewall endpoint {e['id']} ({e['name']}): address {ip}, the first free one of "
                                  f"subnet {subnet['name']} ({net}); describe-network-interfaces.json "
                                  + ("has no interface for it" if enis else "is not in the dump"))
            used.add(ip)
            out.append({"name": e["name"], "id": e["id"], "subnet": subnet["name"], "ip": str(ip)})
        return out

    # ---------------------------------------------------------------- route tables
    def route_tables(self, subnets: dict[str, dict[str, Any]], igw: dict[str, str], nats: list[dict[str, Any]],
                     endpoints: list[dict[str, Any]]) -> list[dict[str, Any]]:
        call = "describe-route-tables"
        names = Names(TABLE_NAME_MAX)
        nat_names = {n["id"]: n["name"] for n in nats}
        endpoint_names = {e["id"]: e["name"] for e in endpoints}
        tables: list[dict[str, Any]] = []
        explicit: set[str] = set()
        main: dict[str, Any] | None = None
        for where, t in self.items(call):
            if t.get("VpcId", self.vpc_id) != self.vpc_id:
                continue
            tid = str(self.need(call, where, t, "RouteTableId"))
            table: dict[str, Any] = {"name": names.claim(_tag(t), tid), "id": tid, "associations": [], "routes": [],
                                     "where": where}
            for j, a in enumerate(t.get("Associations") or []):
                a_where = f"{where}.Associations[{j}]"
                if (a.get("AssociationState") or {}).get("State", "associated") != "associated":
                    continue
                if a.get("Main"):
                    main = table
                elif a.get("SubnetId"):
                    if a["SubnetId"] not in subnets:
                        self.notes.append(f"route table {tid}: association with subnet {a['SubnetId']} left out (not "
                                          f"a subnet of {self.vpc_id} the lab has)")
                        continue
                    explicit.add(a["SubnetId"])
                    table["associations"].append(subnets[a["SubnetId"]]["name"])
                elif a.get("GatewayId"):
                    if a["GatewayId"] != igw["id"]:
                        self.notes.append(f"route table {tid}: edge association with {a['GatewayId']} left out (the "
                                          "lab emulates the internet gateway's edge association only)")
                        continue
                    table["associations"].append(igw["name"])
                    table["edge_where"] = a_where
            for k, r in enumerate(t.get("Routes") or []):
                route = self.route(f"{where}.Routes[{k}]", tid, r, igw, nat_names, endpoint_names)
                if route is not None:
                    table["routes"].append(route)
            tables.append(table)
        implicit = [s["name"] for sid, s in subnets.items() if sid not in explicit]
        if implicit:
            if main is None:
                raise self.fail(call, "RouteTables", f"subnets {', '.join(implicit)} have no explicit association and "
                                f"the dump has no main route table of {self.vpc_id} (an association with Main: true)",
                                self.hint(call))
            main["associations"] += implicit
        out = []
        for t in tables:
            edge = igw["name"] in t["associations"]
            if edge and len(t["associations"]) > 1:
                others = ", ".join(a for a in t["associations"] if a != igw["name"])
                raise self.fail(call, t["edge_where"], f"route table {t['id']} is associated with the internet "
                                f"gateway and with subnets ({others})",
                                "the lab (like AWS's ingress routing) keeps an edge route table for the gateway only: "
                                "use a separate route table for the subnets")
            if edge:
                for r in t["routes"]:
                    if r["target"] != "local" and not IPv4Network(r["destination"]).subnet_of(self.vpc_cidr):
                        raise self.fail(call, r["where"], f"edge route {r['destination']} is outside the VPC "
                                        f"{self.vpc_cidr}", "an edge route table routes blocks of the VPC (a subnet's "
                                        "CIDR) to a firewall endpoint")
            if not t["associations"]:
                if t is not main:  # every VPC has a main table; unused, it is not worth a note
                    self.notes.append(f"route table {t['id']} ({t['name']}) is associated with nothing: left out")
                continue
            if not t["routes"]:
                t["routes"].append({"destination": str(self.vpc_cidr), "target": "local"})
            out.append({"name": t["name"], "id": t["id"], "associations": t["associations"],
                        "routes": [{"destination": r["destination"], "target": r["target"]} for r in t["routes"]]})
        return out

    def route(self, where: str, tid: str, r: dict[str, Any], igw: dict[str, str], nat_names: dict[str, str],
              endpoint_names: dict[str, str]) -> dict[str, Any] | None:
        """One route as the lab's {destination, target}, or None (with a note) when the lab can't emulate it."""
        call = "describe-route-tables"
        dest = r.get("DestinationCidrBlock")
        shown = dest or r.get("DestinationIpv6CidrBlock") or r.get("DestinationPrefixListId")
        what = f"route table {tid}: route {shown}"

        def drop(why: str) -> None:
            self.notes.append(f"{what} {why}: left out ({where})")
        if not dest:
            if r.get("DestinationPrefixListId"):
                drop("(a prefix list) is not emulated")
            elif r.get("DestinationIpv6CidrBlock"):
                drop("is IPv6 (the lab is IPv4 only)")
            else:
                drop("has no destination")
            return None
        net = self.network(call, f"{where}.DestinationCidrBlock", dest)
        gateway = str(r.get("GatewayId") or "")
        endpoint = str(r.get("VpcEndpointId") or (gateway if gateway.startswith("vpce-") else ""))
        target: str | None = None
        if r.get("State") == "blackhole":
            drop(f"is a blackhole (its target {self._target_text(r)} is gone)")
            return None
        if gateway == "local":
            if net != self.vpc_cidr:
                drop(f"-> local is for a secondary CIDR block (the lab's VPC has one: {self.vpc_cidr})")
                return None
            target = "local"
        elif endpoint:
            if endpoint not in endpoint_names:
                drop(f"-> {endpoint} is not one of firewall {self.firewall.get('FirewallName')}'s endpoints")
                return None
            target = endpoint_names[endpoint]
        elif gateway.startswith("igw-"):
            if gateway != igw["id"]:
                raise self.fail(call, f"{where}.GatewayId", f"{gateway} is not the internet gateway attached to "
                                f"{self.vpc_id} ({igw['id']})", self.hint("describe-internet-gateways"))
            target = igw["name"]
        elif r.get("NatGatewayId"):
            nid = str(r["NatGatewayId"])
            if nid in nat_names:
                target = nat_names[nid]
            elif nid in self.skipped_nats:
                drop(f"-> {nid}: the NAT gateway {self.skipped_nats[nid]}")
                return None
            else:
                raise self.fail(call, f"{where}.NatGatewayId", f"{nid} is not in describe-nat-gateways.json",
                                "dump again, all files at once: " + self.hint("describe-nat-gateways"))
        elif gateway.startswith("vgw-"):
            drop(f"-> {gateway} (a virtual private gateway, VPN) is not emulated")
            return None
        else:
            kind = next((UNSUPPORTED_TARGETS[k] for k in UNSUPPORTED_TARGETS if r.get(k)), None)
            drop(f"-> {self._target_text(r)} ({kind or 'this kind of target'}) is not emulated")
            return None
        return {"destination": str(net), "target": target, "where": where}

    @staticmethod
    def _target_text(r: dict[str, Any]) -> str:
        for key in ("GatewayId", "VpcEndpointId", "NatGatewayId", *UNSUPPORTED_TARGETS):
            if r.get(key):
                return str(r[key])
        return "?"

    # ---------------------------------------------------------------- the policy
    def policy(self) -> dict[str, Any]:
        call = "describe-firewall-policy"
        doc = _plain(self.document(call))
        fw_arn = self.firewall.get("FirewallPolicyArn")
        v2 = "FirewallPolicyV2" in doc
        body_key = "FirewallPolicyV2" if v2 else "FirewallPolicy"
        if body_key not in doc:
            raise self.fail(call, "", f"neither FirewallPolicy nor FirewallPolicyV2 (keys: {sorted(doc)[:5]})",
                            self.hint(call))
        kind, name_key, response = "V2" if v2 else "classic", f"{body_key}Name", doc.get(f"{body_key}Response") or {}
        arn, body = response.get(f"{body_key}Arn"), doc[body_key]
        # A Next Generation policy's inline rule groups have no ARN; a Classic reference without one is an error.
        refs = [(f"{body_key}.{key}[{i}].ResourceArn", e.get("ResourceArn"))
                for key, i, e in rule_group_references(body, v2) if not v2 or "ResourceArn" in e]
        if not isinstance(body, dict):
            raise self.fail(call, body_key, "expected an object", self.hint(call))
        if arn and fw_arn and arn != fw_arn:
            raise self.fail(call, f"{body_key}Response.{body_key}Arn", f"the dump's policy is {arn}, but firewall "
                            f"{self.firewall.get('FirewallName')} uses {fw_arn}", self.hint(call))
        name = response.get(name_key) or str(arn or fw_arn or "firewall-policy").rsplit("/", 1)[-1]
        by_arn: dict[str, dict[str, Any]] = {}
        for g in self.dump.get(RULE_GROUPS) or []:
            g_arn = (g.get("RuleGroupResponse") or {}).get("RuleGroupArn") if isinstance(g, dict) else None
            if g_arn:
                by_arn[g_arn] = g
        groups: list[dict[str, Any]] = []
        sources: dict[str, str] = {}
        for where, ref in refs:
            if not isinstance(ref, str) or not ref:
                raise self.fail(call, where, "missing", "reference each rule group by its ARN")
            group_name = ref.rsplit("/", 1)[-1]
            if ref not in by_arn:
                raise self.fail(call, where, f"rule group {ref} is not in the dump "
                                f"({RULE_GROUPS}-{group_name}.json)", "run `" + _command(
                                    f"{RULE_GROUPS}-{group_name}", self.folder, firewall=self.firewall, arn=ref)
                                + "`")
            if group_name in sources:
                continue
            group = {k: v for k, v in _plain(by_arn[ref]).items() if k != "UpdateToken"}
            groups.append(group)
            sources[group_name] = self.label(f"{RULE_GROUPS}-{group_name}")
        out: dict[str, Any] = {name_key: name, body_key: body, "RuleGroups": groups}
        self.check_policy(out, kind, groups, sources)
        return out

    def check_policy(self, doc: dict[str, Any], kind: str, groups: list[dict[str, Any]],
                     sources: dict[str, str]) -> None:
        """The policy through the lab's own parser, each rule group named by its dump file in errors."""
        label = self.label("describe-firewall-policy")
        without = {k: v for k, v in doc.items() if k != "RuleGroups"}
        names = list(sources)
        if kind == "V2":
            parse_nextgen(without, label, {n: (sources[n], g) for n, g in zip(names, groups, strict=True)})
        else:
            available: dict[str, RuleGroup | StatelessGroup] = {}
            for n, g in zip(names, groups, strict=True):
                available[n] = parse_any_group(g, sources[n], n)
            parse_policy(without, label, available)

    def domains(self, policy: dict[str, Any]) -> list[str]:
        """The names the policy's rules look for (domain lists, TLS SNI, HTTP host), for the lab's internet to
        serve; the lab's defaults when there are none."""
        found: list[str] = []

        def add(name: Any) -> None:
            try:
                d = validate_domain(str(name).strip().strip('"').lstrip("."))
            except ConfigError:
                return
            if d not in found:
                found.append(d)

        def walk(data: Any) -> None:
            if isinstance(data, dict):
                for key, value in data.items():
                    if key == "RulesString" and isinstance(value, str):
                        for m in re.finditer(r"\b(?:tls\.sni|http\.host)\s*;\s*content\s*:\s*\"([^\"]+)\"", value):
                            add(m.group(1))
                    elif key == "RulesSourceList" and isinstance(value, dict):
                        for t in value.get("Targets") or []:
                            add(t)
                    elif key == "RuleOptions" and isinstance(value, list):
                        options = [o for o in value if isinstance(o, dict)]
                        for o, nxt in zip(options, options[1:], strict=False):
                            if o.get("Keyword") in ("tls.sni", "http.host") and nxt.get("Keyword") == "content":
                                add((nxt.get("Settings") or [""])[0])
                    else:
                        walk(value)
            elif isinstance(data, list):
                for v in data:
                    walk(v)
        walk(policy)
        served = list(DEFAULT_DOMAINS) + [d for d in found if d not in DEFAULT_DOMAINS]
        extra = [d for d in found if d not in DEFAULT_DOMAINS]
        self.notes.append(f"internet: serves the lab's names ({', '.join(DEFAULT_DOMAINS)})"
                          + (f" and those the policy names ({', '.join(extra)})" if extra else "")
                          + f" at {INTERNET['web_server']}; add others to internet.domains to test them")
        return served

    def logging_notes(self) -> None:
        logging = self.document("describe-logging-configuration", optional=True)
        configs = (logging.get("LoggingConfiguration") or {}).get("LogDestinationConfigs") or []
        for c in configs:
            if isinstance(c, dict):
                dest = ", ".join(f"{k}={v}" for k, v in (c.get("LogDestination") or {}).items())
                self.notes.append(f"logging: {c.get('LogType')} logs go to {c.get('LogDestinationType')} ({dest}) on "
                                  "AWS; the lab writes them to its own files, in AWS's format")


def import_dump(dump: Dump, source: str, vpc_id: str | None = None, name: str | None = None) -> Imported:
    """The lab's topology and policy for the firewall's VPC (or `vpc_id`) of an account dump.

    `source` names the dump in errors and in the topology's description (its folder, or where it came from).
    Only that VPC's resources are used; what the lab cannot emulate is left out and said in `notes`."""
    return _Importer(dump, source, vpc_id).run(name)


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def write_imported(imported: Imported, out_dir: Path, name: str, force: bool = False) -> tuple[Path, Path]:
    """Writes `<name>.yaml` (the topology, with a header saying where it came from) and `<name>-policy.json`;
    existing files are refused unless `force`."""
    if not FILE_NAME_RE.match(name):
        raise ConfigError(f"{name!r} can't name the imported files", "use letters, digits, '.', '_' and '-'")
    out_dir = Path(out_dir)
    topology_file, policy_file = out_dir / f"{name}.yaml", out_dir / f"{name}-policy.json"
    for path in (topology_file, policy_file):
        if path.exists() and not force:
            raise ConfigError(f"{path}: already exists", "give another name or folder, or overwrite it (force)")
    out_dir.mkdir(parents=True, exist_ok=True)
    topology = imported.topology
    header = [f"# Imported from an AWS account dump: {imported.source or 'an account'}",
              f"# VPC {topology['vpc']['id']} ({topology['vpc']['region']}), firewall {topology['firewall']['name']}; "
              f"its policy: {policy_file.name}",
              f"# Run it: `nfwlab up --topology {topology_file} --policy {policy_file}`"]
    if imported.notes:
        header.append("# Notes (what the import approximated or left out):")
        header += [f"#   - {n}" for n in imported.notes]
    topology_file.write_text("\n".join(header) + "\n" + yaml.safe_dump(topology, sort_keys=False, width=120))
    policy_file.write_text(json.dumps(imported.policy, indent=2, default=str) + "\n")
    return topology_file, policy_file
