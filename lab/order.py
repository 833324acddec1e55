"""Rule order: AWS's STRICT_ORDER run on Suricata 7, and warnings about rules that others shadow.

AWS: "With strict ordering, the rule groups are evaluated by order of priority, starting from the lowest
number, and the rules in each rule group are processed in the order in which they're defined." The first
matching pass, drop or reject rule decides; alert rules that match before it log.

Suricata 7 evaluates every rule on a packet and then applies what matched in its action order (pass, then
drop, reject, alert), whatever order the rules were written in. `strict_order` compiles the rules so that
the engine's answer is the one AWS documents (docs/policies.md, "Strict order", says why this and not
Suricata 8's firewall mode):

1. The deciding rules (pass, drop, reject) fall into *runs*: rules written one after the other with the
   same action and no alert rule between them.
2. Every run that some later rule follows gets a *probe* per rule: the rule's match as a silent alert that
   sets the run's flowbit (`nfw.run<N>`).
3. Every rule after a run is guarded by `flowbits:isnotset,nfw.run<N>`: it only takes effect when no rule
   of an earlier run matched the packet.
4. The engine's action order becomes alert, pass, drop, reject, so probes run before the rules they guard;
   Suricata itself evaluates flowbit setters before readers of the same action.
5. One rule clears the run bits at the start of every packet: a decision that holds for one packet does not
   outlive it (a decision that holds for the flow ends the flow's inspection anyway).

Probes and the clearing rule are the lab's own (gid 3); they never log. A policy in DEFAULT_ACTION_ORDER is
not touched.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import ConfigError

DEFAULT_ACTIONS_ORIGIN = "the policy's StatefulDefaultActions"  # lab/policy.py names its default rules so
PROBE_GID = 3  # the lab's own rules that implement strict order; never logged (gid 5: flow bypass)
PROBE_ORIGIN, CLEAR_ORIGIN = " (strict-order probe)", "the lab's strict-order rules"
DECIDING = {"pass": "pass", "drop": "drop", "reject": "reject", "rejectsrc": "reject", "rejectdst": "reject",
            "rejectboth": "reject"}
# Suricata's action order for a strict-order policy: probes (silent alerts) before the rules they guard.
STRICT_ACTION_ORDER = ("alert", "pass", "drop", "reject")
# Options a probe does not copy: what a rule says about itself, logging, and what it changes when it fires.
_NOT_COPIED = {"msg", "sid", "gid", "rev", "priority", "classtype", "reference", "metadata", "noalert", "tag",
               "target", "threshold", "detection_filter"}
_STATE_CHANGES = {"flowbits": ("set", "unset", "toggle"), "xbits": ("set", "unset", "toggle"),
                  "hostbits": ("set", "unset", "toggle"), "dataset": ("set", "unset")}
# Transport and network protocols: a rule of these decides a flow from its first packets.
TRANSPORT = {"ip", "tcp", "udp", "icmp", "tcp-pkt", "tcp-stream", "ipv4", "ipv6", "icmpv4", "icmpv6"}
TCP_ONLY = {"http", "http1", "http2", "tls", "ssh", "smtp", "ftp", "ftp-data", "smb", "imap", "pop3", "msn",
            "dcerpc", "mqtt", "rdp", "rfb", "pgsql", "modbus", "dnp3", "enip", "tcp"}
UDP_ONLY = {"quic", "ntp", "dhcp", "tftp", "ikev2", "snmp", "sip", "udp"}
# Keywords that inspect a packet's or a transaction's content: a rule without them matches every packet of
# the flows its header selects.
_CONTENT_WORDS = re.compile(r"^(content|pcre|byte_test|byte_jump|byte_extract|isdataat|dsize|flags|app-layer-"
                            r"protocol|dataset|[a-z0-9_]+\.[a-z0-9_.]+|file_data|ssl_state|ssl_version|tls_[a-z_]+"
                            r"|http_[a-z_]+|dns_query|ja3[a-z_.]*|urilen|stream_size)$")


@dataclass(frozen=True)
class ParsedRule:
    """A Suricata rule cut at its parts: action, header (protocol, addresses, ports) and options."""

    action: str
    protocol: str
    source: str
    source_port: str
    direction: str
    destination: str
    destination_port: str
    options: tuple[tuple[str, str | None], ...]  # (keyword, value or None), in the order written

    def option(self, keyword: str) -> str | None:
        return next((v for k, v in self.options if k == keyword), None)

    def text(self, action: str | None = None, options: Iterable[tuple[str, str | None]] | None = None) -> str:
        opts = self.options if options is None else tuple(options)
        body = " ".join(f"{k}:{v};" if v is not None else f"{k};" for k, v in opts)
        return (f"{action or self.action} {self.protocol} {self.source} {self.source_port} {self.direction} "
                f"{self.destination} {self.destination_port} ({body})")

    @property
    def sid(self) -> str:
        return self.option("sid") or "?"


def split_options(body: str) -> list[tuple[str, str | None]]:
    """`keyword:value; keyword;` into pairs; quotes and backslash escapes keep their semicolons."""
    out: list[tuple[str, str | None]] = []
    current, quoted, escaped = "", False, False
    for ch in body:
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\":
            current += ch
            escaped = True
        elif ch == '"':
            current += ch
            quoted = not quoted
        elif ch == ";" and not quoted:
            part = current.strip()
            if part:
                key, sep, value = part.partition(":")
                out.append((key.strip(), value.strip() if sep else None))
            current = ""
        else:
            current += ch
    if current.strip():
        raise ValueError(f"options do not end with ';': {current.strip()[:60]!r}")
    return out


def parse_rule(text: str) -> ParsedRule:
    """A rule's parts; ValueError when the text is not `action proto src sport dir dst dport (options)`."""
    head, sep, rest = text.partition("(")
    if not sep or not rest.rstrip().endswith(")"):
        raise ValueError(f"not a Suricata rule: {text[:80]!r}")
    parts = head.split()
    if len(parts) != 7:
        raise ValueError(f"a rule's header has 7 parts (action protocol source port direction destination port): "
                         f"{head.strip()!r}")
    action, protocol, source, source_port, direction, destination, destination_port = parts
    return ParsedRule(action, protocol, source, source_port, direction, destination, destination_port,
                      tuple(split_options(rest.rstrip()[:-1])))


INTERNAL_PREFIX = "(lab) "  # the origin of a line the lab adds for an engine's sake (lab/nextgen.py)


def is_internal(origin: str | None) -> bool:
    """Whether a rendered line is one of the lab's own rules (strict-order probes, a Next Generation policy's
    helper rules), not a rule the user wrote."""
    return origin is not None and (origin.endswith(PROBE_ORIGIN) or origin == CLEAR_ORIGIN
                                   or origin.startswith(INTERNAL_PREFIX))


def _changes_state(keyword: str, value: str | None) -> bool:
    """Whether an option changes state when its rule fires (a probe must not: the rule may not take effect)."""
    fields = [f.strip() for f in (value or "").split(",")]
    if keyword == "flowint":  # flowint:name,=,1 / +,1 / -,1 change it; ==, >, isset... only read it
        return len(fields) > 1 and fields[1] in ("=", "+", "-")
    return keyword in _STATE_CHANGES and fields[0] in _STATE_CHANGES[keyword]


def strict_order(rules: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    """Rules in strict order (comments have origin None) compiled for Suricata 7, with their origins."""
    runs: list[int] = []  # per line: the run it belongs to (deciders), or -1
    run, previous = 0, None
    for text, origin in rules:
        if origin is None:
            runs.append(-1)
            continue
        action = DECIDING.get(text.split(None, 1)[0])
        if action is None:  # an alert rule ends a run
            previous = None
            runs.append(-1)
            continue
        if action != previous:
            run += 1
            previous = action
        runs.append(run)
    # A run needs probes when any rule comes after it: every run but the one holding the last rule.
    final = next((r for (_, origin), r in zip(reversed(rules), reversed(runs), strict=True) if origin is not None),
                 -1)
    out: list[tuple[str, str | None]] = []
    probes: list[tuple[str, str | None]] = []
    probed: list[int] = []  # the runs that have probes, for the clearing rule
    current = 0  # the runs before the current line
    for (text, origin), r in zip(rules, runs, strict=True):
        if origin is None:
            out.append((text, origin))
            continue
        before = r - 1 if r > 0 else current
        guards = " ".join(f"flowbits:isnotset,nfw.run{n};" for n in range(1, before + 1))
        head, _, tail = text.rpartition(")")
        out.append((f"{head.rstrip()} {guards})" + tail if guards else text, origin))
        if r > 0:
            current = r
        if r > 0 and r != final:
            try:
                parsed = parse_rule(text)
            except ValueError as e:  # Suricata would refuse it too; strict order must read it to probe it
                raise ConfigError(f"{origin}: {e}", "write `action protocol source port -> destination port "
                                  "(options;)`: strict order reads every deciding rule") from None
            kept = [(k, v) for k, v in parsed.options if k not in _NOT_COPIED and not _changes_state(k, v)]
            probes.append((parsed.text("alert", [*kept, ("noalert", None), ("flowbits", f"set,nfw.run{r}"),
                                                 ("priority", "2"), ("gid", str(PROBE_GID)),
                                                 ("sid", str(len(probes) + 2)), ("rev", "1")]),
                           f"{origin}{PROBE_ORIGIN}"))
            if r not in probed:
                probed.append(r)
    if not probes:
        return out
    clear = " ".join(f"flowbits:unset,nfw.run{n};" for n in probed)
    return [*out,
            ("# strict order (STRICT_ORDER) on Suricata 7: each rule above takes effect only if no earlier run of "
             "deciding rules matched (flowbits:isnotset,nfw.runN); the silent probes below tell which runs "
             "matched", None),
            (f'alert ip any any -> any any (msg:"nfwlab strict order: clear the run bits"; noalert; {clear} '
             f"priority:1; gid:{PROBE_GID}; sid:1; rev:1;)", CLEAR_ORIGIN),
            *probes]


# --------------------------------------------------------------------------
# Shadowing
# --------------------------------------------------------------------------
def _content_free(rule: ParsedRule) -> bool:
    """True when the rule looks only at addresses, ports and flow state: it matches a flow's first packets."""
    return not any(_CONTENT_WORDS.match(k) for k, _ in rule.options)


def _decides_flow_early(rule: ParsedRule) -> bool:
    """A transport rule without content keywords that decides at a flow's first packets: a pass (of the
    packet or the flow, it matches every packet its header selects, the request's included), or a drop or
    reject without flow options (Suricata applies it to the whole flow from the first packet on)."""
    if rule.protocol not in TRANSPORT or not _content_free(rule):
        return False
    if rule.action == "pass":  # a pass of the handshake only (flow:not_established) leaves the request alone
        return "not_established" not in (rule.option("flow") or "")
    return not any(k in ("flow", "flowbits", "flowint", "stream_size") for k, _ in rule.options)


def _networks(value: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
    """Literal address blocks, or None for anything else (any, variables, negations: may overlap)."""
    items = value.strip("[]").split(",")
    try:
        return [ipaddress.ip_network(i.strip(), strict=False) for i in items]
    except ValueError:
        return None


def _ports(value: str) -> set[int] | None:
    if value == "any" or "$" in value or "!" in value:
        return None
    ports: set[int] = set()
    for item in value.strip("[]").split(","):
        low, sep, high = item.strip().partition(":")
        try:
            ports.update(range(int(low or 0), int(high or 65535) + 1) if sep else {int(low)})
        except ValueError:
            return None
    return ports


def _overlap(a: ParsedRule, b: ParsedRule) -> bool:
    """Whether two headers can select the same flow (conservative: unknown means yes)."""
    for x, y in ((a.source, b.source), (a.destination, b.destination)):
        nx, ny = _networks(x), _networks(y)
        if nx is not None and ny is not None and not any(
                p.version == q.version and p.overlaps(q) for p in nx for q in ny):
            return False
    for x, y in ((a.source_port, b.source_port), (a.destination_port, b.destination_port)):
        px, py = _ports(x), _ports(y)
        if px is not None and py is not None and not px & py:
            return False
    return _carries(a.protocol, b.protocol)


def _carries(transport: str, application: str) -> bool:
    """Whether flows of `transport` can carry `application` (dns and krb5 run over both TCP and UDP)."""
    if transport in ("ip", "ipv4", "ipv6"):
        return True
    if transport in ("tcp", "tcp-pkt", "tcp-stream"):
        return application not in UDP_ONLY
    if transport == "udp":
        return application not in TCP_ONLY
    return application == transport


def shadow_warnings(rules: list[tuple[str, str | None]], strict: bool) -> list[str]:
    """Rules another rule keeps from ever deciding, under the policy's order.

    - A pass, drop or reject rule on a transport protocol (tcp, udp, ip) with no content keyword decides a
      flow at its first packets, before any application-layer rule (http, tls, dns, ...) can see a request:
      an application rule it overlaps never takes effect, whichever of the two is written first.
    - DEFAULT_ACTION_ORDER: a content-free pass rule is applied before every drop, reject or alert rule of
      the same protocol it overlaps, whatever the order written.
    - STRICT_ORDER: a rule written after a deciding rule with the same match never takes effect."""
    parsed: list[tuple[ParsedRule, str]] = []
    for text, origin in rules:
        if origin is None or origin.startswith(DEFAULT_ACTIONS_ORIGIN):  # AWS's own rules shadow by design
            continue
        try:
            parsed.append((parse_rule(text), origin))
        except ValueError:
            continue
    # Only rules that decide early, broad passes and identical rules can shadow: compare those with the rest,
    # not every pair (a long domain list is thousands of rules).
    same: dict[tuple, list[int]] = {}
    for j, (b, _) in enumerate(parsed):
        same.setdefault(_match_key(b), []).append(j)
    out: list[str] = []
    for i, (a, where_a) in enumerate(parsed):
        if a.action not in DECIDING:
            continue
        broad = _decides_flow_early(a) or (not strict and a.action == "pass" and _content_free(a))
        candidates = range(len(parsed)) if broad else [j for j in same[_match_key(a)] if j > i] if strict else []
        for j in candidates:
            b, where_b = parsed[j]
            if i == j:
                continue
            if (_decides_flow_early(a) and b.protocol not in TRANSPORT
                    and DECIDING.get(b.action) != DECIDING[a.action] and _overlap(a, b)):
                out.append(f"{a.action} {a.protocol} rule sid {a.sid} ({where_a}) decides a flow at its first "
                           f"packets, so {b.action} {b.protocol} rule sid {b.sid} ({where_b}), written "
                           f"{'after' if i < j else 'before'} it, never sees the flows both select: the "
                           f"{b.protocol} rule can only match once the application protocol is known. Narrow the "
                           f"{a.protocol} rule (ports, or flow:established with content) or make it an "
                           f"application-layer rule")
            elif (not strict and a.action == "pass" and b.action != "pass" and a.protocol == b.protocol
                  and _content_free(a) and _overlap(a, b)):
                out.append(f"DEFAULT_ACTION_ORDER: pass rule sid {a.sid} ({where_a}) matches every {a.protocol} "
                           f"flow its header selects, and pass rules are applied first, so {b.action} rule sid "
                           f"{b.sid} ({where_b}) never takes effect on them; use STRICT_ORDER or narrow the pass rule")
            elif strict and j > i and a.protocol == b.protocol and _same_match(a, b):
                out.append(f"STRICT_ORDER: {b.action} rule sid {b.sid} ({where_b}) matches exactly what "
                           f"{a.action} rule sid {a.sid} ({where_a}) matches and comes after it: it never takes "
                           "effect")
    return list(dict.fromkeys(out))


_OWN = {"msg", "sid", "gid", "rev", "priority", "classtype", "reference", "metadata"}  # what a rule says of itself


def _match_key(rule: ParsedRule) -> tuple:
    """What a rule matches: its protocol, header and options, without what it says about itself."""
    return (rule.protocol, rule.source, rule.source_port, rule.direction, rule.destination, rule.destination_port,
            tuple(o for o in rule.options if o[0] not in _OWN))


def _same_match(a: ParsedRule, b: ParsedRule) -> bool:
    return _match_key(a) == _match_key(b)
