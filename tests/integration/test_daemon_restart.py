"""Every node down at once, as after a restart of the Docker daemon (its containers stop, their network
namespaces and links go): `status` says the lab is degraded with every node down and exits 5, and one
`nfwlab repair` brings the whole lab back, traffic and alerts included.

The daemon restart itself disturbs every lab on the machine: it is marked `alone` (`make test` runs it after
the rest, by itself) and runs only with NFWLAB_TEST_DOCKERD_RESTART=1. The same path without the daemon is
`docker stop` of every container of the lab, which any run does."""
from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_repair_live import back_in_service, ids, nfwlab_cli, repaired_by_the_cli

from lab import Lab
from lab import docker as dk
from lab.nodes import services
from lab.wait import Wait

DOCKERD_LOG = Path("/var/log/nfwlab-dockerd.log")  # where scripts/install-host.sh starts dockerd's output


def every_node_down_then_one_repair(lab: Lab, ports: Iterator[int]) -> None:
    nodes = services(lab.vpc)
    status = lab.status()
    assert status.degraded and status.down_nodes == nodes
    res = nfwlab_cli(lab, "status")
    assert res.returncode == 5 and f"`nfwlab --name {lab.name} repair`" in res.stdout
    before = ids(lab)
    repaired_by_the_cli(lab, nodes)
    assert ids(lab) == before  # the same containers, started again
    back_in_service(lab, ports)


def test_every_container_of_the_lab_stopped_then_one_repair_brings_it_back(nfwlab, nfwlab_ports):
    if nfwlab.topology_name != "nat-first":  # the alerts below name the NAT gateway
        nfwlab.switch("nat-first")
    assert not nfwlab.status().degraded
    stopped = [c.id for c in dk.containers(nfwlab.name).values()]
    subprocess.run(["docker", "stop", "-t", "1", *stopped], check=True, capture_output=True, timeout=120)
    every_node_down_then_one_repair(nfwlab, nfwlab_ports)


def restart_dockerd() -> None:
    """As scripts/install-host.sh starts it: systemd's docker unit where systemd runs, else dockerd itself."""
    if Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "restart", "docker"], check=True, timeout=300)
    else:
        pid = int(Path("/var/run/docker.pid").read_text().strip())
        os.kill(pid, signal.SIGTERM)
        Wait("dockerd to stop", 120, interval=0.2).until(lambda: not Path(f"/proc/{pid}").exists())
        with DOCKERD_LOG.open("ab") as log:
            subprocess.Popen(["dockerd"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    Wait("dockerd to answer again", 120, interval=0.5).until(
        lambda: subprocess.run(["docker", "info"], capture_output=True).returncode == 0)


@pytest.mark.alone
@pytest.mark.skipif(os.environ.get("NFWLAB_TEST_DOCKERD_RESTART") != "1",
                    reason="restarts the Docker daemon (every lab on the machine stops): NFWLAB_TEST_DOCKERD_RESTART=1")
def test_after_a_docker_daemon_restart_the_lab_is_degraded_and_one_repair_brings_it_back(nfwlab, nfwlab_ports):
    if nfwlab.topology_name != "nat-first":  # the alerts below name the NAT gateway
        nfwlab.switch("nat-first")
    assert not nfwlab.status().degraded
    live_restore = subprocess.run(["docker", "info", "-f", "{{.LiveRestoreEnabled}}"], capture_output=True,
                                  text=True, check=True).stdout.strip() == "true"
    restart_dockerd()
    if live_restore:  # the containers, their namespaces and links outlive the daemon: nothing to repair
        assert not nfwlab.status().degraded
        back_in_service(nfwlab, nfwlab_ports)
        return
    # The daemon stops its containers (no restart policy): once it reports them so, the lab is degraded.
    Wait("the lab's containers to be reported stopped", 60, interval=0.5).until(
        lambda: not any(c.running for c in dk.containers(nfwlab.name).values()))
    every_node_down_then_one_repair(nfwlab, nfwlab_ports)
