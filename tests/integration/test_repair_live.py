"""Repair in place on the real lab (the session's, nat-first): each node kind in turn is killed (`docker kill`
of its container, found by the lab's label), `status` says the lab is degraded and exits 5, and one
`nfwlab repair` brings it back: an allowed request crosses again, a blocked one's alert comes again, and
every other container is the same one as before. While the firewall endpoint is dead nothing crosses
(fail closed, from the far side's own counter); a connection through nodes that stayed up lives on
across the repair of another node."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from verdicts import blocked, passes

from lab import Lab, kernel
from lab import docker as dk
from lab.errors import LabError
from lab.nodes import ROUTER
from lab.wait import Wait

CLI = [sys.executable, "-m", "lab"]
WEB_SERVER = "203.0.113.10"
NAT_IP = "10.0.13.92"  # nat-first: every alert names the NAT gateway
SERVER_A = "10.0.136.108"
FAR_PORT = 8443  # a port nothing else in the session uses: the internet's echo answers it
KINDS = {"server": "server-a", "vpc-router": ROUTER, "nat-gateway": "nat-gateway", "firewall": "firewall",
         "internet-gateway": "internet-gateway", "internet": "internet"}


def nfwlab_cli(lab: Lab, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "--name", lab.name, *args], capture_output=True, text=True, timeout=300)


def ids(lab: Lab) -> dict[str, str]:
    return {node: c.id for node, c in dk.containers(lab.name).items()}


def far_side(lab: Lab) -> int:
    """Packets to FAR_PORT that reached the internet node (the counting rule `count_far_side` makes)."""
    pid = dk.pid(dk.containers(lab.name)["internet"].id)
    listing = kernel.iptables(pid, "-t", "mangle", "-nvx", "-L", "PREROUTING")
    return sum(int(line.split()[0]) for line in listing.splitlines() if f"dpt:{FAR_PORT}" in line)


def count_far_side(lab: Lab) -> None:
    pid = dk.pid(dk.containers(lab.name)["internet"].id)
    kernel.iptables_append(pid, "mangle", "PREROUTING", "-p", "tcp", "--dport", str(FAR_PORT))


def kill(lab: Lab, node: str) -> None:
    """`docker kill` of the node's container, by its id from the lab's label; until Docker says it exited."""
    container = dk.containers(lab.name)[node]
    subprocess.run(["docker", "kill", container.id], check=True, capture_output=True, timeout=60)
    Wait(f"{node} to be down", 30, interval=0.1).until(lambda: not dk.containers(lab.name)[node].running)


def back_in_service(lab: Lab, ports: Iterator[int]) -> dict:
    """An allowed request crosses, and a blocked one is dropped: its own flow's alert (naming the NAT gateway)
    and the client's timeout say so."""
    passes(lab, "https://allowed.example/", next(ports))
    alert = blocked(lab, "https://blocked.example/", next(ports), {"tls.sni": "blocked.example"})
    assert alert["src_ip"] == NAT_IP
    return alert


def repaired_by_the_cli(lab: Lab, nodes: list[str]) -> None:
    res = nfwlab_cli(lab, "repair")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{', '.join(nodes)} brought back" in res.stdout
    assert lab.health() == {node: "running" for node in lab.health()}


def unresolved(lab: Lab, node: str) -> list[str]:
    """Neighbour entries in the other nodes for the addresses of `node` that are still being resolved or have
    failed: packets queued on them get "host unreachable"."""
    mine = {a.split("/")[0] for i in lab.interfaces(node) for a in i["addresses"]} - {"127.0.0.1"}
    out = []
    for other in dk.containers(lab.name):
        if other != node:
            for n in json.loads(lab.exec(other, ["ip", "-j", "neigh"])[1] or "[]"):
                if n.get("dst") in mine and {"INCOMPLETE", "FAILED"} & set(n.get("state", [])):
                    out.append(f"{other}: {n}")
    return out


@pytest.fixture
def lab(nfwlab: Lab) -> Iterator[Lab]:
    """The session's lab in nat-first, whole before and after (repaired; made anew if that fails, for the tests
    that follow)."""
    if nfwlab.topology_name != "nat-first":  # the alerts below name the NAT gateway
        nfwlab.switch("nat-first")
    assert not nfwlab.status().degraded
    yield nfwlab
    if nfwlab.status().degraded:
        try:
            nfwlab.repair()
        except LabError:
            nfwlab.down()
            nfwlab.up("nat-first")


class LongConnection:
    """A TCP connection from server-b to the internet's echo, opened before and used again after."""

    SCRIPT = ("import os, socket, time\n"
              "s = socket.create_connection(('{ip}', {port}), timeout=10)\n"
              "s.sendall(b'before'); open('/tmp/hb-long.ready', 'w').write(s.recv(64).decode())\n"
              "while not os.path.exists('/tmp/hb-long.go'): time.sleep(0.05)\n"
              "s.sendall(b'after'); open('/tmp/hb-long.result', 'w').write(s.recv(64).decode())\n")

    def __init__(self, lab: Lab):
        self.lab = lab
        lab.exec("server-b", ["rm", "-f", "/tmp/hb-long.ready", "/tmp/hb-long.go", "/tmp/hb-long.result"])
        dk.exec_detached(dk.containers(lab.name)["server-b"].id,
                         ["python3", "-c", self.SCRIPT.format(ip=WEB_SERVER, port=FAR_PORT + 1)])
        assert self._read("ready") == "before"

    def _read(self, what: str) -> str:
        out: list[str] = []

        def written() -> bool:
            code, text, _ = self.lab.exec("server-b", ["cat", f"/tmp/hb-long.{what}"])
            out.append(text)
            return code == 0 and text != ""
        Wait(f"server-b's long connection to say {what}", 15, interval=0.1).until(written)
        return out[-1]

    def answer_after(self) -> str:
        self.lab.exec("server-b", ["touch", "/tmp/hb-long.go"])
        return self._read("result")


@pytest.mark.parametrize("kind", KINDS)
def test_a_killed_node_is_repaired_in_place_and_every_other_container_stays(lab, kind, nfwlab_ports):
    node = KINDS[kind]
    before = ids(lab)
    long = LongConnection(lab) if kind == "server" else None  # server-b's path does not cross server-a
    if kind == "firewall":
        count_far_side(lab)
        alert = back_in_service(lab, nfwlab_ports)  # an alert delivered to alert.log before the kill
        Wait("the alert in alert.log", 10, interval=0.1).until(
            lambda: any(r["event"].get("flow_id") == alert["flow_id"] for r in lab.alert_log.records()))
        delivered, alerts_mark = lab.alert_log.records(), lab.alert_log.size()
    kill(lab, node)

    status = lab.status()
    assert status.degraded and status.down_nodes == [node] and status.nodes[node] == "exited"
    res = nfwlab_cli(lab, "status")
    assert res.returncode == 5
    assert f"degraded: {node} is exited -> run `nfwlab --name {lab.name} repair`" in res.stdout

    if kind == "firewall":
        # Fail closed with the firewall endpoint gone: the request leaves server-a and is translated by the NAT
        # gateway (its log says so), and nothing of it reaches the internet (its own counter says so).
        port, nat_log, far = next(nfwlab_ports), lab.nat_log.size(), far_side(lab)
        result = lab.fetch("server-a", f"http://{WEB_SERVER}:{FAR_PORT}/", timeout=2, local_port=port)
        # (a timeout, or a host unreachable once the VPC router gives up resolving the dead endpoint; never an
        # answer, nor a request that could not be made: the NAT gateway's log shows it left)
        assert result.failure in ("timeout", "reset"), f"expected nothing back: {result.describe()}"
        assert any(r["original"] == {"src": SERVER_A, "sport": port} for r in lab.nat_log.records(since=nat_log))
        assert far_side(lab) == far, "a packet crossed a firewall endpoint that was down"

    if kind != "server":
        # A request through the dead node just before the repair: the VPC router (or the internet gateway)
        # is still resolving the dead node's address when it comes back. The first request after the repair
        # must not meet that failing resolution (it would get "host unreachable").
        lab.start_fetch("server-b", "https://allowed.example/", timeout=3)
    repaired_by_the_cli(lab, [node])
    if kind != "server":
        assert not unresolved(lab, node), unresolved(lab, node)
    after = ids(lab)
    assert {n: i for n, i in after.items() if n != node} == {n: i for n, i in before.items() if n != node}
    assert after[node] == before[node]  # the same container, started again
    back_in_service(lab, nfwlab_ports)
    if kind == "firewall":
        far = far_side(lab)
        lab.fetch("server-a", f"http://{WEB_SERVER}:{FAR_PORT}/", timeout=2)
        assert far_side(lab) > far  # the counter counts: what it did not count above did not cross
        pid = dk.pid(dk.containers(lab.name)["internet"].id)
        kernel.iptables(pid, "-t", "mangle", "-D", "PREROUTING", "-p", "tcp", "--dport", str(FAR_PORT))
        # The restarted node goes on delivering eve.json's records to alert.log after the last one it had
        # delivered: nothing from before the kill comes again.
        again = [r for r in lab.alert_log.records(since=alerts_mark) if r in delivered]
        assert delivered and not again, again
    if long is not None:
        assert long.answer_after() == "after", "server-b's connection did not live through server-a's repair"


def test_a_stopped_firewall_engine_is_started_by_repair_without_restarting_anything(lab, nfwlab_ports):
    before = ids(lab)
    lab.stop_firewall_engine()
    assert lab.status().firewall_engine != "running" and nfwlab_cli(lab, "status").returncode == 5
    repaired_by_the_cli(lab, ["firewall"])
    assert lab.status().firewall_engine == "running" and ids(lab) == before
    back_in_service(lab, nfwlab_ports)


def test_up_on_the_running_lab_repairs_it_and_another_topology_is_refused(lab, nfwlab_ports):
    before = ids(lab)
    kill(lab, "nat-gateway")
    res = nfwlab_cli(lab, "up")
    assert res.returncode == 0 and "repaired nat-gateway" in res.stdout, res.stdout + res.stderr
    res = nfwlab_cli(lab, "up", "--topology", "firewall-first")
    assert res.returncode == 4 and "up with topology nat-first" in res.stderr and "firewall-first" in res.stderr
    assert ids(lab) == before and lab.topology_name == "nat-first"
    back_in_service(lab, nfwlab_ports)
