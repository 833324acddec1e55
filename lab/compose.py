"""Compose: the lab's nodes as a Docker Compose file, made from the VPC model.

Pure data, no Docker calls: one service per node of the topology (the VPC
router, each server, NAT gateway and firewall endpoint, the internet gateway
and the internet). Every node runs with network mode "none": the lab wires
all links itself (lab/kernel.py), so no packet can leave the lab. Every
container carries the lab's label, so cleanup never depends on this file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .docker import LAB_LABEL, ROLE_LABEL
from .model import Vpc
from .nodes import INTERNET, NFQ_QUEUES, ROUTER

FORWARDING = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
}
AWS_LOG_DIR = "/var/log/nfwlab"  # alert.log and flow.log (every endpoint), nat-translations.log (every NAT gateway)


def _node(lab: str, role: str, image: str, command: list[str], **extra: Any) -> dict[str, Any]:
    service = {"image": image, "pull_policy": "never", "network_mode": "none", "init": True,
               "stop_grace_period": "1s", "labels": {LAB_LABEL: lab, ROLE_LABEL: role}, "command": command}
    service.update(extra)
    return service


def compose_config(vpc: Vpc, lab: str, state_dir: Path, home: Path, domains: list[str], image_tag: str) -> dict:
    """The compose project of a lab running `vpc`: every node, its image, capabilities and mounts."""
    state = str(state_dir.resolve())
    node_image, fw_image = f"nfwlab/node:{image_tag}", f"nfwlab/firewall:{image_tag}"
    sleep = ["sleep", "infinity"]
    services: dict[str, Any] = {
        # The VPC's implicit router: one bridge per subnet, one Linux routing table
        # per AWS route table, and the Amazon-provided DNS (VPC base + 2).
        ROUTER: _node(lab, ROUTER, node_image,
                      ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-dynamic",
                       "--addn-hosts=/etc/nfwlab/dns/hosts", "--log-facility=-"],
                      sysctls=FORWARDING, volumes=[f"{state}/dns:/etc/nfwlab/dns:ro"]),
    }
    for s in vpc.servers:
        # No capabilities beyond Docker's defaults minus raw sockets: a server can't bypass its route.
        services[s.name] = _node(lab, "server", node_image, sleep, cap_drop=["NET_RAW"],
                                 volumes=[f"{state}/dns/resolv.conf:/etc/resolv.conf:ro"])
    for n in vpc.nat_gateways:
        # Source NAT is installed from the host (nsenter). NET_ADMIN lets the node follow its own
        # connection tracking events for the translation log (nat-translations.log).
        services[n.name] = _node(lab, "nat-gateway", node_image, ["nfwlab-natlog"], sysctls=FORWARDING,
                                 cap_add=["NET_ADMIN"], volumes=[f"{state}/logs:{AWS_LOG_DIR}"],
                                 environment={"NFWLAB_NAT_NAME": n.name, "NFWLAB_NAT_ID": n.id,
                                              "NFWLAB_AWS_LOG_DIR": AWS_LOG_DIR})
    for e in vpc.endpoints:
        # Suricata 7 inline on NFQUEUE; NET_ADMIN is needed to bind the queue.
        services[e.name] = _node(
            lab, "firewall", fw_image, ["nfwlab-firewall"], cap_add=["NET_ADMIN"], sysctls=FORWARDING,
            environment={"NFWLAB_FIREWALL_NAME": e.firewall_name, "NFWLAB_AVAILABILITY_ZONE": e.availability_zone,
                         "NFWLAB_AWS_LOG_DIR": AWS_LOG_DIR, "NFWLAB_NFQ_QUEUES": str(NFQ_QUEUES)},
            volumes=[f"{home.resolve()}/suricata:/etc/nfwlab/suricata:ro", f"{state}/rules:/etc/nfwlab/rules:ro",
                     f"{state}/logs/{e.name}:/var/log/suricata", f"{state}/logs:{AWS_LOG_DIR}"])
    # 1:1 NAT between each Elastic IP and its private IP (rules from the host).
    services[vpc.internet_gateway.name] = _node(lab, "internet-gateway", node_image, sleep, sysctls=FORWARDING)
    # Web server (HTTP and HTTPS, any SNI) for the lab's domain names.
    services[INTERNET] = _node(lab, "internet", node_image, ["nfwlab-web"],
                               environment={"NFWLAB_DOMAINS": ",".join(domains)})
    return {"name": f"nfwlab-{lab}", "services": services}


def write_compose_file(path: Path, config: dict) -> None:
    path.write_text("# Written by nfwlab from the lab's topology; do not edit.\n"
                    + yaml.safe_dump(config, sort_keys=False, width=120))
