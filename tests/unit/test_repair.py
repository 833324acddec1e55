"""Repair in place, with Docker and the kernel replaced by fakes (tests/unit/fakes.py): only the nodes that are
down are started again or made anew, only their links are made again (a peer end left behind deleted first),
set-up repeated on a node that stayed up adds nothing twice, `up` on a lab that is up repairs it, `status`
says what is down and exits 5. No root, no Docker. (On real labs: tests/integration/test_repair_live.py.)"""
import subprocess

import pytest
from fakes import FakeDocker, FakeKernel

from lab import cli, deploy
from lab import kernel as real_kernel
from lab.errors import NodeError, StateError
from lab.lab import Lab
from lab.nodes import ROUTER, router_port, services
from lab.nodes.base import stable_mac
from lab.routing import PolicyRule

LAB = "unit"


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setattr(deploy.os, "geteuid", lambda: 0)
    made = Lab(LAB, state_dir=tmp_path / LAB, docker=FakeDocker(), kernel=FakeKernel())
    made.up("nat-first")
    return made


def kill(lab: Lab, node: str, peers_too: bool = True) -> None:
    """What `docker kill` does to a node: its container exits and its namespace goes, with its links (and,
    unless `peers_too` is False, at once with the peer ends in its neighbours)."""
    c = lab.docker.running[LAB][node]
    lab.docker.stop(LAB, node)
    lab.kernel.namespace_gone(c.pid, peers_too)


def snapshot(lab: Lab) -> dict[str, tuple[str, int]]:
    return {n: (c.id, c.pid) for n, c in lab.docker.containers(LAB).items()}


def made_pairs(kernel: FakeKernel, since: int) -> set[frozenset]:
    return {frozenset(pair) for pair in kernel.pairs[since:]}


def test_only_the_dead_node_is_started_again_and_only_its_link_is_made_again(lab):
    docker, kernel = lab.docker, lab.kernel
    before = snapshot(lab)
    kill(lab, "nat-gateway")
    assert lab.health()["nat-gateway"] == "exited"
    docker.calls.clear()
    kernel.calls.clear()
    pairs_before = len(kernel.pairs)

    assert lab.repair() == ["nat-gateway"]

    after = snapshot(lab)
    assert {n: after[n] for n in before if n != "nat-gateway"} == {n: before[n] for n in before if n != "nat-gateway"}
    assert after["nat-gateway"][0] == before["nat-gateway"][0] and after["nat-gateway"][1] != before["nat-gateway"][1]
    assert docker.calls_of("start") == [("start", "id-nat-gateway")] and not docker.calls_of("compose up")
    nat, router = after["nat-gateway"][1], after[ROUTER][1]
    assert made_pairs(kernel, pairs_before) == {frozenset({(nat, "eth0"), (router, router_port("nat-gateway"))})}
    # The NAT gateway's own set-up and its neighbour's (the router: rules and route tables) again; nobody else's.
    touched = {c[1] for c in kernel.calls if c[0] in ("iptables", "sysctl")}
    assert touched == {nat}
    assert "add_bridge" not in kernel.names()  # the router kept its bridges
    assert "replace_routes" in kernel.names()  # its route tables again (a route through a remade link goes)
    # The router, its only neighbour, learns where the NAT gateway's addresses are (it may be resolving them).
    assert [c for c in kernel.calls if c[0] == "announce"] == [("announce", nat, (router,))]
    assert lab.health() == {n: "running" for n in services(lab.vpc)} and not lab.status().degraded


def test_a_peer_end_left_in_a_live_neighbour_is_deleted_before_the_pair_is_made_again(lab):
    kernel = lab.kernel
    router = snapshot(lab)[ROUTER][1]
    kill(lab, "server-a", peers_too=False)  # the router still has its end of the link (teardown not done)
    assert router_port("server-a") in kernel.link_names(kernel.netns_path(router))
    assert lab.repair() == ["server-a"]
    assert ("delete_links", kernel.netns_path(router), (router_port("server-a"),)) in kernel.calls
    server = snapshot(lab)["server-a"][1]
    assert "eth0" in kernel.link_names(kernel.netns_path(server))
    assert router_port("server-a") in kernel.link_names(kernel.netns_path(router))


def test_without_deleting_the_left_end_the_pair_could_not_be_made(lab, monkeypatch):
    """The fake refuses a pair whose end exists (EEXIST), as the kernel does: what the deletion prevents."""
    kill(lab, "server-a", peers_too=False)
    monkeypatch.setattr(lab.kernel, "delete_links", lambda netns, names: [])
    with pytest.raises(NodeError, match="already exists"):
        lab.repair()


def test_a_node_whose_container_is_gone_is_made_anew_for_that_service_only(lab):
    docker, kernel = lab.docker, lab.kernel
    before = snapshot(lab)
    kernel.namespace_gone(before["internet"][1])
    del docker.running[LAB]["internet"]
    assert lab.status().down_nodes == ["internet"] and lab.status().nodes["internet"] == "missing"
    docker.calls.clear()
    assert lab.repair() == ["internet"]
    assert docker.calls_of("compose up") == [("compose up", LAB, "internet")] and not docker.calls_of("start")
    after = snapshot(lab)
    assert after["internet"][0] != before["internet"][0]
    assert {n: v for n, v in after.items() if n != "internet"} == {n: v for n, v in before.items() if n != "internet"}


def test_set_up_repeated_on_a_node_that_stayed_up_adds_no_rule_twice(lab):
    """The internet gateway's rules (NAT, forwarding) are applied again when its link to the internet is made
    again: every rule is there once, in the order first made."""
    kernel = lab.kernel
    igw = snapshot(lab)["internet-gateway"][1]
    rules = list(kernel.rules[igw])
    kill(lab, "internet")
    calls = len(kernel.calls)
    lab.repair()
    assert any(c[0] == "iptables" and c[1] == igw for c in kernel.calls[calls:])  # applied again...
    assert kernel.rules[igw] == rules  # ...and nothing added
    internet = snapshot(lab)["internet"][1]
    assert len(kernel.rules[internet]) == len(set(kernel.rules[internet])) == 3


def test_a_firewall_endpoint_fails_closed_before_its_links_and_gets_its_stateless_rules_after(lab):
    docker, kernel = lab.docker, lab.kernel
    kill(lab, "firewall")
    docker.calls.clear()
    calls = len(kernel.calls)
    assert lab.repair() == ["firewall"]
    new = kernel.calls[calls:]
    fw = snapshot(lab)["firewall"][1]
    queue = next(i for i, c in enumerate(new) if c[0] == "iptables" and c[1] == fw and "NFQUEUE" in c[2])
    assert queue < [c[0] for c in new].index("create_links")
    execs = [c[2] for c in docker.calls_of("exec")]
    assert execs.index(next(a for a in execs if a[0] == "iptables-restore")) < execs.index(
        ("iptables", "-w", "5", "-R", "NFW-PASS", "1", "-j", "ACCEPT"))  # the gate opens last
    assert {c[1] for c in docker.calls_of("exec") if c[2][0] == "iptables-restore"} == {"id-firewall"}


def test_the_vpc_router_brought_back_makes_its_bridges_and_every_link_at_it_not_the_internets(lab):
    kernel = lab.kernel
    before = snapshot(lab)
    kill(lab, ROUTER)
    pairs_before = len(kernel.pairs)
    calls = len(kernel.calls)
    assert lab.repair() == [ROUTER]
    new = [c[0] for c in kernel.calls[calls:]]
    assert new.count("add_bridge") == len(lab.vpc.subnets) and new.index("add_bridge") < new.index("create_links")
    made = made_pairs(kernel, pairs_before)
    router = snapshot(lab)[ROUTER][1]
    assert len(made) == 5 and all(any(pid == router for pid, _ in pair) for pair in made)
    assert not any((before["internet"][1], "eth0") in pair for pair in made)
    assert "replace_routes" in new


def test_after_a_docker_restart_every_node_is_down_and_one_repair_brings_all_back(lab):
    for node in services(lab.vpc):
        kill(lab, node)
    st = lab.status()
    assert st.degraded and st.down_nodes == services(lab.vpc)
    assert lab.repair() == services(lab.vpc)
    assert lab.health() == {n: "running" for n in services(lab.vpc)}
    assert not lab.wiring.missing_links(lab.roles(), lab.deployment.pids(lab.topology))


def test_a_node_started_again_outside_the_lab_is_unwired_and_is_rewired_without_a_restart(lab):
    docker = lab.docker
    c = docker.running[LAB]["server-b"]
    lab.kernel.namespace_gone(c.pid)
    docker.start(c.id)  # `docker restart`: a new run, a new namespace
    assert lab.health()["server-b"] == "unwired"
    docker.calls.clear()
    assert lab.repair() == ["server-b"]
    assert not docker.calls_of("start") and not docker.calls_of("compose up")
    assert "eth0" in lab.kernel.link_names(lab.kernel.netns_path(snapshot(lab)["server-b"][1]))
    assert lab.health()["server-b"] == "running"


def test_a_paused_node_is_resumed_and_not_rewired(lab):
    lab.docker.stop(LAB, "server-b", "paused")
    assert lab.status().down_nodes == ["server-b"]
    pairs = len(lab.kernel.pairs)
    assert lab.repair() == ["server-b"]
    assert lab.docker.calls_of("unpause") == [("unpause", "id-server-b")] and len(lab.kernel.pairs) == pairs


def test_a_stopped_firewall_engine_in_a_running_endpoint_is_started_again(lab, monkeypatch):
    docker = lab.docker
    docker.exec_results["pidof"] = (1, "", "")  # no suricata process
    assert lab.status().firewall_engines["firewall"] != "running" and not lab.status().degraded

    def hup(container_id, name):
        docker.calls.append(("signal", container_id, name))
        docker.exec_results["pidof"] = (0, "42", "")
    monkeypatch.setattr(docker, "signal", hup)
    assert lab.repair() == ["firewall"]
    assert docker.calls_of("signal") == [("signal", "id-firewall", "SIGHUP")]


def test_a_node_that_does_not_come_back_is_an_error_and_the_lab_stays(lab, monkeypatch):
    kill(lab, "server-a")
    monkeypatch.setattr(lab.docker, "start", lambda container_id: None)  # it exits again at once
    with pytest.raises(NodeError, match="node server-a is not running") as e:
        lab.repair()
    assert f"nfwlab --name {LAB} status" in e.value.hint
    assert lab.state_dir.exists() and lab.topology_name == "nat-first"


def test_up_on_a_lab_that_is_up_repairs_it_and_refuses_another_topology(lab):
    kill(lab, "nat-gateway")
    again = Lab(LAB, state_dir=lab.state_dir, docker=lab.docker, kernel=lab.kernel)
    again.up("nat-first")
    assert again.repaired == ["nat-gateway"] and again.health()["nat-gateway"] == "running"
    again.up()
    assert again.repaired == []
    before = snapshot(lab)
    with pytest.raises(StateError, match="up with topology nat-first .*not with firewall-first") as e:
        Lab(LAB, state_dir=lab.state_dir, docker=lab.docker, kernel=lab.kernel).up("firewall-first")
    assert f"nfwlab --name {LAB} switch firewall-first" in e.value.hint
    assert snapshot(lab) == before and lab.topology_name == "nat-first"


def test_a_request_from_a_dead_node_points_to_repair(lab):
    kill(lab, "server-a")
    with pytest.raises(NodeError, match="node server-a is not running") as e:
        lab.fetch("server-a", "https://allowed.example/")
    assert f"`nfwlab --name {LAB} repair`" in e.value.hint


def test_status_says_what_is_down_and_exits_5_and_repair_exits_0(lab, monkeypatch, capsys):
    monkeypatch.setattr(cli, "Lab", lambda name, **kw: Lab(name, state_dir=lab.state_dir, docker=lab.docker,
                                                         kernel=lab.kernel, **kw))
    assert cli.main(["--name", LAB, "status"]) == 0
    capsys.readouterr()
    kill(lab, "nat-gateway")
    assert cli.main(["--name", LAB, "status"]) == 5
    assert f"degraded: nat-gateway is exited -> run `nfwlab --name {LAB} repair`" in capsys.readouterr().out
    assert cli.main(["--name", LAB, "status", "--json"]) == 5
    assert '"down_nodes": [\n    "nat-gateway"\n  ]' in capsys.readouterr().out
    assert cli.main(["--name", LAB, "repair"]) == 0
    assert "nat-gateway brought back" in capsys.readouterr().out
    assert cli.main(["--name", LAB, "status"]) == 0
    assert cli.main(["--name", LAB, "repair"]) == 0
    assert "nothing to repair" in capsys.readouterr().out


def test_macs_are_the_same_each_time_a_node_is_made_and_differ_between_interfaces():
    mac = stable_mac("server-a", "eth0")
    assert mac == stable_mac("server-a", "eth0") != stable_mac("server-b", "eth0") != stable_mac("server-a", "eth1")
    first = int(mac.split(":")[0], 16)
    assert first & 0b10 and not first & 0b1  # locally administered, unicast


def test_iptables_append_checks_first_and_appends_only_what_is_missing(monkeypatch):
    ran: list[list[str]] = []
    held = {("nat", "POSTROUTING", ("-j", "MASQUERADE"))}

    def run(cmd, **kwargs):
        ran.append(cmd)
        i = cmd.index("-t")
        table, action, chain, rule = cmd[i + 1], cmd[i + 2], cmd[i + 3], tuple(cmd[i + 4:])
        if action == "-A":
            held.add((table, chain, rule))
        return subprocess.CompletedProcess(cmd, 0 if action == "-A" or (table, chain, rule) in held else 1, "", "")
    monkeypatch.setattr(real_kernel.subprocess, "run", run)
    assert real_kernel.iptables_append(1, "nat", "POSTROUTING", "-j", "MASQUERADE") is False
    assert real_kernel.iptables_append(1, "filter", "FORWARD", "-j", "DROP") is True
    assert real_kernel.iptables_append(1, "filter", "FORWARD", "-j", "DROP") is False
    assert [c[c.index("-t") + 2] for c in ran] == ["-C", "-C", "-A", "-C"]


def test_policy_rules_are_added_only_where_missing(monkeypatch):
    added: list[dict] = []

    class Rule(dict):
        def get_attr(self, name):
            return self.get(name)

    class FakeIPRoute:
        def __init__(self, netns=None):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def get_rules(self, family):
            return [Rule(FRA_IIFNAME="public", FRA_TABLE=101, FRA_PRIORITY=1000, table=101)]

        def rule(self, action, **kwargs):
            added.append(kwargs)
    monkeypatch.setattr(real_kernel, "IPRoute", FakeIPRoute)
    real_kernel.add_policy_rules("/proc/1/ns/net", [PolicyRule(priority=1000, iif="public", table=101),
                                                        PolicyRule(priority=1000, iif="private", table=102)])
    assert added == [{"iifname": "private", "table": 102, "priority": 1000}]



def test_up_with_options_on_a_running_lab_is_refused_instead_of_ignoring_them(lab, monkeypatch, capsys):
    """`up` on a running lab repairs it; a policy or other option given with it would be silently ignored, so
    it is refused (exit 4, wrong lab state) and the hint names the command that changes a running policy."""
    monkeypatch.setattr(cli, "Lab", lambda name, **kw: Lab(name, state_dir=lab.state_dir, docker=lab.docker,
                                                         kernel=lab.kernel, **kw))
    before = snapshot(lab)
    assert cli.main(["--name", LAB, "up", "--policy", "policies/home-net-trap.json", "--log-keep", "3"]) == 4
    err = capsys.readouterr().err
    assert "would ignore --policy, --log-keep" in err and f"nfwlab --name {LAB} policy apply FILE" in err
    assert snapshot(lab) == before
    assert cli.main(["--name", LAB, "up"]) == 0  # without options: repairs (here: nothing to do)
