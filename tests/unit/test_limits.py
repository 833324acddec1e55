"""AWS's limits on stateful rules: refused with AWS's reason even where Suricata would run the rule."""
import pytest

from lab.errors import ConfigError
from lab.policy import parse_rule_group, rules_file_policy


def group(text, **response):
    return {"RuleGroupName": "g", "RuleGroup": {"RulesSource": {"RulesString": text}},
            **({"RuleGroupResponse": {"RuleGroupName": "g", "Type": "STATEFUL", **response}} if response else {})}


@pytest.mark.parametrize("rule, reason", [
    ('alert tls any any -> any any (tls.sni; dataset:isset,bad,type string,load bad.lst; sid:1;)', "Datasets"),
    ('alert http any any -> any any (http.host; datarep:bad,>,5,type string; sid:1;)', "Datasets"),
    ("drop ip any any -> any any (iprep:src,BadHosts,>,30; sid:1;)", "IP reputation"),
    ('alert tcp any any -> any any (lua:check.lua; sid:1;)', "Lua scripting"),
    ("alert tcp any any -> any any (threshold:type limit,track by_src,count 1,seconds 60; sid:1;)", "Thresholding"),
    ("alert tcp any any -> any any (detection_filter:track by_src,count 5,seconds 60; sid:1;)", "Thresholding"),
    ("alert tcp any any -> any any (xbits:set,seen,track ip_src; sid:1;)", "host or IP-level tracking"),
    ("alert tcp any any -> any any (hostbits:set,seen; sid:1;)", "host or IP-level tracking"),
    ("alert tcp any any -> any any (tag:host,60,seconds,src; sid:1;)", "tag:host"),
    ('alert http any any -> any any (filemagic:"PDF"; sid:1;)', "File extraction"),
    ("alert http any any -> any any (filestore; sid:1;)", "File extraction"),
    ("alert sctp any any -> any any (sid:1;)", "SCTP protocol"),
    ("alert ftp-data any any -> any any (sid:1;)", "FTP-data protocol detection"),
    ("alert ikev2 any any -> any any (sid:1;)", "IKEv2 protocol"),
    ("alert quic any any -> any any (sid:1;)", "QUIC protocol"),
    ("alert tcp any any -> any any (enip_command:99; sid:1;)", "ENIP/CIP keywords"),
    ("reject ftp any any -> any any (sid:1;)", "doesn't support FTP or IMAP"),
    ("rejectboth tcp any any -> any any (sid:1;)", "no rule action but pass, drop, reject and alert"),
])
def test_rules_aws_refuses_are_refused_with_aws_reason(rule, reason):
    with pytest.raises(ConfigError, match=reason) as e:
        parse_rule_group(group(rule), "g.yaml")
    assert "g.yaml: RuleGroup.RulesSource.RulesString line 1" in str(e.value)


def test_rules_aws_accepts_pass():
    parse_rule_group(group('drop http any any -> any any (http.host; content:"a"; xbits:set,seen,track tx; '
                           'file_data; content:"x"; sid:1;)\nreject tcp any any -> any any (sid:2;)'), "g.yaml")


def test_a_suricata_rules_file_runs_as_is(tmp_path):
    path = tmp_path / "raw.rules"
    path.write_text("alert tcp any any -> any any (threshold:type limit,track by_src,count 1,seconds 60; sid:1;)\n")
    assert rules_file_policy(path).groups[0].group.rules[0].text.startswith("alert tcp")


def test_a_group_over_its_capacity_is_refused():
    text = "\n".join(f"alert tcp any any -> any {p} (sid:{p};)" for p in range(1, 4))
    with pytest.raises(ConfigError, match="needs capacity 3 but has 2"):
        parse_rule_group(group(text, Capacity=2), "g.json")
    parse_rule_group(group(text, Capacity=3), "g.json")


def test_a_domain_list_needs_one_capacity_per_rule_aws_generates():
    """Two names for TLS and HTTP in an allow list: 2 x 2 rules and 2 catch-alls."""
    data = {"RuleGroupName": "a", "RuleGroupResponse": {"RuleGroupName": "a", "Type": "STATEFUL", "Capacity": 5},
            "RuleGroup": {"RulesSource": {"RulesSourceList": {"Targets": ["a.test", "b.test"],
                                                              "TargetTypes": ["TLS_SNI", "HTTP_HOST"],
                                                              "GeneratedRulesType": "ALLOWLIST"}}}}
    with pytest.raises(ConfigError, match="needs capacity 6 but has 5"):
        parse_rule_group(data, "a.json")
