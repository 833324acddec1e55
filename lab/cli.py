"""CLI: `nfwlab` (also `python -m lab`), a thin layer over lab.Lab.

Exit codes: 0 ok, 1 request failed (curl/exec), 2 bad input, 3 host problem
(Docker, root, images), 4 wrong lab state, 5 a node failed, 6 timeout,
130 interrupted, 141 the reader of the output went away (as `ls | head`).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from . import progress
from .aws.commands import add_commands as add_aws_commands
from .cases import CaseError, load_cases, schema_text, select, with_overrides
from .convert import convert
from .diagram import write as write_diagram
from .engine import fail_closed_summary
from .errors import ConfigError, LabError, StateError, nfwlab
from .exporter import MetricsExporter
from .lab import DEFAULT_POLICY, DEFAULT_TOPOLOGY, Lab, build_images, policy_names, state_root, topology_names
from .logs import LogLimits, describe
from .metrics import NAMESPACE
from .metrics import as_text as metrics_text
from .nextgen import NextGenPolicy, load_any_policy
from .nodes import services
from .policy import Policy
from .regress import batches, check_cases, diff_runs, run_cases
from .report import diff_markdown, diff_table, junit_xml, markdown_summary, text_report

SIGPIPE_STATUS = 141  # 128 + SIGPIPE: what a shell reports for `ls | head` when head stops reading


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def cmd_up(args) -> int:
    lab = Lab(args.name, policy_file=args.policy or DEFAULT_POLICY, rule_group_files=args.rule_group or [],
              rules_file=args.rules, domains=args.domains.split(",") if args.domains else None,
              home_net=args.home_net, flow_bypass=not args.no_flow_bypass, log_max_size=args.log_max_size,
              log_keep=args.log_keep)
    # A lab that is up keeps its own topology (up repairs it); a new one starts with the default.
    given = [option for option, value in (("--policy", args.policy), ("--rule-group", args.rule_group),
                                          ("--rules", args.rules), ("--domains", args.domains),
                                          ("--home-net", args.home_net), ("--no-flow-bypass", args.no_flow_bypass),
                                          ("--log-max-size", args.log_max_size), ("--log-keep", args.log_keep))
             if value not in (None, False, [])]
    if given and lab.topology_name:
        raise StateError(f"lab {lab.name!r} is up already: `up` on a running lab only repairs it, and would ignore "
                         f"{', '.join(given)}",
                         f"change its policy with `{nfwlab(lab.name)} policy apply FILE`, or take it down first "
                         f"with `{nfwlab(lab.name)} down`")
    took = lab.up(args.topology or (None if lab.topology_name else DEFAULT_TOPOLOGY))
    if args.json:
        _print_json({"name": lab.name, "topology": lab.topology_name, "topology_file": lab.topology.source,
                     "seconds": round(took, 3), "alert_log": str(lab.alert_log.path), "repaired": lab.repaired})
    elif lab.repaired is not None:
        print(f"lab {lab.name} was up already with topology {lab.topology_name}: "
              + (f"repaired {', '.join(lab.repaired)} ({took:.1f}s)" if lab.repaired else "every node running"))
    else:
        v = lab.vpc
        print(f"lab {lab.name} is up with topology {lab.topology_name} ({took:.1f}s): {len(v.servers)} server(s), "
              f"{len(v.nat_gateways)} NAT gateway(s), {len(v.endpoints)} firewall endpoint(s)")
        how = ("Next Generation, Suricata 8's firewall mode" if isinstance(lab.policy, NextGenPolicy)
               else lab.policy.rule_order)
        print(f"  firewall policy: {lab.policy.name} ({how}, HOME_NET {lab.home_net})")
        print(f"  ALERT log: {lab.alert_log.path}")
        print(f"  FLOW log:  {lab.flow_log.path}")
        domain = "blocked.example" if "blocked.example" in lab.domains else lab.domains[0]
        print(f"  try: `{nfwlab(lab.name)} curl {v.servers[0].name} https://{domain}/`, then "
              f"`{nfwlab(lab.name)} alerts`")
    return 0


def cmd_down(args) -> int:
    report = Lab(args.name).down(purge=args.purge)
    if args.json:
        _print_json(report.as_dict())
    else:
        print(f"lab {args.name} is down: removed {report.containers} container(s)"
              + (f", state {report.state_dir}" if report.state_dir else ""))
        if report.archive:
            print(f"  logs, rules, topology and lab.json kept in {report.archive}")
        elif report.state_dir:
            print("  logs purged" if args.purge else "  nothing to keep")
    return 0


def cmd_status(args) -> int:
    st = Lab(args.name).status()
    if args.json:
        _print_json(st.as_dict())
        return 4 if not st.up else 5 if st.degraded else 0
    if not st.up and all(v == "missing" for v in st.nodes.values()):
        print(f"lab {args.name} is down")
        return 4
    print(f"lab {st.name}: {st.phase}, topology {st.topology}")
    if st.degraded:
        print(f"  degraded: {', '.join(f'{n} is {st.nodes[n]}' for n in st.down_nodes)} -> run "
              f"`{nfwlab(st.name)} repair`")
    for node, status in st.nodes.items():
        print(f"  {node:<18} {status}")
    print(f"  firewall engine    {st.firewall_engine}")
    bypass = ("off" if not st.flow_bypass else "stepped aside: the policy's stateless fragment default action needs "
              "to see fragments" if st.flow_bypass_stepped_aside else "on: decided flows cross in the kernel")
    print(f"  flow bypass        {bypass}")
    print(f"  topology file      {st.topology_file}")
    policy = st.policy
    how = (f"Next Generation on Suricata 8, FirewallDefaultAction {policy.get('firewall_default_action')}, "
           f"PolicyMode {policy.get('policy_mode')}" if policy.get("kind") == "next-generation"
           else f"Classic on Suricata 7, {policy.get('rule_order')}")
    print(f"  policy             {policy.get('name')} ({how}; {policy.get('source')})")
    print(f"  HOME_NET           {st.home_net}")
    print(f"  domains served     {', '.join(st.domains)}")
    print(f"  ALERT log          {st.alert_log}")
    print(f"  FLOW log           {st.flow_log}")
    print(f"  EVE log            {', '.join(st.eve_json)}")
    if st.log_max_size is not None and st.log_keep is not None:
        print(f"  log rotation       {LogLimits(st.log_max_size, st.log_keep).describe()}")
    return 0 if st.up and not st.degraded and st.firewall_engine == "running" else 5


def cmd_repair(args) -> int:
    lab = Lab(args.name)
    started = time.monotonic()
    repaired = lab.repair()
    took = time.monotonic() - started
    if args.json:
        _print_json({"name": lab.name, "repaired": repaired, "seconds": round(took, 3), "nodes": lab.health()})
    elif repaired:
        others = len(services(lab.vpc)) - len(repaired)
        print(f"lab {lab.name} repaired in {took:.1f}s: {', '.join(repaired)} brought back"
              + (f"; the {others} other node(s) left as they were" if others else ""))
    else:
        print(f"lab {lab.name} is whole: nothing to repair ({took:.1f}s)")
    return 0


def cmd_nodes(args) -> int:
    lab = Lab(args.name, topology=args.topology)
    if args.topology is None and lab.topology_name is None:
        raise StateError(f"lab {args.name} is not up", f"start it: `{nfwlab(args.name)} up`, or list a topology's "
                         f"nodes: `nfwlab nodes --topology {DEFAULT_TOPOLOGY}`")
    names = services(lab.vpc)
    if args.json:
        _print_json({"topology": lab.topology.name, "nodes": names})
    else:
        print("\n".join(names))
    return 0


def cmd_completion(args) -> int:
    from .completion import bash
    print(bash(parser(), topology_names(), policy_names(), state_root()), end="")
    return 0


def cmd_switch(args) -> int:
    lab = Lab(args.name)
    before = lab.topology_name
    took = lab.switch(args.topology)
    if args.json:
        _print_json({"from": before, "to": lab.topology_name, "seconds": round(took, 4)})
    else:
        print(f"route tables {before} -> {lab.topology_name}: routes replaced in {took * 1000:.1f} ms, "
              "no container restarted")
    return 0


def _say_if_down(lab: Lab, topology: str | None) -> None:
    """A command that falls back to the default topology when the lab is down says so, and which (on stderr:
    --json output stays JSON). A topology the user named is no fallback: nothing to say."""
    if lab.topology_name is not None or topology:
        return
    print(f"note: lab {lab.name} is down: using the default topology {DEFAULT_TOPOLOGY} "
          f"({Lab.resolve_topology(DEFAULT_TOPOLOGY).source})", file=sys.stderr)


def cmd_routes(args) -> int:
    lab = Lab(args.name)
    _say_if_down(lab, args.topology)
    if args.diff:
        print(lab.route_table_diff(args.diff, args.topology), end="")
    elif args.json:
        _print_json(lab.route_tables_json(args.topology))
    else:
        print(lab.route_tables(args.topology), end="")
    return 0


def _node_command(args) -> list[str]:
    """exec's command: what follows NODE, less a leading `--`. The global options written between NODE and the
    command (`nfwlab exec server-a --name x -- ip route`) are the lab's, not the node command's."""
    argv = list(args.command)
    while argv:
        if argv[0] == "--name" and len(argv) > 1:
            args.name, argv = argv[1], argv[2:]
        elif argv[0].startswith("--name="):
            args.name, argv = argv[0].partition("=")[2], argv[1:]
        elif argv[0] == "--progress":
            args.progress, argv = True, argv[1:]
        else:
            break
    return argv[1:] if argv[:1] == ["--"] else argv


def cmd_exec(args) -> int:
    argv = _node_command(args)
    code, out, err = Lab(args.name).exec(args.node, argv)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


def cmd_curl(args) -> int:
    res = Lab(args.name).fetch(args.node, args.url, timeout=args.timeout)
    if args.json:
        _print_json(res.as_dict())
    else:
        print(res.describe())
    return 0 if res.ok else 1


def _endpoints(lab: Lab) -> dict[str, str]:
    """Each AZ's firewall endpoint (a topology has one per AZ): the log records name the AZ only."""
    return {e.availability_zone: e.name for e in lab.vpc.endpoints}


def _show(record: dict, fmt: str, endpoints: dict[str, str]) -> None:
    """One log record (AWS envelope) as text, bare EVE or the AWS log line."""
    if fmt == "aws":
        print(json.dumps(record), flush=True)
    elif fmt == "eve":
        print(json.dumps(record.get("event", record)), flush=True)
    else:
        print(describe(record, endpoints), flush=True)


def _print_log(args, lab: Lab, records: list, follow) -> int:
    endpoints = _endpoints(lab)
    if args.follow:
        print("following (Ctrl-C stops)", file=sys.stderr, flush=True)
        try:
            for r in follow():
                _show(r, args.format, endpoints)
        except KeyboardInterrupt:
            pass
        return 0
    for r in records[-args.last:] if args.last else records:
        _show(r, args.format, endpoints)
    return 0


def cmd_alerts(args) -> int:
    lab = Lab(args.name)
    since = None if args.all else lab.log_mark()
    return _print_log(args, lab, lab.alerts(aws=True) if not args.follow else [],
                      lambda: lab.follow_alerts(since=since if since is not None else 0, aws=True))


def cmd_flows(args) -> int:
    lab = Lab(args.name)
    since = 0 if args.all else lab.flow_log.size()

    def follow():
        yield from lab.flow_log.follow(since)
    return _print_log(args, lab, lab.flows() if not args.follow else [], follow)


def _convert(args) -> int:
    if not args.files:
        raise LabError("policy convert needs a Classic policy file",
                       "`nfwlab policy convert CLASSIC-POLICY.json [RULE-GROUP.json ...] [--out NEXT-GENERATION.json]`")
    policy = load_any_policy(args.files[0], args.files[1:])
    if not isinstance(policy, Policy):
        raise ConfigError(f"{args.files[0]} is already a Next Generation policy", "give a Classic policy")
    converted = convert(policy)
    text = json.dumps(converted.document, indent=2) + "\n"
    if args.out:
        out = Path(args.out)
        if out.exists() and out.resolve() == Path(args.files[0]).resolve():
            raise ConfigError(f"{out}: is the policy being converted", "write the result to another file")
        out.write_text(text)
        print(f"Next Generation policy {policy.name} written to {out}", file=sys.stderr)
    else:
        print(text, end="")
    for item in converted.notes:
        print(f"note: {item}", file=sys.stderr)
    for item in converted.lost:
        print(f"not carried over: {item}", file=sys.stderr)
    return 0


def cmd_policy(args) -> int:
    if args.action == "convert":
        return _convert(args)
    if args.action == "apply":
        if not args.files:
            raise LabError("policy apply needs a file", "`nfwlab policy apply POLICY.json [RULE-GROUP.json ...]`")
        lab = Lab(args.name)
        result = lab.apply_policy(args.files[0], args.files[1:], home_net=args.home_net)
        if args.json:
            _print_json(result.as_dict())
        else:
            for w in result.warnings:
                print(f"warning: {w}", file=sys.stderr)
            for n in result.notes:
                print(f"note: {n}")
            how = "engine restarted in its node" if result.engine_restarted else "rules reloaded in the running engine"
            print(f"policy {result.policy} enforced: {result.rules} rules, HOME_NET {result.home_net}; "
                  f"checked in {result.check_seconds:.2f}s, {how} in {result.apply_seconds:.2f}s")
        return 0
    if args.action == "check":
        if not args.files:
            raise LabError("policy check needs a file", "`nfwlab policy check POLICY.json [RULE-GROUP.json ...]`")
        lab = Lab(args.name)
        policy = load_any_policy(args.files[0], args.files[1:])
        rendered = lab.check_policy(policy) if lab.topology_name else lab.render(policy)
        for w in rendered.warnings:
            print(f"warning: {w}", file=sys.stderr)
        checked = "our checks and Suricata's test mode" if lab.topology_name else \
            "our checks (no lab running: Suricata " \
            "checks it on `up`)"
        print(f"policy {policy.name} is valid ({checked}): {rendered.rule_count} rules")
        return 0
    # show
    if args.files:
        lab = Lab(args.name, policy_file=args.files[0], rule_group_files=args.files[1:])
        rendered = lab.render()
        info = {**lab.policy.summary(), "home_net": lab.home_net, "suricata_rules": rendered.rules,
                "stateless_rules": rendered.stateless, "firewall_rules": rendered.firewall}
    else:
        info = Lab(args.name).running_policy()
    if args.json:
        _print_json(info)
    else:
        if info.get("firewall_rules"):  # a Next Generation policy: the firewall engine first, then the IPS
            print(info["firewall_rules"] + "\n# IPS engine (threat detection, action order)")
        print(info["suricata_rules"], end="")
        if (info.get("stateless") or {}).get("in_use"):
            print("\n" + info.get("stateless_rules", ""), end="")
    return 0


def _trace_json(t) -> dict:
    def path(p):
        return {"hops": [str(h) for h in p.hops], "arrives": p.reached, "problem": p.problem or None,
                "firewall": [{"endpoint": s.endpoint, "availability_zone": s.availability_zone, "src": str(s.src),
                              "dst": str(s.dst)} for s in p.seen]}
    return {"source": t.source, "source_ip": str(t.source_ip), "dest": t.dest, "dest_ip": str(t.dest_ip),
            "port": t.port, "firewall_sees": str(t.firewall_sees) if t.firewall_sees else None,
            "request": path(t.request), "response": path(t.response), "warnings": t.warnings,
            "policy": t.verdict.as_dict() if t.verdict else None,
            "routes_only": t.routes_only if t.verdict is None else None}


def _dest_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "443")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise LabError(f"{text!r}: the port is not a number from 1 to 65535", "write DEST or DEST:PORT",)
    return host, int(port)


def cmd_trace(args) -> int:
    lab = Lab(args.name)
    dest, port = _dest_port(args.dest)
    _say_if_down(lab, args.topology)
    if args.live:
        res = lab.trace_live(args.source, dest, port)
        live = res.firewall_logged
        if args.json:
            _print_json(res.as_dict(_trace_json))
        else:
            print(res.static.describe())
            print(f"live: {res.request.describe()}")
            print("live: the firewall logged " + (f"source {live.source} in {live.availability_zone} "
                                                   f"({live.log})" if live else "nothing for this flow"))
            print("live: agrees with the static trace" if res.agrees else "live: DIFFERS from the static trace")
        return 0 if res.agrees else 1
    t = lab.trace(args.source, dest, port, args.topology, args.policy)
    if args.json:
        _print_json(_trace_json(t))
    else:
        print(t.describe())
    return 0


def cmd_check(args) -> int:
    lab = Lab(args.name)
    _say_if_down(lab, args.topology)
    traces = lab.check(args.topology)
    if args.json:
        _print_json([_trace_json(t) for t in traces])
    else:
        for t in traces:
            sees = f"firewall sees {t.firewall_sees}" if t.firewall_sees else "firewall sees nothing"
            print(f"{t.source:<16} -> {t.dest}: {sees}" + ("" if t.warnings else ", ok"))
            for w in t.warnings:
                print(f"  WARNING: {w}")
    return 1 if any(t.warnings for t in traces) else 0


def cmd_who(args) -> int:
    lab = Lab(args.name)
    alert, answer = lab.who(args.flow_id)
    if args.json:
        _print_json({"alert": alert, "server": answer.server, "ip": answer.ip, "evidence": answer.evidence,
                     "translation": answer.translation})
    else:
        print(f"alert: {describe(alert, _endpoints(lab))}")
        print(f"who:   {answer.server} ({answer.ip})" if answer.named else "who:   no answer")
        print(f"why:   {answer.evidence}")
    return 0 if answer.named else 1


def cmd_explain(args) -> int:
    explanation = Lab(args.name).explain(args.flow_id)
    if args.json:
        _print_json(explanation.as_dict())
    else:
        print(explanation.text())
    return 0


def cmd_diagram(args) -> int:
    lab = Lab(args.name)
    _say_if_down(lab, args.topology)
    graph = lab.diagram(args.topology, args.server, args.dest)
    if not args.out:
        print(graph.source, end="")
        return 0
    try:
        out = write_diagram(graph, Path(args.out))
    except ValueError as e:
        raise ConfigError(str(e), "write --out FILE.svg, .png, .pdf or .dot") from None
    print(f"diagram of {args.topology or lab.topology.name} written to {out}")
    return 0


def cmd_ui(args) -> int:
    from .ui import LiveView  # selenium and the web server only when asked for
    view = LiveView(Lab(args.name), port=args.port)
    if args.screenshot:
        view.screenshot(Path(args.screenshot))
        print(f"live view of lab {args.name} saved to {args.screenshot}")
        return 0
    print(f"live view of lab {args.name}: {view.url} (Ctrl-C stops)", flush=True)
    try:
        view.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def cmd_engine(args) -> int:
    lab = Lab(args.name)
    if args.action == "stop":
        status = lab.stop_firewall_engine(node=args.node)
        start = f"{nfwlab(lab.name)} engine start" + (f" --node {args.node}" if args.node else "")
        print(fail_closed_summary(lab.vpc.endpoints, status, [args.node] if args.node else list(status), start))
    else:
        lab.restart_firewall_engine(node=args.node)
        print("firewall engine running")
    return 0


def cmd_metrics(args) -> int:
    lab = Lab(args.name)
    if args.prometheus:
        exporter = MetricsExporter(lab.metrics, args.port)
        print(f"metrics of lab {args.name} for Prometheus: {exporter.url} (Ctrl-C stops)", flush=True)
        try:
            exporter.serve_forever()
        except KeyboardInterrupt:
            pass
        return 0
    metrics = lab.metrics()
    if args.json:
        print(json.dumps({"Namespace": NAMESPACE, "MetricData": [m.as_dict() for m in metrics]}, indent=1))
    else:
        print(metrics_text(metrics), end="")
    return 0


def cmd_build(args) -> int:
    base = build_images(args.base_image)
    print(f"images nfwlab/node and nfwlab/firewall (Suricata 7) built from {base}, nfwlab/firewall-ng (Suricata 8) "
          "from Debian forky")
    return 0


def _cases(args) -> list:
    """The cases of the files given, selected by --tag/-k, under --policy/--topology if given."""
    cases = []
    for f in args.files:
        cases += select(load_cases(f).cases, args.tag or (), args.k or ())
    if not cases:
        raise CaseError(f"no case in {', '.join(args.files)} carries the tags and names selected",
                        "check --tag and -k")
    policy = getattr(args, "policy", None)
    return with_overrides(cases, Path(policy) if policy else None, args.topology)


def _progress(text: str) -> None:
    print(f"nfwlab: {text}", file=sys.stderr, flush=True)


def _lab_for(args, cases: list) -> tuple[Lab, bool]:
    """The lab to run cases in: the running one, or one started for them (True: remove it afterwards)."""
    lab = Lab(args.name)
    check_cases(lab, cases)
    if lab.topology_name is not None:
        return lab, False
    (policy, topology), _ = batches(cases)[0]
    lab = Lab(args.name, topology=topology, policy_file=policy or DEFAULT_POLICY)
    _progress(f"lab {args.name} is not up: starting it ({topology or DEFAULT_TOPOLOGY}, "
              f"{policy or DEFAULT_POLICY}); it is removed afterwards" + ("" if not args.keep else " unless --keep"))
    took = lab.up()
    _progress(f"lab {args.name} is up ({took:.1f}s)")
    return lab, not args.keep


def cmd_test(args) -> int:
    if args.schema:
        print(schema_text(), end="")
        return 0
    if not args.files:
        raise CaseError("no case file given", "`nfwlab test CASES.yaml` (the format: `nfwlab test --schema`)")
    cases = _cases(args)
    lab, remove = _lab_for(args, cases)
    try:
        run = run_cases(lab, cases, ", ".join(args.files), args.timeout, progress=_progress)
    finally:
        if remove:
            lab.down()
    if args.junit:
        Path(args.junit).write_text(junit_xml(run))
    if args.summary:
        Path(args.summary).write_text(markdown_summary(run))
    if args.json:
        _print_json(run.as_dict())
    else:
        print(text_report(run, args.verbose), end="")
    return run.exit_code


def cmd_diff(args) -> int:
    old, new = Path(args.old), Path(args.new)
    for p in (old, new):
        load_any_policy(p)  # a bad policy is refused before anything runs
    args.files, args.policy = args.cases, None
    cases = _cases(args)
    lab, remove = _lab_for(args, with_overrides(cases, old))
    try:
        _progress(f"{len(cases)} case(s) under {old}")
        before = run_cases(lab, with_overrides(cases, policy=old), ", ".join(args.files), args.timeout)
        _progress(f"the same cases under {new} (applied live)")
        after = run_cases(lab, with_overrides(cases, policy=new), ", ".join(args.files), args.timeout)
    finally:
        if remove:
            lab.down()
    diff = diff_runs(str(old), str(new), before, after)
    if args.summary:
        Path(args.summary).write_text(diff_markdown(diff))
    if args.json:
        _print_json({"old_policy": str(old), "new_policy": str(new), "changed": [
            {"name": r.case.name, "changed": list(r.changed), "expected": r.expected, "old": r.old.as_dict(),
             "new": r.new.as_dict()} for r in diff.rows], "old": before.as_dict(), "new": after.as_dict()})
    else:
        print(diff_table(diff), end="")
    return diff.exit_code


def _after_command(sp: argparse.ArgumentParser, *flags: str, **kwargs: Any) -> argparse.Action:
    """A global option repeated on a command, so that it may follow the command too; its default is SUPPRESS,
    so a command line without it there keeps the value given before the command (or the global default)."""
    return sp.add_argument(*flags, **{**kwargs, "default": argparse.SUPPRESS})


def _common_options(sp: argparse.ArgumentParser, add: Callable[..., argparse.Action]) -> None:
    """The options every command takes before or after its name: `nfwlab --name x up` = `nfwlab up --name x`."""
    add(sp, "--name", default=os.environ.get("NFWLAB_NAME") or "default", help="lab name (several labs can run "
        "at once; before or after the command); default: $NFWLAB_NAME, else default")
    add(sp, "--progress", action="store_true", default=False, help="print the phases of long steps (up, down, "
        "repair, build) on stderr also when it is not a terminal (as NFWLAB_PROGRESS=1)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nfwlab", description="An emulated AWS VPC with a NAT gateway and an inline "
                                "AWS Network Firewall (real Suricata: 7 for Classic policies, 8 for Next "
                                "Generation policies).")
    _common_options(p, argparse.ArgumentParser.add_argument)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    topologies = " | ".join(topology_names())

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str, json_flag: bool = True,
            aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_, aliases=list(aliases))
        sp.set_defaults(fn=fn)
        _common_options(sp, _after_command)
        if json_flag:
            sp.add_argument("--json", action="store_true", help="machine-readable output")
        return sp

    def topology_option(sp: argparse.ArgumentParser, help_: str) -> None:
        sp.add_argument("--topology", "--design", dest="topology", metavar="TOPOLOGY",
                        help=f"{help_} (--design is an older name for it)")

    sp = add("up", cmd_up, "start the lab")
    sp.add_argument("--topology", "--design", dest="topology", metavar="TOPOLOGY",
                    help=f"{topologies} (topologies/) or a topology file (default {DEFAULT_TOPOLOGY}; on a lab that "
                    "is up: its own, and up brings back whatever node of it is down); --design is an older name "
                    "for it")
    sp.add_argument("--domains", help="comma-separated names the emulated internet serves "
                    "(default: the topology's internet.domains)")
    sp.add_argument("--home-net", help="the firewall's HOME_NET, comma-separated CIDRs (default: the VPC CIDR, as AWS)")
    sp.add_argument("--no-flow-bypass", action="store_true",
                    help="every packet of every flow goes through Suricata, also after it has decided the flow "
                    "(slower; by default a decided flow is forwarded by the endpoint's kernel: docs/throughput.md)")
    sp.add_argument("--log-max-size", metavar="SIZE", help="rotate each log when it reaches SIZE (64M, 512k, 1G; "
                    "0: never; default 64M): x -> x.1 -> ... (docs/logs.md)")
    sp.add_argument("--log-keep", metavar="N", type=int, help="rotated parts each log keeps (default 8)")
    rules = sp.add_mutually_exclusive_group()
    rules.add_argument("--policy", help="a shipped policy's name (deny-domains, the default) or a firewall policy "
                       "or rule group file: AWS describe-firewall-policy / describe-rule-group JSON, or the same keys "
                       "in YAML")
    rules.add_argument("--rules", help="a Suricata rules file to run as-is instead of a policy")
    sp.add_argument("--rule-group", action="append", metavar="FILE",
                    help="a rule group the policy references (repeatable)")
    sp = add("down", cmd_down, "remove everything the lab made (also after a crash); its logs, rules, topology and "
             "lab.json are kept in an archive folder, whose path it prints (docs/logs.md)")
    sp.add_argument("--purge", action="store_true", help="delete the logs too instead of archiving them")
    add("status", cmd_status, "show the lab's nodes, topology and firewall engine; exit 5 when a node or the "
        "firewall engine is down (degraded: `repair` brings it back)")
    add("repair", cmd_repair, "bring back the nodes that are down (killed, exited, gone, after a Docker restart) "
        "and a stopped firewall engine, and only them: containers started again, links rewired, routes, NAT, "
        "firewall queue and policy reapplied; the other nodes and their connections are left as they are")
    sp = add("nodes", cmd_nodes, "print the lab's nodes, one a line (servers, VPC router, NAT gateways, firewall "
             "endpoints, internet gateway, internet): the names exec, curl and trace take")
    topology_option(sp, "the nodes of this topology instead of the running lab's")
    sp = add("completion", cmd_completion, "print a shell completion script: commands, options, node names of "
             "the running lab, topology and policy names (`source <(nfwlab completion bash)`)", json_flag=False)
    sp.add_argument("shell", choices=["bash"])
    sp = add("switch", cmd_switch, "switch the running lab to the route tables of a topology that differs only "
             "in its route tables (routes only, no restart; `design` is an older name for it)", aliases=("design",))
    sp.add_argument("topology", metavar="TOPOLOGY", help=f"{topologies} or a topology file")
    sp = add("routes", cmd_routes, "print the route tables as AWS shows them (--json: describe-route-tables)")
    topology_option(sp, "another topology's route tables (same VPC)")
    sp.add_argument("--diff", metavar="TOPOLOGY", help="print only what changes from the running (or --topology) "
                    "route tables to this topology's")
    sp = add("exec", cmd_exec, "run a command in a node: `nfwlab exec server-a -- ip route`", json_flag=False)
    sp.add_argument("node")
    sp.add_argument("command", nargs=argparse.REMAINDER)
    sp = add("curl", cmd_curl, "make a node fetch a URL (exit 0 when it got a 2xx/3xx)")
    sp.add_argument("node")
    sp.add_argument("url")
    sp.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    for name, fn, what in (("alerts", cmd_alerts, "the firewall's ALERT log"),
                           ("flows", cmd_flows, "the firewall's FLOW log (netflow, one record per direction)")):
        sp = add(name, fn, f"print {what}", json_flag=False)
        sp.add_argument("--format", choices=["text", "eve", "aws"], default="text",
                        help="text (one line each), eve (the Suricata EVE record) or aws (the log line as AWS "
                        "Network Firewall writes it)")
        sp.add_argument("--follow", "-f", action="store_true", help="keep printing new records (Ctrl-C stops)")
        sp.add_argument("--all", action="store_true", help="with --follow: start from the first record")
        sp.add_argument("--last", type=int, default=0, help="only the last N records")
    sp = add("policy", cmd_policy, "apply, check or show the firewall policy")
    sp.add_argument("action", choices=["apply", "check", "show", "convert"],
                    help="apply: validate and enforce on the running lab; check: validate only; show: print the "
                    "Suricata rules (of the running lab, or of FILES); convert: a Classic policy as a Next "
                    "Generation policy that decides the same, and what cannot carry over")
    sp.add_argument("files", nargs="*", metavar="FILE", help="the policy (or rule group) file, then the rule "
                    "group files it references")
    sp.add_argument("--out", "-o", metavar="FILE", help="convert: write the Next Generation policy here "
                    "(default: print it)")
    sp.add_argument("--home-net", metavar="CIDRS", help="apply: the firewall's HOME_NET, comma-separated CIDRs, "
                    "kept for later applies (default: the running lab's `up --home-net`, else the policy's own)")
    sp = add("trace", cmd_trace, "follow a flow through the route tables, both ways, and state the policy's "
             "verdict at the firewall (the rule or default action that decides), without sending a packet "
             "(--live: send one and compare with the firewall's log)")
    sp.add_argument("source", help="a server of the topology")
    sp.add_argument("dest", help="DEST[:PORT]: a domain the internet serves, an address or a server (port 443)")
    topology_option(sp, "trace another topology instead of the running one")
    sp.add_argument("--policy", metavar="POLICY", help="judge the flow by this policy (a shipped policy's name or a "
                    "file) instead of the running lab's (the default policy when the lab is down)")
    sp.add_argument("--live", action="store_true", help="also send one real request and confirm")
    sp = add("check", cmd_check, "trace every server to the internet; exit 1 on any warning (asymmetric "
             "routing, firewall not crossed, source in the firewall's subnet, HOME_NET)")
    topology_option(sp, "check another topology instead of the running one")
    sp = add("who", cmd_who, "name the server behind an alert (the latest, or FLOW_ID): from its source "
             "address, or from the NAT gateway's translation log")
    sp.add_argument("flow_id", nargs="?", type=int, help="the alert's flow_id (default: the latest alert)")
    sp = add("explain", cmd_explain, "what each engine did to a flow (the latest alert's, or FLOW_ID), hook by hook: "
             "which rule or default action accepted, dropped or alerted, and what the IPS engine did")
    sp.add_argument("flow_id", nargs="?", type=int, help="the flow's flow_id (default: the latest alert's)")
    sp = add("diagram", cmd_diagram, "draw the VPC with a server's request path and the address the firewall "
             "sees (Graphviz)", json_flag=False)
    topology_option(sp, "another topology instead of the running one")
    sp.add_argument("--server", help="whose request to follow (default: the first server)")
    sp.add_argument("--dest", help="where to (default: the first name the internet serves)")
    sp.add_argument("--out", help="FILE.svg, .png, .pdf or .dot (default: the DOT source on stdout)")
    sp = add("ui", cmd_ui, "the live view: diagram, route tables, alerts with who did it, design switch "
             "(http://127.0.0.1:PORT)", json_flag=False)
    sp.add_argument("--port", type=int, default=8088, help="port on 127.0.0.1 (default 8088)")
    sp.add_argument("--screenshot", metavar="FILE.png", help="save a screenshot from headless Chromium and exit")
    sp = add("engine", cmd_engine, "stop or start the firewall engine (Suricata) in the running lab",
             json_flag=False)
    sp.add_argument("action", choices=["stop", "start"])
    sp.add_argument("--node", help="one firewall endpoint (default: all)")
    sp = add("metrics", cmd_metrics, "print the firewall's counters under AWS's CloudWatch metric names and "
             "dimensions (namespace AWS/NetworkFirewall)")
    sp.add_argument("--prometheus", action="store_true", help="serve them for Prometheus on "
                    "http://127.0.0.1:PORT/metrics instead (Ctrl-C stops)")
    sp.add_argument("--port", type=int, default=9108, help="port on 127.0.0.1 for --prometheus (default 9108)")
    def case_options(sp: argparse.ArgumentParser) -> None:
        topology_option(sp, "run every case in this topology's route tables instead of its own")
        sp.add_argument("--tag", action="append", metavar="TAG", help="only cases carrying TAG (repeatable: all)")
        sp.add_argument("-k", action="append", metavar="TEXT", help="only cases whose name contains TEXT")
        sp.add_argument("--timeout", type=float, default=10.0, help="seconds a request may wait for an answer "
                        "(default 10; drops are decided by the firewall's records at once, not by this)")
        sp.add_argument("--keep", action="store_true", help="a lab started for the cases stays up afterwards")
        sp.add_argument("--summary", metavar="FILE", help="also write a Markdown summary (for CI job summaries)")

    sp = add("test", cmd_test, "run regression cases (a YAML case file) against the lab: every request real, "
             "every verdict from the firewall's own records; exit 0 all passed, 1 a case failed, 2 bad case file, "
             "6 a case could not be decided")
    sp.add_argument("files", nargs="*", metavar="CASES.yaml")
    sp.add_argument("--policy", metavar="POLICY", help="run every case under this policy (a shipped policy's name "
                    "or a file) instead of its own (applied live)")
    case_options(sp)
    sp.add_argument("--junit", metavar="FILE", help="also write JUnit XML")
    sp.add_argument("--verbose", "-v", action="store_true", help="a line for every case, not only failures")
    sp.add_argument("--schema", action="store_true", help="print the case file format as a JSON Schema and exit")
    sp = add("diff", cmd_diff, "run cases under two policies (the second applied live) and print the cases whose "
             "verdict, alert or logged source changed; exit 1 when a change is not what the cases expect")
    sp.add_argument("old", metavar="OLD_POLICY")
    sp.add_argument("new", metavar="NEW_POLICY")
    sp.add_argument("cases", nargs="+", metavar="CASES.yaml")
    case_options(sp)
    add_aws_commands(add)
    sp = add("build", cmd_build, "build the lab's images (a Debian base with debootstrap if no registry)",
             json_flag=False)
    sp.add_argument("--base-image", help="base image to build from (default debian:bookworm-slim)")
    return p


def _run(args: argparse.Namespace) -> int:
    """The command, its long steps' phases on stderr if wanted (lab/progress.py)."""
    step = args.fn.__name__.removeprefix("cmd_")
    shown = progress.wanted(sys.stderr, forced=args.progress)
    with progress.reporting(progress.PhaseLines(step)) if shown else nullcontext():
        return args.fn(args)


def main(argv: list[str] | None = None) -> int:
    # Output piped into a reader that stops early (`nfwlab alerts | head -1`) ends the command quietly, with
    # the status a process killed by SIGPIPE has (as `ls | head` does), not with a traceback.
    try:
        try:
            args = parser().parse_args(argv)
        except SystemExit:  # --help, or a usage error: argparse has written its text
            sys.stdout.flush()
            raise
        try:
            code = _run(args)
        except LabError as e:
            print(f"nfwlab: {e.for_lab(args.name)}", file=sys.stderr)
            code = e.exit_code
        except KeyboardInterrupt:
            print("nfwlab: interrupted", file=sys.stderr)
            code = 130
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # What is still buffered cannot be written; stdout goes to /dev/null so that Python's own flush at
        # exit does not fail (and print) again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SIGPIPE_STATUS
