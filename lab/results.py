"""Results: what the lab's commands return, as typed records (the CLI prints them, or their dict as JSON)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

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

    def describe(self) -> str:
        if self.status is not None:
            return f"{self.node}: {self.url} -> HTTP {self.status} ({self.seconds:.2f}s)"
        return f"{self.node}: {self.url} -> failed: {self.error or f'curl exit {self.curl_exit}'} ({self.seconds:.2f}s)"

    def as_dict(self) -> dict[str, Any]:
        return {"node": self.node, "url": self.url, "status": self.status, "ok": self.ok,
                "curl_exit": self.curl_exit, "error": self.error, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class DownReport:
    """What `down` removed."""

    name: str
    containers: int
    state_dir: str | None  # the state directory removed, if there was one

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
    nodes: dict[str, str]  # node -> its container's state ("running", "exited", "missing")
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
    """Where the firewall's log placed a flow: the source it saw, the AZ of the endpoint, which log said so."""

    source: str
    availability_zone: str
    log: str


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


__all__ = ["DownReport", "FetchResult", "LiveTrace", "LoggedSource", "PolicyApplied", "Status"]
