"""A single request's verdict in the integration tests, decided from evidence: the firewall's own record of the
request's flow, found by the request's own client port, and the kind of failure the client saw. A failed
request alone is never taken for a block.

AWS, StatefulRule: "DROP - Blocks the packets from going to the intended destination and sends an alert log
message"; "REJECT - Drops traffic that matches the conditions of the stateful rule, and sends a TCP reset packet
back to sender of the packet." A drop leaves the client waiting until curl gives up (exit 28), a reject reset
(exit 7, 35, 52 or 56; lab/results.py FetchResult.failure). Any other failure (a name not resolved, a bad URL,
...) is no firewall's doing and fails the test with curl's error; a reset counts only with the firewall's
reject record of the same flow and its reject counter up (a port where nothing listens refuses too).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lab import Lab
from lab.errors import WaitTimeout
from lab.logs import Record
from lab.regress import PROBE_DIR, PROBE_SCRIPT
from lab.results import FetchResult
from lab.wait import Wait

DROP_WAIT = 3.0  # seconds a dropped request's client waits before it gives up (curl: exit 28)


@dataclass(frozen=True)
class Probed:
    """What the lab's prober (lab/probe.py) got for one plain TCP or UDP request: "answer" (the internet's echo
    came back), "reset", "timeout" or "error", and its detail."""

    url: str
    outcome: str
    detail: str

    @property
    def failure(self) -> str | None:
        return None if self.outcome == "answer" else self.outcome

    def describe(self) -> str:
        return f"{self.url} -> {self.outcome}: {self.detail}"


def request(lab: Lab, url: str, port: int, node: str = "server-a", timeout: float = DROP_WAIT
            ) -> FetchResult | Probed:
    """One request from client port `port`: curl for http(s)://, the lab's prober for tcp://HOST:PORT (the
    internet's echo on every port) and udp://HOST:PORT."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return lab.fetch(node, url, timeout=timeout, local_port=port)
    container = lab.docker.containers(lab.name)[node].id
    spec = [[1, parts.scheme, parts.hostname, parts.port, port, "", timeout]]
    lab.docker.put_files(container, PROBE_DIR, {"probe.py": PROBE_SCRIPT.read_bytes(),
                                                f"one-{port}.json": json.dumps(spec).encode()})
    code, out, err = lab.exec(node, ["python3", f"{PROBE_DIR}/probe.py", f"{PROBE_DIR}/one-{port}.json"])
    ended = [r for r in map(json.loads, out.splitlines()) if r.get("id") == 1]
    assert code == 0 and ended, f"the prober failed for {url} (exit {code}): {out} {err}"
    return Probed(url, ended[0]["outcome"], ended[0]["detail"])


def passes(lab: Lab, url: str, port: int, node: str = "server-a") -> FetchResult | Probed:
    """The request is answered: HTTP 200, or the internet's echo (it crossed the firewall both ways)."""
    result = request(lab, url, port, node, timeout=10)
    answered = result.status == 200 if isinstance(result, FetchResult) else result.failure is None
    assert answered, f"expected {url} to pass the firewall: {result.describe()}"
    return result


def rejected_packets(lab: Lab) -> int:
    """The firewall's RejectedPackets counter, every engine and endpoint together."""
    return sum(m.value for m in lab.metrics() if m.name == "RejectedPackets")


def _client(result: FetchResult | Probed, want: str, url: str) -> None:
    kinds = {"timeout": "nothing back until the client gave up (curl: exit 28), as a drop leaves it",
             "reset": "a reset (curl exit 7, 35, 52 or 56), as a reject leaves it"}
    assert result.failure == want, (
        f"expected {url} to get {kinds[want]}; got {result.failure or 'an answer'}: {result.describe()}")


def _record(lab: Lab, result: FetchResult | Probed, criteria: dict[str, Any], mark: Any, kind: str = "alert") -> Record:
    """The firewall's record of the request's flow: its alert, or (kind "drop") its drop record."""
    try:
        if kind == "drop":
            return lab.wait_for_drop(criteria, since=mark, timeout=5)
        return lab.wait_for_alert(criteria, since=mark, timeout=5)
    except WaitTimeout as e:
        raise AssertionError(f"the firewall logged no {kind} record of the request's own flow ({criteria}); "
                             f"the client got: {result.describe()}\n{e}") from None


def blocked(lab: Lab, url: str, port: int, criteria: dict[str, Any] | None = None, *, how: str = "drop",
            node: str = "server-a", side: str = "src_port", timeout: float = DROP_WAIT,
            exits: tuple[int, ...] = ()) -> Record:
    """The request from client port `port` is blocked: the firewall's blocking alert for that flow (matching
    `criteria`, and `side`, "src_port" or "dest_port" for an alert on the answer, equal to `port`) and the
    client's failure both say so; `how` "drop" (nothing back) or "reject" (a reset, the alert's verdict a
    tcp-reset, the reject counter up); `exits`: curl's exit codes the client may end with (default: any of
    that kind). Returns the alert."""
    mark = lab.log_mark()
    before = rejected_packets(lab) if how == "reject" else 0
    result = request(lab, url, port, node, timeout if how == "drop" else 10)
    if result.failure is None or result.failure == "error":
        raise AssertionError(f"expected {url} to be blocked by the firewall; the client got: {result.describe()}")
    alert = _record(lab, result, {**(criteria or {}), side: port}, mark)
    assert alert["alert"]["action"] == "blocked" and alert["verdict"]["action"] == "drop", alert
    _client(result, "timeout" if how == "drop" else "reset", url)
    if exits:
        assert isinstance(result, FetchResult) and result.curl_exit in exits, (
            f"expected curl to exit with one of {exits}: {result.describe()}")
    resets = alert["verdict"].get("reject", [])
    if how == "drop":
        assert not resets, f"a drop sent {resets}: {alert['verdict']}"
    else:
        assert "tcp-reset" in resets, f"the firewall's verdict sent no TCP reset: {alert['verdict']}"
        Wait("the firewall's RejectedPackets counter to count the reject", 5, interval=0.2).until(
            lambda: rejected_packets(lab) > before, report=lambda: f"it is {rejected_packets(lab)}, was {before}")
    return alert


def dropped_silently(lab: Lab, url: str, port: int, node: str = "server-a", timeout: float = DROP_WAIT) -> Record:
    """The request from client port `port` is dropped with no alert: the engine's drop record of the flow, no
    alert of that flow, and nothing back to the client. Returns the drop record."""
    mark = lab.log_mark()
    result = request(lab, url, port, node, timeout)
    _client(result, "timeout", url)
    drop = _record(lab, result, {"src_port": port}, mark, kind="drop")
    mine = [a for a in lab.alerts(since=mark) if a.get("flow_id") == drop["flow_id"]
            or port in (a.get("src_port"), a.get("dest_port"))]
    assert mine == [], f"a silent drop raised alerts: {mine}"
    return drop


def quiet_flow(lab: Lab, mark: Any, port: int, **criteria: Any) -> list[Record]:
    """The alerts of the request from client port `port` since `mark`, once its FLOW record shows the flow
    ended (an alert comes before it): the flow is found by its own port, so another flow's alert cannot hide
    it, and the FLOW record proves the filter finds the flow at all."""
    flow = lab.wait_for_flows({"event.src_port": port, **{f"event.{k}": v for k, v in criteria.items()}},
                              since=mark)[0]["event"]
    return [a for a in lab.alerts(since=mark) if a.get("flow_id") == flow["flow_id"]
            or port in (a.get("src_port"), a.get("dest_port"))]
