"""Lab: the public API, a front door over small collaborators.

    from lab import Lab
    lab = Lab("demo")
    lab.up("nat-first")
    mark = lab.log_mark()
    lab.fetch("server-a", "https://blocked.example/")
    alert = lab.wait_for_alert({"tls.sni": "blocked.example"}, since=mark)
    lab.switch("firewall-first")
    lab.apply_policy("policies/home-net-trap.json")
    lab.down()

Who does what: the topology (lab/model.py) says what the lab is; each node kind
(lab/nodes/) builds its own Compose service, links and configuration; Wiring
(lab/wiring.py) makes the links and routes; Engines (lab/engine.py) run the
firewall engine in every endpoint; LabState (lab/state.py) keeps what the lab
knows on disk; LabLogs (lab/logs.py) reads its logs. Docker and the kernel are
reached only through the `docker` and `kernel` modules a Lab is given (lab.docker
and lab.kernel unless a test passes fakes).
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields as dataclass_fields
from dataclasses import is_dataclass, replace
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from . import docker as docker_module
from . import kernel as kernel_module
from .deploy import Deployment
from .diagram import diagram as draw_diagram
from .enforce import Enforcer
from .engine import Engines, Suricata, engine_for
from .errors import ConfigError, LabError, NodeError, StateError, WaitTimeout
from .explain import Explanation
from .explain import explain as explain_flow
from .livetrace import trace_live as live_trace
from .logs import EveLog, LabLogs, LogLimits, LogMark, Record, parse_size
from .metrics import Metric, endpoint_metrics, parse_stateless_counters
from .model import RouteTables, Topology, Vpc, load_topology, validate_domain
from .nextgen import KIND as NEXT_GENERATION
from .nextgen import AnyPolicy, load_any_policy, render_any
from .nodes import ROUTER, Role, roles, services
from .policy import Rendered, rules_file_policy
from .progress import say
from .regress import PortLedger
from .results import DownReport, FetchResult, LiveTrace, PolicyApplied, Status
from .routing import diff_route_tables, format_route_tables, kernel_routes, route_table_json
from .shipped import HOME, TOPOLOGIES_DIR, policy_names, policy_path, topology_names
from .state import ARCHIVE, LabState, state_root
from .trace import Trace, judge
from .trace import trace as trace_flow
from .verdict import PolicyRules, rendered_rules, running_rules, variables_of
from .wait import Wait
from .who import Answer
from .who import who as who_did_it
from .wiring import Wiring

COMPOSE_DIR = HOME / "compose"
DEFAULT_POLICY = HOME / "policies" / "deny-domains.json"
DEFAULT_TOPOLOGY = "nat-first"  # a topology in topologies/
DEFAULT_DESIGN = DEFAULT_TOPOLOGY  # the name before "topology"
IMAGE_TAG = "1"
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")

__all__ = ["DEFAULT_POLICY", "DEFAULT_TOPOLOGY", "FetchResult", "Lab", "build_images", "policy_names", "policy_path",
           "state_root", "topology_names", "topology_path"]


def _home_net(value: str) -> list[str]:
    """HOME_NET as a list of CIDR blocks, from a comma-separated list."""
    blocks = [b.strip() for b in value.split(",") if b.strip()]
    try:
        if not blocks:
            raise ValueError("no block given")
        return [str(IPv4Network(b)) for b in blocks]
    except ValueError as e:
        raise ConfigError(f"HOME_NET {value!r} is not a list of CIDR blocks ({e})",
                          "write it like 10.0.0.0/16 or 10.0.128.0/20,10.0.0.0/20") from None


def _curl(url: str, timeout: float, local_port: int | None, *options: str) -> list[str]:
    """A node's request: curl without certificate checks, the body discarded, from `local_port` if given."""
    port = ["--local-port", str(local_port)] if local_port else []
    return ["curl", *port, "-sS", "-k", "-o", "/dev/null", *options, "--max-time", f"{timeout:g}", url]


design_names = topology_names  # the name before "topology"


def _names(items: list[str], most: int = 6) -> str:
    return ", ".join(items[:most]) + (f" and {len(items) - most} more" if len(items) > most else "")


def _changed(a: Any, b: Any) -> list[str]:
    """The fields in which two records of one dataclass differ."""
    return [k.name for k in dataclass_fields(a) if getattr(a, k.name) != getattr(b, k.name)]


def vpc_differences(running: Vpc, other: Vpc, name: str = "the other") -> list[str]:
    """What differs between the running lab's VPC and another topology's, field by field: a live switch needs
    them equal, and a refusal that names the fields tells what to change (or that `down` + `up` is the way)."""
    out = []
    for f in dataclass_fields(Vpc):
        mine, theirs = getattr(running, f.name), getattr(other, f.name)
        if not f.compare or mine == theirs:
            continue
        if isinstance(mine, tuple):  # subnets, servers, NAT gateways, endpoints: by name
            have, want = {x.name: x for x in mine}, {x.name: x for x in theirs}
            changed = [f"{n} ({', '.join(_changed(have[n], want[n]))})" for n in have
                       if n in want and have[n] != want[n]]
            parts = [f"{_names(names)} {what}" for names, what in (
                ([n for n in want if n not in have], f"in {name}, not in the running lab"),
                ([n for n in have if n not in want], "only in the running lab"), (changed, "changed")) if names]
            out.append(f"{f.name}: {'; '.join(parts) or 'the same, in another order'}")
        elif is_dataclass(mine):  # the internet gateway, the internet
            out += [f"{f.name}.{k}: {getattr(mine, k)} running, {getattr(theirs, k)} in {name}"
                    for k in _changed(mine, theirs)]
        else:
            out.append(f"{f.name}: {mine} running, {theirs} in {name}")
    return out


def topology_path(name_or_path: str | Path) -> Path:
    """A topology's file: a name in topologies/ or a path."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml", ".json")) or os.sep in text:
        return Path(text)
    path = TOPOLOGIES_DIR / f"{text}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown topology {text!r}",
                          f"use one of: {', '.join(topology_names())} (or the path of a topology file)")
    return path


class Lab:
    """One lab: a name, a topology (a VPC and its route tables), a firewall policy and a state directory."""

    def __init__(self, name: str = "default", topology: str | Path | None = None,
                 policy_file: str | Path = DEFAULT_POLICY, domains: list[str] | None = None,
                 home_net: str | None = None, state_dir: str | Path | None = None,
                 rules_file: str | Path | None = None, rule_group_files: Sequence[str | Path] = (),
                 flow_bypass: bool | None = None, log_max_size: int | str | None = None, log_keep: int | None = None,
                 docker: Any = docker_module, kernel: Any = kernel_module):
        """`policy_file`: a firewall policy or a rule group (AWS JSON or YAML); `rule_group_files`: rule groups
        the policy references; `rules_file`: a Suricata rules file run as-is instead; `home_net`: overrides
        the policy's HOME_NET (default: the VPC CIDR, as AWS). `topology`: a name in topologies/ or a file;
        a lab that is up keeps the topology it runs. `flow_bypass`: whether the endpoints' kernels forward
        the flows the engine has decided (default: on, or what the running lab was started with).
        `log_max_size` (bytes, or "64M", "20k"; 0: never) and `log_keep`: when each log rotates and how many
        rotated parts it keeps (default 64M and 8, or what the running lab was started with).
        Files are read when first needed, not here.
        `docker` and `kernel`: the modules that reach Docker and the kernel (fakes in unit tests)."""
        if not NAME_RE.match(name):
            raise ConfigError(f"lab name {name!r} is not valid",
                              "use 1-20 characters: lower-case letters, digits and '-', starting with a letter")
        if name == ARCHIVE:
            raise ConfigError(f"lab name {name!r} is taken by the folder where `down` keeps labs' logs",
                              "pick another --name")
        self.name = name
        self.docker, self.kernel = docker, kernel
        self.state_dir = Path(state_dir) if state_dir else state_root() / name
        self.state = LabState(self.state_dir)
        self._topology_arg = topology
        self._topology: Topology | None = None
        self._policy_source = (Path(rules_file) if rules_file else Path(policy_file), list(rule_group_files),
                               rules_file is not None)
        self._policy: AnyPolicy | None = None
        self.domains_given = [validate_domain(d, "--domains") for d in domains] if domains else None
        self.home_net_override = _home_net(home_net) if home_net else None
        self.flow_bypass_given = flow_bypass
        self.log_limits_given = (parse_size(log_max_size) if log_max_size is not None else None, log_keep)
        if log_keep is not None:
            LogLimits(keep=log_keep)  # refused now, before anything is made
        self.wiring = Wiring(kernel)

    # ------------------------------------------------------------ topology
    @staticmethod
    def resolve_topology(name_or_path: str | Path) -> Topology:
        """The one place a topology file is read."""
        return load_topology(topology_path(name_or_path))

    @property
    def topology(self) -> Topology:
        """The running lab's topology, else the one given, else the default."""
        if self._topology is None:
            running = self.state.topology_file
            self._topology = (load_topology(running) if running.exists() and self._topology_arg is None
                              else self.resolve_topology(self._topology_arg or DEFAULT_TOPOLOGY))
        return self._topology

    @property
    def vpc(self) -> Vpc:
        return self.topology.vpc

    def _topology_or_running(self, topology: str | Path | None) -> Topology:
        """`topology` read from its file (a name or a path), or the lab's own when None."""
        return self.resolve_topology(topology) if topology else self.topology

    @property
    def topology_name(self) -> str | None:
        """The running topology's name, or None when the lab is not up."""
        return self.state.read().topology

    design = topology_name  # the name before "topology"

    @property
    def flow_bypass(self) -> bool:
        """Whether the endpoints forward decided flows in their kernel: as given, else as the lab runs."""
        return self.flow_bypass_given if self.flow_bypass_given is not None else self.state.read().flow_bypass

    @property
    def log_limits(self) -> LogLimits:
        """When the logs rotate and how many parts they keep: as given, else as the lab runs."""
        size, keep = self.log_limits_given
        saved = self.state.read()
        return LogLimits(saved.log_max_size if size is None else size, saved.log_keep if keep is None else keep)

    @property
    def domains(self) -> list[str]:
        """The names the lab's internet serves: given, else the running lab's (`up --domains`), else the
        topology's."""
        return self._domains_for(self.topology)

    def roles(self) -> list[Role]:
        return roles(self.vpc, self.kernel, self.engine_kind, self.docker)

    # ---------------------------------------------------- collaborators
    # Made once; `engines` and `logs` follow the topology's endpoints, so `up` with another topology forgets
    # them (a switch keeps the endpoints: it may change route tables only).
    @property
    def policy_kind(self) -> str:
        """"classic" or "next-generation": the running lab's, else that of the policy it starts with."""
        running = self.state.read().policy.get("kind") if self.topology_name else None
        return running or self.policy.kind

    @cached_property
    def engine_kind(self) -> Suricata:
        """The firewall engine every endpoint runs (Suricata 7 for a Classic policy, Suricata 8's firewall mode
        for a Next Generation policy); Suricata's errors are traced back to the lab's policy."""
        return engine_for(self.policy_kind, self.docker, self.kernel, flow_bypass=self.flow_bypass,
                          explain=lambda log: self.render().explain(log),
                          fix=lambda: f"fix the policy {self.policy.source}")

    @cached_property
    def engines(self) -> Engines:
        """The firewall engine of every endpoint: wait, stop, start, check, reload, status, bypassed."""
        return Engines(self.engine_kind, self.docker, self.name, [e.name for e in self.vpc.endpoints],
                       self.state.rules_dir)

    @cached_property
    def logs(self) -> LabLogs:
        return LabLogs(self.state.logs_dir, [e.name for e in self.vpc.endpoints])

    @property
    def eve(self) -> EveLog:
        return self.logs.eve

    @property
    def alert_log(self) -> EveLog:
        return self.logs.alert_log

    @property
    def flow_log(self) -> EveLog:
        return self.logs.flow_log

    @property
    def nat_log(self) -> EveLog:
        return self.logs.nat_log

    # -------------------------------------------------------------- policy
    @property
    def policy(self) -> AnyPolicy:
        """The lab's own policy (the one `up` starts with), read on first use."""
        if self._policy is None:
            path, groups, is_rules = self._policy_source
            self._policy = self._with_home_net(rules_file_policy(path) if is_rules
                                               else load_any_policy(policy_path(path), groups))
        return self._policy

    def _home_net_kept(self) -> list[str] | None:
        """The HOME_NET that overrides a policy's own: given to this Lab, else the running lab's (`up --home-net`,
        or the last `policy apply --home-net`); None: the policy's own."""
        if self.home_net_override:
            return self.home_net_override
        kept = self.state.read().home_net_override if self.topology_name else None
        return kept.split(",") if kept else None

    def _with_home_net(self, policy: AnyPolicy) -> AnyPolicy:
        return policy.with_home_net(self.home_net_override) if self.home_net_override else policy

    def render(self, policy: AnyPolicy | None = None) -> Rendered:
        """What the firewall runs for `policy` (default: the lab's): rules, variables, engine options."""
        return render_any(policy or self.policy, str(self.vpc.cidr))

    @property
    def home_net(self) -> str:
        return self.render().home_net

    # ------------------------------------------------------------- up/down
    @property
    def deployment(self) -> Deployment:
        return Deployment(self.name, self.state, self.docker, self.wiring, HOME, IMAGE_TAG, self.log_limits)

    repaired: list[str] | None = None  # what `up` brought back on a lab that was up already (None: it made it)

    def up(self, topology: str | Path | None = None, firewall_timeout: float = 60.0) -> float:
        """Starts the lab with a topology (a name in topologies/ or a file; default: the lab's);
        returns the seconds it took.

        The whole topology and policy are validated before anything is made; on any later failure
        everything made so far is removed before the error is raised. On a lab that is up already with
        that topology (or `topology` None) it brings back whatever is down instead (`repair`; `repaired`
        names it); StateError, naming both, when asked for another topology."""
        started = time.monotonic()
        if self.topology_name is not None:
            self._refuse_another_topology(topology)
            self.repaired = self.repair(firewall_timeout)
            return time.monotonic() - started
        self.repaired = None
        if topology is not None:
            self._topology_arg, self._topology = topology, None
            for made in ("engines", "logs"):
                self.__dict__.pop(made, None)
        say("checking the topology and the policy")
        chosen, rendered = self.topology, self.render()
        self.deployment.deploy(chosen, self.roles(), self.engines, rendered, self.domains, firewall_timeout)
        self.state.write(topology=chosen.name, topology_file=chosen.source, phase="up", home_net=rendered.home_net,
                         home_net_override=",".join(self.home_net_override) if self.home_net_override else None,
                         home_net_from="up --home-net" if self.home_net_override else None,
                         domains=self.domains, policy=self.policy.summary(), flow_bypass=self.flow_bypass,
                         log_max_size=self.log_limits.max_size, log_keep=self.log_limits.keep)
        return time.monotonic() - started

    def down(self, purge: bool = False) -> DownReport:
        """Removes everything the lab made: containers, links, state. Works after a crash. The lab's logs,
        rules, topology and lab.json go to an archive folder (DownReport.archive) unless `purge`."""
        return self.deployment.destroy(purge)

    def _refuse_another_topology(self, topology: str | Path | None) -> None:
        """Nothing when `topology` is the running one's (same VPC, same route tables) or None."""
        if topology is None:
            return
        asked, running = self.resolve_topology(topology), self.topology
        if asked.vpc == running.vpc and asked.route_tables.tables == running.route_tables.tables:
            return
        where = self.state.read().topology_file or running.source
        hint = (f"switch its route tables live (`nfwlab --name {self.name} switch {topology}`), or take it down "
                f"first (`nfwlab --name {self.name} down`)" if asked.vpc == running.vpc else
                f"take it down first: `nfwlab --name {self.name} down`, then "
                f"`nfwlab --name {self.name} up --topology {topology}`")
        raise StateError(f"lab {self.name!r} is up with topology {running.name} ({where}), not with "
                         f"{asked.name} ({asked.source})", hint)

    def health(self) -> dict[str, str]:
        """Each node's state: "running", or why not ("exited", "missing", "restarting", "paused", "unwired": see
        Deployment.health)."""
        return self.deployment.health(self.topology)

    def repair(self, timeout: float = 60.0) -> list[str]:
        """Brings back the nodes that are down, and only them (the others and their connections are left as
        they are: see Deployment.repair), and starts the firewall engine again in a running endpoint where it
        stopped. Returns the nodes it brought back (empty: the lab was whole); NodeError when the lab is not
        whole afterwards."""
        self._require_up()
        repaired = self.deployment.repair(self.topology, self.roles(), self.engines, timeout)
        stopped = [n for n, state in self.engines.status().items() if state != "running" and n not in repaired]
        for name in stopped:
            self.engines.start(name, timeout)
        still = {n: state for n, state in self.health().items() if state != "running"}
        still.update({n: "without its firewall engine" for n, state in self.engines.status().items()
                      if state != "running"})
        if still:
            raise NodeError(f"lab {self.name} is still degraded after repair: "
                            + ", ".join(f"{n} is {state}" for n, state in still.items()),
                            f"see `nfwlab --name {self.name} status`; to make the lab anew: "
                            f"`nfwlab --name {self.name} down`, then `nfwlab --name {self.name} up`")
        return repaired + stopped

    @contextmanager
    def running(self, topology: str | Path | None = None) -> Iterator[Lab]:
        """The lab up for a `with` block and removed at its end, also when the block fails, logs and all (a
        throwaway lab keeps no archive). Whatever an earlier, interrupted run left under this name is removed
        first."""
        self.down(purge=True)
        self.up(topology)
        try:
            yield self
        finally:
            self.down(purge=True)

    # ------------------------------------------------------- route tables
    def load_route_tables(self, name_or_path: str | Path) -> RouteTables:
        """The route tables of a topology that differs from this lab's only in its route tables."""
        return self._compatible(self.resolve_topology(name_or_path)).route_tables

    load_design = load_route_tables  # the name before "route tables"

    def _compatible(self, other: Topology) -> Topology:
        if other.vpc != self.vpc:
            differs = "; ".join(vpc_differences(self.vpc, other.vpc, other.name))
            raise ConfigError(f"{other.source}: its VPC differs from the running lab's ("
                              f"{self.topology_name or self.vpc.source}), "
                              f"and only route tables can change on a running lab. What differs: {differs}",
                              f"take the lab down and up with it: `nfwlab --name {self.name} down; "
                              f"nfwlab --name {self.name} up --topology {other.source}`")
        return other

    def switch(self, topology: str | Path) -> float:
        """Switches the running lab to another topology's route tables: routes only, no restarts. Returns seconds."""
        chosen = self._compatible(self.resolve_topology(topology))
        router = self._pid(ROUTER)
        started = time.perf_counter()
        self.wiring.replace_routes(router, kernel_routes(self.vpc, chosen.route_tables))
        took = time.perf_counter() - started
        self.state.keep_topology(chosen.source)
        self._topology = chosen
        self.state.write(topology=chosen.name, topology_file=chosen.source)
        return took

    def _routes_of(self, topology: str | Path | None) -> Topology:
        """The topology whose route tables are shown: `topology` (on a running lab it must have the lab's VPC;
        on a lab that is down any topology), else the lab's own."""
        if topology is None:
            return self.topology
        chosen = self.resolve_topology(topology)
        return self._compatible(chosen) if self.topology_name else chosen

    def route_tables(self, topology: str | Path | None = None) -> str:
        """The route tables as the VPC console shows them (the running topology's, or `topology`'s)."""
        chosen = self._routes_of(topology)
        return format_route_tables(chosen.vpc, chosen.route_tables)

    def route_tables_json(self, topology: str | Path | None = None) -> dict[str, Any]:
        """The route tables as `aws ec2 describe-route-tables` prints them."""
        chosen = self._routes_of(topology)
        return route_table_json(chosen.vpc, chosen.route_tables)

    def route_table_diff(self, other: str | Path, topology: str | Path | None = None) -> str:
        """What changes in the route tables from `topology` (default: the running one, or the default topology
        when the lab is down) to `other`; both must have one VPC."""
        base = self._routes_of(topology)
        target = self.resolve_topology(other)
        if self.topology_name and topology is None:
            target = self._compatible(target)
        elif target.vpc != base.vpc:
            raise ConfigError(f"{target.source}: its VPC differs from {base.name}'s ({base.source}); a route table "
                              f"diff compares topologies of one VPC. What differs: "
                              f"{'; '.join(vpc_differences(base.vpc, target.vpc))}",
                              f"diff it against a topology of its VPC: `nfwlab routes --topology T --diff {other}`")
        return diff_route_tables(base.vpc, base.route_tables, target.route_tables)

    # -------------------------------------------------------------- policy
    def _enforcer(self) -> Enforcer:
        return Enforcer(self.state, self.engines, self.render)

    def _same_kind(self, policy: AnyPolicy) -> None:
        """A running firewall changes policies of its own kind only: the kinds run on different engines."""
        running = self.policy_kind
        if policy.kind != running:
            engines = {"classic": "Suricata 7", NEXT_GENERATION: "Suricata 8's firewall mode"}
            raise ConfigError(f"{policy.source} is a {policy.kind} policy, but the lab runs a {running} policy on "
                              f"{engines[running]}", "AWS: a firewall \"uses one or the other\"; start the lab with "
                              f"it: `nfwlab --name {self.name} down; nfwlab --name {self.name} up --policy "
                              f"{policy.source}`")

    def check_policy(self, policy: AnyPolicy) -> Rendered:
        """Our own checks, then the engine's own (Suricata's test mode) in the running firewall on the
        generated rules. Raises ConfigError naming the rule group and rule refused; changes nothing."""
        self._require_up()
        self._same_kind(policy)
        return self._enforcer().check(policy)

    def apply_policy(self, policy: AnyPolicy | str | Path, rule_group_files: Sequence[str | Path] = (),
                     timeout: float = 60.0, home_net: str | None = None) -> PolicyApplied:
        """Validates a policy and makes the running firewall enforce it, without restarting any container.

        Rules and variables are reloaded in the running engine; engine options (stream exception policy,
        TCP idle timeout) restart the engine inside its node. On any error the previous policy keeps running.
        HOME_NET: `home_net` if given (it is then kept for later applies), else the one this Lab was given, else
        the running lab's `up --home-net`, else the policy's own; a kept override is named in the notes."""
        if isinstance(policy, (str, Path)):
            policy = load_any_policy(policy, list(rule_group_files))
        self._require_up()
        self._same_kind(policy)
        blocks = _home_net(home_net) if home_net else self._home_net_kept()
        applied = self._enforcer().apply(policy.with_home_net(blocks) if blocks else policy, timeout)
        if home_net:
            self.state.write(home_net_override=",".join(blocks or ()), home_net_from="policy apply --home-net")
            return replace(applied, notes=(*applied.notes, f"HOME_NET {applied.home_net} (from policy apply "
                                           "--home-net): kept for later policy applies"))
        if blocks:
            origin = ("given to this Lab" if self.home_net_override else
                      f"from {self.state.read().home_net_from or 'up --home-net'}")
            return replace(applied, notes=(*applied.notes, f"HOME_NET {applied.home_net} ({origin}), not the "
                                           "policy's own: `policy apply --home-net CIDRS` sets another"))
        return applied

    def running_policy(self) -> dict[str, Any]:
        """The policy the running firewall enforces: its summary and its Suricata rules."""
        self._require_up()
        saved = self.state.read()

        def read(name: str) -> str:
            path = self.state.rules_dir / name
            return path.read_text() if path.exists() else ""
        return {**saved.policy, "home_net": saved.home_net, "suricata_rules": read("lab.rules"),
                "firewall_rules": read("firewall.rules"), "stateless_rules": read("stateless.rules")}

    # ------------------------------------------------------- firewall engine
    def stop_firewall_engine(self, node: str | None = None) -> dict[str, str]:
        """Kills the engine (the node stays up) in one endpoint or all: it then fails closed, as AWS's. Returns
        every endpoint's engine state afterwards (the other AZs' endpoints may still pass traffic)."""
        self._require_up()
        self.engines.stop(node)
        return self.engines.status()

    def restart_firewall_engine(self, timeout: float = 30.0, node: str | None = None) -> None:
        """Starts the engine again in one endpoint or all, and waits until it inspects traffic."""
        self._require_up()
        self.engines.start(node, timeout)

    # -------------------------------------------------------------- status
    def status(self) -> Status:
        saved = self.state.read()
        found = self.docker.containers(self.name, with_pids=True)  # one listing for the nodes and the engines
        nodes = self.deployment.health(self.topology, found)
        down = [n for n, state in nodes.items() if state != "running"] if saved.topology else []
        return Status(self.name, saved.topology, saved.topology_file, saved.phase, nodes,
                      self.engines.status(found), str(self.state_dir), [str(p) for p in self.eve.paths],
                      str(self.alert_log.path), str(self.flow_log.path), saved.home_net, list(saved.domains),
                      saved.policy, self.vpc.firewall_name,
                      {e.name: e.availability_zone for e in self.vpc.endpoints}, saved.flow_bypass,
                      saved.flow_bypass and not self.engines.fragments_reach_the_engine(),
                      log_max_size=saved.log_max_size, log_keep=saved.log_keep, degraded=bool(down), down_nodes=down)

    def metrics(self) -> list[Metric]:
        """The firewall's counters under AWS's CloudWatch names and dimensions, per endpoint (lab/metrics.py).
        Suricata merges its counters every second: a packet shows in them within a second."""
        self._require_up()
        zones = {e.name: e.availability_zone for e in self.vpc.endpoints}
        out: list[Metric] = []
        for name, (listing, stateful) in self.engines.counters().items():
            out += endpoint_metrics(self.vpc.firewall_name, zones[name], parse_stateless_counters(listing), stateful,
                                    self.policy_kind)
        return out

    def _require_up(self) -> None:
        if self.topology_name is None:
            raise StateError(f"lab {self.name!r} is not up", f"start it with `nfwlab --name {self.name} up`")

    # --------------------------------------------------------------- nodes
    def _container(self, node: str) -> Any:
        """A node's running container (one container listing)."""
        self._require_up()
        c = self.docker.containers(self.name).get(node)
        if c is None and node not in services(self.vpc):
            raise ConfigError(f"no node named {node!r}", f"nodes: {', '.join(services(self.vpc))}")
        if c is None or not c.running:
            raise NodeError(f"node {node} is not running", f"bring it back: `nfwlab --name {self.name} repair`")
        return c

    def _pid(self, node: str) -> int:
        return int(self.docker.pid(self._container(node).id))

    def exec(self, node: str, argv: list[str]) -> tuple[int, str, str]:
        """Runs argv in a node; returns exit code, stdout, stderr."""
        if not argv:
            raise ConfigError("no command given", "write the command after `--`")
        return self.docker.exec_in(self._container(node).id, argv)

    def fetch(self, node: str, url: str, timeout: float = 5.0, local_port: int | None = None) -> FetchResult:
        """Makes `node` request `url` with curl (certificates are not checked), from `local_port` if given."""
        started = time.monotonic()
        code, out, err = self.exec(node, _curl(url, timeout, local_port, "-w", "%{http_code}"))
        took = time.monotonic() - started
        status = int(out) if out.strip().isdigit() and int(out) > 0 else None
        return FetchResult(node, url, status, code, err.strip().removeprefix("curl: "), took)

    def fetch_for_alert(self, node: str, url: str, criteria: dict[str, Any], local_port: int | None = None,
                        timeout: float = 10.0, aws: bool = False) -> Record:
        """Makes `node` request `url` in the background and returns the first alert matching `criteria` that
        the firewall writes after the request started: a blocked request is decided at once by the firewall's
        own record, not by the client's timeout. WaitTimeout (with the alerts seen) if none comes.

        The request itself is left to end on its own (curl --max-time `timeout`)."""
        mark = self.log_mark()
        self.start_fetch(node, url, timeout, local_port)
        return self.wait_for_alert(criteria, since=mark, timeout=timeout, aws=aws)

    def start_fetch(self, node: str, url: str, timeout: float = 5.0, local_port: int | None = None) -> None:
        """Makes `node` request `url` in the background (curl, certificates not checked) and returns at once:
        for requests whose outcome the firewall's logs tell."""
        self.docker.exec_detached(self._container(node).id, _curl(url, timeout, local_port))

    def interfaces(self, node: str) -> list[dict[str, Any]]:
        """Interfaces of a node with their kind and addresses (for isolation checks; sends nothing)."""
        return self.kernel.interfaces(self.kernel.netns_path(self._pid(node)))

    def route_get(self, node: str, dst: str) -> dict[str, Any]:
        """How a node would route a packet to `dst` (`ip route get`: sends nothing)."""
        return self.kernel.route_get(self.kernel.netns_path(self._pid(node)), IPv4Address(dst))

    # ---------------------------------------------------------------- logs
    def log_mark(self) -> LogMark:
        """Positions in the logs now: pass it as `since` to see only later records."""
        return self.logs.mark()

    def alerts(self, since: LogMark | int | None = None, aws: bool = False) -> list[Record]:
        """Alerts: Suricata's EVE records, or (aws=True) the ALERT log's records in AWS's envelope."""
        return self.logs.alerts(since, aws)

    def flows(self, since: LogMark | int | None = None, aws: bool = True) -> list[Record]:
        """The FLOW log's records (EVE netflow, one per direction), in AWS's envelope unless aws=False."""
        return self.logs.flows(since, aws)

    def follow_alerts(self, since: LogMark | int | None = None, aws: bool = False) -> Iterator[Record]:
        return self.logs.follow_alerts(since, aws)

    def wait_for_alert(self, criteria: dict[str, Any], since: LogMark | int | None = None, timeout: float = 10.0,
                       count: int = 1, aws: bool = False) -> Record:
        """Waits for an alert whose dotted paths match `criteria`; returns the first.

        aws=True reads the ALERT log: paths then start at the envelope ("event.alert.signature")."""
        return self.logs.wait_for_alert(criteria, since, timeout, count, aws)

    def wait_for_drop(self, criteria: dict[str, Any], since: LogMark | int | None = None,
                      timeout: float = 10.0) -> Record:
        """Waits for the firewall's record of a dropped flow (Suricata's EVE `drop` record of the flow's first
        dropped packet, in eve.json): it decides a drop that raised no alert, such as a silent default action."""
        return self.logs.wait_for_drop(criteria, since, timeout)

    def wait_for_flows(self, criteria: dict[str, Any], since: LogMark | int | None = None, timeout: float = 15.0,
                       count: int = 1, aws: bool = True) -> list[Record]:
        """Waits for FLOW log records (netflow) matching `criteria`; returns them (AWS envelope unless aws=False).

        Suricata writes a flow's records when the flow ends (a closed TCP flow: within a few seconds)."""
        return self.logs.wait_for_flows(criteria, since, timeout, count, aws)

    # ----------------------------------------------------------------- who
    def who(self, alert: Record | int | None = None, wait: float = 3.0) -> tuple[Record, Answer]:
        """The server behind an alert: a record, a flow id, or (None) the latest alert of the ALERT log.

        Waits up to `wait` seconds for the NAT gateway's translation to reach its log."""
        if alert is None or isinstance(alert, int):
            self._require_up()  # a lab that is down has no logs (`down` archives them)
            alerts = self.alerts(aws=True)
            if isinstance(alert, int):
                alerts = [a for a in alerts if a["event"].get("flow_id") == alert]
            if not alerts:
                raise LabError(f"flow {alert} has no alert in the ALERT log" if isinstance(alert, int) else
                               "the ALERT log has no alert yet", "see `nfwlab alerts`: each line gives its "
                               "flow_id")
            alert = alerts[-1]
        record = alert
        answers: list[Answer] = []

        def named() -> bool:
            answers.append(who_did_it(self.vpc, record, self.nat_log.records()))
            return answers[-1].named
        try:
            Wait("the NAT gateway's translation of the alert's flow", wait).until(named)
        except WaitTimeout:
            pass  # the last answer says why no server is named
        return record, answers[-1]

    def explain(self, flow_id: int | None = None) -> Explanation:
        """What each engine did to a flow (default: the latest alert's), hook by hook, from the firewall's own
        records: see lab/explain.py."""
        self._require_up()
        records, logged = self.eve.records(), self.alerts(aws=True)
        if flow_id is None:
            latest = logged or [{"event": r} for r in records if r.get("event_type") == "alert"]
            if not latest:
                raise LabError("the firewall has logged no alert yet",
                                 f"give a FLOW_ID (see `nfwlab --name {self.name} flows`)")
            flow_id = int(latest[-1]["event"]["flow_id"])
        saved = self.state.read().policy
        rules_dir = self.state.rules_dir
        try:
            flat = variables_of((rules_dir / "policy.yaml").read_text())
        except OSError:
            flat = {}
        fw_rules = rules_dir / "firewall.rules"
        endpoint = next((f"{a['firewall_name']} ({a['availability_zone']})" for a in logged
                         if a["event"].get("flow_id") == flow_id), "")
        try:
            return explain_flow(flow_id, records, saved.get("kind", "classic"),
                                saved.get("firewall_default_action", "DROP"),
                                fw_rules.read_text() if fw_rules.exists() else "", flat, endpoint)
        except LookupError:
            raise LabError(f"no record of flow {flow_id} in the firewall's logs",
                             f"see `nfwlab --name {self.name} alerts` or `flows` for flow ids") from None

    # --------------------------------------------------------------- trace
    def _home_net_blocks(self) -> list[IPv4Network]:
        blocks = self.state.read().home_net or self.render().home_net
        return [IPv4Network(b) for b in blocks.split(",")]

    def _domains_for(self, chosen: Topology) -> list[str]:
        """The names the internet serves in `chosen`: given, else the running lab's (`up --domains`), else its."""
        running = self.state.read().domains if self.topology_name else ()
        return self.domains_given or list(running) or list(chosen.vpc.internet.domains)

    def policy_rules(self, policy: str | Path | None = None, topology: Topology | None = None) -> PolicyRules:
        """The rules `trace` judges a flow by, and where they come from: `policy` (a shipped policy's name or a
        file, with the running lab's `up --home-net`), else the running lab's (the files its firewall reads),
        else this Lab's policy (the default one unless given) while the lab is down."""
        cidr = str((topology or self.topology).vpc.cidr)
        if policy is None and self.topology_name:
            return running_rules(self.state.rules_dir, self.state.read().policy, f"the running lab {self.name}'s")
        blocks = self._home_net_kept()
        if policy is not None:
            chosen = load_any_policy(policy_path(policy))
            chosen = chosen.with_home_net(blocks) if blocks else chosen
            origin = f"--policy {policy}"
        else:
            chosen = self.policy
            default = self._policy_source[0] == DEFAULT_POLICY and not self._policy_source[2]
            origin = (f"{'the default policy ' if default else ''}{Path(self._policy_source[0]).name}: lab "
                      f"{self.name} is down")
        return rendered_rules(chosen, render_any(chosen, cidr), origin)

    def trace(self, source: str, dest: str, port: int = 443, topology: str | Path | None = None,
              policy: str | Path | None = None) -> Trace:
        """The path of a flow from the route tables (no packet sent): the running topology's, or `topology`'s
        (any topology file), with the policy's verdict at the firewall (`policy_rules` says which policy)."""
        chosen = self._topology_or_running(topology)
        rules = self.policy_rules(policy, chosen)
        try:
            home_net = [IPv4Network(b) for b in rules.home_net.split(",")]
        except ValueError:
            home_net = self._home_net_blocks()
        return judge(self._trace(chosen, source, dest, port, home_net, self._domains_for(chosen)), rules, self.name)

    @staticmethod
    def _trace(chosen: Topology, source: str, dest: str, port: int, home_net: list[IPv4Network],
               domains: list[str] | None = None) -> Trace:
        try:
            return trace_flow(chosen.vpc, chosen.route_tables, source, dest, port, home_net, domains)
        except ValueError as e:
            vpc = chosen.vpc  # the example names a server and a domain of the topology traced
            server = vpc.servers[0].name if vpc.servers else "SERVER"
            domain = next(iter(domains or vpc.internet.domains), str(vpc.internet.web_server))
            raise ConfigError(str(e), "`nfwlab trace SERVER DESTINATION[:PORT]`, e.g. "
                              f"`nfwlab trace {server} {domain}:443`") from None

    def check(self, topology: str | Path | None = None, port: int = 443) -> list[Trace]:
        """A trace from every server to the internet's web server; look at each one's `warnings`."""
        chosen, home_net = self._topology_or_running(topology), self._home_net_blocks()
        web = str(chosen.vpc.internet.web_server)
        return [self._trace(chosen, s.name, web, port, home_net) for s in chosen.vpc.servers]

    def trace_live(self, source: str, dest: str, port: int = 443, timeout: float = 15.0,
                   local_port: int | None = None) -> LiveTrace:
        """Sends one real request and compares what the firewall logged with the static trace: the first
        ALERT or FLOW log record of the flow, or a stream anomaly an endpoint logged (asymmetric routing).
        The request's source port (`local_port`, else one no request of the last minutes used, as the case
        runner's) tells its records from any other request's."""
        static = self.trace(source, dest, port)
        self._require_up()
        if local_port is None:
            (local_port,) = PortLedger(self.state_dir / "probe-ports.json").take(1)
        return live_trace(static, self.vpc, self.logs,
                          lambda node, url, sport: self.fetch(node, url, timeout=3, local_port=sport), local_port,
                          timeout)

    def diagram(self, topology: str | Path | None = None, server: str | None = None, dest: str | None = None,
                port: int = 443) -> Any:
        """A Graphviz diagram of the topology (running, or `topology`) with a server's request path highlighted."""
        chosen = self._topology_or_running(topology)
        try:
            return draw_diagram(chosen.vpc, chosen.route_tables, server, dest, port, self._domains_for(chosen),
                                self._home_net_blocks())
        except ValueError as e:
            raise ConfigError(str(e), "name a server of the topology and a destination it can reach") from None


def build_images(base_image: str | None = None, docker: Any = docker_module) -> str:
    """Builds the lab's images (and a Debian base with debootstrap when no registry is reachable)."""
    docker.client()
    env = {"NFWLAB_BASE_IMAGE": base_image} if base_image else {}
    script = HOME / "scripts" / "build-base-image.sh"
    say("the Debian base image (pulled, or made with debootstrap when no registry answers)")
    base = docker.run_script(script, env)
    say("the Debian forky base image (Suricata 8)")
    ng_base = docker.run_script(script, {}, ["forky"])  # Suricata 8, for Next Generation policies
    env_file = state_root() / ".build.env"
    env_file.parent.mkdir(parents=True, exist_ok=True)
    # What compose/docker-compose.yml (image builds only) reads.
    env_file.write_text(docker.compose_env({"COMPOSE_PROJECT_NAME": "nfwlab-build", "NFWLAB_BASE_IMAGE": base,
                                            "NFWLAB_NG_BASE_IMAGE": ng_base, "NFWLAB_IMAGE_TAG": IMAGE_TAG}))
    compose = docker.ComposeProject(COMPOSE_DIR, env_file)
    for image in ("node-image", "firewall-image", "firewall-ng-image"):
        say(f"building {image}")
        compose.build([image])
    return base
