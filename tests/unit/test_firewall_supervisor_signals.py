"""The firewall node's supervisor (compose/images/firewall.py) restarts its engine on SIGHUP whichever of its
threads the kernel hands the signal to.

A process-directed signal goes to any thread that does not block it; Python runs the handler in the main thread
only, at its next step. The supervisor's main thread once waited in a blocking read of the engine's output, so
a SIGHUP taken by another thread waited for the engine's next line, which an idle engine never printed: the lab
waited 60 s for a restart that did not come. Here the signal is sent to a thread that is not the main one
(tgkill), to an engine that prints nothing after it has started. No Docker, no root: the engine is a stand-in."""
from __future__ import annotations

import ctypes
import os
import platform
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYS_TGKILL = {"x86_64": 234, "aarch64": 131}.get(platform.machine())

SUPERVISOR = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("supervisor", sys.argv[1])
sup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sup)
sup.LOG_DIR = sup.AWS_LOG_DIR = sys.argv[2]
sup.write_bypass_rules = sup.clear_bypass_marks = sup.close_pass_path = lambda: None
# The engine: says it started, then stays silent until it is stopped, as an idle Suricata does. (Its command
# line, which the supervisor prints first, must not hold the words the test waits for.)
sup.engine_argv = lambda: [sys.executable, "-u", "-c",
                           "import time; print('Engine', 'started'); time.sleep(3600)"]
sys.exit(sup.main())
"""


def read_until(proc: subprocess.Popen, text: str, seconds: float, seen: list[str]) -> bool:
    """Reads the supervisor's output until a line holds `text` (True) or `seconds` pass (False)."""
    deadline = time.monotonic() + seconds
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                line = proc.stdout.readline()
                if not line:
                    return False
                seen.append(line)
                if text in line:
                    return True
    return False


@pytest.mark.skipif(SYS_TGKILL is None or not os.path.isdir("/proc/self/task"), reason="needs Linux's tgkill")
def test_sighup_taken_by_another_thread_restarts_an_idle_engine(tmp_path):
    proc = subprocess.Popen([sys.executable, "-u", "-c", SUPERVISOR, str(ROOT / "compose/images/firewall.py"),
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    try:
        assert read_until(proc, "Engine started", 30, seen), "".join(seen)
        assert "'Engine', 'started'" in seen[0] and seen[-1] == "Engine started\n", seen  # the engine's own word
        others = [int(t) for t in os.listdir(f"/proc/{proc.pid}/task") if int(t) != proc.pid]
        assert others, "the supervisor runs threads beside its main one"
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.syscall(SYS_TGKILL, proc.pid, others[0], signal.SIGHUP) == 0, os.strerror(ctypes.get_errno())
        # A generous bound: the restart must come at all, whatever the machine's load.
        assert read_until(proc, "restarting the engine", 20, seen), "".join(seen)
        assert read_until(proc, "Engine started", 20, seen), "".join(seen)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
