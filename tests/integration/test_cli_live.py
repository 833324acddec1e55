"""The CLI against the session's running lab, as a user types it. A request's outcome is decided from the
firewall's record of its own flow (found by a path of its own in the URL) or from what the far side saw, never
from a failed request alone; a command's output is read with a deadline, so a line that never comes fails
the test with what was read instead of hanging the session."""
from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
import uuid
from typing import IO

from evidence import FarSide, Gate

CLI = [sys.executable, "-m", "lab"]
FAR_PORT = 8082  # a port no other test sends to: the internet's any-port server answers HTTP on it


def cli(lab, *args, timeout=60):
    return subprocess.run([*CLI, "--name", lab.name, *args], capture_output=True, text=True, timeout=timeout)


class Lines:
    """A child's output (a binary pipe) read line by line, each line with a deadline."""

    def __init__(self, stream: IO[bytes], name: str):
        self.fd, self.name, self.read = stream.fileno(), name, b""
        self.buffer = b""
        os.set_blocking(self.fd, False)

    def line(self, what: str, timeout: float = 30.0) -> str:
        """The next line; AssertionError naming `what` and all that was read when none comes in time."""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.fd, selectors.EVENT_READ)
            while b"\n" not in self.buffer:
                left = deadline - time.monotonic()
                chunk = os.read(self.fd, 65536) if left > 0 and selector.select(left) else None
                if not chunk:
                    why = "ended" if chunk == b"" else f"wrote no whole line in {timeout:g}s"
                    raise AssertionError(f"waiting for {what}: {self.name} {why}; it wrote: {self.read!r}")
                self.read += chunk
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()


def test_status_json_reports_every_node_running(nfwlab):
    res = cli(nfwlab, "status", "--json")
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout)
    assert set(st["nodes"].values()) == {"running"}
    assert st["firewall_engine"] == "running"
    assert st["topology"] == nfwlab.topology_name


def test_design_switch_and_routes_json(nfwlab):
    before = nfwlab.topology_name
    try:
        res = cli(nfwlab, "design", "firewall-first", "--json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["to"] == "firewall-first"
        tables = json.loads(cli(nfwlab, "routes", "--json").stdout)["RouteTables"]
        private = next(t for t in tables if t["Tags"][0]["Value"] == "private-rtb")
        assert private["Routes"][-1]["VpcEndpointId"] == nfwlab.vpc.firewall.id
        assert not any("GatewayId" in a for t in tables for a in t["Associations"])  # no edge table
    finally:
        nfwlab.switch(before)  # the next test finds the lab as the session left it


def test_curl_exit_codes(nfwlab):
    ok = cli(nfwlab, "curl", "server-b", "https://allowed.example/")
    assert ok.returncode == 0 and "HTTP 200" in ok.stdout
    # The blocked request is told apart by its own path: its alert, not its failure, says the firewall did it.
    path, mark = f"/blocked-{uuid.uuid4().hex}", nfwlab.log_mark()
    blocked = cli(nfwlab, "curl", "server-b", f"http://blocked.example{path}", "--timeout", "2")
    assert blocked.returncode == 1 and "failed" in blocked.stdout
    as_json = cli(nfwlab, "curl", "server-b", f"http://blocked.example{path}", "--timeout", "2", "--json")
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["failure"] == "timeout", as_json.stdout
    alert = nfwlab.wait_for_alert({"http.hostname": "blocked.example", "http.url": path}, since=mark)
    assert alert["verdict"]["action"] == "drop"


def test_exec_passes_output_and_exit_code(nfwlab):
    res = cli(nfwlab, "exec", "server-a", "--", "ip", "-4", "-o", "addr", "show", "eth0")
    assert res.returncode == 0 and "10.0.136.108/20" in res.stdout
    assert cli(nfwlab, "exec", "server-a", "--", "false").returncode == 1
    unknown = cli(nfwlab, "exec", "server-z", "--", "true")
    assert unknown.returncode == 2 and "no node named 'server-z'" in unknown.stderr


def test_alerts_follow_prints_new_alerts_in_aws_format(nfwlab, nfwlab_ports):
    before = nfwlab.topology_name
    nfwlab.switch("firewall-first")
    path = f"/follow-{uuid.uuid4().hex}"
    follower = subprocess.Popen([*CLI, "--name", nfwlab.name, "alerts", "--follow", "--format", "aws"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert follower.stdout and follower.stderr
    out, err = Lines(follower.stdout, "alerts --follow"), Lines(follower.stderr, "alerts --follow (stderr)")
    try:
        assert "following" in err.line("its 'following' notice")  # it has taken its place in the log
        port = next(nfwlab_ports)
        nfwlab.start_fetch("server-b", f"http://blocked.example{path}", timeout=2, local_port=port)
        while True:  # the alert of this request's flow; any other alert it prints is not this test's
            record = json.loads(out.line(f"the alert of the request from port {port}"))
            if record["event"].get("http", {}).get("url") == path:
                break
    finally:
        follower.terminate()
        follower.wait(timeout=10)
        nfwlab.switch(before)
    assert record["firewall_name"] == "nfwlab-firewall"
    assert record["event"]["src_ip"] == "10.0.140.23" and record["event"]["src_port"] == port
    assert record["event"]["http"]["hostname"] == "blocked.example"


def test_engine_stop_closes_the_firewall_and_start_reopens_it(nfwlab):
    """Closed, proven from both sides: the endpoint counted the request's packets into the queue no engine
    reads, and the internet node counted none and its web server logged no such request. Reopened, the same
    request crosses and both see it."""
    far, gate = FarSide(nfwlab, FAR_PORT), Gate(nfwlab, FAR_PORT)
    assert cli(nfwlab, "engine", "stop").returncode == 0
    try:
        status = cli(nfwlab, "status")
        assert status.returncode == 5 and "fail closed" in status.stdout
        arrived, queued, reached = gate.arrived(), gate.queued(), far.packets()
        path = f"/stopped-{uuid.uuid4().hex}"
        closed = cli(nfwlab, "curl", "server-a", f"http://allowed.example:{FAR_PORT}{path}", "--timeout", "3", "--json")
        assert closed.returncode == 1 and json.loads(closed.stdout)["failure"] == "timeout", closed.stdout
        assert gate.arrived() > arrived, "the request never reached the firewall endpoint: it proves nothing"
        assert gate.queued() - queued >= gate.arrived() - arrived, "a packet went around the engine's queue"
        assert far.packets() == reached and far.requests(path) == [], "the far side saw the request"
    finally:
        assert cli(nfwlab, "engine", "start").returncode == 0
    path, reached = f"/started-{uuid.uuid4().hex}", far.packets()
    assert cli(nfwlab, "curl", "server-a", f"http://allowed.example:{FAR_PORT}{path}").returncode == 0
    assert far.packets() > reached and len(far.requests(path)) == 1
