"""The small pieces under the orchestration: waits, the kernel's and Docker's errors, node kinds and
their Compose services. No root, no Docker."""
from pathlib import Path

import pytest
import requests
from fakes import FakeDocker, FakeKernel
from pyroute2.netlink.exceptions import NetlinkError

from lab import docker as dk
from lab import kernel
from lab.errors import EnvironmentProblem, LabError, NodeError, WaitTimeout
from lab.model import load_topology
from lab.nodes import NodeKind, ServiceContext, roles, services
from lab.wait import Wait

ROOT = Path(__file__).resolve().parents[2]  # the repository, wherever pytest runs from


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_wait_returns_the_first_truthy_result_without_waiting_longer():
    clock, results = Clock(), iter([None, 0, "done"])
    assert Wait("x", 5, interval=1, clock=clock, sleep=clock.sleep).until(lambda: next(results)) == "done"
    assert clock.now == 2


def test_wait_timeout_names_what_was_awaited_and_what_was_seen():
    clock = Clock()
    with pytest.raises(WaitTimeout) as e:
        Wait("the engine to start", 3, interval=1, hint="see its log", clock=clock, sleep=clock.sleep).until(
            lambda: False, report=lambda: "line one\nline two")
    assert "waited 3s for the engine to start" in str(e.value) and "line one\n    line two" in str(e.value)
    assert e.value.hint == "see its log" and clock.now == 3


def test_wait_lets_the_checks_own_errors_through():
    def died():
        raise NodeError("the node died", "look")
    with pytest.raises(NodeError, match="the node died"):
        Wait("x", 5).until(died)


def test_netlink_errors_become_lab_errors(monkeypatch):
    class Refusing:
        def __init__(self, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def link_lookup(self, ifname):
            return []

        def route(self, *args, **kwargs):
            raise NetlinkError(22, "Invalid argument")

        def addr(self, *args, **kwargs):
            raise AssertionError("an address on an interface that was not found")

    monkeypatch.setattr(kernel, "IPRoute", Refusing)
    with pytest.raises(NodeError, match="netlink refused a change in namespace /proc/1/ns/net: Invalid argument"):
        kernel.set_default_route("/proc/1/ns/net", "10.0.0.1")
    with pytest.raises(NodeError, match="no interface lo"):
        kernel.add_address("/proc/1/ns/net", "lo", kernel.IPv4Interface("10.0.0.2/32"))


def test_docker_errors_become_lab_errors(monkeypatch):
    class Gone:
        def get(self, container_id):
            raise dk.docker.errors.NotFound("no such container")

    class Client:
        containers = Gone()
    monkeypatch.setattr(dk, "client", lambda: Client())
    with pytest.raises(NodeError, match="container 0123456789ab is gone"):
        dk.exec_in("0123456789abcdef", ["true"])
    assert dk.logs("0123456789abcdef") == "(container is gone)"


def test_an_engine_that_fails_midway_is_an_environment_problem(monkeypatch):
    class Api:
        def containers(self, **kwargs):
            raise requests.exceptions.ConnectionError("Connection aborted")

    class Client:
        api = Api()
    monkeypatch.setattr(dk, "client", lambda: Client())
    with pytest.raises(EnvironmentProblem, match="failed to list the containers of lab x") as e:
        dk.containers("x")
    assert "docker info" in e.value.hint


def test_every_node_kind_has_one_service_and_only_uses_the_kernel_it_is_given(tmp_path):
    topology = load_topology(ROOT / "topologies" / "multi-az.yaml")
    fake = FakeKernel()
    engine = type("Engine", (), {"fail_closed": lambda self, pid: fake.iptables(pid, "-A", "FORWARD", "-j", "X"),
                                 "compose_service": lambda self, ctx, e, service: service(ctx, "firewall", ["fw"])})()
    nodes = roles(topology.vpc, fake, engine, FakeDocker())
    assert [r.service for r in nodes] == services(topology.vpc)
    assert {r.kind for r in nodes} == set(NodeKind)
    ctx = ServiceContext("unit", tmp_path, tmp_path, "1", ("allowed.example",))
    for r in nodes:
        service = r.compose_service(ctx)
        assert service["labels"] == {"io.nfwlab.lab": "unit", "io.nfwlab.role": r.kind.value}
        assert service["network_mode"] == "none" and service["image"].startswith("nfwlab/")
    pids = {name: 100 + i for i, name in enumerate(services(topology.vpc))}
    for r in nodes:
        r.before_links(pids[r.service])
        r.configure(pids)
    firewalls = [pids[e.name] for e in topology.vpc.endpoints]
    assert [c[1] for c in fake.calls if c[0] == "iptables" and c[2][-1] == "X"] == firewalls
    links = [link for r in nodes for link in r.links()]
    ends = {(link.a_service, link.a_ifname) for link in links} | {(link.b_service, link.b_ifname) for link in links}
    assert len(ends) == 2 * len(links)  # no interface is made twice


def test_lab_errors_all_carry_a_hint_and_an_exit_code():
    for cls in LabError.__subclasses__():
        e = cls("what", "how")
        assert e.exit_code > 1 and str(e) == "what\n  -> how"
