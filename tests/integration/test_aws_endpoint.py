"""`nfwlab serve` and `nfwlab import` with the real lab.

Terraform builds the write-up's VPC on the lab's AWS endpoint; the lab comes up from it, and the alert for a
denied request names the NAT gateway. Applying the other design (three routes change target, a return route
comes, the edge route table goes) makes the alert name the server, with no container restarted. A rule group
update is enforced live; one the engine refuses fails the API call and changes nothing. `terraform destroy`
leaves no container. An account dump imports to a lab whose check and alerts match what that account logs.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from aws_support import ROOT, example_copy, free_port, settled, targets, terraform, terraform_env
from botocore.exceptions import ClientError
from verdicts import blocked, passes

from lab import Lab
from lab.aws.serve import STATUS_PATH
from lab.model import load_topology
from lab.pytest_plugin import worker_lab_name
from lab.wait import Wait

NAT_GATEWAY, SERVER_A = "10.0.13.92", "10.0.136.108"
DENIED = "https://blocked.example/"


class Served:
    """A `nfwlab serve` process (the CLI, as users start it) and its log."""

    def __init__(self, name: str, log: Path):
        self.name, self.port, self.log = name, free_port(), log
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lab", "--name", name, "serve", "--port", str(self.port), "--settle", "0.5"],
            stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT)
        Wait(f"nfwlab serve to answer on {self.url}", 60, interval=0.2).until(self.answers, log.read_text)

    def answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"nfwlab serve exited {self.process.returncode}:\n{self.log.read_text()}")
        try:
            return requests.get(self.url + STATUS_PATH, timeout=2).ok
        except requests.ConnectionError:
            return False

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name="ap-northeast-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=180)


@pytest.fixture
def served(tmp_path: Path, pytestconfig: pytest.Config) -> Iterator[Served]:
    name = worker_lab_name(f"{pytestconfig.getoption('--nfwlab-name')}-tf")
    Lab(name).down()  # whatever an interrupted run left under this name
    serve = Served(name, tmp_path / "serve.log")
    try:
        yield serve
    finally:
        code = serve.stop()
        assert code == 0, serve.log.read_text()
        assert Lab(name).docker.containers(name) == {}, "the lab outlived `nfwlab serve`"


def container_ids(lab: Lab) -> dict[str, str]:
    return {service: c.id for service, c in lab.docker.containers(lab.name).items()}


def alert_source(lab: Lab, port: int) -> str:
    """The src_ip of the firewall's alert for server-a's request to the denied name, from port `port` (dropped:
    the alert of its own flow and the client's timeout say so)."""
    alert = blocked(lab, DENIED, port, {"alert.signature": "matching TLS denylisted FQDNs", "dest_port": 443})
    return str(alert["src_ip"])


def test_terraform_builds_the_lab_and_a_route_change_moves_the_alert(served: Served, tmp_path: Path,
                                                                     nfwlab_ports: Iterator[int]) -> None:
    env, work = terraform_env(tmp_path), example_copy(tmp_path)
    endpoint = f"-var=endpoint={served.url}"
    terraform(work, env, "init", "-input=false")
    started = time.monotonic()
    terraform(work, env, "apply", "-auto-approve", "-input=false", endpoint)
    applied = time.monotonic() - started
    status = settled(served.url, timeout=180)
    assert status["state"] == "up", status
    lab = Lab(served.name)
    # The write-up's first design, from Terraform: alerts name the NAT gateway.
    assert targets(lab.topology) == targets(load_topology(ROOT / "topologies" / "nat-first.yaml"))
    assert alert_source(lab, next(nfwlab_ports)) == NAT_GATEWAY
    print(f"terraform apply {applied:.1f} s; lab passing traffic {time.monotonic() - started:.1f} s after "
          f"apply began ({status['actions']})")
    before = container_ids(lab)

    terraform(work, env, "apply", "-auto-approve", "-input=false", endpoint, "-var=design=firewall-first")
    status = settled(served.url, timeout=60)
    assert any("route tables switched live" in a for a in status["actions"]), status
    lab = Lab(served.name)
    assert targets(lab.topology) == targets(load_topology(ROOT / "topologies" / "firewall-first.yaml"))
    assert alert_source(lab, next(nfwlab_ports)) == SERVER_A
    assert container_ids(lab) == before, "a container was replaced by a route change"

    # A rule group update is enforced live; one the engine refuses fails with AWS's error and changes nothing.
    nfw = served.client("network-firewall")
    described = nfw.describe_rule_group(RuleGroupName="deny-domains", Type="STATEFUL")
    bad = 'drop tls $HOME_NET any -> $EXTERNAL_NET any (tls.sni; content:"x"; pcre:"/(/"; sid:77; rev:1;)'
    with pytest.raises(ClientError) as refused:
        nfw.update_rule_group(RuleGroupArn=described["RuleGroupResponse"]["RuleGroupArn"],
                              UpdateToken=described["UpdateToken"], RuleGroup={"RulesSource": {"RulesString": bad}})
    assert refused.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "sid:77" in refused.value.response["Error"]["Message"], refused.value.response["Error"]
    assert nfw.describe_rule_group(RuleGroupName="deny-domains", Type="STATEFUL")["UpdateToken"] \
        == described["UpdateToken"]
    allowed = 'pass tls $HOME_NET any -> $EXTERNAL_NET 443 (tls.sni; content:"blocked.example"; ' \
        'startswith; endswith; msg:"now allowed"; sid:78; rev:1;)'
    nfw.update_rule_group(RuleGroupArn=described["RuleGroupResponse"]["RuleGroupArn"],
                          UpdateToken=described["UpdateToken"], RuleGroup={"RulesSource": {"RulesString": allowed}})
    status = settled(served.url, timeout=60)
    assert any("policy applied live" in a for a in status["actions"]), status
    passes(lab, DENIED, next(nfwlab_ports))
    assert container_ids(lab) == before

    terraform(work, env, "destroy", "-auto-approve", "-input=false", endpoint)
    status = settled(served.url, timeout=120)
    assert status["state"] == "waiting", status
    assert lab.docker.containers(served.name) == {}
    assert served.client("network-firewall").list_firewalls()["Firewalls"] == []


def test_an_imported_account_runs_and_logs_its_servers(tmp_path: Path, nfwlab_ports: Iterator[int],
                                                       pytestconfig: pytest.Config) -> None:
    """The fixture account (tests/data/account): `nfwlab import` writes a topology and a policy; the lab they
    start passes `nfwlab check` and the firewall logs what that account's firewall would."""
    name = worker_lab_name(f"{pytestconfig.getoption('--nfwlab-name')}-imp")
    done = subprocess.run([sys.executable, "-m", "lab", "--name", name, "import", "tests/data/account",
                           "--out", str(tmp_path), "--json"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    written = json.loads(done.stdout)
    lab = Lab(name, policy_file=written["policy"])
    with lab.running(written["topology"]):
        traces = lab.check()
        assert traces and all(t.firewall_sees and not t.warnings for t in traces), traces
        server = lab.vpc.servers[0]
        nat = lab.vpc.nat_gateways[0]
        # Strict order with aws:drop_established + aws:alert_established: a name the rules don't pass is
        # dropped and alerted once the connection is established (the default action's alert, gid 2 sid 4), from
        # the NAT gateway (a nat-first account).
        alert = blocked(lab, "https://blocked.example/", next(nfwlab_ports),
                        {"dest_port": 443, "alert.gid": 2, "alert.signature_id": 4}, node=server.name)
        assert alert["src_ip"] == str(nat.private_ip)
        passes(lab, "https://updates.example.com/", next(nfwlab_ports), node=server.name)
        # Out again: the running lab exported, then imported, is the same VPC with the same route tables.
        exported = tmp_path / "exported"
        done = subprocess.run([sys.executable, "-m", "lab", "--name", name, "export", "--out", str(exported)],
                              cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert (exported / "terraform" / "main.tf").read_text().count('resource "aws_instance"') == 2
        done = subprocess.run([sys.executable, "-m", "lab", "import", str(exported / "describe"), "--out",
                               str(tmp_path / "again"), "--json"], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        again = load_topology(json.loads(done.stdout)["topology"])
        assert again.vpc == lab.vpc and again.route_tables.tables == lab.topology.route_tables.tables
