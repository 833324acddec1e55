"""Waits: the lab's one way to wait for a condition, with what was seen on timeout.

    Wait("the firewall engine of fw to start", timeout=30).until(started, report=lambda: logs(fw))

`until` polls `check` until it returns something truthy (and returns that), lets any
exception from `check` through (a node that died is an error, not a reason to wait
on), and on timeout raises WaitTimeout naming what was awaited, with the report of
what was seen instead (as testcontainers' wait strategies attach the container's logs).
The clock and sleep are arguments, so waits are unit-tested without waiting.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from .errors import WaitTimeout

T = TypeVar("T")


@dataclass
class Wait:
    what: str  # "the firewall engine of fw-a to start": reads after "waited for"
    timeout: float
    interval: float = 0.05
    hint: str = ""
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def until(self, check: Callable[[], T], report: Callable[[], str] | None = None) -> T:
        """The first truthy result of `check`; WaitTimeout after `timeout` seconds."""
        deadline = self.clock() + self.timeout
        while True:
            result = check()
            if result:
                return result
            if self.clock() >= deadline:
                seen = report() if report else ""
                raise WaitTimeout(f"waited {self.timeout:g}s for {self.what}, in vain"
                                  + (f"; seen instead:\n    {seen.strip().replace(chr(10), chr(10) + '    ')}"
                                     if seen.strip() else ""), self.hint)
            self.sleep(self.interval)
