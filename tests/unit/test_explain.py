"""Explain (lab/explain.py): a flow's story, hook by hook, from EVE records shaped as Suricata 8 writes them
(copied from a real lab's eve.json, trimmed)."""
import pytest

from lab.explain import address_matches, explain, packet_rule, port_matches

FLOW = {"src_ip": "10.0.13.92", "dest_ip": "203.0.113.10", "src_port": 54122, "dest_port": 443}
RULES = """# rule group embedded-10
accept:hook tcp:all $HOME_NET any -> any [80,443] (sid:1;)
accept:hook tcp:all any [80,443] -> $HOME_NET any (sid:2;)
accept:hook,alert tls:client_in_progress $HOME_NET any -> any any (sid:3; metadata:nfwlab explain;)
"""
VARS = {"HOME_NET": "[10.0.0.0/16]", "EXTERNAL_NET": "!$HOME_NET"}


def alert(engine: str, sid: int, hook: str | None, policy: str | None, action: str = "allowed", gid: int = 1,
          signature: str = "", verdict: str = "accept", ts: str = "01", **extra) -> dict:
    record = {"timestamp": f"2026-11-30T14:22:52.5{ts}+0000", "flow_id": 7, "event_type": "alert", "proto": "TCP",
              **FLOW, "alert": {"action": action, "engine": engine, "gid": gid, "signature_id": sid,
                                "signature": signature}, "flow": dict(FLOW), "verdict": {"action": verdict},
              "app_proto": "tls", "tls": {"sni": "blocked.example"}, **extra}
    if hook:
        record["firewall"] = {"hook": hook, "policy": policy}
    return record


def test_a_rule_drop_after_the_prior_hook_is_told_hook_by_hook():
    records = [alert("fw", 3, "tls:client_in_progress", "accept:hook,alert", ts="01"),
               alert("fw", 4, "tls:client_hello_done", "drop:flow,alert", "blocked", signature="no blocked",
                     verdict="drop", ts="02")]
    e = explain(7, records, "next-generation", "DROP", RULES, VARS, "fw (az-a)")
    assert [(s.hook, s.direction, s.outcome, s.by) for s in e.firewall] == [
        ("tcp:all", "to server", "accepted", "rule 1"), ("tcp:all", "to client", "accepted", "rule 2"),
        ("tls:client_started", "", "accepted", "rule 3"), ("tls:client_hello", "", "dropped", "rule 4")]
    assert e.verdict == "dropped at tls:client_hello by rule 4"
    assert [s.outcome for s in e.ips] == ["not reached for the blocked traffic"]
    text = e.text()
    assert "TCP 10.0.13.92:54122 -> 203.0.113.10:443 tls (SNI blocked.example), seen by fw (az-a)" in text
    assert 'dropped by rule 4 "no blocked" (scope flow)' in text


def test_the_default_action_and_the_packet_layer_default_are_named():
    records = [alert("fw", 14, "tls:client_hello_done", "drop:flow,alert", "blocked", gid=2,
                     signature="FirewallDefaultAction DROP", verdict="drop")]
    e = explain(7, records, "next-generation", "DROP", RULES, VARS)
    assert e.verdict == "dropped at tls:client_hello by the firewall default action (DROP)"
    syn = alert("fw", 2201000, "packet:filter", "drop:packet,alert", "blocked", verdict="drop")
    syn["dest_port"] = 22
    syn["flow"]["dest_port"] = 22
    e = explain(7, [syn], "next-generation", "DROP", RULES, VARS)
    assert [(s.hook, s.outcome, s.direction) for s in e.firewall] == [("tcp:all", "dropped", "to server")]
    assert e.verdict == "dropped at tcp:all by the firewall default action (DROP)"


def test_an_accept_with_the_ips_bypass_says_the_ips_never_looked():
    records = [alert("fw", 6, "http:request_headers", "accept:flow,pass:flow,alert", ts="01")]
    e = explain(7, records, "next-generation", "DROP", RULES, VARS)
    assert e.firewall[-1].hook == "http1:request_headers" and e.firewall[-1].scope == "flow"
    assert [(s.outcome, s.by) for s in e.ips] == [("bypassed", "rule 6 (BypassIPSEnabled)")]
    assert e.verdict == "accepted" and "has not ended yet" in e.notes[0]


def test_an_ips_drop_after_a_firewall_accept():
    records = [alert("fw", 5, "tls:client_hello_done", "accept:flow,alert", ts="01"),
               alert("td", 200, None, None, "blocked", signature="IPS drop", verdict="drop", ts="02"),
               {"timestamp": "2026-11-30T14:22:59.000000+0000", "flow_id": 7, "event_type": "flow", "proto": "TCP",
                **FLOW, "flow": {"action": "drop"}}]
    e = explain(7, records, "next-generation", "DROP", RULES, VARS)
    assert [(s.outcome, s.by, s.signature) for s in e.ips] == [("dropped", "rule 200", "IPS drop")]
    assert e.verdict == "dropped by the IPS engine by rule 200"


def test_a_classic_flow_is_told_by_its_stateful_alerts():
    records = [alert("td", 5, None, None, "blocked", signature="matching TLS denylisted FQDNs", verdict="drop")]
    records[0]["alert"].pop("engine")
    e = explain(7, records, "classic")
    assert e.firewall == () and e.ips[0].engine == "stateful" and e.verdict.startswith("dropped")
    assert "stateful engine:" in e.text()


def test_an_unknown_flow_is_a_lookup_error():
    with pytest.raises(LookupError):
        explain(8, [alert("fw", 1, "packet:filter", "accept:hook")], "next-generation")


@pytest.mark.parametrize("spec, ip, expected", [
    ("any", "10.0.0.1", True), ("$HOME_NET", "10.0.3.4", True), ("$HOME_NET", "203.0.113.10", False),
    ("$EXTERNAL_NET", "203.0.113.10", True), ("[10.0.0.0/24,!10.0.0.5]", "10.0.0.5", False),
    ("[10.0.0.0/24,!10.0.0.5]", "10.0.0.6", True), ("!10.0.0.0/8", "10.1.1.1", False), ("bogus", "10.0.0.1", False),
])
def test_addresses_match_as_suricata_reads_them(spec, ip, expected):
    assert address_matches(spec, ip, VARS) is expected


@pytest.mark.parametrize("spec, port, expected", [
    ("any", 1, True), ("443", 443, True), ("[80,443]", 80, True), ("[80,443]", 22, False), ("1024:", 2000, True),
    (":1023", 2000, False), ("!22", 22, False), ("[1:100,!50]", 50, False), ("$P", 8080, True),
])
def test_ports_match_as_suricata_reads_them(spec, port, expected):
    assert port_matches(spec, port, {"P": "[8080]"}) is expected


def test_a_packet_layer_rule_with_conditions_on_the_packet_is_not_guessed():
    rules = "accept:hook tcp:all any any -> any any (flags:S; sid:9;)\naccept:hook tcp:all any any <> any 443 (sid:10;)"
    assert packet_rule(rules, VARS, "tcp", "203.0.113.10", 443, "10.0.0.1", 5000) == ("10", "accept:hook")
    assert packet_rule(rules, VARS, "udp", "10.0.0.1", 5000, "203.0.113.10", 53) is None


@pytest.mark.parametrize("policy, outcome", [("drop:packet,alert", "dropped"), ("rejectsrc:packet,alert", "rejected"),
                                             ("accept:hook,alert", "alerted")])
def test_the_packet_layer_default_is_told_by_the_action_it_took(policy, outcome):
    """DROP, REJECT, and ALERT (or a blocking default under MONITOR): the alert's own firewall.policy says
    which, whatever the policy's configured default action."""
    syn = alert("fw", 2201000, "packet:filter", policy, "blocked" if outcome != "alerted" else "allowed")
    e = explain(7, [syn], "next-generation", "DROP", RULES, VARS)
    assert (e.firewall[0].outcome, e.firewall[0].scope) == (outcome, policy.split(",")[0].split(":")[1])
    assert e.verdict.startswith(outcome if outcome != "alerted" else "accepted")
