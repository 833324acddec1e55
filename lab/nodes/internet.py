"""The internet: one web server (HTTP and HTTPS, any SNI) for the lab's domain names, behind the
internet gateway. Its link is the internet gateway's."""
from __future__ import annotations

from typing import Any

from ..model import Vpc
from .base import INTERNET, NodeKind, Role, ServiceContext


class Internet(Role):
    kind = NodeKind.INTERNET

    def __init__(self, vpc: Vpc, kernel: Any):
        super().__init__(vpc, INTERNET, kernel)

    def compose_service(self, ctx: ServiceContext) -> dict[str, Any]:
        return self._service(ctx, "node", ["nfwlab-web"], environment={"NFWLAB_DOMAINS": ",".join(ctx.domains)})

    def configure(self, pids: dict[str, int]) -> None:
        self.kernel.set_default_route(self.kernel.netns_path(pids[self.service]), self.vpc.internet.gateway_ip)
