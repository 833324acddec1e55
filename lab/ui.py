"""UI: the live view of a running lab, served on 127.0.0.1.

One page: the current design's diagram and route tables, buttons to switch
to the designs that share the lab's VPC, and the alerts as they arrive
(source, destination, SNI/Host, verdict, signature, AZ, and the server `who`
names); a click on an alert explains its flow, engine by engine and hook by hook.
A small JSON API behind it:

    GET  /api/state            design, designs, route tables, diagram (SVG)
    GET  /api/alerts?since=N   ALERT log records from index N, each with who's answer
    GET  /api/explain?flow_id=N   what each engine did to flow N, hook by hook (lab/explain.py)
    POST /api/design           {"design": NAME} switches the design (routes only)

`screenshot()` opens the page in headless Chromium (Selenium) and saves it.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from .errors import ConfigError, EnvironmentProblem, LabError
from .lab import Lab, design_names
from .logs import lookup
from .who import who

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOWN = 100  # alerts a newly opened page starts with (the latest); new ones are added as they come

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nfwlab: __LAB__</title>
<style>
 body { font-family: Helvetica, Arial, sans-serif; margin: 16px; color: #222; }
 h1 { font-size: 20px; margin: 0 0 8px; } h2 { font-size: 15px; margin: 16px 0 6px; }
 #bar button { margin-right: 6px; padding: 4px 10px; border: 1px solid #888; background: #fff; cursor: pointer; }
 #bar button.current { background: #c0392b; color: #fff; border-color: #c0392b; }
 #top { display: flex; gap: 16px; align-items: flex-start; }
 #diagram svg { max-width: 640px; height: auto; }
 pre { font-size: 11px; background: #f4f6f7; padding: 8px; max-width: 620px; overflow-x: auto; }
 table { border-collapse: collapse; font-size: 12px; } td, th { border-bottom: 1px solid #ddd; padding: 3px 8px; }
 td.who { font-weight: bold; color: #c0392b; } tr.alert { cursor: pointer; } tr.alert:hover { background: #fdf2e9; }
 #explain { max-width: 100%; white-space: pre-wrap; }
</style></head><body>
<h1>nfwlab <span id="lab">__LAB__</span>: design <span id="design">?</span></h1>
<div id="bar"></div>
<div id="top"><div id="diagram"></div><div><h2>Route tables</h2><pre id="routes"></pre></div></div>
<h2>Alerts (<span id="count">0</span>): click one to explain its flow</h2>
<pre id="explain" hidden></pre>
<table><thead><tr><th>time</th><th>verdict</th><th>source</th><th>destination</th><th>SNI / Host</th>
<th>signature</th><th>AZ</th><th>who</th></tr></thead><tbody id="alerts"></tbody></table>
<script>
let next = 0;
async function state() {
  const s = await (await fetch('/api/state')).json();
  document.getElementById('design').textContent = s.design;
  document.getElementById('routes').textContent = s.route_tables;
  document.getElementById('diagram').innerHTML = s.diagram_svg;
  const bar = document.getElementById('bar'); bar.innerHTML = '';
  for (const d of s.designs) {
    const b = document.createElement('button'); b.textContent = d; b.id = 'design-' + d;
    if (d === s.design) b.className = 'current';
    b.onclick = async () => {
      await fetch('/api/design', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                  body: JSON.stringify({design: d})});
      await state();
    };
    bar.appendChild(b);
  }
}
async function alerts() {
  const r = await (await fetch('/api/alerts?since=' + next)).json();
  next = r.next;
  const body = document.getElementById('alerts');
  for (const a of r.alerts) {
    const tr = document.createElement('tr'); tr.className = 'alert'; tr.dataset.flow = a.flow_id;
    for (const [k, v] of [['time', a.time], ['verdict', a.verdict], ['src', a.src], ['dst', a.dst],
                          ['name', a.name], ['signature', a.signature], ['az', a.az], ['who', a.who]]) {
      const td = document.createElement('td'); td.className = k; td.textContent = v; td.title = a.why || '';
      tr.appendChild(td);
    }
    tr.onclick = async () => {
      const e = await (await fetch('/api/explain?flow_id=' + encodeURIComponent(a.flow_id))).json();
      const box = document.getElementById('explain');
      box.textContent = e.text || e.error; box.hidden = false;
    };
    body.insertBefore(tr, body.firstChild);
  }
  document.getElementById('count').textContent = body.children.length;
}
state(); alerts(); setInterval(alerts, 700);
</script></body></html>
"""


class LiveView:
    """The live view's HTTP server for one lab."""

    def __init__(self, lab: Lab, port: int = 8088, host: str = "127.0.0.1"):
        lab._require_up()
        self.lab = lab
        view = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, code: int, body: bytes, kind: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the browser went away (page closed or reloaded)

            def _json(self, code: int, data: Any) -> None:
                self._send(code, json.dumps(data).encode(), "application/json")

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                try:
                    if url.path == "/":
                        self._send(200, PAGE.replace("__LAB__", view.lab.name).encode(), "text/html; charset=utf-8")
                    elif url.path == "/api/state":
                        self._json(200, view.state())
                    elif url.path == "/api/alerts":
                        since = int(parse_qs(url.query).get("since", ["0"])[0])
                        self._json(200, view.alerts(since))
                    elif url.path == "/api/explain":
                        flow = parse_qs(url.query).get("flow_id", [""])[0]
                        if not flow.isdigit():
                            self._json(400, {"error": "give flow_id=N (a flow id of the ALERT log)"})
                            return
                        explained = view.lab.explain(int(flow))
                        self._json(200, {**explained.as_dict(), "text": explained.text()})
                    else:
                        self._json(404, {"error": f"no such page: {url.path}"})
                except LabError as e:
                    self._json(500, {"error": str(e)})

            def do_POST(self) -> None:  # noqa: N802
                if urlparse(self.path).path != "/api/design":
                    self._json(404, {"error": "no such page"})
                    return
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                    took = view.lab.switch(str(body.get("design", "")))
                    self._json(200, {"design": view.lab.topology_name, "seconds": took})
                except (LabError, ValueError) as e:
                    self._json(400, {"error": str(e)})

        try:
            self.server = ThreadingHTTPServer((host, port), Handler)
        except OSError as e:
            raise EnvironmentProblem(f"cannot serve the live view on {host}:{port}: {e}",
                                     "pick another --port") from None
        self.url = f"http://{host}:{self.server.server_address[1]}/"

    def designs(self) -> list[str]:
        """The shipped topologies a running lab can switch to: the same VPC, other route tables."""
        out = []
        for name in design_names():
            try:
                self.lab.load_route_tables(name)
                out.append(name)
            except ConfigError:
                continue
        return out

    def state(self) -> dict[str, Any]:
        return {"lab": self.lab.name, "design": self.lab.topology_name, "designs": self.designs(),
                "route_tables": self.lab.route_tables(),
                "diagram_svg": self.lab.diagram().pipe(format="svg").decode()}

    def alerts(self, since: int) -> dict[str, Any]:
        """ALERT log records from index `since`; a first call (since=0) gets the latest SHOWN only."""
        records = self.lab.alerts(aws=True)
        start = max(0, len(records) - SHOWN) if since == 0 else since
        translations = self.lab.nat_log.records()  # read once for every alert of this answer
        out = []
        for record in records[start:]:
            e = record["event"]
            answer = who(self.lab.vpc, record, translations)

            def get(path: str, default: str = "", e: dict[str, Any] = e) -> Any:
                try:
                    return lookup(e, path)
                except KeyError:
                    return default
            out.append({"time": e.get("timestamp", "")[11:23], "verdict": get("verdict.action", get("alert.action")),
                        "src": f"{e.get('src_ip')}:{e.get('src_port')}",
                        "dst": f"{e.get('dest_ip')}:{e.get('dest_port')}",
                        "name": get("tls.sni") or get("http.hostname"), "signature": get("alert.signature"),
                        "az": record.get("availability_zone"), "flow_id": str(e.get("flow_id")),
                        "who": answer.server or "no answer", "why": answer.evidence})
        return {"next": len(records), "alerts": out}

    def serve_forever(self) -> None:
        try:
            self.server.serve_forever()
        finally:
            self.server.server_close()

    def start(self) -> threading.Thread:
        """Serves in a background thread (stop with `stop()`)."""
        thread = threading.Thread(target=self.server.serve_forever, name="nfwlab-ui", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def screenshot(self, out: Path, width: int = 1400, height: int = 1150) -> Path:
        """Opens the page in headless Chromium and saves a PNG once the diagram is drawn."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
        self.start()
        try:
            with browser(width, height) as driver:
                driver.get(self.url)
                WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#diagram svg"))
                expected = len(self.lab.alerts(aws=True))
                WebDriverWait(driver, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.alert"))
                                                >= expected)
                driver.save_screenshot(str(out))
        finally:
            self.stop()
        return out


class browser:
    """Headless Chromium driven by Selenium (Debian's chromium and chromium-driver packages)."""

    def __init__(self, width: int = 1400, height: int = 1000):
        self.size = (width, height)

    def __enter__(self):
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
        if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
            raise EnvironmentProblem("Chromium and its WebDriver are missing",
                                     "install them: apt-get install chromium chromium-driver (`make host` does)")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    f"--window-size={self.size[0]},{self.size[1]}"):
            options.add_argument(arg)
        try:
            self.driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        except WebDriverException as e:
            raise EnvironmentProblem(f"headless Chromium did not start: {e.msg}", "check `chromium --version`") \
                from None
        return self.driver

    def __exit__(self, *exc: Any) -> None:
        self.driver.quit()
