"""Rule generation: byte-identical to AWS's documented examples."""
from pathlib import Path

import pytest

from lab.errors import ConfigError
from lab.policy import load_policy, parse_rule_group, render
from lab.rules import DomainList, deny_list, domain_list_rules

POLICIES = Path(__file__).resolve().parent.parent.parent / "policies"

AWS_DENY_EVIL_COM = (
    'drop tls $HOME_NET any -> $EXTERNAL_NET any (ssl_state:client_hello; tls.sni; content:"evil.com"; '
    'startswith; nocase; endswith; msg:"matching TLS denylisted FQDNs"; priority:1; flow:to_server, established; '
    'sid:1; rev:1;)\n'
    'drop http $HOME_NET any -> $EXTERNAL_NET any (http.host; content:"evil.com"; startswith; endswith; '
    'msg:"matching HTTP denylisted FQDNs"; priority:1; flow:to_server, established; sid:2; rev:1;)\n'
)

AWS_HTTP_ALLOW = (
    'pass http $HOME_NET any -> $EXTERNAL_NET any (http.host; dotprefix; content:".amazon.com"; endswith; '
    'msg:"matching HTTP allowlisted FQDNs"; priority:1; flow:to_server, established; sid:1; rev:1;)\n'
    'pass http $HOME_NET any -> $EXTERNAL_NET any (http.host; content:"example.com"; startswith; endswith; '
    'msg:"matching HTTP allowlisted FQDNs"; priority:1; flow:to_server, established; sid:2; rev:1;)\n'
    'drop http $HOME_NET any -> $EXTERNAL_NET any (http.header_names; content:"|0d 0a|"; startswith; '
    'msg:"not matching any HTTP allowlisted FQDNs"; priority:1; flow:to_server, established; sid:3; rev:1;)\n'
)


def test_deny_list_matches_aws_documentation():
    assert domain_list_rules(deny_list(["evil.com"])) == AWS_DENY_EVIL_COM


def test_http_allow_list_matches_aws_documentation():
    group = DomainList("allow", (".amazon.com", "example.com"), ("HTTP_HOST",), "ALLOWLIST")
    assert domain_list_rules(group) == AWS_HTTP_ALLOW


AWS_TLS_ALLOW = (
    'pass tls $HOME_NET any -> $EXTERNAL_NET any (ssl_state:client_hello; tls.sni; dotprefix; content:".amazon.com"; '
    'nocase; endswith; msg:"matching TLS allowlisted FQDNs"; priority:1; flow:to_server, established; sid:1; rev:1;)\n'
    'pass tls $HOME_NET any -> $EXTERNAL_NET any (ssl_state:client_hello; tls.sni; content:"example.com"; startswith; '
    'nocase; endswith; msg:"matching TLS allowlisted FQDNs"; priority:1; flow:to_server, established; sid:2; rev:1;)\n'
    'drop tls $HOME_NET any -> $EXTERNAL_NET any (msg:"not matching any TLS allowlisted FQDNs"; priority:1; '
    'ssl_state:client_hello; flow:to_server, established; sid:3; rev:1;)\n'
)


def test_tls_allow_list_matches_aws_documentation():
    group = DomainList("allow", (".amazon.com", "example.com"), ("TLS_SNI",), "ALLOWLIST")
    assert domain_list_rules(group) == AWS_TLS_ALLOW


@pytest.mark.parametrize("kind, action, word", [("ALERTLIST", "alert", "alertlisted"),
                                                ("REJECTLIST", "reject", "rejectlisted")])
def test_alert_and_reject_lists_act_as_named_with_no_catch_all(kind, action, word):
    rules = domain_list_rules(DomainList("g", ("evil.com",), ("TLS_SNI", "HTTP_HOST"), kind)).splitlines()
    assert len(rules) == 2
    assert rules[0].startswith(f"{action} tls ") and f'msg:"matching TLS {word} FQDNs"' in rules[0]
    assert rules[1].startswith(f"{action} http ") and f'msg:"matching HTTP {word} FQDNs"' in rules[1]


def test_sids_run_one_per_target_and_type():
    rules = domain_list_rules(deny_list(["a.example", ".b.example"])).splitlines()
    assert [r.rsplit("sid:", 1)[1].split(";")[0] for r in rules] == ["1", "2", "3", "4"]
    assert [r.split()[1] for r in rules] == ["tls", "tls", "http", "http"]


# The rules AWS generates for the lab's deny list (policies/deny-domains.json), written out: AWS's documented
# deny list (AWS_DENY_EVIL_COM above) with blocked.example.
LAB_DENY_LIST_RULES = [
    'drop tls $HOME_NET any -> $EXTERNAL_NET any (ssl_state:client_hello; tls.sni; content:"blocked.example"; '
    'startswith; nocase; endswith; msg:"matching TLS denylisted FQDNs"; priority:1; flow:to_server, established; '
    'sid:1; rev:1;)',
    'drop http $HOME_NET any -> $EXTERNAL_NET any (http.host; content:"blocked.example"; startswith; endswith; '
    'msg:"matching HTTP denylisted FQDNs"; priority:1; flow:to_server, established; sid:2; rev:1;)',
]


def test_lab_deny_list_file_is_aws_describe_rule_group_output():
    policy = load_policy(POLICIES / "deny-domains.json")
    group = policy.groups[0].group
    assert group.name == "deny-domains" and group.kind == "RulesSourceList"
    assert [r.text for r in group.rules] == LAB_DENY_LIST_RULES
    # The file the firewall loads for the lab's own policy (lab.rules): two comment lines, then those rules.
    assert render(policy, "10.0.0.0/16").rules.splitlines() == [
        "# firewall policy deny-domains: DEFAULT_ACTION_ORDER; HOME_NET 10.0.0.0/16 (the VPC CIDR)",
        "# rule group deny-domains (RulesSourceList)", *LAB_DENY_LIST_RULES]


@pytest.mark.parametrize("mutate, message", [
    (lambda g: g["RulesSourceList"].update(Targets=[]), "Targets is empty"),
    (lambda g: g["RulesSourceList"].update(TargetTypes=["DNS"]), "TargetTypes"),
    (lambda g: g["RulesSourceList"].update(GeneratedRulesType="BLOCK"), "GeneratedRulesType"),
    (lambda g: g["RulesSourceList"].update(Targets=['evil";drop']), "not a domain name"),
    (lambda g: g["RulesSourceList"].update(Extra=1), "unknown field"),
    (lambda g: g["RulesSourceList"].update(Targets=["*.evil.com"]), "not a domain name"),
    (lambda g: g.update(RulesString="pass ip any any -> any any (sid:1;)"), "exactly one of"),
])
def test_bad_rule_groups_are_refused_with_the_place(mutate, message):
    source = {"RulesSourceList": {"Targets": ["x.example"], "TargetTypes": ["TLS_SNI"], "GeneratedRulesType": "DENYLIST"}}
    mutate(source)
    with pytest.raises(ConfigError, match=message) as e:
        parse_rule_group({"RuleGroup": {"RulesSource": source}}, "group.json")
    assert "group.json" in str(e.value)


def test_bad_json_names_the_file(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text("{not json")
    with pytest.raises(ConfigError, match="broken.json: not valid JSON"):
        load_policy(p)
