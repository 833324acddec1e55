"""Bad input and interrupted runs: a clear error, and nothing half-made left behind."""
import os
import signal
import subprocess
import sys
import time

import pytest

from lab import Lab, StateError, kernel, nodes
from lab import docker as dk
from lab.errors import NodeError
from lab.pytest_plugin import worker_lab_name

CLI = [sys.executable, "-m", "lab"]


def host_links() -> set[str]:
    return {i["ifname"] for i in kernel.interfaces(None)}


@pytest.fixture
def host_links_before() -> set[str]:
    return host_links()


def leftovers(lab: Lab, host_links_before: set[str]) -> dict:
    """What the lab left: its containers, host interfaces that were not there before, its state directory."""
    return {"containers": sorted(dk.containers(lab.name)), "host_links": sorted(host_links() - host_links_before),
            "state_dir": lab.state_dir.exists()}


NOTHING = {"containers": [], "host_links": [], "state_dir": False}


def test_suricata_refusing_its_rules_is_reported_and_nothing_is_left(tmp_path, host_links_before):
    rules = tmp_path / "broken.rules"
    rules.write_text('drop tls $HOME_NET any -> $EXTERNAL_NET any (tls.sni; content:"x"; no_such_keyword; sid:1;)\n')
    lab = Lab(worker_lab_name("pytest-badrules"), rules_file=rules)
    lab.down()
    with pytest.raises(NodeError) as e:
        lab.up()
    assert "unknown rule keyword 'no_such_keyword'" in str(e.value)
    assert "rules" in e.value.hint
    assert leftovers(lab, host_links_before) == NOTHING


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


def test_missing_docker_engine_says_what_to_do():
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    res = subprocess.run([*CLI, "--name", "pytest-nodocker", "up"], capture_output=True, text=True, env=env)
    assert res.returncode == 3
    assert "cannot reach the Docker Engine" in res.stderr and "start it" in res.stderr


def test_failed_image_build_is_reported():
    res = subprocess.run([*CLI, "build", "--base-image", "nfwlab/no-such-base:0"], capture_output=True, text=True)
    assert res.returncode == 3
    assert "no-such-base:0 is neither present nor pullable" in res.stderr


def test_down_after_an_interrupted_up_removes_everything(host_links_before):
    lab = Lab(worker_lab_name("pytest-killed"))
    lab.down()
    proc = subprocess.Popen([*CLI, "--name", lab.name, "up"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        # Kill it once its containers run, while it is still wiring them.
        while len(dk.containers(lab.name)) < len(nodes.services(lab.vpc)):
            assert proc.poll() is None, "up finished before it could be interrupted"
            assert time.monotonic() < deadline, "up made no containers within 60s"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert dk.containers(lab.name), "the interrupted up should have left containers for down to remove"
    lab.down()
    assert leftovers(lab, host_links_before) == NOTHING
