"""The lab's orchestration with Docker and the kernel replaced by fakes (tests/unit/fakes.py): what `up`
makes and in what order, its failure path and cleanup, policy rollback, the live switch's compatibility
check, the engines, and the lazy loading of files. No root, no Docker."""
import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from fakes import FakeDocker, FakeKernel

from lab import deploy
from lab.engine import DOWN
from lab.errors import ConfigError, NodeError, StateError, WaitTimeout
from lab.lab import Lab
from lab.nodes import NodeKind
from lab.nodes.internet import SERVING

ENDPOINT = "firewall"
ROOT = Path(__file__).resolve().parents[2]  # the repository, wherever pytest runs from


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setattr(deploy.os, "geteuid", lambda: 0)  # the root check, not what is tested here
    return FakeDocker(), FakeKernel()


def new_lab(tmp_path, fakes, **kwargs):
    docker, kernel = fakes
    return Lab("unit", state_dir=tmp_path / "unit", docker=docker, kernel=kernel, **kwargs)


def test_up_makes_every_node_fails_closed_before_any_link_and_routes_last(tmp_path, fakes):
    docker, kernel = fakes
    lab = new_lab(tmp_path, fakes)
    lab.up("nat-first")
    names = kernel.names()
    queue = next(i for i, c in enumerate(kernel.calls) if c[0] == "iptables" and "NFQUEUE" in c[2])
    assert queue < names.index("create_links") and names.index("add_bridge") < names.index("create_links")
    # Last: the routes, then the policy's TCP idle timeout on the flows the firewall's kernel forwards.
    assert names[-2:] == ["replace_routes", "sysctl"]
    assert kernel.calls[-1][2] == ("net.netfilter.nf_conntrack_tcp_timeout_established", "350")
    compose = yaml.safe_load((lab.state_dir / "compose.yaml").read_text())["services"]
    assert set(compose) == {"vpc-router", "server-a", "server-b", "nat-gateway", "firewall", "internet-gateway",
                            "internet"}
    assert all(s["network_mode"] == "none" and s["labels"]["io.nfwlab.lab"] == "unit" for s in compose.values())
    assert compose[ENDPOINT]["labels"]["io.nfwlab.role"] == NodeKind.FIREWALL.value
    assert lab.topology_name == "nat-first" and lab.state.read().phase == "up"


def test_a_failure_while_wiring_removes_everything_made(tmp_path, fakes):
    docker, kernel = fakes
    kernel.fail = "create_links"
    lab = new_lab(tmp_path, fakes)
    with pytest.raises(NodeError, match="create_links failed"):
        lab.up("nat-first")
    assert docker.calls_of("compose down") and docker.calls_of("remove")
    assert docker.containers("unit") == {} and not lab.state_dir.exists()


def test_a_firewall_that_dies_at_start_is_reported_with_its_errors_and_nothing_stays(tmp_path, fakes):
    docker, _ = fakes
    docker.dead = {ENDPOINT}
    docker.firewall_log = "E: detect: error parsing signature \"bogus\" from file /etc/nfwlab/rules/lab.rules at line 1"
    lab = new_lab(tmp_path, fakes)
    with pytest.raises(NodeError, match=r"refused to start:\n.*error parsing signature"):
        lab.up("nat-first")
    assert docker.containers("unit") == {} and not lab.state_dir.exists()


def test_a_firewall_that_dies_while_being_wired_is_reported_with_its_errors(tmp_path, fakes):
    """Suricata refusing its rules can end the firewall's container while the lab wires it: the error is
    Suricata's, not the missing interface the wiring then meets."""
    docker, kernel = fakes
    docker.firewall_log = "E: detect: unknown rule keyword 'no_such_keyword'"
    lab = new_lab(tmp_path, fakes)
    original = kernel.iptables

    def dying(pid, *args):
        c = docker.running["unit"][ENDPOINT]
        docker.running["unit"][ENDPOINT] = replace(c, status="exited")
        raise NodeError("no interface firewall where the lab made it", "fake")
    kernel.iptables = dying
    with pytest.raises(NodeError, match="unknown rule keyword 'no_such_keyword'"):
        lab.up("nat-first")
    kernel.iptables = original
    assert docker.containers("unit") == {} and not lab.state_dir.exists()


def test_a_firewall_that_never_starts_is_a_timeout_that_shows_its_log(tmp_path, fakes):
    docker, _ = fakes
    docker.firewall_log = "Notice: suricata: This is Suricata version 7.0.10 RELEASE running in SYSTEM mode"
    lab = new_lab(tmp_path, fakes)
    with pytest.raises(WaitTimeout) as e:
        lab.up("nat-first", firewall_timeout=0.3)
    assert "Engine started" in str(e.value) and "7.0.10" in str(e.value)
    assert not lab.state_dir.exists()


def test_up_waits_for_the_internet_to_listen_not_only_for_its_container(tmp_path, fakes):
    # A request made before the web server listens is refused with an RST: a lab that says "up" then
    # fails its first request (the web server makes its certificate before it binds :443).
    docker, _ = fakes
    docker.web_log = ""
    lab = new_lab(tmp_path, fakes)
    with pytest.raises(WaitTimeout, match="every node to be ready"):
        lab.up("nat-first", firewall_timeout=0.3)
    assert not lab.state_dir.exists()
    assert SERVING in (ROOT / "compose" / "images" / "web.py").read_text()  # what the real web server prints
    docker.web_log = "nfwlab-web: serving allowed.example on :80 and :443"
    lab.up("nat-first")
    assert lab.state.read().phase == "up"


def test_up_on_a_name_in_use_changes_nothing(tmp_path, fakes):
    """Containers of the name, but no lab up in this state directory (an `up` that crashed, another state root):
    refused. (`up` on a lab that is up repairs it: test_repair.py.)"""
    docker, kernel = fakes
    lab = new_lab(tmp_path, fakes)
    lab.up("nat-first")
    before = (list(docker.calls), list(kernel.calls))
    with pytest.raises(StateError, match="already exists") as e:
        Lab("unit", state_dir=tmp_path / "elsewhere", docker=docker, kernel=kernel).up("nat-first")
    assert "nfwlab --name unit down" in e.value.hint
    assert (docker.calls, kernel.calls) == before and lab.topology_name == "nat-first"


def test_a_failed_reload_puts_the_previous_policy_back_and_restarts_the_engine(tmp_path, fakes):
    docker, _ = fakes
    lab = new_lab(tmp_path, fakes)
    lab.up("nat-first")
    rules_before = (lab.state.rules_dir / "lab.rules").read_text()
    docker.exec_results["suricatasc"] = (1, "", "Unable to connect to socket")
    with pytest.raises(NodeError, match="did not reload its rules"):
        lab.apply_policy(ROOT / "policies" / "allow-domains.json")
    assert (lab.state.rules_dir / "lab.rules").read_text() == rules_before
    assert docker.calls_of("signal") == [("signal", f"id-{ENDPOINT}", "SIGHUP")]
    assert lab.state.read().policy["name"] == lab.policy.name


def test_a_policy_the_engine_refuses_changes_nothing(tmp_path, fakes):
    docker, _ = fakes
    lab = new_lab(tmp_path, fakes)
    lab.up("nat-first")
    rules_before = (lab.state.rules_dir / "lab.rules").read_text()
    docker.exec_results["suricata"] = (1, "", "E: detect: unknown rule keyword 'nonsense'")
    with pytest.raises(ConfigError, match="Suricata refused the policy"):
        lab.apply_policy(ROOT / "policies" / "allow-domains.json")
    assert (lab.state.rules_dir / "lab.rules").read_text() == rules_before
    assert not (lab.state.rules_dir / "candidate").exists() and not docker.calls_of("signal")


def test_engine_options_restart_the_engine_instead_of_reloading(tmp_path, fakes):
    docker, _ = fakes
    lab = new_lab(tmp_path, fakes)
    lab.up("nat-first")
    policy = tmp_path / "p.yaml"
    data = yaml.safe_load((ROOT / "policies" / "strict-allow.yaml").read_text())
    data["FirewallPolicy"]["StatefulEngineOptions"]["StreamExceptionPolicy"] = "CONTINUE"
    policy.write_text(yaml.safe_dump(data))
    result = lab.apply_policy(policy)
    assert result.engine_restarted and docker.calls_of("signal")
    assert not [c for c in docker.calls_of("exec") if c[2][2:3] == ("suricatasc",)]


def test_switch_replaces_routes_only_and_refuses_another_vpc(tmp_path, fakes):
    docker, kernel = fakes
    lab = new_lab(tmp_path, fakes)
    lab.up("nat-first")
    calls = len(kernel.calls)
    lab.switch("firewall-first")
    assert kernel.names()[calls:] == ["replace_routes"] and lab.topology_name == "firewall-first"
    with pytest.raises(ConfigError, match="only route tables can change") as e:
        lab.switch("multi-az")
    assert "up --topology" in e.value.hint
    assert kernel.names()[calls:] == ["replace_routes"] and lab.topology_name == "firewall-first"
    assert not docker.calls_of("signal")


def test_engines_stop_start_and_status(tmp_path, fakes):
    docker, _ = fakes
    lab = new_lab(tmp_path, fakes)
    lab.up("nat-first")
    assert lab.status().firewall_engine == "running"
    docker.exec_results["pidof"] = (1, "", "")
    assert lab.status().firewall_engines == {ENDPOINT: DOWN}
    lab.stop_firewall_engine()
    with pytest.raises(ConfigError, match="no firewall endpoint named 'fw-x'"):
        lab.stop_firewall_engine("fw-x")
    lab.restart_firewall_engine()
    assert docker.calls_of("signal")[-1] == ("signal", f"id-{ENDPOINT}", "SIGHUP")
    lab.engines.wait(1)  # every endpoint reports "Engine started"
    docker.firewall_log = "Notice: suricata: starting"
    with pytest.raises(WaitTimeout, match="Suricata to report 'Engine started'") as e:
        lab.engines.wait(0.3)
    assert "starting" in str(e.value)


def test_out_of_path_swaps_the_queue_rule_and_puts_it_back(tmp_path, fakes):
    _, kernel = fakes
    lab = new_lab(tmp_path, fakes)
    lab.up("nat-first")
    start = len(kernel.calls)
    # FORWARD's rule 1 is the stateless engine's chain, rule 2 the bypassed flows, rule 3 the queue
    with lab.engines.out_of_path():
        assert kernel.calls[-1][2] == ("-R", "FORWARD", "3", "-j", "ACCEPT")
    assert kernel.calls[-1][2] == ("-R", "FORWARD", "3", *lab.engine_kind.queue_rule())
    assert len(kernel.calls) == start + 2


def test_commands_on_a_lab_that_is_down_say_how_to_start_it(tmp_path, fakes):
    lab = new_lab(tmp_path, fakes)
    with pytest.raises(StateError, match="is not up") as e:
        lab.switch("firewall-first")
    assert "nfwlab --name unit up" in e.value.hint
    assert lab.down().containers == 0


def test_files_are_read_when_needed_not_when_a_lab_is_made(tmp_path, fakes):
    lab = new_lab(tmp_path, fakes, policy_file=tmp_path / "missing.json", topology=tmp_path / "missing.yaml")
    assert lab.down().state_dir is None  # down reads neither file
    with pytest.raises(ConfigError, match="missing.yaml: no such file"):
        lab.up()
    lab = new_lab(tmp_path, fakes, policy_file=tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="missing.json: no such file"):
        lab.up("nat-first")
    assert not lab.state_dir.exists()


def test_log_marks_count_only_later_records(tmp_path, fakes):
    lab = new_lab(tmp_path, fakes)
    logs = lab.state_dir / "logs"
    (logs / ENDPOINT).mkdir(parents=True)
    alert = {"event_type": "alert", "timestamp": "2026-01-01T00:00:01.000000+0000", "src_ip": "10.0.13.92"}
    (logs / "alert.log").write_text(json.dumps({"event": alert}) + "\n")
    (logs / ENDPOINT / "eve.json").write_text(json.dumps(alert) + "\n")
    mark = lab.log_mark()
    assert len(lab.alerts(aws=True)) == 1 and lab.alerts(since=mark, aws=True) == []
    with open(logs / "alert.log", "a") as f:
        f.write(json.dumps({"event": {**alert, "src_ip": "10.0.136.108"}}) + "\n")
    assert [a["event"]["src_ip"] for a in lab.alerts(since=mark, aws=True)] == ["10.0.136.108"]
    assert lab.alerts(since=mark) == [] and len(lab.alerts()) == 1


def test_status_says_when_flow_bypass_is_off_or_steps_aside(tmp_path, fakes):
    from lab.stateless import Actions, StatelessPolicy, iptables_rules
    lab = new_lab(tmp_path, fakes)
    lab.up("nat-first")
    st = lab.status()
    assert st.flow_bypass and not st.flow_bypass_stepped_aside
    rules = lab.state.rules_dir / "stateless.rules"
    rules.write_text(iptables_rules(StatelessPolicy(fragment_default=Actions("aws:drop"))))
    assert lab.status().flow_bypass_stepped_aside
    lab.down()
    off = new_lab(tmp_path, fakes, flow_bypass=False)
    off.up("nat-first")
    assert not off.status().flow_bypass and not off.status().flow_bypass_stepped_aside
    assert new_lab(tmp_path, fakes).flow_bypass is False  # what the running lab was started with
