"""Bad input and interrupted runs: a clear error, and nothing half-made left behind (what a lab left is read
by its own labels, names and addresses: tests/evidence.py)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from evidence import kill_group, leftovers

from lab import Lab, StateError, nodes
from lab import docker as dk
from lab.errors import NodeError
from lab.pytest_plugin import worker_lab_name
from lab.wait import Wait

CLI = [sys.executable, "-m", "lab"]


def own_lab(request: pytest.FixtureRequest, suffix: str) -> str:
    """A lab name of this test's own, after the session's (--nfwlab-name), unique per xdist worker."""
    return worker_lab_name(f"{request.config.getoption('--nfwlab-name')}-{suffix}")


def test_suricata_refusing_its_rules_is_reported_and_nothing_is_left(request, tmp_path):
    rules = tmp_path / "broken.rules"
    rules.write_text('drop tls $HOME_NET any -> $EXTERNAL_NET any (tls.sni; content:"x"; no_such_keyword; sid:1;)\n')
    lab = Lab(own_lab(request, "badrules"), rules_file=rules)
    lab.down(purge=True)
    before = leftovers(lab)
    with pytest.raises(NodeError) as e:
        lab.up()
    assert "unknown rule keyword 'no_such_keyword'" in str(e.value)
    assert "rules" in e.value.hint
    assert leftovers(lab) == before


def test_a_busy_name_is_refused_and_the_running_lab_is_untouched(nfwlab, tmp_path):
    """The name's containers run, but no lab is up in this state directory (`up` on the running lab itself
    repairs it: test_repair_live.py)."""
    before = dk.containers(nfwlab.name)
    with pytest.raises(StateError, match="already exists"):
        Lab(nfwlab.name, state_dir=tmp_path / "elsewhere").up()
    assert dk.containers(nfwlab.name) == before
    assert nfwlab.fetch("server-a", "http://allowed.example/").status == 200


def test_unknown_design_on_a_running_lab_changes_nothing(nfwlab):
    design = nfwlab.topology_name
    res = subprocess.run([*CLI, "--name", nfwlab.name, "design", "sideways"], capture_output=True, text=True)
    assert res.returncode == 2
    assert "unknown topology 'sideways'" in res.stderr and "nat-first" in res.stderr
    assert nfwlab.topology_name == design


def test_missing_docker_engine_says_what_to_do(request):
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    res = subprocess.run([*CLI, "--name", own_lab(request, "nodocker"), "up"], capture_output=True, text=True, env=env)
    assert res.returncode == 3
    assert "cannot reach the Docker Engine" in res.stderr and "start it" in res.stderr


def test_failed_image_build_is_reported():
    res = subprocess.run([*CLI, "build", "--base-image", "nfwlab/no-such-base:0"], capture_output=True, text=True)
    assert res.returncode == 3
    assert "no-such-base:0 is neither present nor pullable" in res.stderr


def test_down_after_an_interrupted_up_removes_everything(request):
    """`up` killed as a real kill does (SIGKILL to its whole process group: the CLI and whatever it started)
    once its containers run, while it wires them; `down` then removes everything."""
    lab = Lab(own_lab(request, "killed"))
    lab.down(purge=True)
    before = leftovers(lab)
    proc = subprocess.Popen([*CLI, "--name", lab.name, "up"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        Wait("up to run every container of the lab", 120, interval=0.02).until(
            lambda: len(dk.containers(lab.name)) == len(nodes.services(lab.vpc)) or proc.poll() is not None)
        assert proc.poll() is None, "up finished before it could be interrupted"
    finally:
        if proc.poll() is None:
            kill_group(proc)
    assert dk.containers(lab.name), "the interrupted up should have left containers for down to remove"
    lab.down(purge=True)
    assert leftovers(lab) == before
