"""Kernel: the one module that changes network namespaces.

Links, addresses, routes and policy rules go through netlink (pyroute2); packet filter rules
through iptables run inside a node's namespace with nsenter (the only shell-out,
as argument lists, failures raised with command, output and exit code).
"""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pyroute2
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ndmsg import NUD_NOARP, NUD_PERMANENT, NUD_REACHABLE

from .errors import EnvironmentProblem, NodeError
from .routing import KernelRoute, PolicyRule

# A netlink session in a namespace is opened by a short-lived child process. In pyroute2's default mode that
# child is a bare fork: Ctrl-C (sent to the whole process group) reaching it while it runs unwinds the copy
# of the caller's stack it holds, so the caller's `finally: lab.down()` ran a second time, in the child (7 of
# 30 interrupted loops here). In "mp" mode multiprocessing runs the child and always ends it with _exit.
pyroute2.config.child_process_mode = "mp"

RT_PROTO_LAB = 243  # unassigned in iproute2; marks the routes the lab owns, so it can find and replace them


def netns_path(pid: int) -> str:
    return f"/proc/{pid}/ns/net"


@dataclass(frozen=True)
class Endpoint:
    """One end of a link: the node (a process in its namespace), the interface name there, and how it is set up."""

    pid: int
    ifname: str
    addresses: tuple[IPv4Interface, ...] = ()
    master: str = ""  # a bridge in the same namespace to enslave the interface to
    mac: str = ""  # its MAC address (empty: the kernel picks one)

    @property
    def netns(self) -> str:
        return netns_path(self.pid)


@contextmanager
def _ipr(netns: str | None = None) -> Iterator[IPRoute]:
    """A netlink session in a namespace (None: the host's); netlink errors become NodeErrors naming it."""
    where = f"namespace {netns}" if netns else "the host's namespace"
    try:
        ipr = IPRoute(netns=netns) if netns else IPRoute()
    except (OSError, NetlinkError) as e:
        raise NodeError(f"cannot open a netlink session in {where}: {e}",
                        "is the node still running? see `nfwlab status`") from None
    try:
        with ipr:
            yield ipr
    except NetlinkError as e:
        code, text = (e.args[0], e.args[1]) if len(e.args) > 1 else (e.code, str(e))
        raise NodeError(f"netlink refused a change in {where}: {text} (error {code})",
                        "run `nfwlab down`, then `nfwlab up` again; if it persists, see `dmesg`") from None


def _index(ns: IPRoute, ifname: str) -> int:
    """The index of an interface, or a NodeError naming it."""
    found = ns.link_lookup(ifname=ifname)
    if not found:
        raise NodeError(f"no interface {ifname} where the lab made it", "run `nfwlab down`, then `nfwlab up`")
    return found[0]


def create_links(pairs: list[tuple[Endpoint, Endpoint]]) -> None:
    """Veth pairs, each end made directly in its node's namespace under its final name.

    No end ever exists in the host's namespace, so an interrupted run leaves nothing there: the ends
    go when their containers go. Set-up (addresses, bridge, up) is `configure_ends`, per namespace."""
    with _ipr() as host:
        for a, b in pairs:
            try:
                host.link("add", ifname=a.ifname, kind="veth", net_ns_pid=a.pid, **_mac(a),
                          peer={"ifname": b.ifname, "net_ns_pid": b.pid, **_mac(b)})
            except NetlinkError as e:
                if e.code == 17:  # EEXIST
                    raise NodeError(f"interface {a.ifname} or {b.ifname} already exists in the node "
                                    f"(pid {a.pid} or {b.pid})",
                                    "run `nfwlab down` and then `nfwlab up` again") from None
                if e.code == 3:  # ESRCH: the container stopped while the lab was being wired
                    raise NodeError(f"a node's process (pid {a.pid} or {b.pid}) is gone",
                                    "see `nfwlab status`, then run `nfwlab down` and `nfwlab up`") from None
                raise


def _mac(end: Endpoint) -> dict[str, str]:
    return {"address": end.mac} if end.mac else {}


def link_names(netns: str) -> set[str]:
    """The names of every interface in a namespace."""
    with _ipr(netns) as ns:
        return {link.get_attr("IFLA_IFNAME") for link in ns.get_links()}


def delete_links(netns: str, names: list[str]) -> list[str]:
    """Deletes the interfaces of `names` that exist in the namespace (a veth end takes its peer with it);
    returns those it deleted. Harmless to call twice."""
    deleted = []
    with _ipr(netns) as ns:
        for name in names:
            for index in ns.link_lookup(ifname=name):
                try:
                    ns.link("del", index=index)
                    deleted.append(name)
                except NetlinkError as e:
                    if e.code != 19:  # ENODEV: gone meanwhile, with its peer's namespace
                        raise
    return deleted


def configure_ends(ends: list[Endpoint]) -> None:
    """Addresses, bridge and link state of link ends that all live in one namespace, over one netlink socket."""
    with _ipr(ends[0].netns) as ns:
        for end in ends:
            idx = _index(ns, end.ifname)
            if end.master:
                ns.link("set", index=idx, master=_index(ns, end.master))
            for addr in end.addresses:
                ns.addr("add", index=idx, address=str(addr.ip), prefixlen=addr.network.prefixlen)
            ns.link("set", index=idx, state="up")


def add_bridge(netns: str, name: str, addresses: tuple[IPv4Interface, ...], mac: str = "") -> None:
    """A bridge with its addresses, up. Given a MAC, it keeps it: a bridge left to itself takes the lowest
    MAC of its ports, and changes it when a port goes or comes (the ARP caches of its neighbours then go
    wrong until they time out)."""
    with _ipr(netns) as ns:
        ns.link("add", ifname=name, kind="bridge", **({"address": mac} if mac else {}))
        idx = _index(ns, name)
        for addr in addresses:
            ns.addr("add", index=idx, address=str(addr.ip), prefixlen=addr.network.prefixlen)
        ns.link("set", index=idx, state="up")


def add_address(netns: str, ifname: str, address: IPv4Interface) -> None:
    with _ipr(netns) as ns:
        ns.addr("add", index=_index(ns, ifname), address=str(address.ip),
                prefixlen=address.network.prefixlen)


def set_default_route(netns: str, gateway: IPv4Address) -> None:
    with _ipr(netns) as ns:
        ns.route("replace", dst="0.0.0.0/0", gateway=str(gateway))


def add_route(netns: str, dst: IPv4Network, gateway: IPv4Address) -> None:
    with _ipr(netns) as ns:
        ns.route("replace", dst=str(dst), gateway=str(gateway))


def add_local_routes(netns: str, networks: list[IPv4Network]) -> None:
    """Makes every address of `networks` local to the namespace (routes of type local on lo, in the local
    table): it answers ARP, pings and connections for all of them."""
    with _ipr(netns) as ns:
        lo = _index(ns, "lo")
        for net in networks:
            ns.route("replace", dst=str(net), type="local", table=255, oif=lo, scope=254)


def add_policy_rules(netns: str, rules: list[PolicyRule]) -> None:
    """The policy routing rules, each added only if the namespace does not have it yet (harmless to repeat)."""
    with _ipr(netns) as ns:
        present = {(rule.get_attr("FRA_IIFNAME"), rule.get_attr("FRA_TABLE") or rule["table"],
                    rule.get_attr("FRA_PRIORITY") or 0) for rule in ns.get_rules(family=2)}
        for r in rules:
            if (r.iif, r.table, r.priority) not in present:
                ns.rule("add", iifname=r.iif, table=r.table, priority=r.priority)


def _route_args(r: KernelRoute) -> dict:
    args = {"dst": str(r.dst), "table": r.table, "proto": RT_PROTO_LAB}
    if r.kind == "blackhole":
        args["type"] = "blackhole"
    else:
        args["oif"] = r.dev  # resolved to an index by the caller
        if r.kind == "via":
            args["gateway"] = str(r.gateway)
        else:
            args["scope"] = "link"
    return args


def _lab_routes(ns: IPRoute, tables: set[int]) -> set[tuple[int, str]]:
    """(table, destination) of every route the lab put in `tables`."""
    out = set()
    for route in ns.get_routes(family=2, table=None):
        table = route.get_attr("RTA_TABLE") or route["table"]
        if table in tables and route["proto"] == RT_PROTO_LAB:
            out.add((table, f"{route.get_attr('RTA_DST') or '0.0.0.0'}/{route['dst_len']}"))
    return out


def lab_routes(netns: str, tables: set[int]) -> set[tuple[int, str]]:
    with _ipr(netns) as ns:
        return _lab_routes(ns, tables)


RTN_BLACKHOLE = 6


def routes(netns: str, tables: set[int]) -> set[KernelRoute]:
    """Every route the lab put in `tables`, next hop and device included: what `replace_routes` made them."""
    out = set()
    with _ipr(netns) as ns:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ns.get_links()}
        for route in ns.get_routes(family=2, table=None):
            table = route.get_attr("RTA_TABLE") or route["table"]
            if table not in tables or route["proto"] != RT_PROTO_LAB:
                continue
            dst = IPv4Network(f"{route.get_attr('RTA_DST') or '0.0.0.0'}/{route['dst_len']}")
            gateway, dev = route.get_attr("RTA_GATEWAY"), names.get(route.get_attr("RTA_OIF"), "")
            if route["type"] == RTN_BLACKHOLE:
                out.add(KernelRoute(table, dst, "blackhole"))
            elif gateway:
                out.add(KernelRoute(table, dst, "via", dev, IPv4Address(gateway)))
            else:
                out.add(KernelRoute(table, dst, "link", dev))
    return out


def replace_routes(netns: str, routes: list[KernelRoute]) -> None:
    """Makes the lab's tables hold exactly `routes`: replace what is wanted, then
    delete what is no longer wanted. Traffic never meets an empty table."""
    with _ipr(netns) as ns:
        before = _lab_routes(ns, {r.table for r in routes})
        index: dict[str, int] = {}
        for r in routes:
            args = _route_args(r)
            if "oif" in args:
                name = args["oif"]
                if name not in index:
                    index[name] = _index(ns, name)
                args["oif"] = index[name]
            ns.route("replace", **args)
        wanted = {(r.table, str(r.dst)) for r in routes}
        for table, dst in sorted(before - wanted):
            ns.route("del", dst=dst, table=table, proto=RT_PROTO_LAB)


def route_get(netns: str, dst: IPv4Address) -> dict:
    """What the namespace would do with a packet to `dst` (sends nothing)."""
    with _ipr(netns) as ns:
        try:
            (r,) = ns.route("get", dst=str(dst))
        except NetlinkError as e:
            return {"dst": str(dst), "error": e.args[1] if len(e.args) > 1 else str(e)}
        names = {l["index"]: l.get_attr("IFLA_IFNAME") for l in ns.get_links()}
        return {"dst": str(dst), "dev": names.get(r.get_attr("RTA_OIF")), "gateway": r.get_attr("RTA_GATEWAY"),
                "type": r["type"]}


def announce(fresh: str, peers: list[str]) -> int:
    """Tells the namespaces in `peers` where the addresses of a node made anew (namespace `fresh`) are now:
    each neighbour entry a peer holds for one of them is set to the address's interface's MAC, reachable.

    A peer that sent to the node while it was down holds an entry that is resolving (or failed): when that
    resolution fails, after the node is back, every packet queued on it, a new connection's SYN included,
    gets "host unreachable". As a gratuitous ARP would, this updates only the entries that exist. Returns
    how many it set."""
    with _ipr(fresh) as ns:
        macs = {l["index"]: l.get_attr("IFLA_ADDRESS") for l in ns.get_links()}
        where = {a.get_attr("IFA_ADDRESS"): macs.get(a["index"]) for a in ns.get_addr(family=2)}
    where.pop("127.0.0.1", None)
    changed = 0
    for peer in peers:
        with _ipr(peer) as ns:
            for n in ns.get_neighbours(family=2):
                dst, state = n.get_attr("NDA_DST"), n["state"]
                if where.get(dst) and not state & (NUD_PERMANENT | NUD_NOARP):
                    ns.neigh("replace", dst=dst, lladdr=where[dst], ifindex=n["ifindex"], state=NUD_REACHABLE)
                    changed += 1
    return changed


def interfaces(netns: str | None) -> list[dict]:
    """Interface name, kind and IPv4 addresses of every link in the namespace (None: the host's)."""
    with _ipr(netns) as ns:
        addrs: dict[int, list[str]] = {}
        for a in ns.get_addr(family=2):
            addrs.setdefault(a["index"], []).append(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
        out = []
        for l in ns.get_links():
            info = l.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info else None
            out.append({"ifname": l.get_attr("IFLA_IFNAME"), "kind": kind or "", "state": l.get_attr("IFLA_OPERSTATE"),
                        "addresses": addrs.get(l["index"], [])})
        return out


def _iptables(pid: int, args: tuple[str, ...]) -> tuple[list[str], subprocess.CompletedProcess]:
    cmd = ["nsenter", f"--net={netns_path(pid)}", "iptables", "-w", "5", *args]
    try:
        return cmd, subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise EnvironmentProblem("nsenter or iptables is missing on this host",
                                 "install util-linux and iptables (apt-get install iptables)") from None


def iptables_append(pid: int, table: str, chain: str, *rule: str) -> bool:
    """Appends a rule to a chain unless the chain has it already (`iptables -C` first): harmless to repeat,
    for the nodes that `repair` configures again. True when it appended."""
    _, res = _iptables(pid, ("-t", table, "-C", chain, *rule))
    if res.returncode == 0:
        return False
    iptables(pid, "-t", table, "-A", chain, *rule)
    return True


def iptables(pid: int, *args: str) -> str:
    """Runs iptables inside the namespace of process `pid` (the node's container)."""
    cmd, res = _iptables(pid, args)
    if res.returncode != 0:
        raise NodeError(f"{' '.join(cmd)} failed with exit code {res.returncode}: {(res.stderr or res.stdout).strip()}",
                        "check that the kernel has iptables (nft) support and the NFQUEUE target")
    return res.stdout


def sysctl(pid: int, name: str, value: str) -> None:
    """Sets a network namespace's own sysctl (net.*) in the namespace of process `pid`: /proc/sys is
    read-only inside containers, and /proc/sys/net shows the namespace of the process that opens it."""
    if not name.startswith("net.") or not all(part.replace("_", "").isalnum() for part in name.split(".")):
        raise ValueError(f"not a per-namespace sysctl name: {name!r}")
    path = "/proc/sys/" + name.replace(".", "/")
    cmd = ["nsenter", f"--net={netns_path(pid)}", "--", "sh", "-c", 'printf "%s\n" "$1" > "$2"', "sysctl", value, path]
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise NodeError(f"setting {name}={value} in the node's namespace failed: {res.stderr.strip()}",
                        "the kernel's connection tracking (nf_conntrack) must be loaded; try `modprobe nf_conntrack`")
