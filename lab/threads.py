"""Threads: run independent calls at once (links, node set-up, one call per firewall endpoint)."""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

WORKERS = 4


def parallel(calls: list[Callable[[], Any]], workers: int = WORKERS) -> None:
    """Runs the calls on a few threads; the first error is raised once all are done."""
    if len(calls) <= 1:
        for c in calls:
            c()
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(c) for c in calls]:
            future.result()
