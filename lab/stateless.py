"""The stateless engine: AWS's stateless rule groups and default actions, run by the firewall node's kernel
packet filter (iptables) in front of the queue to the stateful engine (Suricata).

AWS, "How AWS Network Firewall filters network traffic": "Network Firewall evaluates each packet against the
firewall policy's stateless rules until it finds a match or exhausts all of the stateless rules. Network
Firewall evaluates the rule groups in the order that they are prioritized in the policy, starting from the
lowest setting. Within each rule group, Network Firewall evaluates the rules in the order that they are
prioritized in the rule group, starting from the lowest setting."

In the firewall node, FORWARD sends every packet to the chain NFW-STATELESS first, then to the queue. That
chain holds the rules in AWS's order, then the fragment default action, then the default action:
aws:pass goes to NFW-PASS (ACCEPT while the stateful engine runs, DROP while the lab has it stopped: the
endpoint still fails closed), aws:drop is DROP, aws:forward_to_sfe returns to FORWARD and so to the queue.
Packets passed or dropped here never reach Suricata and are not logged, as on AWS. Every rule carries a
comment naming its group, priority, action and custom action, through which the metrics read its counters.
"""
from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from typing import Any

from .documents import Fields
from .limits import check_capacity

STANDARD_ACTIONS = ("aws:pass", "aws:drop", "aws:forward_to_sfe")
CHAIN, PASS_CHAIN = "NFW-STATELESS", "NFW-PASS"
TARGETS = {"aws:pass": PASS_CHAIN, "aws:drop": "DROP", "aws:forward_to_sfe": "RETURN"}
TCP_FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")
TCP, UDP = 6, 17
# Any fragment: the More Fragments flag or a fragment offset (bytes 6-7 of the IPv4 header, masked).
FRAGMENT_MATCH = ["-m", "u32", "--u32", "0x4&0x3fff=0x1:0x3fff"]
MULTIPORT_WEIGHT = 15  # iptables' multiport takes 15 ports, a range counting as two
RULE_KEYS = ("RuleDefinition", "Priority")
MATCH_KEYS = ("Sources", "Destinations", "SourcePorts", "DestinationPorts", "Protocols", "TCPFlags")


@dataclass(frozen=True)
class Actions:
    """One standard action and at most one custom action (a CloudWatch metric dimension)."""

    standard: str = "aws:forward_to_sfe"
    custom: str | None = None

    def __str__(self) -> str:
        return self.standard + (f" + {self.custom}" if self.custom else "")


@dataclass(frozen=True)
class Match:
    """A stateless rule's MatchAttributes; an empty setting matches anything."""

    sources: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()
    source_ports: tuple[tuple[int, int], ...] = ()
    destination_ports: tuple[tuple[int, int], ...] = ()
    protocols: tuple[int, ...] = ()
    tcp_flags: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()  # (flags, masks)

    def capacity(self) -> int:
        """AWS: "The capacity required for a single rule is the product of the complexity values of all of
        its match settings": the number of specifications in a setting, 1 for none."""
        return math.prod(max(1, len(s)) for s in (self.sources, self.destinations, self.source_ports,
                                                  self.destination_ports, self.protocols, self.tcp_flags))


@dataclass(frozen=True)
class StatelessRule:
    priority: int
    match: Match
    actions: Actions
    where: str


@dataclass(frozen=True)
class StatelessGroup:
    name: str
    source: str
    rules: tuple[StatelessRule, ...]  # by priority
    custom_actions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> dimension values

    def consumed_capacity(self) -> int:
        return sum(r.match.capacity() for r in self.rules)


@dataclass(frozen=True)
class StatelessPolicy:
    """The stateless part of a firewall policy."""

    groups: tuple[tuple[int, StatelessGroup], ...] = ()  # (policy priority, group), by priority
    default: Actions = Actions()
    fragment_default: Actions = Actions()
    custom_actions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # the policy's own

    @property
    def in_use(self) -> bool:
        """Whether the policy asks anything of the stateless engine (AWS's defaults forward everything)."""
        return self != StatelessPolicy()

    def summary(self) -> dict[str, Any]:
        return {"in_use": self.in_use, "default_actions": str(self.default),
                "fragment_default_actions": str(self.fragment_default),
                "rule_groups": [{"name": g.name, "priority": p, "rules": len(g.rules),
                                 "capacity": g.consumed_capacity()} for p, g in self.groups]}


# --------------------------------------------------------------------------
# Reading AWS's documents
# --------------------------------------------------------------------------
def is_stateless(data: Any) -> bool:
    """Whether a rule-group document (describe-rule-group output or its parts) is a stateless group."""
    if not isinstance(data, dict):
        return False
    response = data.get("RuleGroupResponse")
    if (isinstance(response, dict) and response.get("Type") == "STATELESS") or data.get("Type") == "STATELESS":
        return True
    group = data.get("RuleGroup", data)
    source = group.get("RulesSource") if isinstance(group, dict) else None
    return isinstance(source, dict) and "StatelessRulesAndCustomActions" in source


def custom_actions(doc: Fields, data: Any, where: str) -> dict[str, tuple[str, ...]]:
    """CustomActions: [{ActionName, ActionDefinition: {PublishMetricAction: {Dimensions: [{Value}]}}}]."""
    if data is None:
        return {}
    if not isinstance(data, list):
        raise doc.fail(where, "expected a list of custom actions", "see docs/policies.md#stateless-rule-groups")
    out: dict[str, tuple[str, ...]] = {}
    for i, entry in enumerate(data):
        w = f"{where}[{i}]"
        entry = doc.fields(entry, w, ("ActionName", "ActionDefinition"))
        name = entry.get("ActionName")
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
            raise doc.fail(f"{w}.ActionName", f"{name!r} is not a valid name", "use letters, digits, - and _")
        definition = doc.fields(entry.get("ActionDefinition") or {}, f"{w}.ActionDefinition",
                                ("PublishMetricAction",))
        metric = doc.fields(definition.get("PublishMetricAction") or {},
                            f"{w}.ActionDefinition.PublishMetricAction", ("Dimensions",))
        values = []
        dimensions = f"{w}.ActionDefinition.PublishMetricAction.Dimensions"
        for j, dim in enumerate(doc.listed(metric.get("Dimensions"), dimensions)):
            wd = f"{dimensions}[{j}]"
            value = doc.fields(dim, wd, ("Value",)).get("Value")
            if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", value):
                raise doc.fail(f"{wd}.Value", f"{value!r} is not a dimension value the lab takes",
                               "use letters, digits, - and _ (AWS also allows spaces; the lab does not)")
            values.append(value)
        if not values:
            raise doc.fail(f"{w}.ActionDefinition.PublishMetricAction.Dimensions", "is empty",
                           'give one dimension: [{"Value": "name"}]')
        if name in out:
            raise doc.fail(f"{w}.ActionName", f"custom action {name} is defined twice", "define it once")
        out[name] = tuple(values)
    return out


def actions(doc: Fields, data: Any, where: str, custom: dict[str, tuple[str, ...]]) -> Actions:
    """["aws:drop"] or ["aws:drop", "CustomName"]: one standard action, at most one custom action."""
    items = doc.strings(data, where)
    standard = [a for a in items if a in STANDARD_ACTIONS]
    others = [a for a in items if a not in STANDARD_ACTIONS]
    if len(standard) != 1:
        raise doc.fail(where, f"{items} must hold exactly one of {', '.join(STANDARD_ACTIONS)}",
                       'write ["aws:forward_to_sfe"], or add one custom action: ["aws:drop", "MyMetric"]')
    if len(others) > 1:
        raise doc.fail(where, f"{items} names more than one custom action", "keep at most one")
    for name in others:
        if name not in custom:
            raise doc.fail(where, f"custom action {name!r} is not defined here",
                           f"defined: {', '.join(custom) or 'none'}; define it in CustomActions")
    return Actions(standard[0], others[0] if others else None)


def _addresses(doc: Fields, data: Any, where: str) -> tuple[str, ...]:
    out = []
    for i, entry in enumerate(doc.listed(data, where)):
        value = doc.fields(entry, f"{where}[{i}]", ("AddressDefinition",)).get("AddressDefinition")
        try:
            net = ipaddress.ip_network(str(value), strict=False)
        except ValueError:
            raise doc.fail(f"{where}[{i}].AddressDefinition", f"{value!r} is not a CIDR block",
                           "write it like 10.0.0.0/16 (0.0.0.0/0 for any)") from None
        if net.version != 4:
            raise doc.fail(f"{where}[{i}].AddressDefinition", f"{value} is IPv6", "the lab's VPC is IPv4 only")
        out.append(str(net))
    return tuple(out)


def _ports(doc: Fields, data: Any, where: str) -> tuple[tuple[int, int], ...]:
    out = []
    for i, entry in enumerate(doc.listed(data, where)):
        entry = doc.fields(entry, f"{where}[{i}]", ("FromPort", "ToPort"))
        low, high = entry.get("FromPort"), entry.get("ToPort")
        if not all(isinstance(p, int) and 0 <= p <= 65535 for p in (low, high)) or low > high:  # type: ignore[operator]
            raise doc.fail(f"{where}[{i}]", f"FromPort {low!r} and ToPort {high!r} are not a port range",
                           "write {FromPort: 443, ToPort: 443}, FromPort <= ToPort, 0 to 65535")
        out.append((low, high))
    return tuple(out)  # type: ignore[arg-type]


def _match(doc: Fields, data: Any, where: str) -> Match:
    data = doc.fields(data or {}, where, MATCH_KEYS)
    protocols = data.get("Protocols") or []
    if not isinstance(protocols, list) or not all(isinstance(p, int) and 0 <= p <= 255 for p in protocols):
        raise doc.fail(f"{where}.Protocols", f"{protocols!r} is not a list of protocol numbers",
                       "write IANA numbers: [6] for TCP, [17] for UDP, [1] for ICMP")
    flags = []
    for i, entry in enumerate(doc.listed(data.get("TCPFlags"), f"{where}.TCPFlags")):
        entry = doc.fields(entry, f"{where}.TCPFlags[{i}]", ("Flags", "Masks"))
        names = [doc.strings(entry.get(k) or [], f"{where}.TCPFlags[{i}].{k}") for k in ("Flags", "Masks")]
        for k, values in zip(("Flags", "Masks"), names, strict=True):
            bad = [v for v in values if v not in TCP_FLAGS]
            if bad:
                raise doc.fail(f"{where}.TCPFlags[{i}].{k}", f"{bad} are not TCP flags", f"use {', '.join(TCP_FLAGS)}")
        flags.append((tuple(names[0]), tuple(names[1])))
    match = Match(_addresses(doc, data.get("Sources"), f"{where}.Sources"),
                  _addresses(doc, data.get("Destinations"), f"{where}.Destinations"),
                  _ports(doc, data.get("SourcePorts"), f"{where}.SourcePorts"),
                  _ports(doc, data.get("DestinationPorts"), f"{where}.DestinationPorts"),
                  tuple(protocols), tuple(flags))
    if (match.source_ports or match.destination_ports) and set(match.protocols) - {TCP, UDP}:
        raise doc.fail(f"{where}.Protocols", "ports only apply to TCP (6) and UDP (17)",
                       "split the rule: one with the ports for 6/17, one without ports for the other protocols")
    if match.tcp_flags and set(match.protocols) - {TCP}:
        raise doc.fail(f"{where}.Protocols", "TCP flags only apply to TCP (6)", "set Protocols to [6]")
    return match


def parse_stateless_group(data: Any, source: str, ignored: set[str], name: str | None = None) -> StatelessGroup:
    """A stateless rule group from `describe-rule-group --type STATELESS` output or its RuleGroup part."""
    doc = Fields(source, ignored)
    doc.fields(data, "(top)", ("RuleGroup", "RuleGroupResponse", "RuleGroupName", "RulesSource", "Capacity"))
    response = doc.part(data, "RuleGroupResponse", "RuleGroupResponse")
    name = doc.name(data.get("RuleGroupName") or response.get("RuleGroupName") or name or source.rsplit("/", 1)[-1],
                    "RuleGroupName")
    capacity = response.get("Capacity", data.get("Capacity"))
    prefix = "RuleGroup." if "RuleGroup" in data else ""
    group = doc.fields(data.get("RuleGroup", data), prefix.rstrip(".") or "(top)",
                       ("RulesSource", "RuleGroupName", "RuleGroupResponse", "RuleGroup", "Capacity"))
    src = doc.fields(group.get("RulesSource") or {}, f"{prefix}RulesSource", ("StatelessRulesAndCustomActions",))
    where = f"{prefix}RulesSource.StatelessRulesAndCustomActions"
    body = doc.fields(src.get("StatelessRulesAndCustomActions"), where, ("StatelessRules", "CustomActions"))
    custom = custom_actions(doc, body.get("CustomActions"), f"{where}.CustomActions")
    entries = body.get("StatelessRules")
    if not isinstance(entries, list) or not entries:
        raise doc.fail(f"{where}.StatelessRules", "expected a non-empty list of rules",
                       "see docs/policies.md#stateless-rule-groups")
    rules: list[StatelessRule] = []
    for i, entry in enumerate(entries):
        w = f"{where}.StatelessRules[{i}]"
        entry = doc.fields(entry, w, RULE_KEYS)
        priority = entry.get("Priority")
        if not isinstance(priority, int) or not 1 <= priority <= 65535:
            raise doc.fail(f"{w}.Priority", f"{priority!r} is not a priority", "give a unique number, 1 to 65535")
        if any(r.priority == priority for r in rules):
            raise doc.fail(f"{w}.Priority", f"priority {priority} is used twice in rule group {name}",
                           "AWS: the priority must be unique within the stateless rule group")
        definition = doc.fields(entry.get("RuleDefinition"), f"{w}.RuleDefinition", ("MatchAttributes", "Actions"))
        rules.append(StatelessRule(priority, _match(doc, definition.get("MatchAttributes"),
                                                    f"{w}.RuleDefinition.MatchAttributes"),
                                   actions(doc, definition.get("Actions"), f"{w}.RuleDefinition.Actions", custom),
                                   f"StatelessRules[{i}] (priority {priority})"))
    result = StatelessGroup(str(name), source, tuple(sorted(rules, key=lambda r: r.priority)), custom)
    check_capacity(doc, where, str(name), result.consumed_capacity(), capacity,
                   "a rule needs the product of the number of entries of each of its match settings")
    return result


# --------------------------------------------------------------------------
# The packet filter
# --------------------------------------------------------------------------
def _port_chunks(ranges: tuple[tuple[int, int], ...]) -> list[str]:
    """Port ranges as multiport arguments of at most 15 ports each (a range counts as two)."""
    chunks: list[str] = []
    current: list[str] = []
    weight = 0
    for low, high in ranges:
        item, w = (str(low), 1) if low == high else (f"{low}:{high}", 2)
        if weight + w > MULTIPORT_WEIGHT:
            chunks.append(",".join(current))
            current, weight = [], 0
        current.append(item)
        weight += w
    if current:
        chunks.append(",".join(current))
    return chunks


def match_arguments(m: Match) -> list[list[str]]:
    """The iptables match arguments of one stateless rule: one list per iptables rule (their union is the
    rule: several protocols, TCP flag sets or more than 15 ports need several iptables rules)."""
    ports = bool(m.source_ports or m.destination_ports)
    protocols: list[int | None] = list(m.protocols) or ([TCP] if m.tcp_flags else [TCP, UDP] if ports else [None])
    out: list[list[str]] = []
    for protocol in protocols:
        base: list[str] = []
        if protocol is not None:
            base += ["-p", {TCP: "tcp", UDP: "udp"}.get(protocol, str(protocol))]
        if m.sources:
            base += ["-s", ",".join(m.sources)]
        if m.destinations:
            base += ["-d", ",".join(m.destinations)]
        variants = [base]
        for option, ranges in (("--sports", m.source_ports), ("--dports", m.destination_ports)):
            if ranges:
                variants = [v + ["-m", "multiport", option, chunk] for v in variants for chunk in _port_chunks(ranges)]
        if m.tcp_flags and protocol == TCP:
            variants = [v + ["--tcp-flags", ",".join(masks) or "ALL", ",".join(flags) or "NONE"]
                        for v in variants for flags, masks in m.tcp_flags]
        out += variants
    return out


def _comment(kind: str, actions_: Actions, custom: dict[str, tuple[str, ...]], group: str = "-",
             priority: str = "-") -> list[str]:
    """What the metrics read back: the rule's group, priority, standard action and custom action's dimension."""
    dimension = custom[actions_.custom][0] if actions_.custom else "-"
    return ["-m", "comment", "--comment", f"nfw {kind} g={group} p={priority} a={actions_.standard} c={dimension}"]


def _quote(arg: str) -> str:
    return f'"{arg}"' if any(c in arg for c in ' "') else arg


def _append(argv: list[str], actions_: Actions) -> str:
    return f"-A {CHAIN} " + " ".join(_quote(a) for a in argv) + f" -j {TARGETS[actions_.standard]}"


def iptables_rules(policy: StatelessPolicy) -> str:
    """The NFW-STATELESS chain as iptables-restore input (applied with --noflush: one atomic replacement)."""
    lines = ["# The stateless engine (written by nfwlab; do not edit): iptables-restore --noflush", "*filter",
             f":{CHAIN} - [0:0]", f"-F {CHAIN}"]
    for policy_priority, group in policy.groups:
        for rule in group.rules:
            comment = _comment("rule", rule.actions, group.custom_actions, group.name,
                               f"{policy_priority}.{rule.priority}")
            lines += [_append(args + comment, rule.actions) for args in match_arguments(rule.match)]
    fragment = _comment("fragment-default", policy.fragment_default, policy.custom_actions)
    lines.append(_append(["-p", "udp", *FRAGMENT_MATCH, *fragment], policy.fragment_default))
    lines.append(_append(_comment("default", policy.default, policy.custom_actions), policy.default))
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"
