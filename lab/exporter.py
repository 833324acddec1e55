"""The metrics exporter: `nfwlab metrics --prometheus` serves the lab's metrics to Prometheus on 127.0.0.1.

Only GET /metrics, only with a Host header naming this address and port (a page on another site cannot
read it through DNS rebinding), no CORS headers (browsers do not let other origins read it)."""
from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .metrics import Metric, prometheus_text

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsExporter(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, metrics: Callable[[], list[Metric]], port: int = 9108):
        self.metrics = metrics
        super().__init__(("127.0.0.1", port), _Handler)
        self.port = self.server_address[1]
        self.hosts = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"


class _Handler(BaseHTTPRequestHandler):
    server: MetricsExporter

    def _answer(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.headers.get("Host") not in self.server.hosts:
            self._answer(421, b"wrong Host: this exporter answers only to 127.0.0.1 and localhost\n")
        elif self.path.split("?", 1)[0] != "/metrics":
            self._answer(404, b"only /metrics\n")
        else:
            self._answer(200, prometheus_text(self.server.metrics()), CONTENT_TYPE)

    def do_POST(self) -> None:  # noqa: N802
        self._answer(405, b"read only\n")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # scrapes every few seconds would flood the terminal
