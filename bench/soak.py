#!/usr/bin/env python3
"""`make soak`: a bounded long run. Mixed allowed and blocked traffic for N minutes; what grows, and every
blocked request against its alert.

    .venv/bin/python bench/soak.py [--minutes 30] [--name soak] [--topology nat-first]
                                   [--policy policies/deny-domains.json] [--rate 3] [--out bench/results/soak.json]

Its own lab (`--name`, default `soak`), under a policy with a deny list. Every server of the topology runs one
shell loop (one `docker exec` for the whole run) that starts a curl every `servers / rate` seconds, each from a
source port of its own (`--local-port`, below the servers' ephemeral range, no port used twice in a run
shorter than two hours at 3 requests/s): two allowed requests to one blocked, HTTPS and HTTP, over every name
the lab's internet serves. Each request is known by (the source address the firewall sees: the server or its
NAT gateway, source port, destination address and port), so each alert in eve.json is matched to the blocked
request that made it, or reported unmatched; a blocked request without an alert is listed with curl's exit
code and the firewall's other records of its flow.

Sampled at the start, every minute and at the end, from the host (/proc, the cgroup, nsenter): Suricata's
memory and open files, the firewall supervisor's and NAT translation log's, the web server's in the lab's
internet; conntrack entries in every firewall endpoint, NAT gateway and the internet gateway; Suricata's
own flow and memory counters; the log files' sizes; each container's memory. A series is bounded when the
maximum of its last third is within its tolerance (TOLERANCES) of the maximum of its first third, or when its
slope after the first third, over the whole run, stays within the same tolerance. Logs are append-only by
design: they pass when they grow in step with the traffic.

Exit code 1 when a series grows without bound, the alerts are not exactly the blocked requests, or the run
stopped early (the lab or Docker went away: the figures so far are written to soak.partial.json).
The lab is taken down at the end, also on Ctrl-C.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lab import Lab  # noqa: E402
from lab import docker as dk  # noqa: E402
from lab.errors import LabError, WaitTimeout  # noqa: E402
from lab.lab import DEFAULT_POLICY  # noqa: E402
from lab.logs import event_time, event_type  # noqa: E402
from lab.rules import DomainList  # noqa: E402
from lab.wait import Wait  # noqa: E402

PORT_FIRST, PORT_END = 10000, 32768  # below the servers' ephemeral range (32768-60999): no kernel-chosen port
SCHEME_PORTS = {"https": 443, "http": 80}
SCHEME_TYPES = {"https": "TLS_SNI", "http": "HTTP_HOST"}
MiB = 1 << 20
# (relative, absolute, why): a series passes when last-third max <= first-third max * (1 + relative) + absolute.
TOLERANCES: dict[str, tuple[float, float, str]] = {
    "memory": (0.10, 8.0, "MiB. Memory is taken in steps (a new malloc arena or Suricata pool chunk is 1-8 MiB) "
               "and a server's container holds 0-3 curls at the moment of a sample: 10 % + 8 MiB covers one "
               "step and the curls; a leak of 2 KB per request (about 10 MiB in 30 minutes) would pass, "
               "one of 5 KB would not."),
    "files": (0.0, 2.0, "open files. A process may hold a file or socket for a moment (the supervisor "
              "re-reading eve.json, conntrack's socket, a counter query): 2 more than at the start are "
              "allowed, a leak of one per request is not."),
    "conntrack": (0.25, 20.0, "entries. At a steady rate the count is the flows alive: each blocked flow "
                  "waits out the 350 s TCP idle timeout, each closed one 120 s (TIME_WAIT): the count "
                  "climbs for about 6 minutes, then stays. A sample falls on a random phase of the request "
                  "mix, and other load stretches curl's timings: 25 % + 20."),
    "flows": (0.25, 20.0, "flows. Suricata's active flows follow the same timeouts as conntrack's entries."),
}
# Logs: bytes per request in the last third at most 25 % + 50 bytes above the middle third's.
LOG_TOLERANCE = (0.25, 50.0, "bytes per request. The request mix repeats every few seconds, so its records "
                 "are the same size on average; what varies is when a flow's FLOW and netflow records come "
                 "(when it ends or times out, up to 350 s later).")
SETTLE_S = 15.0  # after the last request ends, how long late alerts are waited for (P3: p95 18 ms)


# ------------------------------------------------------------------ the traffic
@dataclass(frozen=True)
class Target:
    """One URL of the mix, and whether the policy's deny lists block it."""

    url: str
    domain: str
    port: int
    blocked: bool


def deny_lists(lab: Lab) -> list[DomainList]:
    """The deny lists of the lab's (Classic) policy; the soak needs at least one."""
    groups = getattr(lab.policy, "groups", ())
    found = [g.group.domain_list for g in groups
             if g.group.domain_list is not None and g.group.domain_list.generated_rules_type == "DENYLIST"
             and g.override is None]
    if not found:
        raise SystemExit(f"policy {lab.policy.source} has no domain deny list (RulesSourceList DENYLIST): "
                         "the soak needs blocked names; use policies/deny-domains.json")
    return found


def denied(domain: str, scheme: str, lists: list[DomainList]) -> bool:
    """Whether a deny list names `domain` for `scheme` (a leading dot: the domain and all its subdomains)."""
    for dl in lists:
        if SCHEME_TYPES[scheme] not in dl.target_types:
            continue
        for t in dl.targets:
            if domain == t or (t.startswith(".") and (domain == t[1:] or domain.endswith(t))):
                return True
    return False


def mix(domains: list[str], lists: list[DomainList]) -> list[Target]:
    """The cycle of URLs each server walks: two allowed requests, then a blocked one, HTTPS and HTTP over
    every name the lab's internet serves."""
    allowed: list[Target] = []
    blocked: list[Target] = []
    for d in domains:
        for scheme in ("https", "http"):
            t = Target(f"{scheme}://{d}/", d, SCHEME_PORTS[scheme], denied(d, scheme, lists))
            (blocked if t.blocked else allowed).append(t)
    if not blocked or not allowed:
        raise SystemExit(f"the lab's names {domains} give {len(allowed)} allowed and {len(blocked)} blocked "
                         "URLs under the policy: the soak needs both")
    cycle = []
    for j in range(max(len(allowed), 2 * len(blocked))):
        cycle.append(allowed[j % len(allowed)])
        if j % 2 == 1:
            cycle.append(blocked[(j // 2) % len(blocked)])
    return cycle


def port_span(servers: int) -> int:
    """Source ports per run: a multiple of the server count, so servers never share a port."""
    return (PORT_END - PORT_FIRST) // servers * servers


def source_port(k: int, servers: int, i: int) -> int:
    """The source port of server k's request i."""
    return PORT_FIRST + (k + servers * i) % port_span(servers)


def traffic_script(k: int, servers: int, cycle: list[Target], interval: float, seconds: int,
                   max_time: float) -> str:
    """Server k's loop: a curl every `interval` seconds in the background, for `seconds`; one line per
    request as it ends: R index port curl-exit http-code local-port start end."""
    cases = "\n".join(f"    {j}) url='{t.url}';;" for j, t in enumerate(cycle))
    return f"""
stop=$(( $(date +%s) + {seconds} )); n=0
while [ "$(date +%s)" -lt "$stop" ]; do
  i=$n; n=$((n + 1))
  port=$(( {PORT_FIRST} + ({k} + {servers} * i) % {port_span(servers)} ))
  case $(( (i + {k}) % {len(cycle)} )) in
{cases}
  esac
  ( t0=$(date +%s.%N)
    out=$(curl --local-port "$port" -sS -k -o /dev/null -w '%{{http_code}} %{{local_port}}' \\
          --max-time {max_time:g} "$url" 2>/dev/null)
    code=$?
    echo "R $i $port $code ${{out:-000 0}} $t0 $(date +%s.%N)" ) &
  sleep {interval:.3f}
done
wait
echo "END $n"
"""


@dataclass
class Request:
    server: str
    index: int
    port: int
    target: Target
    exit_code: int
    http: int
    local_port: int
    started: float
    ended: float
    seen_as: str = ""  # the source address the firewall sees
    dest_ip: str = ""

    @property
    def key(self) -> tuple[str, int, str, int]:
        return (self.seen_as, self.port, self.dest_ip, self.target.port)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and 200 <= self.http < 400

    def brief(self) -> dict[str, Any]:
        return {"server": self.server, "port": self.port, "url": self.target.url, "curl_exit": self.exit_code,
                "http": self.http, "local_port": self.local_port, "seen_as": self.seen_as,
                "started": time.strftime("%H:%M:%S", time.localtime(self.started))}


class Driver(threading.Thread):
    """One server's loop (one `docker exec` for the whole run) and its requests as they end."""

    def __init__(self, lab: Lab, server: str, k: int, cycle: list[Target], interval: float, seconds: int,
                 max_time: float, sources: dict[tuple[str, str], tuple[str, str]]):
        super().__init__(name=f"soak-{server}", daemon=True)
        self.lab, self.server, self.cycle = lab, server, cycle
        self.script = traffic_script(k, len(lab.vpc.servers), cycle, interval, seconds, max_time)
        self.sources = sources  # (server, url) -> (address the firewall sees, destination address)
        self.k = k
        self.requests: list[Request] = []
        self.started_count: int | None = None
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def run(self) -> None:
        cid = dk.containers(self.lab.name)[self.server].id
        try:
            for line in dk.exec_lines(cid, ["sh", "-c", self.script]):
                self._line(line)
        except Exception as e:  # the lab went down under it (Ctrl-C)
            self.errors.append(f"{self.server}: {e}")

    def _line(self, line: str) -> None:
        parts = line.split()
        if parts[:1] == ["END"]:
            self.started_count = int(parts[1])
        elif parts[:1] == ["R"] and len(parts) == 8:
            i, port, code, http, local = (int(p) for p in parts[1:6])
            target = self.cycle[(i + self.k) % len(self.cycle)]
            seen, dest = self.sources[(self.server, target.url)]
            with self.lock:
                self.requests.append(Request(self.server, i, port, target, code, http, local, float(parts[6]),
                                             float(parts[7]), seen, dest))
        else:
            self.errors.append(f"{self.server}: unexpected output {line!r}")

    def ended(self) -> list[Request]:
        with self.lock:
            return list(self.requests)


# ------------------------------------------------------------------ the alerts
def record_key(r: dict[str, Any]) -> tuple[str, int, str, int]:
    return (str(r.get("src_ip")), int(r.get("src_port") or 0), str(r.get("dest_ip")), int(r.get("dest_port") or 0))


class Alerts:
    """The firewall's records read as they are written: every alert of eve.json, the ALERT log's count, and
    the kinds of the other records of each flow (the evidence for a blocked request without an alert)."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.eve_at = lab.eve.size()
        self.aws_at = lab.alert_log.size()
        self.alerts: list[dict[str, Any]] = []
        self.aws_alerts = 0
        self.evidence: dict[tuple[str, int, str, int], list[str]] = {}

    def read(self) -> None:
        records, self.eve_at = self.lab.eve.read(self.eve_at)
        for r in records:
            kind = event_type(r)
            if kind == "alert":
                self.alerts.append(r)
            elif kind in ("drop", "flow", "tls", "http", "anomaly"):
                extra = ""
                if kind == "flow":
                    f = r.get("flow") or {}
                    extra = f"(state {f.get('state')}, reason {f.get('reason')}, alerted {f.get('alerted')})"
                self.evidence.setdefault(record_key(r), []).append(kind + extra)
        aws, self.aws_at = self.lab.alert_log.read(self.aws_at)
        self.aws_alerts += sum(1 for r in aws if (r.get("event") or {}).get("event_type") == "alert")


def match(blocked: list[Request], alerts: list[dict[str, Any]]) -> tuple[list[tuple[Request, dict]],
                                                                      list[dict[str, Any]], list[Request]]:
    """Each alert to the blocked request it came from, by (source the firewall sees, source port, destination,
    destination port), the earliest one not yet matched that started before it: (matched, unmatched alerts,
    blocked requests without an alert)."""
    waiting: dict[tuple[str, int, str, int], list[Request]] = {}
    for req in sorted(blocked, key=lambda r: r.started):
        waiting.setdefault(req.key, []).append(req)
    matched, unmatched = [], []
    for a in sorted(alerts, key=event_time):
        queue = waiting.get(record_key(a), [])
        if queue and queue[0].started - 1.0 <= event_time(a):
            matched.append((queue.pop(0), a))
        else:
            unmatched.append(a)
    missing = [r for q in waiting.values() for r in q]
    return matched, unmatched, sorted(missing, key=lambda r: r.started)


def alert_brief(a: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": a.get("timestamp"), "src": f"{a.get('src_ip')}:{a.get('src_port')}",
            "dest": f"{a.get('dest_ip')}:{a.get('dest_port')}", "sid": (a.get("alert") or {}).get("signature_id"),
            "name": (a.get("tls") or {}).get("sni") or (a.get("http") or {}).get("hostname"),
            "flow_id": a.get("flow_id")}


# ------------------------------------------------------------------ the samples
def proc_status(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def kib(value: str) -> float:
    return int(value.split()[0]) / 1024  # "46544 kB" -> MiB


def processes(init_pid: int) -> dict[str, int]:
    """A container's long-lived processes by name (the script a Python process runs, else the program):
    those whose PID namespace is the container's."""
    ns = os.readlink(f"/proc/{init_pid}/ns/pid")
    found: dict[str, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != ns:
                continue
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        prog = os.path.basename(argv[0].decode(errors="replace"))
        if prog.startswith("python") and len(argv) > 1:
            prog = os.path.basename(argv[1].decode(errors="replace"))
        if prog in ("suricata", "nfwlab-firewall", "nfwlab-natlog", "nfwlab-web", "conntrack"):
            found.setdefault(prog, int(entry))
    return found


def conntrack_count(pid: int) -> int:
    """Connection tracking entries in a node's network namespace."""
    res = subprocess.run(["nsenter", "-t", str(pid), "-n", "cat", "/proc/sys/net/netfilter/nf_conntrack_count"],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"nsenter -t {pid} -n: {res.stderr.strip()}")
    return int(res.stdout)


def cgroup_memory(pid: int) -> dict[str, float]:
    """A container's memory (MiB) from its cgroup (v1 or v2): usage, its working set (usage less inactive
    files: `docker stats`), and anonymous memory (what a leak grows; page cache of the logs it writes is not)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        ident, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            base = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            usage = int((base / "memory.usage_in_bytes").read_text())
            stat = dict(line.split() for line in (base / "memory.stat").read_text().splitlines())
            anon, inactive = int(stat["total_rss"]), int(stat["total_inactive_file"])
            break
        if ident == "0" and controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
            base = Path("/sys/fs/cgroup") / path.lstrip("/")
            usage = int((base / "memory.current").read_text())
            stat = dict(line.split() for line in (base / "memory.stat").read_text().splitlines())
            anon, inactive = int(stat["anon"]), int(stat["inactive_file"])
            break
    else:
        raise RuntimeError(f"no memory cgroup for pid {pid}")
    return {"usage": usage / MiB, "working set": (usage - inactive) / MiB, "anon": anon / MiB}


@dataclass
class Series:
    name: str
    unit: str
    kind: str  # a key of TOLERANCES, or "log" (append-only) or "info" (no verdict)
    values: list[float | None] = field(default_factory=list)


class Sampler:
    """Every series, one value per sample (None when a process or file was missing at that moment)."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.series: dict[str, Series] = {}
        self.labels: list[str] = []
        self.times: list[float] = []
        self.requests_ended: list[int] = []
        self.t0 = time.monotonic()

    def put(self, name: str, unit: str, kind: str, value: float | None) -> None:
        self.taken.append((name, unit, kind, value))

    def sample(self, label: str, requests_ended: int) -> None:
        """One value of every series, kept only if the whole sample was taken."""
        self.taken: list[tuple[str, str, str, float | None]] = []
        self._take()
        self.labels.append(label)
        self.times.append(round(time.monotonic() - self.t0, 1))
        self.requests_ended.append(requests_ended)
        for name, unit, kind, value in self.taken:
            s = self.series.setdefault(name, Series(name, unit, kind, [None] * (len(self.labels) - 1)))
            s.values.append(round(value, 3) if value is not None else None)
        for s in self.series.values():  # a series whose process was missing this time
            if len(s.values) < len(self.labels):
                s.values.append(None)

    def _take(self) -> None:
        found = dk.containers(self.lab.name, with_pids=True)
        for name, c in sorted(found.items()):
            if not c.pid:
                continue
            mem = cgroup_memory(c.pid)
            self.put(f"{name} container memory, anon", "MiB", "memory", mem["anon"])
            self.put(f"{name} container memory, working set", "MiB", "info", mem["working set"])
            self.put(f"{name} container memory, usage", "MiB", "info", mem["usage"])
            if c.role in ("firewall", "nat-gateway", "internet-gateway"):
                self.put(f"{name} conntrack entries", "entries", "conntrack", conntrack_count(c.pid))
            for prog, pid in processes(c.pid).items():
                try:
                    status = proc_status(pid)
                    fds = len(os.listdir(f"/proc/{pid}/fd"))
                except OSError:
                    continue
                self.put(f"{name} {prog} RSS", "MiB", "memory", kib(status["VmRSS"]))
                self.put(f"{name} {prog} open files", "files", "files", fds)
                if prog in ("suricata", "nfwlab-web"):
                    self.put(f"{name} {prog} threads", "threads", "files", int(status["Threads"]))
        for endpoint, (_, counters) in self.lab.engines.counters().items():
            flow, tcp = counters.get("flow") or {}, counters.get("tcp") or {}
            self.put(f"{endpoint} Suricata flow.active", "flows", "flows", flow.get("active"))
            for key, value in (("flow.memuse", flow.get("memuse")), ("tcp.memuse", tcp.get("memuse")),
                               ("tcp.reassembly_memuse", tcp.get("reassembly_memuse"))):
                self.put(f"{endpoint} Suricata {key}", "MiB", "memory", value / MiB if value is not None else None)
        logs = self.lab.state.logs_dir
        for path in [logs / "alert.log", logs / "flow.log", logs / "nat-translations.log", *self.lab.eve.paths]:
            live = path.stat().st_size if path.exists() else 0
            rotated = sum(p.stat().st_size for p in path.parent.glob(path.name + ".[0-9]*") if p.is_file())
            label = str(path.relative_to(logs))
            self.put(f"log {label}", "MiB", "log", live / MiB)
            if rotated:
                self.put(f"log {label}, rotated files", "MiB", "info", rotated / MiB)


def slope(xs: list[float], ys: list[float]) -> float:
    """Least squares slope of ys over xs (0 for fewer than two points)."""
    if len(xs) < 2:
        return 0.0
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def judge(s: Series, times: list[float], requests: list[int]) -> dict[str, Any]:
    """A series' figures and verdict: bounded, grows, or (logs) in step with the traffic."""
    points = [(t, float(v), r) for t, v, r in zip(times, s.values, requests, strict=True) if v is not None]
    out: dict[str, Any] = {"unit": s.unit, "kind": s.kind, "values": s.values}
    if not points:
        return out | {"verdict": "no data"}
    vals = [v for _, v, _ in points]
    third = max(1, len(points) // 3)
    first, last = vals[:third], vals[-third:]
    out |= {"start": vals[0], "end": vals[-1], "max": max(vals), "first_third_max": max(first),
            "last_third_max": max(last)}
    if s.kind == "info":
        return out | {"verdict": "-"}
    if s.kind == "log":
        if any(b < a for a, b in zip(vals, vals[1:], strict=False)):
            return out | {"verdict": "bounded (rotated)"}
        # Bytes per request over the middle third and over the last third (the first has the flows whose
        # records come only when they time out): a log grows with its records.
        a, b, c = points[third - 1], points[max(third - 1, len(points) - third - 1)], points[-1]
        rates = [(y[1] - x[1]) * MiB / (y[2] - x[2]) if y[2] > x[2] else None for x, y in ((a, b), (b, c))]
        out["bytes_per_request"] = [round(r) if r is not None else None for r in rates]
        before, after = rates
        steady = before is None or after is None or after <= before * (1 + LOG_TOLERANCE[0]) + LOG_TOLERANCE[1]
        return out | {"verdict": "in step with traffic" if steady else "grows faster than traffic"}
    rel, absolute, _ = TOLERANCES[s.kind]
    limit = max(first) * (1 + rel) + absolute
    later = points[third:]
    hours = (times[-1] - times[0]) / 3600 if len(times) > 1 else 0.0
    per_hour = slope([t / 3600 for t, _, _ in later], [v for _, v, _ in later])
    out |= {"limit": round(limit, 3), "slope_per_hour": round(per_hour, 3)}
    flat = per_hour * hours <= max(first) * rel + absolute
    return out | {"verdict": "bounded" if max(last) <= limit or flat else "GROWS"}


# ------------------------------------------------------------------ the run
def down(lab: Lab) -> None:
    """The lab down with its logs (the soak's are bench/results/soak.json): not archived."""
    lab.down(purge=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    lab = Lab(args.name, topology=args.topology, policy_file=args.policy)
    down(lab)
    main_pid = os.getpid()
    try:
        lab.up()
        return soak(lab, args)
    finally:
        # pyroute2 forks helpers that enter the nodes' namespaces: a helper that gets Ctrl-C or SIGTERM unwinds
        # a copy of this stack, and must not take the lab down under the run.
        if os.getpid() == main_pid:
            print("taking the lab down", file=sys.stderr, flush=True)
            try:
                down(lab)
            except LabError as e:  # Docker went away: the figures so far are still written
                print(f"could not take lab {lab.name} down: {e}; run `nfwlab --name {lab.name} down --purge`",
                      file=sys.stderr)


def soak(lab: Lab, args: argparse.Namespace) -> dict[str, Any]:
    servers = [s.name for s in lab.vpc.servers]
    cycle = mix(lab.domains, deny_lists(lab))
    sources = {}
    for server in servers:
        for t in cycle:
            trace = lab.trace(server, t.domain, t.port)
            if trace.firewall_sees is None:
                raise SystemExit(f"the firewall never sees {server} -> {t.url} in {lab.topology_name}")
            sources[(server, t.url)] = (str(trace.firewall_sees), str(trace.dest_ip))
    seconds = int(args.minutes * 60)
    interval = len(servers) / args.rate
    alerts, sampler = Alerts(lab), Sampler(lab)
    drivers = [Driver(lab, s, k, cycle, interval, seconds, args.max_time, sources) for k, s in enumerate(servers)]

    def ended() -> list[Request]:
        return [r for d in drivers for r in d.ended()]
    sampler.sample("start", 0)
    print(f"soak: {args.minutes:g} min, {len(servers)} servers, {args.rate:g} requests/s, lab {lab.name} "
          f"({lab.topology_name}, policy {lab.policy.name})", file=sys.stderr, flush=True)
    started = time.monotonic()
    for d in drivers:
        d.start()
    minute, stopped = 1, list[str]()
    while any(d.is_alive() for d in drivers) and not stopped:
        time.sleep(1)
        alerts.read()
        if time.monotonic() - started >= minute * 60 and minute <= args.minutes:
            done = ended()
            try:
                sampler.sample(str(minute), len(done))
            except Exception as e:  # the lab or Docker went away: what was measured so far is reported
                stopped.append(f"minute {minute} sample: {e}")
                break
            n_blocked = sum(1 for r in done if r.target.blocked)
            print(f"  minute {minute}: {len(done)} requests ended ({n_blocked} blocked), {len(alerts.alerts)} alerts",
                  file=sys.stderr, flush=True)
            minute += 1
    stopped += [e for d in drivers for e in d.errors]
    stopped += [f"{d.server}: its loop ended before its time" for d in drivers
                if d.started_count is None and not d.errors]
    requests = ended()
    blocked = [r for r in requests if r.target.blocked]

    def settled() -> bool:
        alerts.read()
        return len(alerts.alerts) >= len(blocked)
    try:
        Wait("an alert for every blocked request", 0 if stopped else SETTLE_S, interval=0.2).until(settled)
    except WaitTimeout:
        pass  # reported below, request by request
    try:
        sampler.sample("end", len(requests))
    except Exception as e:
        stopped.append(f"end sample: {e}")
    return report(lab, args, drivers, requests, alerts, sampler, time.monotonic() - started, stopped)


def report(lab: Lab, args: argparse.Namespace, drivers: list[Driver], requests: list[Request], alerts: Alerts,
           sampler: Sampler, took: float, stopped: list[str]) -> dict[str, Any]:
    """The run's figures; `stopped`: why the run ended early (its figures are then partial), else empty."""
    blocked = [r for r in requests if r.target.blocked]
    allowed = [r for r in requests if not r.target.blocked]
    matched, unmatched, missing = match(blocked, alerts.alerts)
    started = sum(d.started_count or 0 for d in drivers)
    series = {name: judge(s, sampler.times, sampler.requests_ended) for name, s in sampler.series.items()}
    grows = [n for n, s in series.items() if s["verdict"] in ("GROWS", "grows faster than traffic")]
    wrong_port = [r.brief() for r in requests if r.local_port and r.local_port != r.port]
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average_at_end": os.getloadavg()},
        "note": args.note, "stopped_early": stopped,
        "lab": lab.name, "topology": lab.topology_name, "policy": f"{lab.policy.name} ({Path(args.policy).name})",
        "servers": len(drivers),
        "minutes": args.minutes, "seconds": round(took, 1), "rate_per_s_asked": args.rate,
        "rate_per_s_sent": round(started / (args.minutes * 60), 2), "curl_max_time_s": args.max_time,
        "mix": [asdict(t) for t in drivers[0].cycle],
        "requests": {
            "started": started, "ended": len(requests),
            "allowed": {"sent": len(allowed), "ok": sum(r.ok for r in allowed),
                        "failed": sum(not r.ok for r in allowed),
                        "failures": [r.brief() for r in allowed if not r.ok][:50],
                        "curl_exit_codes": dict(Counter(str(r.exit_code) for r in allowed))},
            "blocked": {"sent": len(blocked), "alerts_matched": len(matched), "unmatched_alerts": len(unmatched),
                        "without_alert": len(missing),
                        "answered": sum(r.http != 0 for r in blocked),
                        "curl_exit_codes": dict(Counter(str(r.exit_code) for r in blocked)),
                        "without_alert_list": [r.brief() | {"firewall_records": alerts.evidence.get(r.key, [])}
                                               for r in missing][:100],
                        "unmatched_alert_list": [alert_brief(a) for a in unmatched][:100]},
            "source_port_not_as_asked": wrong_port[:20],
        },
        "alerts": {"eve_json": len(alerts.alerts), "alert_log": alerts.aws_alerts},
        "samples": {"labels": sampler.labels, "seconds": sampler.times, "requests_ended": sampler.requests_ended},
        "tolerances": {k: {"relative": v[0], "absolute": v[1], "why": v[2]}
                       for k, v in (TOLERANCES | {"log": LOG_TOLERANCE}).items()},
        "series": series,
        "verdict": {"grows": grows,
                    "alerts_equal_blocked": len(matched) == len(blocked) and not unmatched
                    and alerts.aws_alerts == len(alerts.alerts),
                    "ok": not stopped and not grows and len(matched) == len(blocked) and not unmatched},
    }


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.1f}" if isinstance(v, float) else str(v)


def table(r: dict[str, Any]) -> str:
    q = r["requests"]
    a, b = q["allowed"], q["blocked"]
    lines = [f"soak: {r['minutes']:g} min, lab {r['lab']} ({r['topology']}), {r['servers']} servers, "
             f"{r['rate_per_s_sent']} requests/s sent ({q['started']} started, {q['ended']} ended)",
             f"allowed requests: {a['sent']} sent, {a['ok']} ok, {a['failed']} failed "
             f"(curl exit codes {a['curl_exit_codes']})",
             f"blocked requests: {b['sent']} sent, {b['alerts_matched']} alerts matched, {b['unmatched_alerts']} "
             f"unmatched alerts, {b['without_alert']} without an alert, {b['answered']} answered "
             f"(curl exit codes {b['curl_exit_codes']})",
             f"alerts: {r['alerts']['eve_json']} in eve.json, {r['alerts']['alert_log']} in the ALERT log"]
    for m in b["without_alert_list"][:20]:
        lines.append(f"  no alert: {m}")
    for m in b["unmatched_alert_list"][:20]:
        lines.append(f"  unmatched alert: {m}")
    for m in a["failures"][:10]:
        lines.append(f"  allowed request failed: {m}")
    width = max(len(n) for n in r["series"]) + 2
    lines.append(f"\n{'series':<{width}} {'unit':>8} {'start':>9} {'end':>9} {'max':>9} {'1st 3rd':>9} "
                 f"{'last 3rd':>9}  verdict")
    for name, s in r["series"].items():
        extra = f" ({s['bytes_per_request']} B/request)" if "bytes_per_request" in s else ""
        lines.append(f"{name:<{width}} {s['unit']:>8} {_fmt(s.get('start')):>9} {_fmt(s.get('end')):>9} "
                     f"{_fmt(s.get('max')):>9} {_fmt(s.get('first_third_max')):>9} "
                     f"{_fmt(s.get('last_third_max')):>9}  {s['verdict']}{extra}")
    v = r["verdict"]
    if r.get("stopped_early"):
        lines.append(f"\nSTOPPED EARLY (partial figures): {'; '.join(r['stopped_early'])}")
    lines.append(f"\ngrows without bound: {', '.join(v['grows']) or 'nothing'}; alerts == blocked requests: "
                 f"{'yes' if v['alerts_equal_blocked'] else 'NO'}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--name", default="soak", help="the lab's name (default: soak)")
    ap.add_argument("--topology", default="nat-first")
    ap.add_argument("--policy", default=str(DEFAULT_POLICY), help="a Classic policy with a deny list (default: "
                    f"{DEFAULT_POLICY.name})")
    ap.add_argument("--rate", type=float, default=3.0, help="requests per second from all servers together")
    ap.add_argument("--max-time", type=float, default=3.0, help="curl's --max-time (a blocked request's length)")
    ap.add_argument("--note", default="", help="written to the results (e.g. what else ran on the machine)")
    ap.add_argument("--out", default="bench/results/soak.json")
    ap.add_argument("--table", metavar="JSON", help="only print the table of an earlier run's results")
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return
    main_pid = os.getpid()

    def terminate(signum: int, _frame: Any) -> None:
        """SIGTERM: the lab goes down as on Ctrl-C; a forked helper (pyroute2's) just ends."""
        if os.getpid() != main_pid:
            os._exit(128 + signum)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, terminate)
    try:
        results = run(args)
    except KeyboardInterrupt:
        print(f"interrupted: lab {args.name} is down, nothing written", file=sys.stderr)
        sys.exit(130)
    out = Path(args.out)
    if results["stopped_early"]:  # a partial run does not replace a complete one
        out = out.with_name(f"{out.stem}.partial{out.suffix}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten to {out}")
    sys.exit(0 if results["verdict"]["ok"] else 1)


if __name__ == "__main__":
    main()
