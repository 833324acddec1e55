"""Flow bypass on a real lab: a flow the engine has decided crosses in the firewall endpoint's kernel, and
still fails closed, is still counted in the FLOW log, and still meets policy changes as AWS's existing flows do.

Each test makes a long-lived TCP flow from server-a (firewall-first: the firewall sees server-a's address and
the flow's own source port), sends 2 MB so that the engine bypasses it (past the 1 MB reassembly depth), then
keeps sending 1 KB every 20 ms to an echo port of the internet. What crossed is read on the far side: an
iptables counter in the internet node for the flow's destination port.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from verdicts import blocked

from lab import Lab, kernel
from lab import docker as dk
from lab.policy import parse_policy
from lab.stateless import PASS_CHAIN
from lab.wait import Wait

WEB_SERVER = "203.0.113.10"
SERVER_A = "10.0.136.108"
HEADER = (40, 60)  # bytes of IPv4 and TCP headers in one packet: no options, timestamps and SACK at most

STREAM = """
import socket, sys, threading, time
port, local, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("", local))
s.settimeout(5); s.connect((sys.argv[4], port)); s.settimeout(None)
def drain():
    while s.recv(1 << 20): pass
threading.Thread(target=drain, daemon=True).start()
s.sendall(b"x" * 2_000_000)
end = time.time() + seconds
while time.time() < end:
    s.sendall(b"y" * 1024); time.sleep(0.02)
"""


def far_side(lab: Lab, port: int) -> int:
    """Packets that reached the internet node for destination `port` (the counting rule made by `stream`)."""
    pid = dk.pid(dk.containers(lab.name)["internet"].id)
    listing = kernel.iptables(pid, "-t", "mangle", "-nvx", "-L", "PREROUTING")
    for line in listing.splitlines():
        if f"dpt:{port}" in line:
            return int(line.split()[0])
    raise AssertionError(f"no counting rule for port {port} in the internet node:\n{listing}")


def gate_drops(lab: Lab) -> int:
    """Packets the firewall endpoint's fail-closed gate (chain NFW-PASS) has dropped."""
    _, listing, _ = lab.exec("firewall", ["iptables", "-w", "5", "-nvx", "-L", PASS_CHAIN])
    return sum(int(line.split()[0]) for line in listing.splitlines()[2:] if " DROP " in f" {line} ")


def bypassed(lab: Lab, local_port: int) -> bool:
    return any(f["sport"] == local_port and f["src"] == SERVER_A for f in lab.engines.bypassed_flows())


@contextmanager
def stream(lab: Lab, port: int, local_port: int, seconds: float = 40) -> Iterator[None]:
    """The long-lived flow, bypassed before the block starts; its sender stopped after."""
    pid = dk.pid(dk.containers(lab.name)["internet"].id)
    kernel.iptables(pid, "-t", "mangle", "-I", "PREROUTING", "-p", "tcp", "--dport", str(port))
    lab.exec("server-a", ["sh", "-c", f"setsid python3 -c '{STREAM}' {port} {local_port} {seconds} {WEB_SERVER} "
                                      f"> /tmp/stream-{local_port}.log 2>&1 &"])
    try:
        Wait(f"the flow from port {local_port} to be bypassed", 15, interval=0.2).until(
            lambda: bypassed(lab, local_port))
        yield
    finally:
        lab.exec("server-a", ["pkill", "-f", f"{port} {local_port} {seconds}"])
        kernel.iptables(pid, "-t", "mangle", "-D", "PREROUTING", "-p", "tcp", "--dport", str(port))


def crossing(lab: Lab, port: int, seconds: float = 1.0) -> int:
    """How many of the flow's packets reached the far side in `seconds`."""
    before = far_side(lab, port)
    time.sleep(seconds)
    return far_side(lab, port) - before


@pytest.fixture
def lab(nfwlab: Lab) -> Iterator[Lab]:
    nfwlab.switch("firewall-first")
    yield nfwlab
    nfwlab.switch("nat-first")


def test_a_long_flow_is_bypassed_and_its_flow_log_counts_every_byte_that_crossed(lab, nfwlab_ports):
    """Suricata decides the flow, then the kernel forwards it; the FLOW records still count every packet of
    both directions (from the endpoint's conntrack), checked against iperf3's own counts of what its client
    sent and its server received."""
    local = next(nfwlab_ports)
    lab.exec("internet", ["sh", "-c", "pidof iperf3 || iperf3 -s -D"])
    Wait("iperf3 to listen in the internet node", 5, interval=0.1).until(
        lambda: ":5201" in lab.exec("internet", ["ss", "-ltn"])[1])
    mark = lab.log_mark()
    code, out, err = lab.exec("server-a", ["iperf3", "-c", WEB_SERVER, "-t", "2", "--cport", str(local), "-J"])
    assert code == 0, out[-300:] + err[-300:]
    end = json.loads(out)["end"]
    sent, retransmits = end["sum_sent"]["bytes"], end["sum_sent"].get("retransmits", 0)
    received = end["sum_received"]["bytes"]
    assert received > 100_000_000
    out_record = lab.wait_for_flows({"event.src_port": local, "event.src_ip": SERVER_A}, since=mark, timeout=30)[0]
    back = lab.wait_for_flows({"event.dest_port": local, "event.flow_id": out_record["event"]["flow_id"]},
                              since=mark, timeout=30)[0]
    engine = [r for r in lab.eve.records("flow") if r.get("flow_id") == out_record["event"]["flow_id"]]
    assert engine and engine[0]["flow"]["bypass"] == "local", engine  # Suricata says it bypassed the flow
    forward, reply = out_record["event"]["netflow"], back["event"]["netflow"]
    # What crossed is bounded by iperf3's two counts. From below: every byte the server received crossed, one
    # header per packet the endpoint counted (with TSO a packet may carry up to 64 KB). From above: what the
    # client wrote, those headers, and the segments TCP sent again (1448 bytes each at most). The two counts
    # differ when the server closes its socket with data still unread at the end of the test: the reset
    # that follows discards what the client still had queued, which never crossed.
    assert received + HEADER[0] * forward["pkts"] <= forward["bytes"], (forward, received)
    assert forward["bytes"] <= sent + HEADER[1] * forward["pkts"] + 1448 * retransmits + 100, (
        forward, sent, retransmits)
    assert HEADER[0] * reply["pkts"] <= reply["bytes"] <= HEADER[1] * reply["pkts"] + 200, reply  # acks only
    assert forward["start"] == reply["start"] and forward["end"] >= forward["start"]


@pytest.mark.parametrize("how", ["engine stop", "engine killed"])
def test_a_bypassed_flow_fails_closed_with_its_engine(lab, nfwlab_ports, how):
    """AWS: when the firewall cannot inspect, nothing crosses. A flow the kernel forwards goes through the
    same gate as everything else: the gate drops its packets (the firewall's own counter) and the far side
    sees none of them."""
    port, local = 5311 if how == "engine stop" else 5312, next(nfwlab_ports)
    with stream(lab, port, local):
        assert crossing(lab, port) > 10
        dropped = gate_drops(lab)
        if how == "engine stop":
            lab.stop_firewall_engine()
        else:  # from outside the lab: its supervisor closes the gate when Suricata exits
            lab.exec("firewall", ["sh", "-c", "kill -KILL $(pidof suricata)"])
        try:
            Wait("the firewall engine to be down", 10, interval=0.1).until(
                lambda: "down" in lab.status().firewall_engine)
            assert bypassed(lab, local), "the flow lost its bypass mark: this would not test the bypass path"
            assert crossing(lab, port, 2.0) == 0
            assert gate_drops(lab) > dropped  # the flow's packets arrived and the gate dropped them
        finally:
            lab.restart_firewall_engine()
    assert lab.status().firewall_engine == "running"


def stateful(name: str, rules: str, strict: bool) -> dict[str, Any]:
    return {"RuleGroupResponse": {"RuleGroupName": name, "Type": "STATEFUL", "Capacity": 100},
            "RuleGroup": {"RulesSource": {"RulesString": rules},
                          **({"StatefulRuleOptions": {"RuleOrder": "STRICT_ORDER"}} if strict else {})}}


def classic(*, stateful_rules: str = "", stateless_drop_port: int | None = None, strict: bool = False) -> Any:
    groups = [stateful("test-stateful", stateful_rules or
                       'alert tcp $HOME_NET any -> any 1 (msg:"unused"; sid:9; rev:1;)', strict)]
    stateless = []
    if stateless_drop_port:
        stateless = [{"RuleGroupResponse": {"RuleGroupName": "test-stateless", "Type": "STATELESS", "Capacity": 10},
                      "RuleGroup": {"RulesSource": {"StatelessRulesAndCustomActions": {"StatelessRules": [
                          {"Priority": 1, "RuleDefinition": {"Actions": ["aws:drop"], "MatchAttributes": {
                              "Protocols": [6], "DestinationPorts": [{"FromPort": stateless_drop_port,
                                                                      "ToPort": stateless_drop_port}]}}}]}}}}]
    options = {"StatefulEngineOptions": {"RuleOrder": "STRICT_ORDER"},
               "StatefulDefaultActions": ["aws:alert_established"]} if strict else {}
    return parse_policy({"FirewallPolicy": {
        "StatelessRuleGroupReferences": [{"ResourceArn": "test-stateless", "Priority": 10}] if stateless else [],
        "StatelessDefaultActions": ["aws:forward_to_sfe"], "StatelessFragmentDefaultActions": ["aws:forward_to_sfe"],
        "StatefulRuleGroupReferences": [{"ResourceArn": "test-stateful", **({"Priority": 1} if strict else {})}],
        **options}, "RuleGroups": [*stateless, *groups]}, "test policy")


def test_a_stateful_change_leaves_a_bypassed_flow_alone_and_applies_to_new_flows(lab, nfwlab_ports):
    """AWS: "Changes to stateful rules are applied only to new traffic flows." A drop rule for the port,
    applied live (a reload): the bypassed flow keeps crossing, a new connection to the port is dropped."""
    port, local = 5313, next(nfwlab_ports)
    rule = f'drop tcp $HOME_NET any -> any {port} (msg:"no {port}"; flow:to_server; sid:1; rev:1;)'
    with stream(lab, port, local):
        lab.apply_policy(classic(stateful_rules=rule))
        try:
            assert crossing(lab, port) > 10
            # a new connection to the port: the new rule's alert for that flow (by its client port) and the
            # client's timeout
            blocked(lab, f"http://{WEB_SERVER}:{port}/", next(nfwlab_ports),
                    {"alert.signature": f"no {port}", "src_ip": SERVER_A}, timeout=2)
            assert crossing(lab, port) > 10
        finally:
            lab.apply_policy(lab.policy)


def test_a_stateless_change_applies_to_a_bypassed_flow_at_once(lab, nfwlab_ports):
    """AWS: "Other firewall changes, including changes to stateless rules, are applied to all network
    packets." The stateless engine sits in front of the bypass: a stateless drop stops the flow."""
    port, local = 5314, next(nfwlab_ports)
    with stream(lab, port, local):
        assert crossing(lab, port) > 10
        lab.apply_policy(classic(stateless_drop_port=port))
        try:
            assert crossing(lab, port, 2.0) == 0
        finally:
            lab.apply_policy(lab.policy)


def test_a_change_of_rule_order_disrupts_a_bypassed_flow(lab, nfwlab_ports):
    """AWS: "If the update does change from one rule order to another, the existing flows are still
    disrupted." The engine restarts, forgets every bypass (a new engine decides every flow again) and
    drops the flow's packets as midstream traffic (the stream exception policy, DROP by default)."""
    port, local = 5315, next(nfwlab_ports)
    with stream(lab, port, local):
        assert crossing(lab, port) > 10
        result = lab.apply_policy(classic(strict=True))
        try:
            assert result.engine_restarted
            assert not bypassed(lab, local)
            assert crossing(lab, port, 2.0) == 0
        finally:
            lab.apply_policy(lab.policy)
