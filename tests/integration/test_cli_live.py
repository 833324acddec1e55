"""The CLI against the session's running lab, as a user types it."""
import json
import subprocess
import sys

CLI = [sys.executable, "-m", "lab"]


def cli(lab, *args, timeout=60):
    return subprocess.run([*CLI, "--name", lab.name, *args], capture_output=True, text=True, timeout=timeout)


def test_status_json_reports_every_node_running(nfwlab):
    res = cli(nfwlab, "status", "--json")
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout)
    assert set(st["nodes"].values()) == {"running"}
    assert st["firewall_engine"] == "running"
    assert st["topology"] == nfwlab.topology_name


def test_design_switch_and_routes_json(nfwlab):
    res = cli(nfwlab, "design", "firewall-first", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["to"] == "firewall-first"
    tables = json.loads(cli(nfwlab, "routes", "--json").stdout)["RouteTables"]
    private = next(t for t in tables if t["Tags"][0]["Value"] == "private-rtb")
    assert private["Routes"][-1]["VpcEndpointId"] == nfwlab.vpc.firewall.id
    assert not any("GatewayId" in a for t in tables for a in t["Associations"])  # no edge table


def test_curl_exit_codes(nfwlab):
    ok = cli(nfwlab, "curl", "server-b", "https://allowed.example/")
    assert ok.returncode == 0 and "HTTP 200" in ok.stdout
    blocked = cli(nfwlab, "curl", "server-b", "https://blocked.example/", "--timeout", "2")
    assert blocked.returncode == 1 and "failed" in blocked.stdout


def test_exec_passes_output_and_exit_code(nfwlab):
    res = cli(nfwlab, "exec", "server-a", "--", "ip", "-4", "-o", "addr", "show", "eth0")
    assert res.returncode == 0 and "10.0.136.108/20" in res.stdout
    assert cli(nfwlab, "exec", "server-a", "--", "false").returncode == 1
    unknown = cli(nfwlab, "exec", "server-z", "--", "true")
    assert unknown.returncode == 2 and "no node named 'server-z'" in unknown.stderr


def test_alerts_follow_prints_new_alerts_in_aws_format(nfwlab, nfwlab_ports):
    nfwlab.switch("firewall-first")
    follower = subprocess.Popen([*CLI, "--name", nfwlab.name, "alerts", "--follow", "--format", "aws"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "following" in follower.stderr.readline()  # it has taken its place in the log
        nfwlab.start_fetch("server-b", "http://blocked.example/", timeout=2, local_port=next(nfwlab_ports))
        line = follower.stdout.readline()
    finally:
        follower.terminate()
        follower.wait(timeout=10)
    record = json.loads(line)
    assert record["firewall_name"] == "nfwlab-firewall"
    assert record["event"]["src_ip"] == "10.0.140.23"
    assert record["event"]["http"]["hostname"] == "blocked.example"


def test_engine_stop_closes_the_firewall_and_start_reopens_it(nfwlab):
    assert cli(nfwlab, "engine", "stop").returncode == 0
    try:
        status = cli(nfwlab, "status")
        assert status.returncode == 5 and "fail closed" in status.stdout
        assert cli(nfwlab, "curl", "server-a", "http://allowed.example/", "--timeout", "2").returncode == 1
    finally:
        assert cli(nfwlab, "engine", "start").returncode == 0
    assert cli(nfwlab, "curl", "server-a", "http://allowed.example/").returncode == 0
