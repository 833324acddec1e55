"""Firewall policies on a running lab: applied live, enforced by the real Suricata, logged as AWS logs.

Each test applies a policy to the session lab (fixture `nfwlab_policy`, which
puts the lab's own deny list back afterwards) and checks what a user would:
which requests pass, which are dropped, and what the ALERT and FLOW logs say.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab import docker as dk
from lab.errors import ConfigError

NAT_GATEWAY = "10.0.13.92"
SERVER_A = "10.0.136.108"
WEB_SERVER = "203.0.113.10"
POLICIES = Path(__file__).resolve().parent.parent.parent / "policies"
CLI = [sys.executable, "-m", "lab"]
SOCKET = "/var/run/suricata/suricata-command.socket"


def suricata_says(lab, command, node="firewall"):
    """The running Suricata's answer to a unix-socket command (suricatasc in its container)."""
    code, out, err = lab.exec(node, ["suricatasc", "-c", command, SOCKET])
    assert code == 0, f"suricatasc -c {command!r} in {node}: {err or out}"
    answer = json.loads(out)
    assert answer["return"] == "OK", f"suricatasc -c {command!r} in {node}: {answer}"
    return answer["message"]


def running_ruleset(lab, node="firewall"):
    """The policy the running Suricata enforces, asked of Suricata: when it last loaded rules, and the rules of
    the files it loads them from (its rule-files, read in its container, by name), as many as it says it loaded."""
    (stats,) = suricata_says(lab, "ruleset-stats", node)
    (reloaded,) = suricata_says(lab, "ruleset-reload-time", node)
    folder = suricata_says(lab, "conf-get default-rule-path", node)
    rules = {}
    for i in range(2):  # the policy's lab.rules, the engine's own flow-bypass.rules (suricata/suricata.yaml)
        name = suricata_says(lab, f"conf-get rule-files.{i}", node)
        code, text, err = lab.exec(node, ["cat", name if name.startswith("/") else f"{folder}/{name}"])
        assert code == 0, err
        rules[name] = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert stats["rules_failed"] == 0 and stats["rules_loaded"] == sum(map(len, rules.values())), (stats, rules)
    return {"last_reload": reloaded["last_reload"], "rules": rules}


def dropped(lab, node, url, port=None):
    """The request from `port` (see the nfwlab_ports fixture) is dropped."""
    result = lab.fetch(node, url, timeout=3, local_port=port)
    assert result.status is None, f"expected the firewall to drop this request: {result.describe()}"


def started_at(lab):
    return {s: dk.client().containers.get(c.id).attrs["State"]["StartedAt"] for s, c in dk.containers(lab.name).items()}


@pytest.mark.parametrize("nfwlab_policy", [POLICIES / "allow-domains.json"], indirect=True)
def test_allow_list_passes_listed_names_and_drops_the_rest(nfwlab_policy, nfwlab_ports):
    lab = nfwlab_policy
    lab.switch("firewall-first")
    # ".example.test" allows the domain itself and every subdomain.
    for url in ("https://allowed.example/", "http://allowed.example/", "https://a.example.test/",
                "https://example.test/", "http://a.example.test/", "http://example.test/"):
        assert lab.fetch("server-a", url).status == 200, url
    for scheme, field, signature in (("https", "tls.sni", "not matching any TLS allowlisted FQDNs"),
                                     ("http", "http.hostname", "not matching any HTTP allowlisted FQDNs")):
        mark = lab.log_mark()
        dropped(lab, "server-a", f"{scheme}://blocked.example/", next(nfwlab_ports))
        record = lab.wait_for_alert({f"event.{field}": "blocked.example"}, since=mark, aws=True)
        assert record["event"]["alert"]["signature"] == signature
        assert record["event"]["src_ip"] == SERVER_A
        assert record["event"]["verdict"]["action"] == "drop"


@pytest.mark.parametrize("nfwlab_policy", [POLICIES / "strict-allow.yaml"], indirect=True)
def test_strict_order_default_actions_drop_and_log_an_unlisted_destination(nfwlab_policy, nfwlab_ports):
    lab = nfwlab_policy
    lab.switch("nat-first")
    assert lab.fetch("server-a", "https://allowed.example/").status == 200
    assert lab.fetch("server-a", "http://allowed.example/").status == 200
    mark = lab.log_mark()
    dropped(lab, "server-a", "https://example.test/", next(nfwlab_ports))
    record = lab.wait_for_alert({"event.dest_port": 443, "event.alert.signature": "aws:alert_established action"},
                                since=mark, aws=True)
    event = record["event"]
    assert event["src_ip"] == NAT_GATEWAY and event["dest_ip"] == WEB_SERVER
    assert event["verdict"]["action"] == "drop" and event["alert"]["action"] == "blocked"
    assert record["firewall_name"] == "nfwlab-firewall" and record["availability_zone"] == "ap-northeast-1a"


@pytest.mark.parametrize("nfwlab_policy", [POLICIES / "home-net-trap.json"], indirect=True)
def test_home_net_trap_nat_first_is_neither_blocked_nor_logged(nfwlab_policy):
    lab = nfwlab_policy
    lab.switch("nat-first")
    mark = lab.log_mark()
    # HOME_NET is the private subnet; behind the NAT gateway the source is 10.0.13.92: no rule applies.
    result = lab.fetch("server-a", "https://blocked.example/")
    assert result.status == 200, f"the denylisted name should slip through: {result.describe()}"
    # The connection's FLOW record is written when the flow ends, after any alert it could have raised.
    flows = lab.wait_for_flows({"event.src_ip": NAT_GATEWAY, "event.dest_port": 443}, since=mark)
    assert flows[0]["event"]["app_proto"] == "tls"
    assert lab.alerts(since=mark, aws=True) == []
    assert lab.alerts(since=mark) == []


@pytest.mark.parametrize("nfwlab_policy", [POLICIES / "home-net-trap.json"], indirect=True)
def test_home_net_trap_firewall_first_still_blocks_and_logs(nfwlab_policy, nfwlab_ports):
    lab = nfwlab_policy
    lab.switch("firewall-first")
    mark = lab.log_mark()
    dropped(lab, "server-a", "https://blocked.example/", next(nfwlab_ports))
    record = lab.wait_for_alert({"event.tls.sni": "blocked.example"}, since=mark, aws=True)
    assert record["event"]["src_ip"] == SERVER_A
    assert record["event"]["alert"]["signature"] == "matching TLS denylisted FQDNs"


def broken_policies(tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"FirewallPolicy": {"StatefulRuleGroupReferences": [}')
    unknown_field = tmp_path / "unknown-field.yaml"
    unknown_field.write_text("FirewallPolicy:\n  StatefulRuleGroupReferences: []\n  StatefulEngineOption: {}\n")

    def with_rules(name, text):
        path = tmp_path / f"{name}.yaml"
        path.write_text(json.dumps({"FirewallPolicy": {"StatefulRuleGroupReferences": [{"RuleGroupName": name}]},
                                    "RuleGroups": [{"RuleGroupName": name, "RuleGroup": {"RulesSource": {
                                        "RulesString": "pass ip any any -> any any (sid:1;)\n" + text}}}]}))
        return path

    return [
        (bad_json, "not valid JSON"),
        (unknown_field, "FirewallPolicy.StatefulEngineOption: unknown field"),
        (with_rules("keyword", 'drop tls any any -> any any (tls.sni; contnt:"x"; sid:2;)'),
         "unknown rule keyword 'contnt'"),
        (with_rules("address", "drop ip any any -> 999.1.1.1 any (sid:2;)"), "rule group address, RulesString line 2"),
    ]


def test_a_broken_policy_is_refused_and_the_previous_one_keeps_filtering(nfwlab, nfwlab_ports, tmp_path):
    nfwlab.switch("firewall-first")
    before = running_ruleset(nfwlab)
    assert 'msg:"matching TLS denylisted FQDNs"' in before["rules"]["lab.rules"][0]
    containers = started_at(nfwlab)
    for path, message in broken_policies(tmp_path):
        with pytest.raises(ConfigError) as e:
            nfwlab.apply_policy(path)
        assert message in str(e.value), str(e.value)
        assert str(path) in str(e.value)
        assert running_ruleset(nfwlab) == before  # the same rules, and Suricata did not reload
    # Still the deny list, in the same engine and containers.
    mark = nfwlab.log_mark()
    dropped(nfwlab, "server-b", "https://blocked.example/", next(nfwlab_ports))
    assert nfwlab.wait_for_alert({"tls.sni": "blocked.example"}, since=mark)["src_ip"] == "10.0.140.23"
    assert nfwlab.fetch("server-b", "https://allowed.example/").status == 200
    assert started_at(nfwlab) == containers


def test_flow_log_has_both_directions_of_a_finished_connection(nfwlab):
    nfwlab.switch("nat-first")
    mark = nfwlab.log_mark()
    assert nfwlab.fetch("server-b", "http://allowed.example/").status == 200
    out = nfwlab.wait_for_flows({"event.src_ip": NAT_GATEWAY, "event.dest_port": 80}, since=mark)[0]
    back = nfwlab.wait_for_flows({"event.flow_id": out["event"]["flow_id"], "event.src_ip": WEB_SERVER}, since=mark)[0]
    for record in (out, back):
        assert record["firewall_name"] == "nfwlab-firewall"
        assert record["availability_zone"] == "ap-northeast-1a"
        assert record["event_timestamp"].isdigit()
        event = record["event"]
        assert event["event_type"] == "netflow" and event["proto"] == "TCP" and event["app_proto"] == "http"
        assert event["netflow"]["pkts"] > 0 and event["netflow"]["bytes"] > 0
        assert {"start", "end", "age", "min_ttl", "max_ttl"} <= set(event["netflow"])
        assert event["tcp"]["syn"] is True
    assert back["event"]["dest_ip"] == NAT_GATEWAY and back["event"]["src_port"] == 80


def test_engine_options_restart_only_the_engine(nfwlab, nfwlab_ports, tmp_path):
    path = tmp_path / "continue.json"
    path.write_text(json.dumps({
        "FirewallPolicy": {"StatefulRuleGroupReferences": [{"ResourceArn": "deny-domains"}],
                           "StatefulEngineOptions": {"StreamExceptionPolicy": "CONTINUE",
                                                     "FlowTimeouts": {"TcpIdleTimeoutSeconds": 600}}},
        "FirewallPolicyResponse": {"FirewallPolicyName": "continue"}}))
    (tmp_path / "deny-domains.json").write_text((POLICIES / "deny-domains.json").read_text())
    containers = started_at(nfwlab)
    try:
        result = nfwlab.apply_policy(path)
        assert result.engine_restarted is True
        _, argv, _ = nfwlab.exec("firewall", ["sh", "-c", 'tr "\\0" " " < /proc/$(pidof suricata)/cmdline'])
        assert "exception-policy=ignore" in argv and "flow-timeouts.tcp.established=600" in argv
        mark = nfwlab.log_mark()
        dropped(nfwlab, "server-a", "https://blocked.example/", next(nfwlab_ports))
        nfwlab.wait_for_alert({"tls.sni": "blocked.example"}, since=mark)
    finally:
        back = nfwlab.apply_policy(nfwlab.policy)
    assert back.engine_restarted is True
    assert started_at(nfwlab) == containers


def test_cli_policy_apply_and_show(nfwlab, tmp_path):
    before = running_ruleset(nfwlab)
    res = subprocess.run([*CLI, "--name", nfwlab.name, "policy", "apply", str(POLICIES / "home-net-trap.json")],
                         capture_output=True, text=True)
    try:
        assert res.returncode == 0, res.stderr
        assert "policy home-net-trap enforced" in res.stdout and "HOME_NET 10.0.128.0/20" in res.stdout
        running = running_ruleset(nfwlab)
        assert running["last_reload"] != before["last_reload"]  # Suricata reloaded its rules
        shown = subprocess.run([*CLI, "--name", nfwlab.name, "policy", "show"], capture_output=True, text=True)
        assert shown.returncode == 0
        assert "HOME_NET 10.0.128.0/20" in shown.stdout
        # `policy show` prints the policy's rules that Suricata loaded (the engine's own bypass rule aside).
        policy_rules = running["rules"]["lab.rules"]
        assert len(policy_rules) == 2 and all(rule in shown.stdout for rule in policy_rules)
        assert 'msg:"matching TLS denylisted FQDNs"' in policy_rules[0]
    finally:
        nfwlab.apply_policy(nfwlab.policy)
    bad = tmp_path / "bad.yaml"
    bad.write_text("RuleGroup:\n  RulesSource:\n    RulesString: 'drop ip any any -> any any (nosuch; sid:1;)'\n")
    res = subprocess.run([*CLI, "--name", nfwlab.name, "policy", "apply", str(bad)], capture_output=True, text=True)
    assert res.returncode == 2
    assert "unknown rule keyword 'nosuch'" in res.stderr and "the previous policy is still running" in res.stderr
