"""P9: Terraform against `nfwlab serve`: `terraform apply` of docs/examples/terraform until the lab passes
traffic (an allowed request from server-a succeeds), the design switch by a second apply until the alert names
server-a, and `terraform destroy` until no container is left. Each run starts an endpoint and a lab of its own.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from lab import Lab
from lab.aws.serve import STATUS_PATH
from lab.aws.terraform import cli_config, find_provider_mirror
from lab.wait import Wait

ROOT = Path(__file__).resolve().parents[1]
NAME = "bench-tf"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _settled(url: str, timeout: float = 300) -> dict:
    def status() -> dict | None:
        answer = requests.get(url + STATUS_PATH, timeout=10).json()
        return answer if answer["settled"] and answer["state"] != "error" else None
    return Wait(f"the endpoint {url} to settle", timeout).until(status)


def _until(what: str, check, timeout: float = 120) -> None:
    Wait(what, timeout).until(check)


def one_run(work: Path, env: dict, name: str) -> dict:
    port = _port()
    url = f"http://127.0.0.1:{port}"
    log = (work / "serve.log").open("w")
    served = subprocess.Popen([sys.executable, "-m", "lab", "--name", name, "serve", "--port", str(port),
                               "--settle", "0.5"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    tf = ["terraform", "-chdir=" + str(work)]
    try:
        _until(f"nfwlab serve to answer on {url}", lambda: _answers(url), 60)
        for f in (work / "terraform.tfstate", work / "terraform.tfstate.backup"):
            f.unlink(missing_ok=True)
        t0 = time.monotonic()
        subprocess.run([*tf, "apply", "-auto-approve", "-input=false", f"-var=endpoint={url}"], env=env,
                       check=True, capture_output=True)
        applied = time.monotonic() - t0
        _settled(url)
        lab = Lab(name)
        _until("server-a's allowed request to pass", lambda: lab.fetch("server-a", "http://allowed.example/",
                                                                       timeout=2).ok)
        passing = time.monotonic() - t0

        t1 = time.monotonic()
        subprocess.run([*tf, "apply", "-auto-approve", "-input=false", f"-var=endpoint={url}",
                        "-var=design=firewall-first"], env=env, check=True, capture_output=True)
        switch_applied = time.monotonic() - t1
        _settled(url)
        lab = Lab(name)
        alert = lab.fetch_for_alert("server-a", "https://blocked.example/", {"dest_port": 443}, timeout=15)
        assert alert["src_ip"] == "10.0.136.108", alert
        switched = time.monotonic() - t1

        t2 = time.monotonic()
        subprocess.run([*tf, "destroy", "-auto-approve", "-input=false", f"-var=endpoint={url}"], env=env,
                       check=True, capture_output=True)
        _settled(url)
        _until("the lab's containers to go", lambda: not lab.docker.containers(name))
        destroyed = time.monotonic() - t2
        return {"apply_s": applied, "apply_to_traffic_s": passing, "switch_apply_s": switch_applied,
                "switch_to_server_alert_s": switched, "destroy_to_no_container_s": destroyed}
    finally:
        served.send_signal(signal.SIGTERM)
        served.wait(timeout=180)
        log.close()


def _answers(url: str) -> bool:
    try:
        requests.get(url + STATUS_PATH, timeout=2)
        return True
    except requests.ConnectionError:
        return False


def run(runs: int, name: str = NAME) -> dict:
    mirror = find_provider_mirror()
    if shutil.which("terraform") is None or mirror is None:
        return {"skipped": "Terraform or the hashicorp/aws provider mirror is not on this machine"}
    Lab(name).down()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for f in (ROOT / "docs" / "examples" / "terraform").glob("*.tf"):
            shutil.copy(f, work)
        (work / "terraform.rc").write_text(cli_config(mirror))
        env = {**os.environ, "TF_CLI_CONFIG_FILE": str(work / "terraform.rc"), "TF_IN_AUTOMATION": "1",
               "CHECKPOINT_DISABLE": "1"}
        subprocess.run(["terraform", "-chdir=" + str(work), "init", "-input=false"], env=env, check=True,
                       capture_output=True)
        samples = [one_run(work, env, name) for _ in range(runs)]
    return {key: [round(s[key], 2) for s in samples] for key in samples[0]}
