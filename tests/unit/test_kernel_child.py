"""The child process pyroute2 starts for a netlink session in a namespace never runs the caller's clean-up.

Ctrl-C goes to the whole process group, so it can reach that short-lived child while it runs. Made
deterministic here: the child's own work raises KeyboardInterrupt, as the signal would, before any namespace
is touched (no root, no Docker)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import os
import signal

import pyroute2.netns
import lab.kernel

pyroute2.config.default_create_socket_timeout = 1
pyroute2.config.default_communicate_timeout = 0.2
caller = os.getpid()

def interrupted(*args):
    # The parent stops its child with SIGTERM once it has its answer: ignored here, so the child's fate is
    # decided by how it was started, not by which process is quicker.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt

pyroute2.netns._create_socket_child = interrupted
try:
    with lab.kernel._ipr("nfwlab-no-such-namespace"):
        pass
except BaseException as e:
    pass
finally:
    print("caller's finally in", "the caller" if os.getpid() == caller else "THE CHILD", flush=True)
"""


def test_an_interrupted_namespace_child_does_not_unwind_the_callers_stack():
    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = [line for line in run.stdout.splitlines() if line.startswith("caller's finally")]
    assert lines == ["caller's finally in the caller"], run.stdout + run.stderr
