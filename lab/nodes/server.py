"""Servers: the VPC's private instances. No capabilities; a default route to the VPC router."""
from __future__ import annotations

from typing import Any

from .base import SLEEP, NodeKind, ServiceContext, SubnetNode


class Server(SubnetNode):
    kind = NodeKind.SERVER

    def compose_service(self, ctx: ServiceContext) -> dict[str, Any]:
        # Docker's default capabilities minus raw sockets: a server can't forge its way past its route.
        return self._service(ctx, "node", SLEEP, cap_drop=["NET_RAW"],
                             volumes=[f"{ctx.state}/dns/resolv.conf:/etc/resolv.conf:ro"])
