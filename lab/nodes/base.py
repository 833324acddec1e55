"""What every node kind has: the same hooks, called by the lab in the same order.

    compose_service(ctx)  the node's Compose service (image, command, capabilities, mounts)
    links()               the veth pairs the node owns (its end, and the other end: usually the VPC router's)
    before_links(pid)     set-up that must exist before any link does (fail closed, bridges)
    configure(pids)       routes and packet filter rules, once every link is up
    ready(container, since)  True once the node does its job (default: its container runs); `since` (epoch
                          seconds): only what its container printed from then on counts (a node restarted
                          by `repair` has its earlier run's output too)

Nodes never touch the kernel or Docker themselves: the modules they are given (lab.kernel
and lab.docker, or fakes in unit tests) do.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

from ..docker import LAB_LABEL, ROLE_LABEL, Container
from ..kernel import Endpoint
from ..logs import LogLimits
from ..model import Vpc

FORWARDING = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
}
AWS_LOG_DIR = "/var/log/nfwlab"  # alert.log and flow.log (every endpoint), nat-translations.log (every NAT gateway)
SLEEP = ["sleep", "infinity"]
ROUTER = "vpc-router"  # the VPC router's node name
INTERNET = "internet"  # the internet's node name


class NodeKind(StrEnum):
    """A node's kind: also the value of its container's io.nfwlab.role label."""

    VPC_ROUTER = "vpc-router"
    SERVER = "server"
    NAT_GATEWAY = "nat-gateway"
    FIREWALL = "firewall"
    INTERNET_GATEWAY = "internet-gateway"
    INTERNET = "internet"


@dataclass(frozen=True)
class ServiceContext:
    """What a node's Compose service depends on besides the VPC: the lab and where its files are."""

    lab: str
    state_dir: Path
    home: Path  # the project's root (suricata/ is mounted from it)
    image_tag: str
    domains: tuple[str, ...]
    log_limits: LogLimits = field(default_factory=LogLimits)  # when the logs the node writes rotate

    def image(self, name: str) -> str:
        return f"nfwlab/{name}:{self.image_tag}"

    @property
    def state(self) -> str:
        return str(self.state_dir.resolve())


@dataclass(frozen=True)
class LinkSpec:
    """A veth pair: (node, interface, addresses) at each end; the b end may join a bridge of its node."""

    a_service: str
    a_ifname: str
    a_addresses: tuple[IPv4Interface, ...]
    b_service: str
    b_ifname: str
    b_addresses: tuple[IPv4Interface, ...] = ()
    b_master: str = ""

    def endpoints(self, pids: dict[str, int]) -> tuple[Endpoint, Endpoint]:
        return (Endpoint(pids[self.a_service], self.a_ifname, self.a_addresses,
                         mac=stable_mac(self.a_service, self.a_ifname)),
                Endpoint(pids[self.b_service], self.b_ifname, self.b_addresses, self.b_master,
                         stable_mac(self.b_service, self.b_ifname)))

    def ends(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """(node, interface) of both ends."""
        return (self.a_service, self.a_ifname), (self.b_service, self.b_ifname)


class Role:
    """One node of the lab. Subclasses set `kind` and override the hooks they need."""

    kind: NodeKind

    def __init__(self, vpc: Vpc, service: str, kernel: Any):
        self.vpc, self.service, self.kernel = vpc, service, kernel

    def compose_service(self, ctx: ServiceContext) -> dict[str, Any]:
        raise NotImplementedError

    def links(self) -> list[LinkSpec]:
        return []

    def before_links(self, pid: int) -> None:
        pass

    def configure(self, pids: dict[str, int]) -> None:
        pass

    def ready(self, container: Container | None, since: float | None = None) -> bool:
        return container is not None and container.running

    def _service(self, ctx: ServiceContext, image: str, command: list[str], **extra: Any) -> dict[str, Any]:
        """A Compose service with what every node has: no network of Docker's (the lab wires every link, so
        no packet can leave the lab), the lab's labels (cleanup never needs the compose file), a quick stop,
        and the lab's log rotation in its environment (for the nodes that write logs)."""
        service = {"image": ctx.image(image), "pull_policy": "never", "network_mode": "none", "init": True,
                   "stop_grace_period": "1s", "labels": {LAB_LABEL: ctx.lab, ROLE_LABEL: self.kind.value},
                   "command": command}
        service.update(extra)
        service["environment"] = {**ctx.log_limits.environment(), **extra.get("environment", {})}
        return service


def stable_mac(node: str, ifname: str) -> str:
    """The MAC address of a node's interface, the same every time it is made: a node that `repair` brings
    back gets its old addresses, so the ARP caches of the nodes that stayed up (the VPC router's entry for a
    firewall endpoint, a server's for its subnet's router) stay right. Locally administered, unicast."""
    digest = hashlib.sha256(f"{node}/{ifname}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def router_port(service: str) -> str:
    """The VPC router's interface facing a node (Linux names are at most 15 chars)."""
    return service[:15]


class SubnetNode(Role):
    """A node with one interface in a subnet and a default route to the VPC router."""

    def __init__(self, vpc: Vpc, service: str, kernel: Any, subnet: str, ip: IPv4Address):
        super().__init__(vpc, service, kernel)
        self.subnet = vpc.subnet(subnet)
        self.ip = ip

    def links(self) -> list[LinkSpec]:
        addr = IPv4Interface(f"{self.ip}/{self.subnet.cidr.prefixlen}")
        return [LinkSpec(self.service, "eth0", (addr,), ROUTER, router_port(self.service),
                         b_master=self.subnet.bridge)]

    def configure(self, pids: dict[str, int]) -> None:
        self.kernel.set_default_route(self.kernel.netns_path(pids[self.service]), self.subnet.router_ip)
