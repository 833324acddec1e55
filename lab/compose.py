"""Compose: the lab's nodes as a Docker Compose file, made from its roles.

Pure data, no Docker calls: one service per node, each built by its own role
(lab/nodes/). Every node runs with network mode "none" (the lab wires every
link itself, so no packet can leave the lab) and carries the lab's label, so
cleanup never depends on this file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .nodes import Role, ServiceContext


def compose_config(roles: list[Role], ctx: ServiceContext) -> dict[str, Any]:
    """The compose project of a lab: every node's service, as its role builds it."""
    return {"name": f"nfwlab-{ctx.lab}", "services": {r.service: r.compose_service(ctx) for r in roles}}


def write_compose_file(path: Path, config: dict[str, Any]) -> None:
    path.write_text("# Written by nfwlab from the lab's topology; do not edit.\n"
                    + yaml.safe_dump(config, sort_keys=False, width=120))
