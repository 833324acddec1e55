"""CLI: `nfwlab` (also `python -m lab`), a thin layer over lab.Lab.

Exit codes: 0 ok, 1 request failed (curl/exec), 2 bad input, 3 host problem
(Docker, root, images), 4 wrong lab state, 5 a node failed, 6 timeout,
130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .errors import LabError
from .lab import DEFAULT_DESIGN, DEFAULT_RULES, Lab, build_images, design_names
from .logs import describe


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def cmd_up(args) -> int:
    lab = Lab(args.name, rule_group_file=args.rule_group or DEFAULT_RULES, rules_file=args.rules,
              domains=args.domains.split(",") if args.domains else None, home_net=args.home_net)
    took = lab.up(args.design)
    if args.json:
        _print_json({"name": lab.name, "design": args.design, "seconds": round(took, 3), "eve_json": str(lab.eve.path)})
    else:
        print(f"lab {lab.name} is up in design {args.design} ({took:.1f}s)")
        print(f"  firewall alert log (EVE): {lab.eve.path}")
        print("  try: nfwlab curl server-a https://blocked.example/ ; nfwlab alerts")
    return 0


def cmd_down(args) -> int:
    report = Lab(args.name).down()
    if args.json:
        _print_json(report)
    else:
        print(f"lab {args.name} is down: removed {report['containers']} container(s)"
              + (f", {len(report['host_links'])} leftover link(s)" if report["host_links"] else "")
              + (f", state {report['state_dir']}" if report["state_dir"] else ""))
    return 0


def cmd_status(args) -> int:
    st = Lab(args.name).status()
    if args.json:
        _print_json(st)
        return 0 if st["design"] else 4
    if not st["design"] and all(v == "missing" for v in st["nodes"].values()):
        print(f"lab {args.name} is down")
        return 4
    print(f"lab {st['name']}: {st['phase']}, design {st['design']}")
    for node, status in st["nodes"].items():
        print(f"  {node:<18} {status}")
    print(f"  firewall engine    {st['firewall_engine']}")
    print(f"  HOME_NET           {st['home_net']}")
    print(f"  rules              {st['rules']}")
    print(f"  domains served     {', '.join(st['domains'] or [])}")
    print(f"  alert log (EVE)    {st['eve_json']}")
    return 0 if st["design"] and st["firewall_engine"] == "running" else 5


def cmd_design(args) -> int:
    lab = Lab(args.name)
    before = lab.design
    took = lab.switch(args.design)
    if args.json:
        _print_json({"from": before, "to": lab.design, "seconds": round(took, 4)})
    else:
        print(f"design {before} -> {lab.design}: routes replaced in {took * 1000:.1f} ms, no container restarted")
    return 0


def cmd_routes(args) -> int:
    lab = Lab(args.name)
    out = lab.route_tables(args.design, as_json=args.json)
    if args.json:
        _print_json(out)
    else:
        print(out, end="")
    return 0


def cmd_exec(args) -> int:
    argv = args.command[1:] if args.command[:1] == ["--"] else args.command
    code, out, err = Lab(args.name).exec(args.node, argv)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


def cmd_curl(args) -> int:
    res = Lab(args.name).fetch(args.node, args.url, timeout=args.timeout)
    if args.json:
        _print_json({"node": res.node, "url": res.url, "status": res.status, "ok": res.ok,
                     "curl_exit": res.curl_exit, "error": res.error, "seconds": round(res.seconds, 3)})
    else:
        print(res.describe())
    return 0 if res.ok else 1


def cmd_alerts(args) -> int:
    lab = Lab(args.name)

    def show(record: dict) -> None:
        if args.format == "aws":
            print(json.dumps(lab.to_aws(record)), flush=True)
        elif args.format == "eve":
            print(json.dumps(record), flush=True)
        else:
            print(describe(record), flush=True)

    if args.follow:
        since = 0 if args.all else lab.log_mark()
        print(f"following {lab.eve.path} (Ctrl-C stops)", file=sys.stderr, flush=True)
        try:
            for r in lab.follow_alerts(since=since):
                show(r)
        except KeyboardInterrupt:
            pass
        return 0
    records = lab.alerts()
    for r in records[-args.last:] if args.last else records:
        show(r)
    return 0


def cmd_engine(args) -> int:
    lab = Lab(args.name)
    if args.action == "stop":
        lab.stop_firewall_engine()
        print("firewall engine stopped: nothing crosses the firewall until `nfwlab engine start` (fail closed)")
    else:
        lab.restart_firewall_engine()
        print("firewall engine running")
    return 0


def cmd_build(args) -> int:
    base = build_images(args.base_image)
    print(f"images nfwlab/node and nfwlab/firewall built from {base}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nfwlab", description="An emulated AWS VPC with a NAT gateway and an inline "
                                "AWS Network Firewall (real Suricata 7).")
    p.add_argument("--name", default="default", help="lab name (several labs can run at once); default: default")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    designs = design_names()

    def add(name: str, fn, help_: str, json_flag: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        if json_flag:
            sp.add_argument("--json", action="store_true", help="machine-readable output")
        return sp

    sp = add("up", cmd_up, "start the lab")
    sp.add_argument("--design", default=DEFAULT_DESIGN, help=f"{' | '.join(designs)} or a design file "
                    f"(default {DEFAULT_DESIGN})")
    sp.add_argument("--domains", help="comma-separated names the emulated internet serves "
                    "(default: designs/vpc.yaml's internet.domains)")
    sp.add_argument("--home-net", help="the firewall's HOME_NET, comma-separated CIDRs (default: the VPC CIDR, as AWS)")
    rules = sp.add_mutually_exclusive_group()
    rules.add_argument("--rule-group", help="an AWS domain-list rule group (describe-rule-group JSON); "
                       "default policies/deny-domains.json")
    rules.add_argument("--rules", help="a Suricata rules file to run as-is instead of a rule group")
    add("down", cmd_down, "remove everything the lab made (also after a crash)")
    add("status", cmd_status, "show the lab's nodes, design and firewall engine")
    sp = add("design", cmd_design, "switch the running lab to another design (routes only)")
    sp.add_argument("design", help=f"{' | '.join(designs)} or a design file")
    sp = add("routes", cmd_routes, "print the route tables as AWS shows them (--json: describe-route-tables)")
    sp.add_argument("--design", help="a design other than the running one")
    sp = add("exec", cmd_exec, "run a command in a node: nfwlab exec server-a -- ip route", json_flag=False)
    sp.add_argument("node")
    sp.add_argument("command", nargs=argparse.REMAINDER)
    sp = add("curl", cmd_curl, "make a node fetch a URL (exit 0 when it got a 2xx/3xx)")
    sp.add_argument("node")
    sp.add_argument("url")
    sp.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    sp = add("alerts", cmd_alerts, "print the firewall's alerts", json_flag=False)
    sp.add_argument("--format", choices=["text", "eve", "aws"], default="text",
                    help="text (one line each), eve (Suricata EVE JSON) or aws (AWS Network Firewall alert log)")
    sp.add_argument("--follow", "-f", action="store_true", help="keep printing new alerts (Ctrl-C stops)")
    sp.add_argument("--all", action="store_true", help="with --follow: start from the first alert")
    sp.add_argument("--last", type=int, default=0, help="only the last N alerts")
    sp = add("engine", cmd_engine, "stop or start the firewall engine (Suricata) in the running lab",
             json_flag=False)
    sp.add_argument("action", choices=["stop", "start"])
    sp = add("build", cmd_build, "build the lab's images (a Debian base with debootstrap if no registry)",
             json_flag=False)
    sp.add_argument("--base-image", help="base image to build from (default debian:bookworm-slim)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except LabError as e:
        print(f"nfwlab: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("nfwlab: interrupted", file=sys.stderr)
        return 130
