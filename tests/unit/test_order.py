"""Strict order compiled for Suricata 7, and the warnings about shadowed rules (no Docker).

The engine's own answers to these rules are checked on the real lab in
tests/integration/test_rule_order.py; here, the text the compiler writes."""
import pytest

from lab.order import parse_rule, shadow_warnings, split_options, strict_order
from lab.policy import parse_policy, render

ARN = "arn:aws:network-firewall:ap-northeast-1:111122223333:stateful-rulegroup/"
STRICT = {"RuleOrder": "STRICT_ORDER"}


def compiled(*rules):
    return [t for t, _ in strict_order([(r, f"rule {i}") for i, r in enumerate(rules, 1)])]


def test_each_rule_is_guarded_by_the_runs_of_deciding_rules_before_it():
    out = compiled('drop http any any -> any any (http.host; content:"a.test"; msg:"no a"; sid:1;)',
                   'pass http any any -> any any (http.host; content:".test"; endswith; sid:2;)',
                   'pass http any any -> any any (http.host; content:".example"; endswith; sid:3;)',
                   'drop http any any -> any any (msg:"rest"; sid:4;)')
    assert out[0].endswith("sid:1;)")  # the first run is never guarded
    assert out[1].endswith("sid:2; flowbits:isnotset,nfw.run1;)")
    assert out[2].endswith("sid:3; flowbits:isnotset,nfw.run1;)")  # same run as sid 2: same action, no alert between
    assert out[3].endswith("sid:4; flowbits:isnotset,nfw.run1; flowbits:isnotset,nfw.run2;)")
    probes = [line for line in out if "flowbits:set" in line]
    assert [p.split("flowbits:set,")[1].split(";")[0] for p in probes] == ["nfw.run1", "nfw.run2", "nfw.run2"]
    assert all(p.startswith("alert http") and "noalert;" in p and "gid:3;" in p and "msg" not in p for p in probes)
    assert 'flowbits:unset,nfw.run1; flowbits:unset,nfw.run2; priority:1; gid:3; sid:1;' in out[5]


def test_an_alert_rule_ends_a_run_and_is_guarded_like_any_rule():
    out = compiled("pass tcp any any -> any 80 (sid:1;)", "alert tcp any any -> any 80 (sid:2;)",
                   "pass tcp any any -> any 443 (sid:3;)")
    assert out[1].endswith("sid:2; flowbits:isnotset,nfw.run1;)")
    assert out[2].endswith("sid:3; flowbits:isnotset,nfw.run1;)")  # a new run, after the alert
    assert sum("flowbits:set,nfw.run" in line for line in out) == 1  # nothing follows run 2: no probe


def test_probes_keep_conditions_but_not_what_a_rule_changes_or_says():
    out = compiled('drop tls any any -> any any (flowbits:isset,seen; flowbits:set,other; tls.sni; '
                   'content:"a\\;b"; threshold:type limit,track by_src,count 1,seconds 60; '
                   'msg:"x; y"; classtype:bad; priority:1; sid:9; rev:2;)',
                   "pass ip any any -> any any (sid:10;)")
    probe = next(line for line in out if "flowbits:set,nfw.run1" in line)
    assert "flowbits:isset,seen;" in probe and 'content:"a\\;b";' in probe
    for gone in ("flowbits:set,other", "threshold", "msg", "classtype", "sid:9", "priority:1;"):
        assert gone not in probe


def test_a_single_run_compiles_to_itself():
    rules = ['pass tls any any -> any any (tls.sni; content:"a"; sid:1;)', "pass ip any any -> any any (sid:2;)"]
    assert compiled(*rules) == rules


def test_options_split_at_semicolons_outside_quotes():
    assert split_options('msg:"a;b"; content:"x\\;y"; nocase; sid:1;') == [
        ("msg", '"a;b"'), ("content", '"x\\;y"'), ("nocase", None), ("sid", "1")]
    with pytest.raises(ValueError, match="do not end with"):
        split_options("sid:1")
    assert parse_rule("pass tcp any any -> any 80 (sid:1;)").destination_port == "80"


def strict_policy(text, **fields):
    g = {"RuleGroupName": "g", "RuleGroup": {"RulesSource": {"RulesString": text}, "StatefulRuleOptions": STRICT}}
    return parse_policy({"FirewallPolicy": {"StatefulRuleGroupReferences": [{"ResourceArn": ARN + "g",
                                                                             "Priority": 10}],
                                            "StatefulEngineOptions": STRICT, **fields},
                         "RuleGroups": [g]}, "p.yaml")


def test_strict_order_runs_probes_before_the_rules_they_guard():
    rendered = render(strict_policy("drop http any any -> any any (sid:1;)\npass ip any any -> any any (sid:2;)"),
                      "10.0.0.0/16")
    assert rendered.engine["set"][-4:] == ["action-order.0=alert", "action-order.1=pass", "action-order.2=drop",
                                           "action-order.3=reject"]
    assert rendered.origin(len(rendered.rules.splitlines())).endswith("(strict-order probe)")
    assert rendered.rule_count == 2  # the user's rules, not the lab's probes and clearing rule


def test_default_action_order_is_not_compiled():
    g = {"RuleGroupName": "g", "RuleGroup": {"RulesSource": {"RulesString": "drop http any any -> any any (sid:1;)\n"
                                                                           "pass ip any any -> any any (sid:2;)"}}}
    rendered = render(parse_policy({"FirewallPolicy": {"StatefulRuleGroupReferences": [{"ResourceArn": ARN + "g"}]},
                                    "RuleGroups": [g]}, "p.yaml"), "10.0.0.0/16")
    assert "flowbits" not in rendered.rules and not any(s.startswith("action-order") for s in rendered.engine["set"])


def warnings(text, strict=True):
    return shadow_warnings([(r, f"rule {i}") for i, r in enumerate(text.strip().splitlines(), 1)], strict)


def test_a_transport_pass_shadows_an_application_drop_written_before_or_after_it():
    after = warnings('pass tcp any any -> any 80 (sid:1;)\n'
                     'drop http any any -> any 80 (http.method; content:"GET"; sid:2;)')
    assert len(after) == 1 and "pass tcp rule sid 1" in after[0] and "drop http rule sid 2" in after[0]
    assert "written after it" in after[0]
    before = warnings('drop http any any -> any any (http.host; content:"a.test"; sid:2;)\n'
                      'pass tcp any any -> any any (flow:established; sid:1;)')
    assert len(before) == 1 and "written before it" in before[0]


@pytest.mark.parametrize("rules", [
    "pass tcp any any -> any 22 (sid:1;)\ndrop http any any -> any 80 (sid:2;)",  # other ports
    "pass udp any any -> any any (sid:1;)\ndrop http any any -> any any (sid:2;)",  # HTTP never runs over UDP
    'pass tcp any any -> any 80 (content:"GET"; sid:1;)\ndrop http any any -> any 80 (sid:2;)',  # looks at content
    "pass tcp 10.0.1.0/24 any -> any any (sid:1;)\ndrop http 10.0.2.0/24 any -> any any (sid:2;)",  # other sources
    "drop tcp any any -> any any (flow:established; sid:1;)\npass http any any -> any any (sid:2;)",  # per packet
])
def test_rules_that_cannot_shadow_each_other_give_no_warning(rules):
    assert warnings(rules) == []


def test_default_action_order_warns_that_a_broad_pass_beats_a_later_drop():
    text = 'pass http any any -> any any (sid:1;)\ndrop http any any -> any any (http.host; content:"a"; sid:2;)'
    assert "DEFAULT_ACTION_ORDER: pass rule sid 1" in warnings(text, strict=False)[0]
    assert warnings(text, strict=True) == []


def test_strict_order_warns_about_a_rule_an_identical_earlier_rule_decides():
    text = ('pass tls any any -> any any (tls.sni; content:"a"; sid:1;)\n'
            'drop tls any any -> any any (tls.sni; content:"a"; msg:"never"; sid:2;)')
    assert "drop rule sid 2 (rule 2) matches exactly what pass rule sid 1" in warnings(text)[0]


def test_a_pass_of_the_handshake_only_shadows_nothing():
    assert warnings("pass tcp any any <> any 443 (flow:not_established; sid:1;)\n"
                    'drop tls any any -> any 443 (tls.sni; content:"a"; sid:2;)') == []
