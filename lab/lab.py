"""Lab: the public API. Brings a lab up and down, switches designs, runs
requests from nodes and reads the firewall's alerts.

    from lab import Lab
    lab = Lab("demo")
    lab.up(design="nat-first")
    mark = lab.log_mark()
    lab.fetch("server-a", "https://blocked.example/")
    alert = lab.wait_for_alert({"tls.sni": "blocked.example"}, since=mark)
    lab.switch("firewall-first")
    lab.apply_policy("policies/home-net-trap.json")
    lab.down()
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from . import docker as dk
from . import kernel, nodes
from .errors import ConfigError, EnvironmentProblem, LabError, NodeError, StateError, WaitTimeout
from .logs import EveLog, LogMark, Record, aws_envelope, event_type, matches
from .compose import compose_config, write_compose_file
from .diagram import diagram as draw_diagram
from .model import Design, Topology, Vpc, load_topology, validate_domain
from .policy import Policy, Rendered, load_policy, render, rules_file_policy
from .routing import diff_route_tables, format_route_tables, kernel_routes, route_table_json
from .trace import Trace
from .who import Answer
from .who import who as who_did_it
from .trace import trace as trace_flow

HOME = Path(os.environ.get("NFWLAB_HOME", Path(__file__).resolve().parent.parent))
TOPOLOGIES_DIR = HOME / "topologies"
COMPOSE_DIR = HOME / "compose"
DEFAULT_POLICY = HOME / "policies" / "deny-domains.json"
POLICY_FILES = ("lab.rules", "policy.yaml", "engine.json")  # what a policy is made of, in the rules directory
FW_RULES_DIR = "/etc/nfwlab/rules"  # the rules directory, as the firewall node sees it
DEFAULT_DESIGN = "nat-first"  # a topology in topologies/
WORKERS = 4  # links and node set-up run in parallel, this many at once
IMAGE_TAG = "1"
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")


def _home_net(value: str) -> str:
    """HOME_NET as a comma-separated list of CIDR blocks."""
    blocks = [b.strip() for b in value.split(",") if b.strip()]
    try:
        if not blocks:
            raise ValueError("no block given")
        return ",".join(str(IPv4Network(b)) for b in blocks)
    except ValueError as e:
        raise ConfigError(f"HOME_NET {value!r} is not a list of CIDR blocks ({e})",
                          "write it like 10.0.0.0/16 or 10.0.128.0/20,10.0.0.0/20") from None


def state_root() -> Path:
    return Path(os.environ.get("NFWLAB_STATE_ROOT", "/var/lib/nfwlab"))


def design_names() -> list[str]:
    """The topologies shipped in topologies/ (each a VPC with its route tables)."""
    return sorted(p.stem for p in TOPOLOGIES_DIR.glob("*.yaml"))


def topology_path(name_or_path: str | Path) -> Path:
    """A topology's file: a name in topologies/ or a path."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or os.sep in text:
        return Path(text)
    path = TOPOLOGIES_DIR / f"{text}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown design {text!r}",
                          f"use one of: {', '.join(design_names())} (or the path of a topology file)")
    return path


def _parallel(calls: list, workers: int = WORKERS) -> None:
    """Runs the calls on a few threads; the first error is raised once all are done."""
    if len(calls) <= 1:
        for c in calls:
            c()
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(c) for c in calls]:
            future.result()


@dataclass(frozen=True)
class FetchResult:
    """What a node got for a URL: the HTTP status, or curl's error."""

    node: str
    url: str
    status: int | None  # None when no HTTP response came back
    curl_exit: int
    error: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 400

    def describe(self) -> str:
        if self.status is not None:
            return f"{self.node}: {self.url} -> HTTP {self.status} ({self.seconds:.2f}s)"
        return f"{self.node}: {self.url} -> failed: {self.error or f'curl exit {self.curl_exit}'} ({self.seconds:.2f}s)"


class Lab:
    """One lab: a name, a topology (a VPC and its route tables), a firewall policy and a state directory."""

    def __init__(self, name: str = "default", topology: str | Path | None = None,
                 policy_file: str | Path = DEFAULT_POLICY, domains: list[str] | None = None,
                 home_net: str | None = None, state_dir: str | Path | None = None,
                 rules_file: str | Path | None = None, rule_group_files: list[str | Path] = ()):
        """`policy_file`: a firewall policy or a rule group (AWS JSON or YAML); `rule_group_files`: rule groups
        the policy references; `rules_file`: a Suricata rules file run as-is instead; `home_net`: overrides
        the policy's HOME_NET (default: the VPC CIDR, as AWS). `topology`: a name in topologies/ or a file;
        a lab that is up keeps the topology it runs."""
        if not NAME_RE.match(name):
            raise ConfigError(f"lab name {name!r} is not valid",
                              "use 1-20 characters: lower-case letters, digits and '-', starting with a letter")
        self.name = name
        self.state_dir = Path(state_dir) if state_dir else state_root() / name
        running = self.state_dir / "topology.yaml"
        self._set_topology(load_topology(running) if running.exists() and topology is None
                           else self.resolve_topology(topology or DEFAULT_DESIGN))
        self.domains_given = [validate_domain(d, "--domains") for d in domains] if domains else None
        self.rules_file = Path(rules_file) if rules_file else None
        self.home_net_override = _home_net(home_net).split(",") if home_net else None
        self.policy: Policy = self._policy(rules_file_policy(self.rules_file) if self.rules_file
                                           else load_policy(policy_file, list(rule_group_files)))
        self.alert_log = EveLog(self.state_dir / "logs" / "alert.log")
        self.flow_log = EveLog(self.state_dir / "logs" / "flow.log")
        self.nat_log = EveLog(self.state_dir / "logs" / "nat-translations.log")

    def _set_topology(self, topology: Topology) -> None:
        self.topology = topology
        self.vpc: Vpc = topology.vpc
        self.eve = EveLog(*(self.state_dir / "logs" / e.name / "eve.json" for e in self.vpc.endpoints))

    @property
    def domains(self) -> list[str]:
        """The names the lab's internet serves: given, or the topology's."""
        return self.domains_given or list(self.vpc.internet.domains)

    @staticmethod
    def resolve_topology(name_or_path: str | Path) -> Topology:
        return load_topology(topology_path(name_or_path))

    def _policy(self, policy: Policy) -> Policy:
        return policy.with_home_net(self.home_net_override) if self.home_net_override else policy

    def render(self, policy: Policy | None = None) -> Rendered:
        """What the firewall runs for `policy` (default: the lab's): rules, variables, engine options."""
        return render(policy or self.policy, str(self.vpc.cidr))

    @property
    def home_net(self) -> str:
        return self.render().home_net

    def rules_text(self) -> str:
        """The Suricata rules the firewall runs (the running lab's, else the configured policy's)."""
        live = self.state_dir / "rules" / "lab.rules"
        return live.read_text() if self.design and live.exists() else self.render().rules

    # ------------------------------------------------------------------ state
    @property
    def _state_file(self) -> Path:
        return self.state_dir / "lab.json"

    def _read_state(self) -> dict:
        try:
            return json.loads(self._state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _write_state(self, **changes: Any) -> None:
        state = self._read_state() | changes
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self._state_file)

    @property
    def design(self) -> str | None:
        """The design the lab is running, or None when it is down."""
        return self._read_state().get("design")

    def load_design(self, name_or_path: str) -> Design:
        """The route tables of a topology that differs from this lab's only in its route tables."""
        return self._compatible(self.resolve_topology(name_or_path)).design

    def _compatible(self, other: Topology) -> Topology:
        if other.vpc != self.vpc:
            mine, theirs = self.vpc, other.vpc
            differs = next((f for f in ("id", "cidr", "region", "subnets", "servers", "nat_gateways", "endpoints",
                                        "internet_gateway", "internet") if getattr(mine, f) != getattr(theirs, f)),
                           "the VPC")
            raise ConfigError(f"{other.design.source}: its {differs} differ from the running lab's "
                              f"({mine.source}); only route tables can change on a running lab",
                              f"take the lab down and up with it: `nfwlab down --name {self.name}; "
                              f"nfwlab up --name {self.name} --topology {other.design.source}`")
        return other

    # --------------------------------------------------------------- up/down
    def _preflight(self) -> None:
        if os.geteuid() != 0:
            raise EnvironmentProblem("the lab needs root: it wires network namespaces over netlink",
                                     "run it as root, or with sudo")
        dk.client()
        for image in (f"nfwlab/node:{IMAGE_TAG}", f"nfwlab/firewall:{IMAGE_TAG}"):
            if not dk.image_exists(image):
                raise EnvironmentProblem(f"image {image} is missing", "build the images: `make images` (or `nfwlab build`)")

    def _compose(self) -> dk.ComposeProject:
        return dk.ComposeProject(self.state_dir, self.state_dir / "compose.env", "compose.yaml")

    @staticmethod
    def _write_policy(directory: Path, rendered: Rendered) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "lab.rules").write_text(rendered.rules)
        (directory / "policy.yaml").write_text(rendered.variables)
        (directory / "engine.json").write_text(json.dumps(rendered.engine, indent=1))
        # Datasets are named by their content, so files of earlier policies can stay (a rollback uses them).
        for name, content in rendered.datasets.items():
            (directory / "datasets").mkdir(exist_ok=True)
            (directory / "datasets" / name).write_text(content)

    def _write_files(self, rendered: Rendered) -> None:
        for sub in ("logs", "rules", "dns", *(f"logs/{e.name}" for e in self.vpc.endpoints)):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        self._write_policy(self.state_dir / "rules", rendered)
        (self.state_dir / "dns" / "hosts").write_text(
            "".join(f"{self.vpc.internet.web_server} {d}\n" for d in self.domains))
        (self.state_dir / "dns" / "resolv.conf").write_text(f"nameserver {self.vpc.dns_ip}\noptions timeout:1 attempts:2\n")
        write_compose_file(self.state_dir / "compose.yaml",
                           compose_config(self.vpc, self.name, self.state_dir, HOME, self.domains, IMAGE_TAG))
        (self.state_dir / "compose.env").write_text(dk.compose_env({"COMPOSE_PROJECT_NAME": f"nfwlab-{self.name}"}))

    def up(self, design: str | None = None, firewall_timeout: float = 60.0) -> float:
        """Starts the lab with a topology (a name in topologies/ or a file; default: the lab's);
        returns the seconds it took.

        The whole topology and policy are validated before anything is made; on any later failure
        everything made so far is removed before the error is raised."""
        started = time.monotonic()
        topology = self.resolve_topology(design) if design else self.topology
        rendered = render(self.policy, str(topology.vpc.cidr))
        self._preflight()
        if dk.containers(self.name):
            raise StateError(f"lab {self.name!r} already exists on this host",
                             f"use it, take it down with `nfwlab down --name {self.name}`, or pick another --name")
        self._set_topology(topology)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_state(name=self.name, design=None, phase="starting")
        try:
            # First, so that `down` after a crash knows what to remove.
            shutil.copyfile(topology.design.source, self.state_dir / "topology.yaml")
            self._write_files(rendered)
            try:
                self._compose().up()
            except NodeError:
                # A firewall that died says why, better than compose.
                self._firewalls_not_started([e.name for e in self.vpc.endpoints])
                raise
            pids = self._pids()
            self._wire(pids, topology.design)
            self._wait_for_firewall(firewall_timeout)
        except BaseException:
            self.down()  # nothing half-made stays behind
            raise
        self._write_state(design=topology.name, design_file=topology.design.source, phase="up",
                          home_net=rendered.home_net, domains=self.domains, policy=self.policy.summary())
        return time.monotonic() - started

    def _pids(self) -> dict[str, int]:
        found = dk.containers(self.name)
        pids = {}
        for service in nodes.services(self.vpc):
            c = found.get(service)
            if c is None or not c.running:
                raise NodeError(f"node {service} is not running", "see `docker compose logs`; then `nfwlab down`")
            pids[service] = c.pid
        return pids

    def _wire(self, pids: dict[str, int], design: Design) -> None:
        roles = nodes.roles(self.vpc)
        by_service = {r.service: r for r in roles}
        # Fail closed before a firewall has a link: nothing crosses it unqueued.
        for e in self.vpc.endpoints:
            by_service[e.name].fail_closed(pids[e.name])
        by_service[nodes.ROUTER].prepare(pids[nodes.ROUTER])
        pairs = [nodes.endpoints(link, pids) for link in nodes.all_links(self.vpc)]
        kernel.create_links(pairs)
        by_netns: dict[int, list[kernel.Endpoint]] = {}
        for end in (e for pair in pairs for e in pair):
            by_netns.setdefault(end.pid, []).append(end)
        _parallel([lambda ends=ends: kernel.configure_ends(ends) for ends in by_netns.values()])
        by_service[nodes.ROUTER].configure(pids)
        _parallel([lambda role=role: role.configure(pids) for role in roles if role.service != nodes.ROUTER])
        kernel.replace_routes(kernel.netns_path(pids[nodes.ROUTER]), kernel_routes(self.vpc, design))

    def _check_firewall_started(self, node: str, c: dk.Container | None) -> bool:
        """True once the node's Suricata (container `c`) reported "Engine started"; raises with its errors
        if it stopped."""
        log = dk.logs(c.id, tail=60) if c else ""
        if "Engine started" in log:
            return True
        if c is None or not c.running:
            errors = self.render().explain(log).replace("\n", "\n    ")
            raise NodeError(f"the firewall {node} (Suricata) refused to start:\n    {errors}",
                            f"fix the policy {self.policy.source}")
        return False

    def _firewalls_not_started(self, names: list[str]) -> list[str]:
        """Which of these endpoints' engines have not started yet; one container listing for all."""
        running = dk.containers(self.name)
        return [n for n in names if not self._check_firewall_started(n, running.get(n))]

    def _wait_for_firewall(self, timeout: float) -> None:
        """Waits for every endpoint's "Engine started"; a firewall that exits is reported with its errors."""
        deadline = time.monotonic() + timeout
        waiting = [e.name for e in self.vpc.endpoints]
        while waiting := self._firewalls_not_started(waiting):
            if time.monotonic() > deadline:
                running = dk.containers(self.name)
                logs = {n: dk.logs(running[n].id, tail=30) for n in waiting if n in running}
                raise WaitTimeout(f"Suricata did not report 'Engine started' within {timeout:g}s; its log:\n"
                                  + "\n".join(f"[{k}]\n{v}" for k, v in logs.items()),
                                  "check the firewall with `nfwlab exec firewall -- cat /var/log/suricata/suricata.log`")
            time.sleep(0.1)

    def down(self) -> dict[str, Any]:
        """Removes everything the lab made: containers, links, state. Works after a crash."""
        report: dict[str, Any] = {"containers": len(dk.containers(self.name)), "state_dir": None}
        if (self.state_dir / "compose.yaml").exists() and (self.state_dir / "compose.env").exists():
            try:
                self._compose().down()
            except LabError:
                pass  # the label sweep below removes what compose could not
        dk.remove_lab_containers(self.name)
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
            report["state_dir"] = str(self.state_dir)
        return report

    # ---------------------------------------------------------------- design
    def switch(self, design: str) -> float:
        """Switches the running lab to another design: routes only, no restarts. Returns seconds."""
        topology = self._compatible(self.resolve_topology(design))
        pids = self._require_up()
        started = time.perf_counter()
        kernel.replace_routes(kernel.netns_path(pids[nodes.ROUTER]), kernel_routes(self.vpc, topology.design))
        took = time.perf_counter() - started
        shutil.copyfile(topology.design.source, self.state_dir / "topology.yaml")
        self.topology = topology
        self._write_state(design=topology.name, design_file=topology.design.source)
        return took

    @contextmanager
    def running(self, design: str | None = None) -> Iterator[Lab]:
        """The lab up for a `with` block and removed at its end, also when the block fails. Whatever an
        earlier, interrupted run left under this name is removed first."""
        self.down()
        self.up(design)
        try:
            yield self
        finally:
            self.down()

    # ---------------------------------------------------------------- policy
    @contextmanager
    def _policy_lock(self) -> Iterator[None]:
        """One policy change at a time per lab."""
        (self.state_dir / "rules").mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "rules" / ".lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def check_policy(self, policy: Policy) -> Rendered:
        """Our own checks, then Suricata's test mode (-T) in the running firewall node on the generated rules.

        Raises ConfigError naming the rule group and rule Suricata refused; changes nothing."""
        rendered = self.render(policy)
        fw = self._container(self.vpc.firewall.name)
        candidate = self.state_dir / "rules" / "candidate"
        self._write_policy(candidate, rendered)
        try:
            sets = [x for option in rendered.engine["set"] for x in ("--set", option)]
            argv = ["suricata", "-T", "-q", "0", "-c", "/etc/nfwlab/suricata/suricata.yaml", "--init-errors-fatal",
                    "--include", f"{FW_RULES_DIR}/candidate/policy.yaml", "-S", f"{FW_RULES_DIR}/candidate/lab.rules",
                    "-l", "/tmp", *sets]
            code, out, err = dk.exec_in(fw.id, argv)
        finally:
            shutil.rmtree(candidate, ignore_errors=True)
        if code != 0:
            raise ConfigError(f"Suricata refused the policy {policy.name} ({policy.source}):\n    "
                              + rendered.explain(out + err).replace("\n", "\n    "),
                              "fix the rule named above; the previous policy is still running unchanged")
        return rendered

    def apply_policy(self, policy: Policy | str | Path, rule_group_files: list[str | Path] = (),
                     timeout: float = 60.0) -> dict[str, Any]:
        """Validates a policy and makes the running firewall enforce it, without restarting any container.

        Rules and variables are reloaded in the running engine; engine options (stream exception policy,
        TCP idle timeout) restart the engine inside its node. On any error the previous policy keeps running."""
        if not isinstance(policy, Policy):
            policy = load_policy(policy, list(rule_group_files))
        policy = self._policy(policy)
        self._require_up()
        started = time.monotonic()
        with self._policy_lock():
            rendered = self.check_policy(policy)
            checked = time.monotonic()
            live = self.state_dir / "rules"
            previous = {name: (live / name).read_text() for name in POLICY_FILES}
            restart = json.loads(previous["engine.json"]) != rendered.engine
            self._write_policy(live, rendered)
            try:
                if restart:
                    self.restart_firewall_engine(timeout)
                else:
                    self._reload_rules(timeout)
            except LabError:
                for name, text in previous.items():
                    (live / name).write_text(text)
                self.restart_firewall_engine(timeout)
                raise
            self._write_state(policy=policy.summary(), home_net=rendered.home_net)
        done = time.monotonic()
        return {"policy": policy.name, "source": policy.source, "rules": rendered.rules.count("\n") -
                sum(1 for o in rendered.origins if o is None), "home_net": rendered.home_net,
                "engine_restarted": restart, "check_seconds": round(checked - started, 3),
                "apply_seconds": round(done - checked, 3), "seconds": round(done - started, 3),
                "warnings": list(rendered.warnings), "notes": list(rendered.notes)}

    def _reload_rules(self, timeout: float) -> None:
        """Suricata's own rule reload (rules and rule variables) in every endpoint, waited for to the end."""
        def reload(name: str) -> None:
            fw = self._container(name)
            code, out, err = dk.exec_in(fw.id, ["timeout", f"{timeout:g}", "suricatasc", "-c", "reload-rules",
                                                "/var/run/suricata/suricata-command.socket"])
            if code != 0 or '"OK"' not in out:
                raise NodeError(f"the firewall engine of {name} did not reload its rules: "
                                f"{(out + err).strip()[-500:]}",
                                f"see `nfwlab exec {name} -- tail /var/log/suricata/suricata.log`")
        _parallel([lambda n=n: reload(n) for n in self._endpoints(None)])

    def running_policy(self) -> dict[str, Any]:
        """The policy the running firewall enforces: its summary and its Suricata rules."""
        self._require_up()
        state = self._read_state()
        return {**(state.get("policy") or {}), "home_net": state.get("home_net"),
                "suricata_rules": (self.state_dir / "rules" / "lab.rules").read_text()}

    def _require_up(self) -> dict[str, int]:
        if self.design is None:
            raise StateError(f"lab {self.name!r} is not up", f"start it with `nfwlab up --name {self.name}`")
        return self._pids()

    def route_tables(self, design: str | None = None, as_json: bool = False) -> str | dict:
        chosen = self.load_design(design) if design else self.topology.design
        return route_table_json(self.vpc, chosen) if as_json else format_route_tables(self.vpc, chosen)

    def route_table_diff(self, other: str, design: str | None = None) -> str:
        """What changes in the route tables from `design` (default: the running one) to `other`."""
        before = self.load_design(design) if design else self.topology.design
        return diff_route_tables(self.vpc, before, self.load_design(other))

    # ---------------------------------------------------------------- who
    def who(self, alert: Record | int | None = None, wait: float = 3.0) -> tuple[Record, Answer]:
        """The server behind an alert: a record, a flow id, or (None) the latest alert of the ALERT log.

        Waits up to `wait` seconds for the NAT gateway's translation to reach its log."""
        if alert is None or isinstance(alert, int):
            alerts = self.alerts(aws=True)
            if isinstance(alert, int):
                alerts = [a for a in alerts if a["event"].get("flow_id") == alert]
            if not alerts:
                raise StateError("no such alert in the ALERT log" if isinstance(alert, int) else
                                 "the ALERT log has no alert yet", "see `nfwlab alerts`")
            alert = alerts[-1]
        deadline = time.monotonic() + wait
        while True:
            answer = who_did_it(self.vpc, alert, self.nat_log.records())
            if answer.named or time.monotonic() >= deadline:
                return alert, answer
            time.sleep(0.05)

    # ---------------------------------------------------------------- trace
    def _home_net_blocks(self) -> list[IPv4Network]:
        blocks = self._read_state().get("home_net") or self.render().home_net
        return [IPv4Network(b) for b in blocks.split(",")]

    def trace(self, source: str, dest: str, port: int = 443, design: str | None = None) -> Trace:
        """The path of a flow from the route tables alone (no packet sent): the running topology's,
        or `design`'s (any topology file)."""
        topology = self.resolve_topology(design) if design else self.topology
        try:
            return trace_flow(topology.vpc, topology.design, source, dest, port, self._home_net_blocks())
        except ValueError as e:
            raise ConfigError(str(e), "nfwlab trace SERVER DESTINATION[:PORT], e.g. server-a blocked.example:443") \
                from None

    def check(self, design: str | None = None, port: int = 443) -> list[Trace]:
        """A trace from every server to the internet's web server; look at each one's `warnings`."""
        topology = self.resolve_topology(design) if design else self.topology
        web = str(topology.vpc.internet.web_server)
        return [self.trace(s.name, web, port, design) for s in topology.vpc.servers]

    def trace_live(self, source: str, dest: str, port: int = 443, timeout: float = 15.0) -> dict[str, Any]:
        """Sends one real request and compares what the firewall logged with the static trace.

        The evidence is the first ALERT or FLOW log record of the flow (an allowed flow's FLOW record
        comes when it ends; a blocked flow's alert at once), or a stream anomaly the endpoint logged
        (asymmetric routing)."""
        static = self.trace(source, dest, port)
        self._require_up()
        mark = self.log_mark()
        host = dest if not dest.replace(".", "").isdigit() else str(static.dest_ip)
        scheme = "https" if port == 443 else "http"
        result = self.fetch(static.source, f"{scheme}://{host}:{port}/", timeout=3)
        criteria = {"event.dest_ip": str(static.dest_ip), "event.dest_port": port}
        deadline = time.monotonic() + timeout
        record = None
        # Evidence, first found wins: the ALERT log, the FLOW log, then each endpoint's EVE stream anomalies
        # (a flow seen from one side only: asymmetric routing).
        sources = [(self.alert_log, self._since(mark, "alert"), None, "ALERT log"),
                   (self.flow_log, self._since(mark, "flow"), None, "FLOW log")]
        sources += [(EveLog(path), mark.eve[i], e.availability_zone, "EVE stream anomaly")
                    for i, (e, path) in enumerate(zip(self.vpc.endpoints, self.eve.paths))]
        while record is None and time.monotonic() < deadline:
            for log, since, az, name in sources:
                found = [r for r in log.records(None, since) if matches({"event": r} if az else r, criteria)
                         and (az is None or event_type(r) == "anomaly")]
                if found:
                    event = found[0] if az else found[0]["event"]
                    record = {"source": event["src_ip"], "availability_zone": az or found[0]["availability_zone"],
                              "log": name}
                    break
            else:
                time.sleep(0.1)
        expected = static.request.seen[0] if static.request.seen else None
        live = record
        agrees = (live is None and expected is None) or (
            live is not None and expected is not None and live["source"] == str(expected.src)
            and live["availability_zone"] == expected.availability_zone)
        return {"static": static, "request": result, "firewall_logged": live, "agrees": agrees}

    def diagram(self, design: str | None = None, server: str | None = None, dest: str | None = None,
                port: int = 443) -> Any:
        """A Graphviz diagram of the topology (running, or `design`) with a server's request path highlighted."""
        topology = self.resolve_topology(design) if design else self.topology
        try:
            return draw_diagram(topology.vpc, topology.design, server, dest, port)
        except ValueError as e:
            raise ConfigError(str(e), "name a server of the topology and a destination it can reach") from None

    # ---------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        state = self._read_state()
        found = dk.containers(self.name)
        node_status = {s: (found[s].status if s in found else "missing") for s in nodes.services(self.vpc)}
        engines = {}
        for e in self.vpc.endpoints:
            fw = found.get(e.name)
            engines[e.name] = "down"
            if fw and fw.running:
                code, _, _ = dk.exec_in(fw.id, ["pidof", "suricata"])
                engines[e.name] = "running" if code == 0 else "down (fail closed: nothing crosses the firewall)"
        down = [f"{k}: {v}" for k, v in engines.items() if v != "running"]
        return {"name": self.name, "design": state.get("design"), "phase": state.get("phase", "down"),
                "topology": state.get("design_file"), "nodes": node_status,
                "firewall_engine": "running" if not down else "; ".join(down), "firewall_engines": engines,
                "state_dir": str(self.state_dir), "eve_json": [str(p) for p in self.eve.paths],
                "alert_log": str(self.alert_log.path), "flow_log": str(self.flow_log.path),
                "home_net": state.get("home_net"), "domains": state.get("domains"), "policy": state.get("policy"),
                "firewall_name": self.vpc.firewall_name,
                "availability_zones": {e.name: e.availability_zone for e in self.vpc.endpoints}}

    def _endpoints(self, node: str | None) -> list[str]:
        names = [e.name for e in self.vpc.endpoints]
        if node is not None and node not in names:
            raise ConfigError(f"no firewall endpoint named {node!r}", f"endpoints: {', '.join(names)}")
        return [node] if node else names

    def stop_firewall_engine(self, node: str | None = None) -> None:
        """Kills Suricata (the node stays up) in one endpoint or all: the firewall then fails closed, as AWS's."""
        for name in self._endpoints(node):
            fw = self._container(name)
            code, out, _ = dk.exec_in(fw.id, ["pidof", "suricata"])
            if code == 0:
                dk.exec_in(fw.id, ["kill", "-KILL", *out.split()])
            deadline = time.monotonic() + 10
            while dk.exec_in(fw.id, ["pidof", "suricata"])[0] == 0:
                if time.monotonic() > deadline:
                    raise WaitTimeout(f"the firewall engine of {name} did not stop within 10s", "see `nfwlab status`")
                time.sleep(0.05)

    def restart_firewall_engine(self, timeout: float = 30.0, node: str | None = None) -> None:
        """Starts Suricata again in one endpoint or all, and waits until it inspects traffic."""
        def restart(name: str) -> None:
            fw = self._container(name)
            signalled = time.time()
            dk.signal(fw.id, "SIGHUP")
            deadline = time.monotonic() + timeout
            while "Engine started" not in dk.logs(fw.id, tail=200, since=signalled):
                if time.monotonic() > deadline:
                    raise WaitTimeout(f"the firewall engine of {name} did not start within {timeout:g}s",
                                      f"its log: {dk.logs(fw.id, tail=20)}")
                time.sleep(0.1)
        _parallel([lambda n=n: restart(n) for n in self._endpoints(node)])

    # ---------------------------------------------------------------- nodes
    def _container(self, node: str) -> dk.Container:
        self._require_up()
        c = dk.containers(self.name).get(node)
        if c is None:
            raise ConfigError(f"no node named {node!r}", f"nodes: {', '.join(nodes.services(self.vpc))}")
        return c

    def exec(self, node: str, argv: list[str]) -> tuple[int, str, str]:
        """Runs argv in a node; returns exit code, stdout, stderr."""
        if not argv:
            raise ConfigError("no command given", "write the command after `--`")
        return dk.exec_in(self._container(node).id, argv)

    def fetch(self, node: str, url: str, timeout: float = 5.0, local_port: int | None = None) -> FetchResult:
        """Makes `node` request `url` with curl (certificates are not checked), from `local_port` if given."""
        argv = ["curl", "-sS", "-k", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", f"{timeout:g}", url]
        if local_port:
            argv[1:1] = ["--local-port", str(local_port)]
        started = time.monotonic()
        code, out, err = self.exec(node, argv)
        took = time.monotonic() - started
        status = int(out) if out.strip().isdigit() and int(out) > 0 else None
        return FetchResult(node, url, status, code, err.strip().removeprefix("curl: "), took)

    # ---------------------------------------------------------------- logs
    def log_mark(self) -> LogMark:
        """Positions in the logs now: pass it as `since` to see only later records."""
        return LogMark(self.eve.size(), self.alert_log.size(), self.flow_log.size())

    @staticmethod
    def _since(since: LogMark | int | None, which: str) -> int:
        if since is None:
            return 0
        return getattr(since, which) if isinstance(since, LogMark) else (since if which == "eve" else 0)

    def alerts(self, since: LogMark | int | None = None, aws: bool = False) -> list[Record]:
        """Alerts: Suricata's EVE records, or (aws=True) the ALERT log's records in AWS's envelope."""
        if aws:
            return self.alert_log.records("alert", self._since(since, "alert"))
        return self.eve.records("alert", self._since(since, "eve"))

    def flows(self, since: LogMark | int | None = None, aws: bool = True) -> list[Record]:
        """The FLOW log's records (EVE netflow, one per direction), in AWS's envelope unless aws=False."""
        if aws:
            return self.flow_log.records("netflow", self._since(since, "flow"))
        return self.eve.records("netflow", self._since(since, "eve"))

    def to_aws(self, event: Record) -> Record:
        """An EVE record in AWS's envelope (the first endpoint's AZ: the ALERT log itself names the right one)."""
        return aws_envelope(event, self.vpc.firewall_name, self.vpc.availability_zone)

    def follow_alerts(self, since: LogMark | int | None = None, aws: bool = False) -> Iterator[Record]:
        log, which = (self.alert_log, "alert") if aws else (self.eve, "eve")
        for r in log.follow(self._since(since if since is not None else self.log_mark(), which)):
            if event_type(r) == "alert":
                yield r

    def wait_for_alert(self, criteria: dict[str, Any], since: LogMark | int | None = None, timeout: float = 10.0,
                       count: int = 1, aws: bool = False) -> Record:
        """Waits for an alert whose dotted paths match `criteria`; returns the first.

        aws=True reads the ALERT log: paths then start at the envelope ("event.alert.signature")."""
        log, which = (self.alert_log, "alert") if aws else (self.eve, "eve")
        return log.wait_for(criteria, since=self._since(since, which), timeout=timeout, count=count)[0]

    def wait_for_flows(self, criteria: dict[str, Any], since: LogMark | int | None = None, timeout: float = 15.0,
                       count: int = 1, aws: bool = True) -> list[Record]:
        """Waits for FLOW log records (netflow) matching `criteria`; returns them (AWS envelope unless aws=False).

        Suricata writes a flow's records when the flow ends (a closed TCP flow: within a few seconds)."""
        log, which = (self.flow_log, "flow") if aws else (self.eve, "eve")
        return log.wait_for(criteria, since=self._since(since, which), timeout=timeout, count=count,
                            kind="netflow")

    def interfaces(self, node: str) -> list[dict]:
        """Interfaces of a node with their kind and addresses (for isolation checks; sends nothing)."""
        return kernel.interfaces(kernel.netns_path(self._container(node).pid))

    def route_get(self, node: str, dst: str) -> dict:
        """How a node would route a packet to `dst` (`ip route get`: sends nothing)."""
        return kernel.route_get(kernel.netns_path(self._container(node).pid), IPv4Address(dst))


def build_images(base_image: str | None = None) -> str:
    """Builds the lab's images (and a Debian base with debootstrap when no registry is reachable)."""
    dk.client()
    env = {"NFWLAB_BASE_IMAGE": base_image} if base_image else {}
    base = dk.run_script(HOME / "scripts" / "build-base-image.sh", env)
    env_file = state_root() / ".build.env"
    env_file.parent.mkdir(parents=True, exist_ok=True)
    # What compose/docker-compose.yml (image builds only) reads.
    env_file.write_text(dk.compose_env({"COMPOSE_PROJECT_NAME": "nfwlab-build", "NFWLAB_BASE_IMAGE": base,
                                        "NFWLAB_IMAGE_TAG": IMAGE_TAG}))
    compose = dk.ComposeProject(COMPOSE_DIR, env_file)
    compose.build(["node-image"])
    compose.build(["firewall-image"])
    return base
