"""What the lab ships: its topologies and policies, found by name from any working directory.

A user runs `nfwlab up --topology firewall-first --policy home-net-trap` (or `Lab(policy_file="home-net-trap")`)
from wherever they keep their own files; a path (anything with a separator or a file suffix, or a file that
exists where they are) is theirs and is taken as written."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

HOME = Path(os.environ.get("NFWLAB_HOME", Path(__file__).resolve().parent.parent))
TOPOLOGIES_DIR = HOME / "topologies"
POLICIES_DIR = HOME / "policies"
POLICY_SUFFIXES = (".json", ".yaml", ".yml")


def topology_names() -> list[str]:
    """The topologies shipped in topologies/ (each a VPC with its route tables)."""
    return sorted(p.stem for p in TOPOLOGIES_DIR.glob("*.yaml"))


def policy_names() -> list[str]:
    """The firewall policies shipped in policies/, by the name that finds them from anywhere."""
    return sorted({p.stem for p in POLICIES_DIR.iterdir() if p.suffix in POLICY_SUFFIXES}) \
        if POLICIES_DIR.is_dir() else []


def _is_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.endswith(POLICY_SUFFIXES + (".rules",))


def policy_path(name_or_path: str | Path) -> Path:
    """A policy's file: a shipped policy's name (`deny-domains`) or a path, which is taken as written.

    A path that does not exist but names a shipped policy (`policies/home-net-trap.json` typed outside the
    repository) is refused with the name that works, rather than read from somewhere the user did not say."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        return path
    if not _is_path(text):
        for suffix in POLICY_SUFFIXES:
            shipped = POLICIES_DIR / f"{text}{suffix}"
            if shipped.is_file():
                return shipped
        raise ConfigError(f"unknown policy {text!r}: no such file, and no shipped policy of that name",
                          f"use one of: {', '.join(policy_names())} (or the path of a policy file)")
    if path.stem in policy_names() and path.suffix in POLICY_SUFFIXES:
        raise ConfigError(f"no such policy file: {text} (from {Path.cwd()})",
                          f"the shipped policy of that name is `{path.stem}`: its name finds it from any directory")
    return path  # the reader says "no such file", naming it
