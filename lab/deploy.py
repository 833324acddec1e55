"""Deploy and destroy: the two verbs of a lab's life on the host (as containerlab splits its central
object by verb).

    Deployment.deploy   writes the lab's files, starts its containers through Compose, wires them
                        (lab/wiring.py) and waits until every node is ready; on any failure removes
                        everything made so far before the error goes up
    Deployment.destroy  removes the containers (Compose, then a sweep by the lab's label) and the state
                        directory; works after a crash, without the compose file
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .compose import compose_config, write_compose_file
from .engine import LOG_HINT
from .errors import EnvironmentProblem, LabError, NodeError, StateError
from .model import Topology
from .nodes import Role, ServiceContext, services
from .policy import Rendered
from .results import DownReport
from .routing import kernel_routes
from .state import LabState
from .wait import until_containers_ready
from .wiring import Wiring

IMAGES = ("node", "firewall")


class Deployment:
    def __init__(self, name: str, state: LabState, docker: Any, wiring: Wiring, home: Path, image_tag: str):
        self.name, self.state, self.docker, self.wiring = name, state, docker, wiring
        self.home, self.image_tag = home, image_tag

    # --------------------------------------------------------------- deploy
    def preflight(self) -> None:
        if os.geteuid() != 0:
            raise EnvironmentProblem("the lab needs root: it wires network namespaces over netlink",
                                     "run it as root, or with sudo")
        self.docker.client()
        for image in (f"nfwlab/{i}:{self.image_tag}" for i in IMAGES):
            if not self.docker.image_exists(image):
                raise EnvironmentProblem(f"image {image} is missing",
                                         "build the images: `make images` (or `nfwlab build`)")
        if self.docker.containers(self.name):
            raise StateError(f"lab {self.name!r} already exists on this host",
                             f"use it, take it down with `nfwlab --name {self.name} down`, or pick another --name")

    def deploy(self, topology: Topology, roles: list[Role], engines: Any, rendered: Rendered,
               domains: list[str], timeout: float) -> None:
        """Everything up and ready; nothing left behind if any step fails (the error is raised after)."""
        self.preflight()
        self.state.write(name=self.name, topology=None, phase="starting")
        try:
            # First, so that `down` after a crash knows what to remove.
            self.state.keep_topology(topology.source)
            self._write_files(topology, roles, engines, rendered, domains)
            try:
                self._compose().up()
                self.wiring.wire(roles, self.pids(topology), kernel_routes(topology.vpc, topology.route_tables))
            except NodeError:
                # A firewall that died (its rules refused), at start or while being wired, says why: better
                # than compose's error or the interface the wiring then misses.
                engines.not_started()
                raise
            self._wait_ready(roles, timeout)
            engines.apply_stateless()  # the stateless engine's rules, and its pass path open
        except BaseException:
            self.destroy()
            raise

    def _compose(self) -> Any:
        return self.docker.ComposeProject(self.state.dir, self.state.dir / "compose.env", "compose.yaml")

    def _write_files(self, topology: Topology, roles: list[Role], engines: Any, rendered: Rendered,
                     domains: list[str]) -> None:
        vpc, d = topology.vpc, self.state.dir
        for sub in ("logs", "rules", "dns", *(f"logs/{e.name}" for e in vpc.endpoints)):
            (d / sub).mkdir(parents=True, exist_ok=True)
        engines.engine.write_policy(self.state.rules_dir, rendered)
        (d / "dns" / "hosts").write_text("".join(f"{vpc.internet.web_server} {name}\n" for name in domains))
        (d / "dns" / "resolv.conf").write_text(f"nameserver {vpc.dns_ip}\noptions timeout:1 attempts:2\n")
        ctx = ServiceContext(self.name, d, self.home, self.image_tag, tuple(domains))
        write_compose_file(d / "compose.yaml", compose_config(roles, ctx))
        (d / "compose.env").write_text(self.docker.compose_env({"COMPOSE_PROJECT_NAME": f"nfwlab-{self.name}"}))

    def pids(self, topology: Topology) -> dict[str, int]:
        """Each node's process (its network namespace), or NodeError for a node that is not running."""
        found = self.docker.containers(self.name, with_pids=True)
        pids = {}
        for service in services(topology.vpc):
            c = found.get(service)
            if c is None or not c.running or c.pid <= 0:
                raise NodeError(f"node {service} is not running",
                                f"see `docker logs` of its container; then `nfwlab --name {self.name} down`")
            pids[service] = c.pid
        return pids

    def _wait_ready(self, roles: list[Role], timeout: float) -> None:
        """Until every node says it does its job (a firewall endpoint: its engine inspects traffic)."""
        until_containers_ready(self.docker, self.name, {r.service: r.ready for r in roles},
                               "every node to be ready (firewall endpoints: Suricata's 'Engine started';"
                               " the internet: its web server listening)", timeout, LOG_HINT)

    # -------------------------------------------------------------- destroy
    def destroy(self) -> DownReport:
        """Removes everything the lab made: containers, links (they go with their containers), state."""
        containers = len(self.docker.containers(self.name))
        if (self.state.dir / "compose.yaml").exists() and (self.state.dir / "compose.env").exists():
            try:
                self._compose().down()
            except LabError:
                pass  # the label sweep below removes what compose could not
        self.docker.remove_lab_containers(self.name)
        removed = self.state.remove()
        return DownReport(self.name, containers, str(self.state.dir) if removed else None)
