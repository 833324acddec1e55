"""Engine: the firewall engine inside every firewall endpoint, and the lab's handle on all of them.

    FirewallEngine   what an engine is to the lab: its queue rule (how traffic reaches it, and why
                     nothing crosses without it), its node's Compose service, start, stop, check,
                     reload and "has it started"
    Suricata         Suricata 7 inline on NFQUEUE, one queue per worker thread (Classic policies)
    Suricata8        Suricata 8 in firewall mode on the same path (Next Generation policies)
    Engines          one engine in every endpoint of a lab: wait, stop, start, check, reload, status,
                     out of path (benchmarks); used by Lab, the benchmarks and the tests alike

Flow bypass: once Suricata has decided a flow and has nothing left to inspect in it (either side past the
reassembly depth), its verdict marks the packet; conntrack keeps the mark for the flow
and the endpoint's kernel forwards the flow's later packets itself, through the same fail-closed gate as
the stateless engine's passes. The node's supervisor (compose/images/firewall.py) counts those packets from
conntrack into the flow's FLOW log record.

The stateless engine (Classic policies) is an iptables chain in front of the queue, applied by the same
classes. The firewall endpoint's node (lab/nodes/firewall.py) and Engines only ever call these methods.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from .docker import Container
from .errors import ConfigError, NodeError, StateError
from .model import FirewallEndpoint
from .nextgen import AWS_HOOKS
from .nodes.base import AWS_LOG_DIR, FORWARDING, ServiceContext
from .policy import Rendered
from .stateless import CHAIN as STATELESS_CHAIN
from .stateless import PASS_CHAIN
from .threads import parallel
from .wait import Wait, until_containers_ready

NFQ_QUEUES = max(1, min(4, os.cpu_count() or 1))  # Suricata worker threads (and queues) per endpoint
RULES_DIR = "/etc/nfwlab/rules"  # the lab's rules directory, as the firewall node sees it
# What a policy is made of, in the rules directory.
POLICY_FILES = ("lab.rules", "policy.yaml", "engine.json", "stateless.rules", "firewall.rules")
STARTED = "Engine started"  # what Suricata prints once it inspects traffic
# FORWARD: 1 the stateless engine's chain, 2 bypassed flows (through the gate), 3 the queue to the engine.
QUEUE_POSITION = "3"
BYPASS_MARK = 0x1  # the packet mark (and conntrack mark) bit of a flow the engine has bypassed
BYPASS_DEPTH = 1048576  # bytes: suricata.yaml's stream.reassembly.depth, past which a decided flow is bypassed
# The endpoint's conntrack: packet and byte counts (FLOW records of bypassed flows), AWS's TCP idle timeout, a
# closed flow gone (and counted) within seconds, no packet left out for an unusual window.
CONNTRACK = {"net.netfilter.nf_conntrack_acct": "1", "net.netfilter.nf_conntrack_tcp_be_liberal": "1",
             "net.netfilter.nf_conntrack_tcp_timeout_established": "350",
             "net.netfilter.nf_conntrack_tcp_timeout_time_wait": "2",
             "net.netfilter.nf_conntrack_tcp_timeout_close": "2"}
DOWN = "down (fail closed: nothing crosses this endpoint)"
LOG_HINT = "see the firewall's own log: `nfwlab exec ENDPOINT -- cat /var/log/suricata/suricata.log`"


class FirewallEngine(Protocol):
    kind: str

    def queue_rule(self) -> list[str]: ...
    def fail_closed(self, pid: int) -> None: ...
    def compose_service(self, ctx: ServiceContext, endpoint: FirewallEndpoint,
                        service: Callable[..., dict[str, Any]]) -> dict[str, Any]: ...
    def write_policy(self, directory: Path, rendered: Rendered) -> None: ...
    def started(self, name: str, container: Container | None, since: float | None = None) -> bool: ...
    def running(self, container: Container) -> bool: ...
    def start(self, name: str, container: Container, timeout: float) -> None: ...
    def stop(self, name: str, container: Container, timeout: float) -> None: ...
    def check(self, container: Container, candidate: str, rendered: Rendered) -> str | None: ...
    def reload(self, name: str, container: Container, timeout: float) -> None: ...
    def apply_stateless(self, name: str, container: Container) -> None: ...
    def counters(self, name: str, container: Container) -> tuple[str, dict[str, Any]]: ...
    def gate(self, name: str, container: Container, engine_running: bool) -> None: ...


def fail_closed_summary(endpoints: Sequence[FirewallEndpoint], status: Mapping[str, str], stopped: Sequence[str],
                        start: str) -> str:
    """What `engine stop` left: the endpoints (and their AZs) that now fail closed, and those that still pass
    traffic (a multi-AZ firewall keeps working in the other AZs). `status`: Engines.status() after the stop;
    `start`: the command that starts them again."""
    zones = {e.name: e.availability_zone for e in endpoints}

    def where(names: Sequence[str]) -> str:
        return ", ".join(f"{n} ({zones.get(n, '?')})" for n in names)
    running = [e.name for e in endpoints if status.get(e.name) == "running"]
    closed = [e.name for e in endpoints if e.name not in running]
    if not running:
        return (f"firewall engine stopped in {where(stopped)}: nothing crosses the firewall in any AZ until "
                f"`{start}` (fail closed)")
    out = (f"firewall engine stopped in {where(stopped)}: traffic routed through "
           f"{'it' if len(stopped) == 1 else 'them'} fails closed until `{start}`")
    earlier = [n for n in closed if n not in stopped]
    if earlier:
        out += f"; {where(earlier)} down already (fail closed too)"
    verbs = "inspects and passes" if len(running) == 1 else "inspect and pass"
    return out + f"; {where(running)} still {verbs} traffic"


class Suricata:
    """Suricata 7 inline: the endpoint's FORWARD chain sends every packet to NFQUEUE, flows spread over
    one queue per worker by hash. No --queue-bypass: while Suricata is not running nothing crosses (fail
    closed, as AWS). The node's supervisor (compose/images/firewall.py) restarts it on SIGHUP and delivers
    its EVE alerts and netflow records to the ALERT and FLOW logs in AWS's envelope."""

    kind = "suricata-7"
    image = "firewall"

    def __init__(self, docker: Any, kernel: Any, queues: int = NFQ_QUEUES, flow_bypass: bool = True,
                 explain: Callable[[str], str] = lambda log: log, fix: Callable[[], str] = lambda: "fix the policy"):
        self.docker, self.kernel, self.queues, self.flow_bypass = docker, kernel, queues, flow_bypass
        self.explain, self.fix = explain, fix  # Suricata's errors traced back to the policy, and what to do

    # --------------------------------------------------------------- wiring
    def queue_rule(self) -> list[str]:
        """The FORWARD rule's target: every forwarded packet to the engine's queues."""
        queues = ["--queue-num", "0"] if self.queues == 1 else ["--queue-balance", f"0:{self.queues - 1}"]
        return ["-j", "NFQUEUE", *queues]

    def fail_closed(self, pid: int) -> None:
        """FORWARD: the stateless engine's chain (empty until the policy is applied), the flows the engine has
        bypassed, then the queue. What the stateless engine passes and what the engine bypassed go through
        NFW-PASS, which drops until the engine has started and whenever it stops."""
        self.kernel.iptables(pid, "-N", PASS_CHAIN)
        self.kernel.iptables(pid, "-A", PASS_CHAIN, "-j", "DROP")
        self.kernel.iptables(pid, "-N", STATELESS_CHAIN)
        self.kernel.iptables(pid, "-A", "FORWARD", "-j", STATELESS_CHAIN)
        mark = f"{BYPASS_MARK:#x}/{BYPASS_MARK:#x}"
        self.kernel.iptables(pid, "-A", "FORWARD", "-m", "mark", "--mark", mark, "-j", PASS_CHAIN)
        self.kernel.iptables(pid, "-A", "FORWARD", *self.queue_rule())
        for name, value in CONNTRACK.items():
            self.kernel.sysctl(pid, name, value)
        # AWS: "REJECT is available only for TCP traffic": for other protocols a reject acts as a drop.
        # Suricata answers them with ICMP host-prohibited, which nothing else in this node ever sends.
        self.kernel.iptables(pid, "-A", "OUTPUT", "-p", "icmp", "--icmp-type", "host-prohibited", "-j", "DROP")

    def keep_marks(self, name: str, container: Container, on: bool, idle_timeout: int) -> None:
        """A flow's bypass mark kept by conntrack (on), or not (off: every packet goes to the queue). On, the
        mark goes from the engine's verdict into the flow's conntrack entry and from there onto each later
        packet. The rules make the endpoint track connections, which reassembles fragments before the
        stateless engine: off while the policy's fragment default action needs to see them. A bypassed flow
        idle for `idle_timeout` seconds (the policy's TCP idle timeout) loses its entry, and its mark."""
        self.kernel.sysctl(self.docker.pid(container.id), "net.netfilter.nf_conntrack_tcp_timeout_established",
                           str(idle_timeout))
        mask = f"{BYPASS_MARK:#x}"
        rules = [("PREROUTING", "-j", "CONNMARK", "--restore-mark", "--mask", mask),
                 ("POSTROUTING", "-m", "mark", "--mark", f"{mask}/{mask}", "-j", "CONNMARK", "--save-mark",
                  "--mask", mask)]
        for chain, *rule in rules:
            present = self.docker.exec_in(container.id, ["iptables", "-w", "5", "-t", "mangle", "-C", chain,
                                                         *rule])[0] == 0
            if present != on:
                code, out, err = self.docker.exec_in(container.id, ["iptables", "-w", "5", "-t", "mangle",
                                                                    "-A" if on else "-D", chain, *rule])
                if code != 0:
                    raise NodeError(f"the firewall endpoint {name} could not switch flow bypass "
                                    f"{'on' if on else 'off'}: {(out + err).strip()}", "see `nfwlab status`")

    @contextmanager
    def out_of_path(self, pid: int) -> Iterator[None]:
        """Forwarding without the engine for the block (same path, same hops): for measurements only."""
        self.kernel.iptables(pid, "-R", "FORWARD", QUEUE_POSITION, "-j", "ACCEPT")
        try:
            yield
        finally:
            self.kernel.iptables(pid, "-R", "FORWARD", QUEUE_POSITION, *self.queue_rule())

    def _environment(self) -> dict[str, str]:
        return {}

    def compose_service(self, ctx: ServiceContext, endpoint: FirewallEndpoint,
                        service: Callable[..., dict[str, Any]]) -> dict[str, Any]:
        # NET_ADMIN is needed to bind the queues.
        return service(ctx, self.image, ["nfwlab-firewall"], cap_add=["NET_ADMIN"], sysctls=FORWARDING,
                       environment={"NFWLAB_FIREWALL_NAME": endpoint.firewall_name,
                                    "NFWLAB_AVAILABILITY_ZONE": endpoint.availability_zone,
                                    "NFWLAB_AWS_LOG_DIR": AWS_LOG_DIR, "NFWLAB_NFQ_QUEUES": str(self.queues),
                                    "NFWLAB_FLOW_BYPASS": "1" if self.flow_bypass else "0",
                                    "NFWLAB_BYPASS_MARK": str(BYPASS_MARK), "NFWLAB_BYPASS_DEPTH": str(BYPASS_DEPTH),
                                    **self._environment()},
                       volumes=[f"{ctx.home.resolve()}/suricata:/etc/nfwlab/suricata:ro",
                                f"{ctx.state}/rules:{RULES_DIR}:ro",
                                f"{ctx.state}/logs/{endpoint.name}:/var/log/suricata",
                                f"{ctx.state}/logs:{AWS_LOG_DIR}"])

    @staticmethod
    def write_policy(directory: Path, rendered: Rendered) -> None:
        """The files the engine reads a policy from: rules, variables, engine options, datasets."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "lab.rules").write_text(rendered.rules)
        (directory / "policy.yaml").write_text(rendered.variables)
        (directory / "engine.json").write_text(json.dumps(rendered.engine, indent=1))
        (directory / "stateless.rules").write_text(rendered.stateless)
        (directory / "firewall.rules").write_text(rendered.firewall)  # Suricata 8's firewall mode only
        # Datasets are named by their content, so files of earlier policies can stay (a rollback uses them).
        for name, content in rendered.datasets.items():
            (directory / "datasets").mkdir(exist_ok=True)
            (directory / "datasets" / name).write_text(content)

    # ------------------------------------------------------------ lifecycle
    def started(self, name: str, container: Container | None, since: float | None = None) -> bool:
        """True once the engine reported it inspects traffic (in what its node printed from `since` on, when
        given); NodeError with its errors if it stopped first."""
        log = self.docker.logs(container.id, tail=60, since=since) if container else ""
        if STARTED in log:
            return True
        if container is None or not container.running:
            errors = self.explain(log).replace("\n", "\n    ")
            raise NodeError(f"the firewall {name} (Suricata) refused to start:\n    {errors}", self.fix())
        return False

    def running(self, container: Container) -> bool:
        return self.docker.exec_in(container.id, ["pidof", "suricata"])[0] == 0

    def start(self, name: str, container: Container, timeout: float) -> None:
        """Starts (or restarts) the engine in its node and waits until it inspects traffic again."""
        signalled = time.time()
        self.docker.signal(container.id, "SIGHUP")
        Wait(f"the firewall engine of {name} to start", timeout, interval=0.1,
             hint=f"see `nfwlab exec {name} -- tail /var/log/suricata/suricata.log`").until(
            lambda: STARTED in self.docker.logs(container.id, tail=200, since=signalled),
            report=lambda: self.docker.logs(container.id, tail=20))

    def stop(self, name: str, container: Container, timeout: float) -> None:
        """Kills the engine (the node stays up): its endpoint then fails closed."""
        code, out, _ = self.docker.exec_in(container.id, ["pidof", "suricata"])
        if code == 0:
            self.docker.exec_in(container.id, ["kill", "-KILL", *out.split()])
        Wait(f"the firewall engine of {name} to stop", timeout, hint="see `nfwlab status`").until(
            lambda: not self.running(container))

    def apply_stateless(self, name: str, container: Container) -> None:
        """The stateless engine's rules (stateless.rules, written by `write_policy`) made live in one atomic
        replacement of its chain."""
        code, out, err = self.docker.exec_in(container.id, ["iptables-restore", "-w", "5", "--noflush",
                                                            f"{RULES_DIR}/stateless.rules"])
        if code != 0:
            raise NodeError(f"the stateless engine of {name} refused its rules: {(out + err).strip()[-500:]}",
                            f"see `nfwlab exec {name} -- cat {RULES_DIR}/stateless.rules`")

    def counters(self, name: str, container: Container) -> tuple[str, dict[str, Any]]:
        """The stateless chain's listing with its packet counts, and Suricata's counters ({} while it is down)."""
        code, listing, err = self.docker.exec_in(container.id, ["iptables", "-w", "5", "-nvx", "-L", STATELESS_CHAIN])
        if code != 0:
            raise NodeError(f"could not read the stateless engine's counters in {name}: {err.strip()}",
                            "see `nfwlab status`")
        code, out, _ = self.docker.exec_in(container.id, ["suricatasc", "-c", "dump-counters",
                                                          "/var/run/suricata/suricata-command.socket"])
        try:
            answer = json.loads(out) if code == 0 else {}
        except json.JSONDecodeError:
            answer = {}
        stateful = answer.get("message") if answer.get("return") == "OK" else {}
        return listing, stateful if isinstance(stateful, dict) else {}

    def gate(self, name: str, container: Container, engine_running: bool) -> None:
        """What the stateless engine passes crosses only while the stateful engine runs: the endpoint
        fails closed as a whole."""
        code, out, err = self.docker.exec_in(container.id, ["iptables", "-w", "5", "-R", PASS_CHAIN, "1", "-j",
                                                            "ACCEPT" if engine_running else "DROP"])
        if code != 0:
            raise NodeError(f"the firewall endpoint {name} could not switch its stateless pass path: "
                            f"{(out + err).strip()}", "see `nfwlab status`")

    def check(self, container: Container, candidate: str, rendered: Rendered) -> str | None:
        """Suricata's test mode on a policy written (`write_policy`) under `candidate` (a subdirectory of the
        rules directory): None when it accepts the policy, else its errors traced back to the policy."""
        sets = [x for option in self._check_options(candidate, rendered) for x in ("--set", option)]
        argv = ["suricata", "-T", "-q", "0", "-c", "/etc/nfwlab/suricata/suricata.yaml", "--init-errors-fatal",
                "--include", f"{RULES_DIR}/{candidate}/policy.yaml", "-S", f"{RULES_DIR}/{candidate}/lab.rules",
                "-l", "/tmp", *sets]
        code, out, err = self.docker.exec_in(container.id, argv)
        return None if code == 0 else rendered.explain(out + err)

    def _check_options(self, candidate: str, rendered: Rendered) -> list[str]:
        return list(rendered.engine["set"])

    def reload(self, name: str, container: Container, timeout: float) -> None:
        """Suricata's own live reload of rules and rule variables, waited for to the end."""
        code, out, err = self.docker.exec_in(container.id, [
            "timeout", f"{timeout:g}", "suricatasc", "-c", "reload-rules", "/var/run/suricata/suricata-command.socket"])
        if code != 0 or '"OK"' not in out:
            raise NodeError(f"the firewall engine of {name} did not reload its rules: {(out + err).strip()[-500:]}",
                            f"see `nfwlab exec {name} -- tail /var/log/suricata/suricata.log`")


class Suricata8(Suricata):
    """Suricata 8 in firewall mode, for Next Generation policies (lab/nextgen.py): the firewall engine's rules
    (firewall.rules, named with its default policies in policy.yaml) and the IPS engine's threat-detection rules
    (lab.rules) in one engine, so that a packet crosses the firewall engine first and the IPS second, as AWS
    describes. Same node, queue, supervisor, fail-closed path and logs as Suricata 7; its own image (Debian
    forky's Suricata 8)."""

    kind = "suricata-8"
    image = "firewall-ng"

    def _environment(self) -> dict[str, str]:
        return {"NFWLAB_AWS_HOOKS": json.dumps(AWS_HOOKS, sort_keys=True)}  # logs name hooks as AWS does

    def _check_options(self, candidate: str, rendered: Rendered) -> list[str]:
        # The candidate's policy.yaml names the live rules directory; the check reads the candidate's.
        return [*rendered.engine["set"], f"firewall.rule-path={RULES_DIR}/{candidate}"]


def conntrack_entry(line: str) -> dict[str, Any] | None:
    """One line of `conntrack -L -o extended` as a dict (None for what is not an entry): the original direction's
    addresses and ports, its state, and both directions' packet and byte counts."""
    words = line.split()
    if len(words) < 6 or words[0] not in ("ipv4", "ipv6"):
        return None
    fields: dict[str, list[str]] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if sep:
            fields.setdefault(key, []).append(value)
    state = words[5] if words[5].isupper() and "=" not in words[5] else ""

    def number(key: str, i: int) -> int:
        values = fields.get(key, [])
        return int(values[i]) if len(values) > i else 0
    return {"proto": words[2], "src": fields.get("src", [""])[0], "sport": number("sport", 0),
            "dst": fields.get("dst", [""])[0], "dport": number("dport", 0), "state": state,
            "packets": number("packets", 0), "bytes": number("bytes", 0),
            "reply_packets": number("packets", 1), "reply_bytes": number("bytes", 1),
            "mark": int(fields.get("mark", ["0"])[0], 0)}


def engine_for(kind: str, docker: Any, kernel: Any, **options: Any) -> Suricata:
    """The engine that runs a policy of `kind` ("classic" or "next-generation")."""
    return (Suricata8 if kind == "next-generation" else Suricata)(docker, kernel, **options)


class Engines:
    """The engine of every firewall endpoint of one lab."""

    def __init__(self, engine: Any, docker: Any, lab: str, endpoints: list[str], rules_dir: Path):
        self.engine, self.docker, self.lab = engine, docker, lab
        self.endpoints, self.rules_dir = endpoints, rules_dir

    def _select(self, node: str | None) -> list[str]:
        if node is not None and node not in self.endpoints:
            raise ConfigError(f"no firewall endpoint named {node!r}", f"endpoints: {', '.join(self.endpoints)}")
        return [node] if node else list(self.endpoints)

    def _container(self, name: str, found: dict[str, Container] | None = None) -> Container:
        c = (found if found is not None else self.docker.containers(self.lab)).get(name)
        if c is None or not c.running:
            raise StateError(f"the firewall endpoint {name} is not running",
                             f"bring it back: `nfwlab --name {self.lab} repair`")
        return c

    def not_started(self, names: list[str] | None = None) -> list[str]:
        """Which endpoints' engines have not started yet (one container listing for all); NodeError for one
        that stopped with errors."""
        found = self.docker.containers(self.lab)
        return [n for n in (names or self.endpoints) if not self.engine.started(n, found.get(n))]

    def wait(self, timeout: float) -> None:
        """Until every endpoint's engine inspects traffic; an engine that exits is reported with its errors."""
        until_containers_ready(self.docker, self.lab, {n: partial(self.engine.started, n) for n in self.endpoints},
                               f"Suricata to report '{STARTED}' in every firewall endpoint", timeout, LOG_HINT)

    def status(self, found: dict[str, Container] | None = None) -> dict[str, str]:
        """Each endpoint's engine: "running", or why traffic does not cross it."""
        found = found if found is not None else self.docker.containers(self.lab)
        out = {}
        for name in self.endpoints:
            c = found.get(name)
            out[name] = "running" if c and c.running and self.engine.running(c) else DOWN
        return out

    def stop(self, node: str | None = None, timeout: float = 10.0) -> None:
        found = self.docker.containers(self.lab)
        for name in self._select(node):
            container = self._container(name, found)
            self.engine.gate(name, container, engine_running=False)  # first: nothing crosses from now on
            self.engine.stop(name, container, timeout)

    def start(self, node: str | None = None, timeout: float = 30.0) -> None:
        """Starts (or restarts, reading the policy's engine options again) the engines, in parallel."""
        found = self.docker.containers(self.lab)
        names = self._select(node)
        parallel([partial(self.engine.start, n, self._container(n, found), timeout) for n in names])
        for name in names:
            self.engine.gate(name, self._container(name, found), engine_running=True)

    def counters(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Each endpoint's stateless chain listing and Suricata counters (see lab/metrics.py)."""
        found = self.docker.containers(self.lab)
        return {name: self.engine.counters(name, self._container(name, found)) for name in self.endpoints}

    def apply_stateless(self, names: list[str] | None = None) -> None:
        """The policy's stateless rules (stateless.rules) live in every endpoint (or those of `names`: the ones
        `repair` brought back), its TCP idle timeout on the flows the kernel forwards (bypassed flows), and its
        pass path open."""
        found = self.docker.containers(self.lab)
        idle = self.tcp_idle_timeout()
        marks = self.engine.flow_bypass and self.fragments_reach_the_engine()
        for name in self.endpoints if names is None else names:
            container = self._container(name, found)
            self.engine.apply_stateless(name, container)
            self.engine.keep_marks(name, container, marks, idle)
            self.engine.gate(name, container, engine_running=True)

    def fragments_reach_the_engine(self) -> bool:
        """Whether the running policy's stateless fragment default action is aws:forward_to_sfe (the default):
        fragments are then the stateful engine's, which reassembles them anyway."""
        try:
            text = (self.rules_dir / "stateless.rules").read_text()
        except FileNotFoundError:
            return True
        return not any("nfw fragment-default " in line and " a=aws:forward_to_sfe " not in line
                       for line in text.splitlines())

    def tcp_idle_timeout(self) -> int:
        """The running policy's TCP idle timeout in seconds (AWS's default: 350)."""
        try:
            options = json.loads((self.rules_dir / "engine.json").read_text()).get("set", [])
        except (FileNotFoundError, json.JSONDecodeError):
            options = []
        for option in options:
            key, _, value = str(option).partition("=")
            if key == "flow-timeouts.tcp.established" and value.isdigit():
                return int(value)
        return int(CONNTRACK["net.netfilter.nf_conntrack_tcp_timeout_established"])

    def reload(self, timeout: float = 60.0) -> None:
        found = self.docker.containers(self.lab)
        parallel([partial(self.engine.reload, n, self._container(n, found), timeout) for n in self.endpoints])

    def check(self, rendered: Rendered, what: str) -> None:
        """The engine's own check of a policy in the first endpoint; ConfigError naming the refused rule."""
        container = self._container(self.endpoints[0])
        candidate = self.rules_dir / "candidate"
        self.engine.write_policy(candidate, rendered)
        try:
            refused = self.engine.check(container, candidate.name, rendered)
        finally:
            shutil.rmtree(candidate, ignore_errors=True)
        if refused is not None:
            raise ConfigError(f"Suricata refused the policy {what}:\n    " + refused.replace("\n", "\n    "),
                              "fix the rule named above; the previous policy is still running unchanged")

    @contextmanager
    def out_of_path(self, node: str | None = None) -> Iterator[None]:
        """The engines out of the path for the block, then back (benchmarks: the bare path's throughput)."""
        found = self.docker.containers(self.lab)
        with ExitStack() as stack:
            for name in self._select(node):
                stack.enter_context(self.engine.out_of_path(self.docker.pid(self._container(name, found).id)))
            yield

    def bypassed_flows(self, node: str | None = None) -> list[dict[str, Any]]:
        """The flows each endpoint's kernel forwards for the engine (conntrack entries with the bypass mark):
        {"endpoint", "proto", "src", "sport", "dst", "dport", "state", "packets", "bytes", "reply_packets",
        "reply_bytes"}."""
        found = self.docker.containers(self.lab)
        out = []
        for name in self._select(node):
            code, text, err = self.docker.exec_in(self._container(name, found).id, [
                "conntrack", "-L", "--mark", f"{BYPASS_MARK:#x}/{BYPASS_MARK:#x}", "-o", "extended"])
            if code != 0:
                raise NodeError(f"could not list the bypassed flows of {name}: {err.strip()}", "see `nfwlab status`")
            out += [{"endpoint": name, **entry} for entry in map(conntrack_entry, text.splitlines()) if entry]
        return out
