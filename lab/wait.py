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
from typing import Any, TypeVar

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


def until_containers_ready(docker: Any, lab: str, checks: dict[str, Callable[[Any], bool]], what: str,
                           timeout: float, hint: str = "") -> None:
    """Until every check passes, each given its node's container (None if it has none), from one container
    listing per poll; on timeout the report is the last lines of output of the nodes still waited for.
    `docker` is the Docker module the lab was given (lab.docker, or a fake)."""
    waiting = list(checks)

    def ready() -> bool:
        found = docker.containers(lab)
        waiting[:] = [name for name in waiting if not checks[name](found.get(name))]
        return not waiting

    def report() -> str:
        found = docker.containers(lab)
        return "\n".join(f"[{name}]\n{docker.logs(found[name].id, tail=30)}" for name in waiting if name in found)
    Wait(what, timeout, interval=0.1, hint=hint).until(ready, report)
