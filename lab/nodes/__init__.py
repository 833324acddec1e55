"""Nodes: one module per node kind, each with the same hooks (see base.py).

    roles(vpc, kernel, engine, docker) -> every node of a lab, the VPC router first

A new node kind is a module here with a Role subclass, a NodeKind value and a line in `roles`.
"""
from __future__ import annotations

from typing import Any

from ..model import Vpc
from .base import AWS_LOG_DIR, INTERNET, ROUTER, LinkSpec, NodeKind, Role, ServiceContext, router_port
from .firewall import Firewall
from .internet import Internet
from .internet_gateway import InternetGateway
from .nat_gateway import NatGateway
from .router import VpcRouter
from .server import Server

__all__ = ["AWS_LOG_DIR", "INTERNET", "ROUTER", "Firewall", "Internet", "InternetGateway", "LinkSpec",
           "NatGateway", "NodeKind", "Role", "Server", "ServiceContext", "VpcRouter", "roles", "router_port",
           "services"]


def roles(vpc: Vpc, kernel: Any, engine: Any, docker: Any) -> list[Role]:
    """Every node of the lab, the VPC router first; `engine` runs in every firewall endpoint; `docker` reads
    what a node printed (the internet's web server says when it listens)."""
    out: list[Role] = [VpcRouter(vpc, kernel)]
    out += [Server(vpc, s.name, kernel, s.subnet, s.ip) for s in vpc.servers]
    out += [NatGateway(vpc, n.name, kernel, n.subnet, n.private_ip) for n in vpc.nat_gateways]
    out += [Firewall(vpc, e.name, kernel, engine) for e in vpc.endpoints]
    out += [InternetGateway(vpc, kernel), Internet(vpc, kernel, docker)]
    return out


def services(vpc: Vpc) -> list[str]:
    """Every node's name (its Compose service), in `roles` order, without building the roles."""
    return ([ROUTER] + [s.name for s in vpc.servers] + [n.name for n in vpc.nat_gateways]
            + [e.name for e in vpc.endpoints] + [vpc.internet_gateway.name, INTERNET])
