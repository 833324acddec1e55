"""Logs: Suricata's EVE records, and the same records in AWS's alert log envelope.

AWS Network Firewall wraps each EVE record as
{"firewall_name", "availability_zone", "event_timestamp" (epoch seconds as a
string), "event": <the EVE record>}; this module reads eve.json, selects
records and wraps them.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .wait import Wait

Record = dict[str, Any]


def event_time(event: Record) -> float:
    """Seconds since the epoch of an EVE record's timestamp (2025-01-23T14:55:04.080189+0000)."""
    return datetime.strptime(event["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def event_epoch(event: Record) -> int:
    """Whole seconds since the epoch of an EVE record's timestamp (AWS's event_timestamp)."""
    return int(event_time(event))


def aws_envelope(event: Record, firewall_name: str, availability_zone: str) -> Record:
    """An EVE record as AWS Network Firewall's ALERT/FLOW log delivers it."""
    return {"firewall_name": firewall_name, "availability_zone": availability_zone,
            "event_timestamp": str(event_epoch(event)), "event": event}


@dataclass(frozen=True)
class LogMark:
    """Byte offsets in the lab's logs at one moment: eve.json (one per endpoint), alert.log, flow.log."""

    eve: tuple[int, ...] = ()
    alert: tuple[int, ...] = ()
    flow: tuple[int, ...] = ()


def event_type(record: Record) -> str | None:
    """The EVE event type of a record, bare or in AWS's envelope."""
    if "event_type" in record:
        return record["event_type"]
    event = record.get("event")
    return event.get("event_type") if isinstance(event, dict) else None


def lookup(record: Record, dotted: str) -> Any:
    """The value at a dotted path ("alert.signature"), or KeyError."""
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    return value


def matches(record: Record, criteria: dict[str, Any]) -> bool:
    """True when every dotted path in `criteria` exists with the given value."""
    for path, want in criteria.items():
        try:
            if lookup(record, path) != want:
                return False
        except KeyError:
            return False
    return True


def describe(record: Record) -> str:
    """One line for people: time, verdict, 5-tuple, name and signature (EVE or AWS envelope)."""
    if "event" in record and "event_type" not in record:
        record = record["event"]
    if record.get("event_type") == "netflow":
        n = record.get("netflow", {})
        return (f"{record.get('timestamp', '?')} flow  {record.get('src_ip')}:{record.get('src_port')} -> "
                f"{record.get('dest_ip')}:{record.get('dest_port')} {record.get('proto', '-')} "
                f"{record.get('app_proto', '-')} pkts={n.get('pkts')} bytes={n.get('bytes')} age={n.get('age')}s")
    a = record.get("alert", {})
    name = (record.get("tls") or {}).get("sni") or (record.get("http") or {}).get("hostname") or "-"
    verdict = (record.get("verdict") or {}).get("action", a.get("action", "-"))
    return (f"{record.get('timestamp', '?')} {verdict:<5} {record.get('src_ip')}:{record.get('src_port')} -> "
            f"{record.get('dest_ip')}:{record.get('dest_port')} {record.get('app_proto', '-')} {name} "
            f"[{a.get('signature_id', '-')}] {a.get('signature', record.get('event_type'))}")


Offsets = tuple[int, ...]  # a position in each file of a log


def read_records(path: Path, offset: int) -> tuple[list[Record], int]:
    """The complete JSON-lines records of a file after `offset`, and the offset after the last one."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1  # a record still being written has no newline yet
    records = []
    for line in data[:end].splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records, offset + end


def file_size(path: Path) -> int:
    """A log file's size (0 before it exists): the offset of the next record."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class EveLog:
    """Reads a JSON-lines log (Suricata's eve.json, AWS's alert.log / flow.log) from a remembered
    position; the log may be several files (one eve.json per firewall endpoint)."""

    def __init__(self, *paths: str | Path):
        self.paths = tuple(Path(p) for p in paths)

    @property
    def path(self) -> Path:
        return self.paths[0]

    def _start(self, since: Offsets | int | None) -> list[int]:
        if since is None:
            return [0] * len(self.paths)
        if isinstance(since, int):
            return [since] + [0] * (len(self.paths) - 1)
        return list(since) + [0] * (len(self.paths) - len(since))

    def read(self, since: Offsets | int | None = None) -> tuple[list[Record], Offsets]:
        """Complete records after `since` (all files), and the position after the last ones."""
        records: list[Record] = []
        offsets = []
        for path, offset in zip(self.paths, self._start(since), strict=False):
            recs, end = read_records(path, offset)
            records += recs
            offsets.append(end)
        if len(self.paths) > 1:
            records.sort(key=lambda r: r.get("timestamp") or r.get("event", {}).get("timestamp", ""))
        return records, tuple(offsets)

    def size(self) -> Offsets:
        return tuple(file_size(p) for p in self.paths)

    def records(self, kind: str | None = None, since: Offsets | int | None = None) -> list[Record]:
        recs, _ = self.read(since)
        return [r for r in recs if kind is None or event_type(r) == kind]

    def follow(self, since: Offsets | int | None = None, poll: float = 0.05,
               stop: Callable[[], bool] = lambda: False) -> Iterator[Record]:
        """Yields records as Suricata writes them (it flushes each record)."""
        offset = since
        while not stop():
            recs, offset = self.read(offset)
            yield from recs
            if not recs:
                time.sleep(poll)

    def wait_for(self, criteria: dict[str, Any], since: Offsets | int | None = None, timeout: float = 10.0,
                 kind: str = "alert", count: int = 1) -> list[Record]:
        """Waits until `count` records match `criteria` (dotted paths); returns them.

        On timeout raises WaitTimeout listing what was seen instead."""
        found: list[Record] = []
        seen: list[Record] = []
        offset = since

        def enough() -> bool:
            nonlocal offset
            recs, offset = self.read(offset)
            for r in recs:
                if event_type(r) == kind:
                    seen.append(r)
                    if matches(r, criteria):
                        found.append(r)
            return len(found) >= count

        def report() -> str:
            shown = "\n".join(describe(r) for r in seen[-10:]) or "(none)"
            return f"got {len(found)}; the last {kind} records since the request ({len(seen)} in all):\n{shown}"
        want = ", ".join(f"{k}={v!r}" for k, v in criteria.items())
        Wait(f"{count} {kind} record(s) with {want} in {self.path.name}", timeout, interval=0.02,
             hint=f"check the firewall's log {self.path} and `nfwlab status`").until(enough, report)
        return found


class LabLogs:
    """A lab's logs: every endpoint's eve.json, and the ALERT, FLOW and NAT translation logs."""

    def __init__(self, logs_dir: Path, endpoints: list[str]):
        self.eve = EveLog(*(logs_dir / name / "eve.json" for name in endpoints))
        self.alert_log = EveLog(logs_dir / "alert.log")
        self.flow_log = EveLog(logs_dir / "flow.log")
        self.nat_log = EveLog(logs_dir / "nat-translations.log")

    def mark(self) -> LogMark:
        """Positions in the logs now: pass it as `since` to see only later records."""
        return LogMark(self.eve.size(), self.alert_log.size(), self.flow_log.size())

    @staticmethod
    def since(since: LogMark | Offsets | int | None, which: str) -> Offsets | int | None:
        """The position in one log (eve, alert or flow) of a mark; a bare offset counts for eve.json only."""
        if since is None:
            return None
        if isinstance(since, LogMark):
            return getattr(since, which)
        return since if which == "eve" else None

    def _log(self, aws: bool, aws_log: str) -> tuple[EveLog, str]:
        return (getattr(self, f"{aws_log}_log"), aws_log) if aws else (self.eve, "eve")

    def alerts(self, since: LogMark | Offsets | int | None = None, aws: bool = False) -> list[Record]:
        log, which = self._log(aws, "alert")
        return log.records("alert", self.since(since, which))

    def flows(self, since: LogMark | Offsets | int | None = None, aws: bool = True) -> list[Record]:
        log, which = self._log(aws, "flow")
        return log.records("netflow", self.since(since, which))

    def follow_alerts(self, since: LogMark | Offsets | int | None = None, aws: bool = False) -> Iterator[Record]:
        log, which = self._log(aws, "alert")
        for r in log.follow(self.since(since if since is not None else self.mark(), which)):
            if event_type(r) == "alert":
                yield r

    def wait_for_alert(self, criteria: dict[str, Any], since: LogMark | Offsets | int | None = None,
                       timeout: float = 10.0, count: int = 1, aws: bool = False) -> Record:
        log, which = self._log(aws, "alert")
        return log.wait_for(criteria, since=self.since(since, which), timeout=timeout, count=count)[0]

    def wait_for_flows(self, criteria: dict[str, Any], since: LogMark | Offsets | int | None = None,
                       timeout: float = 15.0, count: int = 1, aws: bool = True) -> list[Record]:
        log, which = self._log(aws, "flow")
        return log.wait_for(criteria, since=self.since(since, which), timeout=timeout, count=count, kind="netflow")

    def wait_for_drop(self, criteria: dict[str, Any], since: LogMark | Offsets | int | None = None,
                      timeout: float = 10.0) -> Record:
        """Waits for the engine's record of a dropped flow (EVE `drop`, the flow's first dropped packet);
        it comes for silent drops too. eve.json only: AWS's logs have no such record."""
        log, which = self._log(False, "alert")
        return log.wait_for(criteria, since=self.since(since, which), timeout=timeout, kind="drop")[0]
