#!/usr/bin/env python3
"""Core timings of the lab, printed as a table and written as JSON.

    .venv/bin/python bench/core.py [--runs 3] [--switches 20] [--requests 20] [--out bench/results/core.json]

- warm up: `Lab.up()` with images built, until the firewall engine runs; and
  until server-a's first allowed request has succeeded;
- design switch: `Lab.switch()` alternating nat-first / firewall-first;
- request to alert: from the start of a blocked HTTPS request on server-a to
  its alert being readable in eve.json.
Each figure: median, min, max (and p95 where there are many samples).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import threading
import time
from pathlib import Path

from lab import Lab


def summary(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"n": len(s), "median": statistics.median(s), "min": s[0], "max": s[-1],
            "p95": s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]}


def warm_up(runs: int) -> tuple[list[float], list[float]]:
    ups, firsts = [], []
    for _ in range(runs):
        lab = Lab("bench")
        lab.down()
        t0 = time.monotonic()
        lab.up("nat-first")
        ups.append(time.monotonic() - t0)
        while not lab.fetch("server-a", "http://allowed.example/", timeout=2).ok:
            if time.monotonic() - t0 > 60:
                raise RuntimeError("no allowed request succeeded within 60s")
        firsts.append(time.monotonic() - t0)
        lab.down()
    return ups, firsts


def switches(lab: Lab, n: int) -> list[float]:
    return [lab.switch("firewall-first" if i % 2 == 0 else "nat-first") for i in range(n)]


def request_to_alert(lab: Lab, n: int) -> list[float]:
    out = []
    for _ in range(n):
        mark = lab.log_mark()
        t0 = time.monotonic()
        worker = threading.Thread(target=lab.fetch, args=("server-a", "https://blocked.example/", 2))
        worker.start()
        lab.wait_for_alert({"tls.sni": "blocked.example"}, since=mark, timeout=10)
        out.append(time.monotonic() - t0)
        worker.join()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--switches", type=int, default=20)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--out", default="bench/results/core.json")
    args = ap.parse_args()

    ups, firsts = warm_up(args.runs)
    lab = Lab("bench")
    lab.up("nat-first")
    try:
        sw = switches(lab, args.switches)
        lab.switch("nat-first")
        r2a = request_to_alert(lab, args.requests)
    finally:
        lab.down()
    results = {
        "machine": {"cpus": __import__("os").cpu_count(), "kernel": platform.release(), "python": platform.python_version()},
        "warm_up_until_firewall_runs_s": summary(ups),
        "warm_up_until_first_allowed_request_s": summary(firsts),
        "design_switch_s": summary(sw),
        "request_to_alert_s": summary(r2a),
    }
    print(f"{'figure':<42} {'n':>3} {'median':>9} {'min':>9} {'max':>9} {'p95':>9}")
    for key, s in results.items():
        if key != "machine":
            print(f"{key:<42} {s['n']:>3} {s['median']:>9.4f} {s['min']:>9.4f} {s['max']:>9.4f} {s['p95']:>9.4f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
