"""The scenario on a real lab: where the firewall sits decides what its alerts say.

Real Docker containers, real iptables NAT, real Suricata 7 inline. Each test
marks the alert log, makes a server send one request and waits (with a
timeout) for the alert it must produce.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from vpc_routes import assert_router_follows, router_differences

from lab import Lab, nodes
from lab import docker as dk
from lab.pytest_plugin import worker_lab_name

NAT_GATEWAY = "10.0.13.92"
SERVER_IP = {"server-a": "10.0.136.108", "server-b": "10.0.140.23"}
WEB_SERVER = "203.0.113.10"
BLOCKED, ALLOWED = "blocked.example", "allowed.example"

REQUESTS = [  # scheme, the alert's app-layer field, signature
    ("https", "tls.sni", "matching TLS denylisted FQDNs"),
    ("http", "http.hostname", "matching HTTP denylisted FQDNs"),
]


def blocked_request_alert(lab, node, scheme, field, port):
    """The alert for one blocked request from `port` (from the nfwlab_ports fixture), as soon as the firewall
    writes it (its verdict, checked by assert_alert, says the request was dropped)."""
    return lab.fetch_for_alert(node, f"{scheme}://{BLOCKED}/", {field: BLOCKED}, local_port=port)


def assert_alert(alert, src_ip, field, signature):
    assert alert["src_ip"] == src_ip
    assert alert["dest_ip"] == WEB_SERVER
    assert alert["alert"]["signature"] == signature
    assert alert["alert"]["action"] == "blocked"
    assert alert["verdict"]["action"] == "drop"
    assert alert["proto"] == "TCP"
    assert alert["dest_port"] == (443 if field == "tls.sni" else 80)


@pytest.mark.parametrize("scheme, field, signature", REQUESTS)
def test_nat_first_alert_names_the_nat_gateway(nfwlab, nfwlab_ports, scheme, field, signature):
    nfwlab.switch("nat-first")
    for node in ("server-a", "server-b"):
        alert = blocked_request_alert(nfwlab, node, scheme, field, next(nfwlab_ports))
        assert_alert(alert, NAT_GATEWAY, field, signature)


@pytest.mark.parametrize("scheme, field, signature", REQUESTS)
def test_firewall_first_alert_names_the_server(nfwlab, nfwlab_ports, scheme, field, signature):
    nfwlab.switch("firewall-first")
    for node, ip in SERVER_IP.items():
        alert = blocked_request_alert(nfwlab, node, scheme, field, next(nfwlab_ports))
        assert_alert(alert, ip, field, signature)
    # The sid and the app-layer record are those of AWS's generated rules.
    assert alert["alert"]["signature_id"] == (1 if field == "tls.sni" else 2)


@pytest.mark.parametrize("nfwlab_topology", ["nat-first", "firewall-first"], indirect=True)
@pytest.mark.parametrize("scheme", ["https", "http"])
def test_allowed_domain_gets_200_and_no_alert(nfwlab_topology, scheme):
    lab = nfwlab_topology
    mark = lab.log_mark()
    result = lab.fetch("server-a", f"{scheme}://{ALLOWED}/", timeout=5)
    assert result.status == 200, result.describe()
    # Suricata writes an alert before it gives the packet its verdict, so once
    # the response is back any alert for this request is already in the log.
    assert lab.alerts(since=mark) == []


def containers(lab):
    """Each node's container id and start time: a re-created container has a new id, a restarted one a new
    start time."""
    return {s: (c.id, dk.client().containers.get(c.id).attrs["State"]["StartedAt"])
            for s, c in dk.containers(lab.name).items()}


def test_switching_back_and_forth_changes_only_routes(nfwlab, nfwlab_ports):
    """Each switch leaves the VPC router's kernel with the next hops the topology's route tables name (read
    with `ip` in the router, computed from the topology file: tests/vpc_routes.py), the alerts follow, and
    no container is re-created or restarted. How fast a switch is: `make bench` (P2)."""
    before = containers(nfwlab)
    assert_router_follows(nfwlab, "nat-first")
    assert router_differences(nfwlab, "firewall-first")  # the two designs' routes differ
    for design, source in [("firewall-first", SERVER_IP["server-a"]), ("nat-first", NAT_GATEWAY),
                           ("firewall-first", SERVER_IP["server-a"]), ("nat-first", NAT_GATEWAY)]:
        nfwlab.switch(design)
        assert_router_follows(nfwlab, design)
        alert = blocked_request_alert(nfwlab, "server-a", "https", "tls.sni", next(nfwlab_ports))
        assert alert["src_ip"] == source
        assert nfwlab.fetch("server-a", f"https://{ALLOWED}/").status == 200
    assert containers(nfwlab) == before


INNER_SESSION = """
import sys

sys.path.insert(0, {tests!r})
import pytest
from vpc_routes import assert_router_follows


def test_1_switches_the_lab_and_leaves_it_so(nfwlab):
    nfwlab.switch("firewall-first")
    assert_router_follows(nfwlab, "firewall-first")


def test_2_finds_the_session_topology(nfwlab):
    assert_router_follows(nfwlab, "nat-first")
    assert nfwlab.topology_name == "nat-first"


@pytest.mark.nfwlab_topology("firewall-first")
def test_3_asks_for_firewall_first(nfwlab_topology):
    assert_router_follows(nfwlab_topology, "firewall-first")


def test_4_finds_the_session_topology_again(nfwlab):
    assert_router_follows(nfwlab, "nat-first")
"""


def test_a_test_that_switches_the_shared_lab_leaves_nat_first_to_the_next(request, tmp_path):
    """A pytest session of its own (its own lab, named after this session's) whose tests switch the shared lab
    and leave it so: the next test finds the session topology in the VPC router's kernel."""
    (tmp_path / "test_inner.py").write_text(INNER_SESSION.format(tests=str(Path(__file__).resolve().parent.parent)))
    name = request.config.getoption("--nfwlab-name") + "-inner"
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                          "--nfwlab-name", name, str(tmp_path / "test_inner.py")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert res.returncode == 0 and "4 passed" in res.stdout, res.stdout[-3000:] + res.stderr[-2000:]
    assert dk.containers(worker_lab_name(name)) == {}


def key_paths(record, prefix=""):
    """Every dotted key path of a JSON object, with the JSON type of its value."""
    out = {}
    for key, value in record.items():
        path = f"{prefix}{key}"
        out[path] = type(value).__name__
        if isinstance(value, dict):
            out.update(key_paths(value, path + "."))
    return out


@pytest.mark.parametrize("design, source", [("nat-first", NAT_GATEWAY), ("firewall-first", SERVER_IP["server-a"])])
def test_alert_log_in_aws_format_has_every_key_of_the_real_alert(nfwlab, nfwlab_ports, design, source):
    nfwlab.switch(design)
    mark = nfwlab.log_mark()
    alert = blocked_request_alert(nfwlab, "server-a", "https", "tls.sni", next(nfwlab_ports))
    # The line the ALERT log (alert.log, as AWS delivers it) got for this alert.
    record = nfwlab.wait_for_alert({"event.flow_id": alert["flow_id"]}, since=mark, aws=True)
    assert record["event"] == alert
    assert record["firewall_name"] == "nfwlab-firewall"
    assert record["availability_zone"] == "ap-northeast-1a"
    assert record["event_timestamp"].isdigit()
    # The alert AWS wrote in the write-up (docs/scenario.md): every key
    # path must exist in ours with the same JSON type.
    real = json.loads((Path(__file__).parent.parent / "data" / f"scenario-alert-{design}.json").read_text())
    assert record["event"]["src_ip"] == source
    ours = key_paths(record)
    for path, kind in key_paths(real).items():
        assert ours.get(path) == kind, f"{path}: AWS has {kind}, the lab has {ours.get(path, 'nothing')}"


def test_firewall_fails_closed_while_its_engine_is_down(nfwlab):
    nfwlab.switch("firewall-first")
    nfwlab.stop_firewall_engine()
    try:
        assert "down" in nfwlab.status().firewall_engine
        result = nfwlab.fetch("server-a", f"http://{ALLOWED}/", timeout=2)
        assert result.status is None, f"traffic crossed a firewall whose engine is down: {result.describe()}"
    finally:
        nfwlab.restart_firewall_engine()
    assert nfwlab.status().firewall_engine == "running"
    assert nfwlab.fetch("server-a", f"http://{ALLOWED}/").status == 200


def test_no_node_has_a_way_out_of_the_lab(nfwlab):
    links = [link for role in nfwlab.roles() for link in role.links()]
    for service, c in dk.containers(nfwlab.name).items():
        attrs = dk.client().containers.get(c.id).attrs
        assert attrs["HostConfig"]["NetworkMode"] == "none", service
        assert not attrs["HostConfig"]["Privileged"], service
        # Only the loopback, the lab's veths and the VPC router's subnet bridges.
        expected = {"lo"} | {l.a_ifname for l in links if l.a_service == service} \
            | {l.b_ifname for l in links if l.b_service == service}
        if service == nodes.ROUTER:
            expected |= {s.bridge for s in nfwlab.vpc.subnets}
        ifaces = nfwlab.interfaces(service)
        assert {i["ifname"] for i in ifaces} == expected, service
        assert {i["kind"] for i in ifaces} <= {"", "veth", "bridge"}, service
    # The VPC router has no route of its own to anywhere outside the lab (sends nothing).
    assert "error" in nfwlab.route_get(nodes.ROUTER, "192.0.2.1")
    # Both ends of every link were found in their nodes above, so no end is in the host's namespace.


def test_a_second_lab_with_its_own_domains_runs_beside_the_first(nfwlab):
    with Lab(worker_lab_name("pytest-second"), domains=["shop.test", "blocked.example"]).running("firewall-first") as other:
        assert other.fetch("server-a", "https://shop.test/").status == 200
        # allowed.example is not served by the second lab's internet: no such name.
        missing = other.fetch("server-a", "https://allowed.example/", timeout=2)
        assert missing.status is None and "resolve" in missing.error.lower()
        alert = other.fetch_for_alert("server-b", "https://blocked.example/", {"tls.sni": BLOCKED})
        assert alert["src_ip"] == SERVER_IP["server-b"] and alert["verdict"]["action"] == "drop"
        # The first lab is untouched and still answers.
        assert nfwlab.fetch("server-a", f"https://{ALLOWED}/").status == 200
    assert dk.containers(other.name) == {}
