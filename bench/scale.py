#!/usr/bin/env python3
"""`up` time against the number of servers, printed as a table and written as JSON.

    .venv/bin/python bench/scale.py [--sizes 2 10 50] [--runs 3] [--out bench/results/scale.json]

For each size N the lab comes up from topologies/scale-50.yaml with its server
count set to N (firewall-first, images built), from `Lab.up()` until every
firewall engine runs; then one allowed request from the last server must
succeed, and the lab is taken down. Reported: median, min, max of `up`, and
the marginal cost per server between the smallest and largest size.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from lab import Lab


def topology(directory: Path, n: int) -> Path:
    data = yaml.safe_load(Path("topologies/scale-50.yaml").read_text())
    data["name"] = f"scale-{n}"
    data["servers"][0]["count"] = n
    path = directory / f"scale-{n}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run(sizes: list[int], runs: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="nfwlab-scale-"))
    results = {}
    for n in sizes:
        path = topology(tmp, n)
        ups, downs = [], []
        for _ in range(runs):
            lab = Lab("bench-scale", topology=path)
            lab.down()
            ups.append(lab.up())
            last = lab.vpc.servers[-1].name
            assert lab.fetch(last, "http://allowed.example/", timeout=5).status == 200
            t0 = time.monotonic()
            lab.down()
            downs.append(time.monotonic() - t0)
        results[n] = {"up": {"median": round(statistics.median(ups), 2), "min": round(min(ups), 2),
                             "max": round(max(ups), 2)}, "down_median": round(statistics.median(downs), 2),
                      "containers": n + 5}
    sizes = sorted(results)
    marginal = (results[sizes[-1]]["up"]["median"] - results[sizes[0]]["up"]["median"]) / (sizes[-1] - sizes[0]) \
        if len(sizes) > 1 else None
    return {"runs": runs, "sizes": results,
            "marginal_seconds_per_server": round(marginal, 3) if marginal is not None else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2, 10, 50])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="bench/results/scale.json")
    args = ap.parse_args()
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **run(args.sizes, args.runs)}
    results, marginal = report["sizes"], report["marginal_seconds_per_server"]
    sizes = sorted(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'servers':>8} {'containers':>10} {'up (s)':>22} {'down (s)':>9}")
    for n in sizes:
        u = results[n]["up"]
        print(f"{n:>8} {results[n]['containers']:>10} {u['median']:>8.2f} ({u['min']:.2f}-{u['max']:.2f})"
              f" {results[n]['down_median']:>9.2f}")
    if marginal is not None:
        print(f"marginal cost per server: {marginal:.3f} s")


if __name__ == "__main__":
    main()
