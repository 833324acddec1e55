"""Log rotation, both sides: the nodes' writer (compose/images/nfwlab_logfile.py, loaded as the images run it)
and the host's readers (lab/logs.py). Every test checks records by content: each written once, read once, in
order, across rotations; none lost and none repeated."""
from __future__ import annotations

import importlib.util
import json
import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from lab.errors import ConfigError
from lab.logs import GENERATION, EveLog, LogLimits, file_size, log_parts, parse_size, read_records

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("nfwlab_logfile", ROOT / "compose/images/nfwlab_logfile.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


logfile = _load()


def line(n: int, who: str = "w") -> str:
    return json.dumps({"n": n, "who": who, "pad": "x" * 40}) + "\n"


def numbers(records: list[dict]) -> list[int]:
    return [r["n"] for r in records]


class FakeSuricata:
    """Writes through a descriptor kept open, and reopens its file's name only when told (SIGHUP), at its next
    write: as Suricata does."""

    def __init__(self, path: Path):
        self.path = path
        self.f = open(path, "a")  # noqa: SIM115 (kept open, as Suricata keeps eve.json)
        self.hup = False

    def write(self, n: int) -> None:
        if self.hup:
            self.f.close()
            self.f = open(self.path, "a")  # noqa: SIM115
            self.hup = False
        self.f.write(line(n))
        self.f.flush()


def test_the_writer_rotates_by_size_and_keeps_the_newest_parts(tmp_path):
    path = tmp_path / "alert.log"
    log = logfile.RotatingLog(str(path), max_bytes=300, keep=3)
    for n in range(60):
        log.write(line(n))
    log.close()
    assert [p.name for p in log_parts(path)] == ["alert.log.3", "alert.log.2", "alert.log.1", "alert.log"]
    assert not (tmp_path / "alert.log.4").exists()
    sizes = [p.stat().st_size for p in log_parts(path)[:-1]]
    assert all(300 <= s < 300 + len(line(0)) for s in sizes)  # each rotated when a write took it over the size
    kept = numbers(read_records(path, 0)[0])
    assert kept == list(range(kept[0], 60)) and kept[0] > 0  # the newest, contiguous; the oldest parts dropped
    rotations = int((tmp_path / "alert.log.generation").read_text())
    assert file_size(path) == rotations * GENERATION + path.stat().st_size


def test_a_mark_stays_valid_across_rotations(tmp_path):
    path = tmp_path / "nat-translations.log"
    log = logfile.RotatingLog(str(path), max_bytes=500, keep=100)
    for n in range(10):
        log.write(line(n))
    mark = file_size(path)
    for n in range(10, 40):
        log.write(line(n))
    assert len(log_parts(path)) > 3  # it rotated several times after the mark
    records, end = read_records(path, mark)
    assert numbers(records) == list(range(10, 40))
    assert read_records(path, end) == ([], end) and end == file_size(path)
    assert numbers(read_records(path, 0)[0]) == list(range(40))
    log.write(line(40))
    assert numbers(read_records(path, end)[0]) == [40]


def test_reading_from_a_part_no_longer_kept_starts_at_the_oldest_kept(tmp_path):
    path = tmp_path / "flow.log"
    log = logfile.RotatingLog(str(path), max_bytes=200, keep=2)
    log.write(line(0))
    mark = file_size(path)
    for n in range(1, 30):
        log.write(line(n))
    kept = numbers(read_records(path, mark)[0])
    assert kept == list(range(kept[0], 30)) and kept[0] > 1  # what was kept, nothing twice


def test_a_smaller_keep_later_drops_the_parts_beyond_it(tmp_path):
    path = tmp_path / "flow.log"
    log = logfile.RotatingLog(str(path), max_bytes=200, keep=6)
    for n in range(40):
        log.write(line(n))
    log.close()
    assert (tmp_path / "flow.log.6").exists()
    log = logfile.RotatingLog(str(path), max_bytes=200, keep=2)
    for n in range(40, 45):
        log.write(line(n))
    assert [p.name for p in log_parts(path)] == ["flow.log.2", "flow.log.1", "flow.log"]
    kept = numbers(read_records(path, 0)[0])
    assert kept == list(range(kept[0], 45))


def _write_many(path: str, who: str, count: int) -> None:
    log = logfile.RotatingLog(path, max_bytes=2000, keep=10_000)
    for n in range(count):
        log.write(line(n, who))
    log.close()


def test_writers_in_several_processes_and_a_reader_lose_and_repeat_nothing(tmp_path):
    """Two NAT gateways append to one log and rotate it while the host reads it from a mark, part by part."""
    path = tmp_path / "nat-translations.log"
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_write_many, args=(str(path), who, 400)) for who in ("a", "b")]
    for w in writers:
        w.start()
    seen: list[dict] = []
    position = 0
    while any(w.is_alive() for w in writers):
        records, position = read_records(path, position)
        seen += records
    for w in writers:
        w.join()
        assert w.exitcode == 0
    seen += read_records(path, position)[0]
    assert int((tmp_path / "nat-translations.log.generation").read_text()) > 20  # many rotations
    for who in ("a", "b"):
        assert [r["n"] for r in seen if r["who"] == who] == list(range(400))
    assert len(seen) == 800


def test_eve_rotation_reads_the_records_suricata_writes_before_it_reopens(tmp_path):
    """eve.json is renamed under Suricata, which keeps writing to eve.json.1 until it reopens after SIGHUP: a
    reader stays in eve.json.1 until the new eve.json exists, and the supervisor's tail does too."""
    path = tmp_path / "eve.json"
    suricata = FakeSuricata(path)
    tail = logfile.Tail(str(path))
    delivered: list[int] = []

    def deliver() -> None:
        delivered.extend(json.loads(x)["n"] for x in tail.lines())
    suricata.write(1)
    suricata.write(2)
    deliver()
    mark = file_size(path)
    suricata.write(3)
    logfile.rotate_reopened(str(path), 8, lambda: None)  # SIGHUP sent; Suricata has not reopened yet
    assert not path.exists()
    suricata.write(4)  # still to the renamed file
    deliver()
    records, position = read_records(path, mark)
    assert numbers(records) == [3, 4] and position // GENERATION == 0  # still in the part before the rotation
    late = file_size(path)
    suricata.write(5)  # Suricata's last record to the renamed file
    suricata.hup = True
    suricata.write(6)  # reopened: the new eve.json
    deliver()
    assert numbers(read_records(path, position)[0]) == [5, 6]
    assert numbers(read_records(path, late)[0]) == [5, 6]
    assert numbers(read_records(path, mark)[0]) == [3, 4, 5, 6]
    assert numbers(read_records(path, 0)[0]) == [1, 2, 3, 4, 5, 6]
    assert file_size(path) // GENERATION == 1
    assert delivered == [1, 2, 3, 4, 5, 6]
    tail.close()


def test_the_tail_follows_many_rotations_under_a_steady_writer(tmp_path):
    path = tmp_path / "eve.json"
    suricata = FakeSuricata(path)
    tail = logfile.Tail(str(path))
    delivered: list[int] = []
    for n in range(300):
        suricata.write(n)
        if n % 7 == 3:
            delivered += [json.loads(x)["n"] for x in tail.lines()]
        if n % 25 == 24 and not tail.renamed():
            logfile.rotate_reopened(str(path), 1000, lambda: setattr(suricata, "hup", True))
    delivered += [json.loads(x)["n"] for x in tail.lines()]
    assert delivered == list(range(300))
    assert numbers(read_records(path, 0)[0]) == list(range(300))
    assert int((tmp_path / "eve.json.generation").read_text()) >= 10


def test_follow_yields_every_record_once_across_rotations(tmp_path):
    path = tmp_path / "alert.log"
    done = threading.Event()

    def write() -> None:
        log = logfile.RotatingLog(str(path), max_bytes=1000, keep=1000)
        for n in range(500):
            log.write(line(n))
        log.close()
        done.set()
    writer = threading.Thread(target=write)
    followed: list[int] = []
    deadline = time.monotonic() + 60  # a guard against a hang, not a measure
    writer.start()
    for record in EveLog(path).follow(0, poll=0.001, stop=lambda: time.monotonic() > deadline):
        followed.append(record["n"])
        if len(followed) == 500:
            break
    writer.join()
    assert followed == list(range(500))
    assert len(log_parts(path)) > 20


def test_a_log_that_never_rotated_is_read_by_byte_offsets(tmp_path):
    path = tmp_path / "eve.json"
    path.write_text(line(0) + line(1))
    assert file_size(path) == path.stat().st_size
    assert numbers(read_records(path, len(line(0)))[0]) == [1]
    assert read_records(tmp_path / "missing.json", 0) == ([], 0) and file_size(tmp_path / "missing.json") == 0


@pytest.mark.parametrize(("text", "size"), [("64M", 64 << 20), ("20k", 20 << 10), ("1G", 1 << 30),
                                            ("512KiB", 512 << 10), ("8192", 8192), ("0", 0)])
def test_sizes_are_read_in_powers_of_1024(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(("text", "message"), [("12x", "is not a size"), ("1k", "below 4k"), ("", "is not a size"),
                                               ("-5M", "is not a size")])
def test_a_bad_size_is_refused_with_the_option_named(text, message):
    with pytest.raises(ConfigError, match=message) as e:
        parse_size(text)
    assert "--log-max-size" in str(e.value)


def test_limits_reach_the_writers_through_the_environment():
    limits = LogLimits(parse_size("20k"), 50)
    assert logfile.limits_from_env(limits.environment()) == (20 << 10, 50)
    assert logfile.limits_from_env({}) == (64 << 20, 8) == (LogLimits().max_size, LogLimits().keep)
    assert LogLimits(parse_size("64M"), 8).describe() == "rotated at 64M, 8 rotated part(s) kept"
    with pytest.raises(ConfigError, match="--log-keep 0"):
        LogLimits(keep=0)


def test_records_before_a_mark_are_read_from_every_part_kept_and_stop_at_the_mark(tmp_path):
    """The case runner's look back (an ICMP flow still tracked from before a run) reads the records written
    before its mark, also when the log rotated between: all of the older parts, and the mark's part up to it."""
    from lab.logs import read_records_before
    path = tmp_path / "eve.json"
    log = logfile.RotatingLog(str(path), max_bytes=300, keep=50)
    for n in range(10):
        log.write(line(n))
    mark = file_size(path)
    for n in range(10, 20):
        log.write(line(n))
    assert len(log_parts(path)) > 3 and mark // GENERATION > 0  # rotated before and after the mark
    assert numbers(read_records_before(path, mark)) == list(range(10))
    assert numbers(read_records_before(path, file_size(path))) == list(range(20))
    assert read_records_before(path, mark, containing=b'"n": 3,') == [json.loads(line(3))]


def test_a_reader_restarted_in_place_goes_on_after_its_last_line_also_across_a_rotation(tmp_path):
    """The firewall node's delivery from eve.json to the AWS logs, restarted with its container (`repair`):
    it goes on from its bookmark, so no record reaches alert.log twice, and none written meanwhile is lost."""
    path, bookmark = tmp_path / "eve.json", str(tmp_path / "eve.json.delivered")
    engine = FakeSuricata(path)
    for n in range(5):
        engine.write(n)
    tail = logfile.Tail(str(path), bookmark)
    seen = [json.loads(x)["n"] for x in tail.lines()]
    tail.save()
    tail.close()
    for n in range(5, 8):  # written while the reader is down
        engine.write(n)
    again = logfile.Tail(str(path), bookmark)
    seen += [json.loads(x)["n"] for x in again.lines()]
    again.save()
    again.close()
    engine.write(8)
    logfile.rotate_reopened(str(path), 5, lambda: setattr(engine, "hup", True))
    engine.write(9)  # reopened: into the new eve.json
    engine.write(10)
    third = logfile.Tail(str(path), bookmark)  # restarted after the rotation: resumes in eve.json.1 (8)
    seen += [json.loads(x)["n"] for x in third.lines()]
    third.close()
    assert seen == list(range(11))
    assert [json.loads(x)["n"] for x in logfile.Tail(str(path)).lines()] == [9, 10]  # no bookmark: from the start
