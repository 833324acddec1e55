#!/usr/bin/env python3
"""The firewall node's main process: runs Suricata inline on NFQUEUE (one queue per worker).

The lab installs FORWARD -> NFQUEUE without --queue-bypass, so while Suricata
is not running nothing crosses the firewall (fail closed, as AWS Network
Firewall). This supervisor keeps the node (and so its network) alive when the
engine dies, and starts it again on SIGHUP (`nfwlab firewall restart`).
If the very first start fails (bad rules), it exits with Suricata's code so
that `nfwlab up` can report the error.

It also delivers the logs as AWS Network Firewall does: every EVE alert
record goes to alert.log and every EVE netflow record to flow.log, each
wrapped in AWS's envelope (firewall_name, availability_zone,
event_timestamp, event), one JSON object per line. Under a Next Generation
policy (Suricata 8) an alert's firewall.hook is given AWS's hook name.

Logs are rotated by size (NFWLAB_LOG_MAX_SIZE bytes, NFWLAB_LOG_KEEP parts kept; see nfwlab_logfile.py):
alert.log and flow.log by whichever endpoint's write takes them over the size, eve.json by this supervisor,
which renames it to eve.json.1 and sends Suricata SIGHUP (Suricata then reopens its log files). Its delivery
keeps reading the renamed file until Suricata writes to the new one, so no record is lost or read twice.

Flow bypass (NFWLAB_FLOW_BYPASS=1): once Suricata has decided a flow and has
nothing left to inspect in it (its reassembly depth passed, or its TLS session
encrypted), its verdict sets the bypass mark; the lab's iptables rules keep the
mark in the flow's conntrack entry and forward the flow's later packets without
the queue. Suricata never sees those packets, so the FLOW records of a bypassed
flow take their packet and byte counts from the endpoint's conntrack (which
counted every packet of the flow), once the flow has ended there. Every start
of the engine clears the marks: a new engine decides every flow again.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # nfwlab_logfile.py is beside this script
import nfwlab_logfile  # noqa: E402

RULES_DIR = "/etc/nfwlab/rules"
LOG_DIR = "/var/log/suricata"
# The rules (lab.rules) and variables (policy.yaml) come from suricata.yaml, so they can be reloaded live.
QUEUES = int(os.environ.get("NFWLAB_NFQ_QUEUES", "1"))  # the lab's NFQUEUE rule balances flows over 0..QUEUES-1
BASE_ARGV = ["suricata", "-c", "/etc/nfwlab/suricata/suricata.yaml", "--init-errors-fatal", "-l", LOG_DIR]
for _q in range(QUEUES):
    BASE_ARGV += ["-q", str(_q)]
FIREWALL_NAME = os.environ.get("NFWLAB_FIREWALL_NAME", "nfwlab-firewall")
AVAILABILITY_ZONE = os.environ.get("NFWLAB_AVAILABILITY_ZONE", "local")
AWS_LOG_DIR = os.environ.get("NFWLAB_AWS_LOG_DIR", LOG_DIR)  # shared by every endpoint of the firewall
DELIVERY = {"alert": "alert.log", "netflow": "flow.log"}  # EVE event type -> AWS log type's file
# Next Generation policies: Suricata 8.0's hook names -> AWS's, for the alert's firewall.hook (set by the lab).
AWS_HOOKS = json.loads(os.environ.get("NFWLAB_AWS_HOOKS", "{}"))
FLOW_BYPASS = os.environ.get("NFWLAB_FLOW_BYPASS", "0") == "1"
BYPASS_MARK = int(os.environ.get("NFWLAB_BYPASS_MARK", "1"))  # the bit the lab's iptables rules match
BYPASS_DEPTH = int(os.environ.get("NFWLAB_BYPASS_DEPTH", "1048576"))  # stream.reassembly.depth
# Listed in suricata.yaml's rule-files; written at every engine start (reloaded with the policy's rules).
BYPASS_RULES = "/run/nfwlab/flow-bypass.rules"
# The one trigger of a flow bypass: once either side of a TCP flow has sent more than the reassembly depth
# (counted on sequence numbers, so also when reassembly ended early: an unknown protocol, no rule that reads
# the raw stream), nothing a rule can match is left in it but packet headers. The rule marks the packet (the
# kernel forwards the flow from then on) and bypasses the flow in Suricata, which logs it `bypassed`
# (flow-timeouts.tcp.bypassed) seconds later. Not stream.bypass or TLS encryption-handling: bypass: they
# need nfq.bypass-mask, and Suricata 7 logs a flow bypassed that way only 100 s later, whatever its timeout.
# gid 5: the lab's rules use 2 (default actions), 3 (strict-order probes), 4 (Next Generation hooks), the
# policy's own 1 and 100 up.
BYPASS_RULE = ('alert tcp any any -> any any (msg:"nfwlab: flow decided, past the reassembly depth"; '
               f'flow:established; stream_size:either,>,{BYPASS_DEPTH}; noalert; '
               f'nfq_set_mark:{BYPASS_MARK:#x}/{BYPASS_MARK:#x}; bypass; gid:5; sid:1; rev:1;)')
POLL = 0.5  # seconds between two readings of the bypassed flows' counts
UNMATCHED = 5.0  # seconds a bypassed flow's record waits for a conntrack entry before it goes out as is
# seconds a flow gone from conntrack's listing waits for its DESTROY event (the final counts) before the counts
# last listed stand for it
NO_EVENT = 5.0
KEEP_ENDED = 600.0  # seconds an ended conntrack entry waits for the engine's record of its flow
LOG_MAX_BYTES, LOG_KEEP = nfwlab_logfile.limits_from_env()
ROTATE_CHECK = 0.2  # seconds between two readings of eve.json's size
REOPEN_AGAIN = 5.0  # seconds after which a rotation that Suricata has not followed yet is signalled again


def engine_argv():
    """Suricata's command line: the base plus the policy's engine options (engine.json)."""
    try:
        with open(f"{RULES_DIR}/engine.json") as f:
            options = json.load(f).get("set", [])
    except FileNotFoundError:
        options = []
    argv = list(BASE_ARGV)
    for option in options:
        argv += ["--set", option]
    return argv


def write_bypass_rules():
    os.makedirs(os.path.dirname(BYPASS_RULES), exist_ok=True)
    with open(BYPASS_RULES, "w") as f:
        f.write((BYPASS_RULE if FLOW_BYPASS else "# flow bypass is off (nfwlab up --no-flow-bypass)") + "\n")


def suricata_time(t):
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f%z")


def conntrack_entry(line):
    """One line of `conntrack -L -o extended`: the original direction's addresses, ports and counts, the
    reply's counts; None for anything else."""
    words = line.split()
    if len(words) < 6 or words[0] not in ("ipv4", "ipv6"):
        return None
    fields = {}
    for word in words:
        key, sep, value = word.partition("=")
        if sep:
            fields.setdefault(key, []).append(value)
    try:
        return {"proto": words[2].lower(), "src": fields["src"][0], "dst": fields["dst"][0],
                "sport": int(fields.get("sport", ["0"])[0]), "dport": int(fields.get("dport", ["0"])[0]),
                "packets": [int(v) for v in fields.get("packets", ["0", "0"])][:2],
                "bytes": [int(v) for v in fields.get("bytes", ["0", "0"])][:2]}
    except (KeyError, ValueError, IndexError):
        return None


def flow_key(proto, a, a_port, b, b_port):
    """The same key for both directions of a flow."""
    return (proto.lower(),) + tuple(sorted([(a, int(a_port)), (b, int(b_port))]))


class BypassedFlows:
    """FLOW records of the flows the engine bypassed: the engine's own netflow records, held until the flow's
    conntrack entry ends, then sent out with conntrack's packet and byte counts and end time."""

    def __init__(self, write, list_entries, now=time.time):
        self.write, self.list_entries, self.now = write, list_entries, now
        self.lock = threading.Lock()
        self.flow_ids = {}  # flow_id -> when the engine said it bypassed the flow
        self.live = {}  # key -> [entry, when its counts last changed]
        self.vanished = {}  # key -> (entry, last change, when it left the listing): its DESTROY event is due
        self.ended = {}  # key -> (entry, last change, ended at)
        self.held = {}  # key -> [records, since]

    def engine_bypassed(self, event):
        """An EVE flow record: remember the flows the engine bypassed (the rule that bypasses also marks)."""
        if (event.get("flow") or {}).get("bypass") in ("local", "capture"):
            with self.lock:
                self.flow_ids[event.get("flow_id")] = self.now()

    def hold(self, event):
        """True if this netflow record is of a bypassed flow: it is held (and sent out later)."""
        with self.lock:
            if event.get("flow_id") not in self.flow_ids:
                return False
            key = flow_key(event.get("proto", ""), event.get("src_ip"), event.get("src_port", 0),
                           event.get("dest_ip"), event.get("dest_port", 0))
            self.held.setdefault(key, [[], self.now()])[0].append(event)
        self.release()
        return True

    def poll(self):
        """Reads the bypassed flows' counts once (which also makes conntrack evict an expired entry, and so send
        its DESTROY event); a flow gone from the listing has ended, with the counts of that event."""
        entries = self.list_entries()
        if entries is None:  # conntrack could not be read: nothing is known to have ended
            return
        now = self.now()
        with self.lock:
            seen = {}
            for e in entries:
                key = flow_key(e["proto"], e["src"], e["sport"], e["dst"], e["dport"])
                before = self.live.get(key)
                changed = now if before is None or before[0]["packets"] != e["packets"] else before[1]
                seen[key] = [e, changed]
            for key, (entry, changed) in self.live.items():
                if key not in seen and key not in self.ended:
                    self.vanished[key] = (entry, changed, now)
            self.live = seen
            for key, (entry, changed, since) in list(self.vanished.items()):
                if now - since > NO_EVENT:  # no DESTROY event came: the counts last listed
                    self.ended[key] = (entry, changed, now)
                    del self.vanished[key]
        self.release()

    def destroyed(self, entry):
        """conntrack's DESTROY event of a bypassed flow: its final counts (a listing evicts an expired entry, so
        the event comes within a poll of the flow's end)."""
        key = flow_key(entry["proto"], entry["src"], entry["sport"], entry["dst"], entry["dport"])
        now = self.now()
        with self.lock:
            before = self.live.pop(key, None) or self.vanished.get(key)
            self.vanished.pop(key, None)
            changed = now if before is None or before[0]["packets"] != entry["packets"] else before[1]
            self.ended[key] = (entry, changed, now)
        self.release()

    def release(self):
        """Sends out every held record whose flow has ended (or that no bypassed flow claims), and forgets what
        is too old to be claimed. Both directions' records of a flow use the same ended entry."""
        now, out = self.now(), []
        with self.lock:
            for key, (records, since) in list(self.held.items()):
                if key in self.live or key in self.vanished:
                    continue
                if key in self.ended:
                    entry, last, _ = self.ended[key]
                    out += [counted(r, entry, last, now) for r in records]
                elif now - since > UNMATCHED:
                    out += records
                else:
                    continue
                del self.held[key]
            self.ended = {k: v for k, v in self.ended.items() if now - v[2] < KEEP_ENDED}
            self.flow_ids = {k: t for k, t in self.flow_ids.items() if now - t < KEEP_ENDED}
        for record in out:
            self.write(record)


def counted(event, entry, last, now):
    """A netflow record with the packets and bytes of its direction that crossed the endpoint (conntrack's
    counts of the whole flow), ending when conntrack last saw the flow's counts change."""
    event = json.loads(json.dumps(event))
    forward = (event.get("src_ip"), int(event.get("src_port", 0))) == (entry["src"], entry["sport"])
    netflow = event.setdefault("netflow", {})
    netflow["pkts"], netflow["bytes"] = (entry["packets"][0], entry["bytes"][0]) if forward else (
        entry["packets"][1], entry["bytes"][1])
    try:
        start = datetime.strptime(netflow["start"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    except (KeyError, ValueError):
        start = last
    end = max(last, start)
    netflow["end"], netflow["age"] = suricata_time(end), int(end - start)
    event["timestamp"] = suricata_time(now)
    return event


def list_bypassed():
    """The endpoint's conntrack entries that carry the bypass mark (None if conntrack cannot be read)."""
    try:
        res = subprocess.run(["conntrack", "-L", "--mark", f"{BYPASS_MARK}/{BYPASS_MARK}", "-o", "extended"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if res.returncode != 0:
        return None
    return [e for e in map(conntrack_entry, res.stdout.splitlines()) if e]


def clear_bypass_marks():
    """A new engine decides every flow again: the kernel forwards nothing on an earlier engine's word. (Each
    deleted entry's DESTROY event carries its final counts to the FLOW records waiting for it.)"""
    subprocess.run(["conntrack", "-D", "--mark", f"{BYPASS_MARK}/{BYPASS_MARK}"], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def follow_bypassed():
    while True:
        time.sleep(POLL)
        bypassed.poll()


def destroy_event(line):
    """A `conntrack -E -e DESTROY -o extended` line of a flow with the bypass mark, as an entry; else None."""
    words = line.split()
    if not words or words[0] != "[DESTROY]":
        return None
    marks = [w[len("mark="):] for w in words if w.startswith("mark=")]
    if not marks or not int(marks[0], 0) & BYPASS_MARK:
        return None
    return conntrack_entry(" ".join(words[1:]))


def follow_destroyed():
    """conntrack's DESTROY events (with the final counts) of bypassed flows; restarted if conntrack stops."""
    while True:
        try:
            events = subprocess.Popen(["conntrack", "-E", "-e", "DESTROY", "-o", "extended",
                                       "--buffer-size", "4194304"], stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True)
        except OSError:
            time.sleep(1)
            continue
        for line in events.stdout:
            entry = destroy_event(line)
            if entry is not None:
                bypassed.destroyed(entry)
        events.wait()
        time.sleep(0.2)


def lab_only(event):
    """An alert that stays in eve.json, out of AWS's ALERT log: one the lab's firewall rules raise only for
    `nfwlab explain` (rule metadata "nfwlab explain"), or a firewall-engine alert on one of Suricata's own
    pseudo-packets (the flushes of a flow that timed out or of the capture), which AWS has no reason to log:
    no packet of the flow was decided there."""
    alert = event.get("alert") or {}
    if "explain" in (alert.get("metadata") or {}).get("nfwlab", []):
        return True
    source = event.get("pkt_src", "")
    return alert.get("engine") == "fw" and ("flush" in source or "flow timeout" in source)


def envelope(event):
    firewall = event.get("firewall")
    if isinstance(firewall, dict) and firewall.get("hook") in AWS_HOOKS:
        firewall["hook"] = AWS_HOOKS[firewall["hook"]]
    stamp = datetime.strptime(event["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z")
    return {"firewall_name": FIREWALL_NAME, "availability_zone": AVAILABILITY_ZONE,
            "event_timestamp": str(int(stamp.timestamp())), "event": event}


outputs = {}  # EVE event type -> its AWS log file (opened by deliver_logs)
write_lock = threading.Lock()
bypassed = None  # BypassedFlows, when flow bypass is on


def deliver(event):
    """One record to its AWS log file, in AWS's envelope."""
    out = outputs.get(event.get("event_type"))
    if out is not None and not lab_only(event):
        with write_lock:
            out.write(json.dumps(envelope(event), separators=(",", ":")) + "\n")


def open_outputs():
    # One write per record, under the log's lock: records of several endpoints never interleave, and the
    # endpoint whose write takes the file over the size limit rotates it.
    for kind, name in DELIVERY.items():
        outputs[kind] = nfwlab_logfile.RotatingLog(os.path.join(AWS_LOG_DIR, name), LOG_MAX_BYTES, LOG_KEEP)


def delivered(line):
    """One eve.json line to the AWS logs (a bypassed flow's netflow record is held until the flow ends)."""
    try:
        event = json.loads(line)
    except ValueError:
        return
    if bypassed is not None:
        if event.get("event_type") == "flow":
            bypassed.engine_bypassed(event)
        elif event.get("event_type") == "netflow" and bypassed.hold(event):
            return
    deliver(event)


def reopen_engine_logs():
    """SIGHUP to a started Suricata: it reopens its log files (a new eve.json after a rotation). Never to one
    still starting: until its handler is installed, SIGHUP would end it."""
    with engine_lock:
        if engine is not None and engine.poll() is None and engine_started.is_set():
            engine.send_signal(signal.SIGHUP)


class EveRotation:
    """Rotates eve.json once it reaches LOG_MAX_BYTES; one rotation at a time: the next waits until Suricata
    writes to the new file (the tail has moved to it)."""

    def __init__(self, path, tail):
        self.path, self.tail = path, tail
        self.next_check, self.rotated_at = 0.0, None

    def check(self):
        now = time.monotonic()
        if now < self.next_check:
            return
        self.next_check = now + ROTATE_CHECK
        if self.tail.renamed():
            if self.rotated_at is not None and now - self.rotated_at > REOPEN_AGAIN:
                reopen_engine_logs()  # the engine restarted meanwhile, or missed it: harmless if not
                self.rotated_at = now
            return
        self.rotated_at = None
        if LOG_MAX_BYTES and self.tail.size() >= LOG_MAX_BYTES and engine_started.is_set():
            nfwlab_logfile.rotate_reopened(self.path, LOG_KEEP, reopen_engine_logs)
            self.rotated_at = now


def deliver_logs(poll=0.01):
    """Tails eve.json and appends each alert / netflow record to its AWS log file; rotates eve.json by size."""
    tail = nfwlab_logfile.Tail(os.path.join(LOG_DIR, "eve.json"), os.path.join(LOG_DIR, "eve.json.delivered"))
    rotation = EveRotation(tail.path, tail)
    while True:
        lines = tail.lines()
        for line in lines:
            delivered(line)
        if lines:
            tail.save()
        rotation.check()
        if not lines:
            time.sleep(poll)

restart = threading.Event()
stopping = threading.Event()
engine = None
engine_started = threading.Event()  # the running engine has said "Engine started" (its signal handlers are set)
engine_lock = threading.Lock()  # a new engine is not signalled on its predecessor's word


def on_term(signum, frame):
    stopping.set()
    restart.set()
    if engine and engine.poll() is None:
        engine.terminate()


def on_hup(signum, frame):
    restart.set()
    if engine and engine.poll() is None:
        engine.terminate()


def close_pass_path():
    """The engine died on its own: what the stateless engine passes (chain NFW-PASS) stops crossing too, so
    the endpoint fails closed as a whole. The lab opens it again once the engine has started."""
    subprocess.run(["iptables", "-w", "5", "-R", "NFW-PASS", "1", "-j", "DROP"], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def echo_engine(stream):
    """Copies the engine's output to the node's; notes when it has started."""
    for line in stream:
        sys.stdout.write(line)
        sys.stdout.flush()
        if not engine_started.is_set() and "Engine started" in line:
            engine_started.set()


def run_once(wake=0.2):
    """Runs Suricata until it exits; returns (exit code, whether it had started).

    The main thread waits in steps of `wake` seconds, never in one blocking read: the kernel may hand SIGHUP to
    any thread of this process, and Python runs the handler only in the main thread, at its next step. Blocked
    in a read of the engine's output, that step came only with the engine's next line, which an idle engine
    never printed: a restart asked for was lost (seen once in CI as a 60 s wait for the engine to start)."""
    global engine
    os.makedirs("/var/run/suricata", exist_ok=True)
    write_bypass_rules()
    clear_bypass_marks()
    argv = engine_argv()
    print("nfwlab-firewall: " + " ".join(argv), flush=True)
    with engine_lock:
        engine_started.clear()
        engine = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if restart.is_set():  # asked while the engine was being started, before its handle was known: do it now
        engine.terminate()
    echo = threading.Thread(target=echo_engine, args=(engine.stdout,), name="engine-output", daemon=True)
    echo.start()
    while True:
        try:
            code = engine.wait(timeout=wake)
            break
        except subprocess.TimeoutExpired:
            continue
    echo.join()
    started = engine_started.is_set()
    engine_started.clear()
    return code, started


def main():
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    global bypassed
    open_outputs()
    if FLOW_BYPASS:
        bypassed = BypassedFlows(deliver, list_bypassed)
        threading.Thread(target=follow_destroyed, name="bypassed-flows-ended", daemon=True).start()
        threading.Thread(target=follow_bypassed, name="bypassed-flows", daemon=True).start()
    threading.Thread(target=deliver_logs, name="log-delivery", daemon=True).start()
    first = True
    while not stopping.is_set():
        restart.clear()
        code, started = run_once()
        if stopping.is_set():
            return 0
        if first and not started and not restart.is_set():
            print(f"nfwlab-firewall: Suricata failed to start (exit code {code})", flush=True)
            return code or 1
        first = False
        if not restart.is_set():
            close_pass_path()
            print(f"nfwlab-firewall: engine stopped (exit code {code}); nothing crosses the firewall "
                  "until it is restarted (SIGHUP)", flush=True)
            restart.wait()
        if not stopping.is_set():
            print("nfwlab-firewall: restarting the engine", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
