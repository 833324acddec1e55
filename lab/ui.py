"""UI: the live view of a running lab, served on 127.0.0.1.

One page: the current design's diagram and route tables, buttons to switch
to the designs that share the lab's VPC, and the alerts as they arrive
(source, destination, SNI/Host, verdict, signature, AZ, and the server `who`
names); a click on an alert explains its flow, engine by engine and hook by hook.
The page, its script and its style are files in lab/ui_static/. A small JSON API behind it:

    GET  /api/state            design, designs, route tables, diagram (SVG)
    GET  /api/alerts?since=N   ALERT log records from index N, each with who's answer
    GET  /api/explain?flow_id=N   what each engine did to flow N, hook by hook (lab/explain.py)
    POST /api/design           {"design": NAME} switches the design (routes only)

Any web page the developer opens can send requests to 127.0.0.1, so the server answers only its own page:
a `Host` other than its own address is refused (a name rebound to 127.0.0.1 sends its own name), a switch
needs the page's own `Origin`, the token this start put in the page, a JSON body and a shipped topology's
name (never a path), and no answer carries a CORS header, so another origin's script cannot read one.

`screenshot()` opens the page in headless Chromium (Selenium) and saves it.
"""
from __future__ import annotations

import hmac
import html
import json
import re
import secrets
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlparse

from .errors import ConfigError, EnvironmentProblem, LabError
from .lab import Lab, design_names
from .logs import lookup
from .who import who

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOWN = 100  # alerts a newly opened page starts with (the latest); new ones are added as they come
STATIC = Path(__file__).with_name("ui_static")
FILES = {"/app.js": ("app.js", "text/javascript; charset=utf-8"), "/app.css": ("app.css", "text/css; charset=utf-8")}
TOKEN_HEADER = "X-NFWLab-Token"
MAX_BODY = 4096  # bytes of a switch request: {"design": NAME} is a few dozen
REQUEST_TIMEOUT = 30.0  # seconds a client may keep a connection's thread waiting on its request
DESIGN_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Content-Security-Policy", CSP),
                    ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-store"),
                    ("Cross-Origin-Resource-Policy", "same-origin"))


class Refusal(NamedTuple):
    """A request the live view refused, and why (kept so a test or a user can see what was tried)."""
    method: str
    path: str
    status: int
    reason: str


class Refused(Exception):
    """A request refused before it reaches the lab: the HTTP status and the reason sent back."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class LiveView:
    """The live view's HTTP server for one lab, on 127.0.0.1 (port 0: any free port)."""

    def __init__(self, lab: Lab, port: int = 8088):
        lab._require_up()
        self.lab = lab
        self.token = secrets.token_urlsafe(32)  # per start: the page carries it, another origin cannot read it
        self.refused: deque[Refusal] = deque(maxlen=200)
        self._switching = threading.Lock()
        view = self

        class Handler(BaseHTTPRequestHandler):
            timeout = REQUEST_TIMEOUT  # the connection's socket timeout: a stuck client frees its thread

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def end_headers(self) -> None:
                for name, value in SECURITY_HEADERS:  # every answer, errors included
                    self.send_header(name, value)
                super().end_headers()

            def _send(self, code: int, body: bytes, kind: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the browser went away (page closed or reloaded)

            def _json(self, code: int, data: Any) -> None:
                self._send(code, json.dumps(data).encode(), "application/json")

            def _refuse(self, refused: Refused, path: str) -> None:
                view.refused.append(Refusal(self.command, path, refused.status, refused.reason))
                if refused.status == 421:  # not this server: plain text, nothing of the lab
                    self._send(421, f"421 Misdirected Request: {refused.reason}\n".encode(),
                               "text/plain; charset=utf-8")
                else:
                    self._json(refused.status, {"error": refused.reason})

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                try:
                    view.check_host(self.headers.get_all("Host") or [])
                    if url.path == "/":
                        self._send(200, view.page(), "text/html; charset=utf-8")
                    elif url.path in FILES:
                        name, kind = FILES[url.path]
                        self._send(200, (STATIC / name).read_bytes(), kind)
                    elif url.path == "/api/state":
                        self._json(200, view.state())
                    elif url.path == "/api/alerts":
                        since = parse_qs(url.query).get("since", ["0"])[0]
                        if not since.isdigit():
                            raise Refused(400, "give since=N (an index of the ALERT log)")
                        self._json(200, view.alerts(int(since)))
                    elif url.path == "/api/explain":
                        flow = parse_qs(url.query).get("flow_id", [""])[0]
                        if not flow.isdigit():
                            raise Refused(400, "give flow_id=N (a flow id of the ALERT log)")
                        explained = view.lab.explain(int(flow))
                        self._json(200, {**explained.as_dict(), "text": explained.text()})
                    else:
                        self._json(404, {"error": f"no such page: {url.path}"})
                except Refused as e:
                    self._refuse(e, url.path)
                except LabError as e:
                    self._json(500, {"error": str(e)})

            def do_POST(self) -> None:  # noqa: N802
                path = urlparse(self.path).path
                try:
                    view.check_host(self.headers.get_all("Host") or [])
                    if path != "/api/design":
                        self._json(404, {"error": f"no such page: {path}"})
                        return
                    view.check_switch_request(self.headers.get("Origin"), self.headers.get(TOKEN_HEADER),
                                              self.headers.get_content_type())
                    design = view.design_from_web(self._body())
                    with view._switching:
                        took = view.lab.switch(design)
                    self._json(200, {"design": view.lab.topology_name, "seconds": took})
                except Refused as e:
                    self._refuse(e, path)
                except LabError as e:
                    self._json(500, {"error": str(e)})

            def _body(self) -> bytes:
                length = self.headers.get("Content-Length", "")
                if not length.isdigit():
                    raise Refused(411, "give the body's Content-Length")
                if int(length) > MAX_BODY:
                    raise Refused(413, f"a switch request is {{\"design\": NAME}}: at most {MAX_BODY} bytes")
                return self.rfile.read(int(length))

        try:
            self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError as e:
            raise EnvironmentProblem(f"cannot serve the live view on 127.0.0.1:{port}: {e}",
                                     "pick another --port") from None
        self.port = self.server.server_address[1]
        self.hosts = (f"127.0.0.1:{self.port}", f"localhost:{self.port}")
        self.origins = tuple(f"http://{h}" for h in self.hosts)
        self.url = f"http://127.0.0.1:{self.port}/"

    def page(self) -> bytes:
        """The page, with the lab's name and this start's token in it."""
        text = (STATIC / "index.html").read_text()
        return text.replace("__LAB__", html.escape(self.lab.name)).replace("__TOKEN__", self.token).encode()

    def check_host(self, hosts: list[str]) -> None:
        """One Host header, naming this server: a page on a name rebound to 127.0.0.1 sends its own name."""
        if len(hosts) != 1 or hosts[0] not in self.hosts:
            given = ", ".join(repr(h[:100]) for h in hosts) or "no Host header"
            raise Refused(421, f"{given} is not this live view ({' or '.join(self.hosts)})")

    def check_switch_request(self, origin: str | None, token: str | None, content_type: str) -> None:
        """A switch comes from this server's own page: its Origin, its token, and a JSON body (a cross-site
        form or a "simple" fetch can only send text/plain, form or multipart bodies)."""
        if origin not in self.origins:
            raise Refused(403, f"a switch must come from the live view's own page ({' or '.join(self.origins)}), "
                          f"not from {origin or 'a request without an Origin'}")
        if token is None or not hmac.compare_digest(token.encode(), self.token.encode()):
            raise Refused(403, f"a switch must carry the live view's token ({TOKEN_HEADER}): reload the page")
        if content_type != "application/json":
            raise Refused(415, f"a switch request's body is JSON (Content-Type: application/json), "
                          f"not {content_type}")

    def design_from_web(self, body: bytes) -> str:
        """The design a switch request names: one of `designs()`, by name. A path is refused before any file
        is looked at: the web names a shipped topology, never a file on this host."""
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        name = request.get("design") if isinstance(request, dict) else None
        if not isinstance(name, str):
            raise Refused(400, 'the body must be {"design": NAME}')
        if not DESIGN_NAME.fullmatch(name):
            raise Refused(400, f"{name[:100]!r} is not a topology name: the live view switches to the shipped "
                          "topologies by name, never to a file (`nfwlab switch FILE` does)")
        designs = self.designs()
        if name not in designs:
            raise Refused(400, f"{name!r} is not a design this lab can switch to: {', '.join(designs)}")
        return name

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
        thread = threading.Thread(target=self.server.serve_forever, args=(0.1,), name="nfwlab-ui", daemon=True)
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
