"""Who: naming the server behind an alert from its addresses and the NAT translation log (no Docker)."""
from pathlib import Path

import pytest

from lab.model import load_topology
from lab.who import who

ROOT = Path(__file__).resolve().parents[2]  # the repository, wherever pytest runs from
VPC = load_topology(ROOT / "topologies" / "nat-first.yaml").vpc
NAT = "10.0.13.92"


def alert(src, sport, at="2026-11-25T14:27:30.397434+0000", dst="203.0.113.10", dport=443, **extra):
    return {"event_type": "alert", "timestamp": at, "src_ip": src, "src_port": sport, "dest_ip": dst,
            "dest_port": dport, **extra}


def translation(server, sport, nat_port, epoch, event="NEW", cid=1, dport=443):
    return {"nat_gateway": "nat-gateway", "event": event, "epoch": epoch, "timestamp": f"t{epoch}",
            "original": {"src": server, "sport": sport}, "translated": {"src": NAT, "sport": nat_port},
            "destination": {"dst": "203.0.113.10", "dport": dport}, "conntrack_id": cid}


AT = 1795616850.397434  # the alerts' timestamp as epoch seconds


def test_a_server_source_names_the_server():
    a = who(VPC, alert("10.0.136.108", 50000), [])
    assert a.server == "server-a" and "is server-a's own" in a.evidence


def test_behind_the_nat_gateway_the_translation_names_the_server():
    log = [translation("10.0.140.23", 60498, 60498, AT - 0.002)]
    a = who(VPC, {"firewall_name": "f", "event": alert(NAT, 60498)}, log)  # AWS envelope
    assert (a.server, a.ip) == ("server-b", "10.0.140.23")
    assert "translated 10.0.140.23:60498 -> 10.0.13.92:60498 for 203.0.113.10:443" in a.evidence


def test_two_servers_to_the_same_domain_in_the_same_second_are_told_apart_by_the_translated_port():
    log = [translation("10.0.136.108", 41000, 41000, AT - 0.01, cid=1),
           translation("10.0.140.23", 41000, 1024, AT - 0.01, cid=2)]  # same source port: the NAT picked another
    assert who(VPC, alert(NAT, 41000), log).server == "server-a"
    assert who(VPC, alert(NAT, 1024), log).server == "server-b"


def test_the_latest_live_translation_wins_when_a_port_is_reused():
    log = [translation("10.0.140.23", 5000, 5000, AT - 200, cid=1), translation("10.0.140.23", 5000, 5000,
                                                                                 AT - 80, "DESTROY", cid=1),
           translation("10.0.136.108", 5000, 5000, AT - 1, cid=2)]
    assert who(VPC, alert(NAT, 5000), log).server == "server-a"


@pytest.mark.parametrize("log, why", [
    ([], "logged no translation to 10.0.13.92:41000"),
    ([translation("10.0.136.108", 41000, 41000, AT + 30)], "at or before"),  # only later: not this alert's
    ([translation("10.0.136.108", 41000, 41000, AT - 1, dport=80)], "no translation"),  # another destination
])
def test_no_match_says_so_instead_of_guessing(log, why):
    a = who(VPC, alert(NAT, 41000), log)
    assert not a.named and a.evidence.startswith("no match") and why in a.evidence


def test_a_response_direction_alert_is_read_from_the_vpc_side():
    a = who(VPC, alert("203.0.113.10", 443, dst="10.0.136.108", dport=50000, direction="to_client"), [])
    assert a.server == "server-a"


def test_a_source_outside_the_vpc_is_no_match():
    assert who(VPC, alert("10.9.9.9", 1, dst="203.0.113.10"), []).evidence.startswith("no match: 10.9.9.9")
