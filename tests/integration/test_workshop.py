"""The workshop on the real lab: who did it, diagrams, the live view in headless Chromium, the demo."""
import json
import os
import re
import struct
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from vpc_routes import assert_router_follows, topology_document

from lab import Lab
from lab.pytest_plugin import worker_lab_name

CLI = [sys.executable, "-m", "lab"]
SERVERS = {"server-a": "10.0.136.108", "server-b": "10.0.140.23"}
NAT = "10.0.13.92"
BLOCKED = "blocked.example"
ROOT = Path(__file__).resolve().parent.parent.parent


def blocked_from_both_at_once(lab, ports):
    """server-a and server-b request the denylisted name in the same instant; returns their alerts."""
    mark = lab.log_mark()
    start = threading.Barrier(2)

    def go(node):
        start.wait()
        lab.start_fetch(node, f"https://{BLOCKED}/", timeout=2, local_port=ports[node])
    threads = [threading.Thread(target=go, args=(n,)) for n in SERVERS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    alerts = lab.alert_log.wait_for({"event.tls.sni": BLOCKED}, since=mark.alert, count=2, timeout=10)
    first = {}
    for a in alerts:  # a dropped Client Hello is retransmitted: keep each flow's first alert
        first.setdefault(a["event"]["flow_id"], a)
    return list(first.values())


@pytest.mark.parametrize("nfwlab_topology", ["nat-first", "firewall-first"], indirect=True)
def test_who_names_each_server_in_both_designs(nfwlab_topology, nfwlab_ports, request):
    lab = nfwlab_topology
    design = request.node.callspec.params["nfwlab_topology"]
    assert_router_follows(lab, design)
    # Distinct source ports are the ground truth: the NAT gateway keeps a free port, so in nat-first
    # the alert's src_port says which server sent it. The ports lie above the servers' ephemeral range
    # (32768-60999): an earlier test's random port still in the NAT gateway's connection table would
    # otherwise take ours, and the gateway would re-map it.
    ports = {n: next(nfwlab_ports) for n in SERVERS}
    alerts = blocked_from_both_at_once(lab, ports)
    assert len(alerts) == 2
    by_port = {v: k for k, v in ports.items()}
    assert sorted(a["event"]["src_port"] for a in alerts) == sorted(ports.values())  # one alert per request
    for alert in alerts:
        event = alert["event"]
        sent_by = by_port[event["src_port"]]
        _, answer = lab.who(alert)
        assert answer.server == sent_by and answer.ip == SERVERS[sent_by], answer.evidence
        if design == "nat-first":
            assert event["src_ip"] == NAT and "nat-translations.log" in answer.evidence
        else:
            assert event["src_ip"] == SERVERS[sent_by] and "own" in answer.evidence


def test_who_tells_two_servers_apart_when_they_use_the_same_port(nfwlab, nfwlab_ports):
    nfwlab.switch("nat-first")
    port = next(nfwlab_ports)
    alerts = blocked_from_both_at_once(nfwlab, {"server-a": port, "server-b": port})
    assert len(alerts) == 2 and len({a["event"]["src_port"] for a in alerts}) == 2  # the NAT gateway re-mapped one
    answers = [nfwlab.who(a)[1] for a in alerts]
    assert {a.server for a in answers} == set(SERVERS)
    for alert, answer in zip(alerts, answers, strict=True):
        assert answer.translation["translated"]["sport"] == alert["event"]["src_port"]
        assert answer.translation["original"]["sport"] == port


def test_who_says_no_match_when_the_translation_is_missing(nfwlab, nfwlab_ports):
    nfwlab.switch("nat-first")
    alert = blocked_from_both_at_once(nfwlab, {n: next(nfwlab_ports) for n in SERVERS})[0]
    forged = {**alert, "event": {**alert["event"], "src_port": 9}}  # no connection ever used port 9
    _, answer = nfwlab.who(forged, wait=0.5)
    assert not answer.named and answer.evidence.startswith("no match: NAT gateway nat-gateway logged no translation")
    res = subprocess.run([*CLI, "--name", nfwlab.name, "who", "123"], capture_output=True, text=True)
    # Exit 1 (the request found nothing), as docs/cli.md gives it; 4 is a lab in the wrong state.
    assert res.returncode == 1 and "flow 123 has no alert" in res.stderr, res.stderr


def test_cli_who_and_diagram(nfwlab, nfwlab_ports, tmp_path):
    nfwlab.switch("nat-first")
    blocked_from_both_at_once(nfwlab, {n: next(nfwlab_ports) for n in SERVERS})
    res = subprocess.run([*CLI, "--name", nfwlab.name, "who"], capture_output=True, text=True)
    assert res.returncode == 0 and "who:   server-" in res.stdout and "NAT gateway nat-gateway" in res.stdout
    for name in ("nat-first.svg", "firewall-first.svg", "firewall-first.png"):
        out = tmp_path / name
        res = subprocess.run([*CLI, "--name", nfwlab.name, "diagram", "--topology", Path(name).stem,
                              "--dest", BLOCKED, "--out", str(out)], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    for design, sees in (("nat-first", "10.0.13.92"), ("firewall-first", "10.0.136.108")):
        svg = ET.parse(tmp_path / f"{design}.svg").getroot()
        texts = [t.text or "" for t in svg.iter() if t.tag.endswith("text")]
        assert f"sees source {sees}" in texts
        # Every node and route table of the topology file is drawn.
        doc = topology_document(design)
        for label in ([s["name"] for s in doc["servers"]] + [f"NAT gateway {n['name']}" for n in doc["nat_gateways"]]
                      + [f"firewall endpoint {e['name']}" for e in doc["firewall"]["endpoints"]]
                      + [f"route table {t['name']}" for t in doc["route_tables"] if "internet-gateway" not in
                         t["associations"]] + ["internet gateway"]):
            assert label in texts, f"{design}.svg draws no {label!r}: {texts}"
    # The PNG is a whole PNG image of the same drawing: the SVG's size in points at 96 pixels per inch.
    png = (tmp_path / "firewall-first.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR" and png[-8:-4] == b"IEND"
    width, height = struct.unpack(">II", png[16:24])
    size = re.match(r'<svg width="(\d+)pt" height="(\d+)pt"',
                    re.search(r"<svg [^>]*>", (tmp_path / "firewall-first.svg").read_text()).group(0))
    assert size, "the SVG gives no size in points"
    assert abs(width - int(size.group(1)) * 96 / 72) <= 1 and abs(height - int(size.group(2)) * 96 / 72) <= 1


def test_live_view_in_headless_chromium(nfwlab, nfwlab_ports):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from lab.ui import LiveView, browser
    nfwlab.switch("nat-first")
    view = LiveView(nfwlab, port=0)
    view.start()
    try:
        with browser() as page:
            page.get(view.url)
            wait = WebDriverWait(page, 20)
            wait.until(lambda d: d.find_element(By.ID, "design").text == "nat-first")
            assert page.find_elements(By.CSS_SELECTOR, "#diagram svg")
            assert "private-rtb" in page.find_element(By.ID, "routes").text
            page.find_element(By.ID, "design-firewall-first").click()
            wait.until(lambda d: d.find_element(By.ID, "design").text == "firewall-first")
            assert_router_follows(nfwlab, "firewall-first")
            assert "10.0.128.0/20" in page.find_element(By.ID, "routes").text  # the return route
            known = {str(a["event"]["flow_id"]) for a in nfwlab.alerts(aws=True)}
            port = next(nfwlab_ports)
            nfwlab.start_fetch("server-a", f"https://{BLOCKED}/", timeout=2, local_port=port)
            first_rows = ("return Array.from(document.querySelectorAll('tr.alert')).slice(0, 30).map(r => ("
                          "{flow: r.dataset.flow, src: r.querySelector('.src').textContent, "
                          "name: r.querySelector('.name').textContent, verdict: r.querySelector('.verdict')"
                          ".textContent, who: r.querySelector('.who').textContent}))")

            def server_a_alert(d):
                # New rows come first; earlier tests' retransmitted requests may still add rows of their own.
                return next((r for r in d.execute_script(first_rows)
                             if r["flow"] not in known and r["src"] == f"10.0.136.108:{port}"), None)
            row = wait.until(server_a_alert)
            assert row["name"] == BLOCKED and row["verdict"] == "drop" and row["who"] == "server-a"
            page.find_element(By.CSS_SELECTOR, f'tr.alert[data-flow="{row["flow"]}"]').click()
            wait.until(lambda d: "verdict: dropped by rule" in d.find_element(By.ID, "explain").text)
            assert f"flow {row['flow']}: TCP 10.0.136.108:{port} -> " in page.find_element(By.ID, "explain").text
    finally:
        view.stop()  # the nfwlab plugin puts nat-first back


def test_make_demo_tells_the_story(tmp_path):
    # Its own lab, started by the demo as `make demo` does on a new machine. The session's lab has seen
    # many blocked flows, and the demo's requests let the kernel choose their ports: one could land on
    # a flow the firewall still holds as dropped, and be dropped without an alert (see nfwlab_ports).
    lab = Lab(worker_lab_name("pytest-demo"))
    lab.down()
    env = {**os.environ, "NFWLAB": str(Path(sys.executable).parent / "nfwlab"), "DEMO_DIR": str(tmp_path)}
    try:
        res = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), "--name", lab.name, "--no-pause"],
                             capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    finally:
        lab.down()
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "Starting the lab" in out
    records = [json.loads(line) for line in out.splitlines() if line.startswith('{"firewall_name"')]
    assert [r["event"]["src_ip"] for r in records] == [NAT, SERVERS["server-a"]], out
    assert all(r["event"]["alert"]["signature"] == "matching TLS denylisted FQDNs" for r in records)
    answers = [line for line in out.splitlines() if line.startswith("who:")]
    assert answers == ["who:   server-a (10.0.136.108)"] * 2
    assert "translated 10.0.136.108:" in out and "is server-a's own" in out
    assert "route table igw-edge-rtb removed (no ingress routing)" in out
    assert (tmp_path / "nat-first.svg").exists() and (tmp_path / "firewall-first.svg").exists()
