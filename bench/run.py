#!/usr/bin/env python3
"""`make bench`: every benchmark of the lab, printed as one table and written as JSON.

    .venv/bin/python bench/run.py [--quick] [--skip P4,P7] [--out bench/results/latest.json]

P1 warm `up` until a server's allowed request succeeds; P2 design switch, and
whether an established TCP connection survives it; P3 blocked request to its
alert readable (EVE and the AWS ALERT log), and a rejected one to its reset; P4 throughput through the
firewall with flow bypass, with every packet inspected, and on the bare path (bench/throughput.py); P5 deny lists of
1,000 and 10,000 domains, apply to enforcing (bench/policy.py); P6 `up` for
1, 10, 25, 50 servers (bench/scale.py); P7 cold image build and the full test
suite's wall time; P8 regression cases: 200 and 1,000 at once on a running lab,
repeated, with any case decided wrongly counted (bench/regression.py); P9 Terraform against `nfwlab serve`:
apply until the lab passes traffic, the design switch, destroy (bench/aws_endpoint.py).
Figures are medians of several runs with min and max.
--quick runs fewer repetitions (for a look, not for the README).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import aws_endpoint as p9  # noqa: E402
import policy as p5  # noqa: E402
import regression as p8  # noqa: E402
import scale as p6  # noqa: E402
import throughput as p4  # noqa: E402

from lab import Lab  # noqa: E402
from lab import docker as dk  # noqa: E402
from lab.lab import build_images  # noqa: E402
from lab.policy import parse_policy  # noqa: E402

TARGETS = {"P1": "<= 3 s", "P2": "<= 100 ms", "P3": "p95 <= 50 ms",
           "P4": ">= 4 Gbit/s single stream with flow bypass, ratio >= 0.3",
           "P5": "10,000 domains <= 2 s", "P6": "<= 0.15 s per server", "P7": "-",
           "P8": "200 cases <= 10 s, 1,000 <= 30 s, none wrong in 20 runs", "P9": "-"}


def stats(samples: list[float], digits: int = 3) -> dict:
    s = sorted(samples)
    return {"n": len(s), "median": round(statistics.median(s), digits), "min": round(s[0], digits),
            "max": round(s[-1], digits), "p95": round(s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))], digits)}


def p1_warm_up(runs: int, name: str) -> dict:
    ups, firsts = [], []
    for _ in range(runs):
        lab = Lab(name)
        lab.down()
        t0 = time.monotonic()
        ups.append(lab.up("nat-first"))
        while not lab.fetch("server-a", "http://allowed.example/", timeout=2).ok:
            assert time.monotonic() - t0 < 60, "no allowed request succeeded within 60 s"
        firsts.append(time.monotonic() - t0)
        lab.down()
    return {"up_until_engines_run_s": stats(ups), "up_until_allowed_request_s": stats(firsts)}


def p2_switch(lab: Lab, n: int) -> dict:
    took = [lab.switch("firewall-first" if i % 2 == 0 else "nat-first") for i in range(n)]
    lab.switch("nat-first")
    # An established TCP connection (iperf3, 6 s) while the design switches twice under it.
    lab.exec("internet", ["iperf3", "-s", "-D"])
    time.sleep(0.3)  # iperf3 -D returns before it listens
    result: dict = {}

    def client():
        code, out, err = lab.exec("server-a", ["iperf3", "-c", str(lab.vpc.internet.web_server), "-t", "6", "-J"])
        result.update(code=code, out=out)
    worker = threading.Thread(target=client)
    worker.start()
    time.sleep(2)
    lab.switch("firewall-first")
    time.sleep(2)
    lab.switch("nat-first")
    worker.join()
    intervals = []
    try:
        intervals = [round(i["sum"]["bits_per_second"] / 1e6, 1) for i in json.loads(result["out"])["intervals"]]
    except (ValueError, KeyError):
        pass
    survived = result.get("code") == 0 and bool(intervals) and min(intervals[-2:]) > 0
    # The same switch from the command line: the CLI's start-up (Python, imports, reading the lab's state) included.
    cli = []
    for i in range(10):
        t0 = time.monotonic()
        subprocess.run([str(Path(sys.executable).parent / "nfwlab"), "--name", lab.name, "switch",
                        "firewall-first" if i % 2 == 0 else "nat-first"], check=True, capture_output=True)
        cli.append(time.monotonic() - t0)
    lab.switch("nat-first")
    return {"switch_s": stats(took, 4), "cli_switch_s": stats(cli, 4), "tcp_connection_survives_switch": survived,
            "tcp_mbit_per_s_each_second": intervals}


def p3_request_to_alert(lab: Lab, n: int) -> dict:
    """From the moment curl starts in the server (its own clock stamp, taken in the container) to the alert
    being readable in eve.json, and in the AWS ALERT log."""
    lab.switch("firewall-first")
    cid = dk.containers(lab.name)["server-a"].id
    eve, aws, procs = [], [], []
    for _ in range(n):
        mark = lab.log_mark()
        proc = subprocess.Popen(["docker", "exec", cid, "sh", "-c", "date +%s.%N; exec curl -sk -o /dev/null "
                                 "--max-time 1 https://blocked.example/"], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        sent = float(proc.stdout.readline())
        got_eve = got_aws = None
        deadline = time.monotonic() + 10
        while (got_eve is None or got_aws is None) and time.monotonic() < deadline:
            now = time.time()
            if got_eve is None and lab.eve.records("alert", mark.eve):
                got_eve = now
            if got_aws is None and lab.alert_log.records("alert", mark.alert):
                got_aws = now
            time.sleep(0.001)
        assert got_eve and got_aws, "no alert within 10 s"
        eve.append(got_eve - sent)
        aws.append(got_aws - sent)
    for proc in procs:
        proc.wait()
    return {"eve_json_s": stats(eve, 4), "aws_alert_log_s": stats(aws, 4)}


def p3_flow_record(lab: Lab, n: int) -> dict:
    """From the end of an allowed HTTP request (curl's exit, the container's clock) to its FLOW record in flow.log,
    found by the request's own source port: Suricata writes a flow's netflow record when its flow manager finds
    the closed flow timed out (suricata.yaml: flow-timeouts.tcp.closed 0)."""
    lab.switch("firewall-first")
    took = []
    for i in range(n):
        port = 20000 + i
        mark = lab.log_mark()
        _, out, _ = lab.exec("server-a", ["sh", "-c", f"curl -s -o /dev/null --local-port {port} "
                                          f"http://allowed.example/ && date +%s.%N"])
        ended = float(out)
        deadline = time.monotonic() + 30
        while not any(r["event"].get("src_port") == port for r in lab.flow_log.records(None, mark.flow)):
            assert time.monotonic() < deadline, f"no FLOW record for source port {port} within 30 s"
            time.sleep(0.005)
        took.append(time.time() - ended)
    return {"flow_record_after_end_s": stats(took, 3)}


def p3_reject_to_reset(lab: Lab, n: int) -> dict:
    """Under a REJECTLIST for blocked.example: curl's own time (in the server) from its start to the reset that
    ends a rejected TLS request (exit 35); the tests prove the reset is the firewall's, this says how fast."""
    reject = {"RuleGroupName": "reject-blocked", "RuleGroup": {"RulesSource": {"RulesSourceList": {
        "Targets": ["blocked.example"], "TargetTypes": ["TLS_SNI"], "GeneratedRulesType": "REJECTLIST"}}}}
    lab.apply_policy(parse_policy({"FirewallPolicy": {"StatefulRuleGroupReferences": [
        {"ResourceArn": "reject-blocked"}]}, "RuleGroups": [reject]}, "bench reject"))
    took = []
    try:
        for i in range(n):
            # Each request from a port of its own: a new connection on a rejected flow's addresses and ports,
            # while Suricata still holds that flow, is dropped without a reset (docs/differences.md).
            _, out, _ = lab.exec("server-a", ["curl", "-sk", "-o", "/dev/null", "-w", "%{exitcode} %{time_total}",
                                              "--local-port", str(21000 + i), "--max-time", "10",
                                              "https://blocked.example/"])
            code, seconds = out.split()
            assert code == "35", f"expected a reset (curl exit 35), got {out}"
            took.append(float(seconds))
    finally:
        lab.apply_policy(lab.policy)
    return {"reject_reset_s": stats(took, 4)}


def p7_cold_build_and_tests(with_tests: bool) -> dict:
    out = {}
    for image in ("nfwlab/firewall:1", "nfwlab/node:1", "nfwlab/debian-base:bookworm"):
        try:
            dk.client().images.remove(image, force=True)
        except Exception:  # not there
            pass
    dk.client().images.prune()
    t0 = time.monotonic()
    base = build_images()
    out["cold_image_build_s"] = round(time.monotonic() - t0, 1)
    out["base_image"] = base
    if with_tests:
        t0 = time.monotonic()
        # As `make test` runs it: two workers, each with a lab of its own.
        res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2"],
                             capture_output=True, text=True, env={**os.environ, "TESTCONTAINERS_RYUK_DISABLED": "true"})
        out["test_suite_s"] = round(time.monotonic() - t0, 1)
        out["test_suite_result"] = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else res.returncode
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--skip", default="", help="comma-separated figures to skip, e.g. P5,P7")
    ap.add_argument("--out", default="bench/results/latest.json")
    ap.add_argument("--name", default="bench", help="the name of the lab P1-P3 and P8 bring up (one of its own)")
    ap.add_argument("--table", metavar="JSON", help="only print the table of an earlier run's results")
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return
    skip = {s.strip().upper() for s in args.skip.split(",") if s.strip()}
    runs = 2 if args.quick else 5
    results: dict = {"machine": {"cpus": os.cpu_count(), "memory_gib": round(os.sysconf("SC_PAGE_SIZE") *
                                                                              os.sysconf("SC_PHYS_PAGES") / 2**30),
                                 "kernel": platform.release(), "os": platform.platform(terse=True),
                                 "docker": dk.client().version().get("Version"), "python": platform.python_version()},
                     "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     # other work on the machine slows every figure: the 1, 5 and 15 minute load averages
                     "load_average_at_start": [round(x, 1) for x in os.getloadavg()]}
    steps = [("P1", lambda: p1_warm_up(runs, args.name))]
    lab = Lab(args.name)

    def with_lab(fn):
        def run():
            lab.down()
            lab.up("nat-first")
            try:
                return fn(lab)
            finally:
                lab.down()
        return run
    steps += [("P2", with_lab(lambda lab: p2_switch(lab, 20))),
              ("P3", with_lab(lambda lab: {**p3_request_to_alert(lab, 20 if args.quick else 100),
                                           **p3_flow_record(lab, 5 if args.quick else 20),
                                           **p3_reject_to_reset(lab, 20 if args.quick else 100)})),
              ("P4", lambda: p4.run(seconds=3 if args.quick else 5, runs=1 if args.quick else 3)),
              ("P5", lambda: p5.run([1000, 10000], runs=1 if args.quick else 3)),
              ("P6", lambda: p6.run([1, 10, 25, 50], runs=1 if args.quick else 3)),
              ("P7", lambda: p7_cold_build_and_tests(with_tests=not args.quick)),
              ("P8", lambda: p8.run({200: 3, 1000: 1} if args.quick else {200: 20, 1000: 5}, args.name)),
              ("P9", lambda: p9.run(1 if args.quick else 3, args.name + "-tf"))]
    for name, step in steps:
        if name in skip:
            continue
        t0 = time.monotonic()
        print(f"{name} ...", file=sys.stderr, flush=True)
        results[name] = step()
        print(f"{name} done in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    results["load_average_at_end"] = [round(x, 1) for x in os.getloadavg()]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten to {args.out}")


def _c(s: dict, unit: str = "s", scale: float = 1.0, digits: int = 2) -> str:
    n = f", n={s['n']}" if "n" in s else ""
    return f"{s['median'] * scale:.{digits}f} {unit} ({s['min'] * scale:.{digits}f}-{s['max'] * scale:.{digits}f}{n})"


def table(r: dict) -> str:
    """The results as the README's Markdown table."""
    rows = ["| figure | measured (median (min-max)) | target |", "|---|---|---|"]
    if "P1" in r:
        rows.append("| P1 warm `up` until server-a's allowed request succeeds | "
                    f"{_c(r['P1']['up_until_allowed_request_s'])}"
                    f" | {TARGETS['P1']} |")
    if "P2" in r:
        rows.append(f"| P2 design switch | {_c(r['P2']['switch_s'], 'ms', 1000, 1)}; established TCP connection "
                    f"survives: {'yes' if r['P2']['tcp_connection_survives_switch'] else 'no'} | {TARGETS['P2']} |")
        if "cli_switch_s" in r["P2"]:
            rows.append(f"| P2 ... `nfwlab switch` from the command line (start-up included) | "
                        f"{_c(r['P2']['cli_switch_s'], 'ms', 1000, 0)} | |")
    if "P3" in r:
        e, a = r["P3"]["eve_json_s"], r["P3"]["aws_alert_log_s"]
        rows.append(f"| P3 blocked request to alert readable, eve.json | p50 {e['median'] * 1000:.1f} ms, "
                    f"p95 {e['p95'] * 1000:.1f} ms (n={e['n']}) | {TARGETS['P3']} |")
        rows.append(f"| P3 ... in the AWS ALERT log (alert.log) | p50 {a['median'] * 1000:.1f} ms, p95 "
                    f"{a['p95'] * 1000:.1f} ms | |")
        if "flow_record_after_end_s" in r["P3"]:
            rows.append(f"| P3 allowed connection's end to its FLOW record in flow.log | "
                        f"{_c(r['P3']['flow_record_after_end_s'], digits=1)} | |")
        if "reject_reset_s" in r["P3"]:
            j = r["P3"]["reject_reset_s"]
            rows.append(f"| P3 rejected TLS request to its reset (curl's time) | p50 {j['median'] * 1000:.1f} ms, "
                        f"p95 {j['p95'] * 1000:.1f} ms (n={j['n']}) | < 1 s |")
    if "P4" in r:
        g = r["P4"]["gbit_per_s"]
        for n in (1, 4):
            rows.append(f"| P4 throughput, {n} stream{'s' if n > 1 else ''}: flow bypass / every packet inspected "
                        f"/ bare path | {_c(g[f'bypass_{n}'], 'Gbit/s')} / {_c(g[f'inspect_{n}'], 'Gbit/s')} / "
                        f"{_c(g[f'bare_{n}'], 'Gbit/s')}; ratio to bare {g[f'ratio_bypass_{n}']:.2f} / "
                        f"{g[f'ratio_inspect_{n}']:.2f} | {TARGETS['P4'] if n == 1 else ''} |")
    if "P5" in r:
        for n, v in r["P5"]["deny_lists"].items():
            rows.append(f"| P5 {int(n):,}-domain deny list: apply to enforcing | {_c(v['total'])} "
                        f"(check {v['check']['median']:.2f} s, reload {v['reload']['median']:.2f} s) | "
                        f"{TARGETS['P5'] if int(n) == 10000 else ''} |")
    if "P6" in r:
        sizes = r["P6"]["sizes"]
        cells = ", ".join(f"{n}: {v['up']['median']:.2f} s" for n, v in sizes.items())
        rows.append(f"| P6 `up` by servers | {cells}; {r['P6']['marginal_seconds_per_server']:.3f} s per server "
                    f"| {TARGETS['P6']} |")
    if "P7" in r:
        p = r["P7"]
        tests = f"; full test suite {p['test_suite_s']:.0f} s ({p['test_suite_result']})" if "test_suite_s" in p else ""
        rows.append(f"| P7 cold image build (no registry, debootstrap base) | {p['cold_image_build_s']:.0f} s{tests}"
                    " | - |")
    if "P8" in r:
        for n, v in r["P8"]["runs"].items():
            rows.append(f"| P8 {int(n):,} regression cases on a running lab | {v['median_s']:.1f} s ({v['min_s']:.1f}-"
                        f"{v['max_s']:.1f}, n={v['runs']}), {v['cases_per_s']} cases/s; wrong {v['wrong']}, "
                        f"undecided {v['undecided']} | {TARGETS['P8'] if n == '200' else ''} |")
    if "P9" in r and "skipped" not in r["P9"]:
        t = {k: stats(v, 1) for k, v in r["P9"].items()}
        rows.append("| P9 `terraform apply` of the example to the lab passing traffic | "
                    f"{_c(t['apply_to_traffic_s'], digits=1)} (apply itself {t['apply_s']['median']:.1f} s) | - |")
        rows.append(f"| P9 ... design switch by `terraform apply` to the alert naming server-a | "
                    f"{_c(t['switch_to_server_alert_s'], digits=1)}; `terraform destroy` to no container "
                    f"{t['destroy_to_no_container_s']['median']:.1f} s | - |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
