"""Firewall endpoints: a node in the firewall subnet whose forwarded traffic all goes through the
firewall engine (lab/engine.py). The engine decides how (its queue rule) and what the node runs."""
from __future__ import annotations

from typing import Any

from ..docker import Container
from ..model import Vpc
from .base import NodeKind, ServiceContext, SubnetNode


class Firewall(SubnetNode):
    kind = NodeKind.FIREWALL

    def __init__(self, vpc: Vpc, service: str, kernel: Any, engine: Any):
        endpoint = vpc.endpoint(service)
        super().__init__(vpc, service, kernel, endpoint.subnet, endpoint.ip)
        self.endpoint, self.engine = endpoint, engine

    def compose_service(self, ctx: ServiceContext) -> dict[str, Any]:
        return self.engine.compose_service(ctx, self.endpoint, self._service)

    def before_links(self, pid: int) -> None:
        # Fail closed before the node has a link: nothing ever crosses it without the engine.
        self.engine.fail_closed(pid)

    def ready(self, container: Container | None, since: float | None = None) -> bool:
        return self.engine.started(self.service, container, since)
