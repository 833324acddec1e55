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
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime

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


def deliver_logs(poll=0.01):
    """Tails eve.json and appends each alert / netflow record to its AWS log file."""
    # One write per record on files opened for appending: records of several endpoints never interleave.
    outputs = {kind: open(os.path.join(AWS_LOG_DIR, name), "a", buffering=1)  # noqa: SIM115 (open for life)
               for kind, name in DELIVERY.items()}
    offset, pending = 0, b""
    while True:
        try:
            with open(os.path.join(LOG_DIR, "eve.json"), "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        if not chunk:
            time.sleep(poll)
            continue
        offset += len(chunk)
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()  # a record still being written
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            out = outputs.get(event.get("event_type"))
            if out is not None and not lab_only(event):
                out.write(json.dumps(envelope(event), separators=(",", ":")) + "\n")

restart = threading.Event()
stopping = threading.Event()
engine = None


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


def run_once():
    """Runs Suricata until it exits; returns (exit code, whether it had started)."""
    global engine
    os.makedirs("/var/run/suricata", exist_ok=True)
    argv = engine_argv()
    print("nfwlab-firewall: " + " ".join(argv), flush=True)
    engine = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = False
    for line in engine.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        started = started or "Engine started" in line
    return engine.wait(), started


def main():
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, on_hup)
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
