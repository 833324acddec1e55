"""Next Generation policies (lab/nextgen.py): reading FirewallPolicyV2 documents, AWS's refusals, and the
Suricata 8 firewall-mode text they become. The verdicts themselves are tested on a real lab
(tests/integration/test_next_generation.py)."""
import json
from pathlib import Path

import pytest
import yaml

from lab.errors import ConfigError
from lab.nextgen import (
    APP_HOOKS,
    NextGenPolicy,
    aws_hook,
    load_any_policy,
    parse_nextgen,
    render_any,
    render_nextgen,
    suricata_hook,
)
from lab.policy import Policy

VPC = "10.0.0.0/16"
ROOT = Path(__file__).resolve().parents[2]  # the repository, wherever pytest runs from


def doc(firewall_rules=None, rules_string=None, ips=None, **policy) -> dict:
    source = {"FirewallRules": firewall_rules} if firewall_rules is not None else {"RulesString": rules_string}
    entries = [{"Priority": 10, "InlineRuleGroup": {"RulesSource": source}}] \
        if firewall_rules is not None or rules_string is not None else []
    return {"FirewallPolicyV2Name": "p", "FirewallPolicyV2": {
        "FirewallRuleGroupEntries": entries,
        **({"IpsRuleGroupEntries": [{"InlineRuleGroup": {"RulesSource": {"RulesString": ips}}}]} if ips else {}),
        **policy}}


def modeled(**fields) -> dict:
    return {"Action": "ACCEPT", "ActionScope": "FLOW", "Hook": "TLS_CLIENT_HELLO", "Protocol": "TLS",
            "RuleOptions": [{"Keyword": "tls.sni"}, {"Keyword": "content", "Settings": ['"a.example"']}], **fields}


def firewall_lines(data: dict) -> list[str]:
    r = render_nextgen(parse_nextgen(data, "p.json"), VPC)
    return [line for line, origin in zip(r.firewall.splitlines(), r.firewall_origins, strict=True)
            if origin and not origin.startswith("(lab) ")]


def test_the_shipped_policy_is_next_generation_and_renders_both_engines():
    p = load_any_policy(ROOT / "policies" / "next-generation.json")
    assert isinstance(p, NextGenPolicy) and p.default_action == "DROP" and p.mode == "ENFORCE"
    r = render_any(p, VPC)
    assert r.kind == "next-generation" and r.rule_count == 7
    assert "drop:flow,alert tls:client_hello_done $HOME_NET any -> any any" in r.firewall
    assert 'alert http $HOME_NET any -> any any (msg:"IPS: HTTP request' in r.rules
    assert "mpm-algo=auto" in r.engine["set"] and "exception-policy=reject" in r.engine["set"]
    conf = yaml.safe_load(r.variables)
    assert conf["firewall"]["rule-files"] == ["firewall.rules"]
    assert conf["firewall"]["policies"] == {"packet": {"default-policy": ["drop:packet", "alert"]},
                                            "app": {"default-policy": ["drop:flow", "alert"]}}


def test_a_classic_policy_still_loads_as_classic():
    assert isinstance(load_any_policy(ROOT / "policies" / "deny-domains.json"), Policy)


def test_a_modeled_rule_compiles_into_one_rule_string():
    lines = firewall_lines(doc([modeled(AlertEnabled=True, BypassIPSEnabled=True, SourceIPs="$HOME_NET",
                                        DestPorts="443", RuleOptions=[{"Keyword": "tls.sni"},
                                                                      {"Keyword": "sid", "Settings": ["9"]}])]))
    assert lines == ["accept:flow,pass:flow,alert tls:client_hello_done $HOME_NET any -> any 443 (tls.sni; sid:9;)"]


def test_a_modeled_rule_without_a_sid_gets_its_place():
    lines = firewall_lines(doc([modeled(), modeled(Action="DROP")]))
    assert [line.rsplit("sid:", 1)[1].split(";")[0] for line in lines] == ["1", "2"]


def test_hooks_are_named_as_aws_writes_them_and_run_under_suricatas_names():
    assert suricata_hook("tls:client_hello") == "tls:client_hello_done"
    assert suricata_hook("tls:<client_started") == "tls:<client_in_progress"
    assert suricata_hook("http1:request_headers") == "http1:request_headers"
    assert aws_hook("tls:client_hello_done") == "tls:client_hello" and aws_hook("http:request_line") == \
        "http1:request_line"
    lines = firewall_lines(doc(rules_string="accept:hook tls:client_started any any -> any any (sid:1;)"))
    assert lines == ["accept:hook,alert tls:client_in_progress any any -> any any (sid:1; metadata:nfwlab explain;)"]


def test_accept_prior_hooks_is_written_out_as_accepts_of_the_earlier_hooks():
    r = render_nextgen(parse_nextgen(doc([modeled(AcceptPriorHooks=True, DestPorts="443")]), "p.json"), VPC)
    body = r.firewall.splitlines()
    start = next(i for i, line in enumerate(body) if "tls:client_in_progress" in line)
    assert body[start].startswith("accept:hook,alert tls:client_in_progress any any -> any 443 (")
    assert "gid:4;" in body[start] and "AcceptPriorHooks of rule 1" in body[start]
    assert body[start + 1].startswith("accept:flow,alert tls:client_hello_done any any -> any 443")
    http = firewall_lines(doc(rules_string="accept:flow http1:<request_headers any any -> any any "
                                           "(http.host; content:\"a\"; sid:1;)"))
    assert http[0].startswith("accept:flow,alert http1:request_headers")
    r = render_nextgen(parse_nextgen(doc(rules_string="accept:flow http1:<request_headers any any -> any any "
                                                      "(http.host; content:\"a\"; sid:1;)"), "p.json"), VPC)
    assert [line.split()[1] for line in r.firewall.splitlines()[2:5]] == \
        ["http1:request_started", "http1:request_line", "http1:request_headers"]


@pytest.mark.parametrize("default, app, packet", [
    ("DROP", "drop:flow,alert", ["drop:packet", "alert"]),
    ("REJECT", "reject:flow,alert", ["reject:packet", "alert"]),
    ("ALERT", "accept:hook,alert", ["accept:hook", "alert"]),
    ("ACCEPT", "accept:hook", ["accept:hook"]),
])
def test_the_default_action_is_written_at_every_application_hook(default, app, packet):
    r = render_nextgen(parse_nextgen(doc(FirewallDefaultAction=default), "p.json"), VPC)
    defaults = [line for line in r.firewall.splitlines() if "gid:2;" in line]
    assert len(defaults) == sum(len(h) for h in APP_HOOKS.values())
    assert all(line.startswith(app + " ") and f'"FirewallDefaultAction {default}"' in line for line in defaults)
    assert yaml.safe_load(r.variables)["firewall"]["policies"]["packet"]["default-policy"] == packet


def test_monitor_mode_turns_every_block_into_a_logged_accept():
    data = doc(rules_string="drop:flow tls:client_hello any any -> any any (tls.sni; content:\"x\"; sid:1;)\n"
                            "reject:packet tcp:all any any -> any 22 (sid:2;)",
               ips='drop http any any -> any any (http.host; content:"x"; sid:5;)',
               PolicyMode="MONITOR", FirewallDefaultAction="DROP",
               StatefulEngineOptions={"StreamExceptionPolicy": "DROP"})
    r = render_nextgen(parse_nextgen(data, "p.json"), VPC)
    fw = firewall_lines(data)
    assert fw[0].startswith("accept:flow,alert tls:client_hello_done") and fw[1].startswith("accept:packet,alert")
    assert 'alert http any any -> any any (http.host; content:"x"; sid:5;)' in r.rules
    assert "exception-policy=ignore" in r.engine["set"]  # AWS: "it uses Continue"
    assert '"FirewallDefaultAction DROP (PolicyMode MONITOR)"' in r.firewall
    assert yaml.safe_load(r.variables)["firewall"]["policies"]["packet"]["default-policy"] == ["accept:hook", "alert"]


def test_rule_variables_of_a_firewall_group_are_scoped_to_it():
    data = doc(rules_string="accept:hook tcp:all $WEB any -> any $PORTS (sid:1;)")
    data["FirewallPolicyV2"]["FirewallRuleGroupEntries"][0]["InlineRuleGroup"]["RuleVariables"] = {
        "IPSets": {"WEB": {"Definition": ["10.0.1.0/24"]}}, "PortSets": {"PORTS": {"Definition": ["443"]}}}
    r = render_nextgen(parse_nextgen(data, "p.json"), VPC)
    assert "accept:hook tcp:all $FW1_WEB any -> any $FW1_PORTS (sid:1;)" in r.firewall
    groups = yaml.safe_load(r.variables)["vars"]
    assert groups["address-groups"]["FW1_WEB"] == "[10.0.1.0/24]" and groups["port-groups"]["FW1_PORTS"] == "[443]"


def test_referenced_groups_come_from_the_documents_rule_groups_by_priority(tmp_path):
    data = {"FirewallPolicyV2": {"FirewallRuleGroupEntries": [
        {"Priority": 20, "ResourceArn": "arn:aws:network-firewall:us-east-1:1:firewall-rulegroup/late"},
        {"Priority": 5, "ResourceArn": "early"}],
        "IpsRuleGroupEntries": [{"ResourceArn": "ips", "Override": {"Action": "DROP_TO_ALERT"}}]},
        "RuleGroups": [
            {"RuleGroupName": "late", "FirewallRuleGroup": {"RulesSource": {"RulesString":
                                                                            "accept:hook tcp:all any any -> any 80 (sid:1;)"}}},
            {"RuleGroupName": "early", "FirewallRuleGroup": {"RulesSource": {"FirewallRules": [
                modeled(Hook="TCP_ALL", Protocol="TCP", ActionScope="HOOK", RuleOptions=[])]}}},
            {"RuleGroupName": "ips", "IpsRuleGroup": {"RulesSource": {"RulesString":
                                                                      'drop tcp any any -> any 22 (msg:"ssh"; sid:1;)'}}}]}
    (tmp_path / "p.json").write_text(json.dumps(data))
    p = load_any_policy(tmp_path / "p.json")
    assert [g.name for g in p.firewall] == ["early", "late"]
    r = render_any(p, VPC)
    assert r.firewall.index("# rule group early") < r.firewall.index("# rule group late")
    assert "gid:202;" in r.firewall  # both groups use sid 1: the later keeps it under its own gid
    assert 'alert tcp any any -> any 22 (msg:"ssh"; sid:1;)' in r.rules  # DROP_TO_ALERT


def test_a_domain_list_firewall_group_generates_the_connection_and_name_rules():
    data = {"FirewallPolicyV2": {"FirewallRuleGroupEntries": [{"Priority": 1, "ResourceArn": "allow"}]},
            "RuleGroups": [{"RuleGroupName": "allow", "FirewallRuleGroup": {"RulesSource": {"RulesSourceList": {
                "Targets": ["allowed.example", ".example.test"], "TargetTypes": ["TLS_SNI", "HTTP_HOST"],
                "GeneratedRulesType": "ALLOWLIST"}}}}]}
    lines = firewall_lines(data)
    assert lines[0].startswith("accept:hook tcp:all $HOME_NET any -> any any")
    assert any(line.startswith("accept:flow,alert tls:client_hello_done $HOME_NET") and '"allowed.example"' in line
               for line in lines)
    assert any(line.startswith("accept:flow,alert http1:request_headers") and "dotprefix" in line for line in lines)


REFUSED = [
    ("FirewallDefaultAction", doc(FirewallDefaultAction="PASS"), "FirewallDefaultAction: 'PASS' is not valid"),
    ("PolicyMode", doc(PolicyMode="AUDIT"), "PolicyMode: 'AUDIT' is not valid"),
    ("StreamExceptionPolicy", doc(StatefulEngineOptions={"StreamExceptionPolicy": "CONTINUE"}),
     "supports only the Drop and Reject"),
    ("TcpIdleTimeoutSeconds", doc(StatefulEngineOptions={"FlowTimeouts": {"TcpIdleTimeoutSeconds": 10}}),
     "60 to 6000"),
    ("TLSInspectionConfigurationArn", doc(TLSInspectionConfigurationArn="arn:aws:x"), "TLS inspection"),
    ("Route53ResolvedIPValidation", doc(Route53ResolvedIPValidation={"Action": "DROP"}), "Route 53"),
    ("unknown field", doc(RuleOrder="STRICT_ORDER"), "FirewallPolicyV2.RuleOrder: unknown field"),
    ("Action", doc([modeled(Action="PASS")]), "Action: 'PASS' is not valid"),
    ("ActionScope", doc([modeled(Action="DROP", ActionScope="HOOK")]), "'HOOK' is not valid for DROP"),
    ("ActionScope missing", doc([modeled(ActionScope=None)]), "ActionScope: None is not valid"),
    ("Hook", doc([modeled(Hook=None)]), "Hook: missing"),
    ("Protocol", doc([modeled(Protocol="UDP", Hook="TCP_ALL")]), "does not match the hook"),
    ("AcceptPriorHooks", doc([modeled(Action="DROP", AcceptPriorHooks=True)]), "valid only with an accept action"),
    ("BypassIPSEnabled", doc([modeled(ActionScope="HOOK", BypassIPSEnabled=True)]), "flow or packet scope"),
    ("AlertEnabled", doc([modeled(AlertEnabled="yes")]), "AlertEnabled: 'yes' is not true or false"),
    ("RuleMetadata", doc([modeled(RuleMetadata={"Enabled": False})]), "RuleMetadata.Enabled: unknown field"),
    ("RuleDescription", doc([modeled(RuleMetadata={"RuleDescription": "x" * 513})]), "at most 512"),
    ("RuleOptions", doc([modeled(RuleOptions=[{"Keyword": "Bad Keyword"}])]), "is not a Suricata keyword"),
    ("SourceIPs", doc([modeled(SourceIPs="10.0.0.0/8 ; x")]), "is not an address or port"),
    ("RulesString primary pass", doc(rules_string="pass:flow tcp:all any any -> any any (sid:1;)"),
     "can't use pass or alert as its primary action"),
    ("RulesString config", doc(rules_string="config:packet tcp:all any any -> any any (sid:1;)"),
     "config action isn't supported"),
    ("RulesString no scope", doc(rules_string="accept tcp:all any any -> any any (sid:1;)"), "scope is mandatory"),
    ("RulesString no hook", doc(rules_string="accept:hook tcp any any -> any any (sid:1;)"), "no hook"),
    ("RulesString drop:hook", doc(rules_string="drop:hook tcp:all any any -> any any (sid:1;)"),
     "drop takes the scopes flow, packet"),
    ("RulesString pass after drop", doc(rules_string="drop:flow,pass:flow tcp:all any any -> any any (sid:1;)"),
     "secondary action 'pass:flow'"),
    ("RulesString < with drop", doc(rules_string="drop:flow tls:<client_hello any any -> any any (sid:1;)"),
     "valid only with an accept action"),
    ("RulesString no sid", doc(rules_string="accept:hook tcp:all any any -> any any (msg:\"x\";)"), "no sid"),
    ("RulesString refused keyword", doc(rules_string="accept:hook tcp:all any any -> any any (iprep:src,x,>,1; "
                                                     "sid:1;)"), "AWS does not support IP reputation"),
    ("duplicate sid", doc(rules_string="accept:hook tcp:all any any -> any 1 (sid:1;)\n"
                                       "accept:hook tcp:all any any -> any 2 (sid:1;)"), "sid 1 is used twice"),
    ("embedded sids across sections", doc(rules_string="accept:hook tcp:all any any -> any 1 (sid:1;)",
                                          ips='alert tcp any any -> any any (msg:"x"; sid:1;)'),
     "sid 1 is used by two embedded rules"),
    ("ReferenceSets", {"FirewallPolicyV2": {"FirewallRuleGroupEntries": [{"Priority": 1, "InlineRuleGroup": {
        "ReferenceSets": {"IPSetReferences": {"X": {"ReferenceArn": "arn:aws:x"}}},
        "RulesSource": {"RulesString": "accept:hook tcp:all any any -> any any (sid:1;)"}}}]}},
     "don't support IP set references"),
    ("inline domain list", {"FirewallPolicyV2": {"FirewallRuleGroupEntries": [{"Priority": 1, "InlineRuleGroup": {
        "RulesSource": {"RulesSourceList": {"Targets": ["a.example"], "TargetTypes": ["TLS_SNI"],
                                            "GeneratedRulesType": "ALLOWLIST"}}}}]}},
     "can't use a domain list rules source"),
    ("two rule sources", {"FirewallPolicyV2": {"FirewallRuleGroupEntries": [{"Priority": 1, "InlineRuleGroup": {
        "RulesSource": {"RulesString": "x", "FirewallRules": []}}}]}}, "exactly one of"),
    ("Priority missing", {"FirewallPolicyV2": {"FirewallRuleGroupEntries": [{"InlineRuleGroup": {}}]}},
     "Priority: None is not a priority"),
    ("Priority twice", {"FirewallPolicyV2": {"FirewallRuleGroupEntries": [
        {"Priority": 1, "InlineRuleGroup": {"RulesSource": {"RulesString": "accept:hook tcp:all any any -> any 1 "
                                                                           "(sid:1;)"}}},
        {"Priority": 1, "InlineRuleGroup": {"RulesSource": {"RulesString": "accept:hook tcp:all any any -> any 2 "
                                                                           "(sid:2;)"}}}]}},
     "must have a unique priority"),
    ("inline and reference", {"FirewallPolicyV2": {"FirewallRuleGroupEntries": [
        {"Priority": 1, "ResourceArn": "x", "InlineRuleGroup": {}}]}}, "Provide either InlineRuleGroup"),
    ("missing group", {"FirewallPolicyV2": {"FirewallRuleGroupEntries": [{"Priority": 1, "ResourceArn": "nowhere"}]}},
     "rule group 'nowhere' was not found"),
    ("IPS priority", {"FirewallPolicyV2": {"IpsRuleGroupEntries": [{"Priority": 1, "ResourceArn": "x"}]}},
     "IPS section entries don't use a priority"),
    ("IPS override", {"FirewallPolicyV2": {"IpsRuleGroupEntries": [{"ResourceArn": "x",
                                                                    "Override": {"Action": "ALERT_TO_DROP"}}]}},
     "Override.Action: 'ALERT_TO_DROP' is not valid"),
    ("IPS modeled rules", {"FirewallPolicyV2": {"IpsRuleGroupEntries": [{"InlineRuleGroup": {"RulesSource": {
        "FirewallRules": []}}}]}}, "RulesSource.FirewallRules: unknown field"),
    ("IPS refused keyword", doc(ips='alert tcp any any -> any any (msg:"x"; lua:x.lua; sid:1;)'), "Lua scripting"),
    ("firewall group in the IPS section", {"FirewallPolicyV2": {"IpsRuleGroupEntries": [{"ResourceArn": "fw"}]},
                                           "RuleGroups": [{"RuleGroupName": "fw", "FirewallRuleGroup": {}}]},
     "rule group fw is a FIREWALL rule group"),
]


@pytest.mark.parametrize("data, message", [(d, m) for _, d, m in REFUSED], ids=[i for i, _, _ in REFUSED])
def test_every_field_aws_refuses_is_refused_with_a_message_that_names_it(data, message):
    with pytest.raises(ConfigError) as e:
        render_nextgen(parse_nextgen(data, "p.json"), VPC)
    said = f"{e.value.message} -> {e.value.hint}"  # what is wrong and where, then what to do (AWS's words)
    assert message in said and e.value.message.startswith("p.json"), said


def test_a_disabled_rule_is_kept_as_a_comment_and_not_evaluated():
    r = render_nextgen(parse_nextgen(doc([modeled(RuleMetadata={"RuleEnabled": False}), modeled(
        RuleOptions=[{"Keyword": "sid", "Settings": ["7"]}])]), "p.json"), VPC)
    assert r.rule_count == 1 and "sid:7;" in r.firewall
    assert any(line.startswith("# disabled (") and line.endswith("sid:1;)") for line in r.firewall.splitlines())


def test_a_rule_description_becomes_comment_lines_above_its_rule():
    r = render_nextgen(parse_nextgen(doc([modeled(RuleMetadata={"RuleDescription": "allow a\nfor the app"})]),
                                     "p.json"), VPC)
    lines = r.firewall.splitlines()
    i = lines.index("# allow a")
    assert lines[i + 1] == "# for the app" and lines[i + 2].startswith("accept:flow,alert tls:client_hello_done")


def supervisor(monkeypatch):
    """The firewall node's supervisor (compose/images/firewall.py), loaded as the node runs it."""
    import importlib.util
    import json as json_module

    from lab.nextgen import AWS_HOOKS
    monkeypatch.setenv("NFWLAB_AWS_HOOKS", json_module.dumps(AWS_HOOKS))
    spec = importlib.util.spec_from_file_location("supervisor", ROOT / "compose" / "images" / "firewall.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_alert_log_speaks_aws_hook_names_and_keeps_the_labs_own_alerts_out(monkeypatch):
    sup = supervisor(monkeypatch)
    event = {"timestamp": "2026-11-30T14:37:10.882970+0000", "pkt_src": "wire/pcap",
             "alert": {"engine": "fw"}, "firewall": {"hook": "tls:client_hello_done", "policy": "drop:flow,alert"}}
    assert sup.envelope(dict(event))["event"]["firewall"]["hook"] == "tls:client_hello"
    assert not sup.lab_only(event)
    assert sup.lab_only({**event, "alert": {"engine": "fw", "metadata": {"nfwlab": ["explain"]}}})
    assert sup.lab_only({**event, "pkt_src": "capture timeout flush"})  # a timed-out flow's flush
    assert not sup.lab_only({**event, "pkt_src": "stream (flow timeout)", "alert": {"engine": "td"}})


def test_metrics_of_a_next_generation_policy_name_its_two_engines():
    from lab.metrics import endpoint_metrics

    counters = {"decoder": {"pkts": 100}, "firewall": {"accepted": 80, "blocked": 20, "rejected": 5},
                "ips": {"accepted": 70, "blocked": 10, "rejected": 1, "drop_reason": {"stream_midstream": 2}}}
    got = {(m.name, dict(m.dimensions)["Engine"]): m.value
           for m in endpoint_metrics("fw", "az-a", [], counters, "next-generation")}
    assert got == {("ReceivedPackets", "Firewall"): 100, ("PassedPackets", "Firewall"): 80,
                   ("DroppedPackets", "Firewall"): 15, ("RejectedPackets", "Firewall"): 5,
                   ("PassedPackets", "IPS"): 70, ("DroppedPackets", "IPS"): 7, ("RejectedPackets", "IPS"): 1,
                   ("InvalidDroppedPackets", "IPS"): 2, ("OtherDroppedPackets", "IPS"): 0}
