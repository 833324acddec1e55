#!/usr/bin/env python3
"""The emulated internet's servers: HTTP on :80, HTTPS on :443, and an answer on every other port.

Serves the domain names given in NFWLAB_DOMAINS (comma-separated): a request
whose Host is one of them gets 200 and a short text naming the host (or, for
the path /bytes/N, N bytes: downloads of a known size); any other Host gets
421 Misdirected Request. HTTPS answers any SNI with one self-signed
certificate whose SANs list the served names.

The node's iptables send every other TCP port (but iperf3's 5201) to ANY_PORT, which speaks what the
client speaks (TLS, HTTP, or an echo of its bytes), UDP port 53 to a DNS server
that answers A queries with the web server's address (NXDOMAIN for names not
served), and every other UDP port but CLOSED_UDP_PORT to a UDP echo: whatever
crosses the firewall gets an answer, so a request that gets none was stopped.
"""
import http.server
import os
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import tempfile
import threading

ANY_PORT = 7  # TCP and UDP: what the node's REDIRECT rules send every other port to
DNS_PORT = 53
CLOSED_UDP_PORT = 9999  # left closed: the kernel answers ICMP port unreachable (tests of fragments and reject)
MAX_BYTES = 1 << 30  # the largest /bytes/N download
HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ")

DOMAINS = [d.strip().lower() for d in os.environ.get("NFWLAB_DOMAINS", "").split(",") if d.strip()]


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "nfwlab-web/1"
    protocol_version = "HTTP/1.1"
    # A client whose request the firewall dropped after the handshake never sends it, and its FIN is dropped
    # too: without a timeout the connection's thread would wait forever (the soak benchmark saw one thread
    # and one socket more per blocked HTTP request, 617 in 30 minutes). 30 s, as for the TLS handshake.
    timeout = 30

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        size = self.path[len("/bytes/"):] if self.path.startswith("/bytes/") else ""
        if host not in DOMAINS:
            self._reply(421, f"{host or '(no Host)'} is not served here\n")
        elif size.isdigit() and int(size) <= MAX_BYTES:
            self._send_bytes(int(size))
        elif size:
            self._reply(400, f"/bytes/N: N from 0 to {MAX_BYTES}\n")
        else:
            self._reply(200, f"hello from {host}\n")

    def _send_bytes(self, size):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command == "HEAD":
            return
        chunk = b"\0" * 65536
        while size > 0:
            self.wfile.write(chunk[:size])
            size -= min(size, len(chunk))

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
    # Hundreds of cases connect at once (nfwlab test): a short accept queue drops SYNs, and the client's
    # retransmission a second later makes a case slow or undecided.
    request_queue_size = 4096


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


class AnyPortServer(Server):
    """TCP on any other port: TLS when the first byte is a TLS handshake record, HTTP when the client starts
    with a method, else an echo of what it sends until it closes."""

    def __init__(self, address, context):
        super().__init__(address, Handler)
        self.context = context

    def finish_request(self, request, client_address):
        request.settimeout(30)
        try:
            first = request.recv(8, socket.MSG_PEEK)
            if first[:1] == b"\x16":
                super().finish_request(self.context.wrap_socket(request, server_side=True), client_address)
            elif first.startswith(HTTP_METHODS) or any(m.startswith(first) for m in HTTP_METHODS if first):
                super().finish_request(request, client_address)
            else:
                while data := request.recv(65536):
                    request.sendall(data)
        except (ssl.SSLError, OSError):
            return


class UdpEcho(socketserver.ThreadingUDPServer):
    daemon_threads = True


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(data, self.client_address)


def dns_answer(query, address):
    """The answer to a DNS query: A records of the served names are `address`, other names NXDOMAIN."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    pos, labels = 12, []
    while pos < len(query) and query[pos]:
        length = query[pos]
        labels.append(query[pos + 1:pos + 1 + length].decode(errors="replace"))
        pos += 1 + length
    question = query[12:pos + 5]
    if qdcount != 1 or len(question) < pos + 5 - 12:
        return None
    qtype = struct.unpack("!H", query[pos + 1:pos + 3])[0]
    name = ".".join(labels).lower()
    served = name in DOMAINS or any(name.endswith("." + d) for d in DOMAINS)
    rcode = 0 if served else 3
    answers = 1 if served and qtype == 1 else 0
    header = struct.pack("!HHHHHH", ident, 0x8180 | (flags & 0x0100) | rcode, 1, answers, 0, 0)
    body = question + (struct.pack("!HHHLH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(address) if answers else b"")
    return header + body


class DnsHandler(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        answer = dns_answer(data, self.server.address)
        if answer:
            sock.sendto(answer, self.client_address)


def main():
    context = self_signed_context()
    plain = Server(("0.0.0.0", 80), Handler)
    tls = TLSServer(("0.0.0.0", 443), Handler, context)
    any_port = AnyPortServer(("0.0.0.0", ANY_PORT), context)
    echo = UdpEcho(("0.0.0.0", ANY_PORT), EchoHandler)
    dns = UdpEcho(("0.0.0.0", DNS_PORT), DnsHandler)
    dns.address = os.environ.get("NFWLAB_WEB_SERVER", "127.0.0.1")
    for server in (plain, any_port, echo, dns):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"nfwlab-web: serving {', '.join(DOMAINS) or '(no names)'} on :80 and :443, every other TCP port, "
          f"DNS on udp/53 and a UDP echo", flush=True)
    tls.serve_forever()


if __name__ == "__main__":
    main()
