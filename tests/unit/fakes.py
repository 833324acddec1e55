"""Fakes of the lab's two boundaries, the Docker module and the kernel module, for root-free unit tests
of the orchestration (lab.Lab is given them instead of lab.docker and lab.kernel)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from lab.docker import Container, compose_env
from lab.errors import NodeError


class FakeDocker:
    """Containers come and go with the fake compose project; every call is recorded in `calls`."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.running: dict[str, dict[str, Container]] = {}  # lab -> service -> container
        self.firewall_log = "Engine started"  # what every firewall's output says
        self.web_log = "nfwlab-web: serving allowed.example on :80 and :443"  # the internet's web server's
        self.dead: set[str] = set()  # services whose container exits at once
        self.exec_results: dict[str, tuple[int, str, str]] = {}  # argv[0] (or argv[3] for timeout) -> result
        self.compose_up_error: Exception | None = None
        self.last_pid = 1000
        self.compose_env = compose_env
        docker = self

        class ComposeProject:
            def __init__(self, directory: Path, env_file: Path, compose_file: str = "docker-compose.yml"):
                self.path = Path(directory) / compose_file
                self.lab = yaml.safe_load(self.path.read_text())["name"].removeprefix("nfwlab-") \
                    if self.path.exists() else ""

            def up(self, services: list[str] | None = None) -> None:
                docker.calls.append(("compose up", self.lab, *(services or ())))
                defined = yaml.safe_load(self.path.read_text())["services"]
                if services:  # only those: made anew where missing (a new id), started where stopped
                    lab = docker.running.setdefault(self.lab, {})
                    for name in services:
                        old = lab.get(name)
                        pid = docker.new_pid()
                        lab[name] = Container(old.id if old else f"id-{name}-new", name,
                                              defined[name]["labels"]["io.nfwlab.role"], "running", pid, f"run {pid}")
                    return
                docker.running[self.lab] = {}
                for name, s in defined.items():
                    pid = 0 if name in docker.dead else docker.new_pid()
                    docker.running[self.lab][name] = Container(f"id-{name}", name, s["labels"]["io.nfwlab.role"],
                                                               "exited" if pid == 0 else "running", pid, f"run {pid}")
                if docker.compose_up_error:
                    raise docker.compose_up_error

            def down(self) -> None:
                docker.calls.append(("compose down", self.lab))
                docker.running.pop(self.lab, None)

        self.ComposeProject = ComposeProject

    def client(self):
        return self

    def image_exists(self, name: str) -> bool:
        return True

    def containers(self, lab: str, with_pids: bool = False) -> dict[str, Container]:
        return dict(self.running.get(lab, {}))

    def pid(self, container_id: str) -> int:
        return next((c.pid for lab in self.running.values() for c in lab.values() if c.id == container_id), 0)

    def new_pid(self) -> int:
        """A process id no container has had (a container started again gets a new one, and a new namespace)."""
        self.last_pid += 1
        return self.last_pid

    def _find(self, container_id: str) -> tuple[str, str]:
        return next((lab, name) for lab, found in self.running.items() for name, c in found.items()
                    if c.id == container_id)

    def stop(self, lab: str, service: str, status: str = "exited") -> None:
        """A node's container stopped (killed, exited) or `status` ("paused", "restarting")."""
        c = self.running[lab][service]
        self.running[lab][service] = replace(c, status=status, pid=c.pid if status == "paused" else 0)

    def start(self, container_id: str) -> None:
        self.calls.append(("start", container_id))
        lab, name = self._find(container_id)
        pid = self.new_pid()
        self.running[lab][name] = replace(self.running[lab][name], status="running", pid=pid, started=f"run {pid}")

    def unpause(self, container_id: str) -> None:
        self.calls.append(("unpause", container_id))
        lab, name = self._find(container_id)
        self.running[lab][name] = replace(self.running[lab][name], status="running")

    def remove_container(self, container_id: str) -> None:
        self.calls.append(("remove container", container_id))
        lab, name = self._find(container_id)
        del self.running[lab][name]

    def remove_lab_containers(self, lab: str) -> int:
        self.calls.append(("remove", lab))
        return len(self.running.pop(lab, {}))

    def exec_in(self, container_id: str, argv: list[str], env=None) -> tuple[int, str, str]:
        self.calls.append(("exec", container_id, tuple(argv)))
        key = argv[2] if argv[0] == "timeout" else argv[0]  # timeout SECONDS COMMAND ...
        if key == "suricatasc":
            return self.exec_results.get(key, (0, '{"message": "done", "return": "OK"}', ""))
        return self.exec_results.get(key, (0, "", ""))

    def logs(self, container_id: str, tail: int = 40, since: float | None = None) -> str:
        if container_id.startswith("id-internet"):
            return self.web_log
        return self.firewall_log if "firewall" in container_id or "fw" in container_id else ""

    def signal(self, container_id: str, name: str) -> None:
        self.calls.append(("signal", container_id, name))

    def calls_of(self, kind: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == kind]


class FakeKernel:
    """Records every change in order; `fail` names a function that raises a NodeError."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.fail: str | None = None
        self.ends: dict[int, set[str]] = {}  # pid -> the link ends in its namespace
        self.rules: dict[int, list[tuple]] = {}  # pid -> the rules iptables_append holds (table, chain, rule)
        self.pairs: list[tuple] = []  # every veth pair made: ((pid, ifname), (pid, ifname))

    @staticmethod
    def pid_of(netns: str) -> int:
        return int(netns.split("/")[2])

    def namespace_gone(self, pid: int, peers_too: bool = True) -> None:
        """A node's namespace torn down: its ends go, and with them their peers in other nodes (unless
        `peers_too` is False: a peer end the kernel has not removed yet)."""
        self._gone(pid, set(self.ends.get(pid, set())), peers_too)

    def _gone(self, pid: int, names: set[str], peers_too: bool) -> None:
        self.ends.get(pid, set()).difference_update(names)
        for a, b in self.pairs if peers_too else ():
            for (p, name), (peer, peer_name) in ((a, b), (b, a)):
                if p == pid and name in names:
                    self.ends.get(peer, set()).discard(peer_name)

    @staticmethod
    def netns_path(pid: int) -> str:
        return f"/proc/{pid}/ns/net"

    def _record(self, name: str, *args) -> None:
        if self.fail == name:
            raise NodeError(f"{name} failed (fake)", "it is a fake")
        self.calls.append((name, *args))

    def sysctl(self, pid: int, name: str, value: str) -> None:
        self._record("sysctl", pid, (name, value))

    def iptables(self, pid: int, *args: str) -> str:
        self._record("iptables", pid, args)
        return ""

    def iptables_append(self, pid: int, table: str, chain: str, *rule: str) -> bool:
        """As the real one: appended only when the chain does not hold the rule yet (recorded either way)."""
        self._record("iptables", pid, ("-t", table, "-A", chain, *rule))
        held = self.rules.setdefault(pid, [])
        if (table, chain, rule) in held:
            return False
        held.append((table, chain, rule))
        return True

    def create_links(self, pairs) -> None:
        self._record("create_links", len(pairs))
        for a, b in pairs:
            for end in (a, b):
                if end.ifname in self.ends.get(end.pid, set()):
                    raise NodeError(f"interface {end.ifname} already exists in the node (pid {end.pid})", "fake")
            self.ends.setdefault(a.pid, set()).add(a.ifname)
            self.ends.setdefault(b.pid, set()).add(b.ifname)
            self.pairs.append(((a.pid, a.ifname), (b.pid, b.ifname)))

    def delete_links(self, netns, names) -> list[str]:
        pid = self.pid_of(netns)
        deleted = [n for n in names if n in self.ends.get(pid, set())]
        self._record("delete_links", netns, tuple(names))
        for name in deleted:
            self._gone(pid, {name}, peers_too=True)
        return deleted

    def announce(self, fresh, peers) -> int:
        self._record("announce", self.pid_of(fresh), tuple(self.pid_of(p) for p in peers))
        return 0

    def link_names(self, netns) -> set[str]:
        return {"lo", *self.ends.get(self.pid_of(netns), set())}

    def configure_ends(self, ends) -> None:
        self._record("configure_ends", ends[0].pid, len(ends))

    def add_bridge(self, netns, name, addresses, mac="") -> None:
        self._record("add_bridge", netns, name)

    def add_address(self, netns, ifname, address) -> None:
        self._record("add_address", netns, ifname)

    def set_default_route(self, netns, gateway) -> None:
        self._record("set_default_route", netns, str(gateway))

    def add_route(self, netns, dst, gateway) -> None:
        self._record("add_route", netns, str(dst))

    def add_local_routes(self, netns, networks) -> None:
        self._record("add_local_routes", netns, tuple(str(n) for n in networks))

    def add_policy_rules(self, netns, rules) -> None:
        self._record("add_policy_rules", netns, len(rules))

    def replace_routes(self, netns, routes) -> None:
        self._record("replace_routes", netns, tuple(routes))

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]
