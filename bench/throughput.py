#!/usr/bin/env python3
"""P4: TCP throughput server -> internet through the inline firewall, with and without flow bypass, and the
bare path (the same hops with the engine out of the path).

    .venv/bin/python bench/throughput.py [--seconds 5] [--runs 3] [--out bench/results/throughput.json]

Lab `bench-tput` in firewall-first (server-a -> firewall -> NAT gateway -> internet gateway -> internet),
iperf3 from server-a to the internet node's 203.0.113.10:5201, MTU 1500, 1 and 4 parallel streams, each
stream a long-lived allowed flow. Three modes:

    bypass     the lab as it starts: the engine decides each flow, and once a flow is past the 1 MB
               reassembly depth the endpoint's kernel forwards it (flow bypass, docs/throughput.md)
    inspect    `up --no-flow-bypass`: every packet of every flow goes through Suricata (NFQUEUE)
    bare       the queue rule replaced with ACCEPT (`Lab.engines.out_of_path()`): same path, no engine

Ratios are to the bare path. The lab is brought up twice (with and without flow bypass).
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

MODES = ("bypass", "inspect", "bare")


def iperf(lab: Lab, streams: int, seconds: int) -> float:
    code, out, err = lab.exec("server-a", ["iperf3", "-c", str(lab.vpc.internet.web_server), "-t", str(seconds),
                                           "-P", str(streams), "-J"])
    if code != 0:
        raise RuntimeError(f"iperf3 failed: {out[-500:]} {err[-500:]}")
    return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9


def summary(samples: list[float]) -> dict:
    return {"n": len(samples), "median": round(statistics.median(samples), 2),
            "min": round(min(samples), 2), "max": round(max(samples), 2)}


def measure(lab: Lab, modes: tuple[str, ...], seconds: int, runs: int) -> dict:
    lab.exec("internet", ["iperf3", "-s", "-D"])
    time.sleep(0.3)  # iperf3 -D returns before it listens; nothing to wait on but its socket
    out = {}
    for mode in modes:
        for streams in (1, 4):
            with lab.engines.out_of_path() if mode == "bare" else nullcontext():
                samples = [iperf(lab, streams, seconds) for _ in range(runs)]
            out[f"{mode}_{streams}"] = summary(samples)
    assert lab.status().firewall_engine == "running"
    return out


def run(seconds: int, runs: int) -> dict:
    results: dict = {}
    for flow_bypass, modes in ((True, ("bypass", "bare")), (False, ("inspect",))):
        lab = Lab("bench-tput", topology="firewall-first", flow_bypass=flow_bypass)
        lab.down()
        lab.up()
        try:
            results |= measure(lab, modes, seconds, runs)
        finally:
            lab.down()
    for mode in ("bypass", "inspect"):
        for streams in (1, 4):
            results[f"ratio_{mode}_{streams}"] = round(
                results[f"{mode}_{streams}"]["median"] / results[f"bare_{streams}"]["median"], 3)
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
    print(f"{'streams':>8} " + " ".join(f"{m + ' Gbit/s':>22}" for m in MODES) + "  ratio bypass/bare, inspect/bare")
    for n in (1, 4):
        cells = " ".join(f"{results[f'{m}_{n}']['median']:>8.2f} ({results[f'{m}_{n}']['min']:.2f}-"
                         f"{results[f'{m}_{n}']['max']:.2f})" for m in MODES)
        print(f"{n:>8} {cells}  {results[f'ratio_bypass_{n}']:.2f}, {results[f'ratio_inspect_{n}']:.2f}")


if __name__ == "__main__":
    main()
