"""Rule order on a running lab: the verdict AWS documents for strict order, decided by the real Suricata.

Every case applies a policy live, sends real requests from server-a, and decides each verdict from the
firewall's own records: the alert (or, for a silent drop, the engine's drop record) of a blocked request,
the answer of a passed one. Each test quotes the sentence of AWS's documentation it follows.

AWS, "Managing evaluation order for Suricata compatible rules" (strict order): "With strict ordering, the
rule groups are evaluated by order of priority, starting from the lowest number, and the rules in each rule
group are processed in the order in which they're defined."
"""
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from verdicts import blocked, dropped_silently, passes, quiet_flow

from lab.lab import Lab
from lab.policy import parse_policy

ARN = "arn:aws:network-firewall:ap-northeast-1:111122223333:stateful-rulegroup/"
STRICT = {"RuleOrder": "STRICT_ORDER"}


def group(name: str, source: dict, order: dict | None = STRICT) -> dict:
    return {"RuleGroupName": name, "RuleGroup": {"RulesSource": source,
                                                 **({"StatefulRuleOptions": order} if order else {})}}


def rules(name: str, *lines: str, order: dict | None = STRICT) -> dict:
    return group(name, {"RulesString": "\n".join(lines)}, order)


@contextmanager
def enforcing(lab: Lab, groups: dict[int, dict], defaults: tuple[str, ...] = (),
              order: str = "STRICT_ORDER") -> Iterator[list[str]]:
    """The lab enforcing a policy of `groups` by priority (listed in the order given, not sorted), then its
    own policy again. Yields the policy's warnings."""
    refs = [{"ResourceArn": ARN + g["RuleGroupName"], **({"Priority": p} if order == "STRICT_ORDER" else {})}
            for p, g in groups.items()]
    data = {"FirewallPolicy": {"StatefulRuleGroupReferences": refs,
                               "StatefulEngineOptions": {"RuleOrder": order},
                               **({"StatefulDefaultActions": list(defaults)} if defaults else {})},
            "RuleGroups": list(groups.values())}
    applied = lab.apply_policy(parse_policy(data, "test policy"))
    try:
        yield list(applied.warnings)
    finally:
        lab.apply_policy(lab.policy)


def blocked_by(lab: Lab, url: str, port: int, sid: int, gid: int = 1) -> dict:
    """The request is dropped, as the firewall's alert for its own flow (rule gid:sid) and the client's timeout
    say; returns that alert."""
    return blocked(lab, url, port, {"alert.signature_id": sid, "alert.gid": gid})


@pytest.fixture
def lab(nfwlab_topology: Lab) -> Lab:
    return nfwlab_topology  # the session's topology (nat-first): the verdicts do not depend on it


@pytest.fixture
def port(nfwlab_ports: Iterator[int]) -> Iterator[int]:
    return nfwlab_ports  # a client port never used before in the session, per request


def test_a_drop_written_before_a_pass_drops_the_request(lab, port):
    """Strict order, the issue's typical policy: priority 10 drops http.host a.example.test, priority 20
    allows .example.test. AWS drops the request; Suricata's action order would have passed it."""
    groups = {
        20: group("allow-example", {"RulesSourceList": {"Targets": [".example.test"], "TargetTypes": ["HTTP_HOST"],
                                                        "GeneratedRulesType": "ALLOWLIST"}}),
        10: rules("drop-a", 'drop http $HOME_NET any -> $EXTERNAL_NET any (http.host; content:"a.example.test"; '
                            'startswith; endswith; msg:"no a.example.test"; flow:to_server; sid:10; rev:1;)'),
    }
    with enforcing(lab, groups):
        blocked_by(lab, "http://a.example.test/", next(port), sid=10)
        passes(lab, "http://example.test/", next(port))
        blocked_by(lab, "http://allowed.example/", next(port), sid=2)  # the allow list's own catch-all


def test_a_pass_written_before_a_drop_passes_the_request_and_logs_nothing(lab, port):
    with enforcing(lab, {10: rules(
            "pass-then-drop",
            'pass http $HOME_NET any -> $EXTERNAL_NET any (http.host; content:"a.example.test"; sid:1;)',
            'drop http $HOME_NET any -> $EXTERNAL_NET any (http.host; content:"a.example.test"; msg:"x"; sid:2;)')}):
        mark, p = lab.log_mark(), next(port)
        passes(lab, "http://a.example.test/", p)
        assert quiet_flow(lab, mark, p, app_proto="http") == []  # its FLOW record comes after any alert


def test_an_alert_written_before_a_pass_logs_and_passes(lab, port):
    """AWS: "The first matching pass, drop or reject decides; alert rules that match before it log" is how
    the lab words the strict-order sentence above for alert rules, which do not stop the evaluation."""
    with enforcing(lab, {10: rules(
            "alert-then-pass",
            'alert http $HOME_NET any -> $EXTERNAL_NET any (http.host; content:"a.example.test"; msg:"seen a"; sid:1;)',
            'pass http $HOME_NET any -> $EXTERNAL_NET any (http.host; content:"example.test"; sid:2;)',
            'alert http $HOME_NET any -> $EXTERNAL_NET any (http.host; content:"a.example.test"; msg:"late"; sid:3;)')}):
        mark, p = lab.log_mark(), next(port)
        passes(lab, "http://a.example.test/", p)
        alert = lab.wait_for_alert({"alert.signature": "seen a", "src_port": p}, since=mark)
        assert alert["alert"]["action"] == "allowed" and alert["verdict"]["action"] == "pass"
        mine = quiet_flow(lab, mark, p, app_proto="http")
        assert [a["alert"]["signature_id"] for a in mine] == [1]  # not the alert after the pass


def test_a_pass_tcp_decides_the_flow_before_a_drop_http_sees_the_request(lab, port):
    """The question AWS users ask most (re:Post, "AWS Network Firewall stateful rule groups"): with
    `drop http ... http.method GET` before `pass tcp ... 80`, "everything goes through". AWS's answer quotes
    the strict-order sentence: the pass matches the TCP handshake, before any HTTP request exists. The lab
    passes it too, and `policy check` warns about it."""
    with enforcing(lab, {10: rules(
            "get-then-tcp",
            'drop http $HOME_NET any -> $EXTERNAL_NET 80 (msg:"HTTP GET"; flow:established, to_server; '
            'http.method; content:"GET"; sid:403; rev:1;)',
            'pass tcp $HOME_NET any -> $EXTERNAL_NET 80 (msg:"HTTP"; sid:404; rev:1;)')}) as warnings:
        mark, p = lab.log_mark(), next(port)
        passes(lab, "http://a.example.test/", p)
        assert quiet_flow(lab, mark, p, app_proto="http", dest_port=80) == []
    assert any("pass tcp rule sid 404" in w and "drop http rule sid 403" in w for w in warnings), warnings


def test_rule_groups_run_by_priority_whatever_their_actions(lab, port):
    """Priority 10 drops blocked.example over TLS, priority 20 passes every TLS Client Hello: the group
    with the lower number is evaluated first, so blocked.example is dropped and the rest passes."""
    groups = {
        20: rules("pass-tls", "pass tls $HOME_NET any -> $EXTERNAL_NET 443 (ssl_state:client_hello; sid:1;)",
                  "pass tcp $HOME_NET any -> $EXTERNAL_NET 443 (flow:not_established; sid:2;)"),
        10: rules("drop-blocked", 'drop tls $HOME_NET any -> $EXTERNAL_NET 443 (tls.sni; content:"blocked.example"; '
                                  'nocase; msg:"no blocked.example"; sid:7;)'),
    }
    with enforcing(lab, groups, defaults=("aws:drop_established", "aws:alert_established")):
        blocked_by(lab, "https://blocked.example/", next(port), sid=7)
        passes(lab, "https://allowed.example/", next(port))


# Each strict-order default action, alone, and each drop with the alert of its scope. AWS, FirewallPolicy
# StatefulDefaultActions: "The default actions to take on a packet that doesn't match any stateful rules. The
# stateful default action is optional, and is only valid when using the strict rule order. Valid values of the
# stateful default action: aws:drop_strict, aws:drop_established, aws:alert_strict, aws:alert_established".
# AWS's logs sign their alerts "aws:alert_strict action" and "aws:alert_established action"; the lab's gid 2 sids
# (docs/policies.md): drop_strict 1, alert_strict 2, drop_established 3, alert_established 4, and a drop with the
# alert of its scope is one rule that drops and alerts, signed as the alert.
# name -> (the default actions, the verdict on what no rule passes, the gid 2 sid of its record, UDP too?). UDP
# where AWS's words settle it: *_strict acts on every "packet that doesn't match"; what makes a UDP flow
# "established" AWS does not say.
DEFAULT_ACTIONS = {
    "drop_strict": (("aws:drop_strict",), "silent drop", 1, True),
    "drop_strict+alert_strict": (("aws:drop_strict", "aws:alert_strict"), "drop", 2, True),
    "alert_strict": (("aws:alert_strict",), "pass", 2, True),
    "drop_established": (("aws:drop_established",), "silent drop", 3, False),
    "drop_established+alert_established": (("aws:drop_established", "aws:alert_established"), "drop", 4, False),
    "alert_established": (("aws:alert_established",), "pass", 4, False),
}
# Passes for allowed.example only, at the application layer, and the TCP handshakes to 80 and 443 (as AWS advises
# for drop_strict: it drops every packet no rule passes, the SYN included).
WEB_ONLY = ('pass tls $HOME_NET any -> $EXTERNAL_NET 443 (tls.sni; content:"allowed.example"; startswith; nocase; '
            'endswith; sid:1;)',
            'pass http $HOME_NET any -> $EXTERNAL_NET 80 (http.host; content:"allowed.example"; startswith; '
            'endswith; sid:2;)',
            "pass tcp $HOME_NET any <> $EXTERNAL_NET [80,443] (flow:not_established; sid:3;)")


@pytest.mark.parametrize("name", DEFAULT_ACTIONS)
def test_each_strict_default_action_over_https_http_tcp_and_udp(lab, port, name):
    """What no rule passes (example.test over HTTPS and HTTP, a plain TCP connection to port 22, a UDP datagram)
    meets the default actions: dropped with the engine's drop record and no alert, dropped with the alert
    (gid 2, its sid, action blocked), or passed with the alert (action allowed); the verdict is the client's
    answer or timeout. allowed.example, which the rules pass, is answered under every one of them."""
    defaults, verdict, sid, udp = DEFAULT_ACTIONS[name]
    requests = ["https://example.test/", "http://example.test/", "tcp://203.0.113.40:22"]
    requests += ["udp://203.0.113.40:514"] if udp else []
    with enforcing(lab, {10: rules("web-only", *WEB_ONLY)}, defaults):
        passes(lab, "https://allowed.example/", next(port))
        passes(lab, "http://allowed.example/", next(port))
        for url in requests:
            p = next(port)
            if verdict == "silent drop":
                record = dropped_silently(lab, url, p)
                assert (record["alert"]["gid"], record["alert"]["signature_id"]) == (2, sid), (url, record["alert"])
            elif verdict == "drop":
                alert = blocked_by(lab, url, p, sid=sid, gid=2)
                assert alert["alert"]["signature"] == f"{defaults[1]} action", alert["alert"]
            else:
                mark = lab.log_mark()
                passes(lab, url, p)
                alert = lab.wait_for_alert({"alert.gid": 2, "alert.signature_id": sid, "src_port": p}, since=mark)
                assert alert["alert"]["signature"] == f"{defaults[0]} action", alert["alert"]
                mine = [a for a in lab.alerts(since=mark) if alert["flow_id"] == a["flow_id"]]
                assert all(a["alert"]["action"] == "allowed" and a["verdict"]["action"] != "drop" for a in mine), mine


def test_tls_and_http_allow_lists_with_a_custom_drop_before_them(lab, port):
    """A policy people write: a custom TLS drop (priority 5), then an allow list for TLS and HTTP
    (priority 10). The custom drop wins for a.example.test over TLS only; the list decides the rest."""
    groups = {
        10: group("allow-list", {"RulesSourceList": {"Targets": [".example.test", "allowed.example"],
                                                     "TargetTypes": ["TLS_SNI", "HTTP_HOST"],
                                                     "GeneratedRulesType": "ALLOWLIST"}}),
        5: rules("custom-drop", 'drop tls $HOME_NET any -> $EXTERNAL_NET any (tls.sni; content:"a.example.test"; '
                                'msg:"custom: no a.example.test over TLS"; flow:to_server; sid:50;)'),
    }
    with enforcing(lab, groups):
        blocked_by(lab, "https://a.example.test/", next(port), sid=50)
        passes(lab, "http://a.example.test/", next(port))
        passes(lab, "https://example.test/", next(port))
        passes(lab, "https://allowed.example/", next(port))
        blocked_by(lab, "https://blocked.example/", next(port), sid=5)  # "not matching any TLS allowlisted FQDNs"
        blocked_by(lab, "http://blocked.example/", next(port), sid=6)


def test_default_action_order_still_applies_pass_rules_first(lab, port):
    """AWS, action order: "Actions are processed in the following order: pass, drop, reject, alert". The
    same two rules as the first strict-order case, in DEFAULT_ACTION_ORDER: the request passes."""
    with enforcing(lab, {0: rules(
            "drop-then-pass", 'drop http $HOME_NET any -> $EXTERNAL_NET any (http.host; content:"a.example.test"; '
                              'msg:"no a"; sid:1;)',
            'pass http $HOME_NET any -> $EXTERNAL_NET any (http.host; content:".example.test"; endswith; sid:2;)',
            order=None)}, order="DEFAULT_ACTION_ORDER"):
        passes(lab, "http://a.example.test/", next(port))
