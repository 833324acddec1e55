"""What the tests of `nfwlab serve` share: a free port, the reconciler's status, Terraform run offline against
the provider mirror, the shipped Terraform example copied to a folder of the test's own."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from lab.aws.serve import STATUS_PATH

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "terraform"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settled(url: str, timeout: float = 30.0) -> dict[str, Any]:
    """The reconciler's status once it has caught up with every change (read over HTTP, as users do)."""
    deadline = time.monotonic() + timeout
    while True:
        status = requests.get(url + STATUS_PATH, timeout=5).json()
        if status["settled"]:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"the reconciler did not settle in {timeout} s: {status}")
        time.sleep(0.1)


def terraform_env(folder: Path) -> dict[str, str]:
    """The environment for Terraform: a CLI configuration of the test's own naming the provider mirror (the
    machine's TF_CLI_CONFIG_FILE names a file that does not exist), so `terraform init` works offline."""
    from lab.aws.terraform import cli_config, find_provider_mirror
    mirror = find_provider_mirror()
    if shutil.which("terraform") is None or mirror is None:
        pytest.skip("Terraform or the hashicorp/aws provider mirror is not on this machine")
    rc = folder / "terraform.rc"
    rc.write_text(cli_config(mirror))
    return {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}


def terraform(workdir: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(["terraform", *args, "-no-color"], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"terraform {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def example_copy(folder: Path) -> Path:
    """The shipped example in a folder of its own, as a user copies it."""
    work = folder / "tf"
    work.mkdir()
    for f in EXAMPLE.glob("*.tf"):
        shutil.copy(f, work)
    return work


def targets(topology: Any) -> dict[tuple[str, str], str]:
    """Each route as (route table name, destination) -> its target's kind: comparable across ids."""
    vpc = topology.vpc
    return {(t.name, str(r.destination)): vpc.target_kind(r.target) for t in topology.route_tables.tables
            for r in t.routes}
