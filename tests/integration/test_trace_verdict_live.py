"""`nfwlab trace` states the policy's verdict at the firewall, and the real firewall agrees: each verdict is held
against a real request and the firewall's own records (the ALERT log's sid and gid, the answer from the far
side, the FLOW log). Then a lab started with `--domains` and `--home-net`: trace, diagram and the live view use
them, and `policy apply` keeps that HOME_NET (read from the firewall node itself, and proven by what it drops).

Two labs of this module's own (named after --nfwlab-name), each up for the module and removed at its end.
"""
import json
import subprocess
import sys

import pytest
import yaml

from lab import Lab
from lab.pytest_plugin import worker_lab_name

NAT_GATEWAY, WEB_SERVER = "10.0.13.92", "203.0.113.10"
DOMAINS = ["allowed.example", "blocked.example", "shop.example"]  # shop.example: not in the topology's own list
PRIVATE = "10.0.128.0/20"  # server-a's subnet only: the NAT gateway's 10.0.13.92 is outside it
VPC_CIDR = "10.0.0.0/16"


def lab_name(request, suffix):
    return worker_lab_name(f"{request.config.getoption('--nfwlab-name')}-{suffix}")


@pytest.fixture(scope="module")
def lab(request):
    """The default lab: nat-first, the shipped deny list, HOME_NET the VPC CIDR."""
    with Lab(lab_name(request, "tv")).running("nat-first") as running:
        yield running


@pytest.fixture(scope="module")
def home_lab(request):
    """`nfwlab up --domains allowed.example,blocked.example,shop.example --home-net 10.0.128.0/20`."""
    with Lab(lab_name(request, "th"), domains=DOMAINS, home_net=PRIVATE).running("nat-first") as running:
        yield running


def nfwlab(lab, *argv):
    done = subprocess.run([sys.executable, "-m", "lab", "--name", lab.name, *argv], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"nfwlab {' '.join(argv)}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done


def traced(lab, dest):
    """The trace's JSON for server-a -> dest: what `nfwlab trace --json` prints (stdout stays JSON)."""
    return json.loads(nfwlab(lab, "trace", "server-a", dest, "--json").stdout)


def blocked(lab, url, port, criteria):
    """The firewall's alert for this test's own flow (its client port), written as the request is dropped."""
    alert = lab.fetch_for_alert("server-a", url, {**criteria, "event.src_port": port}, local_port=port, aws=True)
    return alert["event"]


def passed(lab, url, port):
    """The far side answered (200), and the flow ended with no alert: the FLOW log's record of this flow (its
    client port) comes when it ends, after any alert it would have raised."""
    mark = lab.log_mark()
    result = lab.fetch("server-a", url, local_port=port)
    assert result.status == 200, f"expected {url} to pass the firewall: {result.describe()}"
    lab.wait_for_flows({"event.src_port": port}, since=mark)
    assert not [a for a in lab.alerts(since=mark, aws=True) if a["event"].get("src_port") == port]


def firewall_home_net(lab):
    """HOME_NET as the firewall node's own Suricata reads it: the policy.yaml its suricata.yaml includes."""
    code, out, err = lab.exec("firewall", ["cat", "/etc/nfwlab/rules/policy.yaml"])
    assert code == 0, err
    return yaml.safe_load(out)["vars"]["address-groups"]["HOME_NET"]


# --------------------------------------------------------------------------
# (a) the trace's verdict is the firewall's
# --------------------------------------------------------------------------
def test_the_trace_names_the_sid_the_firewall_alerts_with_for_blocked_example(lab, nfwlab_ports):
    verdict = traced(lab, "blocked.example:443")["policy"]
    assert verdict["origin"] == f"the running lab {lab.name}'s"
    assert (verdict["action"], verdict["rule_group"]) == ("drop", "deny-domains")
    port = next(nfwlab_ports)
    alert = blocked(lab, "https://blocked.example/", port, {"event.tls.sni": "blocked.example"})
    assert (alert["alert"]["signature_id"], alert["alert"].get("gid", 1)) == (verdict["sid"], verdict["gid"])
    assert alert["alert"]["action"] == "blocked" and alert["src_ip"] == NAT_GATEWAY
    assert [[a["gid"], a["sid"]] for a in verdict["alerts"]] == [[alert["alert"].get("gid", 1),
                                                                   alert["alert"]["signature_id"]]]


def test_the_trace_says_allowed_example_passes_and_it_does(lab, nfwlab_ports):
    verdict = traced(lab, "allowed.example:443")["policy"]
    assert verdict["action"] == "pass" and verdict["sid"] is None and verdict["alerts"] == []
    passed(lab, "https://allowed.example/", next(nfwlab_ports))


def test_a_strict_order_default_action_is_named_as_such_and_is_what_the_firewall_does(lab, nfwlab_ports):
    # AWS: "aws:drop_established - Drops only the packets that are in established connections." and
    # "aws:alert_established - Logs an ALERT message on only the packets that are in established connections."
    lab.apply_policy("strict-allow")
    try:
        text = nfwlab(lab, "trace", "server-a", "blocked.example:443").stdout
        assert ("no rule: default action aws:drop_established + aws:alert_established" in text
                and "=> the firewall drops it" in text), text
        verdict = traced(lab, "blocked.example:443")["policy"]
        assert (verdict["gid"], verdict["sid"], verdict["rule_group"]) == (2, 4, None)
        alert = blocked(lab, "https://blocked.example/", next(nfwlab_ports), {"event.dest_port": 443})
        assert (alert["alert"].get("gid"), alert["alert"]["signature_id"]) == (2, 4)
        assert alert["alert"]["signature"] == "aws:alert_established action"
        allowed = traced(lab, "allowed.example:443")["policy"]
        assert (allowed["action"], allowed["sid"], allowed["rule_group"]) == ("pass", 100, "egress-web")
        passed(lab, "https://allowed.example/", next(nfwlab_ports))
    finally:
        lab.apply_policy(lab.policy)


# --------------------------------------------------------------------------
# (c) up --domains and --home-net reach trace, diagram and the live view; (d) policy apply keeps --home-net
# --------------------------------------------------------------------------
def test_trace_diagram_and_ui_use_the_running_labs_domains_and_home_net(home_lab, nfwlab_ports):
    from lab.ui import LiveView
    shop = traced(home_lab, "shop.example:443")
    assert shop["dest_ip"] == WEB_SERVER and shop["policy"]["action"] == "pass"
    passed(home_lab, "https://shop.example/", next(nfwlab_ports))  # the lab's DNS serves it, as the trace said
    # HOME_NET 10.0.128.0/20 misses the NAT gateway: the trace says the deny list does not apply, and it does not.
    trap = traced(home_lab, "blocked.example:443")
    assert trap["policy"]["action"] == "pass"
    assert any(f"outside HOME_NET ({PRIVATE})" in w for w in trap["warnings"])
    passed(home_lab, "https://blocked.example/", next(nfwlab_ports))
    dot = nfwlab(home_lab, "diagram").stdout
    assert "shop.example" in dot and f"HOME_NET {PRIVATE}" in dot and "outside HOME_NET" in dot
    view = LiveView(home_lab, port=0)
    try:
        svg = view.state()["diagram_svg"]
    finally:
        view.server.server_close()
    assert "shop.example" in svg and f"HOME_NET {PRIVATE}" in svg


def test_policy_apply_keeps_the_up_home_net_and_an_explicit_home_net_wins(home_lab, nfwlab_ports):
    out = nfwlab(home_lab, "policy", "apply", "deny-domains").stdout
    assert f"HOME_NET {PRIVATE} (from up --home-net)" in out, out
    assert firewall_home_net(home_lab) == f"[{PRIVATE}]"
    # Had it been reset to the policy's own (the VPC CIDR), the deny list would now drop blocked.example.
    assert traced(home_lab, "blocked.example:443")["policy"]["action"] == "pass"
    passed(home_lab, "https://blocked.example/", next(nfwlab_ports))

    out = nfwlab(home_lab, "policy", "apply", "deny-domains", "--home-net", VPC_CIDR).stdout
    assert f"HOME_NET {VPC_CIDR} (from policy apply --home-net)" in out, out
    assert firewall_home_net(home_lab) == f"[{VPC_CIDR}]"
    verdict = traced(home_lab, "blocked.example:443")["policy"]
    alert = blocked(home_lab, "https://blocked.example/", next(nfwlab_ports), {"event.tls.sni": "blocked.example"})
    assert (verdict["action"], verdict["sid"]) == ("drop", alert["alert"]["signature_id"])
    assert "HOME_NET" not in " ".join(traced(home_lab, "blocked.example:443")["warnings"])
