"""CLI input errors that need no Docker: clear message, meaningful exit code."""
from lab.cli import main


def test_unknown_topology_is_refused_before_anything_is_made(capsys):
    assert main(["--name", "nope", "routes", "--design", "middle-first"]) == 2
    err = capsys.readouterr().err
    assert "unknown topology 'middle-first'" in err and "firewall-first" in err


def test_bad_lab_name(capsys):
    assert main(["--name", "Bad Name", "routes"]) == 2
    assert "lab name 'Bad Name' is not valid" in capsys.readouterr().err


def test_routes_print_without_a_running_lab(capsys):
    assert main(["--name", "offline", "routes", "--design", "firewall-first"]) == 0
    out = capsys.readouterr().out
    assert "Route table rtb-0b1c2d3e4f5a60002 (public-rtb)" in out
    assert "10.0.128.0/20      vpce-0e5f6a7b8c9d00001" in out


def test_up_without_root_says_so(monkeypatch, capsys):
    import os
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["--name", "noroot", "up"]) == 3
    assert "needs root" in capsys.readouterr().err


def test_bad_home_net(capsys):
    assert main(["--name", "x", "up", "--home-net", "10.0.0.0/33"]) == 2
    assert "HOME_NET '10.0.0.0/33' is not a list of CIDR blocks" in capsys.readouterr().err


def test_policy_show_prints_the_stateless_chain_of_a_stateless_group(tmp_path, capsys):
    import json
    group = {"RuleGroupResponse": {"RuleGroupName": "telnet", "Type": "STATELESS", "Capacity": 1},
             "RuleGroup": {"RulesSource": {"StatelessRulesAndCustomActions": {"StatelessRules": [
                 {"Priority": 1, "RuleDefinition": {"Actions": ["aws:drop"], "MatchAttributes": {
                     "Protocols": [6], "DestinationPorts": [{"FromPort": 23, "ToPort": 23}]}}}]}}}}
    path = tmp_path / "telnet.json"
    path.write_text(json.dumps(group))
    assert main(["--name", "offline", "policy", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert '-A NFW-STATELESS -p tcp -m multiport --dports 23 -m comment --comment "nfw rule g=telnet p=1.1' in out
