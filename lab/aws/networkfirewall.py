"""The lab's own AWS Network Firewall API: the JSON 1.0 operations (target prefix NetworkFirewall_20201112) on an
in-memory store, per region. Pure logic: no HTTP, no Docker; `handle(operation, region, request)` is the whole API.

Every request is first checked against botocore's service model (lab.aws.shapes): a missing required member, a
broken length, range, pattern or enum, an unknown member or a value of the wrong JSON type is a
ValidationException. Then the checks AWS documents, each quoting AWS where we have its words. Changes are
transactional: an operation works on a copy of the region, `before_commit(region, snapshot)` sees the state it
would leave (and may refuse with an AwsError, leaving nothing changed), then the copy replaces the region and
`after_commit(region)` runs, outside the lock.

What the lab does differently from AWS, on purpose: a firewall is READY at once (every attachment READY, every
sync state IN_SYNC) and a deleted firewall, policy or rule group is gone at once (the delete answers DELETING,
as AWS does, and the next describe answers ResourceNotFoundException, which Terraform's waiters take as done).
Only VPC-attached firewalls exist (no transit gateway, internet gateway or proxy mode firewalls), and no AWS
managed rule groups. Next Generation (V2) policies and FIREWALL/IPS rule groups are kept as given; their ARNs
share the Classic names: a policy of either kind is `firewall-policy/NAME`, and every rule group but a stateless
one is `stateful-rulegroup/NAME` (AWS does not document the Next Generation ARNs; lab.convert writes IPS groups
so), so a name is unique among the kinds that share an ARN.
"""
from __future__ import annotations

import copy
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import botocore.session  # type: ignore[import-untyped, unused-ignore]
from botocore.model import ServiceModel  # type: ignore[import-untyped, unused-ignore]

from ..limits import MAX_CAPACITY
from . import shapes
from .dump import rule_group_references

Snapshot = dict[str, Any]
Json = dict[str, Any]

SERVICE = "network-firewall"
TARGET_PREFIX = "NetworkFirewall_20201112"
DEFAULT_ORDER, STRICT_ORDER = "DEFAULT_ACTION_ORDER", "STRICT_ORDER"
STANDARD_STATELESS_ACTIONS = ("aws:pass", "aws:drop", "aws:forward_to_sfe")
AWS_OWNED_KEY = {"KeyId": "AWS_OWNED_KMS_KEY", "Type": "AWS_OWNED_KMS_KEY"}  # as AWS describes its default
MAX_TAGS = 50  # "up to 50 tags for a resource" (TagResource)
IN_USE = "Unable to delete the object because it is still in use"  # AWS's words; Terraform retries on them
# The rule group body that goes with each type, in requests and in DescribeRuleGroup.
BODY = {"STATELESS": "RuleGroup", "STATEFUL": "RuleGroup", "FIREWALL": "FirewallRuleGroup", "IPS": "IpsRuleGroup"}
# Features of the service that the lab has no part of: asked for, they are refused naming the feature.
NOT_EMULATED = ("TransitGatewayId", "AvailabilityZoneMappings", "IgwFirewallConfiguration", "VpcEndpoint",
                "NatGatewayCreateMappings", "ProxySettings", "TransparentFilteringNatScope")


class AwsError(Exception):
    """An error as AWS answers it: the code (the JSON `__type`), the message and the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, str]:
        """The JSON an AWS JSON 1.0 service sends for this error."""
        return {"__type": self.code, "message": self.message}


def _invalid(message: str) -> AwsError:
    return AwsError("InvalidRequestException", message)


def _in_use(message: str) -> AwsError:
    return AwsError("InvalidOperationException", message)


def _not_found(what: str) -> AwsError:
    return AwsError("ResourceNotFoundException", f"Unable to locate a resource using the parameters that you "
                    f"provided: {what} does not exist")


def _stale(what: str) -> AwsError:
    return AwsError("InvalidTokenException", f"The token you provided is stale or isn't valid for the operation: "
                    f"{what} has changed since you retrieved it; describe it again for its current UpdateToken")


@cache
def service_model() -> ServiceModel:
    """botocore's model of the Network Firewall API, which every request is checked against."""
    return botocore.session.get_session().get_service_model(SERVICE)


def _new_id() -> str:
    return str(uuid.uuid4())


def _tags_out(tags: dict[str, str]) -> list[Json]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _merge_tags(tags: dict[str, str], given: Iterable[Json]) -> dict[str, str]:
    merged = dict(tags)
    for tag in given:
        if tag["Key"].lower().startswith("aws:"):
            raise _invalid(f"Tag key {tag['Key']} starts with aws:, which AWS reserves for its own tags")
        merged[tag["Key"]] = tag["Value"]
    if len(merged) > MAX_TAGS:
        raise _invalid(f"A resource takes up to {MAX_TAGS} tags (this would make {len(merged)})")
    return merged


def _encryption(given: Json | None) -> Json:
    """The EncryptionConfiguration to keep: AWS's own key unless a customer managed key is named."""
    if not given or given["Type"] == AWS_OWNED_KEY["Type"]:
        return dict(AWS_OWNED_KEY)
    if not given.get("KeyId"):
        raise _invalid("EncryptionConfiguration of Type CUSTOMER_KMS needs the KeyId of the customer managed key")
    return copy.deepcopy(given)


def _page(items: list[Json], request: Json, key: str) -> Json:
    """One page of a List* answer: NextToken is the index of the next item."""
    token, start = request.get("NextToken"), 0
    if token is not None:
        if not token.isdigit() or int(token) > len(items):
            raise _invalid(f"NextToken {token} is not one this API gave")
        start = int(token)
    size = request.get("MaxResults") or 100
    out: Json = {key: items[start:start + size]}
    if start + size < len(items):
        out["NextToken"] = str(start + size)
    return out


def _rule_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def _consumed(body: Json) -> int:
    """The capacity a rule group's rules use, counted as AWS documents it (CreateRuleGroup's Capacity): for a
    stateful group "the number of individual rules", for a stateless rule the product of "the capacity
    requirement values of each of the rule's match settings" ("no criteria specified has a value of 1 ... All
    other match settings have a value equal to the number of elements provided in the setting")."""
    source = next(iter(body.values()))["RulesSource"]
    if "RulesString" in source:
        return _rule_lines(source["RulesString"])
    for key in ("StatefulRules", "FirewallRules"):
        if key in source:
            return len(source[key])
    if "RulesSourceList" in source:
        return len(source["RulesSourceList"]["Targets"]) * len(source["RulesSourceList"]["TargetTypes"])
    total = 0
    for rule in source.get("StatelessRulesAndCustomActions", {}).get("StatelessRules", []):
        match, need = rule["RuleDefinition"]["MatchAttributes"], 1
        for key in ("Sources", "Destinations", "SourcePorts", "DestinationPorts", "Protocols", "TCPFlags"):
            need *= max(1, len(match.get(key) or []))
        total += need
    return total


def _references(policy: Json) -> list[str]:
    """The rule group ARNs a policy references (inline Next Generation groups have none)."""
    return [e["ResourceArn"] for _, _, e in rule_group_references(policy["document"], policy["v2"])
            if e.get("ResourceArn")]


@dataclass(frozen=True)
class _PolicyKind:
    """The member names of a Classic (FirewallPolicy) or a Next Generation (FirewallPolicyV2) policy."""

    doc: str  # "FirewallPolicy" or "FirewallPolicyV2", the document's own member

    @property
    def name(self) -> str:
        return self.doc + "Name"

    @property
    def arn(self) -> str:
        return self.doc + "Arn"

    @property
    def response(self) -> str:
        return self.doc + "Response"


_V1, _V2 = _PolicyKind("FirewallPolicy"), _PolicyKind("FirewallPolicyV2")
# The RulesSource members each rule group type takes exactly one of.
_SOURCES = {"STATELESS": ("StatelessRulesAndCustomActions",), "STATEFUL": ("RulesString", "RulesSourceList",
            "StatefulRules"), "FIREWALL": ("RulesString", "FirewallRules", "RulesSourceList"), "IPS": ("RulesString",)}
_DESTINATION_KEYS = {"S3": "bucketName", "CloudWatchLogs": "logGroup", "KinesisDataFirehose": "deliveryStream"}


@dataclass
class _Store:
    """One region's resources, by ARN, in creation order. Each record holds its UpdateToken and tags."""

    firewalls: dict[str, Json] = field(default_factory=dict)
    policies: dict[str, Json] = field(default_factory=dict)
    rule_groups: dict[str, Json] = field(default_factory=dict)


@dataclass
class _Tx:
    region: str
    store: _Store
    changed: bool = True  # an operation that turns out to change nothing clears it: no commit, no hooks


Operation = Callable[[_Tx, Json], Json]


class NetworkFirewallApi:
    """AWS Network Firewall for one account, every region, in memory. Thread-safe (one lock)."""

    def __init__(self, account: str = "123456789012",
                 subnet_zone: Callable[[str, str], str | None] | None = None,
                 before_commit: Callable[[str, Snapshot], None] | None = None,
                 after_commit: Callable[[str], None] | None = None):
        """`subnet_zone(region, subnet_id)`: the subnet's Availability Zone, or None if there is no such subnet
        (without it every subnet exists, each in an AZ of its own named `{region}-{subnet_id}`).
        `before_commit(region, snapshot)`: sees the state a change would leave; an AwsError refuses the change.
        `after_commit(region)`: told after every change."""
        self.account = account
        self._subnet_zone = subnet_zone
        self._before_commit = before_commit
        self._after_commit = after_commit
        self._lock = threading.RLock()
        self._regions: dict[str, _Store] = {}
        self._model = service_model()
        reads: dict[str, Operation] = {
            "DescribeRuleGroup": self._describe_rule_group, "DescribeRuleGroupMetadata": self._rule_group_metadata,
            "ListRuleGroups": self._list_rule_groups,
            "DescribeFirewallPolicy": lambda tx, r: self._policy_out(tx.store, self._policy(tx, r, _V1)),
            "DescribeFirewallPolicyV2": lambda tx, r: self._policy_out(tx.store, self._policy(tx, r, _V2)),
            "ListFirewallPolicies": lambda tx, r: self._list_policies(tx, r, _V1),
            "ListFirewallPoliciesV2": lambda tx, r: self._list_policies(tx, r, _V2),
            "DescribeFirewall": lambda tx, r: self._firewall_out(tx.store, self._firewall(tx, r)),
            "DescribeFirewallMetadata": self._firewall_metadata, "ListFirewalls": self._list_firewalls,
            "DescribeLoggingConfiguration": lambda tx, r: self._logging_out(self._firewall(tx, r)),
            "ListTagsForResource": lambda tx, r: _page(_tags_out(self._tagged(tx, r)["tags"]), r, "Tags"),
        }
        writes: dict[str, Operation] = {
            "CreateRuleGroup": self._create_rule_group, "UpdateRuleGroup": self._update_rule_group,
            "DeleteRuleGroup": self._delete_rule_group,
            "CreateFirewallPolicy": lambda tx, r: self._create_policy(tx, r, _V1),
            "CreateFirewallPolicyV2": lambda tx, r: self._create_policy(tx, r, _V2),
            "UpdateFirewallPolicy": lambda tx, r: self._update_policy(tx, r, _V1),
            "UpdateFirewallPolicyV2": lambda tx, r: self._update_policy(tx, r, _V2),
            "DeleteFirewallPolicy": lambda tx, r: self._delete_policy(tx, r, _V1),
            "DeleteFirewallPolicyV2": lambda tx, r: self._delete_policy(tx, r, _V2),
            "CreateFirewall": self._create_firewall, "DeleteFirewall": self._delete_firewall,
            "AssociateSubnets": self._associate_subnets, "DisassociateSubnets": self._disassociate_subnets,
            "AssociateFirewallPolicy": self._associate_policy,
            "UpdateFirewallDeleteProtection": lambda tx, r: self._set_flag(tx, r, "DeleteProtection"),
            "UpdateSubnetChangeProtection": lambda tx, r: self._set_flag(tx, r, "SubnetChangeProtection"),
            "UpdateFirewallPolicyChangeProtection":
                lambda tx, r: self._set_flag(tx, r, "FirewallPolicyChangeProtection"),
            "UpdateFirewallDescription": lambda tx, r: self._set_flag(tx, r, "Description"),
            "UpdateFirewallEncryptionConfiguration": lambda tx, r: self._set_flag(tx, r, "EncryptionConfiguration"),
            "UpdateFirewallAnalysisSettings": lambda tx, r: self._set_flag(tx, r, "EnabledAnalysisTypes"),
            "UpdateLoggingConfiguration": self._update_logging,
            "TagResource": self._tag, "UntagResource": self._untag,
        }
        self._ops: dict[str, tuple[Operation, bool]] = {
            **{op: (f, False) for op, f in reads.items()}, **{op: (f, True) for op, f in writes.items()}}

    @property
    def operations(self) -> list[str]:
        """The operations this API answers."""
        return sorted(self._ops)

    # ------------------------------------------------------------------ the API
    def handle(self, operation: str, region: str, request: dict[str, Any]) -> dict[str, Any]:
        """Run one operation (its name without the target prefix, e.g. "CreateRuleGroup") in `region`.
        Returns the response body; raises AwsError as AWS answers."""
        if operation not in self._model.operation_names:
            raise AwsError("UnknownOperationException", f"Network Firewall has no operation {operation}")
        if operation not in self._ops:
            raise AwsError("UnsupportedOperationException", f"The lab does not emulate {operation}")
        if request is None:
            request = {}
        if not isinstance(request, dict):
            raise AwsError("SerializationException", "The request body must be a JSON object")
        shape = self._model.operation_model(operation).input_shape
        found = shapes.problems(shape, request) if shape is not None else []
        if found:
            raise AwsError("ValidationException", shapes.message(found))
        run, writes = self._ops[operation]
        with self._lock:
            current = self._regions.get(region) or _Store()
            if not writes:
                return copy.deepcopy(run(_Tx(region, current), request))
            tx = _Tx(region, copy.deepcopy(current))
            out = copy.deepcopy(run(tx, request))
            if request.get("DryRun") or not tx.changed:
                return out
            if self._before_commit is not None:
                self._before_commit(region, self._snapshot(tx.store))
            self._regions[region] = tx.store
        if self._after_commit is not None:
            self._after_commit(region)
        return out

    def state(self, region: str) -> Snapshot:
        """The region's resources as their describe operations answer (deep copies): "firewalls"
        (DescribeFirewall), "policies" (DescribeFirewallPolicy, or DescribeFirewallPolicyV2 for a Next
        Generation policy), "rule_groups" (DescribeRuleGroup), and "logging": DescribeLoggingConfiguration
        for every firewall, by firewall ARN (an empty LogDestinationConfigs where it logs nowhere)."""
        with self._lock:
            return self._snapshot(self._regions.get(region) or _Store())

    def _snapshot(self, store: _Store) -> Snapshot:
        return copy.deepcopy({
            "firewalls": [self._firewall_out(store, r) for r in store.firewalls.values()],
            "policies": [self._policy_out(store, r) for r in store.policies.values()],
            "rule_groups": [self._rule_group_out(store, r) for r in store.rule_groups.values()],
            "logging": {arn: self._logging_out(r) for arn, r in store.firewalls.items()}})

    # ------------------------------------------------------------------ finding resources
    def _arn(self, region: str, resource: str, name: str) -> str:
        return f"arn:aws:network-firewall:{region}:{self.account}:{resource}/{name}"

    def _rule_group_arn(self, region: str, kind: str, name: str) -> str:
        return self._arn(region, "stateless-rulegroup" if kind == "STATELESS" else "stateful-rulegroup", name)

    @staticmethod
    def _pick(request: Json, arn_key: str, name_key: str, arn_of: Callable[[str], str], table: dict[str, Json],
              what: str) -> Json:
        arn: str | None = request.get(arn_key)
        name: str | None = request.get(name_key)
        if name is None and arn is None:
            # "You must specify the ARN or the name, and you can specify both."
            raise _invalid(f"You must specify the ARN or the name ({arn_key} or {name_key}), and you can specify both")
        if arn is not None and name is not None and arn != arn_of(name):
            raise _invalid(f"{name_key} {name} is not the name in {arn_key} {arn}")
        key = arn if arn is not None else arn_of(name or "")
        found = table.get(key)
        if found is None:
            raise _not_found(f"{what} {arn if arn is not None else name}")
        return found

    def _firewall(self, tx: _Tx, request: Json) -> Json:
        if request.get("FirewallType") == "IGW_FIREWALL":
            raise _invalid("The lab has no internet gateway firewalls (FirewallType IGW_FIREWALL)")
        return self._pick(request, "FirewallArn", "FirewallName", lambda n: self._arn(tx.region, "firewall", n),
                          tx.store.firewalls, "firewall")

    def _rule_group(self, tx: _Tx, request: Json) -> Json:
        kind = request.get("Type")
        if request.get("RuleGroupArn") is None and kind is None:
            # Type: "This setting is required for requests that do not include the RuleGroupARN."
            raise _invalid("Type is required for requests that do not include the RuleGroupArn")
        group = self._pick(request, "RuleGroupArn", "RuleGroupName",
                           lambda n: self._rule_group_arn(tx.region, kind or "STATEFUL", n), tx.store.rule_groups,
                           "rule group")
        if kind is not None and group["type"] != kind:
            if request.get("RuleGroupArn") is None:
                raise _not_found(f"{kind} rule group {request['RuleGroupName']}")
            raise _invalid(f"Rule group {request['RuleGroupArn']} is of type {group['type']}, not {kind}")
        return group

    def _policy(self, tx: _Tx, request: Json, kind: _PolicyKind) -> Json:
        policy = self._pick(request, kind.arn, kind.name, lambda n: self._arn(tx.region, "firewall-policy", n),
                            tx.store.policies, "firewall policy")
        if policy["v2"] != (kind is _V2):
            name = policy["response"][(_V2 if policy["v2"] else _V1).name]
            raise _invalid(f"Firewall policy {name} is a {'Next Generation' if policy['v2'] else 'Classic'} policy: "
                           f"use the {'V2 ' if policy['v2'] else 'non-V2 '}operations for it")
        return policy

    def _tagged(self, tx: _Tx, request: Json) -> Json:
        arn = request["ResourceArn"]
        for table in (tx.store.firewalls, tx.store.policies, tx.store.rule_groups):
            if arn in table:
                return table[arn]
        raise _not_found(f"resource {arn}")

    @staticmethod
    def _check_token(request: Json, record: Json, what: str) -> None:
        given = request.get("UpdateToken")
        if given is not None and given != record["token"]:
            raise _stale(what)

    # ------------------------------------------------------------------ rule groups
    def _rule_group_out(self, store: _Store, group: Json, status: str = "ACTIVE") -> Json:
        return {"UpdateToken": group["token"], **copy.deepcopy(group["body"]),
                "RuleGroupResponse": self._rule_group_response(store, group, status)}

    @staticmethod
    def _rule_group_response(store: _Store, group: Json, status: str = "ACTIVE") -> Json:
        response = copy.deepcopy(group["response"])
        arn = response["RuleGroupArn"]
        response.update(RuleGroupStatus=status, ConsumedCapacity=_consumed(group["body"]),
                        NumberOfAssociations=sum(arn in _references(p) for p in store.policies.values()))
        if group["tags"]:
            response["Tags"] = _tags_out(group["tags"])
        return response

    @staticmethod
    def _rule_group_body(kind: str, request: Json) -> Json:
        """The group's rules from a CreateRuleGroup or UpdateRuleGroup request, under the key its type takes."""
        if kind not in BODY:
            raise _invalid(f"The lab creates no rule groups of type {kind} (only {', '.join(BODY)})")
        given = [k for k in ("Rules", "RuleGroup", "FirewallRuleGroup", "IpsRuleGroup") if request.get(k) is not None]
        if len(given) != 1:
            # "You must provide either this rule group setting or a Rules setting, but not both."
            raise _invalid("Exactly one of Rules or RuleGroup must be set" + (f" (given: {', '.join(given)})"
                                                                              if given else ""))
        key = BODY[kind]
        if given[0] == "Rules":
            if kind == "STATELESS":
                # Rules: "A string containing stateful rule group rules specifications in Suricata flat format"
                raise _invalid("Rules takes stateful rules in Suricata flat format; a STATELESS rule group takes "
                               "RuleGroup")
            return {key: {"RulesSource": {"RulesString": request["Rules"]}}}
        if given[0] != key:
            raise _invalid(f"A {kind} rule group takes {key} or Rules, not {given[0]}")
        source = [k for k, v in request[key]["RulesSource"].items() if v is not None]
        if len(source) != 1 or source[0] not in _SOURCES[kind]:
            raise _invalid(f"The RulesSource of a {kind} rule group takes exactly one of "
                           f"{', '.join(_SOURCES[kind])} (given: {', '.join(source) or 'none'})")
        return {key: copy.deepcopy(request[key])}

    @staticmethod
    def _check_capacity(group: Json) -> None:
        need, capacity = _consumed(group["body"]), group["response"]["Capacity"]
        source = next(iter(group["body"].values()))["RulesSource"]
        if need > capacity and "RulesSourceList" not in source:  # a domain list's count is AWS's to make
            # Capacity: "You can't change or exceed this capacity when you update the rule group"
            raise _invalid(f"Rule group {group['response']['RuleGroupName']} needs capacity {need} but its "
                           f"Capacity is {capacity}, which is fixed when the group is created")

    @staticmethod
    def _set_optional(target: Json, request: Json, *keys: str) -> None:
        for key in keys:
            if request.get(key) not in (None, ""):
                target[key] = copy.deepcopy(request[key])
            else:
                target.pop(key, None)

    def _create_rule_group(self, tx: _Tx, request: Json) -> Json:
        name, kind, capacity = request["RuleGroupName"], request["Type"], request["Capacity"]
        body = self._rule_group_body(kind, request)
        arn = self._rule_group_arn(tx.region, kind, name)
        if arn in tx.store.rule_groups:
            raise _invalid(f"A resource with the specified name already exists: rule group {name} ({arn})")
        if not 1 <= capacity <= MAX_CAPACITY:
            raise _invalid(f"Capacity {capacity} is not between 1 and AWS's largest, {MAX_CAPACITY}")
        response: Json = {"RuleGroupArn": arn, "RuleGroupName": name, "RuleGroupId": _new_id(), "Type": kind,
                          "Capacity": capacity, "LastModifiedTime": time.time(),
                          "EncryptionConfiguration": _encryption(request.get("EncryptionConfiguration"))}
        self._set_optional(response, request, "Description", "SourceMetadata", "SummaryConfiguration")
        group = {"type": kind, "token": _new_id(), "response": response, "body": body,
                 "tags": _merge_tags({}, request.get("Tags") or [])}
        self._check_capacity(group)
        tx.store.rule_groups[arn] = group
        return {"UpdateToken": group["token"], "RuleGroupResponse": self._rule_group_response(tx.store, group)}

    def _describe_rule_group(self, tx: _Tx, request: Json) -> Json:
        return self._rule_group_out(tx.store, self._rule_group(tx, request))

    def _rule_group_metadata(self, tx: _Tx, request: Json) -> Json:
        group = self._rule_group(tx, request)
        response = group["response"]
        out = {k: response[k] for k in ("RuleGroupArn", "RuleGroupName", "Description", "Type", "Capacity",
                                        "LastModifiedTime") if k in response}
        options = group["body"].get("RuleGroup", {}).get("StatefulRuleOptions")
        if options:
            out["StatefulRuleOptions"] = options
        return out

    def _update_rule_group(self, tx: _Tx, request: Json) -> Json:
        group = self._rule_group(tx, request)
        self._check_token(request, group, f"rule group {group['response']['RuleGroupName']}")
        group["body"] = self._rule_group_body(group["type"], request)
        response = group["response"]
        # UpdateRuleGroup: "first call DescribeRuleGroup to retrieve the current RuleGroup object, update the
        # object as needed, and then provide the updated object": what the request leaves out is cleared.
        self._set_optional(response, request, "Description", "SourceMetadata", "SummaryConfiguration")
        if request.get("EncryptionConfiguration"):
            response["EncryptionConfiguration"] = _encryption(request["EncryptionConfiguration"])
        self._check_capacity(group)
        for policy in tx.store.policies.values():  # the policies that use it must still take it
            if response["RuleGroupArn"] in _references(policy):
                try:
                    (self._check_policy_v2 if policy["v2"] else self._check_policy)(tx, policy["document"])
                except AwsError as e:
                    name = policy["response"][(_V2 if policy["v2"] else _V1).name]
                    raise _invalid(f"Firewall policy {name} uses this rule group: {e.message}") from None
        group["token"], response["LastModifiedTime"] = _new_id(), time.time()
        return {"UpdateToken": group["token"], "RuleGroupResponse": self._rule_group_response(tx.store, group)}

    def _delete_rule_group(self, tx: _Tx, request: Json) -> Json:
        group = self._rule_group(tx, request)
        arn = group["response"]["RuleGroupArn"]
        users = [p["response"][(_V2 if p["v2"] else _V1).name] for p in tx.store.policies.values()
                 if arn in _references(p)]
        if users:
            raise _in_use(f"{IN_USE}: rule group {group['response']['RuleGroupName']} is referenced by firewall "
                          f"policy {', '.join(users)}")
        out = {"RuleGroupResponse": self._rule_group_response(tx.store, group, "DELETING")}
        del tx.store.rule_groups[arn]
        return out

    def _list_rule_groups(self, tx: _Tx, request: Json) -> Json:
        if request.get("Scope") == "MANAGED" or request.get("ManagedType") or request.get("SubscriptionStatus"):
            return {"RuleGroups": []}  # the lab has no AWS managed rule groups
        items = [{"Name": g["response"]["RuleGroupName"], "Arn": arn} for arn, g in tx.store.rule_groups.items()
                 if request.get("Type") in (None, g["type"])]
        return _page(items, request, "RuleGroups")

    # ------------------------------------------------------------------ firewall policies
    def _policy_out(self, store: _Store, policy: Json) -> Json:
        kind = _V2 if policy["v2"] else _V1
        return {"UpdateToken": policy["token"], kind.response: self._policy_response(store, policy),
                kind.doc: copy.deepcopy(policy["document"])}

    @staticmethod
    def _policy_response(store: _Store, policy: Json, status: str = "ACTIVE") -> Json:
        kind = _V2 if policy["v2"] else _V1
        response = copy.deepcopy(policy["response"])
        response[kind.doc + "Status"] = status
        groups = [store.rule_groups[a] for a in _references(policy) if a in store.rule_groups]

        def capacity(*types: str, domain: bool | None = None) -> int:
            return sum(g["response"]["Capacity"] for g in groups if g["type"] in types and domain in (
                None, "RulesSourceList" in next(iter(g["body"].values()))["RulesSource"]))

        if policy["v2"]:  # inline groups use what their rules use
            inline = {key: sum(_consumed({"": e["InlineRuleGroup"]}) for e in policy["document"].get(key) or []
                               if e.get("InlineRuleGroup")) for key in ("FirewallRuleGroupEntries",
                                                                        "IpsRuleGroupEntries")}
            response["ConsumedFirewallRuleCapacity"] = capacity("FIREWALL") + inline["FirewallRuleGroupEntries"]
            response["ConsumedIpsRuleCapacity"] = capacity("IPS") + inline["IpsRuleGroupEntries"]
        else:
            response["ConsumedStatelessRuleCapacity"] = capacity("STATELESS")
            response["ConsumedStatefulRuleCapacity"] = capacity("STATEFUL", domain=False)
            response["ConsumedStatefulDomainCapacity"] = capacity("STATEFUL", domain=True)
        response["NumberOfAssociations"] = sum(f["firewall"]["FirewallPolicyArn"] == response[kind.arn]
                                               for f in store.firewalls.values())
        if policy["tags"]:
            response["Tags"] = _tags_out(policy["tags"])
        return response

    @staticmethod
    def _referenced(tx: _Tx, arn: str, kind: str, where: str) -> Json:
        group = tx.store.rule_groups.get(arn)
        if group is None:
            managed = ":aws-managed:" in arn
            raise _invalid(f"{where}: rule group {arn} does not exist" + (
                " (the lab has no AWS managed rule groups)" if managed else ""))
        if group["type"] != kind:
            raise _invalid(f"{where}: rule group {arn} is a {group['type']} rule group, not {kind}")
        return group

    def _check_policy(self, tx: _Tx, doc: Json) -> None:
        """The references and settings of a Classic policy, as AWS checks them."""
        order = (doc.get("StatefulEngineOptions") or {}).get("RuleOrder") or DEFAULT_ORDER
        custom = {a["ActionName"] for a in doc.get("StatelessCustomActions") or []}
        for key in ("StatelessDefaultActions", "StatelessFragmentDefaultActions"):
            # "You must specify one of the standard actions: aws:pass, aws:drop, or aws:forward_to_sfe. In
            # addition, you can specify custom actions that are compatible with your standard section choice."
            actions = doc[key]
            standard = [a for a in actions if a in STANDARD_STATELESS_ACTIONS]
            unknown = [a for a in actions if a not in STANDARD_STATELESS_ACTIONS and a not in custom]
            if len(standard) != 1 or unknown:
                raise _invalid(f"{key} {actions}: give one of the standard actions aws:pass, aws:drop or "
                               "aws:forward_to_sfe, and only custom actions defined in StatelessCustomActions")
        priorities: set[int] = set()
        for i, ref in enumerate(doc.get("StatelessRuleGroupReferences") or []):
            self._referenced(tx, ref["ResourceArn"], "STATELESS", f"StatelessRuleGroupReferences[{i}]")
            if ref["Priority"] in priorities:  # "You must ensure that the priority settings are unique"
                raise _invalid(f"StatelessRuleGroupReferences[{i}]: priority {ref['Priority']} is already used")
            priorities.add(ref["Priority"])
        seen: set[str] = set()
        priorities = set()
        for i, ref in enumerate(doc.get("StatefulRuleGroupReferences") or []):
            where, priority = f"StatefulRuleGroupReferences[{i}]", ref.get("Priority")
            group = self._referenced(tx, ref["ResourceArn"], "STATEFUL", where)
            if ref["ResourceArn"] in seen:
                raise _invalid(f"{where}: rule group {ref['ResourceArn']} is referenced twice")
            seen.add(ref["ResourceArn"])
            if priority is not None and order != STRICT_ORDER:
                # Priority "only applies to firewall policies that specify the STRICT_ORDER rule order"; AWS's
                # answer otherwise, word for word:
                raise _invalid(f"Priority cannot be provided, parameter: [{priority}], context: {where}"
                               f"[Priority={priority}]")
            if priority is not None and priority in priorities:
                raise _invalid(f"{where}: priority {priority} is already used")
            priorities.add(priority)
            # "The stateful rule groups that you use in your policy must have stateful rule options settings that
            # are compatible with these settings."
            group_order = (group["body"]["RuleGroup"].get("StatefulRuleOptions") or {}).get("RuleOrder")
            if (group_order or DEFAULT_ORDER) != order:
                raise _invalid(f"{where}: rule group {ref['ResourceArn']} uses rule order "
                               f"{group_order or DEFAULT_ORDER}, the policy {order}; they must match")
        if doc.get("StatefulDefaultActions") and order != STRICT_ORDER:
            # "The stateful default action is optional, and is only valid when using the strict rule order."
            raise _invalid("StatefulDefaultActions is only valid when using the strict rule order (StatefulEngine"
                           "Options.RuleOrder STRICT_ORDER)")

    def _check_policy_v2(self, tx: _Tx, doc: Json) -> None:
        """The entries of a Next Generation policy, as AWS documents them."""
        priorities: set[int] = set()
        for section, kind in (("FirewallRuleGroupEntries", "FIREWALL"), ("IpsRuleGroupEntries", "IPS")):
            for i, entry in enumerate(doc.get(section) or []):
                where = f"{section}[{i}]"
                # "Provide either ResourceArn to reference an existing rule group or InlineRuleGroup to embed a
                # rule group in the policy."
                if (entry.get("ResourceArn") is None) == (entry.get("InlineRuleGroup") is None):
                    raise _invalid(f"{where}: provide either ResourceArn or InlineRuleGroup")
                if entry.get("ResourceArn") is not None:
                    self._referenced(tx, entry["ResourceArn"], kind, where)
                else:
                    source = [k for k, v in entry["InlineRuleGroup"]["RulesSource"].items() if v is not None]
                    # "An embedded rule group can't use a domain list rules source"
                    if len(source) != 1 or source[0] == "RulesSourceList":
                        raise _invalid(f"{where}: an embedded rule group's RulesSource takes exactly one of "
                                       f"{', '.join(s for s in _SOURCES[kind] if s != 'RulesSourceList')}")
                if kind == "FIREWALL":
                    # "Each entry in the firewall section must have a unique priority."
                    if entry.get("Priority") is None or entry["Priority"] in priorities:
                        raise _invalid(f"{where}: each entry in the firewall section must have a unique Priority")
                    priorities.add(entry["Priority"])

    def _create_policy(self, tx: _Tx, request: Json, kind: _PolicyKind) -> Json:
        name, doc = request[kind.name], request[kind.doc]
        arn = self._arn(tx.region, "firewall-policy", name)
        if arn in tx.store.policies:
            raise _invalid(f"A resource with the specified name already exists: firewall policy {name} ({arn})")
        (self._check_policy_v2 if kind is _V2 else self._check_policy)(tx, doc)
        response: Json = {kind.name: name, kind.arn: arn, kind.doc + "Id": _new_id(),
                          "EncryptionConfiguration": _encryption(request.get("EncryptionConfiguration")),
                          "LastModifiedTime": time.time()}
        self._set_optional(response, request, "Description")
        policy = {"v2": kind is _V2, "token": _new_id(), "response": response, "document": copy.deepcopy(doc),
                  "tags": _merge_tags({}, request.get("Tags") or [])}
        tx.store.policies[arn] = policy
        return {"UpdateToken": policy["token"], kind.response: self._policy_response(tx.store, policy)}

    def _update_policy(self, tx: _Tx, request: Json, kind: _PolicyKind) -> Json:
        policy = self._policy(tx, request, kind)
        response = policy["response"]
        self._check_token(request, policy, f"firewall policy {response[kind.name]}")
        (self._check_policy_v2 if kind is _V2 else self._check_policy)(tx, request[kind.doc])
        policy["document"] = copy.deepcopy(request[kind.doc])
        self._set_optional(response, request, "Description")  # a full replacement, as UpdateRuleGroup
        if request.get("EncryptionConfiguration"):
            response["EncryptionConfiguration"] = _encryption(request["EncryptionConfiguration"])
        policy["token"], response["LastModifiedTime"] = _new_id(), time.time()
        return {"UpdateToken": policy["token"], kind.response: self._policy_response(tx.store, policy)}

    def _delete_policy(self, tx: _Tx, request: Json, kind: _PolicyKind) -> Json:
        policy = self._policy(tx, request, kind)
        arn = policy["response"][kind.arn]
        users = [f["firewall"]["FirewallName"] for f in tx.store.firewalls.values()
                 if f["firewall"]["FirewallPolicyArn"] == arn]
        if users:
            raise _in_use(f"{IN_USE}: firewall policy {policy['response'][kind.name]} is used by firewall "
                          f"{', '.join(users)}")
        out = {kind.response: self._policy_response(tx.store, policy, "DELETING")}
        del tx.store.policies[arn]
        return out

    def _list_policies(self, tx: _Tx, request: Json, kind: _PolicyKind) -> Json:
        items = [{"Name": p["response"][kind.name], "Arn": arn} for arn, p in tx.store.policies.items()
                 if p["v2"] == (kind is _V2)]
        return _page(items, request, "FirewallPoliciesV2" if kind is _V2 else "FirewallPolicies")

    # ------------------------------------------------------------------ firewalls
    @staticmethod
    def _endpoint(firewall: Json, subnet: str) -> str:
        """The firewall's endpoint in a subnet: "vpce-" and 17 hex digits, the same while the subnet is mapped."""
        return "vpce-" + hashlib.sha256(f"{firewall['firewall']['FirewallId']}/{subnet}".encode()).hexdigest()[:17]

    def _firewall_out(self, store: _Store, firewall: Json, status: str = "READY") -> Json:
        out = copy.deepcopy(firewall["firewall"])
        if firewall["tags"]:
            out["Tags"] = _tags_out(firewall["tags"])
        out["NumberOfAssociations"] = 0  # VpcEndpointAssociation resources: the lab has none
        return {"UpdateToken": firewall["token"], "Firewall": out, "FirewallStatus": self._status(store, firewall,
                                                                                                     status)}

    def _status(self, store: _Store, firewall: Json, status: str) -> Json:
        """READY and IN_SYNC at once: one sync state per AZ, its endpoint, and the token of the policy and of
        each rule group it references as the endpoint's configuration."""
        arn = firewall["firewall"]["FirewallPolicyArn"]
        config: Json = {}
        policy = store.policies.get(arn)
        if policy is not None:
            config[arn] = {"SyncStatus": "IN_SYNC", "UpdateToken": policy["token"]}
            for ref in _references(policy):
                if ref in store.rule_groups:
                    config[ref] = {"SyncStatus": "IN_SYNC", "UpdateToken": store.rule_groups[ref]["token"]}
        attachment = "DELETING" if status == "DELETING" else "READY"
        sync = {zone: {"Attachment": {"SubnetId": subnet, "EndpointId": self._endpoint(firewall, subnet),
                                      "Status": attachment}, "Config": copy.deepcopy(config)}
                for subnet, zone in firewall["zones"].items()}
        return {"Status": status, "ConfigurationSyncStateSummary": "IN_SYNC", "SyncStates": sync}

    def _zones(self, region: str, mappings: list[Json], zones: dict[str, str]) -> dict[str, str]:
        """The firewall's subnets and their AZs with `mappings` added: each subnet must exist, and "Each subnet
        must belong to a different Availability Zone in the VPC" (CreateFirewall), one endpoint per AZ."""
        zones = dict(zones)
        for mapping in mappings:
            subnet = mapping["SubnetId"]
            if subnet in zones:
                raise _invalid(f"Subnet {subnet} is already associated with the firewall")
            zone = self._subnet_zone(region, subnet) if self._subnet_zone is not None else f"{region}-{subnet}"
            if zone is None:
                raise _invalid(f"Subnet {subnet} does not exist in {region}")
            other = next((s for s, z in zones.items() if z == zone), None)
            if other is not None:
                raise _invalid(f"Subnet {subnet} is in {zone}, where the firewall already has subnet {other}: "
                               "each subnet must belong to a different Availability Zone")
            zones[subnet] = zone
        return zones

    @staticmethod
    def _mappings(mappings: list[Json]) -> list[Json]:
        return [{"SubnetId": m["SubnetId"], "IPAddressType": m.get("IPAddressType") or "IPV4"} for m in mappings]

    def _create_firewall(self, tx: _Tx, request: Json) -> Json:
        asked = [k for k in NOT_EMULATED if request.get(k) is not None]
        if request.get("AvailabilityZoneChangeProtection"):
            asked.append("AvailabilityZoneChangeProtection")
        if asked:
            raise _invalid(f"The lab has VPC-attached firewalls only: {', '.join(asked)} is not emulated")
        name = request["FirewallName"]
        arn = self._arn(tx.region, "firewall", name)
        if arn in tx.store.firewalls:
            raise _invalid(f"A resource with the specified name already exists: firewall {name} ({arn})")
        if not request.get("VpcId"):
            raise _invalid("VpcId is required: the VPC where Network Firewall should create the firewall")
        if not request.get("SubnetMappings"):
            # SubnetMappings: "Network Firewall creates a firewall endpoint in each subnet."
            raise _invalid("SubnetMappings must name at least one subnet, for the firewall's endpoints")
        if request["FirewallPolicyArn"] not in tx.store.policies:
            raise _invalid(f"Firewall policy {request['FirewallPolicyArn']} does not exist")
        # Not sent, the protections are FALSE: so AWS answers, and so Terraform expects (its delete_protection
        # defaults to false and is sent only when true), whatever CreateFirewall's text says of initializing them.
        record: Json = {
            "FirewallName": name, "FirewallArn": arn, "FirewallPolicyArn": request["FirewallPolicyArn"],
            "VpcId": request["VpcId"], "SubnetMappings": self._mappings(request["SubnetMappings"]),
            "DeleteProtection": bool(request.get("DeleteProtection")),
            "SubnetChangeProtection": bool(request.get("SubnetChangeProtection")),
            "FirewallPolicyChangeProtection": bool(request.get("FirewallPolicyChangeProtection")),
            "FirewallId": _new_id(), "EncryptionConfiguration": _encryption(request.get("EncryptionConfiguration")),
            "EnabledAnalysisTypes": list(request.get("EnabledAnalysisTypes") or [])}
        self._set_optional(record, request, "Description")
        firewall: Json = {"token": _new_id(), "firewall": record, "logging": [], "dashboard": False,
                    "zones": self._zones(tx.region, request["SubnetMappings"], {}),
                    "tags": _merge_tags({}, request.get("Tags") or [])}
        tx.store.firewalls[arn] = firewall
        out = self._firewall_out(tx.store, firewall)
        del out["UpdateToken"]  # CreateFirewall answers Firewall and FirewallStatus only
        return out

    def _delete_firewall(self, tx: _Tx, request: Json) -> Json:
        firewall = self._firewall(tx, request)
        record = firewall["firewall"]
        if record["DeleteProtection"]:
            # DeleteFirewall: "This operation requires the firewall's DeleteProtection flag to be FALSE."
            raise _in_use(f"Firewall {record['FirewallName']} is protected against deletion: its DeleteProtection "
                          "flag must be FALSE (UpdateFirewallDeleteProtection)")
        if request.get("DeleteAssociatedNatGateways"):
            raise _invalid("DeleteAssociatedNatGateways is for a proxy mode firewall only")
        out = self._firewall_out(tx.store, firewall, "DELETING")
        del out["UpdateToken"]
        del tx.store.firewalls[record["FirewallArn"]]
        return out

    def _change(self, tx: _Tx, request: Json, guard: str | None = None) -> Json:
        """The firewall an update request names, its token checked and, if it has one, the protection that
        guards the change (the flag TRUE refuses it)."""
        firewall = self._firewall(tx, request)
        record = firewall["firewall"]
        self._check_token(request, firewall, f"firewall {record['FirewallName']}")
        if guard is not None and record[guard]:
            raise _in_use(f"Firewall {record['FirewallName']} is protected against this change: set {guard} to "
                          f"FALSE first (Update{guard})")
        firewall["token"] = _new_id()
        return firewall

    @staticmethod
    def _answer(firewall: Json, *keys: str) -> Json:
        record = firewall["firewall"]
        return {"FirewallArn": record["FirewallArn"], "FirewallName": record["FirewallName"],
                **{k: copy.deepcopy(record[k]) for k in keys if k in record}, "UpdateToken": firewall["token"]}

    def _associate_subnets(self, tx: _Tx, request: Json) -> Json:
        firewall = self._change(tx, request, "SubnetChangeProtection")
        if request.get("NatGatewayCreateMappings"):
            raise _invalid("NatGatewayCreateMappings is for a proxy mode firewall, which the lab does not emulate")
        firewall["zones"] = self._zones(tx.region, request["SubnetMappings"], firewall["zones"])
        firewall["firewall"]["SubnetMappings"] += self._mappings(request["SubnetMappings"])
        return self._answer(firewall, "SubnetMappings")

    def _disassociate_subnets(self, tx: _Tx, request: Json) -> Json:
        firewall = self._change(tx, request, "SubnetChangeProtection")
        for subnet in request["SubnetIds"]:
            if subnet not in firewall["zones"]:
                raise _invalid(f"Subnet {subnet} is not associated with the firewall")
        remaining = {s: z for s, z in firewall["zones"].items() if s not in request["SubnetIds"]}
        if not remaining:
            # DisassociateSubnets: "You can't remove the firewall's last Availability Zone. To do that, delete the
            # firewall."
            raise _in_use("You can't remove the firewall's last Availability Zone. To do that, delete the firewall")
        firewall["zones"] = remaining
        firewall["firewall"]["SubnetMappings"] = [m for m in firewall["firewall"]["SubnetMappings"]
                                                  if m["SubnetId"] in remaining]
        return self._answer(firewall, "SubnetMappings")

    def _associate_policy(self, tx: _Tx, request: Json) -> Json:
        firewall = self._change(tx, request, "FirewallPolicyChangeProtection")
        if request["FirewallPolicyArn"] not in tx.store.policies:
            raise _invalid(f"Firewall policy {request['FirewallPolicyArn']} does not exist")
        firewall["firewall"]["FirewallPolicyArn"] = request["FirewallPolicyArn"]
        return self._answer(firewall, "FirewallPolicyArn")

    def _set_flag(self, tx: _Tx, request: Json, key: str) -> Json:
        """UpdateFirewallDeleteProtection and the other one-setting updates: `key` takes the request's value."""
        firewall = self._change(tx, request)
        record = firewall["firewall"]
        if key == "EncryptionConfiguration":
            record[key] = _encryption(request.get(key))
        elif key == "EnabledAnalysisTypes":
            record[key] = list(request.get(key) or [])
        else:
            self._set_optional(record, request, key)
        return self._answer(firewall, key)

    def _firewall_metadata(self, tx: _Tx, request: Json) -> Json:
        firewall = self._firewall(tx, request)
        record = firewall["firewall"]
        kinds = {m["SubnetId"]: m["IPAddressType"] for m in record["SubnetMappings"]}
        out = {"FirewallArn": record["FirewallArn"], "FirewallPolicyArn": record["FirewallPolicyArn"],
               "Status": "READY", "SupportedAvailabilityZones": {
                   zone: {"IPAddressType": kinds.get(subnet, "IPV4")} for subnet, zone in firewall["zones"].items()}}
        if "Description" in record:
            out["Description"] = record["Description"]
        return out

    def _list_firewalls(self, tx: _Tx, request: Json) -> Json:
        vpcs = request.get("VpcIds")
        items = [{"FirewallName": f["firewall"]["FirewallName"], "FirewallArn": arn}
                 for arn, f in tx.store.firewalls.items() if not vpcs or f["firewall"]["VpcId"] in vpcs]
        return _page(items, request, "Firewalls")

    # ------------------------------------------------------------------ logging
    @staticmethod
    def _logging_out(firewall: Json) -> Json:
        out: Json = {"FirewallArn": firewall["firewall"]["FirewallArn"],
                     "LoggingConfiguration": {"LogDestinationConfigs": copy.deepcopy(firewall["logging"])}}
        out["EnableMonitoringDashboard"] = firewall["dashboard"]
        return out

    def _update_logging(self, tx: _Tx, request: Json) -> Json:
        """AWS: "You must change the logging configuration one LogDestinationConfig at a time ... You can perform
        only one of the following actions in any call to UpdateLoggingConfiguration: Create a new log destination
        object by adding a single LogDestinationConfig array element to LogDestinationConfigs. Delete a log
        destination object by removing a single LogDestinationConfig array element from LogDestinationConfigs.
        Change the LogDestination setting in a single LogDestinationConfig array element." A request with no
        LogDestinationConfigs removes them all: Terraform's provider relies on it (it removes a firewall's last
        destination, and all three when there are three, by sending no LoggingConfiguration)."""
        firewall = self._firewall(tx, request)
        new = copy.deepcopy((request.get("LoggingConfiguration") or {}).get("LogDestinationConfigs") or [])
        old = {c["LogType"]: c for c in firewall["logging"]}
        given: dict[str, Json] = {}
        for config in new:
            if config["LogType"] in given:
                raise _invalid(f"LogType {config['LogType']} is given twice: one log destination per log type")
            given[config["LogType"]] = config
            key = _DESTINATION_KEYS[config["LogDestinationType"]]
            if not config["LogDestination"].get(key):
                # LogDestination: "For an Amazon S3 bucket, provide the name of the bucket, with key bucketName";
                # logGroup for a CloudWatch log group, deliveryStream for a Firehose delivery stream.
                raise _invalid(f"A {config['LogDestinationType']} LogDestination needs the key {key}")
        changed = [t for t in given if t in old and given[t] != old[t]]
        steps = [t for t in given if t not in old] + [t for t in old if t not in given] + changed
        if given and len(steps) > 1:
            raise _invalid("You can perform only one of the following actions in any call to UpdateLogging"
                           "Configuration: add a single LogDestinationConfig, remove a single one, or change the "
                           f"LogDestination of a single one (this call changes {', '.join(steps)})")
        for log_type in changed:
            if given[log_type]["LogDestinationType"] != old[log_type]["LogDestinationType"]:
                raise _invalid("You can't change the LogDestinationType or LogType in a LogDestinationConfig. To "
                               "change these settings, delete the existing LogDestinationConfig object and create a "
                               "new one, using two separate calls to this update operation")
        dashboard = request.get("EnableMonitoringDashboard")
        if not steps and dashboard in (None, firewall["dashboard"]):
            tx.changed = False
        firewall["logging"] = new
        if dashboard is not None:
            firewall["dashboard"] = dashboard
        record = firewall["firewall"]
        return {"FirewallArn": record["FirewallArn"], "FirewallName": record["FirewallName"],
                **{k: v for k, v in self._logging_out(firewall).items() if k != "FirewallArn"}}

    # ------------------------------------------------------------------ tags
    def _tag(self, tx: _Tx, request: Json) -> Json:
        resource = self._tagged(tx, request)
        merged = _merge_tags(resource["tags"], request["Tags"])
        tx.changed, resource["tags"] = merged != resource["tags"], merged
        return {}

    def _untag(self, tx: _Tx, request: Json) -> Json:
        resource = self._tagged(tx, request)
        before = len(resource["tags"])
        resource["tags"] = {k: v for k, v in resource["tags"].items() if k not in request["TagKeys"]}
        tx.changed = len(resource["tags"]) != before
        return {}
