"""Enforce: a firewall policy made live on a running lab, or nothing changed.

Our checks (rendering), then the engine's own (Suricata's test mode) on the generated files, then the
files swapped and the engines reloaded (rules and variables) or restarted (engine options). On any error
after the swap the previous files are put back and the engines restarted on them.
"""
from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .engine import POLICY_FILES, Engines
from .errors import LabError
from .nextgen import AnyPolicy
from .policy import Rendered
from .results import PolicyApplied
from .state import LabState


class Enforcer:
    def __init__(self, state: LabState, engines: Engines, render: Callable[[AnyPolicy], Rendered]):
        self.state, self.engines, self.render = state, engines, render

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """One policy change at a time per lab (also across processes)."""
        self.state.rules_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state.rules_dir / ".lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def check(self, policy: AnyPolicy) -> Rendered:
        rendered = self.render(policy)
        self.engines.check(rendered, f"{policy.name} ({policy.source})")
        return rendered

    def apply(self, policy: AnyPolicy, timeout: float) -> PolicyApplied:
        started = time.monotonic()
        live = self.state.rules_dir
        with self._lock():
            rendered = self.check(policy)
            checked = time.monotonic()
            previous = {name: (live / name).read_text() if (live / name).exists() else "" for name in POLICY_FILES}
            restart = json.loads(previous["engine.json"]) != rendered.engine
            self.engines.engine.write_policy(live, rendered)
            try:
                if restart:
                    self.engines.start(timeout=timeout)
                else:
                    self.engines.reload(timeout)
                self.engines.apply_stateless()
            except LabError:
                for name, text in previous.items():
                    (live / name).write_text(text)
                self.engines.start(timeout=timeout)
                self.engines.apply_stateless()
                raise
            self.state.write(policy=policy.summary(), home_net=rendered.home_net)
        done = time.monotonic()
        rules = rendered.rule_count
        return PolicyApplied(policy.name, policy.source, rules, rendered.home_net, restart,
                             round(checked - started, 3), round(done - checked, 3), round(done - started, 3),
                             tuple(rendered.warnings), tuple(rendered.notes))
