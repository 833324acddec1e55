"""Outputs that answer the next question, on a real multi-AZ lab of its own: an alert's text line gives the
flow_id that `who` takes and the endpoint and AZ that logged it; a strict-order default drop reads as
[2:4] and "default action", never as a rule group's sid 4; `engine stop` in one AZ says which AZ still passes
traffic; `status` into a pipe that closes ends without a traceback."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab
from lab.cli import SIGPIPE_STATUS
from lab.pytest_plugin import worker_lab_name

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = "blocked.example"


@pytest.fixture(scope="module")
def maz(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A multi-az lab (two AZs, an endpoint in each: fw-a, fw-c) with the deny list."""
    lab = Lab(worker_lab_name(request.config.getoption("--nfwlab-name") + "-out"))
    with lab.running("multi-az"):
        yield lab


def cli(lab: Lab, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", "--name", lab.name, *argv], capture_output=True, text=True,
                          timeout=120)


def alert_line(lab: Lab, flow_id: int) -> str:
    """The text line `nfwlab alerts` prints for one alert of the flow (its first)."""
    res = cli(lab, "alerts", "--all")
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if f"; flow_id {flow_id};" in line]
    assert lines, f"no text line has flow_id {flow_id}:\n{res.stdout}"
    return lines[0]


def test_an_alert_line_gives_the_flow_id_who_takes_and_the_endpoint_of_its_az(maz, nfwlab_ports):
    port = next(nfwlab_ports)
    server_c = str(maz.vpc.server("server-c").ip)
    record = maz.fetch_for_alert("server-c", f"https://{BLOCKED}/", {
        "event.tls.sni": BLOCKED, "event.src_ip": server_c, "event.src_port": port}, local_port=port, aws=True)
    line = alert_line(maz, record["event"]["flow_id"])
    # The record's own AZ (AWS: "availability_zone") is server-c's, so the line names fw-c, not fw-a.
    assert record["availability_zone"] == "ap-northeast-1c"
    assert f" {server_c}:{port} -> 203.0.113.10:443 tls {BLOCKED} [1:1] matching TLS denylisted FQDNs; " \
           f"flow_id {record['event']['flow_id']}; endpoint fw-c (ap-northeast-1c)" in line, line
    # The flow_id as the line prints it is what `who` takes, and it names server-c.
    flow_id = re.search(r"; flow_id (\d+);", line).group(1)
    who = cli(maz, "who", flow_id)
    assert who.returncode == 0, who.stderr
    assert f"who:   server-c ({server_c})" in who.stdout and "endpoint fw-c (ap-northeast-1c)" in who.stdout
    # A flow id no alert has: no match (exit 1, as docs/cli.md says), not "wrong lab state" (4).
    missing = cli(maz, "who", "12345")
    assert (missing.returncode, missing.stdout) == (1, "") and "flow 12345 has no alert" in missing.stderr


def test_a_strict_order_default_drop_shows_gid_sid_and_says_default_action(maz, nfwlab_ports):
    """strict-allow: "aws:drop_established" and "aws:alert_established". AWS: their alerts carry signatures such
    as "aws:alert_established action". Its sid (4) is the lab's; the line gives gid 2 with it."""
    maz.apply_policy(ROOT / "policies" / "strict-allow.yaml")
    try:
        port = next(nfwlab_ports)
        server_a = str(maz.vpc.server("server-a").ip)
        record = maz.fetch_for_alert("server-a", f"https://{BLOCKED}/", {
            "event.alert.signature": "aws:alert_established action", "event.src_ip": server_a,
            "event.src_port": port}, local_port=port, aws=True)
        event = record["event"]
        # Why no SNI: the default action's rule is an IP rule; its alert belongs to no transaction (no tx_id), and
        # Suricata then adds no tls fields, though it knows the flow is TLS.
        assert (event["alert"]["gid"], event["alert"]["signature_id"], event["app_proto"]) == (2, 4, "tls")
        assert "tls" not in event and "tx_id" not in event
        line = alert_line(maz, event["flow_id"])
        assert f" {server_a}:{port} -> 203.0.113.10:443 tls (no SNI logged) [2:4] aws:alert_established action " \
               f"(default action); flow_id {event['flow_id']}; endpoint fw-a (ap-northeast-1a)" in line, line
    finally:
        maz.apply_policy(ROOT / "policies" / "deny-domains.json")


def test_engine_stop_in_one_az_names_the_az_that_still_passes(maz):
    res = cli(maz, "engine", "stop", "--node", "fw-c")
    try:
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == (
            f"firewall engine stopped in fw-c (ap-northeast-1c): traffic routed through it fails closed until "
            f"`nfwlab --name {maz.name} engine start --node fw-c`; fw-a (ap-northeast-1a) still inspects and "
            f"passes traffic")
        # What the message says of fw-a, from the far side: server-a's request (through fw-a) is answered.
        assert maz.fetch("server-a", "https://allowed.example/").status == 200
        assert maz.status().firewall_engines == {"fw-a": "running",
                                                 "fw-c": "down (fail closed: nothing crosses this endpoint)"}
    finally:
        maz.restart_firewall_engine(node="fw-c")


def test_status_piped_into_a_reader_that_stops_ends_without_a_traceback(maz):
    """`nfwlab status | head -2` on a lab that is up, and the same into a pipe already closed: exit 141."""
    res = subprocess.run(["bash", "-o", "pipefail", "-c",
                          f"{sys.executable} -m lab --name {maz.name} status | head -2"],
                         capture_output=True, text=True, timeout=120)
    assert len(res.stdout.splitlines()) == 2 and "Traceback" not in res.stderr, res.stderr
    assert res.returncode in (0, SIGPIPE_STATUS)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        closed = subprocess.run([sys.executable, "-m", "lab", "--name", maz.name, "status"], stdout=write_end,
                                stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert (closed.returncode, closed.stderr) == (SIGPIPE_STATUS, "")
