"""Rules: AWS Network Firewall domain lists turned into Suricata rules.

The text generated is the text AWS generates for a stateful domain-list rule
group (developer guide, "Examples of stateful rules"): same actions, keywords
and order, same messages, sids 1..n inside the group, one rule per target and
type, then the allow list's catch-all.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

TARGET_TYPES = ("TLS_SNI", "HTTP_HOST")
RULE_TYPES = ("DENYLIST", "ALLOWLIST")


@dataclass(frozen=True)
class DomainList:
    """A stateful domain-list rule group (RulesSource.RulesSourceList)."""

    name: str
    targets: tuple[str, ...]
    target_types: tuple[str, ...]
    generated_rules_type: str

    def __post_init__(self):
        where = f"rule group {self.name}"
        if not self.targets:
            raise ConfigError(f"{where}: Targets is empty", "list at least one domain")
        for t in self.targets:
            body = t.removeprefix(".")
            if not body or any(c in t for c in ' ";|\\') or ".." in t or t.endswith("."):
                raise ConfigError(f"{where}: target {t!r} is not a domain name",
                                  "write a domain, with a leading dot for the domain and all its subdomains")
        if not self.target_types or any(x not in TARGET_TYPES for x in self.target_types):
            raise ConfigError(f"{where}: TargetTypes {list(self.target_types)} is not valid",
                              f"use one or both of {', '.join(TARGET_TYPES)}")
        if self.generated_rules_type not in RULE_TYPES:
            raise ConfigError(f"{where}: GeneratedRulesType {self.generated_rules_type!r} is not supported",
                              f"use one of {', '.join(RULE_TYPES)}")


def _match(target: str, kind: str) -> str:
    """Content match on the SNI / Host buffer: exact name, or leading-dot wildcard."""
    nocase = " nocase;" if kind == "TLS_SNI" else ""
    if target.startswith("."):
        return f'dotprefix; content:"{target}";{nocase} endswith;'
    return f'content:"{target}"; startswith;{nocase} endswith;'


def domain_list_rules(group: DomainList) -> str:
    """Suricata rules for one domain-list rule group, as AWS generates them."""
    deny = group.generated_rules_type == "DENYLIST"
    action, verb = ("drop", "denylisted") if deny else ("pass", "allowlisted")
    lines: list[str] = []
    sid = 0
    tail = "priority:1; flow:to_server, established;"
    for kind in TARGET_TYPES:  # AWS's order: TLS rules first, then HTTP
        if kind not in group.target_types:
            continue
        for target in group.targets:
            sid += 1
            if kind == "TLS_SNI":
                lines.append(f'{action} tls $HOME_NET any -> $EXTERNAL_NET any (ssl_state:client_hello; tls.sni; '
                             f'{_match(target, kind)} msg:"matching TLS {verb} FQDNs"; {tail} sid:{sid}; rev:1;)')
            else:
                lines.append(f'{action} http $HOME_NET any -> $EXTERNAL_NET any (http.host; '
                             f'{_match(target, kind)} msg:"matching HTTP {verb} FQDNs"; {tail} sid:{sid}; rev:1;)')
    if not deny:
        if "TLS_SNI" in group.target_types:
            sid += 1
            lines.append(f'drop tls $HOME_NET any -> $EXTERNAL_NET any (msg:"not matching any TLS allowlisted FQDNs"; '
                         f'priority:1; ssl_state:client_hello; flow:to_server, established; sid:{sid}; rev:1;)')
        if "HTTP_HOST" in group.target_types:
            sid += 1
            lines.append(f'drop http $HOME_NET any -> $EXTERNAL_NET any (http.header_names; content:"|0d 0a|"; '
                         f'startswith; msg:"not matching any HTTP allowlisted FQDNs"; {tail} sid:{sid}; rev:1;)')
    return "\n".join(lines) + "\n"


def parse_rule_group(data: Any, source: str) -> DomainList:
    """Reads `aws network-firewall describe-rule-group` output (or its RuleGroup part)."""
    def fail(where: str, what: str, fix: str) -> ConfigError:
        return ConfigError(f"{source}: {where}: {what}", fix)

    if not isinstance(data, dict):
        raise fail("(top)", "expected a JSON object", "paste the output of describe-rule-group")
    response = data.get("RuleGroupResponse", {})
    name = response.get("RuleGroupName") or Path(source).stem
    group = data.get("RuleGroup", data)
    try:
        src = group["RulesSource"]
    except (KeyError, TypeError):
        raise fail("RuleGroup.RulesSource", "missing", "a rule group needs a RulesSource") from None
    if "RulesSourceList" not in src:
        raise fail("RuleGroup.RulesSource", f"only RulesSourceList (domain lists) is supported here, got {sorted(src)}",
                   "use a domain-list rule group")
    lst = src["RulesSourceList"]
    unknown = set(lst) - {"Targets", "TargetTypes", "GeneratedRulesType"}
    if unknown:
        raise fail(f"RuleGroup.RulesSource.RulesSourceList.{sorted(unknown)[0]}", "unknown field",
                   "known fields: Targets, TargetTypes, GeneratedRulesType")
    try:
        return DomainList(name, tuple(lst.get("Targets") or ()), tuple(lst.get("TargetTypes") or ()),
                          lst.get("GeneratedRulesType", ""))
    except ConfigError as e:
        raise ConfigError(f"{source}: {e.message}", e.hint) from None


def load_rule_group(path: str | Path) -> DomainList:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file", "check the path") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON: {e}", "fix the JSON at the line shown") from None
    return parse_rule_group(data, str(path))


def deny_list(domains: list[str] | tuple[str, ...], name: str = "deny-domains") -> DomainList:
    return DomainList(name, tuple(domains), TARGET_TYPES, "DENYLIST")
