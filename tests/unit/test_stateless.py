"""Stateless rule groups: read from AWS's documents, counted as AWS counts them, written as iptables rules."""
import pytest

from lab.errors import ConfigError
from lab.policy import load_policy, parse_policy, render
from lab.stateless import Match, _port_chunks, match_arguments

TELNET = {"Priority": 10, "RuleDefinition": {"Actions": ["aws:drop", "CountTelnet"], "MatchAttributes": {
    "Protocols": [6], "DestinationPorts": [{"FromPort": 23, "ToPort": 23}]}}}
COUNT_TELNET = {"ActionName": "CountTelnet",
                "ActionDefinition": {"PublishMetricAction": {"Dimensions": [{"Value": "telnet"}]}}}


def stateless_group(*rules, name="sl", capacity=100, custom=(COUNT_TELNET,)):
    """As `aws network-firewall describe-rule-group --type STATELESS` prints it."""
    return {"UpdateToken": "t", "RuleGroupResponse": {"RuleGroupName": name, "Type": "STATELESS", "Capacity": capacity,
                                                      "RuleGroupArn": f"arn:aws:network-firewall:ap-northeast-1:"
                                                                      f"111122223333:stateless-rulegroup/{name}"},
            "RuleGroup": {"RulesSource": {"StatelessRulesAndCustomActions": {
                "StatelessRules": list(rules), "CustomActions": list(custom)}}}}


def policy(*groups, **fields):
    refs = [{"ResourceArn": g["RuleGroupResponse"]["RuleGroupArn"], "Priority": 10 * i}
            for i, g in enumerate(groups, 1)]
    return parse_policy({"FirewallPolicy": {"StatelessRuleGroupReferences": refs, "StatefulRuleGroupReferences": [],
                                            **fields}, "RuleGroups": list(groups)}, "p.json")


def test_a_stateless_policy_renders_rules_in_aws_order_then_the_defaults():
    late = {"Priority": 5, "RuleDefinition": {"Actions": ["aws:pass"], "MatchAttributes": {
        "Sources": [{"AddressDefinition": "10.0.0.0/16"}], "Protocols": [1]}}}
    p = policy(stateless_group(TELNET, late), StatelessDefaultActions=["aws:forward_to_sfe"],
               StatelessFragmentDefaultActions=["aws:drop"])
    lines = [line for line in render(p, "10.0.0.0/16").stateless.splitlines() if line.startswith("-A")]
    assert lines[0] == ('-A NFW-STATELESS -p 1 -s 10.0.0.0/16 -m comment --comment "nfw rule g=sl p=10.5 '
                        'a=aws:pass c=-" -j NFW-PASS')  # priority 5 before priority 10
    assert lines[1] == ('-A NFW-STATELESS -p tcp -m multiport --dports 23 -m comment --comment "nfw rule g=sl '
                        'p=10.10 a=aws:drop c=telnet" -j DROP')
    assert lines[2].startswith("-A NFW-STATELESS -p udp -m u32") and lines[2].endswith("-j DROP")
    assert lines[3].endswith('"nfw default g=- p=- a=aws:forward_to_sfe c=-" -j RETURN')


def test_groups_run_by_their_policy_priority():
    a = stateless_group(TELNET, name="a")
    b = stateless_group({**TELNET, "Priority": 1}, name="b")
    refs = [{"ResourceArn": "a", "Priority": 20}, {"ResourceArn": "b", "Priority": 10}]
    p = parse_policy({"FirewallPolicy": {"StatelessRuleGroupReferences": refs}, "RuleGroups": [a, b]}, "p.json")
    assert [g.name for _, g in p.stateless.groups] == ["b", "a"]


def test_capacity_is_the_product_of_the_match_settings():
    """AWS's example: protocols [UDP, TCP] and three sources need 2 x 3 = 6."""
    m = Match(sources=("10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"), protocols=(17, 6))
    assert m.capacity() == 6 and Match().capacity() == 1


def test_a_group_over_its_capacity_is_refused_as_aws_refuses_it():
    rule = {"Priority": 1, "RuleDefinition": {"Actions": ["aws:drop"], "MatchAttributes": {
        "Sources": [{"AddressDefinition": f"10.0.{i}.0/24"} for i in range(3)], "Protocols": [6, 17]}}}
    with pytest.raises(ConfigError, match="needs capacity 6 but has 5"):
        policy(stateless_group(rule, capacity=5))


@pytest.mark.parametrize("rule, message", [
    ({"Priority": 1, "RuleDefinition": {"Actions": ["aws:drop", "aws:pass"], "MatchAttributes": {}}},
     "exactly one of"),
    ({"Priority": 1, "RuleDefinition": {"Actions": ["aws:drop", "Nope"], "MatchAttributes": {}}},
     "custom action 'Nope' is not defined here"),
    ({"Priority": 1, "RuleDefinition": {"Actions": ["aws:drop"], "MatchAttributes": {
        "Protocols": [1], "DestinationPorts": [{"FromPort": 1, "ToPort": 2}]}}}, "ports only apply to TCP"),
    ({"Priority": 1, "RuleDefinition": {"Actions": ["aws:drop"], "MatchAttributes": {
        "TCPFlags": [{"Flags": ["SYNN"]}]}}}, "are not TCP flags"),
    ({"Priority": 1, "RuleDefinition": {"Actions": ["aws:drop"], "MatchAttributes": {
        "SourcePorts": [{"FromPort": 9, "ToPort": 3}]}}}, "not a port range"),
    ({"Priority": 1, "RuleDefinition": {"Actions": ["aws:drop"], "MatchAttributes": {
        "Sources": [{"AddressDefinition": "10.0.0.300/24"}]}}}, "not a CIDR block"),
    ({"Priority": 0, "RuleDefinition": {"Actions": ["aws:drop"], "MatchAttributes": {}}}, "is not a priority"),
])
def test_bad_stateless_rules_are_refused_naming_the_rule(rule, message):
    with pytest.raises(ConfigError, match=message) as e:
        policy(stateless_group(rule))
    assert "StatelessRules[0]" in str(e.value)


def test_duplicate_rule_priorities_are_refused():
    with pytest.raises(ConfigError, match="priority 10 is used twice in rule group sl"):
        policy(stateless_group(TELNET, TELNET))


def test_a_stateless_group_in_the_stateful_references_is_refused():
    g = stateless_group(TELNET)
    with pytest.raises(ConfigError, match="rule group sl is not a stateful rule group"):
        parse_policy({"FirewallPolicy": {"StatefulRuleGroupReferences": [{"ResourceArn": "sl"}]},
                      "RuleGroups": [g]}, "p.json")


def test_policy_custom_actions_serve_the_default_actions():
    p = policy(stateless_group(TELNET), StatelessDefaultActions=["aws:pass", "AllPassed"],
               StatelessCustomActions=[{**COUNT_TELNET, "ActionName": "AllPassed"}])
    assert str(p.stateless.default) == "aws:pass + AllPassed"
    assert p.stateless.custom_actions == {"AllPassed": ("telnet",)}
    assert p.stateless.groups[0][1].custom_actions == {"CountTelnet": ("telnet",)}


def test_ports_and_flags_expand_into_iptables_rules():
    m = Match(destination_ports=tuple((p, p) for p in range(1, 18)), tcp_flags=((("SYN",), ("SYN", "ACK")),))
    rules = match_arguments(m)
    assert len(rules) == 2  # 17 ports: two multiport rules of at most 15; flags: TCP only
    assert rules[0][:2] == ["-p", "tcp"] and rules[0][-3:] == ["--tcp-flags", "SYN,ACK", "SYN"]
    assert match_arguments(Match(destination_ports=((53, 53),)))[1][:2] == ["-p", "udp"]  # ports alone: TCP and UDP
    assert _port_chunks(((1, 5), (7, 7))) == ["1:5,7"]


def test_a_stateless_rule_group_file_alone_is_a_policy(tmp_path):
    import json
    path = tmp_path / "sl.json"
    path.write_text(json.dumps(stateless_group(TELNET)))
    p = load_policy(path)
    assert [g.name for _, g in p.stateless.groups] == ["sl"] and p.groups == ()
