"""Terraform: what `terraform show -json` prints for a plan or a state, as an account dump (lab/aws/dump.py), so
that the one importer (lab/aws/account.py) reads a Terraform configuration as it reads an account.

Read: aws_vpc, aws_subnet, aws_internet_gateway (+ aws_internet_gateway_attachment), aws_eip, aws_nat_gateway,
aws_route_table (inline `route` blocks), aws_default_route_table, aws_route, aws_route_table_association (subnet or
gateway: an edge association), aws_main_route_table_association, aws_instance, and the firewall's
aws_networkfirewall_firewall, aws_networkfirewall_firewall_policy, aws_networkfirewall_rule_group,
aws_networkfirewall_logging_configuration. Attribute names are hashicorp/aws 5.x's (`terraform providers schema
-json`); each maps to the field the API prints (rule_group.rules_source.rules_string -> RuleGroup.RulesSource.
RulesString, ...).

A state holds every id and address. A plan leaves what AWS assigns unknown; then:
- ids are made up from the resource's address (`vpc-` + 17 hex digits of a hash of it), the same on every run;
- a reference between resources (`subnet_id = aws_subnet.private.id`) is followed through the plan's
  `configuration` section (each expression's `references`), through module inputs and outputs, count and for_each;
- a route to the firewall (vpc_endpoint_id, usually an expression over the firewall's
  firewall_status[0].sync_states) goes to the endpoint of the Availability Zone the expression names: a key
  (`local.endpoints["eu-west-1a"]`) or a subnet it compares with (`aws_subnet.fw_a.availability_zone`); else to
  the firewall's only endpoint; else it is a ConfigError naming the resource;
- an unknown private address (an instance's, a NAT gateway's, a firewall endpoint's) is the subnet's first free
  host after the four AWS reserves; an Elastic IP without `address` gets a documentation address
  (198.51.100.0/24).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .dump import EC2_CALLS, FIREWALL_CALLS, OPTIONAL_EC2_CALLS, OPTIONAL_FIREWALL_CALLS, RULE_GROUPS, Dump
from .export import (
    DEFAULT_ACCOUNT,
    address_shape,
    aws_id,
    eni_shape,
    firewall_shape,
    group_arn_kind,
    igw_shape,
    local_route,
    logging_shape,
    main_association,
    nat_shape,
    nfw_arn,
    policy_shape,
    reservation_shape,
    route_table_shape,
    rule_group_shape,
    subnet_shape,
    tag_list,
    vpc_shape,
)

# --------------------------------------------------------------------------
# The provider on this machine
# --------------------------------------------------------------------------
MIRROR_BASES = (Path("/usr/share"), Path("/usr/local/share"), Path("/opt"), Path("/root"),
                Path("~/.terraform.d"))
PROVIDER_DIR = "registry.terraform.io/hashicorp/aws"


def find_provider_mirror() -> Path | None:
    """The root of a filesystem mirror holding hashicorp/aws 5.x (the directory above registry.terraform.io),
    under /usr/share, /usr/local/share, /opt, /root or ~/.terraform.d, at most two directories down; None if
    there is none. Point a CLI configuration's `filesystem_mirror` at it (`cli_config`)."""
    for base in MIRROR_BASES:
        base = base.expanduser()
        try:
            if not base.is_dir():
                continue
        except OSError:
            continue
        for depth in range(3):
            pattern = "/".join(["*"] * depth + [PROVIDER_DIR, "5.*"])
            try:
                hits = sorted(base.glob(pattern))
            except OSError:
                continue
            for hit in hits:
                if hit.is_dir():
                    return hit.parents[3]
    return None


def cli_config(mirror: Path) -> str:
    """A Terraform CLI configuration that installs hashicorp/aws from `mirror` only (offline) and anything else
    as usual; write it to a file and set TF_CLI_CONFIG_FILE to it."""
    return (f'provider_installation {{\n  filesystem_mirror {{\n    path    = {json.dumps(str(mirror))}\n'
            f'    include = ["registry.terraform.io/hashicorp/aws"]\n  }}\n  direct {{\n'
            f'    exclude = ["registry.terraform.io/hashicorp/aws"]\n  }}\n}}\n')


# --------------------------------------------------------------------------
# Reading `terraform show -json`
# --------------------------------------------------------------------------
ID_PREFIXES = {"aws_vpc": "vpc", "aws_subnet": "subnet", "aws_internet_gateway": "igw", "aws_eip": "eipalloc",
               "aws_nat_gateway": "nat", "aws_route_table": "rtb", "aws_default_route_table": "rtb",
               "aws_instance": "i", "aws_route_table_association": "rtbassoc",
               "aws_main_route_table_association": "rtbassoc", "aws_vpn_gateway": "vgw",
               "aws_ec2_transit_gateway": "tgw", "aws_vpc_peering_connection": "pcx",
               "aws_network_interface": "eni", "aws_egress_only_internet_gateway": "eigw",
               "aws_vpc_endpoint": "vpce", "aws_ec2_carrier_gateway": "cagw"}
# A route's target attributes (aws_route_table's `route`, aws_route) -> describe-route-tables' key
ROUTE_TARGETS = {"gateway_id": "GatewayId", "nat_gateway_id": "NatGatewayId", "vpc_endpoint_id": "VpcEndpointId",
                 "transit_gateway_id": "TransitGatewayId", "vpc_peering_connection_id": "VpcPeeringConnectionId",
                 "network_interface_id": "NetworkInterfaceId", "egress_only_gateway_id": "EgressOnlyInternetGatewayId",
                 "carrier_gateway_id": "CarrierGatewayId", "local_gateway_id": "LocalGatewayId",
                 "core_network_arn": "CoreNetworkArn"}
TARGET_TYPES = {"gateway_id": {"aws_internet_gateway", "aws_vpn_gateway"}, "nat_gateway_id": {"aws_nat_gateway"},
                "transit_gateway_id": {"aws_ec2_transit_gateway"},
                "vpc_peering_connection_id": {"aws_vpc_peering_connection"},
                "network_interface_id": {"aws_network_interface"},
                "egress_only_gateway_id": {"aws_egress_only_internet_gateway"},
                "carrier_gateway_id": {"aws_ec2_carrier_gateway"}, "local_gateway_id": set(),
                "core_network_arn": set()}
DESTINATIONS = {"cidr_block": "DestinationCidrBlock", "ipv6_cidr_block": "DestinationIpv6CidrBlock",
                "destination_prefix_list_id": "DestinationPrefixListId"}
ROUTE_DESTINATIONS = {"destination_cidr_block": "DestinationCidrBlock",
                      "destination_ipv6_cidr_block": "DestinationIpv6CidrBlock",
                      "destination_prefix_list_id": "DestinationPrefixListId"}
RESOURCE_REF = re.compile(r'^(?P<type>[a-z][a-z0-9_]*)\.(?P<name>[A-Za-z_][A-Za-z0-9_-]*)'
                          r'(?:\[(?P<key>"(?:[^"\\]|\\.)*"|\d+)\])?')
MODULE_REF = re.compile(r'^module\.(?P<name>[A-Za-z_][A-Za-z0-9_-]*)(?:\[(?P<key>"(?:[^"\\]|\\.)*"|\d+)\])?'
                        r'(?:\.(?P<output>[A-Za-z_][A-Za-z0-9_-]*))?')
STRING_KEY = re.compile(r'\["((?:[^"\\]|\\.)*)"\]')
NOT_RESOURCES = ("var.", "local.", "data.", "path.", "terraform.", "self.", "count.", "each.", "module.")
DOCUMENTATION_EIPS = IPv4Network("198.51.100.0/24")
FIRST_EIP = 10  # made-up Elastic IPs start at 198.51.100.10
STATE_HINT = ("or give `terraform show -json` of the state after `terraform apply`, where AWS has filled it in")


@dataclass
class _Res:
    """One resource instance of the plan or state."""

    address: str
    module: str  # its module instance ("" for the root module)
    type: str
    name: str
    index: Any  # count index, for_each key or None
    values: dict[str, Any]
    unknown: dict[str, Any] = field(default_factory=dict)  # the plan's after_unknown
    config: dict[str, Any] = field(default_factory=dict)  # its block in the plan's configuration

    def label(self) -> str:
        """A lab-style name from the Terraform name (server_a[0] -> server-a-0)."""
        base = self.name.replace("_", "-").lower()
        return base if self.index is None else f"{base}-{str(self.index).replace('_', '-').lower()}"


def _one(value: Any) -> dict[str, Any]:
    """A nested block's only element (the provider writes MaxItems=1 blocks as lists)."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return value[0]
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _key(text: str) -> Any:
    return json.loads(text) if text.startswith('"') else int(text)


def _module_names(module: str) -> list[str]:
    """The module call names of a module instance address (module.a[0].module.b -> [a, b])."""
    return re.findall(r'module\.([A-Za-z_][A-Za-z0-9_-]*)(?:\[(?:"(?:[^"\\]|\\.)*"|\d+)\])?', module)


class _Reader:
    def __init__(self, doc: dict[str, Any], source: str, module: str | None):
        self.source = source
        if not isinstance(doc, dict):
            raise ConfigError(f"{source}: not `terraform show -json` output", "give the JSON it prints")
        if isinstance(doc.get("planned_values"), dict):
            self.plan = True
            root = doc["planned_values"].get("root_module") or {}
        elif isinstance(doc.get("values"), dict):
            self.plan = False
            root = doc["values"].get("root_module") or {}
        else:
            raise ConfigError(f"{source}: neither a plan (planned_values) nor a state (values)",
                              "give `terraform show -json PLANFILE` or `terraform show -json` (the state)")
        self.doc = doc
        self.config_root = ((doc.get("configuration") or {}).get("root_module") or {})
        changes = {rc.get("address"): rc.get("change") or {} for rc in doc.get("resource_changes") or []}
        self.resources: list[_Res] = []
        self.modules: set[str] = {""}
        for mod_address, r in self._walk(root, ""):
            if r.get("mode") != "managed":
                continue
            if module is not None and not (mod_address == module or mod_address.startswith(module + ".")):
                continue
            unknown = (changes.get(r.get("address")) or {}).get("after_unknown") or {}
            config: dict[str, Any] = next(
                (c for c in self._config_module(mod_address).get("resources") or []
                 if c.get("address") == f"{r.get('type')}.{r.get('name')}"), {})
            self.resources.append(_Res(str(r.get("address")), mod_address, str(r.get("type")), str(r.get("name")),
                                       r.get("index"), r.get("values") or {},
                                       unknown if isinstance(unknown, dict) else {}, config))
        if module is not None and not self.resources:
            raise ConfigError(f"{source}: no resources in {module}",
                              f"modules here: {', '.join(sorted(m for m in self.modules if m)) or 'none'}")
        self.by_address = {r.address: r for r in self.resources}
        self.by_id: dict[str, _Res] = {}
        for res in self.resources:
            for key in ("id", "arn"):
                v = res.values.get(key)
                if isinstance(v, str) and v:
                    self.by_id.setdefault(v, res)
        self.region, self.account = self._region(), self._account()

    # ------------------------------------------------------------ structure
    def _walk(self, mod: dict[str, Any], address: str) -> Iterator[tuple[str, dict[str, Any]]]:
        self.modules.add(address)
        for r in mod.get("resources") or []:
            yield address, r
        for child in mod.get("child_modules") or []:
            yield from self._walk(child, str(child.get("address") or ""))

    def _config_module(self, module: str) -> dict[str, Any]:
        mod = self.config_root
        for name in _module_names(module):
            mod = ((mod.get("module_calls") or {}).get(name) or {}).get("module") or {}
        return mod

    def of_type(self, *types: str) -> list[_Res]:
        return [r for r in self.resources if r.type in types]

    def fail(self, res: _Res | None, attribute: str, what: str, hint: str) -> ConfigError:
        where = f"{res.address}: {attribute}" if res else attribute
        return ConfigError(f"{self.source}: {where}: {what}", hint)

    # ------------------------------------------------------------ values
    def unknown(self, res: _Res, attribute: str) -> bool:
        return self.plan and (res.unknown.get(attribute) is True or attribute not in res.values)

    def known(self, res: _Res, attribute: str, what: str, hint: str = "") -> Any:
        """A value the dump needs: ConfigError when the plan leaves it unknown or it is unset."""
        value = res.values.get(attribute)
        if value in (None, "") or self.unknown(res, attribute):
            state = "is unknown in the plan" if self.unknown(res, attribute) else "is not set"
            raise self.fail(res, attribute, f"{state}: the lab needs {what}", hint or f"set {attribute}")
        return value

    def expression(self, res: _Res, *path: str | int) -> dict[str, Any]:
        """The configuration's expression for an attribute (a path through nested blocks), {} when absent."""
        node: Any = res.config.get("expressions") or {}
        for step in path:
            if isinstance(step, int):
                node = node[step] if isinstance(node, list) and step < len(node) else None
            else:
                node = node.get(step) if isinstance(node, dict) else None
            if node is None:
                return {}
        return node if isinstance(node, dict) else {}

    def for_each_refs(self, res: _Res) -> list[str]:
        return list(((res.config.get("for_each_expression") or {}).get("references")) or [])

    def id_of(self, res: _Res) -> str:
        value = res.values.get("id")
        if isinstance(value, str) and value:
            return value
        if res.type.startswith("aws_networkfirewall_"):
            return self.arn_of(res)
        return aws_id(ID_PREFIXES.get(res.type, res.type.removeprefix("aws_")), res.address)

    def arn_of(self, res: _Res) -> str:
        value = res.values.get("arn")
        if isinstance(value, str) and value:
            return value
        kind = {"aws_networkfirewall_firewall": "firewall", "aws_networkfirewall_firewall_policy": "firewall-policy"
                }.get(res.type) or group_arn_kind(str(res.values.get("type") or ""))
        return nfw_arn(self.region, self.account, kind, str(res.values.get("name") or res.label()))

    def tags(self, res: _Res) -> list[dict[str, str]]:
        tags = res.values.get("tags") or res.values.get("tags_all") or {}
        name = tags.get("Name") if isinstance(tags, dict) else None
        return tag_list(name or res.label(), tags if isinstance(tags, dict) else {})

    def _region(self) -> str:
        provider = ((self.doc.get("configuration") or {}).get("provider_config") or {}).get("aws") or {}
        region = (provider.get("expressions") or {}).get("region") or {}
        if isinstance(region.get("constant_value"), str):
            return str(region["constant_value"])
        for ref in region.get("references") or []:
            if ref.startswith("var."):
                value = ((self.doc.get("variables") or {}).get(ref[4:]) or {}).get("value")
                if isinstance(value, str):
                    return value
        for r in self.resources:
            m = re.match(r"arn:aws[a-z-]*:[a-z0-9-]+:([a-z0-9-]+):", str(r.values.get("arn") or ""))
            if m and m.group(1):
                return m.group(1)
        for r in self.of_type("aws_subnet"):
            m = re.match(r"^([a-z]{2}(?:-gov)?-[a-z]+-\d+)[a-z]$", str(r.values.get("availability_zone") or ""))
            if m:
                return m.group(1)
        return "us-east-1"

    def _account(self) -> str:
        for r in self.resources:
            m = re.match(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12}):", str(r.values.get("arn") or ""))
            if m:
                return m.group(1)
            owner = r.values.get("owner_id")
            if isinstance(owner, str) and re.fullmatch(r"\d{12}", owner):
                return owner
        return DEFAULT_ACCOUNT

    # ------------------------------------------------------------ references
    def resolve(self, module: str, index: Any, refs: list[str], types: set[str], for_each: list[str] | None = None,
                depth: int = 0) -> list[_Res]:
        """The resource instances an expression's references name, of the given types (all of them when the
        expression names several: the caller decides what one it needs)."""
        if depth > 16:
            return []
        iterating = any(r == "count.index" or r.startswith("each.") for r in refs)
        keyed: dict[tuple[str, str], list[Any]] = {}
        bare: list[tuple[str, str]] = []
        out: list[_Res] = []
        for ref in refs:
            if ref.startswith("var.") and module:
                out += self._through_variable(module, ref, types, depth)
            elif ref.startswith("module."):
                out += self._through_output(module, ref, types, depth)
            elif ref.startswith("each.value") and for_each:
                bare += [(m.group("type"), m.group("name")) for m in map(RESOURCE_REF.match, for_each)
                         if m and not m.group(0).startswith(NOT_RESOURCES)]
            elif not ref.startswith(NOT_RESOURCES):
                m = RESOURCE_REF.match(ref)
                if m:
                    rkey = (m.group("type"), m.group("name"))
                    if m.group("key") is not None:
                        keyed.setdefault(rkey, []).append(_key(m.group("key")))
                    else:
                        bare.append(rkey)
        prefix = f"{module}." if module else ""
        for (rtype, name), keys in keyed.items():
            for k in keys:
                found = self.by_address.get(f"{prefix}{rtype}.{name}[{json.dumps(k)}]")
                if found:
                    out.append(found)
        for rkey in bare:
            if rkey in keyed:
                continue
            instances = [r for r in self.resources if r.module == module and (r.type, r.name) == rkey]
            if len(instances) > 1 and iterating:
                instances = [r for r in instances if r.index == index]
            out += instances
        unique: dict[str, _Res] = {}
        for r in out:
            if r.type in types:
                unique.setdefault(r.address, r)
        return list(unique.values())

    def _through_variable(self, module: str, ref: str, types: set[str], depth: int) -> list[_Res]:
        m = re.match(r"var\.([A-Za-z_][A-Za-z0-9_-]*)", ref)
        last = re.search(r'(?:^|\.)module\.([A-Za-z_][A-Za-z0-9_-]*)(?:\[("(?:[^"\\]|\\.)*"|\d+)\])?$', module)
        if not m or not last:
            return []
        parent = module[:last.start()].rstrip(".")
        call = (self._config_module(parent).get("module_calls") or {}).get(last.group(1)) or {}
        expr = (call.get("expressions") or {}).get(m.group(1)) or {}
        for_each = list(((call.get("for_each_expression") or {}).get("references")) or [])
        index = _key(last.group(2)) if last.group(2) else None
        return self.resolve(parent, index, list(expr.get("references") or []), types, for_each, depth + 1)

    def _through_output(self, module: str, ref: str, types: set[str], depth: int) -> list[_Res]:
        m = MODULE_REF.match(ref)
        if not m or not m.group("output"):
            return []
        prefix = f"{module}." if module else ""
        if m.group("key") is not None:
            children = [f"{prefix}module.{m.group('name')}[{m.group('key')}]"]
        else:
            children = [c for c in self.modules if re.fullmatch(
                re.escape(f"{prefix}module.{m.group('name')}") + r'(\[[^\]]+\])?', c)]
        out: list[_Res] = []
        for child in children:
            output = (self._config_module(child).get("outputs") or {}).get(m.group("output")) or {}
            refs = list(((output.get("expression") or {}).get("references")) or [])
            out += self.resolve(child, None, refs, types, None, depth + 1)
        return out

    def target(self, res: _Res, attribute: str, types: set[str], what: str) -> _Res | str | None:
        """What an id-valued attribute names: a resource of this configuration, a literal id of something outside
        it, or None when unset. In a plan an unknown id is followed through the configuration."""
        value = res.values.get(attribute)
        if isinstance(value, str) and value:
            return self.by_id.get(value, value)
        if not self.unknown(res, attribute):
            return None
        expression = self.expression(res, attribute)
        if not expression and res.config:
            return None  # not in the configuration: computed by AWS, not a reference
        refs = list(expression.get("references") or [])
        found = self.resolve(res.module, res.index, refs, types, self.for_each_refs(res))
        if len(found) == 1:
            return found[0]
        if found:
            raise self.fail(res, attribute, f"names {what} by an expression that could be any of "
                            f"{', '.join(f.address for f in found)}",
                            f"reference one {what} directly (e.g. {found[0].address}.id), {STATE_HINT}")
        raise self.fail(res, attribute, f"the plan does not tell which {what} this is (references: "
                        f"{', '.join(refs) or 'none'})", f"reference the {what} directly, {STATE_HINT}")

    def resource(self, res: _Res, attribute: str, types: set[str], what: str) -> _Res:
        """Like `target`, for an attribute that must name a resource of this configuration."""
        found = self.target(res, attribute, types, what)
        if isinstance(found, _Res) and found.type in types:
            return found
        if found is None:
            raise self.fail(res, attribute, f"not set: the lab needs its {what}", f"set {attribute}")
        raise self.fail(res, attribute, f"{found if isinstance(found, str) else found.address} is not a {what} of "
                        "this configuration", f"give a plan or state that holds the {what} too (or import the "
                        "account's describe-* output instead)")

    # ------------------------------------------------------------ the dump
    def dump(self) -> Dump:
        out: Dump = {}
        self._vpcs(out)
        self._subnets()
        self._gateways(out)
        self._firewall_endpoints()
        self._addresses()
        self._nat_and_instances(out)
        out["describe-subnets"] = {"Subnets": [
            subnet_shape(sid, self.id_of(vpc), str(cidr), az, self.account, self.region,
                         self.tags(self.by_address[a]), cidr.num_addresses - 5 - len(self.used[a]))
            for a, (sid, vpc, cidr, az) in self.subnet.items()]}
        self._route_tables(out)
        self._firewall(out)
        order = [*EC2_CALLS, *OPTIONAL_EC2_CALLS, *FIREWALL_CALLS, RULE_GROUPS, *OPTIONAL_FIREWALL_CALLS]
        return {k: out[k] for k in sorted(out, key=lambda k: order.index(k) if k in order else len(order))}

    def _vpcs(self, out: Dump) -> None:
        self.vpc_cidr: dict[str, str] = {}
        vpcs = []
        for r in self.of_type("aws_vpc"):
            cidr = str(self.known(r, "cidr_block", "the VPC's CIDR block", "set cidr_block (IPAM pools are not read)"))
            self.vpc_cidr[r.address] = cidr
            vpcs.append(vpc_shape(self.id_of(r), cidr, self.account, self.tags(r)))
        out["describe-vpcs"] = {"Vpcs": vpcs}

    def _vpc_of(self, res: _Res, attribute: str = "vpc_id") -> _Res:
        return self.resource(res, attribute, {"aws_vpc"}, "VPC")

    def _subnets(self) -> None:
        self.subnet: dict[str, tuple[str, _Res, IPv4Network, str]] = {}  # address -> (id, vpc, cidr, AZ)
        for r in self.of_type("aws_subnet"):
            vpc = self._vpc_of(r)
            cidr = IPv4Network(str(self.known(r, "cidr_block", "the subnet's CIDR block")))
            az = str(self.known(r, "availability_zone", "the subnet's Availability Zone",
                                "set availability_zone: the lab places each node in its subnet's zone"))
            self.subnet[r.address] = (self.id_of(r), vpc, cidr, az)
        self.used: dict[str, set[IPv4Address]] = {a: set() for a in self.subnet}

    def _subnet_of(self, res: _Res, attribute: str = "subnet_id") -> _Res:
        return self.resource(res, attribute, {"aws_subnet"}, "subnet")

    def _gateways(self, out: Dump) -> None:
        attached: dict[str, list[str]] = {}
        igws = self.of_type("aws_internet_gateway")
        for r in igws:
            vpc = self.target(r, "vpc_id", {"aws_vpc"}, "VPC")
            if vpc is not None:
                attached.setdefault(r.address, []).append(self.id_of(vpc) if isinstance(vpc, _Res) else vpc)
        for a in self.of_type("aws_internet_gateway_attachment"):
            igw = self.resource(a, "internet_gateway_id", {"aws_internet_gateway"}, "internet gateway")
            vpc = self._vpc_of(a)
            attached.setdefault(igw.address, []).append(self.id_of(vpc))
        out["describe-internet-gateways"] = {"InternetGateways": [
            igw_shape(self.id_of(r), attached.get(r.address, []), self.account, self.tags(r)) for r in igws]}

    def _place(self, subnet: _Res, ip: IPv4Address | None, owner: _Res | str) -> IPv4Address:
        """`ip` taken in the subnet, or (None) its first free host after the four addresses AWS reserves."""
        cidr = self.subnet[subnet.address][2]
        taken = self.used[subnet.address]
        if ip is None:
            ip = next((cidr.network_address + k for k in range(4, cidr.num_addresses - 1)
                       if cidr.network_address + k not in taken), None)
            if ip is None:
                raise self.fail(subnet, "cidr_block", f"no free address left in {cidr} for "
                                f"{owner.address if isinstance(owner, _Res) else owner}", "use a larger subnet")
        taken.add(ip)
        return ip

    def _known_ip(self, res: _Res, attribute: str) -> IPv4Address | None:
        value = res.values.get(attribute)
        if isinstance(value, str) and value:
            try:
                return IPv4Address(value)
            except ValueError:
                raise self.fail(res, attribute, f"{value!r} is not an IPv4 address", "fix the address") from None
        return None

    def _firewall_endpoints(self) -> None:
        """Each firewall's endpoints: (AZ, subnet, endpoint id), from its firewall_status in a state, from its
        subnet mappings in a plan."""
        self.endpoints: dict[str, list[tuple[str, _Res | str, str]]] = {}
        for fw in self.of_type("aws_networkfirewall_firewall"):
            status = _one(fw.values.get("firewall_status"))
            states = status.get("sync_states") if not self.unknown(fw, "firewall_status") else None
            eps: list[tuple[str, _Res | str, str]] = []
            if isinstance(states, list) and states:
                for s in states:
                    attachment = _one(s.get("attachment"))
                    subnet_id = str(attachment.get("subnet_id") or "")
                    eps.append((str(s.get("availability_zone")), self.by_id.get(subnet_id, subnet_id),
                                str(attachment.get("endpoint_id") or aws_id("vpce", fw.address, subnet_id))))
            else:
                for subnet in self._mapped_subnets(fw):
                    if not isinstance(subnet, _Res) or subnet.address not in self.subnet:
                        raise self.fail(fw, "subnet_mapping", f"{subnet if isinstance(subnet, str) else subnet.address}"
                                        " is not a subnet of this configuration",
                                        "give a plan or state that holds the firewall's subnets")
                    az = self.subnet[subnet.address][3]
                    if any(e[0] == az for e in eps):
                        raise self.fail(fw, "subnet_mapping", f"two subnets in {az}",
                                        "AWS Network Firewall has one endpoint per Availability Zone")
                    eps.append((az, subnet, aws_id("vpce", fw.address, az)))
            eps.sort(key=lambda e: e[0])
            self.endpoints[fw.address] = eps
            for _, _, endpoint_id in eps:
                self.by_id.setdefault(endpoint_id, fw)

    def _mapped_subnets(self, fw: _Res) -> list[_Res | str]:
        """A firewall's subnets in a plan: the subnet_mapping ids known, the others through the configuration."""
        mappings = fw.values.get("subnet_mapping")
        blocks = (fw.config.get("expressions") or {}).get("subnet_mapping")
        blocks = blocks if isinstance(blocks, list) else []
        subnets: list[_Res | str] = []
        missing = len(blocks)
        if isinstance(mappings, list):
            missing = 0
            for m in mappings:
                subnet_id = m.get("subnet_id") if isinstance(m, dict) else None
                if isinstance(subnet_id, str) and subnet_id:
                    subnets.append(self.by_id.get(subnet_id, subnet_id))
                else:
                    missing += 1
        resolved: list[_Res] = []
        for i in range(len(blocks)):
            refs = list(self.expression(fw, "subnet_mapping", i, "subnet_id").get("references") or [])
            found = self.resolve(fw.module, fw.index, refs, {"aws_subnet"}, self.for_each_refs(fw))
            if len(found) == 1 and found[0] not in subnets and found[0] not in resolved:
                resolved.append(found[0])
        if len(resolved) < missing or not (subnets or resolved):
            raise self.fail(fw, "subnet_mapping", "the plan does not tell which subnets the firewall's endpoints "
                            "are in (a dynamic block is not in the plan's configuration)",
                            f"write one subnet_mapping block per subnet, {STATE_HINT}")
        return subnets + resolved[:missing]

    def _addresses(self) -> None:
        """Known private addresses first, so that made-up ones avoid them."""
        for r in self.of_type("aws_instance", "aws_nat_gateway"):
            ip = self._known_ip(r, "private_ip")
            subnet = self.target(r, "subnet_id", {"aws_subnet"}, "subnet")
            if ip is not None and isinstance(subnet, _Res) and subnet.address in self.used:
                self.used[subnet.address].add(ip)

    def _nat_and_instances(self, out: Dump) -> None:
        eips = {r.address: r for r in self.of_type("aws_eip")}
        public: dict[str, str] = {}
        taken = {str(v) for r in eips.values() for v in (r.values.get("address"), r.values.get("public_ip")) if v}
        spare = (str(DOCUMENTATION_EIPS.network_address + k) for k in range(FIRST_EIP, 255))
        for r in eips.values():
            ip = r.values.get("address") or r.values.get("public_ip")
            if not ip:
                ip = next(a for a in spare if a not in taken)
                taken.add(ip)
            public[r.address] = str(ip)
        nats, interfaces, associations = [], [], {}
        for r in self.of_type("aws_nat_gateway"):
            subnet = self._subnet_of(r)
            sid, vpc, _, az = self.subnet[subnet.address]
            ip = str(self._place(subnet, None, r)) if self._known_ip(r, "private_ip") is None \
                else str(self._known_ip(r, "private_ip"))
            eni = str(r.values.get("network_interface_id") or aws_id("eni", r.address))
            eip = self.target(r, "allocation_id", {"aws_eip"}, "Elastic IP")
            alloc = self.id_of(eip) if isinstance(eip, _Res) else eip
            public_ip = public.get(eip.address) if isinstance(eip, _Res) else r.values.get("public_ip")
            assoc = str(r.values.get("association_id") or aws_id("eipassoc", r.address)) if alloc else None
            if isinstance(eip, _Res):
                associations[eip.address] = (assoc, eni, ip)
            connectivity = str(r.values.get("connectivity_type") or "public")
            nats.append(nat_shape(self.id_of(r), sid, self.id_of(vpc), ip, self.tags(r), alloc, public_ip, eni,
                                  assoc, connectivity))
            association = ({"IpOwnerId": "amazon", "PublicDnsName": "", "PublicIp": public_ip,
                            "AllocationId": alloc, "AssociationId": assoc} if alloc else None)
            interfaces.append(eni_shape(eni, sid, self.id_of(vpc), az, ip, self.account, self.region, "nat_gateway",
                                        f"Interface for NAT Gateway {self.id_of(r)}", [], True, association))
        out["describe-nat-gateways"] = {"NatGateways": nats}
        out["describe-addresses"] = {"Addresses": [
            address_shape(self.id_of(r), public[r.address], self.account, self.region, self.tags(r),
                          *(associations.get(r.address) or (None, None, None))) for r in eips.values()]}

        for fw, eps in self.endpoints.items():
            for az, mapped, endpoint_id in eps:
                if not isinstance(mapped, _Res) or mapped.address not in self.subnet:
                    raise self.fail(self.by_address[fw], "subnet_mapping", f"the endpoint in {az} is in subnet "
                                    f"{mapped if isinstance(mapped, str) else mapped.address}, which is not in this "
                                    "configuration", "give a plan or state that holds the firewall's subnets")
                ip = self._place(mapped, None, f"firewall endpoint {endpoint_id}")
                sid, vpc, _, _ = self.subnet[mapped.address]
                interfaces.append(eni_shape(aws_id("eni", fw, az), sid, self.id_of(vpc), az, str(ip), self.account,
                                            self.region, "gateway_load_balancer_endpoint",
                                            f"VPC Endpoint Interface {endpoint_id}", [], True))

        reservations = []
        for r in self.of_type("aws_instance"):
            if r.values.get("subnet_id") in (None, "") and not self.unknown(r, "subnet_id"):
                raise self.fail(r, "subnet_id", "not set: the lab places each server in a subnet",
                                "set subnet_id (instances attached through network_interface blocks are not read)")
            subnet = self._subnet_of(r)
            sid, vpc, _, az = self.subnet[subnet.address]
            known_ip = self._known_ip(r, "private_ip")
            ip = str(known_ip) if known_ip is not None else str(self._place(subnet, None, r))
            eni = str(r.values.get("primary_network_interface_id") or aws_id("eni", r.address))
            ami = str(r.values.get("ami") or aws_id("ami", r.address))
            itype = str(r.values.get("instance_type") or "t3.micro")
            reservations.append(reservation_shape(self.id_of(r), ami, itype, sid, self.id_of(vpc), ip, az, eni,
                                                  self.account, self.region, self.tags(r)))
            interfaces.append(eni_shape(eni, sid, self.id_of(vpc), az, ip, self.account, self.region, "interface",
                                        "", self.tags(r), False, instance_id=self.id_of(r)))
        out["describe-instances"] = {"Reservations": reservations}
        out["describe-network-interfaces"] = {"NetworkInterfaces": interfaces}

    # ------------------------------------------------------------ routes
    def _endpoint(self, owner: _Res, where: str, refs: list[str], for_each: list[str]) -> str:
        """The firewall endpoint (vpce-...) a route's vpc_endpoint_id expression selects."""
        firewalls = self.resolve(owner.module, owner.index, refs, {"aws_networkfirewall_firewall"}, for_each)
        if not firewalls:
            others = self.resolve(owner.module, owner.index, refs, {"aws_vpc_endpoint"}, for_each)
            if len(others) == 1:
                return self.id_of(others[0])
            in_scope = [f for f in self.of_type("aws_networkfirewall_firewall") if f.module == owner.module] \
                or self.of_type("aws_networkfirewall_firewall")
            if any(r.startswith("local.") for r in refs) and len(in_scope) == 1:
                firewalls = in_scope  # a local (not in the plan's configuration) over the one firewall
        if len(firewalls) != 1:
            raise self.fail(owner, where, "the plan does not tell which firewall endpoint this route goes to "
                            f"(references: {', '.join(refs) or 'none'})",
                            "select the endpoint from aws_networkfirewall_firewall.NAME.firewall_status[0]."
                            f"sync_states, {STATE_HINT}")
        fw = firewalls[0]
        eps = self.endpoints.get(fw.address) or []
        by_az = {az: endpoint for az, _, endpoint in eps}
        keys = {k for r in refs for k in STRING_KEY.findall(r) if k in by_az}
        subnets = {self.subnet[s.address][3] for s in self.resolve(owner.module, owner.index, refs, {"aws_subnet"},
                                                                    for_each) if s.address in self.subnet}
        for hint in (keys, subnets & set(by_az)):
            if len(hint) == 1:
                return by_az[hint.pop()]
            if len(hint) > 1:
                raise self.fail(owner, where, f"the expression names endpoints in {', '.join(sorted(hint))}: the "
                                "plan does not tell which one this route goes to",
                                "write each route to one Availability Zone's endpoint (an aws_route each), "
                                + STATE_HINT)
        if len(eps) == 1:
            return eps[0][2]
        raise self.fail(owner, where, f"firewall {fw.address} has endpoints in {', '.join(sorted(by_az))} and the "
                        "plan does not tell which one this route goes to", "select the endpoint by Availability "
                        "Zone, e.g. a local map from sync_states: local.endpoints[\"" + (sorted(by_az) or ["az"])[0]
                        + f"\"], or compare with aws_subnet.NAME.availability_zone, {STATE_HINT}")

    def _route_target(self, owner: _Res, where: str, key: str, refs: list[str], for_each: list[str]) -> str:
        if key == "vpc_endpoint_id":
            return self._endpoint(owner, where, refs, for_each)
        found = self.resolve(owner.module, owner.index, refs, TARGET_TYPES[key], for_each)
        if len(found) == 1:
            return self.id_of(found[0])
        raise self.fail(owner, where, f"the plan does not tell what {key} this is (references: "
                        f"{', '.join(refs) or 'none'})",
                        f"reference the target directly, one route per aws_route if need be, {STATE_HINT}")

    def _route_tables(self, out: Dump) -> None:
        tables: dict[str, dict[str, Any]] = {}
        vpc_main: dict[str, str] = {}
        for r in self.of_type("aws_route_table", "aws_default_route_table"):
            if r.type == "aws_route_table":
                vpc = self._vpc_of(r)
            else:
                vpc = self._default_table_vpc(r)
            table_id = self.id_of(r)
            routes = [local_route(self.vpc_cidr[vpc.address])]
            routes += self._inline_routes(r)
            associations = []
            if r.type == "aws_default_route_table":
                associations.append(main_association(table_id))
                vpc_main[vpc.address] = table_id
            tables[r.address] = route_table_shape(table_id, self.id_of(vpc), self.account, routes, associations,
                                                  self.tags(r))
        for r in self.of_type("aws_route"):
            table = self.resource(r, "route_table_id", {"aws_route_table", "aws_default_route_table"}, "route table")
            entry: dict[str, Any] = {}
            for key, aws in ROUTE_DESTINATIONS.items():
                value = r.values.get(key)
                if isinstance(value, str) and value:
                    entry[aws] = value
                elif key in (r.config.get("expressions") or {}) and self.unknown(r, key):
                    raise self.fail(r, key, "unknown in the plan", f"give the destination as a value, {STATE_HINT}")
            if not entry:
                raise self.fail(r, "destination_cidr_block", "not set", "give the route a destination")
            for key, aws in ROUTE_TARGETS.items():
                value = r.values.get(key)
                if isinstance(value, str) and value:
                    entry[aws] = value
                elif self.unknown(r, key) and key in (r.config.get("expressions") or {}):
                    refs = list(self.expression(r, key).get("references") or [])
                    entry[aws] = self._route_target(r, key, key, refs, self.for_each_refs(r))
            entry.update({"Origin": "CreateRoute", "State": "active"})
            tables[table.address]["Routes"].append(entry)
        for r in self.of_type("aws_route_table_association"):
            table = self.resource(r, "route_table_id", {"aws_route_table", "aws_default_route_table"}, "route table")
            association: dict[str, Any] = {"Main": False, "RouteTableAssociationId": self.id_of(r),
                                           "RouteTableId": tables[table.address]["RouteTableId"]}
            subnet = self.target(r, "subnet_id", {"aws_subnet"}, "subnet")
            gateway = self.target(r, "gateway_id", {"aws_internet_gateway", "aws_vpn_gateway"}, "gateway")
            if subnet is not None:
                association["SubnetId"] = self.id_of(subnet) if isinstance(subnet, _Res) else subnet
            elif gateway is not None:
                association["GatewayId"] = self.id_of(gateway) if isinstance(gateway, _Res) else gateway
            else:
                raise self.fail(r, "subnet_id", "neither subnet_id nor gateway_id is set", "set one of them")
            association["AssociationState"] = {"State": "associated"}
            tables[table.address]["Associations"].append(association)
        for r in self.of_type("aws_main_route_table_association"):
            table = self.resource(r, "route_table_id", {"aws_route_table"}, "route table")
            vpc = self._vpc_of(r)
            entry = main_association(tables[table.address]["RouteTableId"])
            entry["RouteTableAssociationId"] = self.id_of(r)
            tables[table.address]["Associations"].append(entry)
            vpc_main[vpc.address] = entry["RouteTableId"]
        # AWS gives every VPC a main route table; a plan shows it only when the configuration manages it.
        for vpc in self.of_type("aws_vpc"):
            if vpc.address not in vpc_main:
                table_id = str(vpc.values.get("default_route_table_id") or aws_id("rtb", vpc.address, "main"))
                tables[f"{vpc.address}:main"] = route_table_shape(
                    table_id, self.id_of(vpc), self.account, [local_route(self.vpc_cidr[vpc.address])],
                    [main_association(table_id)], [])
        out["describe-route-tables"] = {"RouteTables": list(tables.values())}

    def _default_table_vpc(self, r: _Res) -> _Res:
        value = r.values.get("default_route_table_id")
        for vpc in self.of_type("aws_vpc"):
            if value and vpc.values.get("default_route_table_id") == value:
                return vpc
        return self.resource(r, "default_route_table_id", {"aws_vpc"}, "VPC (its default_route_table_id)")

    def _inline_routes(self, table: _Res) -> list[dict[str, Any]]:
        routes = table.values.get("route")
        if not isinstance(routes, list):
            if self.unknown(table, "route") and (table.config.get("expressions") or {}).get("route"):
                raise self.fail(table, "route", "the routes are unknown in the plan",
                                f"write the routes as aws_route resources, {STATE_HINT}")
            return []
        unknown = table.unknown.get("route")
        unknown = unknown if isinstance(unknown, list) else []
        refs = list(self.expression(table, "route").get("references") or [])
        out = []
        for i, route in enumerate(routes):
            if not isinstance(route, dict):
                continue
            entry: dict[str, Any] = {}
            for key, aws in DESTINATIONS.items():
                if route.get(key):
                    entry[aws] = route[key]
            if not entry:
                raise self.fail(table, f"route[{i}]", "no destination known in the plan",
                                f"give each route's cidr_block as a value, {STATE_HINT}")
            marks = unknown[i] if i < len(unknown) and isinstance(unknown[i], dict) else {}
            for key, aws in ROUTE_TARGETS.items():
                value = route.get(key)
                if isinstance(value, str) and value:
                    entry[aws] = value
                elif marks.get(key) is True or (self.plan and key not in route):
                    where = f"route ({next(iter(entry.values()))}).{key}"
                    entry[aws] = self._route_target(table, where, key, refs, self.for_each_refs(table))
            entry.update({"Origin": "CreateRoute", "State": "active"})
            out.append(entry)
        return out

    # ------------------------------------------------------------ the firewall
    def _firewall(self, out: Dump) -> None:
        firewalls = self.of_type("aws_networkfirewall_firewall")
        if not firewalls:
            return
        if len(firewalls) > 1:
            raise ConfigError(f"{self.source}: {len(firewalls)} firewalls ({', '.join(f.address for f in firewalls)}):"
                              " an account dump holds one", "give one firewall's module (module=\"module.NAME\"), "
                              "or a plan of one firewall")
        fw = firewalls[0]
        vpc = self._vpc_of(fw)
        policy = self.resource(fw, "firewall_policy_arn", {"aws_networkfirewall_firewall_policy"}, "firewall policy")
        name = str(self.known(fw, "name", "the firewall's name"))
        body, groups = self._policy_body(policy)
        policy_arn, fw_arn = self.arn_of(policy), self.arn_of(fw)
        eps = self.endpoints[fw.address]
        out["describe-firewall"] = firewall_shape(
            name, fw_arn, policy_arn, self.id_of(vpc),
            [(az, self.subnet[s.address][0] if isinstance(s, _Res) else s, e) for az, s, e in eps],
            [policy_arn, *(self.arn_of(g) for g in groups)], self._nfw_tags(fw),
            fw.values.get("description"), bool(fw.values.get("delete_protection")),
            bool(fw.values.get("subnet_change_protection")), bool(fw.values.get("firewall_policy_change_protection")))
        out["describe-firewall-policy"] = policy_shape(str(self.known(policy, "name", "the policy's name")),
                                                       policy_arn, body, policy.values.get("description"),
                                                       self._nfw_tags(policy))
        out[RULE_GROUPS] = [self._rule_group(g) for g in groups]
        for r in self.of_type("aws_networkfirewall_logging_configuration"):
            target = self.target(r, "firewall_arn", {"aws_networkfirewall_firewall"}, "firewall")
            if target is not fw:
                continue
            configs = []
            for c in _one(r.values.get("logging_configuration")).get("log_destination_config") or []:
                configs.append({"LogType": c.get("log_type"), "LogDestinationType": c.get("log_destination_type"),
                                "LogDestination": dict(c.get("log_destination") or {})})
            out["describe-logging-configuration"] = logging_shape(fw_arn, configs)

    @staticmethod
    def _nfw_tags(res: _Res) -> list[dict[str, str]]:
        tags = res.values.get("tags") or {}
        return [{"Key": str(k), "Value": str(v)} for k, v in tags.items()] if isinstance(tags, dict) else []

    def _references(self, policy: _Res, key: str) -> list[tuple[_Res, dict[str, Any]]]:
        """A policy's rule group references (`key`: stateful_ or stateless_rule_group_reference): each group's
        resource and the reference's other fields. In a plan an unknown ARN is matched to its configuration block
        by priority and override action."""
        fp = _one(policy.values.get("firewall_policy"))
        planned = [p for p in fp.get(key) or [] if isinstance(p, dict)]
        configured = self.expression(policy, "firewall_policy", 0).get(key)
        configured = configured if isinstance(configured, list) else []
        unused = list(range(len(configured)))
        out = []
        for i, p in enumerate(planned):
            where = f"firewall_policy.{key}[{i}].resource_arn"
            arn = p.get("resource_arn")
            group: _Res | None = None
            if isinstance(arn, str) and arn:
                found = self.by_id.get(arn)
                if found is None or found.type != "aws_networkfirewall_rule_group":
                    raise self.fail(policy, where, f"{arn} is not a rule group of this configuration",
                                    "give a plan or state that holds the rule group too (managed rule groups are "
                                    "not emulated)")
                group = found
                for j in unused:  # its configuration block is taken
                    refs = list((configured[j].get("resource_arn") or {}).get("references") or [])
                    if self.resolve(policy.module, policy.index, refs, {found.type}) == [found]:
                        unused.remove(j)
                        break
            else:
                wanted = {"priority": p.get("priority"), "override": _one(p.get("override")).get("action")}
                candidates = [j for j in unused if _fits(configured[j], wanted)]
                if len(candidates) > 1 and any((configured[j].get("priority") or {}).get("references")
                                               for j in candidates):
                    raise self.fail(policy, where, "the plan does not tell which rule group has priority "
                                    f"{wanted['priority']}", "write each reference's priority as a number, "
                                    + STATE_HINT)
                if not candidates:
                    raise self.fail(policy, where, "unknown in the plan, and the configuration has no reference "
                                    "block for it (a dynamic block?)", f"write one block per rule group, {STATE_HINT}")
                unused.remove(candidates[0])
                refs = list((configured[candidates[0]].get("resource_arn") or {}).get("references") or [])
                found_groups = self.resolve(policy.module, policy.index, refs, {"aws_networkfirewall_rule_group"},
                                            self.for_each_refs(policy))
                if len(found_groups) != 1:
                    raise self.fail(policy, where, "the plan does not tell which rule group this is (references: "
                                    f"{', '.join(refs) or 'none'})", "reference aws_networkfirewall_rule_group.NAME"
                                    f".arn, {STATE_HINT}")
                group = found_groups[0]
            out.append((group, p))
        return out

    def _policy_body(self, policy: _Res) -> tuple[dict[str, Any], list[_Res]]:
        fp = _one(policy.values.get("firewall_policy"))
        if not fp:
            raise self.fail(policy, "firewall_policy", "missing or unknown in the plan", "write the block")
        body: dict[str, Any] = {
            "StatelessDefaultActions": _strings(fp.get("stateless_default_actions")),
            "StatelessFragmentDefaultActions": _strings(fp.get("stateless_fragment_default_actions"))}
        if fp.get("stateful_default_actions"):
            body["StatefulDefaultActions"] = _strings(fp["stateful_default_actions"])
        engine = _one(fp.get("stateful_engine_options"))
        if engine:
            options: dict[str, Any] = {}
            if engine.get("rule_order"):
                options["RuleOrder"] = engine["rule_order"]
            if engine.get("stream_exception_policy"):
                options["StreamExceptionPolicy"] = engine["stream_exception_policy"]
            idle = _one(engine.get("flow_timeouts")).get("tcp_idle_timeout_seconds")
            if idle is not None:
                options["FlowTimeouts"] = {"TcpIdleTimeoutSeconds": int(idle)}
            if options:
                body["StatefulEngineOptions"] = options
        groups: list[_Res] = []
        for key, aws in (("stateless_rule_group_reference", "StatelessRuleGroupReferences"),
                         ("stateful_rule_group_reference", "StatefulRuleGroupReferences")):
            refs = []
            for group, p in self._references(policy, key):
                entry: dict[str, Any] = {"ResourceArn": self.arn_of(group)}
                if p.get("priority") is not None:
                    entry["Priority"] = int(p["priority"])
                action = _one(p.get("override")).get("action")
                if action:
                    entry["Override"] = {"Action": action}
                refs.append(entry)
                if group not in groups:
                    groups.append(group)
            if refs:
                refs.sort(key=lambda e: e.get("Priority", 0))
                body[aws] = refs
        custom = _custom_actions(fp.get("stateless_custom_action"))
        if custom:
            body["StatelessCustomActions"] = custom
        variables = _one(fp.get("policy_variables")).get("rule_variables") or []
        if variables:
            body["PolicyVariables"] = {"RuleVariables": {
                v.get("key"): {"Definition": _strings(_one(v.get("ip_set")).get("definition"))} for v in variables}}
        if fp.get("tls_inspection_configuration_arn"):
            body["TLSInspectionConfigurationArn"] = fp["tls_inspection_configuration_arn"]
        return body, groups

    def _rule_group(self, r: _Res) -> dict[str, Any]:
        name = str(self.known(r, "name", "the rule group's name"))
        group_type = str(self.known(r, "type", "the rule group's type (STATEFUL or STATELESS)"))
        rg = _one(r.values.get("rule_group"))
        src = _one(rg.get("rules_source"))
        source: dict[str, Any] = {}
        rules = src.get("rules_string") or r.values.get("rules")
        if rules:
            source["RulesString"] = rules
        lst = _one(src.get("rules_source_list"))
        if lst:
            source["RulesSourceList"] = {"Targets": _strings(lst.get("targets")),
                                         "TargetTypes": _strings(lst.get("target_types")),
                                         "GeneratedRulesType": lst.get("generated_rules_type")}
        stateful = []
        for rule in src.get("stateful_rule") or []:
            header = _one(rule.get("header"))
            options = []
            for o in rule.get("rule_option") or []:
                option: dict[str, Any] = {"Keyword": o.get("keyword")}
                if o.get("settings"):
                    option["Settings"] = _strings(o["settings"])
                options.append(option)
            stateful.append({"Action": rule.get("action"), "Header": {
                "Protocol": header.get("protocol"), "Source": header.get("source"),
                "SourcePort": header.get("source_port"), "Direction": header.get("direction"),
                "Destination": header.get("destination"), "DestinationPort": header.get("destination_port")},
                "RuleOptions": options})
        if stateful:
            source["StatefulRules"] = stateful
        stateless = _one(src.get("stateless_rules_and_custom_actions"))
        if stateless:
            rules_out = [_stateless_rule(x) for x in stateless.get("stateless_rule") or []]
            block: dict[str, Any] = {"StatelessRules": sorted(rules_out, key=lambda x: x["Priority"])}
            custom = _custom_actions(stateless.get("custom_action"))
            if custom:
                block["CustomActions"] = custom
            source["StatelessRulesAndCustomActions"] = block
        body: dict[str, Any] = {}
        variables = _one(rg.get("rule_variables"))
        rule_variables: dict[str, Any] = {}
        for key, aws, inner in (("ip_sets", "IPSets", "ip_set"), ("port_sets", "PortSets", "port_set")):
            sets = {v.get("key"): {"Definition": _strings(_one(v.get(inner)).get("definition"))}
                    for v in variables.get(key) or []}
            if sets:
                rule_variables[aws] = sets
        if rule_variables:
            body["RuleVariables"] = rule_variables
        references = {v.get("key"): {"ReferenceArn": _one(v.get("ip_set_reference")).get("reference_arn")}
                      for v in _one(rg.get("reference_sets")).get("ip_set_references") or []}
        if references:
            body["ReferenceSets"] = {"IPSetReferences": references}
        if not source and self.plan and (_any_true(r.unknown.get("rule_group")) or r.unknown.get("rules") is True):
            raise self.fail(r, "rule_group", "its rules are unknown in the plan",
                            f"give the rules as values (a file read with file() is fine), {STATE_HINT}")
        body["RulesSource"] = source
        order = _one(rg.get("stateful_rule_options")).get("rule_order")
        if order:
            body["StatefulRuleOptions"] = {"RuleOrder": order}
        capacity = int(self.known(r, "capacity", "the rule group's capacity"))
        return rule_group_shape(name, self.arn_of(r), group_type, capacity, "RuleGroup", body, None,
                                r.values.get("description"), self._nfw_tags(r))


def _fits(block: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether a rule group reference's configuration block can be the planned one: its priority and override
    action, where the configuration writes them as values, are the planned ones."""
    expressions = {"priority": block.get("priority") or {},
                   "override": _one(block.get("override")).get("action") or {}}
    for key, e in expressions.items():
        if "constant_value" in e:
            if e["constant_value"] != wanted[key]:
                return False
        elif not e.get("references") and wanted[key] is not None:
            return False
    return True


def _any_true(marks: Any) -> bool:
    """Whether an after_unknown structure marks anything unknown."""
    if isinstance(marks, dict):
        return any(_any_true(v) for v in marks.values())
    if isinstance(marks, list):
        return any(_any_true(v) for v in marks)
    return marks is True


def _custom_actions(actions: Any) -> list[dict[str, Any]]:
    out = []
    for a in actions or []:
        metric = _one(_one(a.get("action_definition")).get("publish_metric_action"))
        out.append({"ActionName": a.get("action_name"), "ActionDefinition": {"PublishMetricAction": {
            "Dimensions": [{"Value": d.get("value")} for d in metric.get("dimension") or []]}}})
    return out


def _ports(ports: Any) -> list[dict[str, int]]:
    return [{"FromPort": int(p["from_port"]), "ToPort": int(p["to_port"] if p.get("to_port") is not None
                                                             else p["from_port"])} for p in ports or []]


def _stateless_rule(rule: dict[str, Any]) -> dict[str, Any]:
    definition = _one(rule.get("rule_definition"))
    match = _one(definition.get("match_attributes"))
    attributes: dict[str, Any] = {}
    for key, aws in (("source", "Sources"), ("destination", "Destinations")):
        if match.get(key):
            attributes[aws] = [{"AddressDefinition": a.get("address_definition")} for a in match[key]]
    for key, aws in (("source_port", "SourcePorts"), ("destination_port", "DestinationPorts")):
        if match.get(key):
            attributes[aws] = _ports(match[key])
    if match.get("protocols"):
        attributes["Protocols"] = sorted(int(p) for p in match["protocols"])
    if match.get("tcp_flag"):
        attributes["TCPFlags"] = [{"Flags": _strings(f.get("flags")), "Masks": _strings(f.get("masks"))}
                                  for f in match["tcp_flag"]]
    standard = [a for a in _strings(definition.get("actions")) if a.startswith("aws:")]
    custom = [a for a in _strings(definition.get("actions")) if not a.startswith("aws:")]
    return {"Priority": int(rule.get("priority") or 0),
            "RuleDefinition": {"MatchAttributes": attributes, "Actions": standard + custom}}


def dump_from_terraform(doc: dict[str, Any], source: str, module: str | None = None) -> Dump:
    """`terraform show -json` of a plan (`terraform show -json PLANFILE`) or a state, as an account dump.

    `module`: read only the resources of that module instance and the modules in it (e.g. "module.prod"), for a
    configuration that holds more than one firewall. Errors name the resource's address and the attribute."""
    return _Reader(doc, source, module).dump()
