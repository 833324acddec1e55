"""Wiring: turns a lab's roles into live links and routes, once their containers run.

Order, the same for every node kind: every node's `before_links` (a firewall endpoint
fails closed, the VPC router makes its bridges), then every veth pair in one netlink
pass (each end made straight in its node's namespace), then each namespace's ends set
up over one netlink session, then every node's `configure`, then the VPC router's route
tables. Only the kernel module given (lab.kernel, or a fake in unit tests) is touched.

`rewire` does the same for the nodes `repair` brought back (each in a new namespace) and
only for them: their `before_links`, the links with an end in them, the `configure` of
every node at either end of those links (harmless to repeat), and the route tables when a
link of the VPC router was made anew. Every other link, and every connection over it, stays.
"""
from __future__ import annotations

from functools import partial
from typing import Any

from .kernel import Endpoint
from .nodes import ROUTER, LinkSpec, Role
from .routing import KernelRoute
from .threads import parallel


def links_of(roles: list[Role], nodes: set[str]) -> list[LinkSpec]:
    """The links with an end in one of `nodes`."""
    return [link for role in roles for link in role.links() if nodes & {link.a_service, link.b_service}]


class Wiring:
    def __init__(self, kernel: Any):
        self.kernel = kernel

    def wire(self, roles: list[Role], pids: dict[str, int], routes: list[KernelRoute]) -> None:
        self._make(roles, pids, routes, roles, [link for role in roles for link in role.links()])

    def rewire(self, roles: list[Role], pids: dict[str, int], routes: list[KernelRoute], nodes: set[str]) -> None:
        """The links of `nodes` (nodes in new namespaces, with none of their links) made anew.

        A node's end of a link dies with its namespace and takes the peer end with it, but not always at once
        (the kernel tears namespaces down in the background; a process still inside keeps one alive): the
        peer end left in a node that stayed up is deleted first, so that the pair can be made again."""
        links = links_of(roles, nodes)
        stale: dict[int, list[str]] = {}
        for link in links:
            for node, ifname in link.ends():
                if node not in nodes:
                    stale.setdefault(pids[node], []).append(ifname)
        parallel([partial(self.kernel.delete_links, self.kernel.netns_path(pid), names)
                  for pid, names in stale.items()])
        self._make(roles, pids, routes, [r for r in roles if r.service in nodes], links)
        # Neighbours that sent to a node while it was down hold unresolved entries for it: they learn its
        # addresses now, or their first packets after the repair would get "host unreachable" (a new
        # connection's SYN among them) once that resolution fails.
        peers = {node: sorted({self.kernel.netns_path(pids[other]) for link in links
                               if node in (link.a_service, link.b_service)
                               for other in (link.a_service, link.b_service) if other not in nodes})
                 for node in nodes}
        parallel([partial(self.kernel.announce, self.kernel.netns_path(pids[node]), peers[node])
                  for node in sorted(nodes) if peers[node]])

    def _make(self, roles: list[Role], pids: dict[str, int], routes: list[KernelRoute], fresh: list[Role],
              links: list[LinkSpec]) -> None:
        """`fresh` nodes' `before_links`, then `links`, then the `configure` of every node they join."""
        for role in fresh:
            role.before_links(pids[role.service])
        pairs = [link.endpoints(pids) for link in links]
        self.kernel.create_links(pairs)
        by_netns: dict[int, list[Endpoint]] = {}
        for end in (e for pair in pairs for e in pair):
            by_netns.setdefault(end.pid, []).append(end)
        parallel([partial(self.kernel.configure_ends, ends) for ends in by_netns.values()])
        joined = {r.service for r in fresh} | {node for link in links for node, _ in link.ends()}
        parallel([partial(role.configure, pids) for role in roles if role.service in joined])
        if ROUTER in joined:
            # Routes through an interface go with it (the internet gateway's link): all put back.
            self.replace_routes(pids[ROUTER], routes)

    def missing_links(self, roles: list[Role], pids: dict[str, int]) -> list[LinkSpec]:
        """The links with an end missing from its node (one listing per namespace): none in a whole lab."""
        names = {node: self.kernel.link_names(self.kernel.netns_path(pid)) for node, pid in pids.items()}
        return [link for role in roles for link in role.links()
                if any(ifname not in names.get(node, set()) for node, ifname in link.ends())]

    def replace_routes(self, router_pid: int, routes: list[KernelRoute]) -> None:
        """The VPC router's route tables become `routes`; traffic never meets an empty table."""
        self.kernel.replace_routes(self.kernel.netns_path(router_pid), routes)
