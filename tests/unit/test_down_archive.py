"""`down` keeps a lab's logs: what goes to the archive folder and what is removed, `--purge`, a lab that never
came up, the name `archive`, and the log rotation settings from `up` to the nodes' environment, lab.json and
`status`. Docker and the kernel are fakes (tests/unit/fakes.py); the archive root is the test's own."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import yaml
from fakes import FakeDocker, FakeKernel

from lab import deploy
from lab.errors import ConfigError, NodeError
from lab.lab import Lab
from lab.state import LabState, archive_root


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    monkeypatch.setattr(deploy.os, "geteuid", lambda: 0)  # the root check, not what is tested here
    monkeypatch.setenv("NFWLAB_ARCHIVE_ROOT", str(tmp_path / "archive"))
    return FakeDocker(), FakeKernel()


def new_lab(tmp_path, fakes, name="unit", **kwargs):
    docker, kernel = fakes
    return Lab(name, state_dir=tmp_path / "state" / name, docker=docker, kernel=kernel, **kwargs)


def write_alert(lab: Lab, n: int) -> None:
    with open(lab.state.logs_dir / "alert.log", "a") as f:
        f.write(json.dumps({"event": {"event_type": "alert", "flow_id": n, "timestamp": "x"}}) + "\n")


def test_down_moves_logs_rules_topology_and_state_to_a_named_archive(tmp_path, fakes):
    lab = new_lab(tmp_path, fakes)
    lab.up("nat-first")
    write_alert(lab, 1)
    (lab.state.logs_dir / "alert.log.1").write_text("")  # a rotated part goes along
    report = lab.down()
    assert report.containers == 7 and report.state_dir == str(lab.state_dir) and not lab.state_dir.exists()
    archive = tmp_path / "archive"
    assert report.archive is not None and report.archive.startswith(str(archive / "unit-"))
    kept = archive / report.archive.rsplit("/", 1)[1]
    assert datetime.strptime(kept.name.removeprefix("unit-"), "%Y%m%dT%H%M%SZ")
    assert sorted(p.name for p in kept.iterdir()) == ["lab.json", "logs", "rules", "topology.yaml"]
    assert (kept / "logs" / "alert.log.1").exists() and (kept / "rules" / "lab.rules").exists()
    assert json.loads((kept / "lab.json").read_text())["topology"] == "nat-first"
    archived = Lab("unit", state_dir=kept, docker=fakes[0], kernel=fakes[1])  # its logs read as a lab's
    assert [a["event"]["flow_id"] for a in archived.alerts(aws=True)] == [1]


def test_down_purge_removes_everything_and_archives_nothing(tmp_path, fakes):
    lab = new_lab(tmp_path, fakes)
    lab.up("nat-first")
    write_alert(lab, 1)
    report = lab.down(purge=True)
    assert report.archive is None and report.state_dir == str(lab.state_dir) and not lab.state_dir.exists()
    assert not (tmp_path / "archive").exists()


def test_a_throwaway_lab_keeps_no_archive(tmp_path, fakes):
    with new_lab(tmp_path, fakes).running("nat-first") as lab:
        write_alert(lab, 1)
    assert not lab.state_dir.exists() and not (tmp_path / "archive").exists()


def test_down_after_a_crash_in_up_archives_what_exists(tmp_path, fakes):
    """A lab that died while coming up: lab.json and its topology, no logs, no rules, no compose file."""
    lab = new_lab(tmp_path, fakes)
    lab.state.write(name="unit", phase="starting")
    lab.state.keep_topology(Lab.resolve_topology("nat-first").source)
    report = lab.down()
    assert report.archive is not None
    assert sorted(p.name for p in (tmp_path / "archive").glob("unit-*/*")) == ["lab.json", "topology.yaml"]
    assert new_lab(tmp_path, fakes).down().archive is None  # nothing left: nothing archived, no error


def test_a_failed_up_leaves_no_archive(tmp_path, fakes):
    fakes[1].fail = "create_links"
    lab = new_lab(tmp_path, fakes)
    with pytest.raises(NodeError):
        lab.up("nat-first")
    assert not lab.state_dir.exists() and not (tmp_path / "archive").exists()


def test_two_downs_in_the_same_second_get_two_folders(tmp_path):
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    folders = []
    for _ in range(2):
        state = LabState(tmp_path / "state" / "a")
        state.write(name="a")
        folders.append(state.archive("a", tmp_path / "archive", now))
    assert [f.name for f in folders if f] == ["a-20260102T030405Z", "a-20260102T030405Z-2"]


def test_an_archive_root_inside_the_labs_own_directory_is_refused(tmp_path, monkeypatch, fakes):
    lab = new_lab(tmp_path, fakes)
    lab.state.write(name="unit")
    monkeypatch.setenv("NFWLAB_ARCHIVE_ROOT", str(lab.state_dir / "keep"))
    with pytest.raises(ConfigError, match="inside the state directory of lab unit") as e:
        lab.down()
    assert "NFWLAB_ARCHIVE_ROOT" in e.value.hint and lab.state.file.exists()


def test_the_archive_sits_beside_the_labs_and_no_lab_may_be_named_after_it(tmp_path, monkeypatch):
    monkeypatch.delenv("NFWLAB_ARCHIVE_ROOT", raising=False)
    monkeypatch.setenv("NFWLAB_STATE_ROOT", str(tmp_path))
    assert archive_root() == tmp_path / "archive"
    with pytest.raises(ConfigError, match="'archive' is taken by the folder where `down` keeps labs' logs"):
        Lab("archive")


def test_log_rotation_settings_reach_the_nodes_lab_json_and_status(tmp_path, fakes):
    lab = new_lab(tmp_path, fakes, log_max_size="20k", log_keep=50)
    lab.up("nat-first")
    services = yaml.safe_load((lab.state_dir / "compose.yaml").read_text())["services"]
    for node in ("nat-gateway", "firewall"):
        env = services[node]["environment"]
        assert (env["NFWLAB_LOG_MAX_SIZE"], env["NFWLAB_LOG_KEEP"]) == ("20480", "50")
    assert services["nat-gateway"]["environment"]["NFWLAB_NAT_NAME"] == "nat-gateway"  # its own kept
    saved = lab.state.read()
    assert (saved.log_max_size, saved.log_keep) == (20480, 50)
    again = new_lab(tmp_path, fakes)  # a later command: the running lab's settings
    assert (again.log_limits.max_size, again.log_limits.keep) == (20480, 50)
    st = again.status()
    assert (st.log_max_size, st.log_keep) == (20480, 50)


def test_bad_log_settings_are_refused_before_anything_is_made(tmp_path, fakes):
    with pytest.raises(ConfigError, match="--log-max-size '3' is below 4k"):
        new_lab(tmp_path, fakes, log_max_size="3")
    with pytest.raises(ConfigError, match="--log-keep 0"):
        new_lab(tmp_path, fakes, log_keep=0)
    assert not (tmp_path / "state").exists()
