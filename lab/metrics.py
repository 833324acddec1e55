"""Metrics: the firewall's counters under AWS's CloudWatch names (namespace AWS/NetworkFirewall).

Dimensions as AWS publishes them: FirewallName, AvailabilityZone, Engine (Stateless or Stateful) and, for a
stateless custom action, CustomAction. Where each number comes from:

- Engine=Stateless: the packet counters of the firewall node's stateless chain (lab/stateless.py), one
  iptables rule per stateless rule and default action. ReceivedPackets is every packet the chain saw,
  PassedPackets those an `aws:pass` let through, DroppedPackets those an `aws:drop` dropped (fragment
  default included); a custom action's packets are counted as `Packets` with its CustomAction dimension.
- Engine=Stateful: Suricata's own counters (`suricatasc -c dump-counters`, merged every second).
  ReceivedPackets is `decoder.pkts`, PassedPackets `ips.accepted`, RejectedPackets `ips.rejected`;
  InvalidDroppedPackets are drops of malformed or out-of-state traffic (decoding, defragmentation, stream
  and application-layer errors, midstream packets), OtherDroppedPackets drops for lack of resources
  (memcaps, queue errors), and DroppedPackets the rest of `ips.blocked`: what the rules dropped.
- A Next Generation policy: Engine=Firewall and Engine=IPS instead (next_generation_metrics).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

NAMESPACE = "AWS/NetworkFirewall"
INVALID = ("decode_error", "defrag_error", "stream_error", "stream_midstream", "stream_urgent", "stream_reassembly",
           "applayer_error")
OTHER = ("flow_memcap", "defrag_memcap", "stream_memcap", "applayer_memcap", "nfq_error",
         "threshold_detection_filter", "tunnel_packet_drop")
_RULE_LINE = re.compile(r"^\s*(\d+)\s+\d+\s+.*/\* nfw (\S+) g=(\S+) p=(\S+) a=(\S+) c=(\S+) \*/")


@dataclass(frozen=True)
class Metric:
    name: str
    value: int
    dimensions: tuple[tuple[str, str], ...]  # (name, value), in AWS's order

    def as_dict(self) -> dict[str, Any]:
        return {"MetricName": self.name, "Value": self.value, "Unit": "Count",
                "Dimensions": [{"Name": n, "Value": v} for n, v in self.dimensions]}


@dataclass(frozen=True)
class StatelessCount:
    """The packets one rule of the stateless chain counted."""

    packets: int
    kind: str  # rule, fragment-default, default
    group: str
    priority: str
    action: str
    custom: str | None  # the custom action's dimension value


def parse_stateless_counters(listing: str) -> list[StatelessCount]:
    """`iptables -nvx -L NFW-STATELESS` output: the lab's commented rules with their packet counts."""
    out = []
    for line in listing.splitlines():
        m = _RULE_LINE.match(line)
        if m:
            packets, kind, group, priority, action, custom = m.groups()
            out.append(StatelessCount(int(packets), kind, group, priority, action, None if custom == "-" else custom))
    return out


def _number(counters: dict[str, Any], dotted: str) -> int:
    value: Any = counters
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return 0
        value = value[part]
    return int(value) if isinstance(value, int) else 0


def endpoint_metrics(firewall: str, zone: str, stateless: list[StatelessCount],
                     stateful: dict[str, Any], kind: str = "classic") -> list[Metric]:
    """One endpoint's metrics, from its stateless chain's counts and Suricata's counters (under a Next
    Generation policy, Suricata 8's: `next_generation_metrics`)."""
    def dims(engine: str, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        return (("FirewallName", firewall), ("AvailabilityZone", zone), ("Engine", engine), *extra)
    if kind == "next-generation":
        return next_generation_metrics(stateful, dims)

    received = sum(c.packets for c in stateless)
    passed = sum(c.packets for c in stateless if c.action == "aws:pass")
    dropped = sum(c.packets for c in stateless if c.action == "aws:drop")
    out = [Metric("ReceivedPackets", received, dims("Stateless")), Metric("PassedPackets", passed, dims("Stateless")),
           Metric("DroppedPackets", dropped, dims("Stateless"))]
    per_action: dict[str, int] = {}
    for c in stateless:
        if c.custom:
            per_action[c.custom] = per_action.get(c.custom, 0) + c.packets
    for value in sorted(per_action):
        out.append(Metric("Packets", per_action[value], dims("Stateless", ("CustomAction", value))))
    out.append(Metric("ReceivedPackets", _number(stateful, "decoder.pkts"), dims("Stateful")))
    return out + _ips_metrics(stateful, dims("Stateful"))


def _ips_metrics(counters: dict[str, Any], dims: tuple[tuple[str, str], ...]) -> list[Metric]:
    """What Suricata's `ips` counters say: the stateful engine of a Classic policy, the IPS engine of a Next
    Generation one."""
    invalid = sum(_number(counters, f"ips.drop_reason.{r}") for r in INVALID)
    other = sum(_number(counters, f"ips.drop_reason.{r}") for r in OTHER)
    rejected, blocked = _number(counters, "ips.rejected"), _number(counters, "ips.blocked")
    return [Metric("PassedPackets", _number(counters, "ips.accepted"), dims),
            Metric("DroppedPackets", max(0, blocked - rejected - invalid - other), dims),
            Metric("RejectedPackets", rejected, dims),
            Metric("InvalidDroppedPackets", invalid, dims),
            Metric("OtherDroppedPackets", other, dims)]


def next_generation_metrics(counters: dict[str, Any], dims: Any) -> list[Metric]:
    """A Next Generation policy's engines: Engine=Firewall from Suricata 8's `firewall` counters (what the
    firewall engine accepted, dropped and rejected, its default action included), Engine=IPS from its `ips`
    counters as for a Classic policy's stateful engine. AWS names no Engine values for these engines: these
    are the lab's."""
    blocked, rejected = _number(counters, "firewall.blocked"), _number(counters, "firewall.rejected")
    return [Metric("ReceivedPackets", _number(counters, "decoder.pkts"), dims("Firewall")),
            Metric("PassedPackets", _number(counters, "firewall.accepted"), dims("Firewall")),
            Metric("DroppedPackets", max(0, blocked - rejected), dims("Firewall")),
            Metric("RejectedPackets", rejected, dims("Firewall")),
            *_ips_metrics(counters, dims("IPS"))]


def as_text(metrics: list[Metric]) -> str:
    """A table for people: metric, value, dimensions."""
    rows = [(m.name, str(m.value), ", ".join(f"{n}={v}" for n, v in m.dimensions)) for m in metrics]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(("METRIC", "VALUE", "DIMENSIONS"))]
    lines = [f"{'METRIC':<{widths[0]}}  {'VALUE':>{widths[1]}}  DIMENSIONS"]
    lines += [f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c}" for a, b, c in rows]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Prometheus
# --------------------------------------------------------------------------
def prometheus_text(metrics: list[Metric]) -> bytes:
    """The metrics in Prometheus' text format (prometheus-client), one gauge family per AWS metric name:
    nfw_<snake_case name>{firewall_name, availability_zone, engine, custom_action}."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily

    class Snapshot:
        def collect(self):  # noqa: ANN202 (prometheus_client's collector protocol)
            families: dict[str, CounterMetricFamily] = {}
            for m in metrics:
                name = "nfw_" + re.sub(r"(?<!^)(?=[A-Z])", "_", m.name).lower()
                labels = ["firewall_name", "availability_zone", "engine", "custom_action"]
                family = families.setdefault(name, CounterMetricFamily(
                    name, f"AWS/NetworkFirewall {m.name} (Sum), as the lab counts it", labels=labels))
                d = dict(m.dimensions)
                family.add_metric([d.get("FirewallName", ""), d.get("AvailabilityZone", ""), d.get("Engine", ""),
                                   d.get("CustomAction", "")], m.value)
            yield from families.values()

    registry = CollectorRegistry()
    registry.register(Snapshot())
    return generate_latest(registry)
