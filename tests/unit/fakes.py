"""Fakes of the lab's two boundaries, the Docker module and the kernel module, for root-free unit tests
of the orchestration (lab.Lab is given them instead of lab.docker and lab.kernel)."""
from __future__ import annotations

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
        self.compose_env = compose_env
        docker = self

        class ComposeProject:
            def __init__(self, directory: Path, env_file: Path, compose_file: str = "docker-compose.yml"):
                self.path = Path(directory) / compose_file
                self.lab = yaml.safe_load(self.path.read_text())["name"].removeprefix("nfwlab-") \
                    if self.path.exists() else ""

            def up(self) -> None:
                docker.calls.append(("compose up", self.lab))
                services = yaml.safe_load(self.path.read_text())["services"]
                docker.running[self.lab] = {
                    name: Container(f"id-{name}", name, s["labels"]["io.nfwlab.role"],
                                    "exited" if name in docker.dead else "running",
                                    0 if name in docker.dead else 1000 + i)
                    for i, (name, s) in enumerate(services.items())}
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

    def remove_lab_containers(self, lab: str) -> int:
        self.calls.append(("remove", lab))
        return len(self.running.pop(lab, {}))

    def exec_in(self, container_id: str, argv: list[str], env=None) -> tuple[int, str, str]:
        self.calls.append(("exec", container_id, tuple(argv)))
        key = argv[3] if argv[0] == "timeout" else argv[0]
        if key == "suricatasc":
            return self.exec_results.get(key, (0, '{"message": "done", "return": "OK"}', ""))
        return self.exec_results.get(key, (0, "", ""))

    def logs(self, container_id: str, tail: int = 40, since: float | None = None) -> str:
        if container_id == "id-internet":
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

    def create_links(self, pairs) -> None:
        self._record("create_links", len(pairs))

    def configure_ends(self, ends) -> None:
        self._record("configure_ends", ends[0].pid, len(ends))

    def add_bridge(self, netns, name, addresses) -> None:
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
