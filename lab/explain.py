"""Explain: what each engine did to one flow, hook by hook, from the firewall's own records.

Under a Next Generation policy every firewall rule that decides once per flow or hook alerts (quietly where
AWS would log nothing: lab/nextgen.py, EXPLAIN_METADATA), and so does the default action; those alerts name
the hook (`firewall.hook`) and the action with its scope (`firewall.policy`). Packet-layer accepts
(`accept:hook tcp:all`) decide every packet and log nothing: the rule that decided is the first packet-layer
rule whose addresses and ports match the flow, found here from the running rules and variables. IPS alerts
(`alert.engine` "td") say what the IPS engine did; an accept with the IPS bypass means it never looked.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .logs import is_default_action
from .nextgen import PACKET_PROTOCOLS, PRIOR_HOOK_GID, aws_hook
from .order import parse_rule

Record = dict[str, Any]
VERBS = {"accept": "accepted", "drop": "dropped", "reject": "rejected", "rejectsrc": "rejected",
         "rejectdst": "rejected", "rejectboth": "rejected"}


@dataclass(frozen=True)
class Step:
    engine: str  # "firewall" | "IPS" | "stateful"
    hook: str  # AWS's hook name; "" for the IPS
    outcome: str  # accepted, dropped, rejected, alerted, bypassed, passed
    by: str  # "rule 3", "the firewall default action (DROP)"
    scope: str = ""
    signature: str = ""
    direction: str = ""

    def line(self) -> str:
        what = f"{self.outcome} by {self.by}" if self.by else self.outcome
        extra = [f"scope {self.scope}"] if self.scope else []
        sig = f' "{self.signature}"' if self.signature else ""
        where = f"{self.hook}{' (' + self.direction + ')' if self.direction else ''}"
        text = f"{what}{sig}" + (f" ({', '.join(extra)})" if extra else "")
        return f"  {where:<32} {text}" if where else f"  {text}"


@dataclass(frozen=True)
class Explanation:
    flow_id: int
    flow: str  # "TCP 10.0.1.10:40001 -> 198.51.100.10:443 tls (SNI allowed.example)"
    endpoint: str
    kind: str  # classic | next-generation
    default_action: str
    firewall: tuple[Step, ...]
    ips: tuple[Step, ...]
    verdict: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def text(self) -> str:
        out = [f"flow {self.flow_id}: {self.flow}" + (f", seen by {self.endpoint}" if self.endpoint else "")]
        if self.kind == "next-generation":
            out.append(f"firewall engine (FirewallDefaultAction {self.default_action}):")
            out += [s.line() for s in self.firewall] or ["  (no record: nothing decided this flow yet)"]
            out.append("IPS engine:")
        else:
            out.append("stateful engine:")
        out += [s.line() for s in self.ips]
        out.append(f"verdict: {self.verdict}")
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)

    def as_dict(self) -> dict[str, Any]:
        steps = (lambda steps: [s.__dict__ for s in steps])  # noqa: E731
        return {"flow_id": self.flow_id, "flow": self.flow, "endpoint": self.endpoint, "kind": self.kind,
                "firewall_default_action": self.default_action, "firewall": steps(self.firewall),
                "ips": steps(self.ips), "verdict": self.verdict, "notes": list(self.notes)}


# --------------------------------------------------------------------------
# Packet-layer rules: which one matches a flow
# --------------------------------------------------------------------------
def _resolve(value: str, variables: dict[str, str]) -> str:
    for _ in range(5):
        value = re.sub(r"\$([A-Za-z][A-Za-z0-9_]*)", lambda m: variables.get(m.group(1), m.group(0)), value)
    return value


def _split_list(text: str) -> list[str]:
    """`[a,b,[c,d]]` into its top-level items."""
    inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    items, depth, current = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(current.strip())
            current = ""
            continue
        depth += (ch == "[") - (ch == "]")
        current += ch
    if current.strip():
        items.append(current.strip())
    return items


def _matches(spec: str, variables: dict[str, str], atom: Callable[[str], bool]) -> bool:
    """Whether a Suricata address or port spec (any, $VAR, [list], !negation, or an `atom`) matches."""
    spec = _resolve(spec.strip(), variables)
    if spec == "any":
        return True
    if spec.startswith("!"):
        return not _matches(spec[1:], variables, atom)
    if spec.startswith("["):
        items = _split_list(spec)
        positive = [i for i in items if not i.startswith("!")]
        return ((not positive or any(_matches(i, variables, atom) for i in positive))
                and all(_matches(i, variables, atom) for i in items if i.startswith("!")))
    return atom(spec)


def address_matches(spec: str, ip: str, variables: dict[str, str]) -> bool:
    """Whether `ip` is in a Suricata address spec (any, CIDR, $VAR, [list], !negation)."""
    def atom(text: str) -> bool:
        try:
            return ipaddress.ip_address(ip) in ipaddress.ip_network(text, strict=False)
        except ValueError:
            return False
    return _matches(spec, variables, atom)


def port_matches(spec: str, port: int, variables: dict[str, str]) -> bool:
    """Whether `port` is in a Suricata port spec (any, 443, 1024:, [80,443], !22, $VAR)."""
    def atom(text: str) -> bool:
        low, sep, high = text.partition(":")
        try:
            return int(low or 0) <= port <= int(high or 65535) if sep else port == int(low)
        except ValueError:
            return False
    return _matches(spec, variables, atom)


def packet_rule(rules_text: str, variables: dict[str, str], proto: str, src: str, sport: int, dst: str,
                dport: int) -> tuple[str, str] | None:
    """The first packet-layer accept rule of the firewall rules that matches a packet: (its sid, its action)."""
    for line in rules_text.splitlines():
        if not line or line.startswith("#"):
            continue
        try:
            rule = parse_rule(line)
        except ValueError:
            continue
        rproto, _, hook = rule.protocol.partition(":")
        if rproto not in PACKET_PROTOCOLS or hook != "all" or not rule.action.startswith("accept"):
            continue
        if rproto not in ("ip", "ipv4", proto.lower()):
            continue
        if any(k in ("flags", "flow", "dsize", "itype", "icode", "flowbits") for k, _ in rule.options):
            continue  # conditions on the packet's content: not judged here
        forward = (address_matches(rule.source, src, variables) and port_matches(rule.source_port, sport, variables)
                   and address_matches(rule.destination, dst, variables)
                   and port_matches(rule.destination_port, dport, variables))
        backward = rule.direction == "<>" and (
            address_matches(rule.source, dst, variables) and port_matches(rule.source_port, dport, variables)
            and address_matches(rule.destination, src, variables)
            and port_matches(rule.destination_port, sport, variables))
        if forward or backward:
            return rule.sid, rule.action
    return None


# --------------------------------------------------------------------------
# The explanation
# --------------------------------------------------------------------------
def _outcome(record: Record) -> tuple[str, str]:
    """(what the firewall engine did, the scope) by the action its alert reports (`firewall.policy`): an accept
    that alerts is the default action's ALERT (or a blocking default under MONITOR) when the default decided."""
    policy = (record.get("firewall") or {}).get("policy", "")
    actions = policy.split(",")
    primary, _, scope = actions[0].partition(":")
    if primary == "accept" and "alert" in actions and is_default_action(record["alert"]):
        return "alerted", scope
    return VERBS.get(primary, primary), scope


def _by(alert: dict[str, Any], default_action: str) -> tuple[str, str]:
    """(who decided, the signature worth showing) for a firewall-engine alert."""
    gid, sid = alert.get("gid", 1), alert.get("signature_id")
    if is_default_action(alert):
        return f"the firewall default action ({default_action})", ""
    if gid == PRIOR_HOOK_GID:  # "AcceptPriorHooks of rule 5"
        return alert.get("signature", "AcceptPriorHooks"), ""
    return (f"rule {sid}" if gid == 1 else f"rule {gid}:{sid}"), alert.get("signature") or ""


def _describe_flow(records: list[Record]) -> str:
    first = records[0]
    app = next((r.get("app_proto") for r in records if r.get("app_proto")), None)
    detail = ""
    tls = next((r["tls"] for r in records if isinstance(r.get("tls"), dict) and r["tls"].get("sni")), None)
    http = next((r["http"] for r in records if isinstance(r.get("http"), dict) and r["http"].get("hostname")), None)
    if tls:
        detail = f" (SNI {tls['sni']})"
    elif http:
        detail = f" (Host {http['hostname']})"
    src, dst = first.get("src_ip"), first.get("dest_ip")
    flow = first.get("flow") if isinstance(first.get("flow"), dict) and "src_ip" in first.get("flow", {}) else None
    if flow:  # an alert's flow object names the client side
        src, dst = flow["src_ip"], flow["dest_ip"]
        sport, dport = flow.get("src_port"), flow.get("dest_port")
    else:
        sport, dport = first.get("src_port"), first.get("dest_port")
    where = f"{src}:{sport} -> {dst}:{dport}" if sport is not None else f"{src} -> {dst}"
    return f"{first.get('proto', '?')} {where}" + (f" {app}{detail}" if app and app != "failed" else detail)


def explain(flow_id: int, records: list[Record], kind: str, default_action: str = "DROP",
            firewall_rules: str = "", variables: dict[str, str] | None = None, endpoint: str = "") -> Explanation:
    """What each engine did to flow `flow_id`, from its EVE records (eve.json, any order)."""
    variables = variables or {}
    mine = [r for r in records if r.get("flow_id") == flow_id]
    if not mine:
        raise LookupError(flow_id)
    mine.sort(key=lambda r: r.get("timestamp", ""))
    # Not the alerts of Suricata's own pseudo-packets (a timed-out flow's flush): no packet was decided there.
    alerts = [r for r in mine if r.get("event_type") == "alert"
              and not any(w in r.get("pkt_src", "") for w in ("flush", "flow timeout"))]
    flow_records = [r for r in mine if r.get("event_type") == "flow"]
    fw_steps: list[Step] = []
    ips_steps: list[Step] = []
    notes: list[str] = []
    blocked: Step | None = None
    bypass_by = ""
    if kind == "next-generation":
        seen: set[tuple[str, str, str]] = set()
        fw_alerts = [a for a in alerts if a["alert"].get("engine") == "fw"]
        # The packet layer: the rule that accepted the flow's packets (they log nothing), both ways.
        packet_default = [a for a in fw_alerts if a["alert"].get("signature_id") == 2201000]
        client = next((r.get("flow") for r in alerts if isinstance(r.get("flow"), dict) and "src_ip" in r["flow"]),
                      None)
        first = mine[0]
        proto = str(first.get("proto", "")).lower()
        if client is None and first.get("src_ip"):
            client = {"src_ip": first["src_ip"], "dest_ip": first["dest_ip"], "src_port": first.get("src_port", 0),
                      "dest_port": first.get("dest_port", 0)}
        if client and proto in ("tcp", "udp") and firewall_rules:
            for direction, (s, sp, d, dp) in (("to server", (client["src_ip"], client["src_port"], client["dest_ip"],
                                                              client["dest_port"])),
                                              ("to client", (client["dest_ip"], client["dest_port"], client["src_ip"],
                                                             client["src_port"]))):
                decided_here = [a for a in packet_default if a.get("src_ip") == s]
                if decided_here:
                    outcome, scope = _outcome(decided_here[0])
                    step = Step("firewall", f"{proto}:all", outcome, f"the firewall default action ({default_action})",
                                scope, direction=direction)
                    fw_steps.append(step)
                    blocked = blocked or (step if outcome in ("dropped", "rejected") else None)
                    continue
                found = packet_rule(firewall_rules, variables, proto, s, int(sp), d, int(dp))
                if found:
                    sid, action = found
                    fw_steps.append(Step("firewall", f"{proto}:all", "accepted", f"rule {sid}",
                                         action.split(",")[0].partition(":")[2], direction=direction))
        for a in fw_alerts:
            if a["alert"].get("signature_id") == 2201000 and a["alert"].get("gid", 1) == 1:
                continue  # the packet layer's default, above
            fw = a.get("firewall") or {}
            hook = aws_hook(fw.get("hook", "?"))
            policy = fw.get("policy", "")
            outcome, scope = _outcome(a)
            by, signature = _by(a["alert"], default_action)
            key = (hook, outcome, by)
            if key in seen:
                continue
            seen.add(key)
            step = Step("firewall", hook, outcome, by, scope, signature)
            fw_steps.append(step)
            if outcome in ("dropped", "rejected") and blocked is None:
                blocked = step
            if "pass:" in policy:
                bypass_by = by
        if default_action == "ACCEPT" and not blocked:
            fw_steps.append(Step("firewall", "every other hook", "accepted", "the firewall default action (ACCEPT)"))
        if blocked:
            ips_steps.append(Step("IPS", "", "not reached for the blocked traffic", ""))
        elif bypass_by:
            ips_steps.append(Step("IPS", "", "bypassed", f"{bypass_by} (BypassIPSEnabled)"))
    td = [a for a in alerts if a["alert"].get("engine") in ("td", None)]
    engine = "IPS" if kind == "next-generation" else "stateful"
    for a in td:
        al = a["alert"]
        outcome = "dropped" if al.get("action") == "blocked" else "alerted"
        if (a.get("verdict") or {}).get("reject"):
            outcome = "rejected"
        step = Step(engine, "", outcome, f"rule {al.get('signature_id')}" if al.get("gid", 1) == 1
                    else f"rule {al.get('gid')}:{al.get('signature_id')}", signature=al.get("signature", ""))
        if step not in ips_steps:
            ips_steps.append(step)
        if outcome in ("dropped", "rejected") and blocked is None:
            blocked = step
    if not td and not blocked and not bypass_by:
        ips_steps.append(Step(engine, "", "no rule matched (the IPS engine passes by default)"
                              if kind == "next-generation" else "no rule alerted", ""))
    if blocked:
        where = f" at {blocked.hook}" if blocked.hook else " by the IPS engine" if blocked.engine == "IPS" else ""
        verdict = f"{blocked.outcome}{where} by {blocked.by}"
    else:
        ended = next((str(f["flow"]["action"]) for f in flow_records if f["flow"].get("action")), "accept")
        verdict = "accepted" if ended == "accept" else ended
        if not flow_records:
            notes.append("the flow has not ended yet: its FLOW record comes when it does")
    return Explanation(flow_id, _describe_flow(mine), endpoint, kind, default_action, tuple(fw_steps),
                       tuple(ips_steps), verdict, tuple(notes))
