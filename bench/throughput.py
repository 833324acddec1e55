#!/usr/bin/env python3
"""P4: TCP throughput server -> internet through the inline firewall, and with its engine bypassed.

    .venv/bin/python bench/throughput.py [--seconds 5] [--runs 3] [--out bench/results/throughput.json]

Lab `bench-tput` in firewall-first (server-a -> firewall -> NAT gateway ->
internet gateway -> internet), iperf3 from server-a to the internet node's
203.0.113.10, MTU 1500, 1 and 4 parallel streams. "Bypassed" replaces the
firewall node's queue rule with ACCEPT for the measurement (same path, same
hops, no Suricata: `Lab.engines.bypassed()`), then puts it back.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

from lab import Lab


def iperf(lab: Lab, streams: int, seconds: int) -> float:
    code, out, err = lab.exec("server-a", ["iperf3", "-c", str(lab.vpc.internet.web_server), "-t", str(seconds),
                                           "-P", str(streams), "-J"])
    if code != 0:
        raise RuntimeError(f"iperf3 failed: {out[-500:]} {err[-500:]}")
    return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9


def measure(lab: Lab, seconds: int, runs: int) -> dict:
    out = {}
    for mode in ("firewall", "bypassed"):
        with lab.engines.bypassed() if mode == "bypassed" else nullcontext():
            for streams in (1, 4):
                samples = [iperf(lab, streams, seconds) for _ in range(runs)]
                out[f"{mode}_{streams}"] = {"n": len(samples), "median": round(statistics.median(samples), 2),
                                            "min": round(min(samples), 2), "max": round(max(samples), 2)}
    for streams in (1, 4):
        out[f"ratio_{streams}"] = round(out[f"firewall_{streams}"]["median"] / out[f"bypassed_{streams}"]["median"], 3)
    return out


def run(seconds: int, runs: int) -> dict:
    lab = Lab("bench-tput", topology="firewall-first")
    lab.down()
    lab.up()
    try:
        lab.exec("internet", ["iperf3", "-s", "-D"])
        time.sleep(0.3)  # iperf3 -D returns before it listens; nothing to wait on but its socket
        results = measure(lab, seconds, runs)
        assert lab.status().firewall_engine == "running"
    finally:
        lab.down()
    return {"seconds": seconds, "runs": runs, "gbit_per_s": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="bench/results/throughput.json")
    args = ap.parse_args()
    results = run(args.seconds, args.runs)["gbit_per_s"]
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seconds": args.seconds, "runs": args.runs,
              "gbit_per_s": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'streams':>8} {'firewall Gbit/s':>22} {'bypassed Gbit/s':>22} {'ratio':>6}")
    for n in (1, 4):
        f, b = results[f"firewall_{n}"], results[f"bypassed_{n}"]
        print(f"{n:>8} {f['median']:>8.2f} ({f['min']:.2f}-{f['max']:.2f}) {b['median']:>10.2f} "
              f"({b['min']:.2f}-{b['max']:.2f}) {results[f'ratio_{n}']:>6.2f}")


if __name__ == "__main__":
    main()
