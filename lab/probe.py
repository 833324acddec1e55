"""The prober: many requests at once from inside a node, each from its own source port.

The runner (lab/regress.py) copies this file into a server's container and runs it there with the
node's own python3 (standard library only):

    python3 probe.py PROBES.json

PROBES.json is a list of [id, protocol, address, port, source_port, name, timeout]. The prober prints
one JSON line per request as soon as it ends:

    {"id": 3, "outcome": "answer", "detail": "HTTP 200", "t": 0.041}

outcome "answer": the destination answered (an HTTP status line, echoed bytes, a DNS answer, an echo
reply, or an ICMP port unreachable from the destination); "reset": the connection was reset or refused
(the internet answers on every TCP port, so a reset comes from the firewall); "timeout": nothing came
back in time; "error": the request could not be made. Its first line is {"pid": N}, its last
{"done": true}. Every TCP socket is closed with a reset (SO_LINGER 0), also when the prober is killed:
a socket closed otherwise with data unacknowledged (a dropped request) would go on retransmitting from the
kernel after the prober is gone. An answered connection is reset only once the server has closed its side,
so that no packet of the server's reaches the firewall after the reset made it forget the flow (a new flow
there, dropped as midstream).
"""
import asyncio
import json
import os
import socket
import ssl
import struct
import sys
import time

START = time.monotonic()
PAYLOAD = b"nfwlab probe\n"


def emit(record):
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def tcp_socket(source_port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.setblocking(False)
    s.bind(("0.0.0.0", source_port))
    return s


async def tcp(protocol, address, port, source_port, name):
    loop = asyncio.get_running_loop()
    sock = tcp_socket(source_port)
    writer, handed = None, False
    try:
        await loop.sock_connect(sock, (address, port))
        # From here the stream's transport owns the socket and closes it, also when it fails: closing it here
        # as well would free its descriptor number while the transport still holds it.
        handed = True
        if protocol == "tls":
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            reader, writer = await asyncio.open_connection(sock=sock, ssl=ctx, server_hostname=name)
        else:
            reader, writer = await asyncio.open_connection(sock=sock)
        if protocol in ("tls", "http"):
            writer.write(f"GET / HTTP/1.1\r\nHost: {name or address}\r\nUser-Agent: nfwlab-probe\r\n"
                         "Connection: close\r\n\r\n".encode())
            line = await reader.readline()
            if not line:
                return "reset", "closed without an answer"
            parts = line.decode(errors="replace").split()
            result = "answer", f"HTTP {parts[1]}" if len(parts) > 1 else line.decode(errors="replace").strip()
        else:
            writer.write(PAYLOAD)
            data = await reader.read(len(PAYLOAD))
            if not data:
                return "reset", "closed without an answer"
            result = "answer", f"{len(data)} bytes back"
        try:  # until the server has closed its side (HTTP closes after its answer; the echo after ours)
            if protocol == "tcp":
                writer.write_eof()
            await asyncio.wait_for(reader.read(), 2)
        except (OSError, ssl.SSLError, TimeoutError):
            pass  # answered: how the connection ends does not change that
        return result
    finally:
        if writer is not None:
            writer.transport.abort()
        elif not handed:
            sock.close()


def dns_query(ident, name):
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\x00" + struct.pack("!HH", 1, 1)


async def datagram(protocol, address, port, source_port, name):
    loop = asyncio.get_running_loop()
    if protocol == "icmp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        port = 0
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        sock.bind(("0.0.0.0", source_port))
        sock.connect((address, port))
        ident = source_port & 0xFFFF
        if protocol == "icmp":
            message = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + PAYLOAD
        elif protocol == "dns":
            message = dns_query(ident, name)
        else:
            message = PAYLOAD
        await loop.sock_sendall(sock, message)
        while True:
            try:
                data = await loop.sock_recv(sock, 4096)
            except ConnectionRefusedError:
                return "answer", "ICMP port unreachable from the destination"
            if protocol == "icmp" and data[:1] == b"\x00":
                return "answer", "echo reply"
            if protocol == "dns" and len(data) >= 12 and struct.unpack("!H", data[:2])[0] == ident:
                rcode, answers = data[3] & 0x0F, struct.unpack("!H", data[6:8])[0]
                return "answer", f"DNS rcode {rcode}, {answers} answer(s)"
            if protocol == "udp":
                return "answer", f"{len(data)} bytes back"
    finally:
        sock.close()


async def one(limit, probe):
    ident, protocol, address, port, source_port, name, timeout = probe
    async with limit:
        started = time.monotonic()
        run = tcp if protocol in ("tls", "http", "tcp") else datagram
        try:
            outcome, detail = await asyncio.wait_for(run(protocol, address, port, source_port, name), timeout)
        except TimeoutError:
            outcome, detail = "timeout", f"nothing back in {timeout:g}s"
        except (ConnectionResetError, ConnectionRefusedError, BrokenPipeError) as e:
            outcome, detail = "reset", type(e).__name__
        except ssl.SSLError as e:
            outcome, detail = ("reset", f"TLS: {e.reason or e}") if "EOF" in str(e) or "RESET" in str(e).upper() \
                else ("error", f"TLS: {e.reason or e}")
        except OSError as e:
            outcome, detail = "error", f"{type(e).__name__}: {e.strerror or e}"
        emit({"id": ident, "outcome": outcome, "detail": detail, "t": round(time.monotonic() - START, 4),
              "took": round(time.monotonic() - started, 4)})


async def main(probes, parallel):
    limit = asyncio.Semaphore(parallel)
    await asyncio.gather(*(one(limit, p) for p in probes))


if __name__ == "__main__":
    emit({"pid": os.getpid()})
    with open(sys.argv[1]) as f:
        probes = json.load(f)
    asyncio.run(main(probes, int(sys.argv[2]) if len(sys.argv) > 2 else 256))
    emit({"done": True})
