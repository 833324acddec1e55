#!/usr/bin/env python3
"""The emulated internet's web server: HTTP on :80 and HTTPS on :443.

Serves the domain names given in NFWLAB_DOMAINS (comma-separated): a request
whose Host is one of them gets 200 and a short text naming the host; any other
Host gets 421 Misdirected Request. HTTPS answers any SNI with one self-signed
certificate whose SANs list the served names.
"""
import http.server
import os
import ssl
import subprocess
import sys
import tempfile
import threading

DOMAINS = [d.strip().lower() for d in os.environ.get("NFWLAB_DOMAINS", "").split(",") if d.strip()]


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "nfwlab-web/1"
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        if host in DOMAINS:
            self._reply(200, f"hello from {host}\n")
        else:
            self._reply(421, f"{host or '(no Host)'} is not served here\n")

    do_HEAD = do_GET

    def _reply(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write(f"{self.client_address[0]} {fmt % args}\n")


def self_signed_context():
    workdir = tempfile.mkdtemp(prefix="nfwlab-web-")
    key, cert = os.path.join(workdir, "key.pem"), os.path.join(workdir, "cert.pem")
    sans = ",".join(f"DNS:{d}" for d in DOMAINS) or "DNS:localhost"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
         "-subj", "/CN=nfwlab internet", "-addext", f"subjectAltName={sans}",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


class TLSServer(Server):
    """Does the TLS handshake in the request's thread, not in accept(): a client
    whose ClientHello the firewall dropped must not stall the other clients."""

    def __init__(self, address, handler, context):
        super().__init__(address, handler)
        self.context = context

    def finish_request(self, request, client_address):
        request.settimeout(30)
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)


def main():
    plain = Server(("0.0.0.0", 80), Handler)
    tls = TLSServer(("0.0.0.0", 443), Handler, self_signed_context())
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    print(f"nfwlab-web: serving {', '.join(DOMAINS) or '(no names)'} on :80 and :443", flush=True)
    tls.serve_forever()


if __name__ == "__main__":
    main()
