"""Next Generation policies (AWS's FirewallPolicyV2): a firewall engine, then an IPS engine, on Suricata 8.

AWS: "A Next Generation policy inspects traffic with two engines, in sequence. Traffic that an engine allows
advances to the next engine; traffic that an engine blocks is dropped or rejected and does not advance." The
firewall engine "is built on Suricata's firewall mode", so the lab runs exactly that: Suricata 8 in firewall
mode, in the same firewall endpoint as before.

- The firewall section (`FirewallRuleGroupEntries`, by Priority) becomes Suricata's firewall rules
  (firewall.rules): rules in the order written, at connection-state hooks, `action:scope` with optional
  secondary `pass` (BypassIPSEnabled) and `alert` (AlertEnabled). Modeled rules (`FirewallRules`) compile to
  one rule string each, as AWS says it compiles them.
- `FirewallDefaultAction` becomes Suricata's default policies for the packet and application hooks
  (firewall.policies in policy.yaml).
- The IPS section (`IpsRuleGroupEntries`) becomes the threat-detection rules (lab.rules), rendered as a
  Classic policy's stateful groups in default action order ("The IPS engine evaluates rules by action order").
- `PolicyMode: MONITOR` keeps every decision and blocks nothing: each blocking action becomes an accept
  that alerts; the stream exception policy becomes Continue, as AWS documents.

AWS writes hooks with Suricata's newer TLS state names (tls:client_hello); Suricata 8.0 still calls them by
their older names (tls:client_hello_done). HOOKS maps one to the other both ways: rules are rendered with
Suricata's, logs and explanations speak AWS's.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .documents import Fields, read_document
from .errors import ConfigError
from .limits import check_capacity, option_refusal
from .order import INTERNAL_PREFIX, ParsedRule, parse_rule
from .policy import (
    DEFAULT_ORDER,
    IGNORED,
    SID_RE,
    GroupRef,
    Policy,
    Rendered,
    Rule,
    _definition,
    _gid_sid,
    _group_name,
    _rename_variables,
    _variables,
    group_file,
    load_policy,
    parse_policy,
    parse_rule_group,
    render,
)
from .rules import DOMAIN_RE, TARGET_TYPES, rule_options
from .shipped import policy_path

KIND = "next-generation"
DEFAULT_ACTIONS = ("DROP", "ACCEPT", "REJECT", "ALERT")
POLICY_MODES = ("ENFORCE", "MONITOR")
STREAM_EXCEPTIONS = ("DROP", "REJECT")  # "A Next Generation policy supports only the Drop and Reject ..."
MODELED_ACTIONS = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "REJECT_DST": "rejectdst",
                   "REJECT_BOTH": "rejectboth"}
# AWS's table "Actions and scopes": the scopes each primary action takes.
SCOPES = {"accept": ("flow", "tx", "hook", "packet"), "drop": ("flow", "packet"), "reject": ("flow", "packet"),
          "rejectsrc": ("flow", "packet"), "rejectdst": ("flow", "packet"), "rejectboth": ("flow", "packet")}
BLOCKING = ("drop", "reject", "rejectsrc", "rejectdst", "rejectboth")
MAX_FIREWALL_RULES = 30_000  # "30,000 rules for the firewall engine and 50,000 rules for the IPS engine"
MAX_IPS_RULES = 50_000
# Packet-layer protocols and hooks ("tcp:all"); every other protocol is an application layer with its own hooks.
PACKET_PROTOCOLS = ("ip", "ipv4", "ipv6", "tcp", "udp", "icmp", "icmpv4", "icmpv6", "sctp")
PACKET_HOOKS = ("all", "flow_start", "pre_flow", "pre_stream")
# AWS's hook name -> Suricata 8.0's, where they differ (Suricata's "TLS state migration" renamed them later).
HOOKS = {"tls:client_started": "tls:client_in_progress", "tls:client_hello": "tls:client_hello_done",
         "tls:client_cert": "tls:client_cert_done", "tls:client_data": "tls:client_handshake_done",
         "tls:server_started": "tls:server_in_progress", "tls:server_cert": "tls:server_cert_done"}
AWS_HOOKS = {v: k for k, v in HOOKS.items()}
# The hooks before each application-layer hook AWS names in its pitfall ("For TLS, accept tls:client_started.
# For HTTP/1, accept http1:request_started and http1:request_line."), for explanations and conversion.
PRIOR_HOOKS = {"tls:client_hello": ("tls:client_started",),
               "http1:request_headers": ("http1:request_started", "http1:request_line"),
               "http1:request_line": ("http1:request_started",)}
# Suricata 8.0's application-layer hooks (`suricata --list-app-layer-hooks`), in each protocol's state order: to
# the server first, then to the client. TLS's request_started and response_started are the same states as
# client_in_progress and server_in_progress, and left out.
_GENERIC = ("request_started", "request_complete", "response_started", "response_complete")
APP_HOOKS: dict[str, tuple[str, ...]] = {
    "http1": ("request_started", "request_line", "request_headers", "request_body", "request_trailer",
              "request_complete", "response_started", "response_line", "response_headers", "response_body",
              "response_trailer", "response_complete"),
    "tls": ("client_in_progress", "client_hello_done", "client_cert_done", "client_handshake_done",
            "client_finished", "request_complete", "server_in_progress", "server_hello", "server_cert_done",
            "server_hello_done", "server_handshake_done", "server_finished", "response_complete"),
    "ssh": ("request_started", "request_in_progress", "request_banner_wait_eol", "request_banner_done",
            "request_finished", "request_complete", "response_started", "response_in_progress",
            "response_banner_wait_eol", "response_banner_done", "response_finished", "response_complete"),
    "smtp": ("request_started", "request_data", "request_complete", "response_started", "response_data",
             "response_complete"),
    **{proto: _GENERIC for proto in ("ftp", "imap", "smb", "dcerpc", "dns", "nfs", "ntp", "ftp-data", "tftp", "ike",
                                     "krb5", "quic", "dhcp", "sip", "rfb", "mqtt", "telnet", "websocket", "ldap",
                                     "doh2", "rdp", "http2", "bittorrent-dht", "pop3", "mdns", "snmp")},
}
# Suricata's logs name HTTP/1's hooks http:... (a rule must say http1:...); AWS's say http1:...
AWS_HOOKS.update({f"http:{hook}": f"http1:{hook}" for hook in APP_HOOKS["http1"]})
# The lab's own firewall rules, each with its own gid: the default action at application hooks (explicit rules,
# not Suricata 8.0.7's default app policy: a matching threat-detection rule on the same hook turns its drop into
# a drop one hook late, and its accept keeps the IPS engine's application-layer rules from running) and the
# accepts of AcceptPriorHooks (written out: see _prior_hooks).
DEFAULT_ACTION_GID, PRIOR_HOOK_GID = 2, 4
DEFAULT_ACTION_ORIGIN = f"{INTERNAL_PREFIX}the firewall default action"
# Suricata's built-in signatures for its default policies' alerts (firewall mode): which table's default.
DEFAULT_POLICY_SIDS = {2201000: "packet", 2201001: "app"}
# Firewall rules that decide once per flow or hook (not per packet) alert even where AWS would log nothing, so
# that `nfwlab explain` knows which rule decided at each hook; their alerts carry this metadata and stay in the
# lab's eve.json, out of the ALERT log (compose/images/firewall.py).
EXPLAIN_METADATA = "metadata:nfwlab explain;"
NG_IGNORED = IGNORED | {"FirewallPolicyV2Arn", "FirewallPolicyV2Id", "FirewallPolicyV2Status",
                        "ConsumedFirewallRuleCapacity", "ConsumedIpsRuleCapacity", "ConsumedIpsDomainCapacity",
                        "Errors", "StatusMessage", "DryRun"}


def suricata_hook(hook: str) -> str:
    """AWS's `proto:hook` (or `proto:<hook`) as Suricata 8.0 names it."""
    prior = "<" if ":<" in hook else ""
    plain = hook.replace(":<", ":")
    mapped = HOOKS.get(plain, plain)
    proto, _, name = mapped.partition(":")
    return f"{proto}:{prior}{name}"


def aws_hook(hook: str) -> str:
    """Suricata 8.0's hook name as AWS writes it (tls:client_hello_done -> tls:client_hello)."""
    return AWS_HOOKS.get(hook, hook)


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class FirewallGroup:
    """A firewall-engine rule group: rules in Suricata 8 firewall-mode text, in the order written."""

    name: str
    source: str
    kind: str  # FirewallRules | RulesString | RulesSourceList
    rules: tuple[Rule, ...]
    priority: int
    ip_sets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    port_sets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    inline: bool = False

    @property
    def live_rules(self) -> tuple[Rule, ...]:
        """The rules without their comments: a RuleDescription, or a disabled rule (both kept in `rules` as "#"
        lines above the rule, as AWS renders them in RULES_STRING format)."""
        return tuple(r for r in self.rules if not r.text.startswith("#"))


@dataclass(frozen=True)
class NextGenPolicy:
    name: str
    source: str
    firewall: tuple[FirewallGroup, ...]
    ips: tuple[GroupRef, ...]
    default_action: str = "DROP"
    mode: str = "ENFORCE"
    stream_exception_policy: str = "REJECT"
    tcp_idle_timeout: int | None = None
    home_net: tuple[str, ...] | None = None
    kind: str = KIND

    def with_home_net(self, blocks: list[str] | tuple[str, ...]) -> NextGenPolicy:
        return replace(self, home_net=tuple(blocks))

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "kind": KIND, "engine": "suricata-8",
                "firewall_default_action": self.default_action, "policy_mode": self.mode,
                "stream_exception_policy": self.stream_exception_policy,
                "home_net": list(self.home_net) if self.home_net else None,
                "firewall_rule_groups": [{"name": g.name, "priority": g.priority, "kind": g.kind,
                                          "rules": len(g.live_rules), "inline": g.inline} for g in self.firewall],
                "ips_rule_groups": [{"name": r.group.name, "kind": r.group.kind, "rules": len(r.group.rules),
                                     "override": r.override} for r in self.ips]}


# --------------------------------------------------------------------------
# Firewall rules: modeled, rule strings, domain lists
# --------------------------------------------------------------------------
def _hook_of(doc: Fields, where: str, hook: Any) -> tuple[str, str]:
    """A modeled rule's Hook (AWS's enum TLS_CLIENT_HELLO, or the rule-string form tls:client_hello) as
    (protocol, hook)."""
    if not isinstance(hook, str) or not hook:
        raise doc.fail(f"{where}.Hook", "missing" if hook in (None, "") else f"{hook!r} is not a hook",
                       "give the connection-state hook, e.g. TCP_ALL or TLS_CLIENT_HELLO")
    if ":" in hook:
        proto, _, name = hook.lower().partition(":")
    else:
        proto, _, name = hook.lower().partition("_")
    if not proto or not name or not re.match(r"^[a-z0-9_:-]+$", name):
        raise doc.fail(f"{where}.Hook", f"{hook!r} is not a hook", "write it as PROTOCOL_HOOK (TCP_ALL, "
                       "TLS_CLIENT_HELLO, HTTP1_REQUEST_HEADERS) or as in a rule string (tls:client_hello)")
    return proto, name


def _address(doc: Fields, where: str, value: Any) -> str:
    if value is None or value == "":
        return "any"
    if not isinstance(value, str) or re.search(r"[\s;()]", value.strip()):
        raise doc.fail(where, f"{value!r} is not an address or port", "write any, a CIDR block, a $VARIABLE or a "
                       "[list], without spaces")
    return value.strip()


def modeled_rule(doc: Fields, entry: Any, where: str, sid: int) -> tuple[str, str | None]:
    """One FirewallRules entry as the one rule string AWS compiles it into; (rule, its comment line or None).
    `sid`: the sid it gets when its RuleOptions carry none."""
    doc.fields(entry, where, ("Action", "ActionScope", "Hook", "Protocol", "SourceIPs", "SourcePorts", "DestIPs",
                              "DestPorts", "AcceptPriorHooks", "AlertEnabled", "BypassIPSEnabled", "RuleOptions",
                              "RuleMetadata"))
    action = MODELED_ACTIONS.get(entry["Action"]) if isinstance(entry.get("Action"), str) else None
    if action is None:
        raise doc.fail(f"{where}.Action", f"{entry.get('Action')!r} is not valid",
                       f"use one of {', '.join(MODELED_ACTIONS)}")
    scope = str(entry.get("ActionScope") or "").lower()
    if scope not in SCOPES[action]:
        raise doc.fail(f"{where}.ActionScope", f"{entry.get('ActionScope')!r} is not valid for {entry['Action']}",
                       f"{entry['Action']} takes {', '.join(s.upper() for s in SCOPES[action])} (AWS's table of "
                       "actions and scopes)")
    proto, hook = _hook_of(doc, where, entry.get("Hook"))
    protocol = entry.get("Protocol")
    if not isinstance(protocol, str) or not protocol:
        raise doc.fail(f"{where}.Protocol", "missing" if protocol in (None, "") else f"{protocol!r} is not a protocol",
                       f"give the hook's protocol ({proto.upper()})")
    if protocol.lower() != proto and not (proto not in PACKET_PROTOCOLS and protocol.lower() in ("tcp", "udp")):
        raise doc.fail(f"{where}.Protocol", f"{protocol!r} does not match the hook {entry['Hook']!r}",
                       f"AWS: \"The protocol must match the hook's protocol family\": use {proto.upper()}")
    flags = {k: entry.get(k, False) for k in ("AcceptPriorHooks", "AlertEnabled", "BypassIPSEnabled")}
    for k, v in flags.items():
        if not isinstance(v, bool):
            raise doc.fail(f"{where}.{k}", f"{v!r} is not true or false", "write true or false")
    if flags["AcceptPriorHooks"] and action != "accept":
        raise doc.fail(f"{where}.AcceptPriorHooks", f"not valid with {entry['Action']}",
                       "AWS: the accept-prior-hooks form \"is valid only with an accept action\"; accept the "
                       "earlier hooks with rules of their own")
    if flags["BypassIPSEnabled"] and (action != "accept" or scope not in ("flow", "packet")):
        raise doc.fail(f"{where}.BypassIPSEnabled", f"not valid with {entry['Action']} {scope.upper()}",
                       "AWS: the IPS bypass pairs with an accept action and \"is valid only at the flow or packet "
                       "scope\"")
    actions = f"{action}:{scope}" + (f",pass:{scope}" if flags["BypassIPSEnabled"] else "") \
        + (",alert" if flags["AlertEnabled"] else "")
    prior = "<" if flags["AcceptPriorHooks"] and proto not in PACKET_PROTOCOLS else ""  # not on a packet hook
    try:
        options = rule_options(entry.get("RuleOptions"), where)
    except ConfigError as e:  # rules.py names the field; the file is ours to name
        raise ConfigError(f"{doc.source}: {e.message}", e.hint) from None
    if not any(o.startswith("sid:") for o in options):
        options.append(f"sid:{sid};")
    src = _address(doc, f"{where}.SourceIPs", entry.get("SourceIPs"))
    sport = _address(doc, f"{where}.SourcePorts", entry.get("SourcePorts"))
    dst = _address(doc, f"{where}.DestIPs", entry.get("DestIPs"))
    dport = _address(doc, f"{where}.DestPorts", entry.get("DestPorts"))
    meta = doc.fields(entry.get("RuleMetadata") or {}, f"{where}.RuleMetadata", ("RuleDescription", "RuleEnabled"))
    text = f"{actions} {proto}:{prior}{hook} {src} {sport} -> {dst} {dport} ({' '.join(options)})"
    description = meta.get("RuleDescription")
    if description is not None and (not isinstance(description, str) or len(description) > 512):
        raise doc.fail(f"{where}.RuleMetadata.RuleDescription", "expected text of at most 512 characters",
                       "shorten it")
    if meta.get("RuleEnabled", True) is False:
        return "", f"# disabled ({where}): {text}"
    comment = "# " + description.replace("\n", "\n# ") if description else None
    return text, comment


def check_firewall_rule(text: str) -> tuple[ParsedRule, str | None]:
    """A firewall-mode rule checked against AWS's limits for firewall rules; (the parsed rule, why AWS refuses it
    or None)."""
    rule = parse_rule(text)
    actions = rule.action.split(",")
    primary, _, scope = actions[0].partition(":")
    if primary == "config":
        return rule, "AWS: \"The config action isn't supported\""
    if primary in ("pass", "alert"):
        return rule, (f"AWS: \"A firewall rule can't use pass or alert as its primary action\" ({primary}); "
                      "pass is only a secondary action (the IPS bypass), alert only a modifier")
    if primary not in SCOPES:
        return rule, f"{primary!r} is not a firewall action: use {', '.join(SCOPES)}"
    if not scope:
        return rule, f"AWS: \"The scope is mandatory\": write {primary}:flow, {primary}:packet..."
    if scope not in SCOPES[primary]:
        return rule, f"{primary} takes the scopes {', '.join(SCOPES[primary])}, not {scope} (AWS's table)"
    for extra in actions[1:]:
        name, _, extra_scope = extra.partition(":")
        if name == "alert" and not extra_scope:
            continue
        if name == "pass" and primary == "accept" and extra_scope in ("flow", "packet"):
            continue
        return rule, (f"secondary action {extra!r}: AWS allows only `alert` and, after an accept, the IPS bypass "
                      "`pass:flow` or `pass:packet`")
    proto, _, hook = rule.protocol.partition(":")
    if not hook:
        return rule, f"no hook: write {proto}:all, tls:client_hello... (AWS: protocol:hook)"
    if hook.startswith("<") and primary != "accept":
        return rule, "AWS: the accept-prior-hooks `<` form \"is valid only with an accept action\""
    if hook.startswith("<") and suricata_hook(rule.protocol).partition(":<")[2] not in APP_HOOKS.get(proto, ()):
        return rule, (f"{rule.protocol}: the accept-prior-hooks `<` form needs an application-layer protocol's hook "
                      "(tls:<client_hello, http1:<request_headers...): the hooks before it are accepted")
    if not SID_RE.search(text):
        return rule, "the rule has no sid: add sid:<number>;"
    return rule, option_refusal(rule)


def _to_suricata(text: str) -> str:
    """A checked firewall rule with AWS's hook name replaced by Suricata 8.0's."""
    action, proto_hook, rest = text.split(None, 2)
    return f"{action} {suricata_hook(proto_hook)} {rest}"


def firewall_rules_string(doc: Fields, text: Any, where: str) -> list[Rule]:
    if not isinstance(text, str) or not text.strip():
        raise doc.fail(where, "expected firewall-mode rules as text", "write one rule per line: "
                       "accept:flow tls:client_hello any any -> any any (tls.sni; content:\"x\"; sid:1;)")
    rules = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            _, refused = check_firewall_rule(stripped)
        except ValueError as e:
            raise doc.fail(f"{where} line {number}", str(e), "write `action:scope protocol:hook src port -> dst "
                           "port (options; sid:N;)`") from None
        if refused:
            raise doc.fail(f"{where} line {number}", refused, "rewrite the rule: AWS refuses it")
        rules.append(Rule(_to_suricata(stripped), f"RulesString line {number}"))
    return rules


def domain_list_rules(doc: Fields, data: Any, where: str) -> list[Rule]:
    """A firewall rule group's domain list as firewall rules: the connection (carrier) rules, then one rule
    per name and target type at the hook where the name is seen (TLS_SNI: tls:client_hello; HTTP_HOST:
    http1:request_headers)."""
    lst = doc.fields(data, where, ("Targets", "TargetTypes", "GeneratedRulesType"))
    targets = doc.strings(lst.get("Targets") or [], f"{where}.Targets")
    types = doc.strings(lst.get("TargetTypes") or [], f"{where}.TargetTypes")
    kind = lst.get("GeneratedRulesType")
    verbs = {"ALLOWLIST": "accept:flow", "DENYLIST": "drop:flow,alert", "REJECTLIST": "reject:flow,alert",
             "ALERTLIST": "accept:hook,alert"}
    if not isinstance(kind, str) or kind not in verbs:
        raise doc.fail(f"{where}.GeneratedRulesType", f"{kind!r} is not valid", f"use one of {', '.join(verbs)}")
    if not targets or any(not DOMAIN_RE.match(t) for t in targets):
        raise doc.fail(f"{where}.Targets", "expected domain names", "write names, with a leading dot for a domain "
                       "and all its subdomains")
    if not types or any(t not in TARGET_TYPES for t in types):
        raise doc.fail(f"{where}.TargetTypes", f"{types!r} is not valid", f"use {' and/or '.join(TARGET_TYPES)}")
    rules = [Rule("accept:hook tcp:all $HOME_NET any -> any any (msg:\"connection\"; sid:1;)", "connection rule 1"),
             Rule("accept:hook tcp:all any any -> $HOME_NET any (msg:\"connection\"; sid:2;)", "connection rule 2")]
    sid = 2
    hooks = {"TLS_SNI": ("tls", "client_hello", "tls.sni"), "HTTP_HOST": ("http1", "request_headers", "http.host")}
    for target_type in TARGET_TYPES:
        if target_type not in types:
            continue
        proto, hook, buffer = hooks[target_type]
        for prior in PRIOR_HOOKS[f"{proto}:{hook}"]:
            if kind != "ALLOWLIST":  # "<" is for accept only: the blocking lists accept the earlier hooks
                sid += 1
                rules.append(Rule(f"accept:hook {suricata_hook(prior)} $HOME_NET any -> any any (sid:{sid};)",
                                  f"{target_type} earlier hook {prior}"))
        marker = "<" if kind == "ALLOWLIST" else ""
        for t in targets:
            sid += 1
            match = (f'dotprefix; content:"{t.lower()}"; endswith;' if t.startswith(".")
                     else f'content:"{t.lower()}"; startswith; endswith;')
            rules.append(Rule(f"{verbs[kind]} {proto}:{marker}{suricata_hook(f'{proto}:{hook}').split(':')[1]} "
                              f"$HOME_NET any -> any any (msg:\"{kind.lower()} {t}\"; {buffer}; "
                              f"{'to_lowercase; ' if buffer == 'tls.sni' else ''}{match} sid:{sid};)",
                              f"Targets {t} ({target_type})"))
    return rules


def parse_firewall_group(doc: Fields, data: Any, where: str, name: str, priority: int, inline: bool) -> FirewallGroup:
    """A firewall rule group: an InlineRuleGroup, or the FirewallRuleGroup of describe-rule-group output."""
    group = doc.fields(data, where, ("RulesSource", "RuleVariables", "ReferenceSets"))
    if group.get("ReferenceSets"):
        raise doc.fail(f"{where}.ReferenceSets", "not valid for a firewall rule group",
                       "AWS: \"Firewall engine rule groups don't support IP set references ... use rule variables "
                       "instead\"")
    src = doc.fields(group.get("RulesSource"), f"{where}.RulesSource",
                     ("FirewallRules", "RulesString", "RulesSourceList"))
    kinds = [k for k in ("FirewallRules", "RulesString", "RulesSourceList") if k in src]
    if len(kinds) != 1:
        raise doc.fail(f"{where}.RulesSource", f"expected exactly one of FirewallRules, RulesString, "
                       f"RulesSourceList, got {kinds or 'none'}", "AWS: each request uses exactly one authoring mode")
    kind = kinds[0]
    at = f"{where}.RulesSource.{kind}"
    if kind == "RulesSourceList":
        if inline:
            raise doc.fail(at, "not valid in an embedded rule group", "AWS: \"An embedded rule group can't use a "
                           "domain list rules source\": reference a rule group that holds it")
        rules = domain_list_rules(doc, src[kind], at)
    elif kind == "RulesString":
        rules = firewall_rules_string(doc, src[kind], at)
    else:
        entries = src[kind]
        if not isinstance(entries, list) or not entries:
            raise doc.fail(at, "expected a non-empty list of rules", "see docs/next-generation.md")
        rules = []
        for i, entry in enumerate(entries):
            text, comment = modeled_rule(doc, entry, f"{at}[{i}]", i + 1)
            if comment:
                rules.append(Rule(comment, f"FirewallRules[{i}]"))
            if text:
                try:
                    _, refused = check_firewall_rule(text)
                except ValueError as e:  # RuleOptions that make no rule: an unclosed quote, a missing ';'
                    raise doc.fail(f"{at}[{i}]", str(e), "check the RuleOptions' Settings") from None
                if refused:
                    raise doc.fail(f"{at}[{i}]", refused, "rewrite the rule: AWS refuses it")
                rules.append(Rule(_to_suricata(text), f"FirewallRules[{i}]"))
    ip_sets, port_sets = _variables(doc, group.get("RuleVariables"), f"{where}.RuleVariables")
    sids: dict[tuple[int, int], str] = {}
    for r in rules:
        if r.text.startswith("#"):
            continue
        key = _gid_sid(r.text)
        if key in sids:
            raise doc.fail(f"{at} ({r.where})", f"sid {key[1]} is used twice in rule group {name} (also by "
                           f"{sids[key]})", "AWS: a SID \"must be unique within a rule group\"")
        sids[key] = r.where
    return FirewallGroup(name, doc.source, kind, tuple(rules), priority, ip_sets, port_sets, inline)


# --------------------------------------------------------------------------
# The policy document
# --------------------------------------------------------------------------
def _group_entry_name(data: Any) -> Any:
    """The RuleGroupName a rule group document gives itself (at the top or in RuleGroupResponse), if any."""
    if not isinstance(data, dict):
        return None
    response = data.get("RuleGroupResponse")
    return data.get("RuleGroupName") or (response.get("RuleGroupName") if isinstance(response, dict) else None)


def is_nextgen(data: Any) -> bool:
    return isinstance(data, dict) and "FirewallPolicyV2" in data


def _referenced(doc: Fields, ref: Any, where: str, search_dir: Path | None,
                available: dict[str, Any]) -> tuple[str, Any]:
    """A referenced rule group's name and document: from the policy's RuleGroups, the files given, or NAME.json
    next to the policy."""
    if not isinstance(ref, str) or not ref:
        raise doc.fail(f"{where}.ResourceArn", "missing", "give ResourceArn (or InlineRuleGroup)")
    name = _group_name(ref)
    if name not in available:
        candidate = group_file(doc, where, name, search_dir)
        available[name] = (str(candidate), read_document(candidate, "rule group file"))
    return name, available[name]


def _group_document(doc: Fields, data: Any) -> tuple[str | None, Any, Any]:
    """(the rule group's type, its FirewallRuleGroup/IpsRuleGroup/RuleGroup part, its Capacity) from
    describe-rule-group output."""
    if not isinstance(data, dict):
        return None, data, None
    response = doc.part(data, "RuleGroupResponse", "RuleGroupResponse")
    capacity = response.get("Capacity", data.get("Capacity"))
    for key, kind in (("FirewallRuleGroup", "FIREWALL"), ("IpsRuleGroup", "IPS"), ("RuleGroup", None)):
        if key in data:
            return response.get("Type", kind), data[key], capacity
    return response.get("Type"), data, capacity


def parse_nextgen(data: Any, source: str, available: dict[str, Any] | None = None,
                  search_dir: Path | None = None) -> NextGenPolicy:
    """A Next Generation policy from describe-firewall-policy-v2 output (or its FirewallPolicyV2 part, with
    the lab's RuleGroups list of referenced groups)."""
    doc = Fields(source, NG_IGNORED)
    doc.fields(data, "(top)", ("FirewallPolicyV2", "FirewallPolicyV2Response", "FirewallPolicyV2Name",
                               "RuleGroups"))
    response = doc.part(data, "FirewallPolicyV2Response", "FirewallPolicyV2Response")
    name = doc.name(data.get("FirewallPolicyV2Name") or response.get("FirewallPolicyV2Name") or Path(source).stem,
                    "FirewallPolicyV2Name")
    pol = doc.fields(data.get("FirewallPolicyV2"), "FirewallPolicyV2", (
        "FirewallDefaultAction", "FirewallRuleGroupEntries", "IpsRuleGroupEntries", "PolicyMode",
        "PolicyVariables", "StatefulEngineOptions", "TLSInspectionConfigurationArn", "Route53ResolvedIPValidation"))
    for unsupported, why in (("TLSInspectionConfigurationArn", "TLS inspection is not emulated"),
                             ("Route53ResolvedIPValidation", "Route 53 Resolver IP validation is not emulated: the "
                              "lab has no Route 53 Resolver")):
        if pol.get(unsupported):
            raise doc.fail(f"FirewallPolicyV2.{unsupported}", why, "remove it to run the policy in the lab")
    default = pol.get("FirewallDefaultAction", "DROP")
    if default not in DEFAULT_ACTIONS:
        raise doc.fail("FirewallPolicyV2.FirewallDefaultAction", f"{default!r} is not valid",
                       f"use one of {', '.join(DEFAULT_ACTIONS)}")
    mode = pol.get("PolicyMode", "ENFORCE")
    if mode not in POLICY_MODES:
        raise doc.fail("FirewallPolicyV2.PolicyMode", f"{mode!r} is not valid", f"use {' or '.join(POLICY_MODES)}")
    engine = doc.fields(pol.get("StatefulEngineOptions") or {}, "FirewallPolicyV2.StatefulEngineOptions",
                        ("StreamExceptionPolicy", "FlowTimeouts"))
    stream = engine.get("StreamExceptionPolicy", "REJECT")
    if stream not in STREAM_EXCEPTIONS:
        raise doc.fail("FirewallPolicyV2.StatefulEngineOptions.StreamExceptionPolicy", f"{stream!r} is not valid",
                       "AWS: \"A Next Generation policy supports only the Drop and Reject stream exception policy "
                       "options\"")
    timeouts = doc.fields(engine.get("FlowTimeouts") or {}, "FirewallPolicyV2.StatefulEngineOptions.FlowTimeouts",
                          ("TcpIdleTimeoutSeconds",))
    idle = timeouts.get("TcpIdleTimeoutSeconds")
    if idle is not None and (not isinstance(idle, int) or not 60 <= idle <= 6000):
        raise doc.fail("FirewallPolicyV2.StatefulEngineOptions.FlowTimeouts.TcpIdleTimeoutSeconds",
                       f"{idle!r} is not valid", "AWS accepts 60 to 6000 seconds (default 350)")
    variables = doc.fields(pol.get("PolicyVariables") or {}, "FirewallPolicyV2.PolicyVariables", ("RuleVariables",))
    rv = doc.fields(variables.get("RuleVariables") or {}, "FirewallPolicyV2.PolicyVariables.RuleVariables",
                    ("HOME_NET",))
    home_net = None
    if "HOME_NET" in rv:
        home_net = _definition(doc, "IPSets", rv["HOME_NET"],
                               "FirewallPolicyV2.PolicyVariables.RuleVariables.HOME_NET")

    known: dict[str, Any] = dict(available or {})
    for i, entry in enumerate(doc.listed(data.get("RuleGroups"), "RuleGroups")):
        gname = _group_entry_name(entry)
        if not isinstance(gname, str) or not gname:
            raise doc.fail(f"RuleGroups[{i}]", "no RuleGroupName", "name each rule group in the list")
        known[gname] = (f"{source}: RuleGroups[{i}]", entry)

    firewall: list[FirewallGroup] = []
    entries = pol.get("FirewallRuleGroupEntries") or []
    if not isinstance(entries, list):
        raise doc.fail("FirewallPolicyV2.FirewallRuleGroupEntries", "expected a list", "list the firewall section's "
                       "rule groups")
    for i, entry in enumerate(entries):
        where = f"FirewallPolicyV2.FirewallRuleGroupEntries[{i}]"
        entry = doc.fields(entry, where, ("InlineRuleGroup", "ResourceArn", "Priority"))
        priority = entry.get("Priority")
        if not isinstance(priority, int) or not 1 <= priority <= 65535:
            raise doc.fail(f"{where}.Priority", f"{priority!r} is not a priority",
                           "give each entry a unique Priority from 1 to 65535 (lower runs first)")
        if any(g.priority == priority for g in firewall):
            raise doc.fail(f"{where}.Priority", f"priority {priority} is used twice",
                           "AWS: \"Each entry in the firewall section must have a unique priority\"")
        if ("InlineRuleGroup" in entry) == ("ResourceArn" in entry):
            raise doc.fail(where, "expected one of InlineRuleGroup and ResourceArn",
                           "AWS: \"Provide either InlineRuleGroup to embed a rule group or ResourceArn to reference "
                           "an existing rule group\"")
        if "InlineRuleGroup" in entry:
            firewall.append(parse_firewall_group(doc, entry["InlineRuleGroup"], f"{where}.InlineRuleGroup",
                                                 f"embedded-{priority}", priority, inline=True))
            continue
        gname, (gsource, gdata) = _referenced(doc, entry["ResourceArn"], where, search_dir, known)
        gdoc = Fields(gsource, NG_IGNORED)
        kind, body, capacity = _group_document(gdoc, gdata)
        if kind not in (None, "FIREWALL"):
            raise doc.fail(f"{where}.ResourceArn", f"rule group {gname} is a {kind} rule group",
                           "the firewall section takes firewall rule groups (Type FIREWALL)")
        group = parse_firewall_group(gdoc, body, "FirewallRuleGroup", gname, priority, inline=False)
        check_capacity(gdoc, "FirewallRuleGroup", gname, len(group.live_rules), capacity,
                       "one per rule; a disabled rule counts none")
        firewall.append(group)
    firewall.sort(key=lambda g: g.priority)

    ips: list[GroupRef] = []
    entries = pol.get("IpsRuleGroupEntries") or []
    if not isinstance(entries, list):
        raise doc.fail("FirewallPolicyV2.IpsRuleGroupEntries", "expected a list", "list the IPS section's rule groups")
    for i, entry in enumerate(entries):
        where = f"FirewallPolicyV2.IpsRuleGroupEntries[{i}]"
        entry = doc.fields(entry, where, ("InlineRuleGroup", "ResourceArn", "Override", "Priority"))
        if "Priority" in entry:
            raise doc.fail(f"{where}.Priority", "not valid here", "AWS: \"IPS section entries don't use a priority\"")
        override = doc.fields(entry.get("Override") or {}, f"{where}.Override", ("Action",)).get("Action")
        if override not in (None, "DROP_TO_ALERT"):
            raise doc.fail(f"{where}.Override.Action", f"{override!r} is not valid", "use DROP_TO_ALERT")
        if ("InlineRuleGroup" in entry) == ("ResourceArn" in entry):
            raise doc.fail(where, "expected one of InlineRuleGroup and ResourceArn", "embed or reference the group")
        if "InlineRuleGroup" in entry:
            inline = doc.fields(entry["InlineRuleGroup"], f"{where}.InlineRuleGroup",
                                ("RulesSource", "RuleVariables", "ReferenceSets"))
            src = doc.fields(inline.get("RulesSource") or {}, f"{where}.InlineRuleGroup.RulesSource", ("RulesString",))
            if "RulesString" not in src:
                raise doc.fail(f"{where}.InlineRuleGroup.RulesSource", "no RulesString",
                               "AWS: IPS rules are \"provided as a single Suricata-compatible rule string\"")
            ips_group = parse_rule_group({"InlineRuleGroup": inline}, f"{source}: {where}", f"embedded-ips-{i + 1}",
                                         "InlineRuleGroup")
        else:
            gname, (gsource, gdata) = _referenced(doc, entry["ResourceArn"], where, search_dir, known)
            kind, body, capacity = _group_document(Fields(gsource, NG_IGNORED), gdata)
            if kind not in (None, "IPS", "STATEFUL"):
                raise doc.fail(f"{where}.ResourceArn", f"rule group {gname} is a {kind} rule group",
                               "the IPS section takes IPS rule groups (Suricata rule strings)")
            part = "IpsRuleGroup" if isinstance(gdata, dict) and "IpsRuleGroup" in gdata else "RuleGroup"
            wrapped = {part: body, "RuleGroupName": gname}
            if capacity is not None:
                wrapped["RuleGroupResponse"] = {"Capacity": capacity}
            ips_group = parse_rule_group(wrapped, gsource, gname, part)
        if ips_group.rule_order not in (None, DEFAULT_ORDER):
            raise doc.fail(where, f"rule group {ips_group.name} sets RuleOrder {ips_group.rule_order}",
                           "AWS: \"The IPS engine evaluates rules by action order\"; remove StatefulRuleOptions")
        if any(r.group.name == ips_group.name for r in ips):
            raise doc.fail(where, f"rule group {ips_group.name} is referenced twice", "reference each rule group once")
        ips.append(GroupRef(ips_group, None, override))

    embedded = [r for g in firewall if g.inline for r in g.live_rules] + [r for ref in ips
                                                                     if ref.group.name.startswith("embedded-ips-")
                                                                     for r in ref.group.rules]
    seen: set[int] = set()
    for r in embedded:
        sid = _gid_sid(r.text)[1]
        if sid in seen:
            raise doc.fail("FirewallPolicyV2", f"sid {sid} is used by two embedded rules",
                           "AWS: every embedded rule \"must have a SID that is unique among all of that policy's "
                           "embedded rules\", firewall and IPS alike")
        seen.add(sid)
    fw_rules = sum(len(g.live_rules) for g in firewall)
    ips_rules = sum(len(r.group.rules) for r in ips)
    if fw_rules > MAX_FIREWALL_RULES or ips_rules > MAX_IPS_RULES:
        raise doc.fail("FirewallPolicyV2", f"{fw_rules} firewall rules and {ips_rules} IPS rules", "AWS allows "
                       f"{MAX_FIREWALL_RULES} firewall-engine rules and {MAX_IPS_RULES} IPS-engine rules per policy")
    return NextGenPolicy(str(name), source, tuple(firewall), tuple(ips), default, mode, stream, idle, home_net)


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------
def _monitor(text: str) -> str:
    """A firewall rule under PolicyMode MONITOR: a blocking action becomes an accept of the same reach that
    alerts (the decision is logged, nothing is blocked)."""
    action, rest = text.split(None, 1)
    parts = action.split(",")
    primary, _, scope = parts[0].partition(":")
    if primary not in BLOCKING:
        return text
    return f"accept:{scope}" + ",alert " + rest


def _explained(text: str) -> str:
    """A firewall rule that also alerts, quietly (EXPLAIN_METADATA), when it decides and AWS would log nothing:
    every rule but the packet-layer accept:hook / accept:packet rules, which decide every packet."""
    action, proto_hook, rest = text.split(None, 2)
    parts = action.split(",")
    primary, _, scope = parts[0].partition(":")
    proto = proto_hook.partition(":")[0]
    if "alert" in parts or (primary == "accept" and proto in PACKET_PROTOCOLS and scope in ("hook", "packet")):
        return text
    head, _, tail = rest.rpartition(")")
    return f"{action},alert {proto_hook} {head.rstrip()} {EXPLAIN_METADATA})" + tail


def effective_default(action: str, mode: str) -> str:
    """The default action that runs: under MONITOR, a blocking default only alerts."""
    return "ALERT" if mode == "MONITOR" and action in ("DROP", "REJECT") else action


# What the default action does at a hook: Suricata's actions. Blocked traffic is logged ("Traffic that the
# firewall default action blocks is logged"); ALERT logs "at every hook".
_DEFAULTS = {"DROP": ("drop:packet,alert", "drop:flow,alert"), "REJECT": ("reject:packet,alert", "reject:flow,alert"),
             "ACCEPT": ("accept:hook", "accept:hook"), "ALERT": ("accept:hook,alert", "accept:hook,alert")}


def default_policies(action: str) -> dict[str, list[str]]:
    """Suricata's default policies (firewall.policies) for the packet layer and the application layer."""
    packet, app = _DEFAULTS[action]
    return {"packet": packet.split(","), "app": app.split(",")}


def default_action_rules(configured: str, mode: str = "ENFORCE") -> list[str]:
    """The default action at every application-layer hook, as rules after every rule group's (see
    DEFAULT_ACTION_GID). Their message names the configured action (and the mode, when MONITOR keeps it from
    blocking). ACCEPT too: under Suricata 8.0.7's default app policy of accept, the IPS engine's
    application-layer rules never run."""
    action = effective_default(configured, mode)
    name = configured + (" (PolicyMode MONITOR)" if action != configured else "")
    hooks = [f"{proto}:{hook}" for proto, names in APP_HOOKS.items() for hook in names]
    return [f'{_DEFAULTS[action][1]} {hook} any any -> any any (msg:"FirewallDefaultAction {name}"; '
            f"gid:{DEFAULT_ACTION_GID}; sid:{i}; rev:1;)" for i, hook in enumerate(hooks, 1)]


def _prior_hooks(text: str, sids: list[int]) -> list[str]:
    """For a rule with AcceptPriorHooks (`proto:<hook`): the rule without `<`, after one `accept:hook` rule per
    earlier hook of its protocol and direction, with the same addresses and ports (what `<` means). Written out
    because the default action is written out too (default_action_rules), and for TLS because Suricata 8.0.7's
    `tls:<client_hello_done` lets through a Client Hello that no rule accepted."""
    action, proto_hook, rest = text.split(None, 2)
    proto, _, hook = proto_hook.partition(":<")
    names = APP_HOOKS[proto]
    side = names[: names.index("request_complete") + 1] if hook in names[: names.index("request_complete") + 1] \
        else names[names.index("request_complete") + 1:]
    header = rest.rpartition("(")[0].strip()
    sid = _gid_sid(text)[1]
    out = []
    for prior in side[: side.index(hook)]:
        sids[0] += 1
        out.append(f'accept:hook,alert {proto}:{prior} {header} (msg:"AcceptPriorHooks of rule {sid}"; '
                   f"gid:{PRIOR_HOOK_GID}; sid:{sids[0]}; {EXPLAIN_METADATA})")
    return [*out, f"{action} {proto}:{hook} {rest}"]


def render_nextgen(policy: NextGenPolicy, vpc_cidr: str) -> Rendered:
    """Suricata 8's firewall rules (firewall.rules), threat-detection rules (lab.rules), variables with the
    firewall's default policies (policy.yaml) and engine options for a Next Generation policy."""
    stream = "CONTINUE" if policy.mode == "MONITOR" else policy.stream_exception_policy
    ips = policy.ips
    if policy.mode == "MONITOR":  # IPS drops are logged, not enforced
        ips = tuple(replace(r, override="DROP_TO_ALERT") for r in ips)
    classic = Policy(policy.name, policy.source, ips, DEFAULT_ORDER, (), stream, policy.tcp_idle_timeout,
                     policy.home_net)
    base = render(classic, vpc_cidr)
    variables = yaml.safe_load(base.variables)
    address_groups, port_groups = variables["vars"]["address-groups"], variables["vars"]["port-groups"]
    used = {_gid_sid(line) for line in base.rules.splitlines() if line and not line.startswith("#")}
    default = effective_default(policy.default_action, policy.mode)
    prior_sids = [0]
    entries: list[tuple[str, str | None]] = [(
        f"# Next Generation policy {policy.name}: firewall engine, FirewallDefaultAction {policy.default_action}, "
        f"PolicyMode {policy.mode}; HOME_NET {base.home_net}", None)]
    for k, g in enumerate(policy.firewall, 1):
        renames: dict[str, str] = {}
        for var, blocks in g.ip_sets.items():
            renames[var] = f"FW{k}_{var}"
            address_groups[renames[var]] = "[" + ",".join(blocks) + "]"
        for var, ports in g.port_sets.items():
            renames[var] = f"FW{k}_{var}"
            port_groups[renames[var]] = "[" + ",".join(ports) + "]"
        keys = [_gid_sid(r.text) for r in g.live_rules]
        gid = 200 + k if any(key in used for key in keys) else None
        entries.append((f"# rule group {g.name} ({g.kind}, priority {g.priority}"
                        + (", embedded" if g.inline else "") + (f", gid {gid}: its sids repeat another group's"
                                                                 if gid else "") + ")", None))
        gids_sids = iter(keys)
        for r in g.rules:
            if r.text.startswith("#"):
                entries.append((r.text, None))
                continue
            key = next(gids_sids)
            text = _rename_variables(r.text, renames) if renames else r.text
            for name in re.findall(r"\$([A-Za-z][A-Za-z0-9_]*)", text):
                if name not in address_groups and name not in port_groups:
                    raise ConfigError(f"{g.source}: rule group {g.name}, {r.where}: ${name} is not defined",
                                      "define it in the rule group's RuleVariables (IPSets or PortSets); HOME_NET "
                                      "and EXTERNAL_NET are predefined")
            if policy.mode == "MONITOR":
                text = _monitor(text)
            if gid and not re.search(r"(?<![a-z_.])gid\s*:", text):
                text = text.rstrip()[:-1].rstrip() + f" gid:{gid};)"
            used.add((gid or key[0], key[1]))
            origin = f"firewall rule group {g.name}, {r.where} ({g.source})"
            lines = _prior_hooks(text, prior_sids) if ":<" in text.split()[1] else [text]
            for line in lines[:-1]:
                entries.append((line, f"{INTERNAL_PREFIX}{origin}: accepting the prior hooks"))
            entries.append((_explained(lines[-1]), origin))
    catch_all = default_action_rules(policy.default_action, policy.mode)
    if catch_all:
        entries.append((f"# FirewallDefaultAction {default} at every application-layer hook no rule decided", None))
        entries += [(line, DEFAULT_ACTION_ORIGIN) for line in catch_all]
    variables["firewall"] = {"enabled": True, "rule-path": "/etc/nfwlab/rules", "rule-files": ["firewall.rules"],
                             "policies": {table: {"default-policy": actions} for table, actions in
                                          default_policies(default).items()}}
    text = ("%YAML 1.1\n---\n# The Next Generation policy's rule variables and the firewall engine's default "
            "policies (written by nfwlab; do not edit).\n"
            + yaml.safe_dump({k: v for k, v in variables.items()}, sort_keys=False, width=1000))
    # Suricata 8 removed the pattern matcher suricata.yaml names for Suricata 7 (ac-bs): its own choice.
    engine = {"set": [*base.engine["set"], "mpm-algo=auto"]}
    return replace(base, variables=text, engine=engine, firewall="\n".join(t for t, _ in entries) + "\n",
                   firewall_origins=tuple(o for _, o in entries), kind=KIND,
                   notes=base.notes + (("PolicyMode MONITOR: nothing is blocked; what would be is logged",)
                                       if policy.mode == "MONITOR" else ()))


# --------------------------------------------------------------------------
# Either kind of policy
# --------------------------------------------------------------------------
AnyPolicy = Policy | NextGenPolicy


def load_any_policy(path: str | Path, extra: Sequence[str | Path] = ()) -> AnyPolicy:
    """A Classic or a Next Generation policy, whichever the file holds (`extra`: files of the rule groups it
    references). A shipped policy's name finds its file from any directory."""
    path = policy_path(path)
    data = read_document(path, "policy or rule group file")
    if not is_nextgen(data):
        return load_policy(path, extra)
    available: dict[str, Any] = {}
    for p in extra:
        gdata = read_document(p, "rule group file")
        name = _group_entry_name(gdata)
        name = name if isinstance(name, str) and name else Path(p).stem
        available[name] = (str(p), gdata)
    return parse_nextgen(data, str(path), available, path.parent)


def parse_any_policy(data: Any, source: str) -> AnyPolicy:
    """A Classic or a Next Generation policy from a document in the lab's one-file form (its rule groups under
    RuleGroups), whichever it holds."""
    return parse_nextgen(data, source, {}, None) if is_nextgen(data) else parse_policy(data, source)


def render_any(policy: AnyPolicy, vpc_cidr: str) -> Rendered:
    return render_nextgen(policy, vpc_cidr) if isinstance(policy, NextGenPolicy) else render(policy, vpc_cidr)
