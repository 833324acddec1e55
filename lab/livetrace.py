"""Live trace: one real request, and what the firewall logged of it, held against the static trace.

The evidence is the first record of the flow: in the ALERT log (a blocked flow, at once), the FLOW log (an
allowed flow, when it ends), or a stream anomaly in an endpoint's EVE log (a flow seen from one side only:
asymmetric routing).
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


def trace_live(static: Trace, vpc: Vpc, logs: LabLogs, fetch: Callable[[str, str], FetchResult],
               timeout: float = 15.0) -> LiveTrace:
    """`fetch(node, url)` makes the request; the static trace says what the firewall should log."""
    mark = logs.mark()
    host = static.dest if not static.dest.replace(".", "").isdigit() else str(static.dest_ip)
    scheme = "https" if static.port == 443 else "http"
    result = fetch(static.source, f"{scheme}://{host}:{static.port}/")
    criteria = {"event.dest_ip": str(static.dest_ip), "event.dest_port": static.port}
    sources: list[tuple[EveLog, Any, str | None, str]] = [
        (logs.alert_log, mark.alert, None, "ALERT log"), (logs.flow_log, mark.flow, None, "FLOW log")]
    sources += [(EveLog(path), mark.eve[i], e.availability_zone, "EVE stream anomaly")
                for i, (e, path) in enumerate(zip(vpc.endpoints, logs.eve.paths, strict=True))]

    def first_record() -> LoggedSource | None:
        for log, since, az, name in sources:
            for r in log.records(None, since):
                if matches({"event": r} if az else r, criteria) and (az is None or event_type(r) == "anomaly"):
                    event = r if az else r["event"]
                    return LoggedSource(event["src_ip"], az or r["availability_zone"], name)
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
