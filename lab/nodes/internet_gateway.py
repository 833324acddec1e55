"""The internet gateway: maps each Elastic IP 1:1 to its private IP and drops traffic from addresses
without one, as AWS's does."""
from __future__ import annotations

from ipaddress import IPv4Interface
from typing import Any

from ..model import Vpc
from ..routing import IGW_LINK_GATEWAY, IGW_LINK_PREFIX, IGW_LINK_ROUTER, IGW_PORT
from .base import FORWARDING, INTERNET, ROUTER, SLEEP, LinkSpec, NodeKind, Role, ServiceContext


class InternetGateway(Role):
    kind = NodeKind.INTERNET_GATEWAY

    def __init__(self, vpc: Vpc, kernel: Any):
        super().__init__(vpc, vpc.internet_gateway.name, kernel)

    def compose_service(self, ctx: ServiceContext) -> dict[str, Any]:
        return self._service(ctx, "node", SLEEP, sysctls=FORWARDING)  # rules come from the host

    def links(self) -> list[LinkSpec]:
        inet = self.vpc.internet
        return [
            LinkSpec(self.service, "eth0", (IPv4Interface(f"{IGW_LINK_GATEWAY}/{IGW_LINK_PREFIX}"),),
                     ROUTER, IGW_PORT, (IPv4Interface(f"{IGW_LINK_ROUTER}/{IGW_LINK_PREFIX}"),)),
            # The internet's one link is the internet gateway's.
            LinkSpec(self.service, "eth1", (IPv4Interface(f"{inet.gateway_ip}/{inet.cidr.prefixlen}"),),
                     INTERNET, "eth0", (IPv4Interface(f"{inet.web_server}/{inet.cidr.prefixlen}"),)),
        ]

    def configure(self, pids: dict[str, int]) -> None:
        pid, k = pids[self.service], self.kernel
        k.add_route(k.netns_path(pid), self.vpc.cidr, IGW_LINK_ROUTER)
        for nat in self.vpc.nat_gateways:
            k.iptables_append(pid, "nat", "PREROUTING", "-i", "eth1", "-d", str(nat.elastic_ip),
                              "-j", "DNAT", "--to-destination", str(nat.private_ip))
            k.iptables_append(pid, "nat", "POSTROUTING", "-o", "eth1", "-s", str(nat.private_ip),
                              "-j", "SNAT", "--to-source", str(nat.elastic_ip))
            # Only addresses with an Elastic IP reach the internet, as on AWS.
            k.iptables_append(pid, "filter", "FORWARD", "-i", "eth0", "-o", "eth1", "-s", str(nat.private_ip),
                              "-j", "ACCEPT")
        k.iptables_append(pid, "filter", "FORWARD", "-i", "eth0", "-o", "eth1", "-j", "DROP")
