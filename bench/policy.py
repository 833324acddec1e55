#!/usr/bin/env python3
"""Time from `policy apply` to enforcement for large domain deny lists, printed as a table and written as JSON.

    .venv/bin/python bench/policy.py [--sizes 1000 10000] [--runs 3] [--out bench/results/policy.json]

For each size N a describe-rule-group JSON deny list of N names (TLS_SNI and
HTTP_HOST, so 2N Suricata rules) is written and applied to a running lab,
alternating with the lab's small default list so that every run swaps the
whole rule set. Reported per size:
- check: our own validation + rendering, then Suricata's test mode (-T) on the candidate;
- reload: Suricata's live rule reload until it answers that the new rules are in use;
- total: `Lab.apply_policy()` from call to return;
- enforced: after apply returns, the list's first, middle and last names are
  requested at once (in parallel) and their drop alerts waited for; the run
  only counts if all three are blocked and logged with the list's message.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

from lab import Lab


def summary(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"n": len(s), "median": round(statistics.median(s), 3), "min": round(s[0], 3), "max": round(s[-1], 3)}


def deny_list_file(directory: Path, n: int) -> tuple[Path, list[str]]:
    names = [f"d{i:05d}.deny.test" for i in range(1, n + 1)]
    path = directory / f"deny-{n}.json"
    path.write_text(json.dumps({
        "RuleGroup": {"RulesSource": {"RulesSourceList": {
            "Targets": names, "TargetTypes": ["TLS_SNI", "HTTP_HOST"], "GeneratedRulesType": "DENYLIST"}}},
        "RuleGroupResponse": {"RuleGroupName": f"deny-{n}", "Type": "STATEFUL", "Capacity": 30000}}))
    return path, [names[0], names[n // 2], names[-1]]  # checked: first, middle and last


def run(sizes: list[int], runs: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="nfwlab-bench-"))
    files = {n: deny_list_file(tmp, n) for n in sizes}
    lab = Lab("bench-policy", domains=["allowed.example", "blocked.example",
                                       *(name for _, names in files.values() for name in names)])
    lab.down()
    lab.up("firewall-first")
    results = {}
    try:
        for n, (path, probes) in files.items():
            rows: dict[str, list[float]] = {"check": [], "reload": [], "total": []}
            for _ in range(runs):
                lab.apply_policy(lab.policy)  # start from the small list each time
                mark = lab.log_mark()
                t0 = time.monotonic()
                r = lab.apply_policy(path)
                applied = time.monotonic()
                workers = [threading.Thread(target=lab.fetch, args=("server-a", f"https://{name}/", 2))
                           for name in probes]
                for w in workers:
                    w.start()
                for name in probes:
                    alert = lab.wait_for_alert({"tls.sni": name}, since=mark, timeout=10)
                    assert alert["alert"]["signature"] == "matching TLS denylisted FQDNs"
                    assert alert["verdict"]["action"] == "drop"
                for w in workers:
                    w.join()
                rows["check"].append(r.check_seconds)
                rows["reload"].append(r.apply_seconds)
                rows["total"].append(applied - t0)
            results[n] = {k: summary(v) for k, v in rows.items()} | {"suricata_rules": r.rules}
        lab.apply_policy(lab.policy)
    finally:
        lab.down()
    return {"deny_lists": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="bench/results/policy.json")
    args = ap.parse_args()
    results = run(args.sizes, args.runs)["deny_lists"]
    report = {"machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform()},
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "deny_lists": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'domains':>8} {'rules':>6} {'check (s)':>16} {'reload (s)':>16} {'apply→enforcing (s)':>22}")
    for n, r in results.items():
        def cell(k, r=r):
            return f"{r[k]['median']:.2f} ({r[k]['min']:.2f}-{r[k]['max']:.2f})"
        print(f"{n:>8} {r['suricata_rules']:>6} {cell('check'):>16} {cell('reload'):>16} {cell('total'):>22}")


if __name__ == "__main__":
    main()
