"""Live trace: one real request, and what the firewall logged of it, held against the static trace.

The evidence is the first record of the flow: in the ALERT log (a blocked flow, at once), the FLOW log (an
allowed flow, when it ends), or a stream anomaly in an endpoint's EVE log (a flow seen from one side only:
asymmetric routing). The request is sent from a source port of its own and only records of that port count:
another request to the same destination, whose record lands after the mark, is not this one (a NAT gateway
keeps a client's port that no other flow uses).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import WaitTimeout
from .logs import EveLog, LabLogs, event_type, matches
from .model import Vpc
from .results import FetchResult, LiveTrace, LoggedSource
from .trace import Trace
from .wait import Wait


def trace_live(static: Trace, vpc: Vpc, logs: LabLogs, fetch: Callable[[str, str, int], FetchResult],
               local_port: int, timeout: float = 15.0) -> LiveTrace:
    """`fetch(node, url, local_port)` makes the request from `local_port`; the static trace says what the
    firewall should log."""
    mark = logs.mark()
    host = static.dest if not static.dest.replace(".", "").isdigit() else str(static.dest_ip)
    scheme = "https" if static.port == 443 else "http"
    result = fetch(static.source, f"{scheme}://{host}:{static.port}/", local_port)
    criteria = {"event.dest_ip": str(static.dest_ip), "event.dest_port": static.port, "event.src_port": local_port}
    sources: list[tuple[EveLog, Any, str | None, str]] = [
        (logs.alert_log, mark.alert, None, "ALERT log"), (logs.flow_log, mark.flow, None, "FLOW log")]
    sources += [(EveLog(path), mark.eve[i], e.availability_zone, "EVE stream anomaly")
                for i, (e, path) in enumerate(zip(vpc.endpoints, logs.eve.paths, strict=True))]

    def first_record() -> LoggedSource | None:
        for log, since, az, name in sources:
            for r in log.records(None, since):
                if matches({"event": r} if az else r, criteria) and (az is None or event_type(r) == "anomaly"):
                    event = r if az else r["event"]
                    return LoggedSource(event["src_ip"], az or r["availability_zone"], name, event["src_port"])
        return None
    try:
        live = Wait("the firewall's first record of the flow", timeout, interval=0.1).until(first_record)
    except WaitTimeout:
        live = None
    expected = static.request.seen[0] if static.request.seen else None
    agrees = (live is None and expected is None) or (
        live is not None and expected is not None and live.source == str(expected.src)
        and live.availability_zone == expected.availability_zone)
    return LiveTrace(static, result, live, agrees)
