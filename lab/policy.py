"""Policy: AWS Network Firewall firewall policies and stateful rule groups,
read from AWS's own documents and turned into what the lab's Suricata runs.

Accepted documents (JSON, or YAML with the same keys):
- `aws network-firewall describe-rule-group` output (or its `RuleGroup` part):
  a policy of that one group, with AWS's defaults.
- `aws network-firewall describe-firewall-policy` output (or its
  `FirewallPolicy` part). Its StatefulRuleGroupReferences name rule groups by
  ARN (the name is the ARN's last part) or by name; they are found in the
  document's own `RuleGroups` list (the lab's one-file form), in the other
  files given, or as `<name>.json|.yaml|.yml` next to the policy file.

`render()` gives the Suricata rules text (with where each line came from, so
that Suricata's own errors can be traced to a rule group and rule), the rule
variables as a Suricata YAML include, and the engine options.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .documents import Fields, read_document
from .errors import ConfigError
from .limits import MAX_CAPACITY, check_capacity, check_rule
from .order import DEFAULT_ACTIONS_ORIGIN, STRICT_ACTION_ORDER, is_internal, shadow_warnings, strict_order
from .rules import DomainList, domain_list_lines, stateful_rule_line, uses_datasets
from .stateless import (
    StatelessGroup,
    StatelessPolicy,
    actions,
    custom_actions,
    iptables_rules,
    is_stateless,
    parse_stateless_group,
)

G = TypeVar("G", "RuleGroup", StatelessGroup)  # the kind of rule group a reference asks for
DEFAULT_ORDER = "DEFAULT_ACTION_ORDER"
STRICT_ORDER = "STRICT_ORDER"
RULE_ORDERS = (DEFAULT_ORDER, STRICT_ORDER)
DEFAULT_ACTIONS = ("aws:drop_strict", "aws:drop_established", "aws:alert_strict", "aws:alert_established")
# StreamExceptionPolicy -> Suricata's exception policy (midstream and stream errors).
STREAM_EXCEPTION = {"DROP": "drop-flow", "CONTINUE": "ignore", "REJECT": "reject"}
SYSTEM_GID = 2  # the default actions' rules; users' rules keep gid 1
RULE_ACTIONS = ("alert", "pass", "drop", "reject", "rejectsrc", "rejectdst", "rejectboth")
VAR_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
VAR_REF_RE = re.compile(r"\$([A-Za-z][A-Za-z0-9_]*)")
PORT_RE = re.compile(r"^(\d{1,5})(:(\d{1,5})?)?$")
GROUP_NAME_RE = re.compile(r"[A-Za-z0-9-]{1,128}")  # AWS's pattern for a rule group's name
SID_RE = re.compile(r"(?<![a-z_.])sid\s*:\s*(\d+)\s*;")
GID_RE = re.compile(r"(?<![a-z_.])gid\s*:\s*(\d+)\s*;")


def _gid_sid(rule: str) -> tuple[int, int]:
    """A rule's (gid, sid); gid 1 when the rule sets none. Every rule has a sid by the time this runs."""
    gid, sid = GID_RE.search(rule), SID_RE.search(rule)
    if sid is None:
        raise ValueError(f"a rule without a sid reached rendering: {rule}")
    return (int(gid.group(1)) if gid else 1, int(sid.group(1)))


def _rename_variables(rule: str, renames: dict[str, str]) -> str:
    """$NAME references renamed (a rule group's variables get names scoped to the group)."""
    return VAR_REF_RE.sub(lambda m: "$" + renames.get(m.group(1), m.group(1)), rule)
GLOBAL_VARS = ("HOME_NET", "EXTERNAL_NET")
# Fields AWS returns that change nothing in the lab (metadata, features out of scope).
IGNORED = {"UpdateToken", "ResponseMetadata", "Description", "Capacity", "Tags", "Type", "RuleGroupArn",
           "RuleGroupId", "RuleGroupStatus", "FirewallPolicyArn", "FirewallPolicyId", "FirewallPolicyStatus",
           "ConsumedCapacity", "NumberOfAssociations", "EncryptionConfiguration", "SnsTopic", "LastModifiedTime",
           "SourceMetadata", "AnalysisResults", "SummaryConfiguration",
           "EnableTLSSessionHolding", "DeepThreatInspection"}


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """One Suricata rule of a rule group, and where the user wrote it."""

    text: str
    where: str  # "RulesString line 3", "StatefulRules[2]", "Targets[0] (TLS_SNI)"


@dataclass(frozen=True)
class RuleGroup:
    name: str
    source: str  # the file it came from
    kind: str  # RulesSourceList | RulesString | StatefulRules
    rules: tuple[Rule, ...]
    ip_sets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    port_sets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rule_order: str | None = None
    domain_list: DomainList | None = None  # for RulesSourceList groups


@dataclass(frozen=True)
class GroupRef:
    group: RuleGroup
    priority: int | None = None
    override: str | None = None  # DROP_TO_ALERT


@dataclass(frozen=True)
class Policy:
    name: str
    source: str
    groups: tuple[GroupRef, ...]
    rule_order: str = DEFAULT_ORDER
    default_actions: tuple[str, ...] = ()
    stream_exception_policy: str = "DROP"
    tcp_idle_timeout: int | None = None
    home_net: tuple[str, ...] | None = None  # PolicyVariables HOME_NET; None: the VPC CIDR
    stateless: StatelessPolicy = StatelessPolicy()
    kind: str = "classic"

    def with_home_net(self, blocks: list[str] | tuple[str, ...]) -> Policy:
        return replace(self, home_net=tuple(blocks))

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "kind": self.kind, "rule_order": self.rule_order,
                "default_actions": list(self.default_actions),
                "stream_exception_policy": self.stream_exception_policy,
                "home_net": list(self.home_net) if self.home_net else None,
                "rule_groups": [{"name": r.group.name, "priority": r.priority, "kind": r.group.kind,
                                 "rules": len(r.group.rules), "override": r.override} for r in self.groups],
                "stateless": self.stateless.summary()}


@dataclass(frozen=True)
class Rendered:
    """What the firewall runs for a policy."""

    rules: str  # lab.rules
    origins: tuple[str | None, ...]  # per line of `rules`: which rule group / rule it came from
    variables: str  # policy.yaml, included by suricata.yaml
    engine: dict[str, Any]  # engine.json: {"set": [...]} options that need an engine restart
    home_net: str
    warnings: tuple[str, ...] = ()
    datasets: dict[str, str] = field(default_factory=dict)  # datasets/<file> -> content, next to lab.rules
    notes: tuple[str, ...] = ()
    stateless: str = ""  # stateless.rules: the stateless engine's chain, iptables-restore input
    # Next Generation policies (lab/nextgen.py): Suricata 8's firewall rules, and where each line came from.
    firewall: str = ""
    firewall_origins: tuple[str | None, ...] = ()
    kind: str = "classic"

    @property
    def rule_count(self) -> int:
        """The rules the policy's groups and default actions make (not the lab's own strict-order rules)."""
        return sum(1 for o in self.origins + self.firewall_origins if o is not None and not is_internal(o))

    def origin(self, line: int, firewall: bool = False) -> str | None:
        """Where line `line` (1-based) of the rules (or of the firewall rules) came from."""
        origins = self.firewall_origins if firewall else self.origins
        return origins[line - 1] if 0 < line <= len(origins) else None

    def explain(self, suricata_output: str) -> str:
        """Suricata's error lines, each followed by the rule group and rule it is about."""
        out = []
        for line in suricata_output.splitlines():
            if not line.startswith(("E:", "Error", "W: detect")):
                continue
            out.append(line)
            m = re.search(r"at line (\d+)", line)
            firewall = "firewall.rules" in line
            if m and self.origin(int(m.group(1)), firewall):
                out.append(f"  -> in {self.origin(int(m.group(1)), firewall)}")
        return "\n".join(out) or suricata_output.strip()[-1500:]


# --------------------------------------------------------------------------
# Reading documents
# --------------------------------------------------------------------------
def _variables(doc: Fields, data: Any, where: str) -> tuple[dict, dict]:
    data = doc.fields(data or {}, where, ("IPSets", "PortSets"))
    ip_sets: dict[str, Any] = {}
    port_sets: dict[str, Any] = {}
    for kind, out in (("IPSets", ip_sets), ("PortSets", port_sets)):
        sets = data.get(kind) or {}
        if not isinstance(sets, dict):
            raise doc.fail(f"{where}.{kind}", "expected an object of NAME: {Definition: [...]}", "see the README")
        for name, value in sets.items():
            w = f"{where}.{kind}.{name}"
            if not VAR_NAME_RE.match(str(name)):
                raise doc.fail(w, "not a valid variable name", "use letters, digits and _, starting with a letter")
            out[str(name)] = _definition(doc, kind, value, w)
    return ip_sets, port_sets


def _definition(doc: Fields, kind: str, value: Any, where: str) -> tuple[str, ...]:
    """One variable's {Definition: [...]}: CIDR blocks for IPSets, ports or port ranges for PortSets."""
    defs = doc.strings(doc.fields(value, where, ("Definition",)).get("Definition"), f"{where}.Definition")
    if not defs:
        raise doc.fail(f"{where}.Definition", "is empty", "list at least one CIDR block or port")
    for d in defs:
        if kind == "IPSets":
            try:
                ipaddress.ip_network(d, strict=False)
            except ValueError:
                raise doc.fail(f"{where}.Definition", f"{d!r} is not a CIDR block", "write it like 10.0.0.0/16") \
                    from None
        else:
            m = PORT_RE.match(d)
            if not m or int(m.group(1)) > 65535 or (m.group(3) and int(m.group(3)) > 65535):
                raise doc.fail(f"{where}.Definition", f"{d!r} is not a port or port range", "write 443 or 1024:65535")
    return tuple(defs)


def _rules_string(doc: Fields, text: Any, where: str, aws_limits: bool = True) -> list[Rule]:
    if not isinstance(text, str) or not text.strip():
        raise doc.fail(where, "expected Suricata rules as text", "write one rule per line")
    rules, pending, start = [], "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):  # Suricata's line continuation
            pending += stripped[:-1].rstrip() + " "
            continue
        rule = (pending + stripped).strip()
        pending = ""
        if not rule:  # a lone backslash continued onto a blank line: nothing to read
            continue
        at = f"{where} line {start}"
        action = rule.split(None, 1)[0]
        if action not in RULE_ACTIONS or not rule.endswith(")") or "(" not in rule:
            raise doc.fail(at, f"not a Suricata rule: {rule[:80]!r}",
                           "write `action protocol src port -> dst port (options;)`; "
                           f"actions: {', '.join(RULE_ACTIONS)}")
        if not SID_RE.search(rule):
            raise doc.fail(at, "the rule has no sid", "add sid:<number>; (AWS requires one per rule)")
        refused = check_rule(rule) if aws_limits else None
        if refused:
            raise doc.fail(at, refused, "remove or rewrite the rule: AWS refuses it even where Suricata would run it")
        rules.append(Rule(rule, f"RulesString line {start}"))
    if pending:
        raise doc.fail(where, "the last rule ends with a line continuation (\\)", "finish the rule")
    return rules


def parse_rule_group(data: Any, source: str, name: str | None = None, part: str = "RuleGroup") -> RuleGroup:
    """A stateful rule group from describe-rule-group output, its RuleGroup part, or {RuleGroupName, RuleGroup}.
    `part`: the key the document holds the group under (a Next Generation policy's IpsRuleGroup, InlineRuleGroup),
    so that errors name the field the user wrote."""
    doc = Fields(source, IGNORED)
    doc.fields(data, "(top)", (part, "RuleGroupResponse", "RuleGroupName", "RulesSource", "RuleVariables",
                               "StatefulRuleOptions", "ReferenceSets"))
    response = doc.part(data, "RuleGroupResponse", "RuleGroupResponse")
    if response.get("Type", "STATEFUL") != "STATEFUL":
        raise doc.fail("RuleGroupResponse.Type", f"{response.get('Type')!r} rule groups are not emulated",
                       "the lab runs the stateful engine (Suricata); use a STATEFUL rule group")
    name = doc.name(data.get("RuleGroupName") or response.get("RuleGroupName") or name or Path(source).stem,
                    "RuleGroupName")
    prefix = part if part in data else ""
    group = data.get(part, data)
    at = (lambda f: f"{prefix}.{f}" if prefix else f)  # noqa: E731
    doc.fields(group, prefix or "(top)", ("RulesSource", "RuleVariables", "StatefulRuleOptions", "ReferenceSets",
                                          "RuleGroupName", "RuleGroupResponse", "RuleGroup"))
    if group.get("ReferenceSets"):
        raise doc.fail(at("ReferenceSets"), "reference sets (managed prefix lists) are not emulated",
                       "write the CIDR blocks in RuleVariables.IPSets instead")
    src = group.get("RulesSource")
    if not isinstance(src, dict):
        raise doc.fail(at("RulesSource"), "missing", "a rule group needs a RulesSource: RulesSourceList, "
                       "RulesString or StatefulRules")
    kinds = [k for k in ("RulesSourceList", "RulesString", "StatefulRules") if k in src]
    doc.fields(src, at("RulesSource"), ("RulesSourceList", "RulesString", "StatefulRules"))
    if len(kinds) != 1:
        raise doc.fail(at("RulesSource"), f"expected exactly one of RulesSourceList, RulesString, StatefulRules, "
                       f"got {kinds or 'none'}", "keep one rule source per rule group")
    kind = kinds[0]
    where = at(f"RulesSource.{kind}")
    dl = None
    if kind == "RulesSourceList":
        lst = doc.fields(src[kind], where, ("Targets", "TargetTypes", "GeneratedRulesType"))
        targets = tuple(doc.strings(lst.get("Targets") or [], f"{where}.Targets"))
        target_types = tuple(doc.strings(lst.get("TargetTypes") or [], f"{where}.TargetTypes"))
        try:
            dl = DomainList(name, targets, target_types, lst.get("GeneratedRulesType", ""))
        except ConfigError as e:
            raise ConfigError(f"{source}: {where}: {e.message}", e.hint) from None
        lines = domain_list_lines(dl)
        rules = [Rule(t, f"the domain list's rule {i}") for i, t in enumerate(lines, 1)]
    elif kind == "RulesString":
        rules = _rules_string(doc, src[kind], where)
    else:
        entries = src[kind]
        if not isinstance(entries, list) or not entries:
            raise doc.fail(where, "expected a non-empty list of rules", "see the README's StatefulRules example")
        rules = []
        for i, entry in enumerate(entries):
            try:
                line = stateful_rule_line(entry, f"{where}[{i}]")
            except ConfigError as e:
                raise ConfigError(f"{source}: {e.message}", e.hint) from None
            refused = check_rule(line)
            if refused:
                raise doc.fail(f"{where}[{i}]", refused, "remove or rewrite the rule: AWS refuses it")
            rules.append(Rule(line, f"StatefulRules[{i}]"))
    ip_sets, port_sets = _variables(doc, group.get("RuleVariables"), at("RuleVariables"))
    order = (doc.fields(group.get("StatefulRuleOptions") or {}, at("StatefulRuleOptions"), ("RuleOrder",))
             .get("RuleOrder"))
    if order is not None and order not in RULE_ORDERS:
        raise doc.fail(at("StatefulRuleOptions.RuleOrder"), f"{order!r} is not valid",
                       f"use {' or '.join(RULE_ORDERS)}")
    check_capacity(doc, where, str(name), len(rules), response.get("Capacity", data.get("Capacity")),
                   "one per rule; for a domain list, one per rule AWS generates: each name for each target type, "
                   "plus the allow list's catch-alls")
    sids: dict[tuple[int, int], str] = {}
    for r in rules:
        key = _gid_sid(r.text)
        if key in sids:
            raise doc.fail(f"{where} ({r.where})", f"sid {key[1]} is used twice in rule group {name} "
                           f"(also by {sids[key]})", "give every rule of a rule group its own sid")
        sids[key] = r.where
    return RuleGroup(str(name), source, kind, tuple(rules), ip_sets, port_sets, order,
                     dl if kind == "RulesSourceList" else None)


def parse_any_group(data: Any, source: str, name: str | None = None) -> RuleGroup | StatelessGroup:
    """A stateful or stateless rule group, whichever the document holds."""
    if is_stateless(data):
        return parse_stateless_group(data, source, IGNORED, name)
    return parse_rule_group(data, source, name)


def _group_name(ref: str) -> str:
    """A rule group's name from its ARN (…:stateful-rulegroup/NAME) or the name itself."""
    return ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref


def group_file(doc: Fields, where: str, name: str, search_dir: Path | None) -> Path:
    """The file of a referenced rule group that is neither in the policy's RuleGroups list nor among the files
    given: NAME.json, .yaml or .yml next to the policy; ConfigError saying where it was looked for. NAME is an
    AWS rule group name, so that a reference never reaches a file outside the policy's folder."""
    if not GROUP_NAME_RE.fullmatch(name):
        raise doc.fail(f"{where}.ResourceArn", f"{name[:80]!r} is not a rule group name",
                       "AWS names a rule group with 1-128 letters, digits and '-'; reference it by that name or ARN")
    for ext in (".json", ".yaml", ".yml"):
        if search_dir is not None and (search_dir / f"{name}{ext}").is_file():
            return search_dir / f"{name}{ext}"
    raise doc.fail(f"{where}.ResourceArn", f"rule group {name!r} was not found",
                   f"put it in the policy's RuleGroups list, give its file too, or save it as {name}.json next to "
                   "the policy")


def parse_policy(data: Any, source: str, available: dict[str, RuleGroup | StatelessGroup] | None = None,
                 search_dir: Path | None = None) -> Policy:
    """A firewall policy from describe-firewall-policy output (or its FirewallPolicy part)."""
    doc = Fields(source, IGNORED)
    doc.fields(data, "(top)", ("FirewallPolicy", "FirewallPolicyResponse", "FirewallPolicyName", "RuleGroups"))
    response = doc.part(data, "FirewallPolicyResponse", "FirewallPolicyResponse")
    name = doc.name(data.get("FirewallPolicyName") or response.get("FirewallPolicyName") or Path(source).stem,
                    "FirewallPolicyName")
    pol = doc.fields(data.get("FirewallPolicy"), "FirewallPolicy", (
        "StatelessDefaultActions", "StatelessFragmentDefaultActions", "StatelessRuleGroupReferences",
        "StatefulRuleGroupReferences", "StatefulDefaultActions", "StatefulEngineOptions", "PolicyVariables",
        "TLSInspectionConfigurationArn", "StatelessCustomActions"))
    policy_actions = custom_actions(doc, pol.get("StatelessCustomActions"), "FirewallPolicy.StatelessCustomActions")
    default, fragment_default = (actions(doc, pol.get(key, ["aws:forward_to_sfe"]), f"FirewallPolicy.{key}",
                                         policy_actions)
                                 for key in ("StatelessDefaultActions", "StatelessFragmentDefaultActions"))
    if pol.get("TLSInspectionConfigurationArn"):
        raise doc.fail("FirewallPolicy.TLSInspectionConfigurationArn", "TLS inspection is not emulated", "remove it")
    engine = doc.fields(pol.get("StatefulEngineOptions") or {}, "FirewallPolicy.StatefulEngineOptions",
                        ("RuleOrder", "StreamExceptionPolicy", "FlowTimeouts"))
    order = engine.get("RuleOrder", DEFAULT_ORDER)
    if order not in RULE_ORDERS:
        raise doc.fail("FirewallPolicy.StatefulEngineOptions.RuleOrder", f"{order!r} is not valid",
                       f"use {' or '.join(RULE_ORDERS)}")
    stream = engine.get("StreamExceptionPolicy", "DROP")
    if not isinstance(stream, str) or stream not in STREAM_EXCEPTION:
        raise doc.fail("FirewallPolicy.StatefulEngineOptions.StreamExceptionPolicy", f"{stream!r} is not valid",
                       f"use one of {', '.join(STREAM_EXCEPTION)}")
    timeouts = doc.fields(engine.get("FlowTimeouts") or {}, "FirewallPolicy.StatefulEngineOptions.FlowTimeouts",
                          ("TcpIdleTimeoutSeconds",))
    idle = timeouts.get("TcpIdleTimeoutSeconds")
    if idle is not None and (not isinstance(idle, int) or not 60 <= idle <= 6000):
        raise doc.fail("FirewallPolicy.StatefulEngineOptions.FlowTimeouts.TcpIdleTimeoutSeconds",
                       f"{idle!r} is not valid", "AWS accepts 60 to 6000 seconds (default 350)")
    defaults = doc.strings(pol.get("StatefulDefaultActions", []), "FirewallPolicy.StatefulDefaultActions")
    for a in defaults:
        if a not in DEFAULT_ACTIONS:
            raise doc.fail("FirewallPolicy.StatefulDefaultActions", f"{a!r} is not a stateful default action",
                           f"use {', '.join(DEFAULT_ACTIONS)}")
    if defaults and order != STRICT_ORDER:
        raise doc.fail("FirewallPolicy.StatefulDefaultActions", "default actions need STRICT_ORDER (as on AWS)",
                       "set StatefulEngineOptions.RuleOrder to STRICT_ORDER, or remove the default actions")
    if {"aws:drop_strict", "aws:drop_established"} <= set(defaults):
        raise doc.fail("FirewallPolicy.StatefulDefaultActions", "choose at most one drop action",
                       "keep aws:drop_strict or aws:drop_established")
    if len(set(defaults)) != len(defaults):
        raise doc.fail("FirewallPolicy.StatefulDefaultActions", "an action is listed twice", "list each once")
    home_net = None
    variables = doc.fields(pol.get("PolicyVariables") or {}, "FirewallPolicy.PolicyVariables", ("RuleVariables",))
    rv = variables.get("RuleVariables") or {}
    doc.fields(rv, "FirewallPolicy.PolicyVariables.RuleVariables", ("HOME_NET",))
    if "HOME_NET" in rv:
        home_net = _definition(doc, "IPSets", rv["HOME_NET"], "FirewallPolicy.PolicyVariables.RuleVariables.HOME_NET")

    groups: dict[str, RuleGroup | StatelessGroup] = dict(available or {})
    for i, entry in enumerate(doc.listed(data.get("RuleGroups"), "RuleGroups")):
        g = parse_any_group(entry, f"{source}: RuleGroups[{i}]")
        groups[g.name] = g

    def find(target: Any, where: str, kind: type[G]) -> G:
        if not isinstance(target, str):
            raise doc.fail(where, "no ResourceArn", "name the rule group by its ARN or RuleGroupName")
        gname = _group_name(target)
        if gname not in groups:
            candidate = group_file(doc, where, gname, search_dir)
            groups[gname] = parse_any_group(read_document(candidate, "rule group file"), str(candidate), gname)
        found = groups[gname]
        if not isinstance(found, kind):
            wanted = "stateless" if kind is StatelessGroup else "stateful"
            raise doc.fail(f"{where}.ResourceArn", f"rule group {gname} is not a {wanted} rule group",
                           "reference stateless groups in StatelessRuleGroupReferences and stateful groups in "
                           "StatefulRuleGroupReferences")
        return found

    stateless_refs: list[tuple[int, StatelessGroup]] = []
    for i, ref in enumerate(doc.listed(pol.get("StatelessRuleGroupReferences"),
                                       "FirewallPolicy.StatelessRuleGroupReferences")):
        where = f"FirewallPolicy.StatelessRuleGroupReferences[{i}]"
        ref = doc.fields(ref, where, ("ResourceArn", "RuleGroupName", "Priority"))
        sg = find(ref.get("ResourceArn") or ref.get("RuleGroupName"), where, StatelessGroup)
        priority = ref.get("Priority")
        if not isinstance(priority, int) or not 1 <= priority <= 65535:
            raise doc.fail(f"{where}.Priority", f"{priority!r} is not a priority",
                           "give each stateless rule group a unique Priority from 1 to 65535 (lower runs first)")
        if any(p == priority for p, _ in stateless_refs):
            raise doc.fail(f"{where}.Priority", f"priority {priority} is used twice", "make priorities unique")
        if any(g.name == sg.name for _, g in stateless_refs):
            raise doc.fail(where, f"rule group {sg.name} is referenced twice", "reference each rule group once")
        stateless_refs.append((priority, sg))
    stateless_refs.sort(key=lambda pg: pg[0])
    used = sum(g.consumed_capacity() for _, g in stateless_refs)
    if used > MAX_CAPACITY:
        raise doc.fail("FirewallPolicy.StatelessRuleGroupReferences", f"the stateless rule groups need capacity "
                       f"{used}, more than the {MAX_CAPACITY} AWS allows a policy", "remove or simplify rule groups")
    stateless = StatelessPolicy(tuple(stateless_refs), default, fragment_default, policy_actions)

    refs_data = doc.listed(pol.get("StatefulRuleGroupReferences"), "FirewallPolicy.StatefulRuleGroupReferences")
    refs: list[GroupRef] = []
    for i, ref in enumerate(refs_data):
        where = f"FirewallPolicy.StatefulRuleGroupReferences[{i}]"
        ref = doc.fields(ref, where, ("ResourceArn", "RuleGroupName", "Priority", "Override"))
        g = find(ref.get("ResourceArn") or ref.get("RuleGroupName"), where, RuleGroup)
        gname = g.name
        priority = ref.get("Priority")
        if order == STRICT_ORDER:
            if not isinstance(priority, int) or not 1 <= priority <= 65535:
                raise doc.fail(f"{where}.Priority", f"{priority!r}: STRICT_ORDER needs a priority",
                               "give each rule group a unique Priority from 1 to 65535 (lower runs first)")
            if any(r.priority == priority for r in refs):
                raise doc.fail(f"{where}.Priority", f"priority {priority} is used twice", "make priorities unique")
        override = (doc.fields(ref.get("Override") or {}, f"{where}.Override", ("Action",)).get("Action"))
        if override not in (None, "DROP_TO_ALERT"):
            raise doc.fail(f"{where}.Override.Action", f"{override!r} is not valid", "use DROP_TO_ALERT")
        if (g.rule_order or DEFAULT_ORDER) != order:
            raise doc.fail(where,
                           f"rule group {gname} uses {g.rule_order or DEFAULT_ORDER} but the policy uses {order}",
                           "a rule group's StatefulRuleOptions.RuleOrder must match the policy's (as on AWS)")
        if any(r.group.name == gname for r in refs):
            raise doc.fail(where, f"rule group {gname} is referenced twice", "reference each rule group once")
        refs.append(GroupRef(g, priority, override))
    if order == STRICT_ORDER:
        refs.sort(key=lambda r: r.priority or 0)
    return Policy(str(name), source, tuple(refs), order, tuple(defaults), stream, idle, home_net, stateless)


def policy_from_group(group: RuleGroup) -> Policy:
    """A rule group on its own: a policy with AWS's defaults around it."""
    order = group.rule_order or DEFAULT_ORDER
    return Policy(group.name, group.source, (GroupRef(group, 1 if order == STRICT_ORDER else None),), order)


def load_policy(path: str | Path, extra: Sequence[str | Path] = ()) -> Policy:
    """A policy from a policy or rule-group file; `extra` files hold rule groups the policy references."""
    path = Path(path)
    data = read_document(path, "policy or rule group file")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected an object", "give describe-firewall-policy or describe-rule-group "
                          "output (JSON), or the same keys in YAML")
    available: dict[str, RuleGroup | StatelessGroup] = {}
    for p in extra:
        g = parse_any_group(read_document(p, "rule group file"), str(p))
        available[g.name] = g
    if "FirewallPolicy" in data:
        return parse_policy(data, str(path), available, path.parent)
    if "RuleGroup" in data or "RulesSource" in data:
        if extra:
            raise ConfigError(f"{path}: is a rule group, not a policy", "give the policy file first")
        group = parse_any_group(data, str(path))
        if isinstance(group, StatelessGroup):  # on its own: the policy's stateless engine, defaults around it
            return Policy(group.name, group.source, (), stateless=StatelessPolicy(((1, group),)))
        return policy_from_group(group)
    raise ConfigError(f"{path}: neither a firewall policy nor a rule group (top-level keys: {sorted(data)[:5]})",
                      "give describe-firewall-policy output (FirewallPolicy), describe-firewall-policy-v2 output "
                      "(FirewallPolicyV2) or describe-rule-group output (RuleGroup)")


def rules_file_policy(path: Path) -> Policy:
    """A Suricata rules file run as one RulesString rule group."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such rules file", "give a Suricata rules file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read ({e.__class__.__name__})", "give a readable Suricata rules file") \
            from None
    rules = _rules_string(Fields(str(path), IGNORED), text, "rules", aws_limits=False)  # run as-is
    group = RuleGroup(path.stem, str(path), "RulesString", tuple(rules))
    return Policy(path.stem, str(path), (GroupRef(group),))


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------
def _set_action(rule: str, action: str) -> str:
    return action + " " + rule.split(None, 1)[1]


def _add_option(rule: str, option: str) -> str:
    head, _, tail = rule.rpartition(")")
    return f"{head.rstrip()} {option})" + tail


def _default_action_rules(actions: tuple[str, ...]) -> list[tuple[str, str]]:
    """Rules for the strict-order default actions, as (rule, name) in evaluation order.

    A drop action on its own drops silently (as on AWS); with the alert action
    of the same scope, one rule drops and alerts, signed "aws:alert_... action"."""
    scope = {"strict": "", "established": "flow:established; "}
    sid = {"aws:drop_strict": 1, "aws:alert_strict": 2, "aws:drop_established": 3, "aws:alert_established": 4}
    out = []
    for flavour in ("established", "strict"):
        drop, alert = f"aws:drop_{flavour}", f"aws:alert_{flavour}"
        if drop in actions and alert in actions:
            out.append((f'drop ip any any -> any any (msg:"{alert} action"; {scope[flavour]}'
                        f'gid:{SYSTEM_GID}; sid:{sid[alert]}; rev:1;)', f"{drop} + {alert}"))
        elif drop in actions:
            out.append((f'drop ip any any -> any any (msg:"{drop} action"; {scope[flavour]}noalert; '
                        f'gid:{SYSTEM_GID}; sid:{sid[drop]}; rev:1;)', drop))
        elif alert in actions:
            out.append((f'alert ip any any -> any any (msg:"{alert} action"; {scope[flavour]}'
                        f'gid:{SYSTEM_GID}; sid:{sid[alert]}; rev:1;)', alert))
    return out


def _address_group(blocks: tuple[str, ...]) -> str:
    return "[" + ",".join(str(ipaddress.ip_network(b, strict=False)) for b in blocks) + "]"


def render(policy: Policy, vpc_cidr: str) -> Rendered:
    """The Suricata rules, variables and engine options for `policy` in a VPC."""
    home = policy.home_net or (vpc_cidr,)
    address_groups = {"HOME_NET": _address_group(home), "EXTERNAL_NET": "!$HOME_NET"}
    port_groups: dict[str, str] = {}
    entries: list[tuple[str, str | None]] = []  # (line, where it came from; None for comments)
    warnings: list[str] = []
    used: set[tuple[int, int]] = set()
    files: dict[str, str] = {}  # datasets/<name>.lst -> content
    notes: list[str] = []
    entries.append((f"# firewall policy {policy.name}: {policy.rule_order}"
                    + (f", default actions {', '.join(policy.default_actions)}" if policy.default_actions else "")
                    + f"; HOME_NET {','.join(home)}"
                    + (" (the VPC CIDR)" if not policy.home_net else " (PolicyVariables)"), None))
    for k, ref in enumerate(policy.groups, 1):
        g = ref.group
        renames: dict[str, str] = {}
        for var, blocks in g.ip_sets.items():
            renames[var] = f"NFW{k}_{var}"
            address_groups[renames[var]] = _address_group(blocks)
        for var, ports in g.port_sets.items():
            renames[var] = f"NFW{k}_{var}"
            port_groups[renames[var]] = "[" + ",".join(ports) + "]"
        if "HOME_NET" in g.ip_sets and "EXTERNAL_NET" not in g.ip_sets:
            warnings.append(f"rule group {g.name} sets HOME_NET but not EXTERNAL_NET: its $EXTERNAL_NET stays the "
                            f"policy's (not {','.join(g.ip_sets['HOME_NET'])}); set both, as AWS advises")
        keys = [_gid_sid(r.text) for r in g.rules]
        clash = any(key in used for key in keys)
        gid = 100 + k if clash else None  # the same sid in two groups: keep the sid, give the group its own gid
        entries.append((f"# rule group {g.name} ({g.kind}"
                        + (f", priority {ref.priority}" if ref.priority is not None else "")
                        + (f", override {ref.override}" if ref.override else "")
                        + (f", gid {gid}: its sids repeat an earlier group's" if gid else "") + ")", None))
        rules = g.rules
        if g.domain_list is not None and uses_datasets(g.domain_list):
            lines_ds = domain_list_lines(g.domain_list, f"nfw{k}", files)
            rules = tuple(Rule(t, f"the domain list's rule {i} (dataset form)") for i, t in enumerate(lines_ds, 1))
            keys = [_gid_sid(t.text) for t in rules]
            notes.append(f"rule group {g.name}: {len(g.domain_list.targets)} names, matched through Suricata "
                         "datasets (one rule per type, AWS's messages)")
        for r, key in zip(rules, keys, strict=True):
            text = r.text
            for name in VAR_REF_RE.findall(text):
                if name not in renames and name not in GLOBAL_VARS:
                    raise ConfigError(f"{g.source}: rule group {g.name}, {r.where}: ${name} is not defined",
                                      f"define {name} in the rule group's RuleVariables (IPSets or PortSets); "
                                      "HOME_NET and EXTERNAL_NET are predefined")
            if renames:
                text = _rename_variables(text, renames)
            if ref.override == "DROP_TO_ALERT" and text.split(None, 1)[0] in ("drop",) + RULE_ACTIONS[3:]:
                text = _set_action(text, "alert")
            if gid and not GID_RE.search(text):
                text = _add_option(text, f"gid:{gid};")
            used.add((gid or key[0], key[1]))
            entries.append((text, f"rule group {g.name}, {r.where} ({g.source})"))
    if policy.default_actions:
        entries.append(("# stateful default actions (STRICT_ORDER): after every rule group", None))
        for text, name in _default_action_rules(policy.default_actions):
            entries.append((text, f"{DEFAULT_ACTIONS_ORIGIN} {name}"))
    strict = policy.rule_order == STRICT_ORDER
    warnings += shadow_warnings(entries, strict)
    if strict:
        entries = strict_order(entries)
    variables = ("%YAML 1.1\n---\n# The firewall policy's rule variables (written by nfwlab; do not edit).\n"
                 + yaml.safe_dump({"vars": {"address-groups": address_groups, "port-groups": port_groups or
                                            {"NFWLAB_UNUSED_PORTS": "[1]"}}}, sort_keys=False, width=1000))
    engine_set = [f"exception-policy={STREAM_EXCEPTION[policy.stream_exception_policy]}"]
    if policy.tcp_idle_timeout:
        engine_set.append(f"flow-timeouts.tcp.established={policy.tcp_idle_timeout}")
    if strict:  # the probes of the strict-order rules run before the rules they guard (lab/order.py)
        engine_set += [f"action-order.{i}={a}" for i, a in enumerate(STRICT_ACTION_ORDER)]
    return Rendered("\n".join(t for t, _ in entries) + "\n", tuple(o for _, o in entries), variables,
                    {"set": engine_set}, ",".join(home), tuple(warnings), files, tuple(notes),
                    iptables_rules(policy.stateless))
