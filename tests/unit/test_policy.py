"""Firewall policies and rule groups: AWS's documents read, validated and rendered (no Docker)."""
import json
from pathlib import Path

import pytest
import yaml

from lab.errors import ConfigError
from lab.nextgen import load_any_policy, render_any
from lab.policy import load_policy, parse_policy, parse_rule_group, render

VPC = "10.0.0.0/16"
POLICIES = Path(__file__).resolve().parent.parent.parent / "policies"  # the repository's, wherever pytest runs from
SHIPPED = sorted(POLICIES.glob("*.*"))
ARN = "arn:aws:network-firewall:ap-northeast-1:111122223333:stateful-rulegroup/"


def group(name, source, **extra):
    return {"RuleGroupName": name, "RuleGroup": {"RulesSource": source, **extra}}


def rules_string(text, name="custom", **extra):
    return group(name, {"RulesString": text}, **extra)


def policy(groups, refs=None, **fields):
    refs = refs if refs is not None else [{"ResourceArn": ARN + g["RuleGroupName"]} for g in groups]
    return {"FirewallPolicy": {"StatefulRuleGroupReferences": refs, **fields}, "RuleGroups": groups,
            "FirewallPolicyResponse": {"FirewallPolicyName": "p"}, "UpdateToken": "x"}


def rule_lines(rendered):
    return [line for line in rendered.rules.splitlines() if not line.startswith("#")]


DENY = group("deny", {"RulesSourceList": {"Targets": ["evil.com"], "TargetTypes": ["TLS_SNI"],
                                          "GeneratedRulesType": "DENYLIST"}})


def test_stateful_rules_render_as_aws_renders_them():
    g = parse_rule_group(group("sr", {"StatefulRules": [{
        "Action": "PASS",
        "Header": {"Protocol": "TCP", "Source": "$HOME_NET", "SourcePort": "ANY", "Direction": "FORWARD",
                   "Destination": "ANY", "DestinationPort": "443"},
        "RuleOptions": [{"Keyword": "msg", "Settings": ['"allow https"']},
                        {"Keyword": "flow", "Settings": ["to_server", "established"]},
                        {"Keyword": "sid", "Settings": ["7"]}]}]}), "sr.json")
    assert [r.text for r in g.rules] == [
        'pass tcp $HOME_NET any -> any 443 (msg:"allow https"; flow:to_server,established; sid:7;)']


@pytest.mark.parametrize("rule, message", [
    ({"Action": "ALLOW", "Header": {}, "RuleOptions": []}, "Action: 'ALLOW' is not valid"),
    ({"Action": "PASS", "Header": {"Protocol": "TCPX", "Source": "ANY", "SourcePort": "ANY",
                                   "Destination": "ANY", "DestinationPort": "ANY"}}, "Protocol"),
    ({"Action": "PASS", "Header": {"Protocol": "TCP", "Source": "ANY", "SourcePort": "ANY",
                                   "Destination": "ANY", "DestinationPort": "ANY"}, "RuleOptions": []}, "no sid"),
    ({"Action": "PASS", "Header": {"Protocol": "TCP", "Source": "ANY; drop", "SourcePort": "ANY",
                                   "Destination": "ANY", "DestinationPort": "ANY"},
      "RuleOptions": [{"Keyword": "sid", "Settings": ["1"]}]}, "Header.Source"),
])
def test_bad_stateful_rules_name_the_rule_and_field(rule, message):
    with pytest.raises(ConfigError, match=message) as e:
        parse_rule_group(group("sr", {"StatefulRules": [rule]}), "sr.json")
    assert "sr.json" in str(e.value) and "StatefulRules[0]" in str(e.value)


def test_rules_string_keeps_comments_out_and_joins_continued_lines():
    text = "# egress\n\npass tls any any -> any any (tls.sni; \\\n  content:\"a.test\"; sid:1;)\nalert ip any any -> any any (sid:2;)\n"
    g = parse_rule_group(rules_string(text), "g.yaml")
    assert [r.text for r in g.rules] == ['pass tls any any -> any any (tls.sni; content:"a.test"; sid:1;)',
                                         "alert ip any any -> any any (sid:2;)"]
    assert [r.where for r in g.rules] == ["RulesString line 3", "RulesString line 5"]


@pytest.mark.parametrize("text, message", [
    ("allow ip any any -> any any (sid:1;)", "line 1: not a Suricata rule"),
    ("pass ip any any -> any any (msg:\"x\";)", "line 1: the rule has no sid"),
    ("pass ip any any -> any any (sid:1;)\ndrop ip any any -> any any (sid:1;)", "sid 1 is used twice"),
])
def test_bad_rules_strings_are_refused_with_the_line(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_rule_group(rules_string(text), "g.yaml")


def test_policy_home_net_and_group_variables_become_suricata_variables():
    custom = rules_string("alert tcp $HOME_NET any -> $DB_NET $DB_PORTS (msg:\"db\"; sid:1;)",
                          RuleVariables={"IPSets": {"DB_NET": {"Definition": ["10.0.200.0/24"]}},
                                         "PortSets": {"DB_PORTS": {"Definition": ["5432", "3306"]}}})
    p = parse_policy(policy([custom], PolicyVariables={"RuleVariables": {"HOME_NET": {
        "Definition": ["10.0.128.0/20"]}}}), "p.json")
    r = render(p, VPC)
    assert rule_lines(r) == ['alert tcp $HOME_NET any -> $NFW1_DB_NET $NFW1_DB_PORTS (msg:"db"; sid:1;)']
    variables = yaml.safe_load(r.variables)["vars"]
    assert variables["address-groups"] == {"HOME_NET": "[10.0.128.0/20]", "EXTERNAL_NET": "!$HOME_NET",
                                           "NFW1_DB_NET": "[10.0.200.0/24]"}
    assert variables["port-groups"] == {"NFW1_DB_PORTS": "[5432,3306]"}
    assert r.home_net == "10.0.128.0/20"


def test_home_net_defaults_to_the_vpc_cidr():
    r = render(load_policy(POLICIES / "deny-domains.json"), VPC)
    assert yaml.safe_load(r.variables)["vars"]["address-groups"]["HOME_NET"] == "[10.0.0.0/16]"


def test_a_group_home_net_is_scoped_to_the_group_and_warns_without_external_net():
    a = rules_string("alert ip $HOME_NET any -> $EXTERNAL_NET any (sid:1;)", name="a",
                     RuleVariables={"IPSets": {"HOME_NET": {"Definition": ["10.0.128.0/20"]}}})
    b = rules_string("alert ip $HOME_NET any -> $EXTERNAL_NET any (sid:2;)", name="b")
    r = render(parse_policy(policy([a, b]), "p.json"), VPC)
    assert rule_lines(r) == ["alert ip $NFW1_HOME_NET any -> $EXTERNAL_NET any (sid:1;)",
                             "alert ip $HOME_NET any -> $EXTERNAL_NET any (sid:2;)"]
    assert "sets HOME_NET but not EXTERNAL_NET" in r.warnings[0]


def test_an_undefined_variable_names_the_group_and_rule():
    with pytest.raises(ConfigError, match=r"rule group custom, RulesString line 1: \$WEB_NET is not defined"):
        render(parse_policy(policy([rules_string("alert ip any any -> $WEB_NET any (sid:1;)")]), "p.json"), VPC)


def test_the_same_sid_in_two_groups_keeps_the_sid_under_its_own_gid():
    other = group("deny2", {"RulesSourceList": {"Targets": ["bad.com"], "TargetTypes": ["TLS_SNI"],
                                                "GeneratedRulesType": "DENYLIST"}})
    lines = rule_lines(render(parse_policy(policy([DENY, other]), "p.json"), VPC))
    assert "sid:1; rev:1;)" in lines[0] and "gid" not in lines[0]
    assert lines[1].endswith("sid:1; rev:1; gid:102;)")


def test_strict_order_runs_groups_by_priority_then_default_actions():
    a = rules_string("pass tls any any -> any any (sid:1;)", name="a", StatefulRuleOptions={"RuleOrder": "STRICT_ORDER"})
    b = rules_string("drop tls any any -> any any (sid:2;)", name="b", StatefulRuleOptions={"RuleOrder": "STRICT_ORDER"})
    refs = [{"ResourceArn": ARN + "a", "Priority": 20}, {"ResourceArn": ARN + "b", "Priority": 10}]
    p = parse_policy(policy([a, b], refs, StatefulEngineOptions={"RuleOrder": "STRICT_ORDER"},
                            StatefulDefaultActions=["aws:drop_established", "aws:alert_established"]), "p.json")
    assert [g.group.name for g in p.groups] == ["b", "a"]
    lines = rule_lines(render(p, VPC))
    assert lines[:2] == ["drop tls any any -> any any (sid:2;)",
                         "pass tls any any -> any any (sid:1; flowbits:isnotset,nfw.run1;)"]
    assert lines[2] == ('drop ip any any -> any any (msg:"aws:alert_established action"; flow:established; '
                        'gid:2; sid:4; rev:1; flowbits:isnotset,nfw.run1; flowbits:isnotset,nfw.run2;)')


@pytest.mark.parametrize("actions, expected", [
    (["aws:drop_strict"], ['drop ip any any -> any any (msg:"aws:drop_strict action"; noalert; gid:2; sid:1; rev:1;)']),
    (["aws:alert_strict"], ['alert ip any any -> any any (msg:"aws:alert_strict action"; gid:2; sid:2; rev:1;)']),
    (["aws:drop_strict", "aws:alert_established"],
     ['alert ip any any -> any any (msg:"aws:alert_established action"; flow:established; gid:2; sid:4; rev:1;)',
      'drop ip any any -> any any (msg:"aws:drop_strict action"; noalert; gid:2; sid:1; rev:1;)']),
])
def test_default_actions_drop_silently_unless_an_alert_action_is_chosen(actions, expected):
    a = rules_string("pass ip any any -> any any (sid:1;)", name="a", StatefulRuleOptions={"RuleOrder": "STRICT_ORDER"})
    p = parse_policy(policy([a], [{"ResourceArn": ARN + "a", "Priority": 1}],
                            StatefulEngineOptions={"RuleOrder": "STRICT_ORDER"}, StatefulDefaultActions=actions), "p")
    lines = [line.replace(" flowbits:isnotset,nfw.run1;", "") for line in rule_lines(render(p, VPC))]
    assert lines[1:1 + len(expected)] == expected


def test_drop_to_alert_override_turns_drops_into_alerts():
    p = parse_policy(policy([DENY], [{"ResourceArn": ARN + "deny", "Override": {"Action": "DROP_TO_ALERT"}}]), "p")
    assert rule_lines(render(p, VPC))[0].startswith("alert tls $HOME_NET any -> $EXTERNAL_NET any (")


@pytest.mark.parametrize("fields, message", [
    ({"StatefulDefaultActions": ["aws:drop_strict"]}, "default actions need STRICT_ORDER"),
    ({"StatefulEngineOptions": {"RuleOrder": "STRICT_ORDER"}, "StatefulDefaultActions": ["aws:drop_all"]},
     "'aws:drop_all' is not a stateful default action"),
    ({"StatefulEngineOptions": {"RuleOrder": "STRICT_ORDER"},
      "StatefulDefaultActions": ["aws:drop_strict", "aws:drop_established"]}, "at most one drop action"),
    ({"StatefulEngineOptions": {"RuleOrder": "FASTEST"}}, "RuleOrder: 'FASTEST' is not valid"),
    ({"StatefulEngineOptions": {"StreamExceptionPolicy": "IGNORE"}}, "StreamExceptionPolicy"),
    ({"StatefulEngineOptions": {"FlowTimeouts": {"TcpIdleTimeoutSeconds": 5}}}, "60 to 6000"),
    ({"StatefulRuleGroupReference": []}, r"FirewallPolicy.StatefulRuleGroupReference: unknown field"),
    ({"StatelessDefaultActions": ["aws:pass", "aws:drop"]}, "must hold exactly one of"),
    ({"StatelessDefaultActions": ["aws:pass", "Count"]}, "custom action 'Count' is not defined here"),
    ({"PolicyVariables": {"RuleVariables": {"HOME_NET": {"Definition": ["10.0.0.0/33"]}}}}, "not a CIDR block"),
    ({"PolicyVariables": {"RuleVariables": {"WEB": {"Definition": ["10.0.0.0/24"]}}}}, "WEB: unknown field"),
])
def test_bad_policies_are_refused_with_the_field(fields, message):
    with pytest.raises(ConfigError, match=message) as e:
        parse_policy(policy([DENY], **fields), "p.json")
    assert str(e.value).startswith("p.json: ")


def test_strict_order_needs_unique_priorities_and_matching_groups():
    strict = {"StatefulEngineOptions": {"RuleOrder": "STRICT_ORDER"}}
    with pytest.raises(ConfigError, match="STRICT_ORDER needs a priority"):
        parse_policy(policy([DENY], **strict), "p.json")
    with pytest.raises(ConfigError, match="rule group deny uses DEFAULT_ACTION_ORDER but the policy uses STRICT_ORDER"):
        parse_policy(policy([DENY], [{"ResourceArn": ARN + "deny", "Priority": 1}], **strict), "p.json")


def test_a_missing_rule_group_says_where_it_was_looked_for(tmp_path):
    with pytest.raises(ConfigError, match="rule group 'nowhere' was not found") as e:
        parse_policy(policy([], [{"ResourceArn": ARN + "nowhere"}]), "p.json", search_dir=tmp_path)
    assert "nowhere.json" in e.value.hint


def test_a_describe_firewall_policy_file_finds_its_groups_next_to_it(tmp_path):
    (tmp_path / "deny.json").write_text(json.dumps({"RuleGroup": DENY["RuleGroup"],
                                                    "RuleGroupResponse": {"RuleGroupName": "deny"}}))
    doc = policy([])
    doc["FirewallPolicy"]["StatefulRuleGroupReferences"] = [{"ResourceArn": ARN + "deny"}]
    (tmp_path / "policy.json").write_text(json.dumps(doc))
    p = load_policy(tmp_path / "policy.json")
    assert [g.group.name for g in p.groups] == ["deny"]


def test_yaml_and_json_with_the_same_keys_render_the_same(tmp_path):
    doc = policy([DENY, rules_string("alert ip any any -> any any (sid:9;)")])
    (tmp_path / "p.json").write_text(json.dumps(doc))
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(doc))
    assert render(load_policy(tmp_path / "p.json"), VPC).rules == render(load_policy(tmp_path / "p.yaml"), VPC).rules


def test_engine_options_map_to_suricata():
    p = parse_policy(policy([DENY], StatefulEngineOptions={"StreamExceptionPolicy": "REJECT",
                                                           "FlowTimeouts": {"TcpIdleTimeoutSeconds": 600}}), "p")
    assert render(p, VPC).engine == {"set": ["exception-policy=reject", "flow-timeouts.tcp.established=600"]}
    assert render(load_policy(POLICIES / "deny-domains.json"), VPC).engine == {"set": ["exception-policy=drop-flow"]}


def test_suricata_errors_are_traced_to_the_group_and_rule():
    r = render(parse_policy(policy([DENY, rules_string("alert ip any any -> any any (sid:1; oops;)")]), "p.json"), VPC)
    line = r.rules.splitlines().index("alert ip any any -> any any (sid:1; oops; gid:102;)") + 1
    out = (f'E: detect-parse: unknown rule keyword \'oops\'.\nE: detect: error parsing signature "..." from file '
           f'/etc/nfwlab/rules/candidate/lab.rules at line {line}\nE: suricata: Loading signatures failed.')
    explained = r.explain(out)
    assert "-> in rule group custom, RulesString line 1" in explained


def test_the_shipped_policies_are_all_found():
    assert {"allow-domains.json", "deny-domains.json", "home-net-trap.json", "next-generation.json",
            "strict-allow.yaml"} <= {p.name for p in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_policy_loads_and_renders(path):
    r = render_any(load_any_policy(path), VPC)
    assert rule_lines(r) and not r.warnings


def test_not_a_policy_or_rule_group(tmp_path):
    (tmp_path / "x.json").write_text('{"Firewall": {}}')
    with pytest.raises(ConfigError, match="neither a firewall policy nor a rule group"):
        load_policy(tmp_path / "x.json")
    (tmp_path / "y.yaml").write_text("FirewallPolicy: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_policy(tmp_path / "y.yaml")


def test_a_long_domain_list_is_matched_through_datasets_with_aws_messages(tmp_path):
    names = [f"d{i:04d}.deny.test" for i in range(1, 1001)] + [".wild.test"]
    (tmp_path / "g.json").write_text(json.dumps({"RuleGroup": {"RulesSource": {"RulesSourceList": {
        "Targets": names, "TargetTypes": ["TLS_SNI", "HTTP_HOST"], "GeneratedRulesType": "DENYLIST"}}}}))
    r = render(load_policy(tmp_path / "g.json"), VPC)
    lines = rule_lines(r)
    assert len(lines) == 4  # one dataset rule and one wildcard rule per type, not 2,002 rules
    assert "tls.sni; to_lowercase; dataset:isset,nfw1-tls-" in lines[0] and 'msg:"matching TLS denylisted FQDNs"' in lines[0]
    assert 'dotprefix; content:".wild.test"' in lines[1]
    assert "http.host; dataset:isset,nfw1-http-" in lines[2] and 'msg:"matching HTTP denylisted FQDNs"' in lines[2]
    import base64
    (tls_file,) = [c for n, c in r.datasets.items() if n.startswith("nfw1-tls-")]
    assert [base64.b64decode(x).decode() for x in tls_file.split()] == names[:-1]
    assert r.notes and "datasets" in r.notes[0]
    # A short list keeps AWS's text, rule by rule.
    assert "dataset" not in render(load_policy(POLICIES / "deny-domains.json"), VPC).rules
