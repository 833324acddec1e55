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
        nat, pid = self.vpc.nat(self.service), pids[self.service]
        self.kernel.iptables_append(pid, "nat", "POSTROUTING", "-s", str(self.vpc.cidr),
                                    "!", "-d", str(self.vpc.cidr), "-j", "SNAT", "--to-source", str(nat.private_ip))
        # AWS: an idle TCP connection times out after 350 seconds, and "when a connection times out, a NAT
        # gateway returns an RST packet to any resources behind the NAT gateway that attempt to continue the
        # connection (it does not send a FIN packet)". Connection tracking forgets the connection after the
        # idle timeout; without loose pickup a later packet of it is INVALID, and gets the RST.
        self.kernel.sysctl(pid, "net.netfilter.nf_conntrack_tcp_timeout_established", str(nat.tcp_idle_timeout))
        self.kernel.sysctl(pid, "net.netfilter.nf_conntrack_tcp_loose", "0")
        self.kernel.iptables_append(pid, "filter", "FORWARD", "-s", str(self.vpc.cidr), "-p", "tcp", "-m",
                                    "conntrack", "--ctstate", "INVALID", "-j", "REJECT", "--reject-with", "tcp-reset")
