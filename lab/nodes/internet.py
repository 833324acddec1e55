"""The internet: one node behind the internet gateway that is every address of the internet's block
(but the gateway's) and answers on every port: HTTP and HTTPS for the lab's domain names (any SNI),
DNS, and an echo elsewhere (compose/images/web.py); TCP port 5201 is left to an iperf3 server that a
user or a benchmark starts (`nfwlab exec internet -- iperf3 -s -D`). Its link is the internet gateway's."""
from __future__ import annotations

from ipaddress import IPv4Network, collapse_addresses
from typing import Any

from ..docker import Container
from ..model import Vpc
from .base import INTERNET, NodeKind, Role, ServiceContext

# What compose/images/web.py prints once both ports listen: until then a request is refused (an RST).
SERVING = "nfwlab-web: serving"
ANY_PORT, DNS_PORT, CLOSED_UDP_PORT = 7, 53, 9999  # as in compose/images/web.py
IPERF_PORT = 5201  # iperf3's own port: not answered by web.py, for an iperf3 server (throughput tests)


def anycast_blocks(cidr: IPv4Network, gateway: object) -> list[IPv4Network]:
    """The internet's block without the internet gateway's address, as few CIDR blocks as cover it."""
    gateway_net = IPv4Network(f"{gateway}/32")
    return list(collapse_addresses(cidr.address_exclude(gateway_net)))


class Internet(Role):
    kind = NodeKind.INTERNET

    def __init__(self, vpc: Vpc, kernel: Any, docker: Any):
        super().__init__(vpc, INTERNET, kernel)
        self.docker = docker

    def compose_service(self, ctx: ServiceContext) -> dict[str, Any]:
        return self._service(ctx, "node", ["nfwlab-web"], environment={
            "NFWLAB_DOMAINS": ",".join(ctx.domains), "NFWLAB_WEB_SERVER": str(self.vpc.internet.web_server)})

    def configure(self, pids: dict[str, int]) -> None:
        pid, inet = pids[self.service], self.vpc.internet
        ns = self.kernel.netns_path(pid)
        self.kernel.set_default_route(ns, inet.gateway_ip)
        self.kernel.add_local_routes(ns, anycast_blocks(inet.cidr, inet.gateway_ip))
        # Every port answers: TCP other than the web ports (and iperf3's) and UDP other than DNS go to web.py's
        # any-port servers (the closed UDP port stays closed, for tests that need an ICMP port unreachable).
        self.kernel.iptables_append(pid, "nat", "PREROUTING", "-i", "eth0", "-p", "tcp", "-m", "multiport",
                                    "!", "--dports", f"80,443,{IPERF_PORT}", "-j", "REDIRECT",
                                    "--to-ports", str(ANY_PORT))
        self.kernel.iptables_append(pid, "nat", "PREROUTING", "-i", "eth0", "-p", "udp", "-m", "multiport",
                                    "!", "--dports", f"{DNS_PORT},{CLOSED_UDP_PORT}", "-j", "REDIRECT",
                                    "--to-ports", str(ANY_PORT))
        # DNS too, to its own port: the answer then comes from the address asked (conntrack undoes the NAT).
        self.kernel.iptables_append(pid, "nat", "PREROUTING", "-i", "eth0", "-p", "udp", "--dport",
                                    str(DNS_PORT), "-j", "REDIRECT", "--to-ports", str(DNS_PORT))

    def ready(self, container: Container | None, since: float | None = None) -> bool:
        return (container is not None and container.running
                and SERVING in self.docker.logs(container.id, tail=20, since=since))
