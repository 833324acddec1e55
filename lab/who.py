"""Who: the server behind a firewall alert.

Pure logic on records: an alert (EVE, or AWS's envelope) and the NAT
gateways' translation log (nat-translations.log, one JSON line per
translated connection, written by each NAT gateway node from its connection
tracking events, like VPC Flow Logs' pkt-srcaddr on AWS).

- The alert's client address is a server's: that server (firewall-first).
- It is a NAT gateway's: the translation of that address and port to that
  destination, logged at or before the alert, names the server (nat-first).
- Otherwise, or when no translation matches: no answer, and why. Never a guess.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from .logs import event_time
from .model import Vpc

SLACK = 1.0  # seconds: the NAT gateway and the firewall stamp times on their own


@dataclass(frozen=True)
class Answer:
    server: str | None  # None: no answer
    ip: str | None
    evidence: str
    translation: dict | None = None

    @property
    def named(self) -> bool:
        return self.server is not None


def _client(vpc: Vpc, event: dict) -> tuple[str, int, str, int]:
    """(client ip, port, remote ip, port): the VPC side of the flow, whichever direction the alert has."""
    src, dst = event["src_ip"], event["dest_ip"]
    inside = lambda ip: IPv4Address(ip) in vpc.cidr  # noqa: E731
    if not inside(src) and inside(dst):
        return dst, event["dest_port"], src, event["src_port"]
    return src, event["src_port"], dst, event["dest_port"]


def who(vpc: Vpc, alert: dict[str, Any], translations: list[dict]) -> Answer:
    """The server behind `alert` (EVE record or AWS envelope), from its addresses and the translation log."""
    event = alert.get("event", alert) if "event_type" not in alert else alert
    ip, port, remote, remote_port = _client(vpc, event)
    servers = {str(s.ip): s.name for s in vpc.servers}
    if ip in servers:
        return Answer(servers[ip], ip, f"the alert's source address {ip} is {servers[ip]}'s own: the firewall saw "
                      "the traffic before any NAT gateway")
    nats = {str(n.private_ip): n for n in vpc.nat_gateways}
    if ip not in nats:
        return Answer(None, None, f"no match: {ip} is neither a server nor a NAT gateway of {vpc.id}")
    nat = nats[ip]
    at = event_time(event)
    ended = {t.get("conntrack_id") for t in translations if t.get("event") == "DESTROY" and t["epoch"] < at - SLACK}
    candidates = [t for t in translations
                  if t.get("event") == "NEW" and t["nat_gateway"] == nat.name
                  and t["translated"] == {"src": ip, "sport": port}
                  and t["destination"] == {"dst": remote, "dport": remote_port}
                  and t["epoch"] <= at + SLACK and t.get("conntrack_id") not in ended]
    when = event["timestamp"]
    if not candidates:
        return Answer(None, None, f"no match: NAT gateway {nat.name} logged no translation to {ip}:{port} for "
                      f"{remote}:{remote_port} at or before {when}; the server can't be named from its log")
    t = max(candidates, key=lambda c: c["epoch"])
    original = t["original"]["src"]
    name = servers.get(original, original)
    return Answer(name, original, f"NAT gateway {nat.name} ({nat.id}) translated {original}:{t['original']['sport']}"
                  f" -> {ip}:{port} for {remote}:{remote_port} at {t['timestamp']} (nat-translations.log)", t)
