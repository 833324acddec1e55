"""Topologies on the real lab: files refused whole before anything exists, several AZs, asymmetric
routing and its consequence, trace and check, and 50 servers."""
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from vpc_routes import assert_router_follows

from lab import Lab
from lab import docker as dk
from lab.errors import ConfigError
from lab.pytest_plugin import worker_lab_name
from lab.results import LoggedSource
from lab.wait import Wait

CLI = [sys.executable, "-m", "lab"]
BLOCKED = "blocked.example"


def host_snapshot(lab: Lab) -> dict:
    """Everything on the host a lab could leave: its containers and any container of no lab (labs of other
    test workers come and go meanwhile), interfaces, its state directory."""
    mine = [c for c in dk.client().containers.list(all=True)
            if c.labels.get(dk.LAB_LABEL) in (None, lab.name)]
    return {"containers": sorted(c.id for c in mine),
            "interfaces": sorted(name for _, name in socket.if_nameindex()),
            "state_dir": lab.state_dir.exists()}


def test_malformed_topologies_are_refused_and_nothing_is_created(malformed, tmp_path):
    data, message = malformed
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    lab = Lab(worker_lab_name("pytest-malformed"))
    before = host_snapshot(lab)
    with pytest.raises(ConfigError) as e:
        lab.up(str(path))
    assert message in str(e.value)
    assert str(path) in str(e.value) and e.value.hint
    assert host_snapshot(lab) == before


def test_cli_up_with_a_malformed_topology_exits_2_and_creates_nothing(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("vpc: {id: vpc-1, cidr: 10.0.0.0/16, region: x}\nsubnets: [\n")
    lab = Lab(worker_lab_name("pytest-malformed"))
    before = host_snapshot(lab)
    res = subprocess.run([*CLI, "--name", lab.name, "up", "--topology", str(path)], capture_output=True, text=True)
    assert res.returncode == 2 and "not valid YAML" in res.stderr
    assert host_snapshot(lab) == before


def blocked_alert(lab, server):
    record = lab.fetch_for_alert(server, f"https://{BLOCKED}/", {"event.tls.sni": BLOCKED,
                                 "event.src_ip": str(lab.vpc.server(server).ip)}, aws=True)
    assert record["event"]["verdict"]["action"] == "drop"
    return record


def test_multi_az_alerts_name_the_az_of_the_endpoint_that_saw_the_flow():
    with Lab(worker_lab_name("pytest-maz"), topology="multi-az").running() as lab:
        for server, az in (("server-a", "ap-northeast-1a"), ("server-c", "ap-northeast-1c")):
            record = blocked_alert(lab, server)
            assert record["availability_zone"] == az
            assert record["event"]["src_ip"] == str(lab.vpc.server(server).ip)
            assert record["firewall_name"] == "nfwlab-firewall"
        live = lab.trace_live("server-c", "allowed.example", 443)
        assert live.request.status == 200 and live.agrees, live
        assert live.firewall_logged.availability_zone == "ap-northeast-1c"
    assert dk.containers(lab.name) == {}


def test_check_flags_asymmetric_routing_and_the_live_lab_shows_the_firewall_blind(nfwlab):
    assert all(not t.warnings for t in nfwlab.check("firewall-first"))
    traces = nfwlab.check("asymmetric")
    assert all(any("asymmetric routing" in w for w in t.warnings) for t in traces)
    res = subprocess.run([*CLI, "--name", nfwlab.name, "check", "--design", "asymmetric"], capture_output=True,
                         text=True)
    assert res.returncode == 1 and "WARNING: asymmetric routing" in res.stdout
    # Live: replies skip the firewall, so Suricata sees the client's side only and cannot read the
    # TLS handshake: the denylisted name is neither blocked nor logged.
    nfwlab.switch("asymmetric")
    assert_router_follows(nfwlab, "asymmetric")
    try:
        mark = nfwlab.log_mark()
        assert nfwlab.fetch("server-a", f"https://{BLOCKED}/", timeout=3).status == 200
        assert nfwlab.fetch("server-a", "https://allowed.example/", timeout=3).status == 200
        # Sentinel: back in firewall-first, a request's FLOW record shows the engine at work; anything it
        # had logged for the denylisted request would be in the ALERT log before that record.
        nfwlab.switch("firewall-first")
        assert nfwlab.fetch("server-a", "http://allowed.example/", timeout=3).status == 200
        nfwlab.wait_for_flows({"event.src_ip": "10.0.136.108", "event.dest_port": 80}, since=mark)
        assert [a for a in nfwlab.alerts(since=mark, aws=True) if a["event"].get("tls", {}).get("sni") == BLOCKED] == []
        assert blocked_alert(nfwlab, "server-a")["event"]["src_ip"] == "10.0.136.108"
    finally:
        nfwlab.switch("nat-first")


def test_a_topology_with_other_nodes_cannot_be_switched_to_live(nfwlab):
    assert_router_follows(nfwlab, "nat-first")
    with pytest.raises(ConfigError, match="only route tables can change on a running lab"):
        nfwlab.switch("multi-az")
    assert_router_follows(nfwlab, "nat-first")


@pytest.mark.parametrize("design, seen", [("nat-first", "10.0.13.92"), ("firewall-first", "10.0.136.108")])
def test_cli_trace_names_the_source_the_firewall_sees(nfwlab, design, seen):
    res = subprocess.run([*CLI, "--name", nfwlab.name, "trace", "server-a", f"{BLOCKED}:443", "--design", design],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert f"sees the request: source {seen}, destination 203.0.113.10" in res.stdout


def test_trace_live_agrees_with_the_static_trace_on_its_own_flow(nfwlab, nfwlab_ports):
    """In nat-first every alert names the NAT gateway: only the source port tells the live trace's request from
    another server's request to the same name and port, sent just before it (its alert may land after the
    trace's mark)."""
    nfwlab.switch("nat-first")
    other, own = next(nfwlab_ports), next(nfwlab_ports)
    mark = nfwlab.log_mark()
    nfwlab.start_fetch("server-a", f"https://{BLOCKED}/", timeout=3, local_port=other)
    res = nfwlab.trace_live("server-b", BLOCKED, 443, local_port=own)
    assert res.firewall_logged == LoggedSource("10.0.13.92", "ap-northeast-1a", "ALERT log", own)
    assert res.agrees
    # Both requests were alerted, each under its own port (the NAT gateway kept them).
    alerted = {a["event"]["src_port"] for a in nfwlab.alerts(since=mark, aws=True)
               if a["event"].get("tls", {}).get("sni") == BLOCKED}
    assert {other, own} <= alerted


def test_fifty_servers_each_alerted_with_its_own_source():
    with Lab(worker_lab_name("pytest-scale"), topology="scale-50").running() as lab:
        assert len(lab.vpc.servers) == 50
        mark = lab.log_mark()
        with ThreadPoolExecutor(8) as pool:  # 50 requests started at once, not one after the other
            list(pool.map(lambda s: lab.start_fetch(s.name, f"https://{BLOCKED}/", timeout=10), lab.vpc.servers))

        def sources():
            return {a["event"]["src_ip"] for a in lab.alerts(since=mark, aws=True)
                    if a["event"]["verdict"]["action"] == "drop" and a["event"]["tls"]["sni"] == BLOCKED}
        Wait("an alert from each of the 50 servers", 30).until(lambda: len(sources()) >= 50,
                                                                report=lambda: f"from {len(sources())}")
        assert sources() == {str(s.ip) for s in lab.vpc.servers}
    assert dk.containers(lab.name) == {}
