"""Trace's policy verdict at the firewall hop (lab/verdict.py), from the shipped policies and hand-written rules;
the running lab's domains and HOME_NET in trace and diagram; `policy apply` keeping `up --home-net`. No Docker."""
import json
from pathlib import Path

import pytest
from fakes import FakeDocker, FakeKernel

from lab import cli, deploy
from lab.diagram import diagram
from lab.lab import Lab
from lab.model import load_topology
from lab.nextgen import load_any_policy, render_any
from lab.trace import judge, trace
from lab.verdict import PolicyRules, decide, rendered_rules

POLICIES = Path(__file__).resolve().parent.parent.parent / "policies"
TOPOLOGIES = Path(__file__).resolve().parent.parent.parent / "topologies"
NAT, SERVER_A, WEB = "10.0.13.92", "10.0.136.108", "203.0.113.10"
HOME = {"HOME_NET": "[10.0.0.0/16]", "EXTERNAL_NET": "!$HOME_NET"}


def topo(name):
    t = load_topology(TOPOLOGIES / f"{name}.yaml")
    return t.vpc, t.route_tables


def shipped(name, cidr="10.0.0.0/16"):
    policy = load_any_policy(next(POLICIES.glob(f"{name}.*")))
    return rendered_rules(policy, render_any(policy, cidr), "test")


def rules(text, order="DEFAULT_ACTION_ORDER", **extra):
    return PolicyRules("hand-written", "test", "classic", order, "# rule group mine (RulesString)\n" + text,
                       {**HOME, **extra})


# --------------------------------------------------------------------------
# The shipped policies: what the README and docs/policies.md say each does
# --------------------------------------------------------------------------
def test_the_deny_list_drops_blocked_example_with_its_tls_rule_and_alerts_with_that_sid():
    v = decide(shipped("deny-domains"), NAT, WEB, 443, "blocked.example")
    assert (v.action, v.sid, v.gid, v.rule_group) == ("drop", 1, 1, "deny-domains")
    assert 'tls.sni; content:"blocked.example"' in v.rule and v.stage.startswith("the request (TLS Client Hello")
    assert v.alerts == ((1, 1, "matching TLS denylisted FQDNs"),)
    http = decide(shipped("deny-domains"), NAT, WEB, 80, "blocked.example")
    assert (http.action, http.sid) == ("drop", 2) and "http.host" in http.rule


def test_a_name_no_rule_drops_passes_in_default_action_order():
    v = decide(shipped("deny-domains"), NAT, WEB, 443, "allowed.example")
    assert v.action == "pass" and v.sid is None and v.by == "no rule: DEFAULT_ACTION_ORDER passes what no rule drops"
    assert v.alerts == () and "alert: none" in "\n".join(v.lines())


def test_strict_order_names_its_default_action_not_a_rule_of_the_deny_list():
    # AWS: "aws:drop_established - Drops only the packets that are in established connections."
    v = decide(shipped("strict-allow"), NAT, WEB, 443, "blocked.example")
    assert (v.action, v.gid, v.sid) == ("drop", 2, 4)
    assert v.by == "no rule: default action aws:drop_established + aws:alert_established"
    assert v.alerts == ((2, 4, "aws:alert_established action"),)
    passed = decide(shipped("strict-allow"), NAT, WEB, 443, "allowed.example")
    assert (passed.action, passed.sid, passed.rule_group) == ("pass", 100, "egress-web")


def test_home_net_decides_whether_the_domain_list_applies():
    assert decide(shipped("home-net-trap"), NAT, WEB, 443, "blocked.example").action == "pass"
    assert decide(shipped("home-net-trap"), SERVER_A, WEB, 443, "blocked.example").sid == 1


def test_an_address_carries_no_sni_so_the_allow_list_catch_all_drops_it():
    v = decide(shipped("allow-domains"), NAT, WEB, 443, None)
    assert (v.action, v.sid) == ("drop", 5) and v.request == "TLS Client Hello without SNI (an address)"
    assert decide(shipped("allow-domains"), NAT, WEB, 443, "a.example.test").action == "pass"  # ".example.test"


def test_a_next_generation_policy_says_the_packet_is_needed():
    v = decide(shipped("next-generation"), NAT, WEB, 443, "blocked.example", "nfwlab trace --live server-a x")
    assert v.action is None and "needs the packet: run `nfwlab trace --live server-a x`" in v.needs_packet
    assert v.as_dict()["decided"] is False


# --------------------------------------------------------------------------
# Hand-written rules: order, stages, what cannot be told
# --------------------------------------------------------------------------
def test_default_action_order_applies_a_pass_before_an_earlier_drop():
    text = ('drop tls $HOME_NET any -> any any (tls.sni; content:"x.example"; sid:1;)\n'
            'pass tls $HOME_NET any -> any any (tls.sni; content:"x.example"; sid:2;)\n')
    assert decide(rules(text), NAT, WEB, 443, "x.example").sid == 2
    assert decide(rules(text, "STRICT_ORDER"), NAT, WEB, 443, "x.example").sid == 1


def test_default_action_order_logs_the_packets_alerts_beside_a_drop_but_not_beside_a_pass():
    text = ('alert tls any any -> any any (tls.sni; content:"x.example"; msg:"seen"; sid:3;)\n'
            'drop tls $HOME_NET any -> any any (tls.sni; content:"x.example"; msg:"gone"; sid:4;)\n')
    assert decide(rules(text), NAT, WEB, 443, "x.example").alerts == ((1, 4, "gone"), (1, 3, "seen"))
    passing = text.replace("drop tls", "pass tls")
    assert decide(rules(passing), NAT, WEB, 443, "x.example").alerts == ()


def test_a_transport_rule_decides_at_the_syn_before_any_sni():
    text = ('pass tls $HOME_NET any -> any any (tls.sni; content:"x.example"; sid:1;)\n'
            'drop tcp any any -> any 443 (sid:2;)\n')
    v = decide(rules(text, "STRICT_ORDER"), NAT, WEB, 443, "x.example")
    assert (v.action, v.sid, v.stage) == ("drop", 2, "the SYN")
    assert decide(rules(text, "STRICT_ORDER"), NAT, WEB, 80, "x.example").action == "pass"  # port 80: no match


def test_content_modifiers_and_port_variables_are_judged():
    text = 'drop tls any any -> any $WEB (tls.sni; content:"EXAMPLE"; endswith; nocase; sid:7;)\n'
    assert decide(rules(text, WEB="[443]"), NAT, WEB, 443, "a.example").sid == 7
    assert decide(rules(text, WEB="[8443]"), NAT, WEB, 443, "a.example").action == "pass"
    negated = 'drop tls any any -> any any (tls.sni; content:!"good.example"; sid:8;)\n'
    assert decide(rules(negated), NAT, WEB, 443, "good.example").action == "pass"
    assert decide(rules(negated), NAT, WEB, 443, "bad.example").sid == 8


def test_a_rule_on_more_than_the_sni_is_not_guessed():
    text = 'drop tls any any -> any any (tls.sni; pcre:"/x/"; sid:9;)\n'
    v = decide(rules(text), NAT, WEB, 443, "x.example", "nfwlab --name l trace --live server-a x.example:443")
    assert v.action is None and "rule 9 (mine)" in v.needs_packet
    assert v.needs_packet.endswith("run `nfwlab --name l trace --live server-a x.example:443`")
    # ... but a rule that cannot match this flow whatever its payload does not stop the verdict.
    assert decide(rules('drop udp any any -> any any (pcre:"/x/"; sid:9;)\n'), NAT, WEB, 443, "x").action == "pass"


def test_the_stateless_engine_decides_first():
    stateless = PolicyRules("p", "test", "classic", "DEFAULT_ACTION_ORDER", "", HOME,
                            stateless={"in_use": True, "default_actions": "aws:drop", "rule_groups": []})
    assert decide(stateless, NAT, WEB, 443, "x").by.startswith("no rule: the stateless default action aws:drop")
    with_rules = PolicyRules("p", "test", "classic", "DEFAULT_ACTION_ORDER", "", HOME,
                             stateless={"in_use": True, "default_actions": "aws:forward_to_sfe",
                                        "rule_groups": [{"name": "g"}]})
    assert decide(with_rules, NAT, WEB, 443, "x").action is None


# --------------------------------------------------------------------------
# The trace's text and JSON
# --------------------------------------------------------------------------
def test_the_trace_states_the_verdict_at_the_firewall_hop_and_ends_with_it():
    t = judge(trace(*topo("nat-first"), "server-a", "blocked.example", 443), shipped("deny-domains"))
    lines = t.describe().splitlines()
    hop = next(i for i, line in enumerate(lines) if line.startswith("  firewall endpoint vpce-"))
    assert lines[hop + 1] == ("    policy deny-domains (test): DROP at the request (TLS Client Hello, SNI "
                              "blocked.example), by rule group deny-domains, sid 1")
    assert ("  => the firewall drops it (rule group deny-domains, sid 1); by the routes alone it would arrive"
            in lines)
    assert "response (by the routes, were the request let through):" in lines
    data = cli._trace_json(t)
    assert data["policy"]["sid"] == 1 and data["policy"]["action"] == "drop" and data["routes_only"] is None


def test_without_a_policy_or_a_firewall_on_the_path_the_trace_says_routes_only():
    t = trace(*topo("nat-first"), "server-a", "blocked.example", 443)
    assert "  => arrives (routes only: no policy was judged)" in t.describe().splitlines()
    inside = judge(trace(*topo("nat-first"), "server-a", "server-b", 443), shipped("deny-domains"))
    assert inside.verdict is None and "routes only: the firewall does not see the request" in inside.describe()


# --------------------------------------------------------------------------
# The running lab's domains and HOME_NET; policy apply keeps up --home-net
# --------------------------------------------------------------------------
def test_trace_and_diagram_take_the_domains_and_home_net_they_are_given():
    vpc, tables = topo("nat-first")
    with pytest.raises(ValueError, match="nor a name its internet serves"):
        trace(vpc, tables, "server-a", "shop.example")
    assert trace(vpc, tables, "server-a", "shop.example", domains=["shop.example"]).dest_ip == vpc.internet.web_server
    from ipaddress import IPv4Network
    source = diagram(vpc, tables, domains=["shop.example", "blocked.example"],
                     home_net=[IPv4Network("10.0.128.0/20")]).source
    assert "server-a → shop.example" in source  # the first name served: the default destination
    assert "HOME_NET 10.0.128.0/20" in source and "outside HOME_NET" in source


@pytest.fixture
def fake_lab(tmp_path, monkeypatch):
    monkeypatch.setattr(deploy.os, "geteuid", lambda: 0)
    docker, kernel = FakeDocker(), FakeKernel()

    def make(**kwargs):
        return Lab("unit", state_dir=tmp_path / "unit", docker=docker, kernel=kernel, **kwargs)
    return make


def firewall_home_net(lab):
    """HOME_NET in the variables the firewall engine reads (the rules directory it is given)."""
    return (lab.state.rules_dir / "policy.yaml").read_text().split("HOME_NET:", 1)[1].split("\n", 1)[0].strip()


def test_policy_apply_keeps_the_up_home_net_and_an_explicit_one_wins(fake_lab):
    fake_lab(home_net="10.0.128.0/20", domains=["blocked.example", "shop.example"]).up("nat-first")
    later = fake_lab()  # what `nfwlab policy apply` makes: a Lab that was given no --home-net
    result = later.apply_policy(POLICIES / "strict-allow.yaml")
    assert result.home_net == "10.0.128.0/20" and firewall_home_net(later) == "'[10.0.128.0/20]'"
    assert any(n.startswith("HOME_NET 10.0.128.0/20 (from up --home-net)") for n in result.notes)
    explicit = fake_lab().apply_policy(POLICIES / "deny-domains.json", home_net="10.0.0.0/16")
    assert explicit.home_net == "10.0.0.0/16" and firewall_home_net(later) == "'[10.0.0.0/16]'"
    assert fake_lab().apply_policy(POLICIES / "deny-domains.json").home_net == "10.0.0.0/16"  # kept from then on


def test_trace_judges_by_the_running_lab_its_policy_domains_and_home_net(fake_lab):
    fake_lab(home_net="10.0.128.0/20", domains=["blocked.example", "shop.example"]).up("nat-first")
    lab = fake_lab()
    t = lab.trace("server-a", "shop.example")
    assert t.verdict is not None and t.verdict.origin == "the running lab unit's"
    assert t.verdict.action == "pass" and any("outside HOME_NET (10.0.128.0/20)" in w for w in t.warnings)
    assert lab.trace("server-a", "blocked.example", policy="strict-allow").verdict.origin == "--policy strict-allow"
    assert "shop.example" in lab.diagram().source


def test_commands_on_a_lab_that_is_down_say_so_and_which_topology(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NFWLAB_STATE_ROOT", str(tmp_path))
    assert cli.main(["--name", "down1", "routes", "--topology", "scale-50"]) == 0
    out, err = capsys.readouterr()
    assert "Topology scale-50" in out and "differ" not in out + err
    assert err == ""  # the topology was named: nothing fell back
    assert cli.main(["--name", "down1", "trace", "server-a", "blocked.example:443", "--json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)  # stdout stays JSON
    assert data["policy"]["origin"] == "the default policy deny-domains.json: lab down1 is down"
    assert "using the default topology nat-first" in err
    for argv in (["check"], ["routes", "--diff", "firewall-first"], ["diagram"]):
        cli.main(["--name", "down1", *argv])
        assert "note: lab down1 is down: using the default topology nat-first" in capsys.readouterr().err, argv
