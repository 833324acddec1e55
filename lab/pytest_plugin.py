"""pytest plugin (registered as `nfwlab`): fixtures to test against a real lab.

    def test_alert_names_server(nfwlab):
        nfwlab.switch("firewall-first")
        mark = nfwlab.log_mark()
        assert nfwlab.fetch("server-a", "https://blocked.example/").failure == "timeout"  # dropped: no answer
        alert = nfwlab.wait_for_alert({"tls.sni": "blocked.example"}, since=mark)
        assert alert["src_ip"] == "10.0.136.108"

`nfwlab` is one lab for the whole session (started on first use, removed at
the end, also when tests fail). Options: --nfwlab-name NAME, --nfwlab-keep.
Under pytest-xdist each worker gets a lab of its own (NAME-gw0, NAME-gw1, ...),
and `worker_lab_name(NAME)` gives a test's own lab a name no other worker uses.
`nfwlab_topology` and `nfwlab_policy` switch it to a topology's route tables /
apply a firewall policy for one test (indirect parametrization, or for the
topology the mark `@pytest.mark.nfwlab_topology("firewall-first")`); the policy
fixture puts the lab's own policy back afterwards. After every test the lab is
put back in its session topology (nat-first) if the test switched it, as the VPC
router's kernel shows, so no test inherits another's route tables. `nfwlab_ports` hands out
client ports that no earlier request of the session used (see its docstring).

Case files (`nfwlab test` format, docs/cases.md) are collected too, one test item per case (`-k TAG`
selects by tag), when named on the command line (`pytest cases/scenario.yaml`) or matched by the ini
option `nfwlab_cases` (glob patterns, e.g. `nfwlab_cases = cases/*.yaml`). A file's cases run together,
at once, in the session's lab, the first time one of its items runs; each item then reports its own case.
"""
from __future__ import annotations

import fnmatch
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .cases import Case, CaseError, load_cases
from .lab import DEFAULT_TOPOLOGY, Lab
from .nodes import ROUTER
from .regress import run_cases
from .results import CaseResult
from .routing import kernel_routes


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nfwlab")
    group.addoption("--nfwlab-name", default="pytest", help="name of the lab the fixtures start (default: pytest)")
    group.addoption("--nfwlab-keep", action="store_true", help="leave the lab running after the session")
    parser.addini("nfwlab_cases", type="linelist", default=[],
                  help="glob patterns (relative to the root directory) of case files to collect as tests")


class _SessionLab:
    """The session's lab, started on first use and removed when pytest ends (unless --nfwlab-keep)."""

    topology = DEFAULT_TOPOLOGY  # the one it runs between tests

    def __init__(self, config: pytest.Config):
        self.config = config
        self.lab: Lab | None = None

    def get(self) -> Lab:
        if self.lab is None:
            # testcontainers' reaper image cannot be pulled without a registry; the lab
            # removes its containers itself, by label.
            os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
            lab = Lab(worker_lab_name(self.config.getoption("--nfwlab-name")))
            lab.down(purge=True)  # whatever an earlier, interrupted session left
            self.lab = lab
            lab.up(DEFAULT_TOPOLOGY)
        return self.lab

    def restore(self) -> None:
        """Puts the lab back in its session topology when a test left it in another's route tables: the VPC
        router's routes read from its kernel (one netlink dump), switched only when they differ."""
        lab = self.lab
        if lab is None or lab.topology_name is None:  # not started, or a test took it down
            return
        router = lab.docker.containers(lab.name, with_pids=True).get(ROUTER)
        if router is None:  # a test removed it: the lab's own repair is that test's business
            return
        wanted = set(kernel_routes(lab.vpc, lab.load_route_tables(self.topology)))
        held = lab.kernel.routes(lab.kernel.netns_path(router.pid), {r.table for r in wanted})
        if held != wanted or lab.topology_name != self.topology:
            lab.switch(self.topology)

    def close(self) -> None:
        if self.lab is not None and not self.config.getoption("--nfwlab-keep"):
            self.lab.down(purge=True)  # a test session's lab keeps no archive
        self.lab = None


_LAB = pytest.StashKey[_SessionLab]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_LAB] = _SessionLab(config)
    config.add_cleanup(lambda: config.stash[_LAB].close())
    config.addinivalue_line("markers", "nfwlab_topology(name): the topology whose route tables the test needs "
                                       "(with the nfwlab_topology fixture)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After each test that used the session lab (and each case file's case), once its fixtures are torn down:
    the lab back in its session topology."""
    try:
        return (yield)
    finally:
        if isinstance(item, CaseItem) or "nfwlab" in getattr(item, "fixturenames", ()):
            item.config.stash[_LAB].restore()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    rel = os.path.relpath(file_path, parent.config.rootpath)
    if parent.session.isinitpath(file_path) or any(
            fnmatch.fnmatch(rel, pattern) for pattern in parent.config.getini("nfwlab_cases")):
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFile(pytest.File):
    """A case file: its cases as test items, run together the first time one of them runs."""

    cases: tuple[Case, ...] = ()
    results: dict[tuple[str, str], CaseResult] | None = None

    def collect(self) -> Iterator[pytest.Item]:
        try:
            self.cases = load_cases(self.path).cases
        except CaseError as e:
            raise self.CollectError(str(e)) from None
        for case in self.cases:
            yield CaseItem.from_parent(self, name=case.name, case=case)

    def run(self) -> dict[tuple[str, str], CaseResult]:
        if self.results is None:
            lab = self.config.stash[_LAB].get()
            run = run_cases(lab, self.cases, str(self.path))
            self.results = {(r.case.where, r.case.name): r for r in run.results}
        return self.results


class CaseFailed(Exception):
    def __init__(self, result: CaseResult):
        super().__init__(result.case.name)
        self.result = result


class CaseItem(pytest.Item):
    """One case of a case file."""

    def __init__(self, *, case: Case, **kwargs: Any):
        super().__init__(**kwargs)
        self.case = case
        self.extra_keyword_matches.update(case.tags)  # `pytest -k TAG` selects by tag

    def runtest(self) -> None:
        assert isinstance(self.parent, CaseFile)
        result = self.parent.run()[self.case.where, self.case.name]
        if result.status != "passed":
            raise CaseFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed):
            r = excinfo.value.result
            lines = [f"{r.case.source} -> {r.case.request()}", f"expected: {r.case.expectation()}",
                     f"seen:     {r.seen.describe()}", f"evidence: {r.seen.evidence}"]
            lines += [f"problem:  {p}" for p in r.problems] + ([f"error:    {r.error}"] if r.error else [])
            lines.append(f"({r.case.where}; from {r.seen.server}, source port {r.seen.source_port}, "
                         f"flow {r.seen.flow_id})")
            return "\n".join(lines)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"case: {self.case.name}"


def worker_lab_name(base: str) -> str:
    """`base`, or under pytest-xdist `base-gwN`: labs of parallel workers never share a name."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"{base}-{worker}" if worker else base


@pytest.fixture(scope="session")
def nfwlab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A running lab (topology nat-first), shared by the session (by the worker, under pytest-xdist);
    the same lab the collected case files run in."""
    provider = request.config.stash[_LAB]
    yield provider.get()
    provider.close()


@pytest.fixture
def nfwlab_topology(nfwlab: Lab, request: pytest.FixtureRequest) -> Lab:
    """The session lab switched to the route tables of the topology the test names, by indirect
    parametrization or by the mark (else the session topology, nat-first); put back after the test:

        @pytest.mark.parametrize("nfwlab_topology", ["nat-first", "firewall-first"], indirect=True)
        @pytest.mark.nfwlab_topology("firewall-first")
    """
    mark = request.node.get_closest_marker("nfwlab_topology")
    nfwlab.switch(getattr(request, "param", mark.args[0] if mark else _SessionLab.topology))
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
