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
from contextlib import contextmanager
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from . import docker as dk
from . import kernel, nodes
from .errors import ConfigError, EnvironmentProblem, LabError, NodeError, StateError, WaitTimeout
from .logs import EveLog, LogMark, Record, aws_envelope, event_type
from .model import Design, Vpc, load_design, load_vpc, validate_domain
from .policy import Policy, Rendered, load_policy, render, rules_file_policy
from .routing import format_route_tables, kernel_routes, route_table_json

HOME = Path(os.environ.get("NFWLAB_HOME", Path(__file__).resolve().parent.parent))
DESIGNS_DIR = HOME / "designs"
COMPOSE_DIR = HOME / "compose"
DEFAULT_VPC = DESIGNS_DIR / "vpc.yaml"
DEFAULT_POLICY = HOME / "policies" / "deny-domains.json"
POLICY_FILES = ("lab.rules", "policy.yaml", "engine.json")  # what a policy is made of, in the rules directory
FW_RULES_DIR = "/etc/nfwlab/rules"  # the rules directory, as the firewall node sees it
DEFAULT_DESIGN = "nat-first"
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
    return sorted(p.stem for p in DESIGNS_DIR.glob("*.yaml") if p.stem != "vpc")


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
    """One lab: a name, a VPC, a design, a rule group and a state directory."""

    def __init__(self, name: str = "default", vpc_file: str | Path = DEFAULT_VPC,
                 policy_file: str | Path = DEFAULT_POLICY, domains: list[str] | None = None,
                 home_net: str | None = None, state_dir: str | Path | None = None,
                 rules_file: str | Path | None = None, rule_group_files: list[str | Path] = ()):
        """`policy_file`: a firewall policy or a rule group (AWS JSON or YAML); `rule_group_files`: rule groups
        the policy references; `rules_file`: a Suricata rules file run as-is instead; `home_net`: overrides
        the policy's HOME_NET (default: the VPC CIDR, as AWS)."""
        if not NAME_RE.match(name):
            raise ConfigError(f"lab name {name!r} is not valid",
                              "use 1-20 characters: lower-case letters, digits and '-', starting with a letter")
        self.name = name
        self.vpc: Vpc = load_vpc(vpc_file)
        self.domains = [validate_domain(d, "--domains") for d in domains] if domains else list(self.vpc.internet.domains)
        self.rules_file = Path(rules_file) if rules_file else None
        self.home_net_override = _home_net(home_net).split(",") if home_net else None
        self.policy: Policy = self._policy(rules_file_policy(self.rules_file) if self.rules_file
                                           else load_policy(policy_file, list(rule_group_files)))
        self.state_dir = Path(state_dir) if state_dir else state_root() / name
        self.eve = EveLog(self.state_dir / "logs" / "eve.json")
        self.alert_log = EveLog(self.state_dir / "logs" / "alert.log")
        self.flow_log = EveLog(self.state_dir / "logs" / "flow.log")

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
        path = Path(name_or_path)
        if not (name_or_path.endswith((".yaml", ".yml")) or os.sep in name_or_path):
            path = DESIGNS_DIR / f"{name_or_path}.yaml"
            if not path.exists():
                raise ConfigError(f"unknown design {name_or_path!r}",
                                  f"use one of: {', '.join(design_names())} (or the path of a design file)")
        return load_design(path, self.vpc)

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
        return dk.ComposeProject(COMPOSE_DIR, self.state_dir / "compose.env")

    @staticmethod
    def _write_policy(directory: Path, rendered: Rendered) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "lab.rules").write_text(rendered.rules)
        (directory / "policy.yaml").write_text(rendered.variables)
        (directory / "engine.json").write_text(json.dumps(rendered.engine, indent=1))

    def _write_files(self, rendered: Rendered) -> None:
        for sub in ("logs", "rules", "dns"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        self._write_policy(self.state_dir / "rules", rendered)
        (self.state_dir / "dns" / "hosts").write_text(
            "".join(f"{self.vpc.internet.web_server} {d}\n" for d in self.domains))
        (self.state_dir / "dns" / "resolv.conf").write_text(f"nameserver {self.vpc.dns_ip}\noptions timeout:1 attempts:2\n")
        (self.state_dir / "compose.env").write_text(dk.compose_env({
            "COMPOSE_PROJECT_NAME": f"nfwlab-{self.name}",
            "NFWLAB_LAB": self.name,
            "NFWLAB_STATE": str(self.state_dir.resolve()),
            "NFWLAB_FIREWALL_NAME": self.vpc.firewall.firewall_name,
            "NFWLAB_AVAILABILITY_ZONE": self.vpc.availability_zone,
            "NFWLAB_DOMAINS": ",".join(self.domains),
            "NFWLAB_IMAGE_TAG": IMAGE_TAG,
        }))

    def up(self, design: str = DEFAULT_DESIGN, firewall_timeout: float = 30.0) -> float:
        """Starts the lab in `design`; returns the seconds it took.

        On any failure everything made so far is removed before the error is raised."""
        started = time.monotonic()
        chosen = self.load_design(design)  # validate everything before any side effect
        rendered = self.render()
        self._preflight()
        if dk.containers(self.name):
            raise StateError(f"lab {self.name!r} already exists on this host",
                             f"use it, take it down with `nfwlab down --name {self.name}`, or pick another --name")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_state(name=self.name, design=None, phase="starting")
        try:
            self._write_files(rendered)
            try:
                self._compose().up()
            except NodeError:
                self._check_firewall_started()  # a firewall that died says why, better than compose
                raise
            pids = self._pids()
            self._wire(pids, chosen)
            self._wait_for_firewall(firewall_timeout)
        except BaseException:
            self.down()  # nothing half-made stays behind
            raise
        self._write_state(design=chosen.name, design_file=chosen.source, phase="up", home_net=rendered.home_net,
                          domains=self.domains, policy=self.policy.summary())
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
        # Fail closed before the firewall has a link: nothing crosses it unqueued.
        by_service[self.vpc.firewall.name].fail_closed(pids[self.vpc.firewall.name])
        by_service[nodes.ROUTER].prepare(pids[nodes.ROUTER])
        for link in nodes.all_links(self.vpc):
            a, b = nodes.endpoints(link, pids)
            kernel.create_link(self.name, link.name, a, b)
        for role in roles:
            role.configure(pids)
        kernel.replace_routes(kernel.netns_path(pids[nodes.ROUTER]), kernel_routes(self.vpc, design))

    def _check_firewall_started(self) -> bool:
        """True once Suricata reported "Engine started"; raises with its errors if it stopped."""
        c = dk.containers(self.name).get(self.vpc.firewall.name)
        log = dk.logs(c.id, tail=60) if c else ""
        if "Engine started" in log:
            return True
        if c is None or not c.running:
            errors = self.render().explain(log).replace("\n", "\n    ")
            raise NodeError(f"the firewall (Suricata) refused to start:\n    {errors}",
                            f"fix the policy {self.policy.source}")
        return False

    def _wait_for_firewall(self, timeout: float) -> None:
        """Waits for Suricata's "Engine started"; a firewall that exits is reported with its errors."""
        deadline = time.monotonic() + timeout
        while not self._check_firewall_started():
            if time.monotonic() > deadline:
                c = dk.containers(self.name).get(self.vpc.firewall.name)
                raise WaitTimeout(f"Suricata did not report 'Engine started' within {timeout:g}s; its log:\n"
                                  f"{dk.logs(c.id, tail=30) if c else '(no container)'}",
                                  "check the firewall with `nfwlab exec firewall -- cat /var/log/suricata/suricata.log`")
            time.sleep(0.1)

    def host_link_names(self) -> list[str]:
        """Names the lab's link ends carry in the host namespace while they are being made."""
        return [kernel.temp_ifname(self.name, link.name, side) for link in nodes.all_links(self.vpc) for side in "ab"]

    def down(self) -> dict[str, Any]:
        """Removes everything the lab made: containers, links, state. Works after a crash."""
        report: dict[str, Any] = {"containers": len(dk.containers(self.name)), "host_links": [], "state_dir": None}
        if (self.state_dir / "compose.env").exists():
            try:
                self._compose().down()
            except LabError:
                pass  # the label sweep below removes what compose could not
        dk.remove_lab_containers(self.name)
        report["host_links"] = kernel.delete_host_links(self.host_link_names())
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
            report["state_dir"] = str(self.state_dir)
        return report

    # ---------------------------------------------------------------- design
    def switch(self, design: str) -> float:
        """Switches the running lab to another design: routes only, no restarts. Returns seconds."""
        chosen = self.load_design(design)
        pids = self._require_up()
        started = time.perf_counter()
        kernel.replace_routes(kernel.netns_path(pids[nodes.ROUTER]), kernel_routes(self.vpc, chosen))
        took = time.perf_counter() - started
        self._write_state(design=chosen.name, design_file=chosen.source)
        return took

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
                "warnings": list(rendered.warnings)}

    def _reload_rules(self, timeout: float) -> None:
        """Suricata's own rule reload (rules and rule variables), waited for to the end."""
        fw = self._container(self.vpc.firewall.name)
        code, out, err = dk.exec_in(fw.id, ["timeout", f"{timeout:g}", "suricatasc", "-c", "reload-rules",
                                            "/var/run/suricata/suricata-command.socket"])
        if code != 0 or '"OK"' not in out:
            raise NodeError(f"the firewall engine did not reload its rules: {(out + err).strip()[-500:]}",
                            "see `nfwlab exec firewall -- tail /var/log/suricata/suricata.log`")

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
        chosen = self.load_design(design or self.design or DEFAULT_DESIGN)
        return route_table_json(self.vpc, chosen) if as_json else format_route_tables(self.vpc, chosen)

    # ---------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        state = self._read_state()
        found = dk.containers(self.name)
        node_status = {s: (found[s].status if s in found else "missing") for s in nodes.services(self.vpc)}
        fw = found.get(self.vpc.firewall.name)
        engine = "down"
        if fw and fw.running:
            code, _, _ = dk.exec_in(fw.id, ["pidof", "suricata"])
            engine = "running" if code == 0 else "down (fail closed: nothing crosses the firewall)"
        return {"name": self.name, "design": state.get("design"), "phase": state.get("phase", "down"),
                "nodes": node_status, "firewall_engine": engine, "state_dir": str(self.state_dir),
                "eve_json": str(self.eve.path), "alert_log": str(self.alert_log.path),
                "flow_log": str(self.flow_log.path), "home_net": state.get("home_net"),
                "domains": state.get("domains"), "policy": state.get("policy"),
                "firewall_name": self.vpc.firewall.firewall_name, "availability_zone": self.vpc.availability_zone}

    def stop_firewall_engine(self) -> None:
        """Kills Suricata (the node stays up): the firewall is then closed, as AWS's fails closed."""
        fw = self._container(self.vpc.firewall.name)
        code, out, _ = dk.exec_in(fw.id, ["pidof", "suricata"])
        if code == 0:
            dk.exec_in(fw.id, ["kill", "-KILL", *out.split()])
        deadline = time.monotonic() + 10
        while dk.exec_in(fw.id, ["pidof", "suricata"])[0] == 0:
            if time.monotonic() > deadline:
                raise WaitTimeout("the firewall engine did not stop within 10s", "see `nfwlab status`")
            time.sleep(0.05)

    def restart_firewall_engine(self, timeout: float = 30.0) -> None:
        """Starts Suricata again in the running firewall node and waits until it inspects traffic."""
        fw = self._container(self.vpc.firewall.name)
        before = dk.logs(fw.id, tail=100000).count("Engine started")
        dk.signal(fw.id, "SIGHUP")
        deadline = time.monotonic() + timeout
        while dk.logs(fw.id, tail=100000).count("Engine started") <= before:
            if time.monotonic() > deadline:
                raise WaitTimeout(f"the firewall engine did not start within {timeout:g}s",
                                  f"its log: {dk.logs(fw.id, tail=20)}")
            time.sleep(0.1)

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

    def fetch(self, node: str, url: str, timeout: float = 5.0) -> FetchResult:
        """Makes `node` request `url` with curl (certificates are not checked)."""
        argv = ["curl", "-sS", "-k", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", f"{timeout:g}", url]
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
        return aws_envelope(event, self.vpc.firewall.firewall_name, self.vpc.availability_zone)

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
    env_file.write_text(dk.compose_env({"COMPOSE_PROJECT_NAME": "nfwlab-build", "NFWLAB_LAB": "build",
                                        "NFWLAB_STATE": str(env_file.parent), "NFWLAB_FIREWALL_NAME": "build",
                                        "NFWLAB_AVAILABILITY_ZONE": "build",
                                        "NFWLAB_DOMAINS": "build.example", "NFWLAB_BASE_IMAGE": base,
                                        "NFWLAB_IMAGE_TAG": IMAGE_TAG}))
    compose = dk.ComposeProject(COMPOSE_DIR, env_file)
    compose.build(["node-image"])
    compose.build(["firewall-image"])
    return base
