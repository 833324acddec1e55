"""Flow bypass, the parts that are pure logic: the firewall node's supervisor (compose/images/firewall.py) holds
the engine's FLOW records of a bypassed flow until the flow's conntrack entry ends and sends them out with
conntrack's counts; the lab reads conntrack's listing (lab/engine.py)."""
import importlib.util
from pathlib import Path

import pytest

from lab.engine import BYPASS_DEPTH, BYPASS_MARK, conntrack_entry

ROOT = Path(__file__).resolve().parent.parent.parent
LINE = ("ipv4     2 tcp      6 1 TIME_WAIT src=10.0.136.108 dst=203.0.113.10 sport=38878 dport=5201 packets=52352 "
        "bytes=2606211917 src=203.0.113.10 dst=10.0.136.108 sport=5201 dport=38878 packets=47046 bytes=2448632 "
        "[ASSURED] mark=1 use=1")


def load_supervisor(monkeypatch, bypass="1"):
    monkeypatch.setenv("NFWLAB_FLOW_BYPASS", bypass)
    monkeypatch.setenv("NFWLAB_BYPASS_MARK", str(BYPASS_MARK))
    monkeypatch.setenv("NFWLAB_BYPASS_DEPTH", str(BYPASS_DEPTH))
    spec = importlib.util.spec_from_file_location("supervisor", ROOT / "compose/images/firewall.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sup(monkeypatch):
    return load_supervisor(monkeypatch)


class Clock:
    def __init__(self):
        self.t = 1_796_061_600.0

    def __call__(self):
        return self.t


def netflow(src, sport, dst, dport, pkts, flow_id=7):
    return {"timestamp": "2026-11-30T18:00:10.000000+0000", "flow_id": flow_id, "event_type": "netflow",
            "src_ip": src, "src_port": sport, "dest_ip": dst, "dest_port": dport, "proto": "TCP",
            "netflow": {"pkts": pkts, "bytes": pkts * 100, "start": "2026-11-30T18:00:00.000000+0000",
                        "end": "2026-11-30T18:00:01.000000+0000", "age": 1, "min_ttl": 62, "max_ttl": 62}}


def entry(packets, replies):
    return {"proto": "tcp", "src": "10.0.136.108", "dst": "203.0.113.10", "sport": 40000, "dport": 5201,
            "packets": [packets, replies], "bytes": [packets * 1500, replies * 52]}


def tracker(sup, listing):
    written, clock = [], Clock()
    flows = sup.BypassedFlows(written.append, lambda: listing[0], now=clock)
    return flows, written, clock


def test_the_lab_and_the_supervisor_read_conntrack_alike(sup):
    ours = conntrack_entry(LINE)
    assert ours == {"proto": "tcp", "src": "10.0.136.108", "sport": 38878, "dst": "203.0.113.10", "dport": 5201,
                    "state": "TIME_WAIT", "packets": 52352, "bytes": 2606211917, "reply_packets": 47046,
                    "reply_bytes": 2448632, "mark": 1}
    theirs = sup.conntrack_entry(LINE)
    assert theirs["packets"] == [52352, 47046] and theirs["bytes"] == [2606211917, 2448632]
    assert conntrack_entry("conntrack v1.4.7 (conntrack-tools): 1 flow entries have been shown.") is None
    assert sup.conntrack_entry("") is None


def test_a_bypassed_flows_records_wait_for_its_end_and_carry_conntracks_counts(sup):
    listing = [[entry(10, 5)]]
    flows, written, clock = tracker(sup, listing)
    flows.poll()
    flows.engine_bypassed({"event_type": "flow", "flow_id": 7, "flow": {"bypass": "local"}})
    out = netflow("10.0.136.108", 40000, "203.0.113.10", 5201, 3)
    back = netflow("203.0.113.10", 5201, "10.0.136.108", 40000, 2)
    assert flows.hold(out) and flows.hold(back)
    clock.t += 1
    listing[0] = [entry(900, 400)]  # still crossing: nothing is sent out
    flows.poll()
    assert written == []
    clock.t += 30  # long after the engine's own timeout: still held, the flow lives
    flows.poll()
    flows.release()
    assert written == []
    clock.t += 1
    listing[0] = []  # gone from the listing: its DESTROY event, with the final counts, is due
    flows.poll()
    assert written == []
    event = ("[DESTROY] ipv4     2 tcp      6 TIME_WAIT src=10.0.136.108 dst=203.0.113.10 sport=40000 dport=5201 "
             "packets=905 bytes=1357500 src=203.0.113.10 dst=10.0.136.108 sport=5201 dport=40000 packets=402 "
             "bytes=20904 [ASSURED] mark=1")
    flows.destroyed(sup.destroy_event(event))
    assert [(r["src_ip"], r["netflow"]["pkts"], r["netflow"]["bytes"]) for r in written] == [
        ("10.0.136.108", 905, 1357500), ("203.0.113.10", 402, 20904)]
    assert written[0]["netflow"]["age"] == int(written[0]["netflow"]["age"])
    assert written[0]["netflow"]["end"] > written[0]["netflow"]["start"]
    assert out["netflow"]["pkts"] == 3  # the engine's record itself is left as it was


def test_records_of_a_flow_that_ended_first_go_out_at_once(sup):
    listing = [[entry(50, 20)]]
    flows, written, clock = tracker(sup, listing)
    flows.poll()
    listing[0] = []
    clock.t += 0.5
    flows.poll()
    clock.t += sup.NO_EVENT + 1
    flows.poll()  # ended before the engine logged it; no DESTROY event came: the counts last listed
    flows.engine_bypassed({"event_type": "flow", "flow_id": 7, "flow": {"bypass": "local"}})
    flows.hold(netflow("10.0.136.108", 40000, "203.0.113.10", 5201, 3))
    flows.hold(netflow("203.0.113.10", 5201, "10.0.136.108", 40000, 2))
    assert [r["netflow"]["pkts"] for r in written] == [50, 20]


def test_records_no_bypassed_flow_claims_go_out_unchanged_and_others_are_not_held(sup):
    flows, written, clock = tracker(sup, [[]])
    assert not flows.hold(netflow("10.0.136.108", 40001, "203.0.113.10", 443, 3, flow_id=8))  # not bypassed
    flows.engine_bypassed({"event_type": "flow", "flow_id": 9, "flow": {"bypass": "local"}})
    record = netflow("10.0.136.108", 40002, "203.0.113.10", 443, 3, flow_id=9)
    assert flows.hold(record)
    flows.poll()
    assert written == []
    clock.t += sup.UNMATCHED + 1
    flows.poll()
    assert written == [record]


def test_a_failed_conntrack_reading_ends_no_flow(sup):
    listing = [[entry(10, 5)]]
    flows, written, clock = tracker(sup, listing)
    flows.poll()
    flows.engine_bypassed({"event_type": "flow", "flow_id": 7, "flow": {"bypass": "local"}})
    flows.hold(netflow("10.0.136.108", 40000, "203.0.113.10", 5201, 3))
    listing[0] = None
    clock.t += 60
    flows.poll()
    assert written == []


def test_the_bypass_rule_marks_and_bypasses_past_the_depth_and_is_empty_when_off(monkeypatch, tmp_path):
    sup = load_supervisor(monkeypatch)
    assert f"stream_size:either,>,{BYPASS_DEPTH};" in sup.BYPASS_RULE
    assert f"nfq_set_mark:{BYPASS_MARK:#x}/{BYPASS_MARK:#x}; bypass;" in sup.BYPASS_RULE
    assert "noalert;" in sup.BYPASS_RULE and "gid:5;" in sup.BYPASS_RULE
    for bypass, expected in (("1", sup.BYPASS_RULE), ("0", "# flow bypass is off")):
        module = load_supervisor(monkeypatch, bypass)
        module.BYPASS_RULES = str(tmp_path / "flow-bypass.rules")
        module.write_bypass_rules()
        assert (tmp_path / "flow-bypass.rules").read_text().startswith(expected)
    assert "flow-bypass.rules" in (ROOT / "suricata/suricata.yaml").read_text()


def test_flow_bypass_steps_aside_while_the_stateless_engine_must_see_fragments(tmp_path):
    """Keeping marks makes the endpoint track connections, which reassembles fragments before the stateless
    engine: only while the fragment default action hands fragments to the stateful engine anyway."""
    from lab.engine import Engines
    from lab.stateless import Actions, StatelessPolicy, iptables_rules

    engines = Engines(None, None, "unit", ["firewall"], tmp_path)
    assert engines.fragments_reach_the_engine()  # no policy yet
    for action, reach in (("aws:forward_to_sfe", True), ("aws:drop", False), ("aws:pass", False)):
        policy = StatelessPolicy(fragment_default=Actions(action))
        (tmp_path / "stateless.rules").write_text(iptables_rules(policy))
        assert engines.fragments_reach_the_engine() is reach, action


def test_only_destroy_events_of_bypassed_flows_count(sup):
    line = ("[DESTROY] ipv4     2 tcp      6 TIME_WAIT src=10.0.136.108 dst=203.0.113.10 sport=1 dport=2 packets=3 "
            "bytes=4 src=203.0.113.10 dst=10.0.136.108 sport=2 dport=1 packets=5 bytes=6 [ASSURED]")
    assert sup.destroy_event(line) is None  # no mark: not bypassed
    assert sup.destroy_event(line + " mark=2") is None
    assert sup.destroy_event(line + " mark=1")["packets"] == [3, 5]
    assert sup.destroy_event(line.replace("[DESTROY]", "[UPDATE]") + " mark=1") is None
