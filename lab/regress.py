"""The case runner: real requests for many cases at once, each decided by the firewall's own records.

    from lab import Lab
    from lab.cases import load_cases
    from lab.regress import run_cases
    run = run_cases(Lab("default"), load_cases("cases/scenario.yaml").cases)
    print(run.count("failed"))

How a run goes:
1. `plan` resolves every case against the topology before anything is sent: the source node (a server,
   or a subnet's servers in turn), the destination address (a domain name is the internet's web server,
   which serves any name), the address a `logged_source` names. A case that cannot be resolved is refused
   with the others, naming the case and the field (CaseError), and nothing runs.
2. Cases run in batches of one policy and one topology: the lab switches route tables and applies
   policies live between batches, as `switch` and `policy apply` do.
3. Each request gets a source port no request of the last REUSE_AFTER seconds used (PortLedger): the
   firewall (and the NAT gateway) remember a flow by its addresses and ports for up to 350 s, and a new
   request on a remembered flow would be judged as part of the old one.
4. A prober (lab/probe.py) in each source node sends its requests at once and reports each one's end;
   meanwhile the runner reads the endpoints' eve.json and the ALERT log. A case is decided as soon as:
   the destination answered (pass); the firewall wrote a drop record or a blocking alert for the flow
   (drop; reject when the alert's verdict names a reset or the client was reset). The client's timeout
   only ends a case that nothing decided, and that case is an error, not a drop.
5. The seen verdict, the ALERT log's alerts of the flow, the source address the firewall logged and the
   endpoint's Availability Zone are compared with the case.

ICMP flows are keyed by their addresses alone (Suricata's flow table, as AWS's): two ICMP cases to one
address run one after the other, and one that meets a flow the firewall still tracks from before the run
is decided by that flow's drop record.
"""
from __future__ import annotations

import fcntl
import itertools
import json
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from .cases import Case, CaseError
from .errors import NodeError, StateError
from .logs import file_size, read_records, read_records_before
from .model import Vpc
from .results import CaseDiff, CaseResult, CaseRun, DiffRow, Seen

REUSE_AFTER = 400.0  # seconds before a source port is used again (the flow timeouts are 350 s)
PROBE_PORTS = tuple(p for p in range(10000, 32768) if p != 20000)  # below Linux's ephemeral range; 20000 is DNP3
PROBE_SCRIPT = Path(__file__).with_name("probe.py")
PROBE_DIR = "/tmp/nfwlab-probe"
REJECT_GRACE = 0.5  # after a drop record without a reject verdict: how long a TCP client's reset may take
LOGGED_WAIT = 8.0  # how long a passed flow's first record may take (a TCP flow's record comes at its end)
SETTLE = 0.2  # after the last decision: records of the answers' packets


# ------------------------------------------------------------------ planning
@dataclass(frozen=True)
class Probe:
    """A case made concrete: who sends what to where, from which port."""

    case: Case
    index: int
    server: str
    address: IPv4Address
    source_port: int = 0
    expected_source: IPv4Address | None = None

    @property
    def transport(self) -> str:
        return {"tls": "TCP", "http": "TCP", "tcp": "TCP", "udp": "UDP", "dns": "UDP", "icmp": "ICMP"}[
            self.case.protocol]

    def key(self) -> tuple[Any, ...]:
        """How the firewall's records of this flow are found: protocol, client port, server address and port
        (NAT keeps the client's port), or for ICMP the protocol and the server address."""
        if self.transport == "ICMP":
            return ("ICMP", str(self.address))
        return (self.transport, self.source_port, str(self.address), self.case.port)


def _node_address(vpc: Vpc, name: str) -> IPv4Address | None:
    for s in vpc.servers:
        if s.name == name:
            return s.ip
    for n in vpc.nat_gateways:
        if name in (n.name, n.id):
            return n.private_ip
    return None


def plan(cases: Sequence[Case], vpc: Vpc) -> list[Probe]:
    """Every case resolved against the VPC (its servers, subnets, internet, AZs); CaseError naming each case
    and field that cannot be, before anything is sent."""
    problems: list[str] = []
    subnets: dict[str, list[str]] = defaultdict(list)
    for s in vpc.servers:
        subnets[s.subnet].append(s.name)
    turn: dict[str, itertools.cycle[str]] = {name: itertools.cycle(servers) for name, servers in subnets.items()}
    zones = {e.availability_zone for e in vpc.endpoints}
    inet = vpc.internet
    probes = []
    for i, c in enumerate(cases):
        before = len(problems)
        server = c.source if any(s.name == c.source for s in vpc.servers) else None
        if server is None and c.source in turn:
            server = next(turn[c.source])
        if server is None:
            subnet_names = [s.name for s in vpc.subnets]
            problems.append(f"{c.where}: from: {c.source!r} is neither a server nor a subnet with servers "
                            f"(servers: {', '.join(s.name for s in vpc.servers)}; subnets with servers: "
                            f"{', '.join(n for n in subnet_names if n in turn) or 'none'})")
        address = c.address if c.address is not None else inet.web_server
        reserved = (inet.gateway_ip, inet.cidr.network_address, inet.cidr.broadcast_address)
        if c.address is not None and (c.address not in inet.cidr or c.address in reserved):
            problems.append(f"{c.where}: to: {c.to} is not a host address of the lab's internet ({inet.cidr}, but "
                            f"{inet.gateway_ip}, the internet gateway's, and the block's network and broadcast "
                            "addresses): nothing else answers in the lab")
        expected = None
        if c.logged_source:
            try:
                expected = IPv4Address(c.logged_source)
            except ValueError:
                expected = _node_address(vpc, c.logged_source)
                if expected is None:
                    problems.append(f"{c.where}: logged_source: {c.logged_source!r} is neither an address nor "
                                    f"a server or NAT gateway of the topology")
        if c.availability_zone and c.availability_zone not in zones:
            problems.append(f"{c.where}: availability_zone: no firewall endpoint in {c.availability_zone!r} "
                            f"(endpoints are in {', '.join(sorted(zones))})")
        if len(problems) == before:
            assert server is not None
            probes.append(Probe(c, i, server, address, 0, expected))
    if problems:
        raise CaseError(f"{len(problems)} case(s) do not fit the topology {vpc.source}:\n  " + "\n  ".join(
            problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""),
                        "fix the case file or run it against another topology; nothing was run")
    return probes


def waves(probes: Sequence[Probe]) -> list[list[Probe]]:
    """Probes in waves that can run at once: ICMP flows are keyed by addresses only, so a second ICMP case to
    the same address waits for the next wave."""
    out: list[list[Probe]] = []
    taken: list[set[str]] = []
    for p in probes:
        n = 0
        if p.transport == "ICMP":
            while n < len(taken) and str(p.address) in taken[n]:
                n += 1
        while len(out) <= n:
            out.append([])
            taken.append(set())
        out[n].append(p)
        if p.transport == "ICMP":
            taken[n].add(str(p.address))
    return out


# ---------------------------------------------------------------- source ports
class PortLedger:
    """Source ports handed out per lab, none again within REUSE_AFTER seconds (a file in the state dir)."""

    def __init__(self, path: Path, ports: Sequence[int] = PROBE_PORTS, reuse_after: float = REUSE_AFTER,
                 clock: Callable[[], float] = time.time):
        self.path, self.ports, self.reuse_after, self.clock = path, ports, reuse_after, clock

    @contextmanager
    def _locked(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def take(self, n: int) -> list[int]:
        """`n` ports, from where the last run stopped; StateError when too few were left unused long enough."""
        with self._locked():
            try:
                saved = json.loads(self.path.read_text())
            except (OSError, ValueError):
                saved = {}
            now = self.clock()
            used = {int(p): t for p, t in saved.get("used", {}).items() if now - t < self.reuse_after}
            start = int(saved.get("next", 0)) % len(self.ports)
            out = []
            for i in range(len(self.ports)):
                port = self.ports[(start + i) % len(self.ports)]
                if port not in used:
                    out.append(port)
                    if len(out) == n:
                        break
            if len(out) < n:
                wait = self.reuse_after - (now - min(used.values())) if used else 0
                raise StateError(f"{n} source ports are needed but only {len(out)} of {len(self.ports)} have gone "
                                 f"unused for {self.reuse_after:g}s (the firewall may still remember their flows)",
                                 f"wait {wait:.0f}s, or run fewer cases at once")
            for port in out:
                used[port] = now
            last = self.ports.index(out[-1]) + 1 if out else start
            self.path.write_text(json.dumps({"next": last % len(self.ports), "used": used}))
            return out


# ------------------------------------------------------------------ records
def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def record_keys(event: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The keys under which a flow's EVE record is found (either direction of the flow)."""
    proto = str(event.get("proto", "")).upper()
    if proto == "ICMP":
        return [("ICMP", event.get("dest_ip")), ("ICMP", event.get("src_ip"))]
    if proto not in ("TCP", "UDP"):
        return []
    sp, dp = _int(event.get("src_port")), _int(event.get("dest_port"))
    return [(proto, sp, event.get("dest_ip"), dp), (proto, dp, event.get("src_ip"), sp)]


def _hidden(event: dict[str, Any]) -> bool:
    """An alert the lab adds to tell what the engine did (lab/nextgen.py), which AWS would not log."""
    meta = (event.get("alert") or {}).get("metadata") or {}
    return "explain" in (meta.get("nfwlab") or [])


def _blocks(event: dict[str, Any]) -> bool:
    kind = event.get("event_type")
    if kind == "drop":
        return True
    if kind != "alert":
        return False
    verdict = (event.get("verdict") or {}).get("action")
    return verdict == "drop" or (event.get("alert") or {}).get("action") == "blocked"


def _rejects(event: dict[str, Any]) -> bool:
    return bool((event.get("verdict") or {}).get("reject"))


@dataclass
class FlowRecords:
    """The firewall's records since a mark, found by flow key: eve.json of every endpoint (with the endpoint's
    AZ) and the ALERT log."""

    eve: dict[str, tuple[Path, str]]  # endpoint -> (eve.json, AZ)
    alert_log: Path
    offsets: dict[Path, int] = field(default_factory=dict)
    by_key: dict[tuple[Any, ...], list[tuple[str, dict[str, Any]]]] = field(
        default_factory=lambda: defaultdict(list))  # key -> (endpoint, EVE record)
    alerts: dict[tuple[Any, ...], list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    ended: set[int] = field(default_factory=set)  # flow ids whose flow record is written (the flow is over)

    def mark(self) -> None:
        for path in [p for p, _ in self.eve.values()] + [self.alert_log]:
            self.offsets[path] = file_size(path)

    def _read(self, path: Path) -> list[dict[str, Any]]:
        records, self.offsets[path] = read_records(path, self.offsets.get(path, 0))
        return records

    def zone(self, endpoint: str) -> str:
        return self.eve[endpoint][1]

    def poll(self) -> None:
        for endpoint, (path, _) in self.eve.items():
            for event in self._read(path):
                if event.get("event_type") in ("flow", "netflow"):
                    self.ended.add(event.get("flow_id", 0))
                for key in record_keys(event):
                    self.by_key[key].append((endpoint, event))
        for record in self._read(self.alert_log):
            event = record.get("event") or {}
            if event.get("event_type") == "alert":
                for key in record_keys(event):
                    self.alerts[key].append(record)

    def history(self, key: tuple[Any, ...], before: Callable[[Path], int]) -> list[tuple[str, dict[str, Any]]]:
        """The records of `key` written before the mark (for an ICMP flow still tracked from earlier)."""
        out = []
        for endpoint, (path, _) in self.eve.items():
            for event in read_records_before(path, before(path), containing=str(key[1]).encode()):
                if key in record_keys(event):
                    out.append((endpoint, event))
        return out


# ------------------------------------------------------------------ deciding
@dataclass
class Outcome:
    """What the prober reported for a request, or None yet."""

    outcome: str
    detail: str
    at: float  # monotonic time the runner learnt it


def _logged(p: Probe, events: list[tuple[str, dict[str, Any]]]) -> tuple[str | None, str | None]:
    """The client's address as the firewall logged the flow (its first record), and the endpoint that did."""
    for endpoint, e in events:
        if p.transport == "ICMP":
            return (e.get("src_ip") if e.get("dest_ip") == str(p.address) else e.get("dest_ip")), endpoint
        if _int(e.get("dest_port")) == p.case.port and e.get("dest_ip") == str(p.address):
            return e.get("src_ip"), endpoint
        return e.get("dest_ip"), endpoint
    return None, None


def _straggler(e: dict[str, Any], endpoint: str, events: list[tuple[str, dict[str, Any]]]) -> bool:
    """A packet that reached the endpoint after it had forgotten the flow (a last FIN or ACK after the close):
    a new flow there, dropped as midstream. The request's flow was seen there before, under another id."""
    if ((e.get("drop") or {}).get("reason")) != "stream midstream":
        return False
    return any(ep == endpoint and other.get("flow_id") not in (None, e.get("flow_id")) for ep, other in events
               if other is not e and other.get("timestamp", "") <= e.get("timestamp", ""))


def blocking(events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The records that say the firewall stopped the request's flow (late packets' new flows left out)."""
    return [e for ep, e in events if _blocks(e) and not _straggler(e, ep, events)]


def decide(p: Probe, outcome: Outcome | None, events: list[tuple[str, dict[str, Any]]],
           now: float, first_block_at: float | None,
           earlier: list[tuple[str, dict[str, Any]]] | None = None, ended: set[int] | None = None
           ) -> tuple[str | None, str]:
    """The verdict for a probe from what is known at `now` (None: not yet), and the evidence for it."""
    stopped = blocking(events)
    if outcome and outcome.outcome == "answer":
        return "pass", f"answer: {outcome.detail}"
    if outcome and outcome.outcome == "error":
        # The request was not made as written (no route, a port it could not bind): a firewall record of the
        # flow does not make that a verdict on the case.
        return None, f"the request could not be made: {outcome.detail}" + (
            "; the firewall also logged a drop of the flow" if stopped else "")
    if stopped:
        first = stopped[0]
        what = (f"{first.get('event_type')} record of flow {first.get('flow_id')}" if first.get("event_type") ==
                "drop" else f"blocking alert {(first.get('alert') or {}).get('signature_id')} of flow "
                f"{first.get('flow_id')}")
        rejecting = next((e for e in stopped if _rejects(e)), None)
        if rejecting is not None:
            resets = ", ".join(map(str, rejecting["verdict"]["reject"]))
            return "reject", f"{what}, verdict reject ({resets})" + (
                f"; client: {outcome.detail}" if outcome else "")
        if outcome and outcome.outcome == "reset":
            return "reject", f"{what}; the client was reset ({outcome.detail})"
        # An alert's verdict tells a reject from a drop; a drop record alone (a silent default action) does
        # not, and a reject's reset reaches the client at once.
        told = any("verdict" in e for e in stopped)
        waited = now - (first_block_at or now)
        if p.transport == "TCP" and not told and not outcome and waited < REJECT_GRACE:
            return None, "a drop record, waiting for the client's outcome (drop or reset)"
        return "drop", what
    if earlier and outcome and outcome.outcome == "timeout":
        live = [e for _, e in earlier if _blocks(e) and e.get("flow_id") not in (ended or set())]
        if live:
            return "drop", (f"no answer; the firewall still tracks the ICMP flow {live[-1].get('flow_id')} between "
                            f"these addresses, which it dropped at {live[-1].get('timestamp')} (before this run)")
    if outcome:
        if outcome.outcome == "reset":
            return None, f"the client was reset ({outcome.detail}) but the firewall logged no drop of the flow"
        if outcome.outcome == "timeout" and events:
            kinds = ", ".join(sorted({str(e.get("event_type")) for _, e in events}))
            return None, (f"no answer ({outcome.detail}), yet the firewall logged the flow ({kinds}) without "
                          "dropping it: the answer was lost after the firewall")
        if outcome.outcome == "timeout":
            return None, (f"no answer ({outcome.detail}) and no record of the flow in the firewall's logs: "
                          "see `nfwlab status` (is every engine running?)")
        return None, f"the request could not be made: {outcome.detail}"
    return None, "waiting"


def compare(p: Probe, seen: Seen, no_record: str = "") -> tuple[str, ...]:
    """One sentence per expectation of the case that `seen` does not meet; `no_record` says why the flow has
    no record yet, when its logged source is missing."""
    c, out = p.case, []
    if seen.verdict != c.expect:
        out.append(f"expected {c.expect}, saw {seen.verdict} ({seen.evidence})")
    if c.alert and c.alert.absent and seen.alerts:
        out.append(f"expected no alert, saw {', '.join(f'{s} {m!r}' for s, m in seen.alerts)}")
    elif c.alert and not c.alert.absent:
        match = [a for a in seen.alerts if (c.alert.sid is None or a[0] == c.alert.sid) and (
            c.alert.message is None or a[1] == c.alert.message)]
        if not match:
            shown = ", ".join(f"{s} {m!r}" for s, m in seen.alerts) or "no alert"
            out.append(f"expected {c.alert.describe()}, saw {shown}")
    if p.expected_source is not None and seen.logged_source != str(p.expected_source):
        named = "" if c.logged_source == str(p.expected_source) else f" ({c.logged_source})"
        logged = seen.logged_source or "no record of the flow" + (f" ({no_record})" if no_record else "")
        out.append(f"expected the firewall to log the source {p.expected_source}{named}, it logged {logged}")
    if c.availability_zone and seen.availability_zone != c.availability_zone:
        out.append(f"expected the endpoint in {c.availability_zone} to log it, saw "
                   f"{seen.availability_zone or 'no record'}")
    return tuple(out)


# ------------------------------------------------------------------- running
@dataclass
class _Prober:
    server: str
    probes: list[Probe]
    container_id: str = ""
    pid: int = 0
    done: bool = False
    error: str = ""


class Runner:
    """Runs probes in a running lab (see the module docstring)."""

    def __init__(self, lab: Any, timeout: float = 10.0, parallel: int = 256):
        self.lab, self.timeout, self.parallel = lab, timeout, parallel

    def _records(self) -> FlowRecords:
        vpc = self.lab.vpc
        logs = self.lab.state.logs_dir
        return FlowRecords({e.name: (logs / e.name / "eve.json", e.availability_zone) for e in vpc.endpoints},
                           logs / "alert.log")

    def run(self, probes: Sequence[Probe], started: float) -> list[CaseResult]:
        ports = PortLedger(self.lab.state_dir / "probe-ports.json").take(len(probes))
        probes = [Probe(p.case, p.index, p.server, p.address, port, p.expected_source)
                  for p, port in zip(probes, ports, strict=True)]
        results: list[CaseResult] = []
        for wave in waves(probes):
            results += self._wave(wave, started)
        return results

    def _wave(self, probes: list[Probe], started: float) -> list[CaseResult]:
        records = self._records()
        records.mark()
        marks = dict(records.offsets)
        events: queue.Queue[tuple[int, Outcome]] = queue.Queue()
        probers = {s: _Prober(s, [p for p in probes if p.server == s]) for s in dict.fromkeys(p.server for p in probes)}
        threads = [threading.Thread(target=self._probe, args=(pr, events), daemon=True) for pr in probers.values()]
        for t in threads:
            t.start()
        outcomes: dict[int, Outcome] = {}
        decided: dict[int, tuple[str | None, str, float]] = {}
        first_block: dict[int, float] = {}
        # The prober runs `parallel` requests at a time, each for up to `timeout` seconds.
        deadline = time.monotonic() + self.timeout * -(-len(probes) // max(1, self.parallel)) + 5.0
        pending = {p.index: p for p in probes}
        logged_deadline: float | None = None
        try:
            while True:
                while not events.empty():
                    index, outcome = events.get_nowait()
                    outcomes[index] = outcome
                records.poll()
                now = time.monotonic()
                for index, p in list(pending.items()):
                    evs = records.by_key.get(p.key(), [])
                    if blocking(evs):
                        first_block.setdefault(index, now)
                    got = outcomes.get(index)
                    earlier = (records.history(p.key(), lambda path: marks.get(path, 0))
                               if p.transport == "ICMP" and got and got.outcome == "timeout" else None)
                    verdict, evidence = decide(p, got, evs, now, first_block.get(index), earlier, records.ended)
                    # Undecided with the client's outcome in: a reset's record may lag it by a moment.
                    final = verdict is not None or (got is not None and (got.outcome != "reset" or now - got.at > 1.0))
                    if final or now > deadline:
                        if now > deadline and not final:
                            evidence = (f"no answer and no record of the flow in the firewall's logs after "
                                        f"{deadline - started:.0f}s")
                        decided[index] = (verdict, evidence, now - started)
                        del pending[index]
                failed = next((pr for pr in probers.values() if pr.error and pr.done), None)
                if failed and pending:
                    raise NodeError(f"the prober in {failed.server} failed: {failed.error}",
                                    f"see `nfwlab --name {self.lab.name} status`")
                if not pending:
                    if not any(self._needs_record(p, decided, records) for p in probes):
                        break
                    logged_deadline = logged_deadline or now + LOGGED_WAIT
                    if now > logged_deadline:
                        break
                time.sleep(0.02)
            time.sleep(SETTLE)
            records.poll()
        finally:
            for pr in probers.values():
                self._stop(pr)
        return [self._result(p, decided[p.index], records) for p in probes]

    @staticmethod
    def _needs_record(p: Probe, decided: dict[int, tuple[str | None, str, float]], records: FlowRecords) -> bool:
        """A decided case that expects a logged source or AZ whose flow the firewall has not logged yet."""
        if not (p.case.logged_source or p.case.availability_zone) or decided[p.index][0] is None:
            return False
        return not records.by_key.get(p.key())

    def _result(self, p: Probe, decision: tuple[str | None, str, float], records: FlowRecords) -> CaseResult:
        verdict, evidence, seconds = decision
        events = records.by_key.get(p.key(), [])
        alert_records = records.alerts.get(p.key(), [])
        source, endpoint = _logged(p, events)
        zone = records.zone(endpoint) if endpoint else None
        if alert_records:
            zone = alert_records[0].get("availability_zone", zone)
        alerts = tuple(dict.fromkeys(
            (int((r["event"].get("alert") or {}).get("signature_id", 0)),
             str((r["event"].get("alert") or {}).get("signature", ""))) for r in alert_records
            if not _hidden(r["event"])))
        flow_id = next((e.get("flow_id") for _, e in events if e.get("flow_id")), None)
        seen = Seen(verdict, evidence, p.server, p.source_port, alerts, source, zone, flow_id, seconds)
        if verdict is None:
            return CaseResult(p.case, seen, (), evidence)
        no_record = ("the firewall writes a passed UDP or ICMP flow's record when the flow times out"
                     if p.transport != "TCP" else "no record of the flow yet")
        return CaseResult(p.case, seen, compare(p, seen, no_record))

    # --------------------------------------------------------- the probers
    def _probe(self, prober: _Prober, events: queue.Queue) -> None:
        docker = self.lab.docker
        try:
            container = self.lab._container(prober.server)
            name = f"run-{time.time_ns()}.json"
            spec = [[p.index, p.case.protocol, str(p.address), p.case.port or 0, p.source_port,
                     p.case.server_name, self.timeout] for p in prober.probes]
            docker.put_files(container.id, PROBE_DIR, {"probe.py": PROBE_SCRIPT.read_bytes(),
                                                       name: json.dumps(spec).encode()})
            prober.container_id = container.id
            for line in docker.exec_lines(container.id, ["python3", f"{PROBE_DIR}/probe.py", f"{PROBE_DIR}/{name}",
                                                         str(self.parallel)]):
                if line.startswith("stderr: "):
                    prober.error = (prober.error + "\n" + line[8:]).strip()[-2000:]
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if "pid" in record:
                    prober.pid = record["pid"]
                elif "id" in record:
                    events.put((record["id"], Outcome(record["outcome"], record["detail"], time.monotonic())))
            docker.exec_in(container.id, ["rm", "-f", f"{PROBE_DIR}/{name}"])
        except Exception as e:  # reported by the runner's loop, in the main thread
            prober.error = prober.error or f"{type(e).__name__}: {e}"
        finally:
            prober.done = True

    def _stop(self, prober: _Prober) -> None:
        """Ends a prober still waiting on requests the firewall dropped (they are decided already)."""
        if not prober.done and prober.pid:
            try:
                self.lab.docker.exec_in(prober.container_id, ["kill", str(prober.pid)])
            except Exception:
                pass


# ---------------------------------------------------------------- whole runs
def batches(cases: Iterable[Case]) -> list[tuple[tuple[Path | None, str | None], list[Case]]]:
    """Cases by the policy and topology they run under, in the order the file first names each pair."""
    out: dict[tuple[Path | None, str | None], list[Case]] = {}
    for c in cases:
        out.setdefault((c.policy, c.topology), []).append(c)
    return list(out.items())


def check_cases(lab: Any, cases: Sequence[Case]) -> None:
    """Everything a run needs, checked before anything is sent: every case fits its topology, every policy
    named loads, and (on a running lab) is of the kind the lab runs and its topology has the lab's VPC."""
    from .nextgen import load_any_policy  # the policy modules are heavy; only runs need them
    running = lab.topology_name is not None
    kinds: dict[str, Path] = {}
    for (policy, topology), batch in batches(cases):
        chosen = lab.resolve_topology(topology) if topology else lab.topology
        if running and topology:
            lab._compatible(chosen)
        plan(batch, chosen.vpc)
        if policy is not None:
            loaded = load_any_policy(policy)
            if running:
                lab._same_kind(loaded)
            kinds.setdefault(loaded.kind, policy)
    if len(kinds) > 1:
        named = ", ".join(f"{k}: {p}" for k, p in kinds.items())
        raise CaseError(f"the cases run under both kinds of policy ({named}), but a lab runs one kind (AWS: a firewall "
                        "\"uses one or the other\")",
                        "put each kind's cases in a file of their own and run them on a lab started with that kind")


def diff_runs(old_policy: str, new_policy: str, old: CaseRun, new: CaseRun) -> CaseDiff:
    """The cases whose verdict, alerts (signature ids) or logged source differ between two runs."""
    before = {(r.case.where, r.case.name): r for r in old.results}
    rows = []
    for r in new.results:
        was = before.get((r.case.where, r.case.name))
        if was is None:
            continue
        a, b = was.seen, r.seen
        pairs = (("verdict", a.verdict, b.verdict),
                 ("alert", sorted(s for s, _ in a.alerts), sorted(s for s, _ in b.alerts)),
                 ("logged_source", a.logged_source, b.logged_source))
        changed = tuple(name for name, x, y in pairs if x != y)
        if changed:
            rows.append(DiffRow(r.case, a, b, changed, r.status == "passed"))
    return CaseDiff(old_policy, new_policy, old, new, tuple(rows))


def run_cases(lab: Any, cases: Sequence[Case], file: str = "", timeout: float = 10.0, parallel: int = 256,
              progress: Callable[[str], None] = lambda _: None) -> CaseRun:
    """Runs cases in a running lab, batch by batch (policy applied and route tables switched live between
    batches), and returns what each one saw. The lab keeps the last batch's policy and route tables."""
    started_epoch, started = time.time(), time.monotonic()
    check_cases(lab, cases)
    results: dict[tuple[str, str], CaseResult] = {}  # by where and name: names repeat across files
    policies, topologies, notes = [], [], []
    runner = Runner(lab, timeout, parallel)
    for (policy, topology), batch in batches(cases):
        if topology:
            lab.switch(topology)
        if policy is not None and Path(str(lab.state.read().policy.get("source", ""))).resolve() != policy.resolve():
            applied = lab.apply_policy(policy)
            notes.append(f"applied {policy} in {applied.seconds:.2f}s")
        policies.append(str(lab.state.read().policy.get("source", "")))
        topologies.append(str(lab.topology_name))
        progress(f"{len(batch)} case(s) under {policies[-1]} in {topologies[-1]}")
        for r in runner.run(plan(batch, lab.vpc), started):
            results[r.case.where, r.case.name] = r
    return CaseRun(file, lab.name, tuple(results[c.where, c.name] for c in cases), time.monotonic() - started,
                   started_epoch, tuple(dict.fromkeys(policies)), tuple(dict.fromkeys(topologies)), tuple(notes))
