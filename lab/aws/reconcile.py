"""Reconciliation: the endpoint's state is the lab's desired state.

After every change the endpoint accepts, and once the calls have settled, the reconciler reads the account back
the way `nfwlab import` reads a dump (the same describe-* answers, the same importer), and moves the lab there:
up when a VPC with a firewall is complete, route tables switched live, policies applied live, the lab rebuilt only
when the VPC itself changed (servers, subnets, NAT gateways, endpoints), down when the firewall is gone.

Before a change is accepted, `before_commit` checks it the way the lab would: the policy and its rule groups
through the lab's parser and, on a running firewall, through the engine's own test mode. A refusal fails the API
call with AWS's error code and a message naming the rule; nothing changes.
"""
from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, LabError
from ..model import parse_topology
from ..nextgen import is_nextgen, parse_any_policy
from ..policy import parse_any_group
from .account import Imported, import_dump, write_imported
from .dump import Dump, rule_group_references
from .networkfirewall import AwsError

Snapshot = dict[str, Any]
Log = Callable[[str], None]


def policy_document(snapshot: Snapshot, described: dict[str, Any]) -> dict[str, Any]:
    """A describe-firewall-policy answer as the lab's one-file policy: its keys, plus the rule groups it
    references (their describe-rule-group answers) under RuleGroups."""
    by_arn = {g["RuleGroupResponse"]["RuleGroupArn"]: g for g in snapshot["rule_groups"]}
    doc = {k: v for k, v in described.items() if k != "UpdateToken"}
    v2 = is_nextgen(doc)
    arns = [e.get("ResourceArn") for _, _, e in rule_group_references(doc.get("FirewallPolicyV2" if v2 else
                                                                               "FirewallPolicy"), v2)]
    doc["RuleGroups"] = [{k: v for k, v in by_arn[a].items() if k != "UpdateToken"} for a in arns if a in by_arn]
    return doc


def _policy_name(described: dict[str, Any]) -> str:
    response = described.get("FirewallPolicyResponse") or described.get("FirewallPolicyV2Response") or {}
    return str(response.get("FirewallPolicyName") or response.get("FirewallPolicyV2Name") or "")


def policy_arn(described: dict[str, Any]) -> str:
    """The ARN of a describe-firewall-policy (or -v2) answer."""
    response = described.get("FirewallPolicyResponse") or described.get("FirewallPolicyV2Response") or {}
    return str(response.get("FirewallPolicyArn") or response.get("FirewallPolicyV2Arn") or "")


@dataclass
class Progress:
    """What the reconciler has done, as `GET /_nfwlab/status` shows it."""

    lab: str
    generation: int = 0          # changes the endpoint accepted
    reconciled: int = 0          # the generation the lab last caught up with
    state: str = "waiting"       # waiting (no complete VPC with a firewall) | up | error
    message: str = "no firewall yet"
    region: str | None = None
    topology_file: str | None = None
    policy_file: str | None = None
    notes: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)   # the last reconciliation's steps, with their seconds
    first_up_seconds: float | None = None              # from the first accepted change to the lab passing traffic

    @property
    def settled(self) -> bool:
        return self.reconciled == self.generation


class Reconciler:
    """Moves the lab to the endpoint's state, on a thread of its own, one reconciliation at a time."""

    def __init__(self, lab_name: str, workdir: Path, collect: Callable[[str, Snapshot], Dump],
                 lab_factory: Callable[..., Any], settle: float = 1.0, log: Log = print):
        self.workdir, self.collect, self.lab_factory, self.settle, self.log = workdir, collect, lab_factory, settle, log
        self.progress = Progress(lab_name)
        self.snapshot: Callable[[str], Snapshot] | None = None   # the API's state(region), set by the caller
        self._lock = threading.RLock()      # one lab operation at a time (reconcile, engine checks)
        self._progress_lock = threading.Lock()  # the progress only: status answers while the lab comes up
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._started: float | None = None
        self._lab: Any = None
        self._applied_policy: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._run, name="nfwlab-reconcile", daemon=True)

    # ------------------------------------------------------------ the API's hooks
    def before_commit(self, region: str, snapshot: Snapshot) -> None:
        """Refuses a change the lab would refuse (AWS's InvalidRequestException, naming the rule)."""
        firewalls = snapshot["firewalls"]
        if len(firewalls) > 1 or (firewalls and self.progress.region not in (None, region)
                                  and self._lab is not None):
            names = ", ".join(f["Firewall"]["FirewallName"] for f in firewalls)
            raise AwsError("InvalidRequestException", f"this endpoint runs one firewall (one lab), in one region; "
                           f"asked for {names} in {region}. Start another `nfwlab --name OTHER serve --port PORT` "
                           "for another firewall")
        for group in snapshot["rule_groups"]:
            name = group["RuleGroupResponse"]["RuleGroupName"]
            try:
                parse_any_group({k: v for k, v in group.items() if k != "UpdateToken"}, f"rule group {name}")
            except ConfigError as e:
                raise AwsError("InvalidRequestException", str(e)) from None
        used = {f["Firewall"]["FirewallPolicyArn"] for f in firewalls}
        for described in snapshot["policies"]:
            name = _policy_name(described)
            try:
                policy = parse_any_policy(policy_document(snapshot, described), f"firewall policy {name}")
            except ConfigError as e:
                raise AwsError("InvalidRequestException", str(e)) from None
            if policy_arn(described) in used:
                self._engine_check(policy)

    def _engine_check(self, policy: Any) -> None:
        """On a running firewall, the engine's own test mode too (as `nfwlab policy check`)."""
        with self._lock:
            lab = self._lab
            if lab is None or policy.kind != lab.policy_kind:
                return
            try:
                lab.check_policy(policy)
            except ConfigError as e:
                raise AwsError("InvalidRequestException", str(e)) from None

    def after_commit(self, region: str) -> None:
        with self._progress_lock:
            self.progress.generation += 1
            self.progress.region = region
            if self._started is None:
                self._started = time.monotonic()
        self._wake.set()

    # ---------------------------------------------------------------- the thread
    def start(self) -> None:
        self._thread.start()

    def stop(self, take_down: bool = True) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=120)
        with self._lock:
            if take_down and self._lab is not None:
                self._lab.down()
                self._lab = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            while self._wake.is_set() and not self._stop.is_set():  # let a burst of calls settle
                self._wake.clear()
                self._stop.wait(self.settle)
            if self._stop.is_set():
                return
            with self._progress_lock:
                generation, region = self.progress.generation, self.progress.region
            try:
                self.reconcile(region)
            except (LabError, AwsError) as e:
                self._set(state="error", message=str(e))
                self.log(f"nfwlab serve: {e}")
            except Exception as e:  # a bug must not kill the thread: report it and keep serving
                self._set(state="error", message=f"{type(e).__name__}: {e}")
                self.log(f"nfwlab serve: unexpected {type(e).__name__}: {e}")
            with self._progress_lock:
                self.progress.reconciled = generation

    def _set(self, **changes: Any) -> None:
        with self._progress_lock:
            for k, v in changes.items():
                setattr(self.progress, k, v)

    def status(self) -> dict[str, Any]:
        with self._progress_lock:
            out = asdict(self.progress)
            out["settled"] = self.progress.settled
            return out

    # ------------------------------------------------------------ reconciliation
    def reconcile(self, region: str | None) -> None:
        assert self.snapshot is not None
        snapshot = self.snapshot(region) if region else {"firewalls": []}
        with self._lock:
            if not snapshot["firewalls"]:
                self._down("the firewall was deleted" if self._lab is not None else "no firewall yet")
                return
            dump = self.collect(region or "", snapshot)
            try:  # the import checks the topology and the policy as the lab will
                imported = import_dump(dump, f"nfwlab serve ({region})")
            except ConfigError as e:
                # A VPC still being built (a route to a NAT gateway not made yet, say): wait for the next change.
                self._set(state="waiting" if self._lab is None else "up", message=f"waiting: {e}")
                self.log(f"nfwlab serve: not complete yet: {e}")
                return
            self._apply(imported)

    def _apply(self, imported: Imported) -> None:
        steps: list[str] = []

        def step(what: str, fn: Callable[[], Any]) -> None:
            started = time.monotonic()
            fn()
            steps.append(f"{what} ({time.monotonic() - started:.1f} s)")
            self.log(f"nfwlab serve: {steps[-1]}")

        lab, policy_doc = self._lab, imported.policy
        topology = parse_topology(imported.topology, "the endpoint's VPC")
        if lab is not None and lab.vpc.internet != topology.vpc.internet \
                and replace(topology.vpc, internet=lab.vpc.internet) == lab.vpc:
            # The internet's names come from the policy: a running lab keeps serving its own (changing them
            # restarts the internet node); names a later policy adds are served once the lab is rebuilt.
            imported = replace(imported, topology={**imported.topology, "internet": {
                **imported.topology["internet"], "domains": list(lab.vpc.internet.domains)}})
            topology = parse_topology(imported.topology, "the endpoint's VPC")
        # The files the lab runs from, as `nfwlab import` writes them (they also run with `nfwlab up`).
        topology_file, policy_file = write_imported(imported, self.workdir, "endpoint", force=True)
        kind_changed = lab is not None and is_nextgen(policy_doc) != is_nextgen(self._applied_policy or {})
        if lab is not None and (lab.vpc != topology.vpc or kind_changed):
            why = "the VPC changed" if lab.vpc != topology.vpc else "the policy changed kind"
            step(f"down: {why} (only route tables and policies change live)", lab.down)
            lab = self._lab = None
        if lab is None:
            lab = self.lab_factory(self.progress.lab, topology=topology_file, policy_file=policy_file)
            step(f"up: {len(topology.vpc.servers)} server(s), {len(topology.vpc.endpoints)} firewall endpoint(s)",
                 lab.up)
            self._lab, self._applied_policy = lab, copy.deepcopy(policy_doc)
            if self.progress.first_up_seconds is None and self._started is not None:
                self._set(first_up_seconds=round(time.monotonic() - self._started, 1))
        else:
            if lab.topology.route_tables.tables != topology.route_tables.tables:
                step("route tables switched live", lambda: lab.switch(topology_file))
            if policy_doc != self._applied_policy:
                step("policy applied live", lambda: lab.apply_policy(policy_file))
                self._applied_policy = copy.deepcopy(policy_doc)
        self._set(state="up", message=f"lab {self.progress.lab} is up" + ("" if steps else " (nothing to change)"),
                  topology_file=str(topology_file), policy_file=str(policy_file), notes=list(imported.notes),
                  actions=steps or self.progress.actions)

    def _down(self, why: str) -> None:
        if self._lab is not None:
            started = time.monotonic()
            self._lab.down()
            self._lab, self._applied_policy = None, None
            self.log(f"nfwlab serve: down: {why} ({time.monotonic() - started:.1f} s)")
        self._set(state="waiting", message=why, notes=[], actions=[])
