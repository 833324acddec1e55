"""P8: regression cases per second on a running lab (`nfwlab test`'s runner), and whether any case is decided
wrongly over repeated runs.

Every generated case states what the deny list (policies/deny-domains.json) really does, so a case that does
not pass is a wrong decision (or an undecided one) by the runner. The mix: TLS and HTTP to a blocked name
(drop, with the rule's alert and the NAT gateway as the logged source) and to served names (pass), TCP and
UDP to other ports, DNS, and ICMP to addresses of their own, from both servers.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

from lab import Lab
from lab.cases import parse_cases
from lab.regress import run_cases

KINDS = [
    {"to": "blocked.example", "protocol": "tls", "expect": "drop", "alert": {"sid": 1}, "logged_source": "nat-gateway"},
    {"to": "allowed.example", "protocol": "tls", "expect": "pass", "alert": "none"},
    {"to": "blocked.example", "protocol": "http", "expect": "drop", "alert": {"sid": 2}},
    {"to": "example.test", "protocol": "http", "expect": "pass"},
    {"to": "203.0.113.77", "protocol": "tcp", "port": 22, "expect": "pass"},
    {"to": "203.0.113.78", "protocol": "udp", "port": 123, "expect": "pass"},
    {"to": "203.0.113.53", "protocol": "dns", "query": "allowed.example", "expect": "pass"},
]


def cases(n: int) -> list:
    items = []
    for i in range(n):
        kind = dict(KINDS[i % len(KINDS)])
        if i % 50 == 49:  # a few pings, each to an address of its own (ICMP flows are keyed by addresses)
            kind = {"to": f"203.0.113.{100 + i // 50 % 100}", "protocol": "icmp", "expect": "pass"}
        items.append({"name": f"case {i}", "from": ("server-a", "server-b")[i % 2], **kind})
    return list(parse_cases({"cases": items}, Path(f"bench-{n}.yaml")).cases)


def run(sizes: dict[int, int], name: str = "bench") -> dict:
    """sizes: cases per run -> how many runs; name: the lab's."""
    lab = Lab(name)
    lab.down()
    lab.up("nat-first")
    out: dict = {}
    try:
        for n, repeats in sizes.items():
            batch = cases(n)
            seconds, wrong, errors, examples = [], 0, 0, []
            for _ in range(repeats):
                started = time.monotonic()
                result = run_cases(lab, batch, f"bench-{n}")
                seconds.append(time.monotonic() - started)
                wrong += result.count("failed")
                errors += result.count("error")
                examples += [f"{r.case.name} ({r.case.request()}): {r.error or '; '.join(r.problems)}"
                             for r in result.results if r.status != "passed"][:5 - len(examples)]
            out[str(n)] = {"runs": repeats, "median_s": round(statistics.median(seconds), 2),
                           "min_s": round(min(seconds), 2), "max_s": round(max(seconds), 2),
                           "cases_per_s": round(n / statistics.median(seconds)), "wrong": wrong, "undecided": errors,
                           "examples": examples}
    finally:
        lab.down()
    return {"runs": out}
