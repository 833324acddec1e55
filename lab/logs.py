"""Logs: Suricata's EVE records, and the same records in AWS's alert log envelope.

AWS Network Firewall wraps each EVE record as
{"firewall_name", "availability_zone", "event_timestamp" (epoch seconds as a
string), "event": <the EVE record>}; this module reads eve.json, selects
records and wraps them.

Every log is rotated by size while the lab runs (compose/images/nfwlab_logfile.py
writes and rotates): `x` holds the newest records, `x.1` ... `x.KEEP` the older
parts, and `x.generation` counts the rotations. A position in a log is
generation * GENERATION + the byte offset in that generation's file, so a log
mark stays valid when a rotation renames its file: reading from it reads the
rest of the part it was in, then the newer ones.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .nextgen import DEFAULT_POLICY_SIDS
from .wait import Wait

Record = dict[str, Any]
GENERATION = 1 << 40  # a log position: generation * GENERATION + the byte offset in that generation's file
DEFAULT_LOG_MAX_SIZE = 64 * 1024 * 1024
DEFAULT_LOG_KEEP = 8
MIN_LOG_MAX_SIZE = 4096
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)(i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str | int, option: str = "--log-max-size") -> int:
    """Bytes from 64M, 20k, 1G (powers of 1024) or a number of bytes; 0 means never rotate."""
    m = _SIZE.match(str(text))
    if not m:
        raise ConfigError(f"{option} {text!r} is not a size", "write it like 64M, 512k or 1G (powers of 1024)")
    size = int(m.group(1)) * 1024 ** " kmg".index((m.group(2) or " ").lower())
    if 0 < size < MIN_LOG_MAX_SIZE:
        raise ConfigError(f"{option} {text!r} is below {MIN_LOG_MAX_SIZE // 1024}k",
                          "give at least 4k (or 0: never rotate)")
    return size


@dataclass(frozen=True)
class LogLimits:
    """When a log rotates (its file reaches max_size bytes; 0: never) and how many rotated parts it keeps."""

    max_size: int = DEFAULT_LOG_MAX_SIZE
    keep: int = DEFAULT_LOG_KEEP

    def __post_init__(self) -> None:
        if self.max_size < 0 or 0 < self.max_size < MIN_LOG_MAX_SIZE:
            raise ConfigError(f"log size limit {self.max_size} is below {MIN_LOG_MAX_SIZE} bytes",
                              "give at least 4k (or 0: never rotate)")
        if not 1 <= self.keep <= 1000:
            raise ConfigError(f"--log-keep {self.keep} is not between 1 and 1000", "keep 1 to 1000 rotated parts")

    def environment(self) -> dict[str, str]:
        """What the nodes' log writers read (compose/images/nfwlab_logfile.py)."""
        return {"NFWLAB_LOG_MAX_SIZE": str(self.max_size), "NFWLAB_LOG_KEEP": str(self.keep)}

    def describe(self) -> str:
        if not self.max_size:
            return "never rotated"
        return f"rotated at {human_size(self.max_size)}, {self.keep} rotated part(s) kept"


def human_size(size: int) -> str:
    for unit, factor in (("G", 1 << 30), ("M", 1 << 20), ("k", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size} bytes"


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
    """Positions in the lab's logs at one moment: eve.json (one per endpoint), alert.log, flow.log. A position
    stays valid across rotations (see GENERATION); before the first rotation it is the byte offset."""

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


# The strict-order default actions' alerts ("aws:alert_established action") and a Next Generation policy's
# ("FirewallDefaultAction DROP"): their sids (1 to 4, or one per hook) read like any rule group's.
DEFAULT_ACTION_SIGNATURE = re.compile(r"^(aws:(drop|alert)_(strict|established) action$|FirewallDefaultAction )")
_NAMED = {"tls": "SNI", "http": "Host"}  # the application protocols whose alerts can name the server


def is_default_action(alert: Record) -> bool:
    """Whether an EVE `alert` object is a default action's, not a rule group's: by its signature, or by the sids
    of Suricata 8's built-in default policies (firewall mode)."""
    signature = alert.get("signature") or ""
    return bool(DEFAULT_ACTION_SIGNATURE.match(signature)) or (
        alert.get("gid", 1) == 1 and alert.get("signature_id") in DEFAULT_POLICY_SIDS)


def _server_name(event: Record) -> str:
    """The name the client asked for (TLS SNI, HTTP Host). Suricata adds the application layer's fields to an
    alert only when the alert belongs to a transaction (its record has tx_id): an IP rule's alert, such as the
    strict-order default actions' (`drop ip any any -> any any`), has the flow's app_proto and no name, which
    the line then says instead of a bare '-'."""
    name = (event.get("tls") or {}).get("sni") or (event.get("http") or {}).get("hostname")
    if name:
        return str(name)
    what = _NAMED.get(event.get("app_proto") or "")
    return f"(no {what} logged)" if what else "-"


def _origin(record: Record, event: Record, endpoints: Mapping[str, str] | None) -> str:
    """"; flow_id N; endpoint fw-a (ap-northeast-1a)": what `nfwlab who`/`explain` take, and where it was seen
    (the AWS envelope's AZ, and the endpoint of that AZ when `endpoints` maps AZs to endpoint names)."""
    out = f"; flow_id {event['flow_id']}" if event.get("flow_id") is not None else ""
    zone = record.get("availability_zone") if record is not event else None
    if zone:
        name = (endpoints or {}).get(zone) or record.get("firewall_name") or "?"
        out += f"; endpoint {name} ({zone})"
    return out


def describe(record: Record, endpoints: Mapping[str, str] | None = None) -> str:
    """One line for people (EVE or AWS envelope): time, verdict, 5-tuple, name, [gid:sid] and signature, then the
    flow_id and the endpoint and AZ that logged it. `endpoints`: the endpoint's name for each AZ (a topology
    has one endpoint per AZ; the envelope names the AZ only)."""
    event = record["event"] if "event" in record and "event_type" not in record else record
    where = _origin(record, event, endpoints)
    if event.get("event_type") == "netflow":
        n = event.get("netflow", {})
        return (f"{event.get('timestamp', '?')} flow  {event.get('src_ip')}:{event.get('src_port')} -> "
                f"{event.get('dest_ip')}:{event.get('dest_port')} {event.get('proto', '-')} "
                f"{event.get('app_proto', '-')} pkts={n.get('pkts')} bytes={n.get('bytes')} age={n.get('age')}s"
                + where)
    a = event.get("alert", {})
    verdict = (event.get("verdict") or {}).get("action", a.get("action", "-"))
    signature = a.get("signature", event.get("event_type"))
    if a and is_default_action(a):
        signature = f"{signature} (default action)"
    rule = f"[{a.get('gid', 1)}:{a['signature_id']}]" if "signature_id" in a else "[-]"
    return (f"{event.get('timestamp', '?')} {verdict:<5} {event.get('src_ip')}:{event.get('src_port')} -> "
            f"{event.get('dest_ip')}:{event.get('dest_port')} {event.get('app_proto', '-')} {_server_name(event)} "
            f"{rule} {signature}{where}")


Offsets = tuple[int, ...]  # a position in each file of a log


def part_path(path: Path, k: int) -> Path:
    """A log's k-th rotated part (k=0: the file itself)."""
    return path if k == 0 else path.with_name(f"{path.name}.{k}")


def generation_path(path: Path) -> Path:
    """The file that counts a log's rotations, and the lock its writers and readers share."""
    return path.with_name(f"{path.name}.generation")


def _generation(fd: int) -> int:
    data = os.pread(fd, 32, 0).strip()
    return int(data) if data.isdigit() else 0


def _open_parts(path: Path, first: int | None, stack: ExitStack) -> list[tuple[int, Any]]:
    """The log's files of generation `first` and later that exist, opened at one moment (under the rotation
    lock, shared), oldest first, each with its generation. The log's own file may be missing right after a
    rotation until its writer reopens it (Suricata after SIGHUP); until then the part before it is not complete,
    so reading stops there. `first` None: the newest file only."""
    try:
        lock = os.open(generation_path(path), os.O_RDONLY)
    except FileNotFoundError:
        lock = -1  # never rotated (or the log is from before rotation): generation 0 is the file itself
    try:
        if lock >= 0:
            fcntl.flock(lock, fcntl.LOCK_SH)
        current = _generation(lock) if lock >= 0 else 0
        parts = []
        for k in range(current - first + 1 if first is not None else min(current, 1) + 1):
            try:
                f = stack.enter_context(open(part_path(path, k), "rb"))  # noqa: SIM115 (the stack closes it)
                parts.append((current - k, f))
            except FileNotFoundError:
                if k > 0:
                    break  # older parts are no longer kept
            if first is None and parts:
                break
        return parts[::-1]
    finally:
        if lock >= 0:
            os.close(lock)


def _parse(data: bytes) -> list[Record]:
    records = []
    for line in data.splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def read_records(path: Path, position: int) -> tuple[list[Record], int]:
    """The complete JSON-lines records of a log after `position` (across its rotated parts), and the position
    after the last one. Parts already dropped (beyond the kept count) are skipped."""
    generation, offset = divmod(position, GENERATION)
    records: list[Record] = []
    with ExitStack() as stack:
        for g, f in _open_parts(path, generation, stack):
            start = offset if g == generation else 0
            f.seek(start)
            data = f.read()
            end = data.rfind(b"\n") + 1  # a record still being written has no newline yet
            records += _parse(data[:end])
            position = g * GENERATION + start + end
    return records, position


def read_records_before(path: Path, position: int, containing: bytes = b"") -> list[Record]:
    """The complete records of a log written before `position`, from the oldest part still kept; with
    `containing`, only the lines that hold those bytes are parsed."""
    generation, offset = divmod(position, GENERATION)
    records: list[Record] = []
    with ExitStack() as stack:
        for g, f in _open_parts(path, 0, stack):
            if g > generation:
                break
            data = f.read(offset) if g == generation else f.read()
            lines = data[:data.rfind(b"\n") + 1].splitlines()
            records += _parse(b"\n".join(line for line in lines if containing in line))
    return records


def file_size(path: Path) -> int:
    """The position of a log's end (0 before it exists): the position of its next record."""
    with ExitStack() as stack:
        parts = _open_parts(path, None, stack)
        if not parts:
            return 0
        g, f = parts[-1]
        return g * GENERATION + os.fstat(f.fileno()).st_size


def log_parts(path: Path) -> list[Path]:
    """A log's files that exist, oldest first (its rotated parts, then the log itself)."""
    out = [path] if path.exists() else []
    k = 1
    while part_path(path, k).exists():
        out.append(part_path(path, k))
        k += 1
    return out[::-1]


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
