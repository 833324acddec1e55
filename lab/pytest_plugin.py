"""pytest plugin (registered as `nfwlab`): fixtures to test against a real lab.

    def test_alert_names_server(nfwlab):
        nfwlab.switch("firewall-first")
        mark = nfwlab.log_mark()
        assert not nfwlab.fetch("server-a", "https://blocked.example/").ok
        alert = nfwlab.wait_for_alert({"tls.sni": "blocked.example"}, since=mark)
        assert alert["src_ip"] == "10.0.136.108"

`nfwlab` is one lab for the whole session (started on first use, removed at
the end, also when tests fail). Options: --nfwlab-name NAME, --nfwlab-keep.
Under pytest-xdist each worker gets a lab of its own (NAME-gw0, NAME-gw1, ...),
and `worker_lab_name(NAME)` gives a test's own lab a name no other worker uses.
`nfwlab_topology` and `nfwlab_policy` switch it to a topology's route tables /
apply a firewall policy for one test (indirect parametrization); the policy
fixture puts the lab's own policy back afterwards. `nfwlab_ports` hands out
client ports that no earlier request of the session used (see its docstring).
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from .lab import DEFAULT_TOPOLOGY, Lab


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nfwlab")
    group.addoption("--nfwlab-name", default="pytest", help="name of the lab the fixtures start (default: pytest)")
    group.addoption("--nfwlab-keep", action="store_true", help="leave the lab running after the session")


def worker_lab_name(base: str) -> str:
    """`base`, or under pytest-xdist `base-gwN`: labs of parallel workers never share a name."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"{base}-{worker}" if worker else base


@pytest.fixture(scope="session")
def nfwlab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A running lab (topology nat-first), shared by the session (by the worker, under pytest-xdist)."""
    # testcontainers' reaper image cannot be pulled without a registry; the lab
    # removes its containers itself, by label.
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    lab = Lab(worker_lab_name(request.config.getoption("--nfwlab-name")))
    lab.down()  # whatever an earlier, interrupted session left
    lab.up(DEFAULT_TOPOLOGY)
    try:
        yield lab
    finally:
        if not request.config.getoption("--nfwlab-keep"):
            lab.down()


@pytest.fixture
def nfwlab_topology(nfwlab: Lab, request: pytest.FixtureRequest) -> Lab:
    """The session lab switched to the route tables of the topology given by indirect parametrization:

        @pytest.mark.parametrize("nfwlab_topology", ["nat-first", "firewall-first"], indirect=True)
    """
    nfwlab.switch(getattr(request, "param", DEFAULT_TOPOLOGY))
    return nfwlab


nfwlab_design = nfwlab_topology  # the fixture's name before "topology"


@pytest.fixture
def nfwlab_policy(nfwlab: Lab, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The session lab enforcing the policy file given by indirect parametrization, for one test:

        @pytest.mark.parametrize("nfwlab_policy", ["policies/allow-domains.json"], indirect=True)

    The lab's own policy is enforced again afterwards."""
    nfwlab.apply_policy(request.param)
    try:
        yield nfwlab
    finally:
        nfwlab.apply_policy(nfwlab.policy)


# Above Linux's default ephemeral range (32768-60999), so no request that picks its own port takes one.
FIRST_FREE_PORT, LAST_PORT = 61000, 65535


@pytest.fixture(scope="session")
def nfwlab_ports() -> Iterator[int]:
    """Client ports never used before in the session (it has 4,536 before it starts again at 61000):
    `port = next(nfwlab_ports)`, then `lab.fetch(node, url, local_port=port)`.

    Use one for each request whose alert a test waits for. The firewall remembers a dropped flow until
    it times out (TcpIdleTimeoutSeconds, 350 s by default, as on AWS), and a new connection on the same
    five-tuple is dropped silently as part of that old flow, without a new alert. A shared lab's flow
    table fills with such flows: every request a test lets the kernel choose a port for may land on one.
    (In nat-first every server's flow reaches the firewall from the NAT gateway's address, so the servers
    share one port space there.)"""
    return itertools.cycle(range(FIRST_FREE_PORT, LAST_PORT + 1))
