"""EVE reading and AWS's alert log envelope."""
import json

import pytest

from lab.errors import WaitTimeout
from lab.logs import EveLog, aws_envelope, lookup, matches

EVE = {"timestamp": "2025-01-23T14:55:04.080189+0000", "flow_id": 268007482899761, "event_type": "alert",
       "src_ip": "10.0.13.92", "src_port": 58065, "dest_ip": "203.0.113.10", "dest_port": 443, "proto": "TCP",
       "app_proto": "tls", "tx_id": 0, "direction": "to_server", "pkt_src": "wire/pcap",
       "alert": {"action": "blocked", "signature_id": 1, "rev": 1, "signature": "matching TLS denylisted FQDNs",
                 "category": "", "severity": 3},
       "verdict": {"action": "drop"}, "tls": {"sni": "blocked.example", "version": "UNDETERMINED"}}


def test_envelope_has_aws_keys_and_epoch_string():
    env = aws_envelope(EVE, "nfwlab-firewall", "ap-northeast-1a")
    assert list(env) == ["firewall_name", "availability_zone", "event_timestamp", "event"]
    # The write-up's alert: 2025-01-23T14:55:04 UTC is event_timestamp "1737644104".
    assert env["event_timestamp"] == "1737644104"
    assert env["event"] is EVE


def test_dotted_lookup_and_match():
    assert lookup(EVE, "tls.sni") == "blocked.example"
    with pytest.raises(KeyError):
        lookup(EVE, "http.hostname")
    assert matches(EVE, {"src_ip": "10.0.13.92", "verdict.action": "drop"})
    assert not matches(EVE, {"src_ip": "10.0.136.108"})
    assert not matches(EVE, {"http.hostname": "blocked.example"})


def test_reader_skips_a_record_still_being_written(tmp_path):
    log = EveLog(tmp_path / "eve.json")
    assert log.read() == ([], (0,))
    with open(log.path, "w") as f:
        f.write(json.dumps(EVE) + "\n" + '{"event_type": "al')
    recs, offset = log.read()
    assert len(recs) == 1 and offset == (len(json.dumps(EVE)) + 1,)
    with open(log.path, "a") as f:
        f.write('ert"}\n')
    assert log.read(offset)[0] == [{"event_type": "alert"}]


def test_wait_for_reports_what_it_saw(tmp_path):
    log = EveLog(tmp_path / "eve.json")
    log.path.write_text(json.dumps(EVE) + "\n")
    assert log.wait_for({"tls.sni": "blocked.example"}, timeout=1)[0]["src_ip"] == "10.0.13.92"
    with pytest.raises(WaitTimeout) as e:
        log.wait_for({"src_ip": "10.0.136.108"}, timeout=0.2)
    assert "got 0" in str(e.value) and "10.0.13.92" in str(e.value)


def test_a_log_of_several_files_reads_each_from_its_own_position(tmp_path):
    log = EveLog(tmp_path / "a.json", tmp_path / "b.json")
    (tmp_path / "a.json").write_text(json.dumps({**EVE, "timestamp": "2026-01-01T00:00:02.000000+0000"}) + "\n")
    mark = log.size()
    (tmp_path / "b.json").write_text(json.dumps({**EVE, "timestamp": "2026-01-01T00:00:01.000000+0000"}) + "\n")
    (tmp_path / "a.json").open("a").write(json.dumps({**EVE, "timestamp": "2026-01-01T00:00:03.000000+0000"}) + "\n")
    assert [r["timestamp"][17:19] for r in log.records(since=mark)] == ["01", "03"]
    assert len(log.records()) == 3
