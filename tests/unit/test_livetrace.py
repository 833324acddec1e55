"""`trace --live` counts only its own request's record: by the source port it sent from (no Docker: the
request is a function that writes the firewall's records as the real firewall would)."""
import json
from pathlib import Path

from lab.livetrace import trace_live
from lab.logs import LabLogs
from lab.model import load_topology
from lab.results import FetchResult, LoggedSource
from lab.trace import trace

ROOT = Path(__file__).resolve().parents[2]
NAT = "10.0.13.92"
WEB = "203.0.113.10"
OURS, OTHER = 61001, 61002


def alert(src_port):
    """The ALERT log's record of a blocked request from the NAT gateway to blocked.example:443."""
    return {"firewall_name": "nfwlab-firewall", "availability_zone": "ap-northeast-1a", "event_timestamp": "1",
            "event": {"event_type": "alert", "src_ip": NAT, "src_port": src_port, "dest_ip": WEB, "dest_port": 443,
                      "proto": "TCP", "flow_id": src_port, "alert": {"action": "blocked"}}}


def live(tmp_path, written):
    """A live trace of server-b -> blocked.example:443 in nat-first, whose request makes the firewall write
    `written` (records of the ALERT log) after the trace's mark."""
    topology = load_topology(ROOT / "topologies" / "nat-first.yaml")
    (tmp_path / "firewall").mkdir()
    logs = LabLogs(tmp_path, ["firewall"])
    sent = []

    def fetch(node, url, local_port):
        sent.append((node, url, local_port))
        with (tmp_path / "alert.log").open("a") as f:
            f.writelines(json.dumps(r) + "\n" for r in written)
        return FetchResult(node, url, None, 28, "timed out", 3.0)
    static = trace(topology.vpc, topology.route_tables, "server-b", "blocked.example", 443)
    result = trace_live(static, topology.vpc, logs, fetch, OURS, timeout=0.5)
    assert sent == [("server-b", "https://blocked.example:443/", OURS)]
    return result


def test_a_stale_alert_to_the_same_destination_is_not_the_requests_own(tmp_path):
    # Another request's alert (the NAT gateway to the same address and port) lands after the mark, before ours.
    result = live(tmp_path, [alert(OTHER), alert(OURS)])
    assert result.firewall_logged == LoggedSource(NAT, "ap-northeast-1a", "ALERT log", OURS)
    assert result.agrees


def test_only_a_stale_alert_is_no_agreement(tmp_path):
    result = live(tmp_path, [alert(OTHER)])
    assert result.firewall_logged is None
    assert not result.agrees  # the static trace says the firewall sees the flow; nothing of ours was logged
