"""Logs are kept: rotated by size while the lab runs, with no record lost or read twice across a rotation, and
moved to an archive folder by `down` (or deleted by `down --purge`). A lab of its own with a 20k rotation size,
so that a burst of requests rotates every log several times; the archive root is the session's (conftest.py)."""
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from lab import Lab
from lab.logs import GENERATION, LabLogs, Record, log_parts
from lab.pytest_plugin import worker_lab_name
from lab.wait import Wait

CLI = [sys.executable, "-m", "lab"]
REQUESTS = 40  # blocked requests, and as many allowed ones, all at once


@pytest.fixture(scope="module")
def lab(request):
    name = worker_lab_name(f"{request.config.getoption('--nfwlab-name')}-logs")
    lab = Lab(name, log_max_size="20k", log_keep=500)  # enough parts that none is dropped during the test
    lab.down(purge=True)
    lab.up("firewall-first")  # the firewall sees each server's own source port
    yield lab
    lab.down(purge=True)


def burst(lab: Lab, blocked: list[int], allowed: list[int]) -> None:
    """Every request at once from server-a, each from its own source port; returns when all have ended, each
    having ended as its verdict leaves a client: the allowed answered (HTTP 200), the blocked with nothing back
    until curl gave up (exit 28; the firewall's records of each are checked by the tests)."""
    requests = [(p, "blocked.example", 3) for p in blocked] + [(p, "allowed.example", 15) for p in allowed]
    # One line per request, written at once (requests end together): "HTTP-STATUS PORT CURL-EXIT".
    script = "".join(f"(s=$(curl -sk -o /dev/null -w '%{{http_code}}' --max-time {wait} --local-port {p} "
                     f'https://{host}/); echo "$s {p} $?") & ' for p, host, wait in requests) + "wait"
    _, out, err = lab.exec("server-a", ["sh", "-c", script])
    ended = {int(port): (int(code), status) for status, port, code in (line.split() for line in out.splitlines())}
    want = {**{p: (28, "000") for p in blocked}, **{p: (0, "200") for p in allowed}}
    wrong = {p: ended.get(p) for p in want if ended.get(p) != want[p]}
    assert not wrong, f"(curl exit, HTTP status) by client port, not as expected: {wrong}\n{err[-500:]}"


def key(event: Record) -> str:
    return json.dumps(event, sort_keys=True)


def test_rotation_under_load_loses_and_repeats_no_record(lab, nfwlab_ports):
    blocked = [next(nfwlab_ports) for _ in range(REQUESTS)]
    allowed = [next(nfwlab_ports) for _ in range(REQUESTS)]
    ours = set(blocked) | set(allowed)
    mark = lab.log_mark()
    nat_mark = lab.nat_log.size()[0]
    followed: list[Record] = []
    stop = threading.Event()

    def follow() -> None:
        for record in lab.alert_log.follow(mark.alert, poll=0.01, stop=stop.is_set):
            if record["event"]["src_port"] in ours:
                followed.append(record["event"])
    follower = threading.Thread(target=follow)
    follower.start()
    try:
        burst(lab, blocked, allowed)

        def eve_alerts() -> list[Record]:
            return [a for a in lab.alerts(since=mark) if a["src_port"] in ours]

        def logged_alerts() -> list[Record]:
            return [a["event"] for a in lab.alerts(since=mark, aws=True) if a["event"]["src_port"] in ours]

        def delivered() -> bool:
            """Every blocked request's alert is in the ALERT log, and that log holds what eve.json holds."""
            logged = logged_alerts()
            return {a["src_port"] for a in logged} >= set(blocked) and \
                Counter(map(key, logged)) == Counter(map(key, eve_alerts()))
        Wait(f"the alerts of {REQUESTS} blocked requests in eve.json and in the ALERT log", 30).until(
            delivered, lambda: f"{len(eve_alerts())} alerts in eve.json, {len(logged_alerts())} in the ALERT log")

        def translations() -> list[Record]:
            return [r for r in lab.nat_log.records(since=nat_mark)
                    if r["event"] == "NEW" and r["original"]["sport"] in ours]
        Wait("the NAT gateway's translation of every request", 30).until(
            lambda: {r["original"]["sport"] for r in translations()} >= ours)

        def netflows() -> list[Record]:
            return [f["event"] for f in lab.flows(since=mark) if f["event"]["src_port"] in allowed_set
                    or f["event"]["dest_port"] in allowed_set]
        allowed_set = set(allowed)
        Wait("the FLOW log's records of every allowed request (once it has ended)", 60).until(
            lambda: len(netflows()) >= 2 * REQUESTS)
        Wait("the follower to read the ALERT log's records", 30).until(
            lambda: len(followed) >= len(logged_alerts()))
    finally:
        stop.set()
        follower.join()
    logged, in_eve, translated, flowed = logged_alerts(), eve_alerts(), translations(), netflows()
    # Each blocked request is one flow with its alert(s) (a retransmitted Client Hello is alerted again), no
    # allowed request has one, and no record is there twice, in either log.
    flows = {p: {a["flow_id"] for a in logged if a["src_port"] == p} for p in blocked}
    assert all(len(ids) == 1 for ids in flows.values()), flows
    assert len({i for ids in flows.values() for i in ids}) == REQUESTS
    assert not {a["src_port"] for a in logged} & set(allowed)
    assert max(Counter(map(key, logged)).values()) == 1 and max(Counter(map(key, in_eve)).values()) == 1
    # The follower, reading while the files rotated under it, saw the same records in the same order.
    assert list(map(key, followed)) == list(map(key, logged))
    # Each allowed request's flow has its two FLOW records (one per direction), once each.
    directions = [(f["flow_id"], f["src_port"]) for f in flowed]
    assert len(directions) == len(set(directions)) == 2 * REQUESTS
    # The NAT gateway logged each connection once, across its log's rotations too.
    assert sorted(r["original"]["sport"] for r in translated) == sorted(ours)
    # And every log did rotate meanwhile, its parts kept.
    after = lab.log_mark()
    for name, before, now in (("eve.json", mark.eve[0], after.eve[0]), ("alert.log", mark.alert[0], after.alert[0]),
                              ("flow.log", mark.flow[0], after.flow[0]),
                              ("nat-translations.log", nat_mark, lab.nat_log.size()[0])):
        assert now // GENERATION > before // GENERATION, f"{name} did not rotate"
    for path in (*lab.eve.paths, lab.alert_log.path, lab.nat_log.path):
        assert len(log_parts(path)) > 1


def test_down_archives_the_logs_and_down_purge_leaves_nothing(lab, nfwlab_ports):
    root = Path(os.environ["NFWLAB_ARCHIVE_ROOT"])
    assert root.is_dir() and not str(root).startswith("/var/lib/nfwlab")  # the session's own (conftest.py)
    blocked = [next(nfwlab_ports) for _ in range(3)]
    mark = lab.log_mark()
    burst(lab, blocked, [])
    Wait("the 3 blocked requests' alerts", 30).until(
        lambda: {a["event"]["src_port"] for a in lab.alerts(since=mark, aws=True)} >= set(blocked))
    alerts, flows = lab.alerts(aws=True), lab.flows()
    endpoints = [e.name for e in lab.vpc.endpoints]
    report = lab.down()
    assert report.archive is not None and Path(report.archive).parent == root
    assert not lab.state_dir.exists() and lab.docker.containers(lab.name) == {}
    archive = Path(report.archive)
    kept = LabLogs(archive / "logs", endpoints)
    # Every part of every log as it was, and what the firewall wrote while it stopped (flows it flushed).
    assert kept.alerts(aws=True)[:len(alerts)] == alerts and kept.flows()[:len(flows)] == flows
    assert {a["event"]["src_port"] for a in kept.alerts(aws=True)} >= set(blocked)
    assert (archive / "rules" / "lab.rules").read_text() and (archive / "topology.yaml").exists()
    assert json.loads((archive / "lab.json").read_text())["log_max_size"] == 20 * 1024

    lab.up("firewall-first")
    before = sorted(root.iterdir())
    res = subprocess.run([*CLI, "--name", lab.name, "down", "--purge"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "logs purged" in res.stdout
    assert not lab.state_dir.exists() and lab.docker.containers(lab.name) == {}
    assert sorted(root.iterdir()) == before
