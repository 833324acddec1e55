"""Outputs that answer the next question: the text of an alert or flow line (flow_id for `who`, the endpoint and
AZ that logged it, [gid:sid], a default action said as such), the exit codes against the documented table, a
refused switch that lists what differs, `engine stop` naming the AZs that fail closed. No Docker, no root."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import FakeDocker, FakeKernel

from lab import deploy
from lab.cli import SIGPIPE_STATUS, main
from lab.engine import DOWN, fail_closed_summary
from lab.errors import ConfigError, LabError, StateError
from lab.lab import Lab, vpc_differences
from lab.logs import describe, is_default_action
from lab.model import load_topology
from lab.shipped import TOPOLOGIES_DIR

ROOT = Path(__file__).resolve().parents[2]
MULTI_AZ = load_topology(TOPOLOGIES_DIR / "multi-az.yaml").vpc
ZONES = {e.availability_zone: e.name for e in MULTI_AZ.endpoints}  # what the CLI passes to describe()

# A real ALERT log record of the scenario (AWS's own: no gid, which Suricata leaves out when it is 1).
AWS_ALERT = json.loads((ROOT / "tests/data/scenario-alert-nat-first.json").read_text())
# The lab's record of a strict-order default drop (`aws:drop_established` + `aws:alert_established`) of an HTTPS
# request to blocked.example, as one run wrote it (shortened: flow counters left out). No tls object and no tx_id:
# the default action's rule is an IP rule, whose alert belongs to no transaction.
DEFAULT_DROP = {
    "firewall_name": "nfwlab-firewall", "availability_zone": "ap-northeast-1c", "event_timestamp": "1796100314",
    "event": {"timestamp": "2026-12-01T04:45:14.409328+0000", "flow_id": 604051766196515, "event_type": "alert",
              "src_ip": "10.0.45.10", "src_port": 41010, "dest_ip": "203.0.113.10", "dest_port": 443, "proto": "TCP",
              "pkt_src": "wire/pcap", "alert": {"action": "blocked", "gid": 2, "signature_id": 4, "rev": 1,
                                               "signature": "aws:alert_established action", "category": "",
                                               "severity": 3},
              "app_proto": "tls", "direction": "to_server", "verdict": {"action": "drop"}}}
NETFLOW = {"firewall_name": "nfwlab-firewall", "availability_zone": "ap-northeast-1a", "event_timestamp": "1795614464",
           "event": {"timestamp": "2026-11-25T13:47:44.077621+0000", "flow_id": 2116730017226960,
                     "event_type": "netflow", "src_ip": "10.0.13.92", "src_port": 49636, "dest_ip": "203.0.113.10",
                     "dest_port": 80, "proto": "TCP", "app_proto": "http",
                     "netflow": {"pkts": 7, "bytes": 451, "age": 0}}}
# The text line's shape, as docs/ show it (the documented lines are checked against it below).
ALERT_LINE = re.compile(r"^\S+ (drop |pass |alert|allowed|blocked) *[\d.]+:\d+ -> [\d.]+:\d+ \S+ (\S+|\(no \w+ logged\)) "
                        r"\[\d+:\d+\] .+; flow_id \d+(; endpoint \S+ \([a-z0-9-]+\))?$")


# ------------------------------------------------------------------------------------------------ lines
def test_an_alert_line_gives_gid_sid_the_flow_id_and_the_endpoint_with_its_az():
    assert describe(AWS_ALERT) == (
        "2025-01-23T14:55:04.080189+0000 drop  10.0.13.92:58065 -> 13.115.89.77:443 tls www.ctc-g.co.jp [1:5] "
        "matching TLS denylisted FQDNs; flow_id 268007482899761; endpoint kitagawa-firewall (ap-northeast-1a)")
    # With the topology's endpoints, the AZ names its endpoint (multi-AZ: fw-a, fw-c); the flow_id is who's.
    line = describe(AWS_ALERT, ZONES)
    assert line.endswith("; flow_id 268007482899761; endpoint fw-a (ap-northeast-1a)") and ALERT_LINE.match(line)
    assert describe(AWS_ALERT["event"]).endswith("[1:5] matching TLS denylisted FQDNs; flow_id 268007482899761")


def test_a_default_action_alert_says_so_and_what_it_lacks():
    """sid 4 of gid 2 is not the deny list's rule 4: the line says [2:4] and "default action", and that the
    record has no SNI (rather than a bare '-')."""
    line = describe(DEFAULT_DROP, ZONES)
    assert line == ("2026-12-01T04:45:14.409328+0000 drop  10.0.45.10:41010 -> 203.0.113.10:443 tls (no SNI logged) "
                    "[2:4] aws:alert_established action (default action); flow_id 604051766196515; "
                    "endpoint fw-c (ap-northeast-1c)")
    assert ALERT_LINE.match(line)
    http = {**DEFAULT_DROP["event"], "app_proto": "http", "dest_port": 80}
    assert " http (no Host logged) [2:4] " in describe(http)
    assert " tcp - [2:4] " in describe({**http, "app_proto": "tcp"})


@pytest.mark.parametrize("alert, default", [
    ({"gid": 2, "signature_id": 4, "signature": "aws:alert_established action"}, True),
    ({"gid": 2, "signature_id": 2, "signature": "aws:alert_strict action"}, True),
    ({"signature_id": 8, "signature": "aws:alert_established action"}, True),  # AWS's own records: no gid
    ({"gid": 2, "signature_id": 40, "signature": "FirewallDefaultAction DROP"}, True),  # Next Generation
    ({"gid": 1, "signature_id": 2201001, "signature": "default app policy"}, True),  # Suricata 8's built-in
    ({"gid": 1, "signature_id": 4, "signature": "matching TLS denylisted FQDNs"}, False),
    ({"gid": 1, "signature_id": 100, "signature": "aws:alert_established action is my own rule"}, False),
])
def test_default_actions_are_told_from_rule_groups(alert, default):
    assert is_default_action(alert) is default


def test_a_flow_line_gives_the_flow_id_and_the_endpoint():
    assert describe(NETFLOW, ZONES) == (
        "2026-11-25T13:47:44.077621+0000 flow  10.0.13.92:49636 -> 203.0.113.10:80 TCP http pkts=7 bytes=451 "
        "age=0s; flow_id 2116730017226960; endpoint fw-a (ap-northeast-1a)")


def _documented_alert_lines() -> list[tuple[str, str]]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            text = line.removeprefix("alert: ")
            if re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+\+0000 (drop|pass|alert)\b", text):
                found.append((f"{path.relative_to(ROOT)}:{n}", text))
    return found


def test_the_documented_alert_lines_have_the_format_the_cli_prints():
    documented = _documented_alert_lines()
    assert documented, "no alert line found in the documentation: the scan is wrong"
    wrong = [f"{where}: {text}" for where, text in documented if not ALERT_LINE.match(text)]
    assert not wrong, "alert lines in the docs that `nfwlab alerts` no longer prints like this:\n" + "\n".join(wrong)


# ------------------------------------------------------------------------------------------- exit codes
def documented_exit_codes() -> dict[int, str]:
    """The table under "## Exit codes" in docs/cli.md: code -> meaning."""
    text = (ROOT / "docs/cli.md").read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d+) \| (.+) \|$", text, re.M)}


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setattr(deploy.os, "geteuid", lambda: 0)
    return FakeDocker(), FakeKernel()


@pytest.fixture
def up_lab(tmp_path, fakes) -> Lab:
    docker, kernel = fakes
    lab = Lab("unit", state_dir=tmp_path / "unit", docker=docker, kernel=kernel)
    lab.up("nat-first")
    return lab


def _raised(call) -> LabError:
    with pytest.raises(LabError) as e:
        call()
    return e.value


def test_the_exit_code_table_is_read():
    table = documented_exit_codes()
    assert set(table) >= {0, 1, 2, 3, 4, 5, 6, 130, 141} and "wrong lab state" in table[4]


def test_who_and_explain_exit_as_documented(up_lab, tmp_path):
    """`who 12345` (no such alert) is "no match" (1), not "wrong lab state" (4): the lab is up; a lab that is
    down is (4). Each case's code is checked against docs/cli.md's table and the words the table uses."""
    table = documented_exit_codes()
    (up_lab.state.logs_dir / "alert.log").write_text(json.dumps(DEFAULT_DROP) + "\n")
    cases = {
        "who FLOW_ID that no alert has": (_raised(lambda: up_lab.who(12345)), LabError, "`who`"),
        "explain FLOW_ID that no record has": (_raised(lambda: up_lab.explain(12345)), LabError, "`explain`"),
        "who on a lab that is down": (_raised(lambda: Lab("gone", state_dir=tmp_path / "gone").who(12345)),
                                      StateError, "not up"),
        "switch to another VPC": (_raised(lambda: up_lab.switch("multi-az")), ConfigError, "bad input"),
    }
    for case, (error, kind, words) in cases.items():
        assert type(error) is kind, f"{case}: {type(error).__name__}"
        assert error.exit_code in table, f"{case}: exit {error.exit_code} is not documented"
        assert words in table[error.exit_code], f"{case}: exit {error.exit_code} means {table[error.exit_code]!r}"
    assert up_lab.who(604051766196515, wait=0)[0]["event"]["flow_id"] == 604051766196515  # the flow_id of the line


def test_who_on_a_lab_that_is_down_exits_4_from_the_cli(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("NFWLAB_STATE_ROOT", str(tmp_path))
    assert main(["--name", "gone", "who", "12345"]) == 4
    assert "is not up" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- switch refused
def test_a_refused_switch_lists_every_field_that_differs(up_lab):
    with pytest.raises(ConfigError) as e:
        up_lab.switch("multi-az")
    text = e.value.message
    assert "its VPC differs from the running lab's (nat-first)" in text
    for part in ("id: vpc-0a1b2c3d4e5f60001 running, vpc-0a1b2c3d4e5f60002 in multi-az",
                 "servers: server-c in multi-az, not in the running lab; server-b only in the running lab; "
                 "server-a (subnet) changed",
                 "endpoints: fw-a, fw-c in multi-az, not in the running lab; firewall only in the running lab",
                 "nat_gateways: nat-a, nat-c in multi-az, not in the running lab; nat-gateway only in the running lab",
                 "internet_gateway.id: igw-0f6a7b8c9d0e10001 running, igw-0f6a7b8c9d0e10002 in multi-az"):
        assert part in text


def test_vpc_differences_name_only_what_differs():
    nat_first, scale = (load_topology(TOPOLOGIES_DIR / f"{n}.yaml").vpc for n in ("nat-first", "scale-50"))
    assert vpc_differences(nat_first, load_topology(TOPOLOGIES_DIR / "firewall-first.yaml").vpc) == []
    assert vpc_differences(nat_first, scale, "scale-50") == [
        "servers: app-1, app-2, app-3, app-4, app-5, app-6 and 44 more in scale-50, not in the running lab; "
        "server-a, server-b only in the running lab"]


# --------------------------------------------------------------------------------------- engine stop
def test_engine_stop_in_one_az_names_what_fails_closed_and_what_still_passes():
    status = {"fw-a": "running", "fw-c": DOWN}
    assert fail_closed_summary(MULTI_AZ.endpoints, status, ["fw-c"], "nfwlab engine start --node fw-c") == (
        "firewall engine stopped in fw-c (ap-northeast-1c): traffic routed through it fails closed until "
        "`nfwlab engine start --node fw-c`; fw-a (ap-northeast-1a) still inspects and passes traffic")
    everything = fail_closed_summary(MULTI_AZ.endpoints, {"fw-a": DOWN, "fw-c": DOWN}, ["fw-a"], "nfwlab engine start")
    assert everything.startswith("firewall engine stopped in fw-a (ap-northeast-1a): nothing crosses the firewall "
                                 "in any AZ")
    assert "this endpoint" in DOWN  # `status` says it per endpoint


# ---------------------------------------------------------------------------------------------- pipes
def test_status_into_a_closed_pipe_ends_quietly(tmp_path):
    """`nfwlab status | head -2`, the reader gone before the first write: exit 141, no traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        res = subprocess.run([sys.executable, "-m", "lab", "--name", "piped", "status"], stdout=write_end,
                             stderr=subprocess.PIPE, text=True, timeout=60,
                             env={**os.environ, "NFWLAB_STATE_ROOT": str(tmp_path)})
    finally:
        os.close(write_end)
    assert (res.returncode, res.stderr) == (SIGPIPE_STATUS, "")
