"""Reliability on the real lab: nothing left behind after kills, nothing lost under load, bad CLI input
refused cleanly, least privilege. (Isolation, fail-closed and two labs side by side are in test_scenario.py.)"""
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lab import Lab, nodes
from lab import docker as dk
from lab.pytest_plugin import worker_lab_name
from lab.wait import Wait

CLI = [sys.executable, "-m", "lab"]
SERVERS = {"server-a": "10.0.136.108", "server-b": "10.0.140.23"}


def host_state(lab: Lab) -> dict:
    """What a lab could leave on the host: its containers, host interfaces, its state directory and mounts,
    network namespaces, and the host's iptables rules."""
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    return {
        "containers": sorted(dk.containers(lab.name)),
        "interfaces": sorted(name for _, name in socket.if_nameindex()),
        "state_dir": lab.state_dir.exists(),
        "mounts": [line for line in Path("/proc/mounts").read_text().splitlines() if str(lab.state_dir) in line],
        "netns": sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else [],
        "iptables": sorted(line for line in rules.splitlines() if not line.startswith(("#", ":"))),
    }


def wait_until(what, condition, timeout=60.0):
    Wait(what, timeout, interval=0.01).until(condition)


# Points of `nfwlab up` to kill it at: its state written but no container yet, compose starting the
# containers, and every container running (the links being wired).
KILL_POINTS = {
    "state-written": lambda lab: (lab.state_dir / "rules" / "lab.rules").exists(),
    "containers-starting": lambda lab: len(dk.containers(lab.name)) >= 1,
    "wiring": lambda lab: len(dk.containers(lab.name)) == len(nodes.services(lab.vpc)),
}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_up_killed_at_any_point_then_down_leaves_nothing(point):
    lab = Lab(worker_lab_name("pytest-kill"))
    lab.down()
    before = host_state(lab)
    proc = subprocess.Popen([*CLI, "--name", lab.name, "up"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(f"up to reach {point}", lambda: KILL_POINTS[point](lab) or proc.poll() is not None)
        assert proc.poll() is None, f"up finished before it reached {point}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    lab.down()
    assert host_state(lab) == before


def test_a_thousand_blocked_requests_give_a_thousand_alerted_flows():
    """R3: two servers at once, 500 blocked HTTPS requests each, and allowed requests in between.

    On a lab of its own: the firewall keeps its 1,000 dropped flows for TcpIdleTimeoutSeconds, and in the
    session's lab a later test's request could land on one of them and be dropped without an alert."""
    with Lab(worker_lab_name("pytest-r3")).running("firewall-first") as lab:
        mark = lab.log_mark()
        script = ("seq 500 | xargs -P 25 -I{} curl -sk -o /dev/null --max-time 0.7 https://blocked.example/; "
                  "ok=0; for i in $(seq 20); do "
                  "[ \"$(curl -sk -o /dev/null -w '%{http_code}' --max-time 5 https://allowed.example/)\" = 200 ] "
                  "&& ok=$((ok+1)); done; echo $ok")
        procs = {n: subprocess.Popen(["docker", "exec", dk.containers(lab.name)[n].id, "sh", "-c", script],
                                     stdout=subprocess.PIPE, text=True) for n in SERVERS}
        allowed = {n: int(p.communicate(timeout=300)[0].strip() or 0) for n, p in procs.items()}
        assert allowed == {n: 20 for n in SERVERS}, "every allowed request must succeed"

        def flows():
            return {(a["event"]["flow_id"], a["event"]["src_ip"]) for a in lab.alerts(since=mark, aws=True)
                    if a["event"].get("tls", {}).get("sni") == "blocked.example"}
        wait_until("1,000 alerted flows", lambda: len(flows()) >= 1000, timeout=30)
        seen = flows()
    assert len(seen) == 1000
    by_source = {ip: sum(1 for _, src in seen if src == ip) for ip in SERVERS.values()}
    assert by_source == {ip: 500 for ip in SERVERS.values()}


@pytest.mark.parametrize("argv, code, message", [
    (["--name", "Bad_Name", "status"], 2, "lab name 'Bad_Name' is not valid"),
    (["--name", "pytest-r5", "up", "--home-net", "10.0.0.0/33"], 2, "is not a list of CIDR blocks"),
    (["--name", "pytest-r5", "up", "--domains", "not a name"], 2, "is not a valid domain name"),
    (["--name", "pytest-r5", "up", "--topology", "/nonexistent/t.yaml"], 2, "no such file"),
    (["--name", "pytest-r5", "up", "--policy", "/nonexistent/p.json"], 2, "no such file"),
    (["--name", "pytest-r5", "up", "--rules", "/nonexistent/r.rules"], 2, "no such rules file"),
    (["--name", "pytest-r5", "curl", "server-a", "http://allowed.example/"], 4, "is not up"),
    (["--name", "pytest-r5", "policy", "apply", "policies/deny-domains.json"], 4, "is not up"),
    (["--name", "pytest-r5", "trace", "server-z", "blocked.example"], 2, "neither a server"),
    (["--name", "pytest-r5", "trace", "server-a", "blocked.example:99999"], 1, "not a number from 1 to 65535"),
    (["--name", "pytest-r5", "diagram", "--out", "/tmp/d.bmp"], 2, "unknown format"),
    (["--name", "pytest-r5", "who"], 4, "the ALERT log has no alert yet"),
])
def test_malformed_cli_calls_are_refused_and_make_nothing(argv, code, message):
    lab = Lab("pytest-r5")
    before = host_state(lab)
    res = subprocess.run([*CLI, *argv], capture_output=True, text=True)
    assert res.returncode == code, res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr
    assert host_state(lab) == before


def test_least_privilege(nfwlab):
    """R6: no privileged container; NET_ADMIN only where needed; servers can't route around the firewall."""
    need_net_admin = {"firewall", "nat-gateway"}
    for service, c in dk.containers(nfwlab.name).items():
        host = dk.client().containers.get(c.id).attrs["HostConfig"]
        assert not host["Privileged"], service
        role = c.role
        assert sorted(host.get("CapAdd") or []) == (["NET_ADMIN"] if role in need_net_admin else []), service
        if role == "server":
            assert "NET_RAW" in (host.get("CapDrop") or []), service
    for server in SERVERS:
        for argv in (["ip", "route", "replace", "default", "via", "10.0.128.2"],
                     ["ip", "link", "set", "eth0", "down"],
                     ["ip", "addr", "add", "10.0.16.99/28", "dev", "eth0"]):
            code, _, err = nfwlab.exec(server, argv)
            assert code != 0 and "Operation not permitted" in err, (server, argv)
        routes = nfwlab.exec(server, ["ip", "route"])[1]
        assert routes.startswith("default via 10.0.128.1 dev eth0"), routes
