"""Reliability on the real lab: nothing left behind after kills, nothing lost under load, bad CLI input
refused cleanly, least privilege tried, fail closed from the first link on. (Isolation is in
test_scenario.py, two labs side by side in test_two_labs_live.py.)

Every verdict comes from evidence: what the lab left is read by its own labels, names and addresses
(tests/evidence.py), a request stopped at the firewall is one its endpoint counted and the far side never
saw, a privilege is tried, not read from the configuration."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from functools import cached_property
from typing import Any

import pytest
from evidence import FarSide, Gate, group_members, kill_group, leftovers

from lab import Lab, nodes
from lab import docker as dk
from lab.engine import Suricata
from lab.pytest_plugin import worker_lab_name
from lab.stateless import PASS_CHAIN
from lab.wait import Wait

CLI = [sys.executable, "-m", "lab"]
SERVERS = {"server-a": "10.0.136.108", "server-b": "10.0.140.23"}
WEB_SERVER = "203.0.113.10"
FAR_PORT = 8081  # a port no other test sends to: the internet's any-port server answers HTTP on it


def own_lab(request: pytest.FixtureRequest, suffix: str) -> str:
    """A lab name of this test's own, after the session's (--nfwlab-name), unique per xdist worker."""
    return worker_lab_name(f"{request.config.getoption('--nfwlab-name')}-{suffix}")


def wait_until(what: str, condition: Any, timeout: float = 60.0) -> None:
    Wait(what, timeout, interval=0.01).until(condition)


def compose_running(pgid: int) -> bool:
    return any("compose" in cmdline for cmdline in group_members(pgid).values())


# Points of `nfwlab up` to kill it at: its state written but no container yet, `docker compose` (a child of
# the CLI) starting the containers, and every container running (the links being wired).
KILL_POINTS = {
    "state-written": lambda lab, pgid: (lab.state_dir / "rules" / "lab.rules").exists(),
    "compose-starting": lambda lab, pgid: compose_running(pgid) and len(dk.containers(lab.name)) >= 1,
    "wiring": lambda lab, pgid: len(dk.containers(lab.name)) == len(nodes.services(lab.vpc)),
}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_up_killed_at_any_point_then_down_leaves_nothing(request, point):
    """R2: SIGKILL to `up`'s whole process group (the CLI, `docker compose` and any helper), as a real kill
    does; then `down` removes everything the lab made (read by the lab's labels, names and addresses)."""
    lab = Lab(own_lab(request, "kill"))
    lab.down(purge=True)
    before = leftovers(lab)
    proc = subprocess.Popen([*CLI, "--name", lab.name, "up"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_until(f"up to reach {point}", lambda: KILL_POINTS[point](lab, proc.pid) or proc.poll() is not None)
        assert proc.poll() is None, f"up finished before it reached {point}"
    finally:
        killed = kill_group(proc) if proc.poll() is None else {}
    if point == "compose-starting":
        assert any("compose" in c for c in killed.values()), f"compose was not among the killed: {killed}"
    if point != "state-written":
        assert dk.containers(lab.name), "the killed up should have left containers for down to remove"
    lab.down(purge=True)
    assert leftovers(lab) == before


@pytest.mark.parametrize("point", ["compose-starting", "wiring"])
def test_up_interrupted_with_ctrl_c_removes_what_it_made(request, point):
    """Ctrl-C in a terminal sends SIGINT to the whole foreground process group: the CLI, `docker compose` and
    pyroute2's helper processes all get it. `up` then removes what it made by itself (no `down`), once: a
    helper's copy of the CLI must not run that clean-up too."""
    lab = Lab(own_lab(request, "intr"))
    lab.down(purge=True)
    before = leftovers(lab)
    proc = subprocess.Popen([*CLI, "--name", lab.name, "up"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        wait_until(f"up to reach {point}", lambda: KILL_POINTS[point](lab, proc.pid) or proc.poll() is not None)
        assert proc.poll() is None, f"up finished before it reached {point}"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            kill_group(proc)
    try:
        assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, (proc.returncode, err)
        Wait("every process of the interrupted group to end", 30, interval=0.05).until(
            lambda: not group_members(proc.pid))
        assert leftovers(lab) == before
    finally:
        lab.down(purge=True)


# R3's client in each server (python3, standard library): requests from the source ports it is given, IN_FLIGHT
# at a time, each to the web server's HTTPS port with its own SNI. A request ends when the server answers, or
# when the test writes its source port on the client's stdin (its flow's alert is in the ALERT log): no
# client timer ends anything. Each socket closes with a reset (SO_LINGER 0), so a dropped Client Hello is not
# retransmitted after its request ended. One JSON line per request as it ends.
R3_CLIENT = r"""
import json, socket, ssl, struct, sys, threading
plan, address, in_flight = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
slots, lock, sockets, told = threading.Semaphore(in_flight), threading.Lock(), {}, set()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

def request(port, name):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    tls = None
    try:
        sock.bind(("0.0.0.0", port))
        sock.connect((address, 443))
        tls = ctx.wrap_socket(sock, server_hostname=name, do_handshake_on_connect=False)
        with lock:
            sockets[port] = tls
        tls.do_handshake()
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        end = tls.recv(256).split(b"\r\n")[0].decode(errors="replace")
    except OSError as e:
        end = "told" if port in told else f"error: {e}"
    finally:
        (tls or sock).close()
        slots.release()
    with lock:
        sys.stdout.write(json.dumps({"port": port, "name": name, "end": end}) + "\n")
        sys.stdout.flush()

def start():
    for port, name in plan:
        slots.acquire()
        threading.Thread(target=request, args=(port, name)).start()
threading.Thread(target=start, daemon=True).start()
for line in sys.stdin:
    port = int(line)
    with lock:
        told.add(port)
        tls = sockets.get(port)
    try:
        socket.socket.shutdown(tls, socket.SHUT_RDWR)
    except (OSError, TypeError):
        pass
"""
IN_FLIGHT = 25


class R3Client:
    """R3_CLIENT running in one server: how each of its requests ended, and the ports it was told to end."""

    def __init__(self, lab: Lab, server: str, plan: list[tuple[int, str]]):
        self.server, self.plan = server, dict(plan)
        self.ends: dict[int, str] = {}
        self.told: set[int] = set()
        self.proc = subprocess.Popen(["docker", "exec", "-i", dk.containers(lab.name)[server].id, "python3", "-c",
                                      R3_CLIENT, json.dumps(plan), WEB_SERVER, str(IN_FLIGHT)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdin and self.proc.stdout
        self.stdin, stdout = self.proc.stdin, self.proc.stdout
        self.lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            for line in stdout:
                self.lines.put(line)
        threading.Thread(target=read, name=f"R3 client in {server}", daemon=True).start()

    def tell(self, port: int) -> None:
        """Ends the request from `port` (its alert is in)."""
        if port in self.plan and port not in self.told and port not in self.ends:
            self.told.add(port)
            self.stdin.write(f"{port}\n")
            self.stdin.flush()

    def done(self) -> bool:
        while not self.lines.empty():
            record = json.loads(self.lines.get())
            self.ends[record["port"]] = record["end"]
        if len(self.ends) == len(self.plan) and not self.stdin.closed:
            self.stdin.close()  # every request ended: the client exits
        return len(self.ends) == len(self.plan)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def test_a_thousand_blocked_requests_give_a_thousand_alerted_flows(request):
    """R3: two servers at once, 500 blocked HTTPS requests each (25 in flight each) and 20 allowed ones
    among them, each from a source port of its own. A blocked request ends once its flow's alert is in the
    ALERT log, an allowed one with its answer; the ALERT log is then counted flow by flow, by source port.

    On a lab of its own: the firewall keeps its 1,000 dropped flows for TcpIdleTimeoutSeconds, and in the
    session's lab a later test's request could land on one of them and be dropped without an alert."""
    plans = {server: [(first + i, "allowed.example" if i % 26 == 25 else "blocked.example") for i in range(520)]
             for server, first in zip(SERVERS, (10000, 12000), strict=True)}
    by_ip = {ip: server for server, ip in SERVERS.items()}
    with Lab(own_lab(request, "r3")).running("firewall-first") as lab:
        mark = lab.log_mark()
        clients = {server: R3Client(lab, server, plan) for server, plan in plans.items()}

        def flows() -> dict[tuple[str, int], set[int]]:
            out: dict[tuple[str, int], set[int]] = {}
            for a in lab.alerts(since=mark, aws=True):
                e = a["event"]
                if e.get("tls", {}).get("sni") == "blocked.example":
                    out.setdefault((e["src_ip"], e["src_port"]), set()).add(e["flow_id"])
            return out

        def every_request_ended() -> bool:
            for ip, port in flows():
                clients[by_ip[ip]].tell(port)
            return all([c.done() for c in clients.values()])

        def waiting() -> str:
            return "\n".join(f"{c.server}: {len(c.ends)} of {len(c.plan)} ended; waiting for ports "
                             f"{sorted(set(c.plan) - set(c.ends))[:20]}" for c in clients.values())
        try:
            # A guard against a hang only: under any load, each request ends on the firewall's record or its answer.
            Wait("every request's alert or answer", 900, interval=0.2).until(every_request_ended, waiting)
        finally:
            for c in clients.values():
                c.stop()
        seen = flows()
    for c in clients.values():
        expected = {port: "told" if name == "blocked.example" else "HTTP/1.1 200 OK" for port, name in c.plan.items()}
        wrong = {port: (c.plan[port], end) for port, end in c.ends.items() if end != expected[port]}
        assert not wrong, f"{c.server}: {len(wrong)} requests did not end as expected: {list(wrong.items())[:10]}"
    blocked = {(SERVERS[s], port) for s, plan in plans.items() for port, name in plan if name == "blocked.example"}
    assert len(blocked) == 1000 and set(seen) == blocked, \
        f"alerted flows of no blocked request: {sorted(set(seen) - blocked)[:10]}"
    assert all(len(ids) == 1 for ids in seen.values()), "a request's alerts must all be of its one flow"
    by_source = {ip: sum(1 for src, _ in seen if src == ip) for ip in SERVERS.values()}
    assert by_source == {ip: 500 for ip in SERVERS.values()}


@pytest.mark.parametrize("argv, code, message", [
    (["--name", "Bad_Name", "status"], 2, "lab name 'Bad_Name' is not valid"),
    (["--name", "{lab}", "up", "--home-net", "10.0.0.0/33"], 2, "is not a list of CIDR blocks"),
    (["--name", "{lab}", "up", "--domains", "not a name"], 2, "is not a valid domain name"),
    (["--name", "{lab}", "up", "--topology", "/nonexistent/t.yaml"], 2, "no such file"),
    (["--name", "{lab}", "up", "--policy", "/nonexistent/p.json"], 2, "no such file"),
    (["--name", "{lab}", "up", "--rules", "/nonexistent/r.rules"], 2, "no such rules file"),
    (["--name", "{lab}", "curl", "server-a", "http://allowed.example/"], 4, "is not up"),
    (["--name", "{lab}", "policy", "apply", "deny-domains"], 4, "is not up"),
    (["--name", "{lab}", "trace", "server-z", "blocked.example"], 2, "neither a server"),
    (["--name", "{lab}", "trace", "server-a", "blocked.example:99999"], 1, "not a number from 1 to 65535"),
    (["--name", "{lab}", "diagram", "--out", "/tmp/d.bmp"], 2, "unknown format"),
    (["--name", "{lab}", "who"], 4, "is not up"),
])
def test_malformed_cli_calls_are_refused_and_make_nothing(request, argv, code, message):
    lab = Lab(own_lab(request, "r5"))
    before = leftovers(lab)
    res = subprocess.run([*CLI, *(a.replace("{lab}", lab.name) for a in argv)], capture_output=True, text=True)
    assert res.returncode == code, res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr
    assert leftovers(lab) == before


# Tried in every node (python3's socket module): a raw socket needs NET_RAW, a change to a link (even one that
# changes nothing: `lo` is up already) NET_ADMIN. Prints one word per try: "allowed" or the error's name.
PRIVILEGES = """
import errno, socket, subprocess
def tried(make):
    try:
        make().close()
        return "allowed"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
print(tried(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)),
      tried(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)))
"""


def test_least_privilege(nfwlab):
    """R6, tried in each node rather than read from its configuration: docs/nodes.md gives NET_ADMIN to the
    firewall endpoints (to bind the queue) and the NAT gateways (to follow their connection tracking) only,
    and takes NET_RAW from the servers; no container is privileged; servers can't route around the
    firewall."""
    need_net_admin = {"firewall", "nat-gateway"}
    tried = {}
    for service, c in dk.containers(nfwlab.name).items():
        assert not dk.client().containers.get(c.id).attrs["HostConfig"]["Privileged"], service
        code, out, err = nfwlab.exec(service, ["python3", "-c", PRIVILEGES])
        assert code == 0, (service, err)
        packet, inet = out.split()
        code, _, err = nfwlab.exec(service, ["ip", "link", "set", "dev", "lo", "up"])
        tried[service] = (c.role, packet, inet, "allowed" if code == 0 else err.strip())
    for service, (role, packet, inet, link) in tried.items():
        raw = "EPERM" if role == "server" else "allowed"
        assert (packet, inet) == (raw, raw), f"{service}: raw sockets {packet}, {inet}; expected {raw}"
        if role in need_net_admin:
            assert link == "allowed", f"{service} needs NET_ADMIN: {link}"
        else:
            assert "Operation not permitted" in link, f"{service} must not have NET_ADMIN: {link}"
    assert {role for role, *_ in tried.values()} >= {"server", "firewall", "nat-gateway"}
    for server in SERVERS:
        for argv in (["ip", "route", "replace", "default", "via", "10.0.128.2"],
                     ["ip", "link", "set", "eth0", "down"],
                     ["ip", "addr", "add", "10.0.16.99/28", "dev", "eth0"]):
            code, _, err = nfwlab.exec(server, argv)
            assert code != 0 and "Operation not permitted" in err, (server, argv)
        routes = nfwlab.exec(server, ["ip", "route"])[1]
        assert routes.startswith("default via 10.0.128.1 dev eth0"), routes


# ------------------------------------------------------------ fail closed from the first link
RELEASE = "/run/nfwlab-engine-released"  # the held firewall node starts its supervisor once this file exists


class HeldSuricata(Suricata):
    """Suricata 7 whose node waits for RELEASE before it starts its supervisor (and so the engine): `up`
    makes the endpoint's links and every route into it while no engine runs."""

    def compose_service(self, ctx: Any, endpoint: Any, service: Any) -> dict[str, Any]:
        spec = super().compose_service(ctx, endpoint, service)
        spec["command"] = ["sh", "-c", f"until [ -e {RELEASE} ]; do sleep 0.1; done; exec {' '.join(spec['command'])}"]
        return spec


class HeldLab(Lab):
    @cached_property
    def engine_kind(self) -> Suricata:
        return HeldSuricata(self.docker, self.kernel, flow_bypass=self.flow_bypass)


def run_in(lab: Lab, node: str, argv: list[str]) -> tuple[int, str, str]:
    """argv run in a node of a lab that is still coming up (Lab.exec wants a lab that is up)."""
    return dk.exec_in(dk.containers(lab.name)[node].id, argv)


def gate_samples(lab: Lab, until: Any) -> list[tuple[set[str], bool]]:
    """The firewall endpoint's namespace read over and over (its interfaces, then its filter rules, in that
    order) until `until()`: each sample says which links it had and whether the fail-closed gate was there
    (FORWARD's queue rule without --queue-bypass, and NFW-PASS dropping)."""
    def pid() -> int:
        found = dk.containers(lab.name, with_pids=True).get("firewall")
        return found.pid if found else 0
    wait_until("the firewall endpoint's container", lambda: pid() > 0)
    netns = f"--net=/proc/{pid()}/ns/net"
    script = "ip -o link show; echo ---; iptables -w 5 -S"
    samples = []
    while True:
        done = until()
        res = subprocess.run(["nsenter", netns, "sh", "-c", script], capture_output=True,
                             text=True, timeout=30)
        links_text, _, rules = res.stdout.partition("---")
        links = {line.split(":")[1].strip().split("@")[0] for line in links_text.splitlines() if ":" in line} - {"lo"}
        gate = (any("-j NFQUEUE" in r and "--queue-bypass" not in r for r in rules.splitlines() if "-A FORWARD" in r)
                and f"-A {PASS_CHAIN} -j DROP" in rules)
        samples.append((links, gate))
        if done:
            return samples


def test_the_firewall_fails_closed_from_its_first_link_until_its_engine_starts(request, nfwlab_ports):
    """R4 during `up`: the engine's start is held back (its node waits for a file) while `up` wires the lab.
    From the first link of the endpoint on, its gate is in place; a request sent once every route points
    into the endpoint reaches it and goes no further: the endpoint counted its packets into the queue that
    no engine reads, the internet node counted none and its web server logged no such request. Released,
    the engine starts, `up` ends, and the same request crosses (so the far side's evidence can see one).
    (docs/nodes.md: the endpoint fails closed; its NFQUEUE rule has no --queue-bypass.)"""
    lab = HeldLab(own_lab(request, "held"))
    lab.down(purge=True)
    failed: list[BaseException] = []

    def up() -> None:
        try:
            lab.up("firewall-first")
        except BaseException as e:
            failed.append(e)
    thread = threading.Thread(target=up, name="up")
    thread.start()
    try:
        endpoint = str(lab.vpc.endpoints[0].ip)

        def routed() -> bool:
            router = dk.containers(lab.name).get(nodes.ROUTER)
            if router is None or not router.running:
                return False
            return f"via {endpoint}" in run_in(lab, nodes.ROUTER, ["ip", "route", "show", "table", "all"])[1]
        samples = gate_samples(lab, lambda: routed() or bool(failed) or not thread.is_alive())
        assert not failed, f"up failed: {failed[0]}"
        linked = [gate for links, gate in samples if links]
        assert linked, f"no sample saw the endpoint's links: {samples}"
        assert all(linked), f"links without the gate: {[s for s in samples if s[0] and not s[1]]}"
        assert run_in(lab, "firewall", ["pidof", "suricata"])[0] != 0, "the engine runs: it was not held back"

        far, gate = FarSide(lab, FAR_PORT), Gate(lab, FAR_PORT)
        queued, path = gate.queued(), f"/held-{uuid.uuid4().hex}"
        code, out, err = run_in(lab, "server-a", ["curl", "--local-port", str(next(nfwlab_ports)), "-sS", "-o",
                                                  "/dev/null", "-w", "%{http_code}", "--max-time", "3",
                                                  f"http://{WEB_SERVER}:{FAR_PORT}{path}"])
        assert code == 28, f"curl should have waited for an answer that never came: exit {code}, {out} {err}"
        assert run_in(lab, "firewall", ["pidof", "suricata"])[0] != 0, "the engine started during the request"
        arrived = gate.arrived()
        assert arrived >= 1, "the request never reached the firewall endpoint: it proves nothing"
        assert gate.queued() - queued >= arrived, "a packet of the request went around the engine's queue"
        assert far.packets() == 0 and far.requests(path) == [], "the far side saw the request"
    finally:
        if dk.containers(lab.name).get("firewall"):
            run_in(lab, "firewall", ["touch", RELEASE])
        thread.join(timeout=180)
    try:
        assert not thread.is_alive() and not failed, f"up did not end well once released: {failed}"
        path = f"/released-{uuid.uuid4().hex}"
        answered = lab.fetch("server-a", f"http://{WEB_SERVER}:{FAR_PORT}{path}", local_port=next(nfwlab_ports))
        assert answered.status is not None, answered.describe()  # 421: the web server answers a bare address
        assert far.packets() > 0 and len(far.requests(path)) == 1
    finally:
        lab.down(purge=True)
