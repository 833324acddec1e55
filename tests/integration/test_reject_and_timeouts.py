"""Reject as AWS does it, and the NAT gateway's idle timeout, on real labs.

AWS, StatefulRule: "REJECT - Drops traffic that matches the conditions of the stateful rule, and sends a TCP
reset packet back to sender of the packet. [...] REJECT is available only for TCP traffic."
AWS, NAT gateways: "If a connection that's using a NAT gateway is idle for 350 seconds or more, the connection
times out. When a connection times out, a NAT gateway returns an RST packet to any resources behind the NAT
gateway that attempt to continue the connection (it does not send a FIN packet)."
"""
from pathlib import Path

import pytest
import yaml
from verdicts import blocked, passes

from lab.lab import Lab
from lab.policy import parse_policy
from lab.pytest_plugin import worker_lab_name

TOPOLOGIES = Path(__file__).resolve().parent.parent.parent / "topologies"
WEB_SERVER = "203.0.113.10"
REJECT_LIST = {"RuleGroupName": "reject-blocked", "RuleGroup": {"RulesSource": {"RulesSourceList": {
    "Targets": ["blocked.example"], "TargetTypes": ["TLS_SNI", "HTTP_HOST"], "GeneratedRulesType": "REJECTLIST"}}}}
REJECT_UDP = {"RuleGroupName": "reject-udp", "RuleGroup": {"RulesSource": {"RulesString":
    'reject udp $HOME_NET any -> $EXTERNAL_NET 9999 (msg:"reject udp 9999"; sid:1;)'}}}

# A UDP datagram to the web server (argv: its address, the client port), which listens on no UDP port: passed,
# it is answered with ICMP port unreachable (ECONNREFUSED); a reject answered with ICMP would give EHOSTUNREACH; a
# drop gives silence.
UDP_PROBE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.0); s.bind(("", int(sys.argv[2])))
s.connect((sys.argv[1], 9999))
s.send(b"x")
try:
    s.recv(100); print("answer")
except socket.timeout: print("silence")
except OSError as e: print(type(e).__name__)
"""

# One TCP connection to the web server (argv: idle seconds, address): a request, `idle` seconds without a packet, a second request.
KEEPALIVE = """
import socket, sys, time
def exchange(s):
    s.send(b"GET / HTTP/1.1\\r\\nHost: allowed.example\\r\\n\\r\\n")
    data = b""
    while b"\\r\\n\\r\\n" not in data:
        chunk = s.recv(4096)
        if not chunk: return "closed"
        data += chunk
    head, _, body = data.partition(b"\\r\\n\\r\\n")
    length = int([l.split(b":")[1] for l in head.split(b"\\r\\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk: return "closed"
        body += chunk
    return "answered"
s = socket.create_connection((sys.argv[2], 80), timeout=5)
assert exchange(s) == "answered"
time.sleep(float(sys.argv[1]))
try: print(exchange(s))
except ConnectionResetError: print("reset")
except socket.timeout: print("timeout")
"""


@pytest.fixture
def reject_policy(nfwlab: Lab):
    def apply(*groups: dict) -> Lab:
        refs = [{"ResourceArn": g["RuleGroupName"]} for g in groups]
        nfwlab.apply_policy(parse_policy({"FirewallPolicy": {"StatefulRuleGroupReferences": refs},
                                          "RuleGroups": list(groups)}, "test policy"))
        return nfwlab
    yield apply
    nfwlab.apply_policy(nfwlab.policy)


@pytest.mark.parametrize("url, exit_codes, signature", [
    ("https://blocked.example/", (35,), "matching TLS rejectlisted FQDNs"),
    ("http://blocked.example/", (52, 56), "matching HTTP rejectlisted FQDNs"),
])
def test_a_reject_resets_the_connection(reject_policy, nfwlab_ports, url, exit_codes, signature):
    """The reset is the firewall's: its alert for the request's own flow (by client port) has the verdict drop
    with a tcp-reset, its RejectedPackets counter goes up, and curl ends with a reset (TLS handshake: 35;
    after the HTTP request: 52/56), not a timeout. How fast the reset comes is measured by `make bench` (P3)."""
    lab = reject_policy(REJECT_LIST)
    blocked(lab, url, next(nfwlab_ports), {"alert.signature": signature}, how="reject", exits=exit_codes)
    passes(lab, "https://allowed.example/", next(nfwlab_ports))


def test_a_reject_of_udp_acts_as_a_drop(reject_policy, nfwlab_ports):
    lab = reject_policy(REJECT_UDP)
    mark, port = lab.log_mark(), next(nfwlab_ports)
    code, out, err = lab.exec("server-a", ["python3", "-c", UDP_PROBE, WEB_SERVER, str(port)])
    # the engine's decision, for this datagram's own flow
    alert = lab.wait_for_alert({"alert.signature": "reject udp 9999", "src_port": port}, since=mark)
    assert alert["verdict"]["action"] == "drop"
    assert (code, out.strip()) == (0, "silence"), f"no ICMP answer may reach the client: {out} {err}"


def test_without_the_reject_the_udp_probe_is_answered(nfwlab, nfwlab_ports):
    """The probe above can tell a drop from a pass: passed, the web server's kernel answers."""
    code, out, _ = nfwlab.exec("server-a", ["python3", "-c", UDP_PROBE, WEB_SERVER, str(next(nfwlab_ports))])
    assert out.strip() == "ConnectionRefusedError"


@pytest.fixture(scope="module")
def short_nat_timeout(request, tmp_path_factory):
    """A lab of its own whose NAT gateway forgets idle TCP connections after 2 seconds (AWS: 350)."""
    data = yaml.safe_load((TOPOLOGIES / "nat-first.yaml").read_text())
    data["nat_gateways"][0]["tcp_idle_timeout"] = 2
    path = tmp_path_factory.mktemp("topology") / "nat-first-short-idle.yaml"
    path.write_text(yaml.safe_dump(data))
    lab = Lab(worker_lab_name(f"{request.config.getoption('--nfwlab-name')}-natidle"))
    lab.down()
    lab.up(path)
    try:
        yield lab
    finally:
        lab.down()


def test_the_nat_gateway_resets_a_connection_idle_longer_than_its_timeout(short_nat_timeout):
    lab = short_nat_timeout
    code, out, err = lab.exec("server-a", ["python3", "-c", KEEPALIVE, "4", WEB_SERVER])
    assert out.strip() == "reset", f"expected an RST after 4 s idle (timeout 2 s): {out} {err}"
    code, out, err = lab.exec("server-a", ["python3", "-c", KEEPALIVE, "0.5", WEB_SERVER])
    assert out.strip() == "answered", f"a connection idle for less than the timeout goes on: {out} {err}"
