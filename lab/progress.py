"""Progress of long steps (`up`, `down`, `build`, `repair`): a line per phase, for a person at a terminal.

The code of a long step calls `say("starting 9 containers")` at each phase boundary and does not care
where the line goes. Whoever runs the step decides that once, with `reporting(...)`: the CLI prints
`PhaseLines` on stderr when stderr is a terminal (or when asked: `--progress`, NFWLAB_PROGRESS=1), a
test collects the phases in a list. Without `reporting`, `say` does nothing, so the Python API, pytest
and pipes stay quiet. The reporter is held in a context variable: calls made in worker threads
(lab/threads.py) are not phase boundaries and say nothing.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TextIO

Reporter = Callable[[str], None]

_reporter: ContextVar[Reporter | None] = ContextVar("nfwlab_progress", default=None)


def say(phase: str) -> None:
    """A long step enters `phase` ("wiring links and routes"); passed to the reporter, if there is one."""
    report = _reporter.get()
    if report is not None:
        report(phase)


@contextmanager
def reporting(report: Reporter) -> Iterator[None]:
    """Every `say` within the block goes to `report`."""
    token = _reporter.set(report)
    try:
        yield
    finally:
        _reporter.reset(token)


def wanted(stream: TextIO, forced: bool = False, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether to print phase lines on `stream`: `--progress` or NFWLAB_PROGRESS=1 say yes, NFWLAB_PROGRESS=0
    says no; otherwise only a terminal gets them (CI logs and pipes stay as they were)."""
    setting = environ.get("NFWLAB_PROGRESS", "").strip()
    if forced or setting == "1":
        return True
    if setting == "0":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


class PhaseLines:
    """Phases as `nfwlab up [2.3s] wiring links and routes`: the seconds since the step began."""

    def __init__(self, step: str, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self.step, self.clock = step, clock
        self.stream = stream if stream is not None else sys.stderr
        self.started = clock()

    def __call__(self, phase: str) -> None:
        print(f"nfwlab {self.step} [{self.clock() - self.started:.1f}s] {phase}", file=self.stream, flush=True)
