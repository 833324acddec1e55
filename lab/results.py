"""Results: what the lab's commands return, as typed records (the CLI prints them, or their dict as JSON)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .cases import Case
from .trace import Trace


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

    @property
    def failure(self) -> str | None:
        """How the request failed, from curl's exit code (curl(1), EXIT CODES): None when an HTTP answer came
        back; "timeout" when nothing did (28, as a drop leaves the client); "reset" when the connection was
        refused or reset (7 at the handshake, which an ICMP unreachable gives too; 35 with "reset" during the
        TLS handshake; 52 closed with no answer; 56 after the request: as a reject leaves it); "error" when the
        request could not be made at all (6 a name not resolved, 3 a bad URL, a TLS error other than a reset,
        ...), which no firewall causes. Only the firewall's own record of the flow says the firewall did it: a
        service that is not there refuses too."""
        if self.status is not None:
            return None
        if self.curl_exit == 28:
            return "timeout"
        if self.curl_exit in (7, 52, 56) or (self.curl_exit == 35 and "reset" in self.error.lower()):
            return "reset"
        return "error"

    def describe(self) -> str:
        if self.status is not None:
            return f"{self.node}: {self.url} -> HTTP {self.status} ({self.seconds:.2f}s)"
        return f"{self.node}: {self.url} -> failed: {self.error or f'curl exit {self.curl_exit}'} ({self.seconds:.2f}s)"

    def as_dict(self) -> dict[str, Any]:
        return {"node": self.node, "url": self.url, "status": self.status, "ok": self.ok,
                "curl_exit": self.curl_exit, "failure": self.failure, "error": self.error,
                "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class DownReport:
    """What `down` removed, and where it kept the lab's logs."""

    name: str
    containers: int
    state_dir: str | None  # the state directory removed, if there was one
    archive: str | None = None  # the folder the logs, rules, topology and lab.json went to (None: purged, or none)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PolicyApplied:
    """A policy the running firewall now enforces, and what it took."""

    policy: str
    source: str
    rules: int
    home_net: str
    engine_restarted: bool  # engine options changed: the engine restarted in its node
    check_seconds: float
    apply_seconds: float
    seconds: float
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "warnings": list(self.warnings), "notes": list(self.notes)}


@dataclass(frozen=True)
class Status:
    """A lab's nodes, topology, firewall engines, policy and files."""

    name: str
    topology: str | None  # the running topology's name; None when the lab is down
    topology_file: str | None
    phase: str
    nodes: dict[str, str]  # node -> its state ("running", "exited", "missing", ...: Lab.health)
    firewall_engines: dict[str, str]  # endpoint -> "running" or why nothing crosses it
    state_dir: str
    eve_json: list[str]
    alert_log: str
    flow_log: str
    home_net: str | None
    domains: list[str]
    policy: dict[str, Any]
    firewall_name: str
    availability_zones: dict[str, str]
    flow_bypass: bool = True  # as the lab was started (`up --no-flow-bypass` turns it off)
    flow_bypass_stepped_aside: bool = False  # on, but off while the policy's fragment action needs fragments
    log_max_size: int | None = None  # bytes at which each log rotates (0: never), as the lab was started
    log_keep: int | None = None  # rotated parts each log keeps
    degraded: bool = False  # the lab is up, but a node of it is not running (`nfwlab repair` brings it back)
    down_nodes: list[str] = field(default_factory=list)  # those nodes, as `nodes` names their states

    @property
    def up(self) -> bool:
        return self.topology is not None

    @property
    def firewall_engine(self) -> str:
        """"running" when every endpoint's engine runs, else what is down."""
        down = [f"{k}: {v}" for k, v in self.firewall_engines.items() if v != "running"]
        return "running" if not down else "; ".join(down)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "firewall_engine": self.firewall_engine}


@dataclass(frozen=True)
class LoggedSource:
    """Where the firewall's log placed a flow: the source it saw, the AZ of the endpoint, which log said so, and
    the flow's source port (the request's own, which is how its record was told from any other's)."""

    source: str
    availability_zone: str
    log: str
    source_port: int | None = None


@dataclass(frozen=True)
class LiveTrace:
    """A static trace, the real request, and what the firewall logged of it."""

    static: Trace
    request: FetchResult
    firewall_logged: LoggedSource | None
    agrees: bool

    def as_dict(self, trace_json: Any) -> dict[str, Any]:
        return {"static": trace_json(self.static), "request": self.request.describe(),
                "firewall_logged": asdict(self.firewall_logged) if self.firewall_logged else None,
                "agrees": self.agrees}


@dataclass(frozen=True)
class Seen:
    """What happened to a case's request, from the firewall's own records and the client's answer."""

    verdict: str | None  # "pass", "drop", "reject"; None when nothing decided it
    evidence: str  # what decided it: "answer: HTTP 200", "drop record of flow 123", "RST and reject alert 5"
    server: str = ""  # the node that sent the request
    source_port: int = 0
    alerts: tuple[tuple[int, str], ...] = ()  # (sid, signature) of the ALERT log's records of the flow
    logged_source: str | None = None  # src_ip of the firewall's first record of the flow
    availability_zone: str | None = None
    flow_id: int | None = None
    seconds: float = 0.0  # from the run's start to the decision

    def describe(self) -> str:
        """"drop, alert 1 "...", logged from 10.0.13.92 in ap-northeast-1a" (or why nothing was decided)."""
        if self.verdict is None:
            return f"undecided ({self.evidence})"
        parts = [self.verdict]
        parts += [f'alert {sid} "{msg}"' for sid, msg in self.alerts] or ["no alert"]
        if self.logged_source:
            parts.append(f"logged from {self.logged_source}")
        if self.availability_zone:
            parts.append(f"in {self.availability_zone}")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "alerts": [{"sid": s, "message": m} for s, m in self.alerts],
                "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class CaseResult:
    """A case, what was seen, and how that differs from what the case expects."""

    case: Case
    seen: Seen
    problems: tuple[str, ...] = ()  # one sentence per expectation not met
    error: str | None = None  # why the case could not be decided (the lab failed it, not the policy)

    @property
    def status(self) -> str:
        """"passed", "failed" or "error"."""
        return "error" if self.error else "failed" if self.problems else "passed"

    def as_dict(self) -> dict[str, Any]:
        c = self.case
        return {"name": c.name, "group": c.group, "tags": list(c.tags), "status": self.status,
                "request": f"{c.source} -> {c.request()}", "expected": c.expectation(),
                "seen": self.seen.as_dict(), "problems": list(self.problems), "error": self.error,
                "where": c.where}


@dataclass(frozen=True)
class CaseRun:
    """A run of a case file against a lab."""

    file: str
    lab: str
    results: tuple[CaseResult, ...]
    seconds: float
    started: float  # epoch seconds
    policies: tuple[str, ...] = ()  # the policy files the cases ran under
    topologies: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def exit_code(self) -> int:
        """0 every case passed, 1 a case failed, 6 a case could not be decided (and none failed)."""
        return 1 if self.count("failed") else 6 if self.count("error") else 0

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "lab": self.lab, "seconds": round(self.seconds, 3), "started": self.started,
                "policies": list(self.policies), "topologies": list(self.topologies), "notes": list(self.notes),
                "passed": self.count("passed"), "failed": self.count("failed"), "errors": self.count("error"),
                "results": [r.as_dict() for r in self.results]}


@dataclass(frozen=True)
class DiffRow:
    """A case whose verdict, signature or logged source differs between two policies."""

    case: Case
    old: Seen
    new: Seen
    changed: tuple[str, ...]  # which of "verdict", "alert", "logged_source" changed
    expected: bool  # the new result meets the case's expectation


@dataclass(frozen=True)
class CaseDiff:
    old_policy: str
    new_policy: str
    old: CaseRun
    new: CaseRun
    rows: tuple[DiffRow, ...]

    @property
    def exit_code(self) -> int:
        """0 nothing changed that the cases did not expect, 1 something did, 6 a case could not be decided."""
        if any(not r.expected for r in self.rows):
            return 1
        return 6 if self.old.count("error") or self.new.count("error") else 0


__all__ = ["CaseDiff", "CaseResult", "CaseRun", "DiffRow", "DownReport", "FetchResult", "LiveTrace", "LoggedSource",
           "PolicyApplied", "Seen", "Status"]
