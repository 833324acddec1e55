"""Wiring: turns a lab's roles into live links and routes, once their containers run.

Order, the same for every node kind: every node's `before_links` (a firewall endpoint
fails closed, the VPC router makes its bridges), then every veth pair in one netlink
pass (each end made straight in its node's namespace), then each namespace's ends set
up over one netlink session, then every node's `configure`, then the VPC router's route
tables. Only the kernel module given (lab.kernel, or a fake in unit tests) is touched.
"""
from __future__ import annotations

from functools import partial
from typing import Any

from .kernel import Endpoint
from .nodes import ROUTER, Role
from .routing import KernelRoute
from .threads import parallel


class Wiring:
    def __init__(self, kernel: Any):
        self.kernel = kernel

    def wire(self, roles: list[Role], pids: dict[str, int], routes: list[KernelRoute]) -> None:
        for role in roles:
            role.before_links(pids[role.service])
        pairs = [link.endpoints(pids) for role in roles for link in role.links()]
        self.kernel.create_links(pairs)
        by_netns: dict[int, list[Endpoint]] = {}
        for end in (e for pair in pairs for e in pair):
            by_netns.setdefault(end.pid, []).append(end)
        parallel([partial(self.kernel.configure_ends, ends) for ends in by_netns.values()])
        parallel([partial(role.configure, pids) for role in roles])
        self.replace_routes(pids[ROUTER], routes)

    def replace_routes(self, router_pid: int, routes: list[KernelRoute]) -> None:
        """The VPC router's route tables become `routes`; traffic never meets an empty table."""
        self.kernel.replace_routes(self.kernel.netns_path(router_pid), routes)
