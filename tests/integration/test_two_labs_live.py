"""Two labs at once (R7), checked both ways: each lab's logs hold its own flows and none of the other's.

The session's lab and a second one (same addresses, another name) get a blocked and an allowed request each,
all four at once, every one from a client port of its own. Once each lab has logged its own flows (the alerts
of its blocked request, the FLOW records of its allowed one), every record of its eve.json, ALERT log, FLOW
log and NAT translation log since the requests started is read: the other lab's ports are in none of them."""
from __future__ import annotations

from typing import Any

from lab import Lab
from lab.logs import Record
from lab.pytest_plugin import worker_lab_name

BLOCKED, ALLOWED = "https://blocked.example/", "http://allowed.example/"


def ports_of(record: Record) -> set[int]:
    """The client and server ports a record names (a log record's event, either direction; a translation's
    original and translated client ports)."""
    event = record["event"] if isinstance(record.get("event"), dict) else record  # a NAT record's is "NEW"
    found = {event.get("src_port"), event.get("dest_port")}
    found |= {(record.get(side) or {}).get("sport") for side in ("original", "translated")}
    return {p for p in found if isinstance(p, int)}


def logged_ports(lab: Lab, mark: Any, nat_mark: Any) -> dict[str, set[int]]:
    """Every port in each of the lab's logs since the marks."""
    logs = {"eve.json": lab.eve.read(mark.eve)[0], "alert.log": lab.alert_log.read(mark.alert)[0],
            "flow.log": lab.flow_log.read(mark.flow)[0], "NAT log": lab.nat_log.read(nat_mark)[0]}
    return {name: set().union(*(ports_of(r) for r in records)) for name, records in logs.items()}


def test_two_labs_at_once_log_only_their_own_flows(nfwlab, nfwlab_ports, request):
    name = worker_lab_name(f"{request.config.getoption('--nfwlab-name')}-two")
    with Lab(name).running("firewall-first") as other:
        labs = {"session": nfwlab, "other": other}
        ports = {key: {"blocked": next(nfwlab_ports), "allowed": next(nfwlab_ports)} for key in labs}
        marks = {key: (lab.log_mark(), lab.nat_log.size()) for key, lab in labs.items()}
        for key, lab in labs.items():
            lab.start_fetch("server-a", BLOCKED, timeout=3, local_port=ports[key]["blocked"])
            lab.start_fetch("server-b", ALLOWED, local_port=ports[key]["allowed"])
        for key, lab in labs.items():
            mark = marks[key][0]
            alert = lab.wait_for_alert({"tls.sni": "blocked.example", "src_port": ports[key]["blocked"]}, since=mark)
            assert alert["verdict"]["action"] == "drop"
            lab.wait_for_flows({"event.src_port": ports[key]["allowed"], "event.dest_port": 80}, since=mark)
        seen = {key: logged_ports(lab, *marks[key]) for key, lab in labs.items()}
    assert other.topology_name is None  # the second lab is gone; the session's runs on
    for key, theirs in (("session", "other"), ("other", "session")):
        own, foreign = set(ports[key].values()), set(ports[theirs].values())
        assert own <= seen[key]["eve.json"] and ports[key]["blocked"] in seen[key]["alert.log"], (key, seen[key])
        assert ports[key]["allowed"] in seen[key]["flow.log"], (key, seen[key])
        leaked = {log: sorted(found & foreign) for log, found in seen[key].items() if found & foreign}
        assert not leaked, f"the {key} lab's logs hold the {theirs} lab's flows: {leaked}"
    assert nfwlab.fetch("server-a", ALLOWED).status == 200
