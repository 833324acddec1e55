"""NAT gateways: rewrite the source of traffic leaving the VPC to their own private IP, and log each
translation (nat-translations.log, the lab's counterpart of VPC Flow Logs' pkt-srcaddr)."""
from __future__ import annotations

from typing import Any

from .base import AWS_LOG_DIR, FORWARDING, NodeKind, ServiceContext, SubnetNode


class NatGateway(SubnetNode):
    kind = NodeKind.NAT_GATEWAY

    def compose_service(self, ctx: ServiceContext) -> dict[str, Any]:
        nat = self.vpc.nat(self.service)
        # Source NAT is installed from the host (nsenter). NET_ADMIN lets the node follow its own
        # connection tracking events for the translation log.
        return self._service(ctx, "node", ["nfwlab-natlog"], sysctls=FORWARDING, cap_add=["NET_ADMIN"],
                             volumes=[f"{ctx.state}/logs:{AWS_LOG_DIR}"],
                             environment={"NFWLAB_NAT_NAME": nat.name, "NFWLAB_NAT_ID": nat.id,
                                          "NFWLAB_AWS_LOG_DIR": AWS_LOG_DIR})

    def configure(self, pids: dict[str, int]) -> None:
        super().configure(pids)
        nat = self.vpc.nat(self.service)
        self.kernel.iptables(pids[self.service], "-t", "nat", "-A", "POSTROUTING", "-s", str(self.vpc.cidr),
                             "!", "-d", str(self.vpc.cidr), "-j", "SNAT", "--to-source", str(nat.private_ip))
