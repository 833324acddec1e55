"""Deploy and destroy: the two verbs of a lab's life on the host (as containerlab splits its central
object by verb).

    Deployment.deploy   writes the lab's files, starts its containers through Compose, wires them
                        (lab/wiring.py) and waits until every node is ready; on any failure removes
                        everything made so far before the error goes up
    Deployment.destroy  removes the containers (Compose, then a sweep by the lab's label), moves the lab's
                        logs, rules, topology and lab.json to an archive folder (lab/state.py) and removes
                        the rest of the state directory (purge: all of it); works after a crash, without
                        the compose file
    Deployment.health   each node's state: running, or why not (its container exited, is missing, ..., or
                        was started again outside the lab, in a new network namespace without its links:
                        "unwired")
    Deployment.repair   brings back the nodes that are not running, and only them: their containers
                        started (or made anew), their links wired again, their set-up and the policy
                        reapplied; the other nodes, and their connections, stay as they are
"""
from __future__ import annotations

import json
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

from .compose import compose_config, write_compose_file
from .engine import LOG_HINT
from .errors import EnvironmentProblem, LabError, NodeError, StateError
from .logs import LogLimits
from .model import Topology
from .nodes import Role, ServiceContext, services
from .policy import Rendered
from .progress import say
from .results import DownReport
from .routing import kernel_routes
from .state import LabState
from .wait import until_containers_ready
from .wiring import Wiring

IMAGES = ("node", "firewall")


class Deployment:
    def __init__(self, name: str, state: LabState, docker: Any, wiring: Wiring, home: Path, image_tag: str,
                 log_limits: LogLimits | None = None):
        self.name, self.state, self.docker, self.wiring = name, state, docker, wiring
        self.home, self.image_tag = home, image_tag
        self.log_limits = log_limits or LogLimits()  # the nodes' log rotation (their compose environment)

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
        say("checking root, Docker and the images")
        self.preflight()
        fresh = not self.state.dir.exists()  # a failure removes what this `up` made; earlier logs are archived
        self.state.write(name=self.name, topology=None, phase="starting")
        try:
            # First, so that `down` after a crash knows what to remove.
            self.state.keep_topology(topology.source)
            say("writing the lab's files")
            self._write_files(topology, roles, engines, rendered, domains)
            try:
                say(f"starting {len(roles)} containers")
                self._compose().up()
                say("wiring links and routes")
                pids = self.pids(topology)
                self.wiring.wire(roles, pids, kernel_routes(topology.vpc, topology.route_tables))
            except NodeError:
                # A firewall that died (its rules refused), at start or while being wired, says why: better
                # than compose's error or the interface the wiring then misses.
                engines.not_started()
                raise
            say("waiting for every node to be ready (firewall endpoints: Suricata's 'Engine started')")
            self._wait_ready(roles, timeout)
            say("applying the policy's stateless rules")
            engines.apply_stateless()  # the stateless engine's rules, and its pass path open
            self._remember_runs()
        except BaseException:
            self.destroy(purge=fresh)
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
        ctx = ServiceContext(self.name, d, self.home, self.image_tag, tuple(domains), self.log_limits)
        write_compose_file(d / "compose.yaml", compose_config(roles, ctx))
        (d / "compose.env").write_text(self.docker.compose_env({"COMPOSE_PROJECT_NAME": f"nfwlab-{self.name}"}))

    def pids(self, topology: Topology, then: str = "") -> dict[str, int]:
        """Each node's process (its network namespace), or NodeError for a node that is not running (`then`:
        what to do about it)."""
        found = self.docker.containers(self.name, with_pids=True)
        pids = {}
        for service in services(topology.vpc):
            c = found.get(service)
            if c is None or not c.running or c.pid <= 0:
                raise NodeError(f"node {service} is not running",
                                then or f"see `docker logs {c.id[:12] if c else service}`; then "
                                f"`nfwlab --name {self.name} down`")
            pids[service] = c.pid
        return pids

    def _wait_ready(self, roles: list[Role], timeout: float, since: dict[str, float] | None = None) -> None:
        """Until every node says it does its job (a firewall endpoint: its engine inspects traffic), judged on
        what it printed from `since[node]` on, when given."""
        until_containers_ready(self.docker, self.name,
                               {r.service: partial(r.ready, since=(since or {}).get(r.service)) for r in roles},
                               "every node to be ready (firewall endpoints: Suricata's 'Engine started';"
                               " the internet: its web server listening)", timeout, LOG_HINT)

    # --------------------------------------------------------------- repair
    @property
    def _wired_file(self) -> Path:
        return self.state.dir / "wired.json"

    def _remember_runs(self) -> None:
        """When each node's container started, as the lab wired it: a container that started again since (a
        `docker restart`) runs in a new network namespace, without its links."""
        runs = {node: c.started for node, c in self.docker.containers(self.name, with_pids=True).items()}
        if self.state.dir.is_dir():
            self._wired_file.write_text(json.dumps(runs, indent=1))

    def _wired_runs(self) -> dict[str, str]:
        try:
            return {str(k): str(v) for k, v in json.loads(self._wired_file.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def health(self, topology: Topology, found: dict[str, Any] | None = None) -> dict[str, str]:
        """Each node's state, from the lab's containers (by label; `found`: a listing with their processes
        already made): "running", "exited", "missing" (no container), "restarting", "paused", ... or "unwired":
        running, but started again outside the lab (a new network namespace, without its links)."""
        found = found if found is not None else self.docker.containers(self.name, with_pids=True)
        wired = self._wired_runs()
        out = {}
        for node in services(topology.vpc):
            c = found.get(node)
            if c is None:
                out[node] = "missing"
            elif not c.running:
                out[node] = c.status or "exited"
            elif wired.get(node) and c.started and c.started != wired[node]:
                out[node] = "unwired"
            else:
                out[node] = "running"
        return out

    def repair(self, topology: Topology, roles: list[Role], engines: Any, timeout: float) -> list[str]:
        """Brings back every node that is not running, and only those; returns their names (none: the lab was
        whole). Each one's container is started again (made anew if it is gone), so it has a new network
        namespace: its links are made again, with the peer ends left in its neighbours deleted first (see
        Wiring.rewire), its own set-up (a firewall endpoint fails closed first) and its neighbours' are
        reapplied, the VPC router's route tables too, and a firewall endpoint gets the running policy's
        stateless rules once its engine has started. A paused node is only resumed: its links stayed.
        NodeError when a node does not come back; the lab is then left as it is (`down` removes it)."""
        found = self.docker.containers(self.name, with_pids=True)
        health = self.health(topology, found)
        down = [node for node, state in health.items() if state != "running"]
        if not down:
            return []
        hint = f"see `nfwlab --name {self.name} status`; `nfwlab --name {self.name} down` removes the lab"
        say(f"bringing back {', '.join(down)}")
        started = time.time()  # what a node printed before it started again does not count
        paused = [n for n in down if health[n] == "paused"]
        for node in paused:
            self.docker.unpause(found[node].id)
        recreate = [n for n in down if health[n] in ("missing", "dead", "removing")]
        for node in recreate:
            if node in found:
                self.docker.remove_container(found[node].id)
        for node in down:
            if node not in paused and node not in recreate and health[node] != "unwired":
                self.docker.start(found[node].id)
        if recreate:
            self._compose().up(recreate)
        fresh = {n for n in down if n not in paused}
        say("wiring their links and routes again")
        try:
            pids = self.pids(topology, hint)
            self.wiring.rewire(roles, pids, kernel_routes(topology.vpc, topology.route_tables), fresh)
        except NodeError:
            firewalls = [n for n in fresh if n in engines.endpoints]
            if firewalls:
                engines.not_started(firewalls)  # a firewall that died says why (its rules refused)
            raise
        say("waiting for them to be ready")
        self._wait_ready([r for r in roles if r.service in fresh], timeout,
                         {n: started for n in fresh if health[n] != "unwired"})
        endpoints = [n for n in engines.endpoints if n in fresh]
        if endpoints:
            engines.apply_stateless(endpoints)
        missing = self.wiring.missing_links(roles, pids)
        if missing:
            raise NodeError("links still missing after repair: " + ", ".join(
                f"{a}:{ai} - {b}:{bi}" for (a, ai), (b, bi) in (link.ends() for link in missing)), hint)
        self._remember_runs()
        return down

    # -------------------------------------------------------------- destroy
    def destroy(self, purge: bool = False) -> DownReport:
        """Removes everything the lab made: containers, links (they go with their containers), state; keeps its
        logs, rules, topology and lab.json in an archive folder unless `purge` (the containers go first, so
        no record is written after the move)."""
        containers = len(self.docker.containers(self.name))
        say(f"removing {containers} containers")
        if (self.state.dir / "compose.yaml").exists() and (self.state.dir / "compose.env").exists():
            try:
                self._compose().down()
            except LabError:
                pass  # the label sweep below removes what compose could not
        self.docker.remove_lab_containers(self.name)
        existed = self.state.dir.exists()
        archive = None if purge else self.state.archive(self.name)
        if purge:
            self.state.remove()
        return DownReport(self.name, containers, str(self.state.dir) if existed else None,
                          str(archive) if archive else None)
