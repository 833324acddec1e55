"""Nodes: what each role needs wired and configured, given the VPC model.

Each role is a small class: `links()` names the veth pairs it owns (the end in
its own container, the other end usually in the VPC router), `configure()`
sets its routes and packet filter rules once the links exist. Roles never
call the kernel themselves except through lab.kernel.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from ipaddress import IPv4Interface

from . import kernel
from .kernel import Endpoint
from .model import Vpc
from .routing import IGW_LINK_GATEWAY, IGW_LINK_PREFIX, IGW_LINK_ROUTER, IGW_PORT, policy_rules

ROUTER = "vpc-router"
NFQ_QUEUES = max(1, min(4, os.cpu_count() or 1))  # Suricata worker threads per firewall node
INTERNET = "internet"


@dataclass(frozen=True)
class LinkSpec:
    """A veth pair: (service, ifname, addresses, bridge) at each end."""

    a_service: str
    a_ifname: str
    a_addresses: tuple[IPv4Interface, ...]
    b_service: str
    b_ifname: str
    b_addresses: tuple[IPv4Interface, ...] = ()
    b_master: str = ""


def router_port(service: str) -> str:
    """The VPC router's interface facing a node (Linux names are at most 15 chars)."""
    return service[:15]


class Role:
    service: str

    def links(self) -> list[LinkSpec]:
        return []

    def configure(self, pids: dict[str, int]) -> None:
        pass


class SubnetNode(Role):
    """A node with one interface in a subnet, default route to the VPC router."""

    def __init__(self, vpc: Vpc, service: str, subnet: str, ip):
        self.vpc, self.service = vpc, service
        self.subnet = vpc.subnet(subnet)
        self.ip = ip

    def links(self) -> list[LinkSpec]:
        addr = IPv4Interface(f"{self.ip}/{self.subnet.cidr.prefixlen}")
        return [LinkSpec(self.service, "eth0", (addr,), ROUTER, router_port(self.service),
                         b_master=self.subnet.bridge)]

    def configure(self, pids: dict[str, int]) -> None:
        kernel.set_default_route(kernel.netns_path(pids[self.service]), self.subnet.router_ip)


class Server(SubnetNode):
    """A private server: no capabilities, only a default route to the VPC router."""


class NatGateway(SubnetNode):
    """Rewrites the source of traffic leaving the VPC to its own private IP."""

    def configure(self, pids: dict[str, int]) -> None:
        super().configure(pids)
        nat = self.vpc.nat(self.service)
        kernel.iptables(pids[self.service], "-t", "nat", "-A", "POSTROUTING", "-s", str(self.vpc.cidr),
                        "!", "-d", str(self.vpc.cidr), "-j", "SNAT", "--to-source", str(nat.private_ip))


class Firewall(SubnetNode):
    """The firewall endpoint: everything it forwards goes to Suricata on NFQUEUE, one queue per
    worker thread (flows spread over them by hash).

    No --queue-bypass: with Suricata not running, nothing crosses (fail closed)."""

    def fail_closed(self, pid: int) -> None:
        queues = ["--queue-num", "0"] if NFQ_QUEUES == 1 else ["--queue-balance", f"0:{NFQ_QUEUES - 1}"]
        kernel.iptables(pid, "-A", "FORWARD", "-j", "NFQUEUE", *queues)


class InternetGateway(Role):
    """Maps each Elastic IP 1:1 to its private IP; drops traffic from addresses without one."""

    def __init__(self, vpc: Vpc):
        self.vpc, self.service = vpc, vpc.internet_gateway.name

    def links(self) -> list[LinkSpec]:
        inet = self.vpc.internet
        return [
            LinkSpec(self.service, "eth0", (IPv4Interface(f"{IGW_LINK_GATEWAY}/{IGW_LINK_PREFIX}"),),
                     ROUTER, IGW_PORT, (IPv4Interface(f"{IGW_LINK_ROUTER}/{IGW_LINK_PREFIX}"),)),
            LinkSpec(self.service, "eth1",
                     (IPv4Interface(f"{inet.gateway_ip}/{inet.cidr.prefixlen}"),),
                     INTERNET, "eth0", (IPv4Interface(f"{inet.web_server}/{inet.cidr.prefixlen}"),)),
        ]

    def configure(self, pids: dict[str, int]) -> None:
        pid = pids[self.service]
        kernel.add_route(kernel.netns_path(pid), self.vpc.cidr, IGW_LINK_ROUTER)
        for nat in self.vpc.nat_gateways:
            kernel.iptables(pid, "-t", "nat", "-A", "PREROUTING", "-i", "eth1", "-d", str(nat.elastic_ip),
                            "-j", "DNAT", "--to-destination", str(nat.private_ip))
            kernel.iptables(pid, "-t", "nat", "-A", "POSTROUTING", "-o", "eth1", "-s", str(nat.private_ip),
                            "-j", "SNAT", "--to-source", str(nat.elastic_ip))
            # Only addresses with an Elastic IP reach the internet, as on AWS.
            kernel.iptables(pid, "-A", "FORWARD", "-i", "eth0", "-o", "eth1", "-s", str(nat.private_ip),
                            "-j", "ACCEPT")
        kernel.iptables(pid, "-A", "FORWARD", "-i", "eth0", "-o", "eth1", "-j", "DROP")


class Internet(Role):
    """The web server's segment; its link is made by the internet gateway."""

    def __init__(self, vpc: Vpc):
        self.vpc, self.service = vpc, INTERNET

    def configure(self, pids: dict[str, int]) -> None:
        kernel.set_default_route(kernel.netns_path(pids[self.service]), self.vpc.internet.gateway_ip)


class VpcRouter(Role):
    """The VPC's implicit router: subnet bridges, route tables, Amazon DNS."""

    def __init__(self, vpc: Vpc):
        self.vpc, self.service = vpc, ROUTER

    def prepare(self, pid: int) -> None:
        """Bridges and the DNS address must exist before nodes are linked to them."""
        ns = kernel.netns_path(pid)
        for s in self.vpc.subnets:
            kernel.add_bridge(ns, s.bridge, (IPv4Interface(f"{s.router_ip}/{s.cidr.prefixlen}"),))
        kernel.add_address(ns, "lo", IPv4Interface(f"{self.vpc.dns_ip}/32"))

    def configure(self, pids: dict[str, int]) -> None:
        kernel.add_policy_rules(kernel.netns_path(pids[self.service]), policy_rules(self.vpc))


def roles(vpc: Vpc) -> list[Role]:
    """Every node of the lab, the VPC router first."""
    out: list[Role] = [VpcRouter(vpc)]
    out += [Server(vpc, s.name, s.subnet, s.ip) for s in vpc.servers]
    out += [NatGateway(vpc, n.name, n.subnet, n.private_ip) for n in vpc.nat_gateways]
    out += [Firewall(vpc, e.name, e.subnet, e.ip) for e in vpc.endpoints]
    out += [InternetGateway(vpc), Internet(vpc)]
    return out


def services(vpc: Vpc) -> list[str]:
    return [r.service for r in roles(vpc)]


def all_links(vpc: Vpc) -> list[LinkSpec]:
    return [link for r in roles(vpc) for link in r.links()]


def endpoints(link: LinkSpec, pids: dict[str, int]) -> tuple[Endpoint, Endpoint]:
    return (Endpoint(pids[link.a_service], link.a_ifname, link.a_addresses),
            Endpoint(pids[link.b_service], link.b_ifname, link.b_addresses, link.b_master))
