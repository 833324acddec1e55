"""policy convert (lab/convert.py): a Classic policy as a Next Generation policy, and what cannot carry over.
That the converted policy decides the same is checked on a real lab (tests/integration/test_next_generation.py)."""
import json
from pathlib import Path

from lab.cli import main
from lab.convert import convert
from lab.nextgen import NextGenPolicy, load_any_policy, parse_nextgen, render_nextgen
from lab.policy import load_policy, render

VPC = "10.0.0.0/16"
ROOT = Path(__file__).resolve().parents[2]  # the repository, wherever pytest runs from


def rules_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_default_action_order_carries_over_rule_for_rule():
    classic = load_policy(ROOT / "policies" / "deny-domains.json")
    converted = convert(classic)
    assert converted.lost == () and "domain list" in converted.notes[0]
    ng = parse_nextgen(converted.document, "converted.json")
    assert isinstance(ng, NextGenPolicy) and ng.default_action == "ACCEPT" and ng.firewall == ()
    r = render_nextgen(ng, VPC)
    assert rules_of(r.rules) == rules_of(render(classic, VPC).rules)  # the same Suricata rules, now the IPS's
    assert all(line.startswith("accept:hook ") for line in rules_of(r.firewall))  # every flow reaches the IPS


def test_what_cannot_carry_over_is_listed_with_what_to_do():
    converted = convert(load_policy(ROOT / "policies" / "strict-allow.yaml"))
    assert any(x.startswith("StatefulEngineOptions.RuleOrder STRICT_ORDER") for x in converted.lost)
    assert any(x.startswith("StatefulDefaultActions aws:drop_established") for x in converted.lost)


def test_home_net_idle_timeout_stream_policy_and_override_carry_over(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({
        "FirewallPolicy": {"StatefulRuleGroupReferences": [{"ResourceArn": "g", "Override": {"Action": "DROP_TO_ALERT"}}],
                           "StatefulEngineOptions": {"StreamExceptionPolicy": "CONTINUE",
                                                     "FlowTimeouts": {"TcpIdleTimeoutSeconds": 120}},
                           "PolicyVariables": {"RuleVariables": {"HOME_NET": {"Definition": ["10.9.0.0/16"]}}},
                           "StatelessDefaultActions": ["aws:drop"]},
        "RuleGroups": [{"RuleGroupName": "g", "RuleGroup": {"RulesSource": {"RulesString":
                                                                            'drop tcp $WEB any -> any 22 (msg:"x"; sid:1;)'},
                                                            "RuleVariables": {"IPSets": {"WEB": {"Definition": ["10.9.1.0/24"]}}}}}]}))
    converted = convert(load_policy(tmp_path / "p.json"))
    v2 = converted.document["FirewallPolicyV2"]
    assert v2["PolicyVariables"]["RuleVariables"]["HOME_NET"] == {"Definition": ["10.9.0.0/16"]}
    assert v2["StatefulEngineOptions"] == {"StreamExceptionPolicy": "REJECT",
                                           "FlowTimeouts": {"TcpIdleTimeoutSeconds": 120}}
    assert v2["IpsRuleGroupEntries"][0]["Override"] == {"Action": "DROP_TO_ALERT"}
    assert any("CONTINUE" in x for x in converted.lost) and any("stateless engine" in x for x in converted.lost)
    r = render_nextgen(parse_nextgen(converted.document, "c.json"), "10.9.0.0/16")
    assert 'alert tcp $NFW1_WEB any -> any 22 (msg:"x"; sid:1;)' in r.rules


def test_the_cli_writes_the_policy_and_says_what_was_lost(tmp_path, capsys):
    out = tmp_path / "ng.json"
    assert main(["policy", "convert", str(ROOT / "policies" / "strict-allow.yaml"), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "written to" in err and "not carried over: StatefulEngineOptions.RuleOrder STRICT_ORDER" in err
    assert isinstance(load_any_policy(out), NextGenPolicy)
    assert main(["policy", "convert", str(out)]) == 2
    assert "already a Next Generation policy" in capsys.readouterr().err
