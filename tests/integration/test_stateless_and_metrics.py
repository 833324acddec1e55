"""The stateless engine and the metrics on a running lab: real packets, verdicts from the firewall's counters.

AWS, "How AWS Network Firewall filters network traffic": the stateless engine evaluates each packet first;
"Pass – Discontinue all inspection of the packet and permit it to go to its intended destination. Drop –
Discontinue all inspection of the packet and block it from going to its intended destination. Forward to
stateful rules – Discontinue stateless inspection of the packet and forward it to the stateful rule engine
for inspection." Only what reaches the stateful engine can be logged.
"""
import threading

import pytest
import requests
from verdicts import blocked, passes

from lab.exporter import MetricsExporter
from lab.lab import Lab
from lab.policy import parse_policy
from lab.pytest_plugin import worker_lab_name
from lab.wait import Wait

WEB_SERVER = "203.0.113.10"
COUNT_TELNET = {"ActionName": "CountTelnet",
                "ActionDefinition": {"PublishMetricAction": {"Dimensions": [{"Value": "telnet"}]}}}
DENY_BLOCKED = {"RuleGroupName": "deny", "RuleGroup": {"RulesSource": {"RulesSourceList": {
    "Targets": ["blocked.example"], "TargetTypes": ["TLS_SNI", "HTTP_HOST"], "GeneratedRulesType": "DENYLIST"}}}}
SEEN_23_24 = {"RuleGroupName": "seen", "RuleGroup": {"RulesSource": {"RulesString":
    'alert tcp any any -> any [23,24] (msg:"the stateful engine saw it"; flow:to_server; sid:23;)'}}}

# A UDP datagram of SIZE bytes to the web server's port 9999, where nothing listens: delivered, the web
# server's kernel answers ICMP port unreachable (ConnectionRefusedError); lost, the client hears nothing.
UDP_DATAGRAM = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: let the kernel fragment it
s.settimeout(1.5); s.connect((sys.argv[1], 9999)); s.send(b"x" * int(sys.argv[2]))
try: s.recv(100); print("answer")
except socket.timeout: print("silence")
except OSError as e: print(type(e).__name__)
"""


def rule(priority, actions, **match):
    return {"Priority": priority, "RuleDefinition": {"Actions": actions, "MatchAttributes": match}}


def ports(*numbers):
    return [{"FromPort": n, "ToPort": n} for n in numbers]


def stateless_group(name, *rules, custom=()):
    return {"RuleGroupResponse": {"RuleGroupName": name, "Type": "STATELESS", "Capacity": 100},
            "RuleGroup": {"RulesSource": {"StatelessRulesAndCustomActions": {
                "StatelessRules": list(rules), "CustomActions": list(custom)}}}}


def policy(stateless=(), stateful=(), default=("aws:forward_to_sfe",), fragment=("aws:forward_to_sfe",)):
    """A policy of stateless groups (priority 10, 20, ...) and stateful groups."""
    return parse_policy({"FirewallPolicy": {
        "StatelessRuleGroupReferences": [{"ResourceArn": g["RuleGroupResponse"]["RuleGroupName"],
                                          "Priority": 10 * i} for i, g in enumerate(stateless, 1)],
        "StatelessDefaultActions": list(default), "StatelessFragmentDefaultActions": list(fragment),
        "StatefulRuleGroupReferences": [{"ResourceArn": g["RuleGroupName"]} for g in stateful]},
        "RuleGroups": [*stateless, *stateful]}, "test policy")


@pytest.fixture
def enforce(nfwlab: Lab):
    """Applies a policy (arguments of `policy`) to the session lab; the lab's own policy afterwards."""
    def apply(**parts) -> Lab:
        nfwlab.apply_policy(policy(**parts))
        return nfwlab
    yield apply
    nfwlab.apply_policy(nfwlab.policy)


@pytest.fixture(scope="module")
def quiet_lab(request):
    """A lab of its own: the session lab carries other tests' traffic (dropped connections whose ends the
    kernel retransmits for a minute), and counters add up only at a quiet moment."""
    lab = Lab(worker_lab_name(f"{request.config.getoption('--nfwlab-name')}-metrics"))
    lab.down()
    lab.up("nat-first")
    try:
        yield lab
    finally:
        lab.down()


def metric(lab: Lab, name: str, engine: str, custom: str | None = None) -> int:
    return sum(m.value for m in lab.metrics() if m.name == name and dict(m.dimensions)["Engine"] == engine
               and dict(m.dimensions).get("CustomAction") == custom)


def wait_metric(lab: Lab, name: str, engine: str, at_least: int, custom: str | None = None) -> int:
    """Until the counter reaches `at_least` (Suricata merges its counters every second)."""
    Wait(f"{name} (Engine={engine}, CustomAction={custom}) >= {at_least}", 10, interval=0.2).until(
        lambda: metric(lab, name, engine, custom) >= at_least,
        report=lambda: f"it is {metric(lab, name, engine, custom)}")
    return metric(lab, name, engine, custom)


def settled(lab: Lab) -> dict:
    """Every counter, once two readings 1.2 s apart agree (no traffic, Suricata's counters merged)."""
    readings: list[dict] = []

    def quiet() -> dict | None:
        readings.append({(m.name, dict(m.dimensions)["Engine"], dict(m.dimensions).get("CustomAction")): m.value
                         for m in lab.metrics()})
        return readings[-1] if len(readings) > 1 and readings[-1] == readings[-2] else None
    return Wait("the firewall's counters to settle", 15, interval=1.2).until(quiet, report=lambda: str(readings[-1]))


def test_a_stateless_drop_never_reaches_the_stateful_engine(enforce, nfwlab_ports):
    lab = enforce(stateless=[stateless_group("telnet", rule(1, ["aws:drop", "CountTelnet"], Protocols=[6],
                                                           DestinationPorts=ports(23)), custom=[COUNT_TELNET])],
                  stateful=[SEEN_23_24])
    dropped = metric(lab, "Packets", "Stateless", "telnet")
    mark, telnet, other = lab.log_mark(), next(nfwlab_ports), next(nfwlab_ports)
    result = lab.fetch("server-a", f"http://{WEB_SERVER}:23/", timeout=2, local_port=telnet)
    assert result.failure == "timeout", f"a stateless drop leaves the client waiting: {result.describe()}"
    wait_metric(lab, "Packets", "Stateless", dropped + 1, "telnet")  # the stateless engine's own record
    # Port 24 is not in the stateless rule: it reaches Suricata, whose alert rule fires for that flow, found by its
    # client port (the rule works, and so does the filter below).
    lab.start_fetch("server-a", f"http://{WEB_SERVER}:24/", timeout=2, local_port=other)
    lab.wait_for_alert({"dest_port": 24, "alert.signature_id": 23, "src_port": other}, since=mark)
    seen = [r for r in lab.eve.records(since=mark.eve) if telnet in (r.get("src_port"), r.get("dest_port"))]
    assert seen == [], f"Suricata saw the port 23 flow: {seen}"


def test_a_stateless_pass_skips_the_stateful_engine(enforce, nfwlab_ports):
    passes_http = stateless_group("pass-http", rule(1, ["aws:pass"], Protocols=[6], DestinationPorts=ports(80)),
                                  rule(2, ["aws:pass"], Protocols=[6], SourcePorts=ports(80)))
    lab = enforce(stateless=[passes_http], stateful=[DENY_BLOCKED])
    mark, http = lab.log_mark(), next(nfwlab_ports)
    passes(lab, "http://blocked.example/", http)  # the stateless pass let it through, unseen by the deny list
    # Over TLS the same name reaches the stateful engine and is dropped: its alert, found by its own client port
    # as the HTTP flow's records would be, closes the window.
    blocked(lab, "https://blocked.example/", next(nfwlab_ports), {"tls.sni": "blocked.example"})
    seen = [r for r in lab.eve.records(since=mark.eve) if http in (r.get("src_port"), r.get("dest_port"))]
    assert seen == [], f"Suricata saw the passed HTTP flow: {seen}"
    assert metric(lab, "PassedPackets", "Stateless") >= 4  # handshake, request and response, both ways


def test_forward_to_sfe_reaches_a_stateful_drop_and_the_default_drops_the_rest(enforce, nfwlab_ports):
    https = stateless_group("https", rule(1, ["aws:forward_to_sfe"], Protocols=[6], DestinationPorts=ports(443)),
                            rule(2, ["aws:forward_to_sfe"], Protocols=[6], SourcePorts=ports(443)))
    lab = enforce(stateless=[https], stateful=[DENY_BLOCKED], default=("aws:drop",))
    passes(lab, "https://allowed.example/", next(nfwlab_ports))
    blocked(lab, "https://blocked.example/", next(nfwlab_ports), {"tls.sni": "blocked.example"})
    before, mark, http = metric(lab, "DroppedPackets", "Stateless"), lab.log_mark(), next(nfwlab_ports)
    result = lab.fetch("server-a", "http://allowed.example/", timeout=2, local_port=http)  # port 80: the default
    assert result.failure == "timeout", f"a stateless drop leaves the client waiting: {result.describe()}"
    wait_metric(lab, "DroppedPackets", "Stateless", before + 1)  # ... drops it, unseen by Suricata
    assert [r for r in lab.eve.records(since=mark.eve) if http in (r.get("src_port"), r.get("dest_port"))] == []


@pytest.mark.parametrize("fragment_action, large_answer", [("aws:drop", "silence"),
                                                           ("aws:forward_to_sfe", "ConnectionRefusedError")])
def test_the_fragment_default_action_decides_fragmented_udp(enforce, fragment_action, large_answer):
    """AWS, StatelessFragmentDefaultActions: "The actions to take on a fragmented UDP packet if it doesn't
    match any of the stateless rules in the policy." A small datagram takes the default action (forward)."""
    lab = enforce(fragment=(fragment_action,))
    before = metric(lab, "DroppedPackets", "Stateless")
    small = lab.exec("server-a", ["python3", "-c", UDP_DATAGRAM, WEB_SERVER, "100"])[1].strip()
    large = lab.exec("server-a", ["python3", "-c", UDP_DATAGRAM, WEB_SERVER, "4000"])[1].strip()
    assert small == "ConnectionRefusedError", "an unfragmented datagram crosses (the probe works)"
    assert large == large_answer
    if fragment_action == "aws:drop":
        assert wait_metric(lab, "DroppedPackets", "Stateless", before + 3) >= before + 3  # 4000 bytes: 3 fragments


def test_metrics_add_up_after_a_known_mix(quiet_lab, nfwlab_ports):
    lab = quiet_lab
    lab.apply_policy(policy(stateless=[stateless_group("telnet", rule(1, ["aws:drop", "CountTelnet"], Protocols=[6],
                                                                     DestinationPorts=ports(23)),
                                                       custom=[COUNT_TELNET])],
                            stateful=[DENY_BLOCKED]))
    start = settled(lab)  # Suricata's counters lag by up to a second: start from a quiet moment
    lab.start_fetch("server-a", f"http://{WEB_SERVER}:23/", timeout=2)
    passes(lab, "https://allowed.example/", next(nfwlab_ports))
    blocked(lab, "https://blocked.example/", next(nfwlab_ports), {"tls.sni": "blocked.example"},
            timeout=3)  # its client retransmits for 3 s, then stops
    wait_metric(lab, "DroppedPackets", "Stateful", start[("DroppedPackets", "Stateful", None)] + 1)
    wait_metric(lab, "Packets", "Stateless", start[("Packets", "Stateless", "telnet")] + 1, "telnet")

    def totals() -> dict:
        return {(m.name, dict(m.dimensions)["Engine"]): m.value - start[(m.name, dict(m.dimensions)["Engine"], None)]
                for m in lab.metrics() if "CustomAction" not in dict(m.dimensions)}

    def add_up() -> bool:
        """Once the requests are over and Suricata merged its counters (every second), every packet the
        stateless chain saw is one Suricata saw or one the chain dropped, and Suricata's add up."""
        d = totals()
        stateful = sum(d[(n, "Stateful")] for n in ("PassedPackets", "DroppedPackets", "RejectedPackets",
                                                    "InvalidDroppedPackets", "OtherDroppedPackets"))
        return (stateful == d[("ReceivedPackets", "Stateful")] and d[("ReceivedPackets", "Stateless")]
                == d[("ReceivedPackets", "Stateful")] + d[("DroppedPackets", "Stateless")])
    Wait("the counters to add up", 15, interval=0.5).until(add_up, report=lambda: str(totals()))
    d = totals()
    assert d[("PassedPackets", "Stateless")] == 0  # nothing here is passed by the stateless engine
    assert d[("DroppedPackets", "Stateless")] == (metric(lab, "Packets", "Stateless", "telnet")
                                                  - start[("Packets", "Stateless", "telnet")])
    assert d[("RejectedPackets", "Stateful")] == 0 and d[("DroppedPackets", "Stateful")] >= 1


def test_the_prometheus_exporter_serves_only_its_own_host(nfwlab):
    exporter = MetricsExporter(nfwlab.metrics, port=0)
    threading.Thread(target=exporter.serve_forever, daemon=True).start()
    try:
        answer = requests.get(exporter.url, timeout=10)
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert 'nfw_received_packets_total{availability_zone="ap-northeast-1a",custom_action="",engine="Stateful"' \
               in answer.text
        forged = requests.get(exporter.url, headers={"Host": f"evil.example:{exporter.port}"}, timeout=10)
        assert forged.status_code == 421 and "nfw_" not in forged.text
        assert "Access-Control-Allow-Origin" not in answer.headers
    finally:
        exporter.shutdown()
        exporter.server_close()


def kill_suricata(lab: Lab) -> None:
    """Suricata dies on its own (its process killed), not stopped by the lab."""
    pid = lab.exec("firewall", ["pidof", "suricata"])[1].split()
    lab.exec("firewall", ["kill", "-KILL", *pid])


@pytest.mark.parametrize("stop", ["engine stop", "killed"])
def test_a_stateless_pass_still_fails_closed_with_the_engine_down(enforce, stop):
    """The endpoint fails as a whole: with the stateful engine down, what the stateless engine passes is
    dropped too (the lab's NFW-PASS chain counts it), whether the lab stopped it or it died."""
    passes_http = stateless_group("pass-http", rule(1, ["aws:pass"], Protocols=[6], DestinationPorts=ports(80)),
                                  rule(2, ["aws:pass"], Protocols=[6], SourcePorts=ports(80)))
    lab = enforce(stateless=[passes_http])
    assert lab.fetch("server-a", "http://allowed.example/").status == 200
    if stop == "engine stop":
        lab.stop_firewall_engine()
    else:
        kill_suricata(lab)
        Wait("the node's supervisor to close the stateless pass path", 10, interval=0.1).until(
            lambda: "-j DROP" in lab.exec("firewall", ["iptables", "-S", "NFW-PASS"])[1])
    try:
        lab.start_fetch("server-a", "http://allowed.example/", timeout=2)

        def gate_drops() -> int:
            listing = lab.exec("firewall", ["iptables", "-nvx", "-L", "NFW-PASS"])[1]
            return int(listing.splitlines()[2].split()[0])  # the chain's one rule: its packet count
        Wait("the stopped endpoint to drop the stateless pass", 10, interval=0.2).until(lambda: gate_drops() >= 1)
        assert "DROP" in lab.exec("firewall", ["iptables", "-S", "NFW-PASS"])[1]
    finally:
        lab.restart_firewall_engine()
    assert lab.fetch("server-a", "http://allowed.example/").status == 200
