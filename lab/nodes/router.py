"""The VPC router: the VPC's implicit router. One bridge per subnet, one Linux routing table per
association point (lab/routing.py), and the Amazon-provided DNS at the VPC base + 2."""
from __future__ import annotations

from ipaddress import IPv4Interface
from typing import Any

from ..model import Vpc
from ..routing import policy_rules
from .base import FORWARDING, ROUTER, NodeKind, Role, ServiceContext, stable_mac


class VpcRouter(Role):
    kind = NodeKind.VPC_ROUTER

    def __init__(self, vpc: Vpc, kernel: Any):
        super().__init__(vpc, ROUTER, kernel)

    def compose_service(self, ctx: ServiceContext) -> dict[str, Any]:
        return self._service(ctx, "node", ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
                                           "--bind-dynamic", "--addn-hosts=/etc/nfwlab/dns/hosts",
                                           "--log-facility=-"],
                             sysctls=FORWARDING, volumes=[f"{ctx.state}/dns:/etc/nfwlab/dns:ro"])

    def before_links(self, pid: int) -> None:
        # Subnet bridges and the DNS address must exist before any node is linked to them. Each bridge has a
        # MAC of its own, kept while nodes leave and join it (`repair`).
        ns = self.kernel.netns_path(pid)
        for s in self.vpc.subnets:
            self.kernel.add_bridge(ns, s.bridge, (IPv4Interface(f"{s.router_ip}/{s.cidr.prefixlen}"),),
                                   stable_mac(self.service, s.bridge))
        self.kernel.add_address(ns, "lo", IPv4Interface(f"{self.vpc.dns_ip}/32"))

    def configure(self, pids: dict[str, int]) -> None:
        self.kernel.add_policy_rules(self.kernel.netns_path(pids[self.service]), policy_rules(self.vpc))
