"""The internet: one web server (HTTP and HTTPS, any SNI) for the lab's domain names, behind the
internet gateway. Its link is the internet gateway's."""
from __future__ import annotations

from typing import Any

from ..docker import Container
from ..model import Vpc
from .base import INTERNET, NodeKind, Role, ServiceContext

# What compose/images/web.py prints once both ports listen: until then a request is refused (an RST).
SERVING = "nfwlab-web: serving"


class Internet(Role):
    kind = NodeKind.INTERNET

    def __init__(self, vpc: Vpc, kernel: Any, docker: Any):
        super().__init__(vpc, INTERNET, kernel)
        self.docker = docker

    def compose_service(self, ctx: ServiceContext) -> dict[str, Any]:
        return self._service(ctx, "node", ["nfwlab-web"], environment={"NFWLAB_DOMAINS": ",".join(ctx.domains)})

    def configure(self, pids: dict[str, int]) -> None:
        self.kernel.set_default_route(self.kernel.netns_path(pids[self.service]), self.vpc.internet.gateway_ip)

    def ready(self, container: Container | None) -> bool:
        return container is not None and container.running and SERVING in self.docker.logs(container.id, tail=20)
