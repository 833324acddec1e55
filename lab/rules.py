"""Rules: the Suricata text AWS Network Firewall generates from a stateful rule group's source.

- Domain lists (RulesSourceList): same actions, keywords and order as AWS's
  documented examples ("Examples of stateful rules"), same messages, sids 1..n
  inside the group, one rule per target and type, then the allow list's
  catch-all rules.
- StatefulRules ({Action, Header, RuleOptions}): one Suricata rule each,
  `action protocol source port direction destination port (keyword:settings; ...)`.

This module only generates text; lab/policy.py reads the AWS documents and
puts the groups together into the firewall's rules.
"""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from .errors import ConfigError

TARGET_TYPES = ("TLS_SNI", "HTTP_HOST")
DATASET_THRESHOLD = 200  # exact names in a domain list above which the lab matches them with a dataset
# GeneratedRulesType -> (Suricata action, the word in the rule's msg).
# DENYLIST and ALLOWLIST are AWS's documented text; ALERTLIST and REJECTLIST
# follow the same pattern with their own action (AWS does not publish their text).
RULE_TYPES = {"DENYLIST": ("drop", "denylisted"), "ALLOWLIST": ("pass", "allowlisted"),
              "ALERTLIST": ("alert", "alertlisted"), "REJECTLIST": ("reject", "rejectlisted")}
DOMAIN_RE = re.compile(r"^\.?(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")

STATEFUL_ACTIONS = ("PASS", "DROP", "ALERT", "REJECT")
PROTOCOLS = ("IP", "TCP", "UDP", "ICMP", "HTTP", "FTP", "TLS", "SMB", "DNS", "DCERPC", "SSH", "SMTP", "IMAP",
             "MSN", "KRB5", "IKEV2", "TFTP", "NTP", "DHCP", "HTTP2", "QUIC")
DIRECTIONS = {"FORWARD": "->", "ANY": "<>"}


@dataclass(frozen=True)
class DomainList:
    """A stateful domain-list rule group's source (RulesSource.RulesSourceList)."""

    name: str
    targets: tuple[str, ...]
    target_types: tuple[str, ...]
    generated_rules_type: str

    def __post_init__(self):
        where = f"rule group {self.name}"
        if not self.targets:
            raise ConfigError(f"{where}: Targets is empty", "list at least one domain")
        for t in self.targets:
            if not isinstance(t, str) or not DOMAIN_RE.match(t):
                raise ConfigError(f"{where}: target {t!r} is not a domain name",
                                  "write a domain, with a leading dot for the domain and all its subdomains")
        if not self.target_types or any(x not in TARGET_TYPES for x in self.target_types):
            raise ConfigError(f"{where}: TargetTypes {list(self.target_types)} is not valid",
                              f"use one or both of {', '.join(TARGET_TYPES)}")
        if not isinstance(self.generated_rules_type, str) or self.generated_rules_type not in RULE_TYPES:
            raise ConfigError(f"{where}: GeneratedRulesType {self.generated_rules_type!r} is not supported",
                              f"use one of {', '.join(RULE_TYPES)}")


def _match(target: str, kind: str) -> str:
    """Content match on the SNI / Host buffer: exact name, or leading-dot wildcard."""
    nocase = " nocase;" if kind == "TLS_SNI" else ""
    if target.startswith("."):
        return f'dotprefix; content:"{target}";{nocase} endswith;'
    return f'content:"{target}"; startswith;{nocase} endswith;'


def _dataset_file(names: list[str]) -> str:
    """A Suricata string dataset: one base64-encoded name per line."""
    return "".join(base64.b64encode(n.encode()).decode() + "\n" for n in names)


def uses_datasets(group: DomainList) -> bool:
    """Whether the lab matches the list's exact names through a dataset (more than DATASET_THRESHOLD)."""
    return sum(1 for t in group.targets if not t.startswith(".")) > DATASET_THRESHOLD


def domain_list_lines(group: DomainList, prefix: str = "nfw", datasets: dict[str, str] | None = None) -> list[str]:
    """Suricata rules for one domain-list rule group, as AWS generates them (one per line).

    With `datasets` (a dict to fill: file name -> content), a list of more than DATASET_THRESHOLD exact
    names matches them with one dataset rule per type instead of one rule per name, with the same action
    and message (AWS's text does not scale: 10,000 names are 20,000 rules). Leading-dot names keep
    their own rules."""
    action, verb = RULE_TYPES[group.generated_rules_type]
    lines: list[str] = []
    sid = 0
    tail = "priority:1; flow:to_server, established;"
    exact = [t.lower() for t in group.targets if not t.startswith(".")]
    use_dataset = datasets is not None and uses_datasets(group)
    for kind in TARGET_TYPES:  # AWS's order: TLS rules first, then HTTP
        if kind not in group.target_types:
            continue
        if use_dataset:
            content = _dataset_file(exact)
            name = f"{prefix}-{kind.split('_')[0].lower()}-{hashlib.sha256(content.encode()).hexdigest()[:10]}"
            assert datasets is not None  # use_dataset implies it
            datasets[f"{name}.lst"] = content
            sid += 1
            if kind == "TLS_SNI":
                lines.append(f'{action} tls $HOME_NET any -> $EXTERNAL_NET any (ssl_state:client_hello; tls.sni; '
                             f'to_lowercase; dataset:isset,{name},type string,load datasets/{name}.lst; '
                             f'msg:"matching TLS {verb} FQDNs"; {tail} sid:{sid}; rev:1;)')
            else:
                lines.append(f'{action} http $HOME_NET any -> $EXTERNAL_NET any (http.host; '
                             f'dataset:isset,{name},type string,load datasets/{name}.lst; '
                             f'msg:"matching HTTP {verb} FQDNs"; {tail} sid:{sid}; rev:1;)')
        for target in group.targets:
            if use_dataset and not target.startswith("."):
                continue
            sid += 1
            if kind == "TLS_SNI":
                lines.append(f'{action} tls $HOME_NET any -> $EXTERNAL_NET any (ssl_state:client_hello; tls.sni; '
                             f'{_match(target, kind)} msg:"matching TLS {verb} FQDNs"; {tail} sid:{sid}; rev:1;)')
            else:
                lines.append(f'{action} http $HOME_NET any -> $EXTERNAL_NET any (http.host; '
                             f'{_match(target, kind)} msg:"matching HTTP {verb} FQDNs"; {tail} sid:{sid}; rev:1;)')
    if group.generated_rules_type == "ALLOWLIST":
        if "TLS_SNI" in group.target_types:
            sid += 1
            lines.append(f'drop tls $HOME_NET any -> $EXTERNAL_NET any (msg:"not matching any TLS allowlisted FQDNs"; '
                         f'priority:1; ssl_state:client_hello; flow:to_server, established; sid:{sid}; rev:1;)')
        if "HTTP_HOST" in group.target_types:
            sid += 1
            lines.append(f'drop http $HOME_NET any -> $EXTERNAL_NET any (http.header_names; content:"|0d 0a|"; '
                         f'startswith; msg:"not matching any HTTP allowlisted FQDNs"; {tail} sid:{sid}; rev:1;)')
    return lines


def domain_list_rules(group: DomainList) -> str:
    """The rule group's Suricata text, as AWS shows it."""
    return "\n".join(domain_list_lines(group)) + "\n"


def deny_list(domains: list[str] | tuple[str, ...], name: str = "deny-domains") -> DomainList:
    return DomainList(name, tuple(domains), TARGET_TYPES, "DENYLIST")


def _header_field(header: dict, key: str, where: str) -> str:
    value = header.get(key)
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "();\n"):
        raise ConfigError(f"{where}.Header.{key}: {value!r} is not valid",
                          "write an address, CIDR, [list], $VARIABLE or ANY (ports: a port, range or ANY)")
    return "any" if value.upper() == "ANY" else value.strip()


def rule_options(options: object, where: str) -> list[str]:
    """RuleOptions ([{Keyword, Settings}]) as Suricata rule options: `keyword:a,b;` or `keyword;`."""
    options = options or []
    if not isinstance(options, list):
        raise ConfigError(f"{where}.RuleOptions: expected a list", 'write [{"Keyword": "sid", "Settings": ["1"]}]')
    parts = []
    for i, opt in enumerate(options):
        keyword = opt.get("Keyword") if isinstance(opt, dict) else None
        if not isinstance(keyword, str) or not re.match(r"^[a-z][a-z0-9_.-]*$", keyword):
            raise ConfigError(f"{where}.RuleOptions[{i}].Keyword: {keyword!r} is not a Suricata keyword",
                              "write a keyword such as msg, sid, flow, content")
        settings = opt.get("Settings") or []
        if not isinstance(settings, list) or not all(isinstance(s, str) for s in settings):
            raise ConfigError(f"{where}.RuleOptions[{i}].Settings: expected a list of strings",
                              'write ["\\"text\\""] for msg, ["1"] for sid')
        parts.append(f"{keyword}:{','.join(settings)};" if settings else f"{keyword};")
    return parts


def stateful_rule_line(rule: dict, where: str) -> str:
    """One StatefulRules entry as a Suricata rule, the way AWS renders it."""
    if not isinstance(rule, dict):
        raise ConfigError(f"{where}: expected an object with Action, Header, RuleOptions", "see the README's example")
    unknown = set(rule) - {"Action", "Header", "RuleOptions"}
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown field", "known fields: Action, Header, RuleOptions")
    action = rule.get("Action")
    if action not in STATEFUL_ACTIONS:
        raise ConfigError(f"{where}.Action: {action!r} is not valid", f"use one of {', '.join(STATEFUL_ACTIONS)}")
    header = rule.get("Header")
    if not isinstance(header, dict):
        raise ConfigError(f"{where}.Header: missing", "give Protocol, Source, SourcePort, Direction, Destination, "
                          "DestinationPort")
    known = {"Protocol", "Source", "SourcePort", "Direction", "Destination", "DestinationPort"}
    if set(header) - known:
        raise ConfigError(f"{where}.Header.{sorted(set(header) - known)[0]}: unknown field",
                          f"known fields: {', '.join(sorted(known))}")
    protocol = header.get("Protocol")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{where}.Header.Protocol: {protocol!r} is not valid", f"use one of {', '.join(PROTOCOLS)}")
    direction = header.get("Direction", "FORWARD")
    if not isinstance(direction, str) or direction not in DIRECTIONS:
        raise ConfigError(f"{where}.Header.Direction: {direction!r} is not valid", "use FORWARD or ANY")
    parts = rule_options(rule.get("RuleOptions"), where)
    if not any(p.startswith("sid:") for p in parts):
        raise ConfigError(f"{where}: no sid", 'every stateful rule needs {"Keyword": "sid", "Settings": ["<n>"]}')
    src = _header_field(header, "Source", where)
    sport = _header_field(header, "SourcePort", where)
    dst = _header_field(header, "Destination", where)
    dport = _header_field(header, "DestinationPort", where)
    header = f"{action.lower()} {protocol.lower()} {src} {sport} {DIRECTIONS[direction]} {dst} {dport}"
    return f"{header} ({' '.join(parts)})"
