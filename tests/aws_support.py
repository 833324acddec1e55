"""What the tests of the AWS side share: a free port, the reconciler's status, Terraform run offline against the
provider mirror (with a provider block that calls nothing), the AWS CLI against an endpoint, the shipped
Terraform example copied to a folder of the test's own."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from lab.aws.serve import STATUS_PATH
from lab.aws.terraform import cli_config, find_provider_mirror
from lab.wait import Wait

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "terraform"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settled(url: str, timeout: float = 30.0) -> dict[str, Any]:
    """The reconciler's status once it has caught up with every change (read over HTTP, as users do)."""
    last: dict[str, Any] = {}

    def caught_up() -> dict[str, Any] | None:
        last.update(requests.get(url + STATUS_PATH, timeout=5).json())
        return dict(last) if last["settled"] else None
    return Wait(f"the endpoint {url} to settle", timeout, interval=0.1).until(caught_up, lambda: str(last))


MIRROR = find_provider_mirror()
needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None or MIRROR is None,
                                     reason="needs the terraform binary and a hashicorp/aws 5.x provider mirror")


def terraform_env(folder: Path) -> dict[str, str]:
    """The environment for Terraform: a CLI configuration of the test's own naming the provider mirror (the
    machine's TF_CLI_CONFIG_FILE names a file that does not exist), so `terraform init` works offline; no other
    TF_ setting of the machine's."""
    if shutil.which("terraform") is None or MIRROR is None:
        pytest.skip("Terraform or the hashicorp/aws provider mirror is not on this machine")
    rc = folder / "terraform.rc"
    rc.write_text(cli_config(MIRROR))
    return {**{k: v for k, v in os.environ.items() if not k.startswith("TF_")}, "TF_CLI_CONFIG_FILE": str(rc),
            "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"}


def terraform(workdir: Path, env: dict[str, str], command: str, *args: str) -> str:
    """`terraform COMMAND -no-color ARGS...` in `workdir`; its output, or an assertion error showing it."""
    done = subprocess.run(["terraform", f"-chdir={workdir}", command, "-no-color", *args], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"terraform {command} {' '.join(args)} failed:\n{done.stdout[-4000:]}\n" \
                                 f"{done.stderr[-4000:]}"
    return done.stdout


def offline_provider(region: str) -> str:
    """A `provider "aws"` block for Terraform runs that make no API call (plans of new resources only): test
    credentials, no account lookups, endpoints on a port where nothing listens. `region` is HCL."""
    return f"""provider "aws" {{
  region                      = {region}
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  endpoints {{
    ec2             = "http://127.0.0.1:9"
    networkfirewall = "http://127.0.0.1:9"
    sts             = "http://127.0.0.1:9"
  }}
}}
"""


def aws_cli(url: str, region: str) -> Any:
    """cli(*args) -> the AWS CLI's finished process, run against `url` in `region` with test credentials and
    none of the machine's AWS configuration; skips when there is no AWS CLI beside this Python."""
    aws = Path(sys.executable).with_name("aws")
    if not aws.exists():
        pytest.skip("no AWS CLI beside this Python")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": ""}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(aws), *args, "--endpoint-url", url, "--region", region, "--output", "json"],
                              env=env, capture_output=True, text=True, timeout=60)
    return cli


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
