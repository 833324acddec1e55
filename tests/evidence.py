"""Evidence for the reliability tests, scoped to one lab so that other Docker users on the machine cannot
disturb it: what a lab left on the host, what reached the far side of its firewall, what its firewall
endpoint's gate counted, and the processes of a command's process group (what a real kill reaches).

Scoped means: containers, networks and volumes by the lab's labels (`io.nfwlab.lab=NAME`, compose project
`nfwlab-NAME`); host interfaces by the names and MAC addresses the lab gives its own (lab/nodes/base.py
stable_mac); host iptables lines that name the lab's chains or addresses; mounts of its state directory."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

from lab import Lab, kernel
from lab import docker as dk
from lab.nodes import ROUTER
from lab.nodes.base import stable_mac
from lab.stateless import CHAIN, PASS_CHAIN
from lab.wait import Wait

GENERIC_IFNAME = re.compile(r"eth\d+")  # the host's own interfaces have these names too: matched by MAC only


def _lab_interfaces(lab: Lab) -> tuple[set[str], set[str]]:
    """The names and MAC addresses of every interface the lab makes (veth ends and the VPC router's bridges)."""
    ends = [end for role in lab.roles() for link in role.links() for end in link.ends()]
    names = {ifname for _, ifname in ends} | {s.bridge for s in lab.vpc.subnets}
    macs = {stable_mac(node, ifname) for node, ifname in ends} | {stable_mac(ROUTER, s.bridge) for s in lab.vpc.subnets}
    return {n for n in names if not GENERIC_IFNAME.fullmatch(n)}, macs


def _lab_markers(lab: Lab) -> list[str]:
    """What a host iptables rule of the lab would name: its chains, its queue, its addresses."""
    vpc = lab.vpc
    addresses = {str(vpc.cidr), str(vpc.internet.cidr), str(vpc.internet.web_server)}
    addresses |= {str(s.ip) for s in vpc.servers} | {str(e.ip) for e in vpc.endpoints}
    addresses |= {str(n.private_ip) for n in vpc.nat_gateways} | {str(n.elastic_ip) for n in vpc.nat_gateways}
    return [CHAIN, PASS_CHAIN, "NFQUEUE", *sorted(addresses)]


def leftovers(lab: Lab) -> dict[str, Any]:
    """What the lab has on the host: its containers, compose networks and volumes, host interfaces with its
    names or MACs, its state directory and mounts, network namespaces named after it, host iptables rules
    naming its chains or addresses. Equal before `up` and after `down`."""
    project = {"label": f"com.docker.compose.project=nfwlab-{lab.name}"}
    names, macs = _lab_interfaces(lab)
    ifaces = sorted(f"{i['ifname']} {i.get('address', '')}" for i in host_interfaces()
                    if i["ifname"] in names or i.get("address") in macs)
    markers = _lab_markers(lab)
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    netns = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    return {
        "containers": sorted(dk.containers(lab.name)),
        "networks": sorted(n.name for n in dk.client().networks.list(filters=project)),
        "volumes": sorted(v.name for v in dk.client().volumes.list(filters=project)),
        "interfaces": ifaces,
        "state_dir": lab.state_dir.exists(),
        "mounts": [line for line in Path("/proc/mounts").read_text().splitlines() if str(lab.state_dir) in line],
        "netns": sorted(n for n in netns if lab.name in n),
        "iptables": sorted(line for line in rules.splitlines()
                           if not line.startswith(("#", "*", "COMMIT")) and any(m in line for m in markers)),
    }


def host_interfaces() -> list[dict[str, Any]]:
    """The host's interfaces with their MAC addresses (`ip -j link`)."""
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


# ------------------------------------------------------------------ process groups
def group_members(pgid: int) -> dict[int, str]:
    """The live processes of process group `pgid`, by pid, with their command lines."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            out[int(entry)] = cmdline.strip()
    return out


def kill_group(proc: subprocess.Popen) -> dict[int, str]:
    """SIGKILL to the whole process group of `proc` (started with start_new_session=True), as a real kill of
    a terminal's job or an OOM-killed cgroup reaches every process: the CLI, `docker compose` and pyroute2's
    helpers alike. Returns the group's processes at the kill; fails if any of them outlives it."""
    members = group_members(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    Wait(f"every process of the killed group {proc.pid} to be gone", 10, interval=0.05).until(
        lambda: not group_members(proc.pid))
    return members


# ------------------------------------------------------------------ the far side and the gate
def _pid(lab: Lab, node: str) -> int:
    return dk.pid(dk.containers(lab.name)[node].id)


def _count(listing: str, match: str) -> int:
    return sum(int(line.split()[0]) for line in listing.splitlines() if match in line)


class FarSide:
    """What of the traffic to one TCP port reached the internet node: the node's own packet counter (a
    counting rule, before its redirects) and its web server's access log (one line per request, with the
    request's path). Nothing counted and nothing logged: nothing crossed the firewall."""

    def __init__(self, lab: Lab, port: int):
        self.lab, self.port = lab, port
        kernel.iptables_append(_pid(lab, "internet"), "mangle", "PREROUTING", "-p", "tcp", "--dport", str(port))

    def packets(self) -> int:
        listing = kernel.iptables(_pid(self.lab, "internet"), "-t", "mangle", "-nvx", "-L", "PREROUTING")
        return _count(listing, f"dpt:{self.port}")

    def requests(self, path: str) -> list[str]:
        """The access log's lines of requests for `path`."""
        log = dk.logs(dk.containers(self.lab.name)["internet"].id, tail=100000)
        return [line for line in log.splitlines() if f" {path} " in line]


class Gate:
    """What one firewall endpoint counted: the packets to one TCP port that arrived (a counting rule in its
    mangle table, before any filter), and the packets its FORWARD chain handed to the engine's queue (with
    no engine bound to the queue, the kernel drops them: no --queue-bypass)."""

    def __init__(self, lab: Lab, port: int, node: str = "firewall"):
        self.lab, self.port, self.node = lab, port, node
        kernel.iptables_append(_pid(lab, node), "mangle", "PREROUTING", "-p", "tcp", "--dport", str(port))

    def arrived(self) -> int:
        return _count(kernel.iptables(_pid(self.lab, self.node), "-t", "mangle", "-nvx", "-L", "PREROUTING"),
                      f"dpt:{self.port}")

    def queued(self) -> int:
        return _count(kernel.iptables(_pid(self.lab, self.node), "-nvx", "-L", "FORWARD"), "NFQUEUE")
