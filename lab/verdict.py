"""Verdict: what a firewall policy does to a traced flow, read from its rules (no packet is sent).

The flow is the request `nfwlab trace --live` would make (a TLS Client Hello with the name as SNI on port 443,
an HTTP GET with it as Host otherwise), as the firewall sees it (after the NAT gateway, if it comes first).
Its packets are judged in the order they cross: the SYN, the SYN-ACK, the request, the answer. A Classic
policy's stateful rules decide as AWS documents: in DEFAULT_ACTION_ORDER a matching pass rule before any drop,
then reject, and what no rule drops passes; in STRICT_ORDER the first matching pass, drop or reject rule in the
order written, then the StatefulDefaultActions. A rule whose match depends on more than addresses, ports, flow
state, the SNI or the HTTP Host (a pcre, raw content, a flowbit, a Next Generation hook) is not guessed: the
verdict then says the packet is needed (`trace --live`).
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from functools import partial
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import yaml

from .explain import address_matches, port_matches
from .order import DECIDING, PROBE_GID, parse_rule
from .policy import STRICT_ORDER, SYSTEM_GID

EPHEMERAL = (32768, 46000, 60999)  # Linux's ip_local_port_range: the client's port is one of these
# What curl sends as an HTTP request's header names (http.header_names starts and ends with CRLF).
CURL_HEADER_NAMES = "\r\nHost\r\nUser-Agent\r\nAccept\r\n\r\n"
# Options that say what a rule is or logs, not what it matches.
_OWN = {"msg", "sid", "gid", "rev", "priority", "classtype", "reference", "metadata", "noalert", "target", "tag",
        "threshold"}
_CONTENT_MODIFIERS = {"startswith", "endswith", "nocase", "fast_pattern"}
_TRANSFORMS = {"dotprefix", "to_lowercase"}
_GUARD = re.compile(r"\s*flowbits:isnotset,nfw\.run\d+;")  # the lab's strict-order guards (lab/order.py)


@dataclass(frozen=True)
class PolicyRules:
    """A policy as the firewall runs it: its Suricata rules, variables and datasets, and where it came from."""

    name: str
    origin: str  # "the running lab's", "--policy FILE", "the default policies/deny-domains.json: the lab is down"
    kind: str  # classic | next-generation
    rule_order: str
    rules: str  # lab.rules
    variables: dict[str, str]  # address and port groups, by name (HOME_NET, EXTERNAL_NET, NFW1_WEB_PORTS, ...)
    datasets: dict[str, str] = field(default_factory=dict)  # datasets/<file> -> content
    stateless: dict[str, Any] = field(default_factory=dict)  # StatelessPolicy.summary()

    @property
    def home_net(self) -> str:
        return self.variables.get("HOME_NET", "").strip("[]")


def rendered_rules(policy: Any, rendered: Any, origin: str) -> PolicyRules:
    """A policy file's rules as the firewall would run them (`render_any`'s output)."""
    stateless = policy.stateless.summary() if hasattr(policy, "stateless") else {}
    return PolicyRules(policy.name, origin, policy.kind, getattr(policy, "rule_order", "DEFAULT_ACTION_ORDER"),
                       rendered.rules, variables_of(rendered.variables), dict(rendered.datasets), stateless)


def variables_of(policy_yaml: str) -> dict[str, str]:
    """The address and port groups of a policy.yaml (what lab/policy.py writes), in one map."""
    try:
        data = (yaml.safe_load(policy_yaml) or {}).get("vars") or {}
    except (yaml.YAMLError, AttributeError):
        return {}
    return {k: str(v) for part in ("address-groups", "port-groups") for k, v in (data.get(part) or {}).items()}


def running_rules(rules_dir: Path, saved_policy: dict[str, Any], origin: str) -> PolicyRules:
    """The running lab's policy, from the files its firewall engine reads."""
    def read(name: str) -> str:
        path = rules_dir / name
        return path.read_text() if path.exists() else ""
    datasets = {p.name: p.read_text() for p in sorted((rules_dir / "datasets").glob("*.lst"))}
    return PolicyRules(str(saved_policy.get("name", "?")), origin, str(saved_policy.get("kind", "classic")),
                       str(saved_policy.get("rule_order") or "DEFAULT_ACTION_ORDER"), read("lab.rules"),
                       variables_of(read("policy.yaml")), datasets, dict(saved_policy.get("stateless") or {}))


@dataclass(frozen=True)
class Packet:
    """One packet of the traced flow, as the firewall's rules see it."""

    stage: str  # "the SYN", "the SYN-ACK", "the request (...)", "the answer"
    to_server: bool
    established: bool
    client: str
    server: str
    port: int
    app: str | None  # tls | http once the application protocol is known
    buffers: dict[str, str] = field(default_factory=dict)  # sticky buffer -> its value (the request's)


@dataclass(frozen=True)
class Verdict:
    """The policy's verdict on a flow, or why it cannot be told without the packet."""

    policy: str
    origin: str
    request: str  # "TLS Client Hello, SNI blocked.example"
    action: str | None  # pass | drop | reject; None: not decided from the rules
    by: str = ""  # "rule group deny-domains, sid 1", "no rule: default action aws:drop_established"
    sid: int | None = None
    gid: int | None = None
    rule: str = ""
    rule_group: str = ""
    stage: str = ""  # the packet it is decided at
    alerts: tuple[tuple[int, int, str], ...] = ()  # (gid, sid, msg) the firewall alerts with for this flow
    needs_packet: str = ""  # why the rules alone do not decide

    def lines(self) -> list[str]:
        head = f"policy {self.policy} ({self.origin})"
        if self.action is None:
            return [f"{head}: {self.needs_packet}"]
        by = f": {self.by}" if self.by.startswith("no rule") else f", by {self.by}" if self.by else ""
        out = [f"{head}: {self.action.upper()}" + (f" at {self.stage}" if self.stage else "") + by]
        if self.rule:
            out.append(f"  rule: {self.rule}")
        out += [f"  alert: gid {g}, sid {s}" + (f' "{m}"' if m else "") for g, s, m in self.alerts]
        if not self.alerts:
            out.append("  alert: none (nothing logged in the ALERT log)")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "origin": self.origin, "request": self.request, "action": self.action,
                "decided": self.action is not None, "by": self.by, "sid": self.sid, "gid": self.gid,
                "rule": self.rule or None, "rule_group": self.rule_group or None, "at": self.stage or None,
                "alerts": [{"gid": g, "sid": s, "signature": m} for g, s, m in self.alerts],
                "needs_packet": self.needs_packet or None}


@dataclass(frozen=True)
class _Rule:
    text: str
    action: str
    gid: int
    sid: int
    msg: str
    group: str
    parsed: Any


def _rules(text: str) -> list[_Rule]:
    """The policy's own rules in the order written (not the lab's strict-order probes), with their group."""
    out, group = [], ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("# rule group "):
            group = line.removeprefix("# rule group ").split(" (", 1)[0]
        elif line.startswith("# stateful default actions"):
            group = ""
        if not line or line.startswith("#"):
            continue
        line = _GUARD.sub("", line)
        try:
            parsed = parse_rule(line)
        except ValueError:
            continue
        gid = int(parsed.option("gid") or 1)
        if gid == PROBE_GID:
            continue
        out.append(_Rule(line, parsed.action, gid, int(parsed.option("sid") or 0),
                         (parsed.option("msg") or "").strip('"'), group, parsed))
    return out


def _unquote(value: str) -> tuple[bool, str]:
    """A content's (negated, bytes as text): quotes, escapes and |hex| undone."""
    value = value.strip()
    negated = value.startswith("!")
    value = value.lstrip("!").strip()
    if value.startswith('"') and value.endswith('"'):
        value = value[1:-1]
    value = re.sub(r"\\(.)", r"\1", value)
    return negated, re.sub(r"\|([0-9A-Fa-f ]+)\|", lambda m: bytes.fromhex(m.group(1)).decode("latin-1"), value)


def _dataset(spec: str, datasets: dict[str, str]) -> tuple[str, set[str]] | None:
    """`isset,name,type string,load datasets/x.lst`: (the operation, its names); None if not judged here."""
    parts = [p.strip() for p in spec.split(",")]
    load = next((p.split(None, 1)[1] for p in parts if p.startswith("load ")), "")
    content = datasets.get(Path(load).name) if load else None
    if parts[0] not in ("isset", "isnotset") or "type string" not in parts or content is None:
        return None
    return parts[0], {base64.b64decode(x).decode() for x in content.split()}


def _judge(rule: _Rule, pkt: Packet, variables: dict[str, str], datasets: dict[str, str]) -> bool | None:
    """Whether `rule` matches `pkt`: True, False, or None when that takes more than the rules can tell."""
    p = rule.parsed
    proto = p.protocol
    if ":" in proto:
        return None  # a Next Generation hook
    if proto in ("tls",) or proto in ("http", "http1"):
        if pkt.app != ("tls" if proto == "tls" else "http"):
            return False
    elif proto not in ("ip", "ipv4", "tcp", "tcp-pkt", "tcp-stream", "pkthdr"):
        return False  # udp, icmp, dns, ssh...: not this TCP flow
    src, dst = (pkt.client, pkt.server) if pkt.to_server else (pkt.server, pkt.client)

    def header(s: str, sp: str, d: str, dp: str) -> bool | None:
        if not (address_matches(s, src, variables) and address_matches(d, dst, variables)):
            return False
        client_spec, server_spec = (sp, dp) if pkt.to_server else (dp, sp)
        if not port_matches(server_spec, pkt.port, variables):
            return False
        seen = {port_matches(client_spec, e, variables) for e in EPHEMERAL}
        return None if len(seen) > 1 else seen.pop()
    forward = header(p.source, p.source_port, p.destination, p.destination_port)
    if p.direction == "<>" and forward is False:
        forward = header(p.destination, p.destination_port, p.source, p.source_port)
    if forward is False:
        return False
    unknown = forward is None
    buffer: str | None = None
    transforms: list[str] = []
    content: tuple[bool, str] | None = None
    modifiers: set[str] = set()
    checks: list[bool | None] = []

    def close() -> None:
        nonlocal content, modifiers
        if content is not None:
            checks.append(_content(buffer, transforms, content, modifiers, pkt))
        content, modifiers = None, set()
    for key, value in p.options:
        if key in _OWN:
            continue
        if key == "content":
            close()
            content = _unquote(value or "")
        elif key in _CONTENT_MODIFIERS:
            modifiers.add(key)
        elif key in _TRANSFORMS:
            transforms.append(key)
        elif key in ("tls.sni", "tls_sni", "http.host", "http.header_names") and value is None:
            close()
            buffer, transforms = key.replace("tls_sni", "tls.sni"), []
        elif key == "dataset":
            close()
            spec = _dataset(value or "", datasets)
            have = _buffer(buffer, transforms, pkt)
            checks.append(None if spec is None else False if have is None
                          else (have in spec[1]) == (spec[0] == "isset"))
        elif key == "flow":
            checks.append(_flow(value or "", pkt))
        elif key == "ssl_state":
            checks.append(pkt.app == "tls" and pkt.to_server and pkt.established
                          if (value or "").strip() == "client_hello" else None)
        elif key == "app-layer-protocol":
            checks.append(pkt.app == (value or "").strip() if pkt.app else False)
        elif key == "flowbits" and (value or "").split(",")[0].strip() in ("set", "unset", "toggle", "noalert"):
            continue  # what the rule changes when it fires, not what it matches
        else:
            checks.append(None)  # pcre, raw content, byte tests, flowbits read, thresholds...: the packet's business
    close()
    if any(c is False for c in checks):
        return False
    return None if unknown or any(c is None for c in checks) else True


def _buffer(buffer: str | None, transforms: list[str], pkt: Packet) -> str | None:
    if buffer is None:
        return None
    value = pkt.buffers.get(buffer) if pkt.to_server else None
    if value is None:
        return None
    for t in transforms:
        value = "." + value if t == "dotprefix" else value.lower()
    return value


def _content(buffer: str | None, transforms: list[str], content: tuple[bool, str], modifiers: set[str],
             pkt: Packet) -> bool | None:
    if buffer is None:
        return None  # the raw payload: not judged here
    have = _buffer(buffer, transforms, pkt)
    if have is None:
        return False  # the packet has no such buffer (not the request, or no SNI)
    negated, want = content
    if "nocase" in modifiers:
        have, want = have.lower(), want.lower()
    if {"startswith", "endswith"} <= modifiers:
        found = have == want
    elif "startswith" in modifiers:
        found = have.startswith(want)
    elif "endswith" in modifiers:
        found = have.endswith(want)
    else:
        found = want in have
    return found != negated


def _flow(value: str, pkt: Packet) -> bool | None:
    result: bool | None = True
    for word in (w.strip() for w in value.split(",")):
        if word in ("to_server", "from_client"):
            ok: bool | None = pkt.to_server
        elif word in ("to_client", "from_server"):
            ok = not pkt.to_server
        elif word == "established":
            ok = pkt.established
        elif word == "not_established":
            ok = not pkt.established
        elif word == "stateless":
            ok = True
        else:
            ok = None
        if ok is False:
            return False
        if ok is None:
            result = None
    return result


def packets(client: str, server: str, port: int, name: str | None) -> tuple[str, list[Packet]]:
    """The packets of the request `trace --live` makes, as the firewall sees them, and what that request is."""
    if port == 443:
        app, buffers = "tls", ({"tls.sni": name} if name else {})
        what = f"TLS Client Hello, SNI {name}" if name else "TLS Client Hello without SNI (an address)"
    else:
        host = (name or server).lower()
        app, buffers = "http", {"http.host": host, "http.header_names": CURL_HEADER_NAMES}
        what = f"HTTP GET, Host {host}"
    return what, [Packet("the SYN", True, False, client, server, port, None),
                  Packet("the SYN-ACK", False, False, client, server, port, None),
                  Packet(f"the request ({what})", True, True, client, server, port, app, buffers),
                  Packet("the answer", False, True, client, server, port, app)]


def _default_name(rule: _Rule) -> str:
    """A StatefulDefaultActions rule's AWS name: "aws:drop_established + aws:alert_established"."""
    named = rule.msg.removesuffix(" action")
    if rule.action == "drop" and "alert_" in named:
        return f"{named.replace('alert_', 'drop_')} + {named}"
    return named


def decide(rules: PolicyRules, client: str, server: str, port: int, name: str | None,
           live_hint: str = "nfwlab trace --live") -> Verdict:
    """The policy's verdict on the request from `client` (the address the firewall sees) to `server`:`port`,
    naming `name` (SNI or Host; None for an address)."""
    what, flow = packets(client, server, port, name)
    base = partial(Verdict, rules.name, rules.origin, what)
    needs = f"the policy's verdict needs the packet: run `{live_hint}`"
    if rules.kind != "classic":
        return base(action=None, needs_packet=f"a {rules.kind} policy (its firewall engine decides hook "
                       f"by hook) is not judged from its rules here; {needs}")
    stateless = rules.stateless
    if stateless.get("in_use"):
        if stateless.get("rule_groups"):
            return base(action=None, needs_packet=f"its stateless rule groups decide first and are not "
                           f"judged here; {needs}")
        default = str(stateless.get("default_actions", "aws:forward_to_sfe")).split(" + ")[0]
        if default in ("aws:pass", "aws:drop"):
            action = default.removeprefix("aws:")
            return base(action=action, by=f"no rule: the stateless default action {default} (the "
                           "stateful engine never sees it)", stage="the SYN")
    strict = rules.rule_order == STRICT_ORDER
    alerts: list[tuple[int, int, str]] = []
    listed = _rules(rules.rules)
    for pkt in flow:
        judged = [(r, _judge(r, pkt, rules.variables, rules.datasets)) for r in listed]
        if strict:
            order = judged
        else:  # pass before drop before reject before alert, each in the order written
            rank = {"pass": 0, "drop": 1, "reject": 2}
            order = sorted(judged, key=lambda rm: rank.get(DECIDING.get(rm[0].action, "alert"), 3))
        for r, matched in order:
            if matched is False:
                continue
            deciding = r.action in DECIDING
            if matched is None:
                if deciding:
                    return base(action=None, stage=pkt.stage, needs_packet=(
                        f"rule {r.sid} ({r.group or 'the policy'}) may decide {pkt.stage} on more than addresses, "
                        f"ports, SNI or Host: {_GUARD.sub('', r.text)}; {needs}"))
                continue  # an alert rule that may log: it decides nothing
            logs = "noalert" not in {k for k, _ in r.parsed.options} and r.action != "pass"
            if logs:
                alerts.append((r.gid, r.sid, r.msg))
            if not deciding:
                continue
            action = DECIDING[r.action]
            if not strict and action != "pass":  # a drop leaves the packet's other alerts in place; a pass does not
                alerts += [(a.gid, a.sid, a.msg) for a, m in judged if m is True and a.action == "alert"
                           and "noalert" not in {k for k, _ in a.parsed.options}]
            if r.gid == SYSTEM_GID:
                by = f"no rule: default action {_default_name(r)}"
            else:
                by = f"rule group {r.group}, sid {r.sid}" if r.group else f"sid {r.sid}"
            return base(action=action, by=by, sid=r.sid, gid=r.gid, rule=r.text, rule_group=r.group,
                           stage=pkt.stage, alerts=tuple(dict.fromkeys(alerts)))
    why = ("no rule: STRICT_ORDER without a default action passes it" if strict
           else "no rule: DEFAULT_ACTION_ORDER passes what no rule drops")
    return base(action="pass", by=why, alerts=tuple(dict.fromkeys(alerts)))


def name_of(dest: str) -> str | None:
    """The name a request to `dest` carries (SNI, Host), or None for an address."""
    try:
        ip_address(dest)
    except ValueError:
        return dest
    return None
