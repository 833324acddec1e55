"""The case runner's pure logic (lab/regress.py): planning against a topology, waves, source ports, flow keys,
deciding a verdict from the firewall's records, comparing with the case, diffing two runs. No Docker."""
import json
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from lab.cases import CaseError, parse_cases
from lab.errors import StateError
from lab.model import load_topology
from lab.regress import (
    REJECT_GRACE,
    FlowRecords,
    Outcome,
    PortLedger,
    Probe,
    Runner,
    batches,
    check_cases,
    compare,
    decide,
    diff_runs,
    plan,
    record_keys,
    waves,
)
from lab.results import CaseResult, CaseRun, Seen

ROOT = Path(__file__).resolve().parents[2]
NAT_FIRST = load_topology(ROOT / "topologies" / "nat-first.yaml").vpc
MULTI_AZ = load_topology(ROOT / "topologies" / "multi-az.yaml").vpc
FILE = Path("cases/runner.yaml")
NAT = "10.0.13.92"
SERVER_A = "10.0.136.108"
WEB = "203.0.113.10"


def cases(*items, **defaults):
    """Cases parsed from a file of `items` (each a mapping) with the given defaults."""
    data = {"cases": list(items)}
    if defaults:
        data["defaults"] = defaults
    return parse_cases(data, FILE).cases


def c(name, **fields):
    return {"name": name, "from": "server-a", "to": "blocked.example", "protocol": "tls", "expect": "drop", **fields}


def one(vpc=NAT_FIRST, sport=10001, **fields):
    """The probe of a single case, given a source port as the runner would."""
    (p,) = plan(cases(c("case", **fields)), vpc)
    return Probe(p.case, p.index, p.server, p.address, sport, p.expected_source)


# ------------------------------------------------------------------ planning
def test_plan_resolves_sources_destinations_and_logged_sources():
    probes = plan(cases(
        c("from a server", logged_source="nat-gateway"),
        c("from the subnet 1", **{"from": "private"}),
        c("from the subnet 2", **{"from": "private"}),
        c("from the subnet 3", **{"from": "private"}, logged_source="server-a"),
        c("to an address", to="203.0.113.77", protocol="icmp"),
        c("logged as an address", logged_source="198.51.100.10"),
        c("logged as the NAT gateway's id", logged_source="nat-0c3d4e5f6a7b80001"),
    ), NAT_FIRST)
    assert [(p.index, p.server, p.address, p.source_port, p.expected_source) for p in probes] == [
        (0, "server-a", IPv4Address(WEB), 0, IPv4Address(NAT)),
        (1, "server-a", IPv4Address(WEB), 0, None),  # a subnet's servers in turn
        (2, "server-b", IPv4Address(WEB), 0, None),
        (3, "server-a", IPv4Address(WEB), 0, IPv4Address(SERVER_A)),
        (4, "server-a", IPv4Address("203.0.113.77"), 0, None),  # an address of the internet stays
        (5, "server-a", IPv4Address(WEB), 0, IPv4Address("198.51.100.10")),
        (6, "server-a", IPv4Address(WEB), 0, IPv4Address(NAT)),
    ]


@pytest.mark.parametrize("fields, said", [
    pytest.param({"from": "server-z"}, "from: 'server-z' is neither a server nor a subnet with servers "
                 "(servers: server-a, server-b; subnets with servers: private)", id="unknown source"),
    pytest.param({"from": "public"}, "from: 'public' is neither a server nor a subnet with servers", id="subnet without servers"),
    pytest.param({"to": "192.0.2.5"}, "to: 192.0.2.5 is not a host address of the lab's internet (203.0.113.0/24, "
                 "but 203.0.113.1, the internet gateway's, and the block's network and broadcast addresses): "
                 "nothing else answers in the lab", id="outside the internet"),
    pytest.param({"to": "203.0.113.1"}, "to: 203.0.113.1 is not a host address of the lab's internet",
                 id="the internet gateway"),
    pytest.param({"to": "203.0.113.0"}, "to: 203.0.113.0 is not a host address", id="the network address"),
    pytest.param({"to": "203.0.113.255"}, "to: 203.0.113.255 is not a host address", id="the broadcast address"),
    pytest.param({"logged_source": "nat-z"}, "logged_source: 'nat-z' is neither an address nor a server or NAT "
                 "gateway of the topology", id="logged_source naming no node"),
    pytest.param({"availability_zone": "ap-northeast-1c"}, "availability_zone: no firewall endpoint in "
                 "'ap-northeast-1c' (endpoints are in ap-northeast-1a)", id="zone without endpoint"),
])
def test_plan_refuses_a_case_that_does_not_fit_naming_case_and_field(fields, said):
    with pytest.raises(CaseError) as e:
        plan(cases(c("fine"), c("misfit", **fields)), NAT_FIRST)
    lines = e.value.message.splitlines()
    assert lines[0] == "1 case(s) do not fit the topology " + NAT_FIRST.source + ":"
    assert lines[1].startswith(f"  {FILE}: cases[1] (misfit): {said}"), lines[1]
    assert "nothing was run" in e.value.hint


def test_plan_reports_every_misfit_at_once():
    with pytest.raises(CaseError) as e:
        plan(cases(c("a", **{"from": "nowhere"}), c("b"), c("c", to="192.0.2.5", logged_source="nobody")), NAT_FIRST)
    lines = e.value.message.splitlines()
    assert lines[0].startswith("3 case(s) do not fit")
    assert [line.split(": ")[1:3] for line in lines[1:]] == [
        ["cases[0] (a)", "from"], ["cases[2] (c)", "to"], ["cases[2] (c)", "logged_source"]]


def test_plan_checks_zones_against_the_topologys_endpoints():
    probes = plan(cases(c("a", availability_zone="ap-northeast-1a"),
                        c("c", **{"from": "private-c"}, availability_zone="ap-northeast-1c", logged_source="nat-c")),
                  MULTI_AZ)
    assert [(p.server, p.expected_source) for p in probes] == [("server-a", None), ("server-c", IPv4Address("10.0.45.10"))]
    with pytest.raises(CaseError, match=r"no firewall endpoint in 'ap-northeast-1d' \(endpoints are in "
                                        r"ap-northeast-1a, ap-northeast-1c\)"):
        plan(cases(c("d", availability_zone="ap-northeast-1d")), MULTI_AZ)


def test_probe_transport_and_key():
    assert (one().transport, one().key()) == ("TCP", ("TCP", 10001, WEB, 443))
    assert one(protocol="dns", to="example.test").key() == ("UDP", 10001, WEB, 53)
    assert one(protocol="http").transport == "TCP"
    assert one(protocol="icmp", to="203.0.113.9").key() == ("ICMP", "203.0.113.9")


# ------------------------------------------------------------------ waves
def test_icmp_cases_to_one_address_wait_for_the_next_wave():
    probes = plan(cases(
        c("ping 1", protocol="icmp", to=WEB), c("tls 1"), c("ping 2", protocol="icmp", to=WEB),
        c("ping other", protocol="icmp", to="203.0.113.11"), c("udp", protocol="udp", port=7, to=WEB),
        c("ping 3", protocol="icmp", to=WEB), c("tls 2", protocol="http")), NAT_FIRST)
    assert [[p.case.name for p in w] for w in waves(probes)] == [
        ["ping 1", "tls 1", "ping other", "udp", "tls 2"], ["ping 2"], ["ping 3"]]


def test_tcp_cases_all_run_in_the_first_wave():
    probes = plan(cases(*[c(f"tls {i}") for i in range(5)]), NAT_FIRST)
    assert waves(probes) == [probes]
    assert waves([]) == []


# ---------------------------------------------------------------- source ports
class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def ledger(tmp_path, clock, ports=(10, 11, 12, 13, 14), reuse_after=400.0):
    return PortLedger(tmp_path / "state" / "probe-ports.json", ports, reuse_after, clock)


def test_ports_are_distinct_and_continue_where_the_last_call_stopped(tmp_path):
    clock = Clock()
    ports = ledger(tmp_path, clock)
    assert ports.take(2) == [10, 11]
    assert ports.take(2) == [12, 13]
    saved = json.loads((tmp_path / "state" / "probe-ports.json").read_text())
    assert saved == {"next": 4, "used": {"10": 1000.0, "11": 1000.0, "12": 1000.0, "13": 1000.0}}


def test_ports_are_not_reused_within_reuse_after(tmp_path):
    clock = Clock()
    ports = ledger(tmp_path, clock)
    assert ports.take(4) == [10, 11, 12, 13]
    clock.now += 100
    assert ports.take(1) == [14]
    clock.now += 299.9  # 10..13 were taken 399.9 s ago
    with pytest.raises(StateError) as e:
        ports.take(1)
    assert e.value.message == ("1 source ports are needed but only 0 of 5 have gone unused for 400s "
                               "(the firewall may still remember their flows)")
    assert e.value.hint == "wait 0s, or run fewer cases at once"


def test_too_few_free_ports_says_how_long_to_wait(tmp_path):
    clock = Clock()
    ports = ledger(tmp_path, clock)
    assert ports.take(3) == [10, 11, 12]
    clock.now += 150
    with pytest.raises(StateError) as e:
        ports.take(3)
    assert e.value.message.startswith("3 source ports are needed but only 2 of 5 have gone unused for 400s")
    assert e.value.hint == "wait 250s, or run fewer cases at once"
    assert ports.take(2) == [13, 14]  # a refusal takes nothing


def test_ports_are_reused_after_reuse_after_from_where_it_stopped(tmp_path):
    clock = Clock()
    ports = ledger(tmp_path, clock)
    assert ports.take(4) == [10, 11, 12, 13]
    clock.now += 400.0
    assert ports.take(3) == [14, 10, 11]  # wraps around
    clock.now += 10
    assert ports.take(2) == [12, 13]
    with pytest.raises(StateError):
        ports.take(1)


def test_the_ledger_persists_across_instances(tmp_path):
    clock = Clock()
    assert ledger(tmp_path, clock).take(2) == [10, 11]
    assert ledger(tmp_path, clock).take(2) == [12, 13]
    clock.now += 1
    with pytest.raises(StateError, match="only 1 of 5"):
        ledger(tmp_path, clock).take(2)


def test_a_corrupt_ledger_starts_afresh(tmp_path):
    path = tmp_path / "state" / "probe-ports.json"
    path.parent.mkdir()
    path.write_text("{not json")
    assert PortLedger(path, (10, 11), 400.0, Clock()).take(2) == [10, 11]


# ------------------------------------------------------------------ flow keys
def test_record_keys_find_a_tcp_or_udp_flow_from_both_directions():
    out = {"proto": "TCP", "src_ip": NAT, "src_port": 10001, "dest_ip": WEB, "dest_port": 443}
    back = {"proto": "TCP", "src_ip": WEB, "src_port": 443, "dest_ip": NAT, "dest_port": 10001}
    assert record_keys(out) == [("TCP", 10001, WEB, 443), ("TCP", 443, NAT, 10001)]
    assert record_keys(back) == [("TCP", 443, NAT, 10001), ("TCP", 10001, WEB, 443)]
    assert one().key() in record_keys(out) and one().key() in record_keys(back)
    udp = {"proto": "udp", "src_ip": NAT, "src_port": "10002", "dest_ip": WEB, "dest_port": "53"}
    assert record_keys(udp) == [("UDP", 10002, WEB, 53), ("UDP", 53, NAT, 10002)]


def test_record_keys_find_an_icmp_flow_by_its_addresses():
    assert record_keys({"proto": "ICMP", "src_ip": NAT, "dest_ip": WEB, "icmp_type": 8}) == [
        ("ICMP", WEB), ("ICMP", NAT)]
    assert one(protocol="icmp", to=WEB).key() in record_keys({"proto": "ICMP", "src_ip": WEB, "dest_ip": NAT})
    assert record_keys({"proto": "IPv6-ICMP", "src_ip": "a", "dest_ip": "b"}) == []
    assert record_keys({"event_type": "stats"}) == []


# ------------------------------------------------------------------ deciding
NOW = 1000.0
TCP_FLOW = {"proto": "TCP", "src_ip": NAT, "src_port": 10001, "dest_ip": WEB, "dest_port": 443, "flow_id": 7}
DROP = {**TCP_FLOW, "event_type": "drop"}
ALERT_DROP = {**TCP_FLOW, "event_type": "alert", "alert": {"signature_id": 5, "action": "blocked"},
              "verdict": {"action": "drop"}}
ALERT_REJECT = {**ALERT_DROP, "verdict": {"action": "drop", "reject": ["tcp-reset"]}}
ALERT_ONLY = {**TCP_FLOW, "event_type": "alert", "alert": {"signature_id": 9, "action": "allowed"},
              "verdict": {"action": "alert"}}


def ev(*events, zone="ap-northeast-1a"):
    return [(zone, e) for e in events]


def test_an_answer_is_a_pass_whatever_was_logged():
    got = Outcome("answer", "TLS handshake with blocked.example", NOW)
    assert decide(one(), got, ev(ALERT_ONLY), NOW, None) == ("pass", "answer: TLS handshake with blocked.example")
    assert decide(one(), got, [], NOW, None) == ("pass", "answer: TLS handshake with blocked.example")


def test_a_blocking_alert_with_a_drop_verdict_is_a_drop_at_once():
    assert decide(one(), None, ev(ALERT_ONLY, ALERT_DROP), NOW, NOW) == ("drop", "blocking alert 5 of flow 7")


def test_a_verdict_with_a_reject_is_a_reject():
    verdict, evidence = decide(one(), None, ev(ALERT_REJECT), NOW, NOW)
    assert verdict == "reject"
    assert evidence.startswith("blocking alert 5 of flow 7, verdict ") and "tcp-reset" in evidence
    verdict, evidence = decide(one(), Outcome("reset", "connection reset", NOW), ev(DROP, ALERT_REJECT), NOW, NOW)
    assert verdict == "reject" and evidence.startswith("drop record of flow 7, verdict ")
    assert evidence.endswith("; client: connection reset")


def test_a_tcp_drop_record_alone_waits_for_the_client_within_the_grace():
    assert decide(one(), None, ev(DROP), NOW, NOW) == (
        None, "a drop record, waiting for the client's outcome (drop or reset)")
    assert decide(one(), None, ev(DROP), NOW + REJECT_GRACE - 0.01, NOW)[0] is None
    assert decide(one(), None, ev(DROP), NOW + REJECT_GRACE, NOW) == ("drop", "drop record of flow 7")
    # the client's timeout ends the wait too
    assert decide(one(), Outcome("timeout", "no answer in 5s", NOW), ev(DROP), NOW, NOW) == (
        "drop", "drop record of flow 7")


def test_a_request_that_could_not_be_made_is_no_verdict_even_with_a_drop_record():
    # An error (no route, a port it could not bind) is not what a drop or a reject does to a client.
    failed = Outcome("error", "OSError: No route to host", NOW)
    assert decide(one(), failed, ev(DROP), NOW + REJECT_GRACE, NOW) == (
        None, "the request could not be made: OSError: No route to host; the firewall also logged a drop of the flow")
    assert decide(one(), failed, ev(ALERT_ONLY, ALERT_DROP), NOW, NOW)[0] is None
    assert decide(one(), failed, [], NOW, None) == (None, "the request could not be made: OSError: No route to host")


def test_a_drop_record_and_a_client_reset_is_a_reject():
    assert decide(one(), Outcome("reset", "connection reset by peer", NOW), ev(DROP), NOW, NOW) == (
        "reject", "drop record of flow 7; the client was reset (connection reset by peer)")


def test_a_udp_drop_record_is_a_drop_at_once():
    p = one(protocol="udp", port=7, to=WEB)
    udp_drop = {**DROP, "proto": "UDP", "dest_port": 7}
    assert decide(p, None, ev(udp_drop), NOW, NOW) == ("drop", "drop record of flow 7")


def test_a_timeout_with_records_but_no_drop_is_undecided_saying_the_firewall_logged_it():
    flow = {**TCP_FLOW, "event_type": "flow"}
    tls = {**TCP_FLOW, "event_type": "tls"}
    assert decide(one(), Outcome("timeout", "no answer in 5s", NOW), ev(tls, flow, ALERT_ONLY), NOW, None) == (
        None, "no answer (no answer in 5s), yet the firewall logged the flow (alert, flow, tls) without dropping "
              "it: the answer was lost after the firewall")


def test_a_timeout_with_no_record_is_undecided():
    verdict, evidence = decide(one(), Outcome("timeout", "no answer in 5s", NOW), [], NOW, None)
    assert verdict is None
    assert evidence == ("no answer (no answer in 5s) and no record of the flow in the firewall's logs: see "
                        "`nfwlab status` (is every engine running?)")


def test_other_undecided_outcomes():
    assert decide(one(), None, [], NOW, None) == (None, "waiting")
    assert decide(one(), Outcome("reset", "RST", NOW), [], NOW, None) == (
        None, "the client was reset (RST) but the firewall logged no drop of the flow")
    assert decide(one(), Outcome("error", "no route to host", NOW), [], NOW, None) == (
        None, "the request could not be made: no route to host")


EARLIER_ICMP = [("ap-northeast-1a", {"event_type": "drop", "proto": "ICMP", "src_ip": NAT, "dest_ip": WEB,
                                     "flow_id": 42, "timestamp": "2026-11-25T14:20:00.000000+0000"})]


def test_an_icmp_timeout_on_a_flow_dropped_before_the_run_is_a_drop_naming_it():
    p = one(protocol="icmp", to=WEB)
    assert decide(p, Outcome("timeout", "no reply", NOW), [], NOW, None, EARLIER_ICMP, set()) == (
        "drop", "no answer; the firewall still tracks the ICMP flow 42 between these addresses, which it dropped "
                "at 2026-11-25T14:20:00.000000+0000 (before this run)")


def test_an_icmp_timeout_after_that_flow_ended_is_not_blamed_on_it():
    p = one(protocol="icmp", to=WEB)
    verdict, evidence = decide(p, Outcome("timeout", "no reply", NOW), [], NOW, None, EARLIER_ICMP, {42})
    assert verdict is None and "no record of the flow" in evidence
    passed_earlier = [("ap-northeast-1a", {**EARLIER_ICMP[0][1], "event_type": "flow"})]
    assert decide(p, Outcome("timeout", "no reply", NOW), [], NOW, None, passed_earlier, set())[0] is None


# ------------------------------------------------------------------ comparing
def seen(verdict="drop", alerts=(), source=NAT, zone="ap-northeast-1a"):
    return Seen(verdict, "drop record of flow 7", "server-a", 10001, alerts, source, zone, 7, 0.5)


def test_a_match_gives_no_sentence():
    p = one(alert={"sid": 5}, logged_source="nat-gateway", availability_zone="ap-northeast-1a")
    assert compare(p, seen(alerts=((1, "other"), (5, "blocked")))) == ()
    assert compare(one(alert={"message": "blocked"}), seen(alerts=((5, "blocked"),))) == ()
    assert compare(one(alert="none", expect="pass"), seen("pass")) == ()


@pytest.mark.parametrize("fields, saw, sentence", [
    pytest.param({}, seen("pass"), "expected drop, saw pass (drop record of flow 7)", id="verdict"),
    pytest.param({"alert": 5}, seen(alerts=((1, "deny list"),)), "expected alert sid 5, saw 1 'deny list'", id="alert sid"),
    pytest.param({"alert": {"sid": 5}}, seen(), "expected alert sid 5, saw no alert", id="alert missing"),
    pytest.param({"alert": {"sid": 5, "message": "x"}}, seen(alerts=((5, "y"),)),
                 "expected alert sid 5 \"x\", saw 5 'y'", id="alert message"),
    pytest.param({"alert": "none"}, seen(alerts=((5, "blocked"),)), "expected no alert, saw 5 'blocked'",
                 id="alert absent but seen"),
    pytest.param({"logged_source": "nat-gateway"}, seen(source=SERVER_A),
                 f"expected the firewall to log the source {NAT} (nat-gateway), it logged {SERVER_A}", id="logged node"),
    pytest.param({"logged_source": NAT}, seen(source=None),
                 f"expected the firewall to log the source {NAT}, it logged no record of the flow", id="logged address"),
    pytest.param({"availability_zone": "ap-northeast-1a"}, seen(zone=None),
                 "expected the endpoint in ap-northeast-1a to log it, saw no record", id="AZ"),
])
def test_each_mismatch_gives_one_sentence(fields, saw, sentence):
    assert compare(one(**fields), saw) == (sentence,)


def test_every_mismatch_is_listed():
    p = one(vpc=MULTI_AZ, alert=5, logged_source="nat-a", availability_zone="ap-northeast-1a")
    assert compare(p, seen("pass", source="10.0.45.10", zone="ap-northeast-1c")) == (
        "expected drop, saw pass (drop record of flow 7)",
        "expected alert sid 5, saw no alert",
        "expected the firewall to log the source 10.0.13.92 (nat-a), it logged 10.0.45.10",
        "expected the endpoint in ap-northeast-1a to log it, saw ap-northeast-1c")


def _write(path, *records):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def test_the_result_counts_the_alert_logs_alerts_but_not_the_labs_explain_alerts(tmp_path):
    eve, alert_log = tmp_path / "firewall" / "eve.json", tmp_path / "alert.log"
    explain = {**ALERT_DROP, "alert": {"signature_id": 9000001, "signature": "nfwlab: dropped by the default action",
                                       "metadata": {"nfwlab": ["explain"]}}}
    blocked = {**ALERT_DROP, "alert": {"signature_id": 5, "signature": "deny list", "action": "blocked"}}
    _write(eve, {**DROP, "src_port": 9999})  # before the mark: not this run's
    records = FlowRecords({"firewall": (eve, "ap-northeast-1a")}, alert_log)
    records.mark()
    _write(eve, {**TCP_FLOW, "event_type": "tls"}, DROP, blocked, explain)
    _write(alert_log, {"availability_zone": "ap-northeast-1c", "event": blocked},
           {"availability_zone": "ap-northeast-1c", "event": explain},
           {"availability_zone": "ap-northeast-1c", "event": blocked},
           {"availability_zone": "ap-northeast-1c", "event": {**DROP, "src_port": 9999}})
    with open(eve, "a") as f:
        f.write('{"event_type": "drop", "partial line')  # not yet whole: left for the next poll
    records.poll()
    p = one(alert=5, logged_source="nat-gateway")
    assert [e["event_type"] for _, e in records.by_key[p.key()]] == ["tls", "drop", "alert", "alert"]
    assert records.by_key.get(("TCP", 9999, WEB, 443)) is None
    result = Runner(None)._result(p, ("drop", "drop record of flow 7", 0.75), records)
    assert result.seen == Seen("drop", "drop record of flow 7", "server-a", 10001, ((5, "deny list"),), NAT,
                               "ap-northeast-1c", 7, 0.75)
    assert result.problems == () and result.status == "passed"
    undecided = Runner(None)._result(p, (None, "waiting", 9.0), records)
    assert (undecided.status, undecided.error) == ("error", "waiting")


def test_history_finds_an_icmp_flow_written_before_the_mark(tmp_path):
    eve = tmp_path / "firewall" / "eve.json"
    old = {"event_type": "drop", "proto": "ICMP", "src_ip": NAT, "dest_ip": WEB, "flow_id": 42}
    other = {"event_type": "drop", "proto": "ICMP", "src_ip": NAT, "dest_ip": "203.0.113.11", "flow_id": 43}
    _write(eve, old, other)
    records = FlowRecords({"firewall": (eve, "ap-northeast-1a")}, tmp_path / "alert.log")
    records.mark()
    marks = dict(records.offsets)  # as the runner keeps them: history is what came before
    _write(eve, {**old, "event_type": "flow", "flow_id": 44})
    records.poll()
    assert records.history(("ICMP", WEB), lambda path: marks[path]) == [("firewall", old)]
    assert records.ended == {44}


# ------------------------------------------------------------------ batches and diffs
def test_batches_group_cases_by_policy_and_topology_in_first_seen_order():
    data = {"policy": "a.json", "cases": [c("1"), c("2")], "groups": [
        {"name": "g", "topology": "multi-az", "cases": [c("3")]},
        {"name": "h", "policy": "b.json", "cases": [c("4")]},
        {"name": "i", "topology": "multi-az", "cases": [c("5")]}]}
    got = batches(parse_cases(data, FILE).cases)
    assert [([Path(str(k[0])).name, k[1]], [x.name for x in v]) for k, v in got] == [
        (["a.json", None], ["1", "2"]), (["a.json", "multi-az"], ["g / 3", "i / 5"]), (["b.json", None], ["h / 4"])]


DIFF_CASES = {x.name: x for x in cases(
    c("same"), c("verdict", expect="pass"), c("sid", alert=6), c("source", logged_source=SERVER_A),
    c("message only"), c("zone only"), c("new only"))}


def result(name, s):
    x = DIFF_CASES[name]
    p = plan([x], NAT_FIRST)[0]
    return CaseResult(x, s, compare(p, s))


def run(*results):
    return CaseRun("cases/runner.yaml", "default", tuple(results), 1.0, 0.0)


def test_diff_rows_only_for_changed_verdicts_sids_or_logged_sources():
    old = run(result("same", seen()), result("verdict", seen("drop")), result("sid", seen(alerts=((5, "a"),))),
              result("source", seen(source=NAT)), result("message only", seen(alerts=((5, "a"),))),
              result("zone only", seen()))
    new = run(result("same", seen()), result("verdict", seen("pass")), result("sid", seen(alerts=((7, "a"),))),
              result("source", seen(source=SERVER_A)), result("message only", seen(alerts=((5, "b"),))),
              result("zone only", seen(zone="ap-northeast-1c")), result("new only", seen("pass")))
    diff = diff_runs("old.json", "new.json", old, new)
    assert (diff.old_policy, diff.new_policy, diff.old, diff.new) == ("old.json", "new.json", old, new)
    assert [(r.case.name, r.changed, r.expected) for r in diff.rows] == [
        ("verdict", ("verdict",), True),  # now passes as the case expects
        ("sid", ("alert",), False),  # sid 7, the case wants 6
        ("source", ("logged_source",), True)]
    assert diff.rows[0].old.verdict == "drop" and diff.rows[0].new.verdict == "pass"
    assert diff.exit_code == 1


def test_a_diff_of_only_expected_changes_exits_zero():
    old = run(result("verdict", seen("drop")), result("same", seen()))
    new = run(result("verdict", seen("pass")), result("same", seen()))
    diff = diff_runs("old.json", "new.json", old, new)
    assert [(r.case.name, r.changed, r.expected) for r in diff.rows] == [("verdict", ("verdict",), True)]
    assert diff.exit_code == 0
    assert diff_runs("a", "b", old, old).rows == ()


def test_cases_under_both_kinds_of_policy_are_refused_before_anything_runs(tmp_path):
    """A lab runs a Classic or a Next Generation policy, not both (AWS: a firewall "uses one or the other")."""
    from lab.lab import Lab
    one = {"from": "server-a", "to": "blocked.example", "protocol": "tls", "expect": "drop"}
    data = {"groups": [{"name": "classic", "policy": str(ROOT / "policies/deny-domains.json"),
                        "cases": [{"name": "a", **one}]},
                       {"name": "ng", "policy": str(ROOT / "policies/next-generation.json"),
                        "cases": [{"name": "b", **one}]}]}
    lab = Lab("unitkinds", state_dir=tmp_path / "state")
    with pytest.raises(CaseError, match="both kinds of policy"):
        check_cases(lab, parse_cases(data, tmp_path / "c.yaml").cases)
    assert not (tmp_path / "state").exists(), "nothing was made"


def test_a_late_packet_the_endpoint_drops_as_a_new_midstream_flow_is_not_the_requests_verdict():
    """The server's last FIN reaching the endpoint after it forgot the answered flow is dropped as a new flow
    (stream midstream): the request was answered, not dropped."""
    tls = {**TCP_FLOW, "event_type": "tls", "timestamp": "2026-01-01T00:00:00.000001+0000"}
    late = {**TCP_FLOW, "src_ip": WEB, "src_port": 443, "dest_ip": NAT, "dest_port": 10001, "flow_id": 8,
            "event_type": "drop", "drop": {"reason": "stream midstream", "fin": True},
            "timestamp": "2026-01-01T00:00:01.000001+0000"}
    assert decide(one(), None, ev(tls, late, zone="firewall"), NOW + 5, NOW) == (None, "waiting")
    got = Outcome("answer", "HTTP 200", NOW)
    assert decide(one(), got, ev(tls, late, zone="firewall"), NOW, NOW)[0] == "pass"
    # Without an earlier flow of the request there, a midstream drop is the verdict (asymmetric routing).
    verdict, evidence = decide(one(), None, ev(late, zone="firewall"), NOW + 5, NOW)
    assert verdict == "drop" and "flow 8" in evidence
