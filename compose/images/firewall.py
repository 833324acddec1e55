#!/usr/bin/env python3
"""The firewall node's main process: runs Suricata inline on NFQUEUE 0.

The lab installs FORWARD -> NFQUEUE without --queue-bypass, so while Suricata
is not running nothing crosses the firewall (fail closed, as AWS Network
Firewall). This supervisor keeps the node (and so its network) alive when the
engine dies, and starts it again on SIGHUP (`nfwlab firewall restart`).
If the very first start fails (bad rules), it exits with Suricata's code so
that `nfwlab up` can report the error.
"""
import os
import signal
import subprocess
import sys
import threading

HOME_NET = os.environ["NFWLAB_HOME_NET"]
ARGV = ["suricata", "-c", "/etc/nfwlab/suricata/suricata.yaml", "-q", "0", "--init-errors-fatal",
        "--set", f"vars.address-groups.HOME_NET=[{HOME_NET}]",
        "-S", "/etc/nfwlab/rules/lab.rules", "-l", "/var/log/suricata"]

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


def run_once():
    """Runs Suricata until it exits; returns (exit code, whether it had started)."""
    global engine
    os.makedirs("/var/run/suricata", exist_ok=True)
    engine = subprocess.Popen(ARGV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
            print(f"nfwlab-firewall: engine stopped (exit code {code}); nothing crosses the firewall "
                  "until it is restarted (SIGHUP)", flush=True)
            restart.wait()
        if not stopping.is_set():
            print("nfwlab-firewall: restarting the engine", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
