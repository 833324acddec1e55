"""The live view against a web page of another origin, on a real lab: headless Chromium opens an "attacker" page
served from another port of 127.0.0.1, whose script tries to switch the lab (a no-cors text/plain fetch, a
text/plain form, a JSON fetch) and to read its state and its page. The browser, the server and the VPC router's
kernel routes (their next hops, held against the topology file: tests/vpc_routes.py) say it failed. The same
server against forged Host headers, with requests."""
from __future__ import annotations

import html
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from vpc_routes import assert_router_follows, router_differences

from lab.ui import CHROMIUM, LiveView

ATTACK = """<!doctype html><html><head><meta charset="utf-8"><title>attacker</title></head><body>
<pre id="out"></pre>
<iframe name="sink"></iframe>
<form id="form" method="POST" action="__TARGET__/api/design" enctype="text/plain" target="sink">
<input name='{"design":"firewall-first","x":"' value='"}'></form>
<script>
const target = '__TARGET__';
const out = document.getElementById('out');
function say(line) { out.textContent += line + '\\n'; }
(async () => {
  try {
    const r = await fetch(target + '/api/design', {method: 'POST', mode: 'no-cors',
                          headers: {'Content-Type': 'text/plain'}, body: '{"design":"firewall-first"}'});
    say('no-cors POST answered: type=' + r.type + ' status=' + r.status + ' body=[' + await r.text() + ']');
  } catch (e) { say('no-cors POST failed: ' + e); }
  try {
    const r = await fetch(target + '/api/design', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                   body: '{"design":"firewall-first"}'});
    say('READ json POST: ' + r.status + ' ' + await r.text());
  } catch (e) { say('json POST unreadable: ' + e); }
  for (const path of ['/api/state', '/api/alerts', '/']) {
    try { say('READ ' + path + ': ' + await (await fetch(target + path)).text()); }
    catch (e) { say(path + ' unreadable: ' + e); }
  }
  document.getElementById('form').submit();
  say('form sent');
  say('DONE');
})();
</script></body></html>
"""


@pytest.fixture
def view(nfwlab) -> Iterator[LiveView]:
    """The live view of the session lab in nat-first (the nfwlab plugin puts nat-first back after the test)."""
    nfwlab.switch("nat-first")
    server = LiveView(nfwlab, port=0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def attacker(view) -> Iterator[tuple[str, list[str]]]:
    """Another origin on this machine serving the attack page; yields its origin and the paths it was asked."""
    asked: list[str] = []
    page = ATTACK.replace("__TARGET__", view.url.rstrip("/")).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            asked.append(self.path)
            self.send_response(200 if self.path == "/" else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def chromium_dom(url: str, profile: Path) -> str:
    """The page's DOM once its script has run (virtual time lets the timers run; fetches hold it)."""
    res = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={profile}", "--virtual-time-budget=20000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def test_a_page_of_another_origin_can_neither_switch_the_lab_nor_read_it(nfwlab, view, attacker, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (scripts/install-host.sh installs it)")
    origin, asked = attacker
    assert_router_follows(nfwlab, "nat-first")
    assert router_differences(nfwlab, "firewall-first")  # a switch would show
    dom = chromium_dom(origin + "/", tmp_path / "chromium")
    assert asked[:1] == ["/"]
    said = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
    assert said, dom
    lines = html.unescape(said.group(1)).splitlines()
    assert lines[-2:] == ["form sent", "DONE"], f"the attack page's script did not run to its end:\n{dom}"
    # What the page's script could read: nothing. Every answer is withheld from it: the no-cors POST's by the
    # answer's Cross-Origin-Resource-Policy, the others by the missing CORS headers.
    assert lines[:-2] == [f"{what} {'failed' if what == 'no-cors POST' else 'unreadable'}: TypeError: Failed to fetch"
                          for what in ("no-cors POST", "json POST", "/api/state", "/api/alerts", "/")], lines
    for secret in ("private-rtb", "10.0.13.92", "nat-gateway", "nfwlab-token", view.token):
        assert secret not in dom, f"the attack page read {secret!r}:\n{dom}"
    # The server saw both cross-site POSTs (the fetch and the form) and refused them on their Origin; the JSON
    # fetch stopped at its preflight (OPTIONS is not served), so it never came.
    posts = [r for r in view.refused if r.method == "POST" and r.path == "/api/design"]
    assert [(r.status, origin in r.reason) for r in posts] == [(403, True), (403, True)], view.refused
    # The lab still runs nat-first: the VPC router's kernel routes.
    assert_router_follows(nfwlab, "nat-first")


def test_a_forged_host_is_refused_by_the_live_server(nfwlab, view):
    port = view.port
    for host in (f"evil.example:{port}", f"127.0.0.1.nip.example:{port}", "127.0.0.1"):
        for path in ("/", "/api/state", "/api/alerts"):
            forged = requests.get(view.url.rstrip("/") + path, headers={"Host": host}, timeout=10)
            assert forged.status_code == 421 and "is not this live view" in forged.text
            assert "private-rtb" not in forged.text and "src_ip" not in forged.text and view.token not in forged.text
        switch = requests.post(view.url + "api/design", data=json.dumps({"design": "firewall-first"}), timeout=10,
                               headers={"Host": host, "Origin": f"http://{host}", "X-NFWLab-Token": view.token,
                                        "Content-Type": "application/json"})
        assert switch.status_code == 421
    state = requests.get(view.url + "api/state", timeout=10)
    assert state.status_code == 200 and "private-rtb" in state.json()["route_tables"]
    assert_router_follows(nfwlab, "nat-first")


def test_the_pages_own_switch_changes_the_kernel_routes(nfwlab, view):
    """The control: the same request with the page's origin and token does switch the lab."""
    headers = {"Origin": view.url.rstrip("/"), "X-NFWLab-Token": view.token, "Content-Type": "application/json"}
    answer = requests.post(view.url + "api/design", data=json.dumps({"design": "firewall-first"}), headers=headers,
                           timeout=30)
    assert answer.status_code == 200, answer.text
    assert_router_follows(nfwlab, "firewall-first")
    answer = requests.post(view.url + "api/design", data=json.dumps({"design": "nat-first"}), headers=headers,
                           timeout=30)
    assert answer.status_code == 200, answer.text
    assert_router_follows(nfwlab, "nat-first")
