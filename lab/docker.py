"""Docker: the one module that talks to the Docker Engine.

Container lifecycle goes through Docker Compose (the lab's compose file is
made from its topology by lab/compose.py) driven by testcontainers' DockerCompose;
inspection, exec and label-based cleanup go through the Docker SDK.
"""
from __future__ import annotations

import functools
import io
import os
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests
from testcontainers.compose import DockerCompose

from .errors import EnvironmentProblem, NodeError

LAB_LABEL = "io.nfwlab.lab"
ROLE_LABEL = "io.nfwlab.role"
SERVICE_LABEL = "com.docker.compose.service"


@dataclass(frozen=True)
class Container:
    id: str
    service: str
    role: str
    status: str
    pid: int = 0  # its main process (its network namespace); 0 unless asked for (`containers(with_pids=True)`)
    started: str = ""  # when its current run started (a new run: a new network namespace); "" as `pid`

    @property
    def running(self) -> bool:
        return self.status == "running"


@functools.cache
def _client(docker_host: str | None) -> docker.DockerClient:
    c = docker.from_env(timeout=60)
    c.ping()
    return c


def client() -> docker.DockerClient:
    """A Docker SDK client, checked once per engine address (DOCKER_HOST) and then reused."""
    try:
        return _client(os.environ.get("DOCKER_HOST"))
    except Exception as e:  # the SDK raises several kinds for "no engine"
        raise EnvironmentProblem(
            f"cannot reach the Docker Engine ({e.__class__.__name__}: {str(e)[:200]})",
            "start it (`systemctl start docker`, or `dockerd &`); `make lab-up` installs and starts it if missing",
        ) from None


@contextmanager
def _engine_errors(what: str) -> Iterator[None]:
    """The Docker SDK's errors (and its HTTP client's) as lab errors: a container that is gone is a node
    problem, anything else the engine's."""
    try:
        yield
    except docker.errors.NotFound as e:
        raise NodeError(f"cannot {what}: {e.explanation or e}", "the container is gone; see `nfwlab status`") from None
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        raise EnvironmentProblem(f"the Docker Engine failed to {what} ({e.__class__.__name__}: {str(e)[:300]})",
                                 "check that dockerd runs (`docker info`)") from None


def image_exists(name: str) -> bool:
    with _engine_errors(f"look up image {name}"):
        try:
            client().images.get(name)
            return True
        except docker.errors.ImageNotFound:
            return False


class ComposeProject:
    """The lab's compose project: one per lab name, variables from an env file."""

    def __init__(self, compose_dir: Path, env_file: Path, compose_file: str = "docker-compose.yml"):
        self.compose = DockerCompose(context=str(compose_dir), compose_file_name=compose_file,
                                     env_file=str(env_file), wait=True)

    def _run(self, what: str, call) -> None:
        try:
            call()
        except subprocess.CalledProcessError as e:
            out = (e.stderr or b"").decode(errors="replace").strip() or (e.stdout or b"").decode(errors="replace")
            raise NodeError(f"docker compose {what} failed (exit code {e.returncode}): {out[-1500:]}",
                            "read the message above; `nfwlab down` removes whatever was made") from None
        except FileNotFoundError:
            raise EnvironmentProblem("the docker CLI is missing",
                                     "install Docker Engine with the Compose v2 plugin (`make lab-up` does)") from None

    def up(self, services: list[str] | None = None) -> None:
        """Every service (or only those of `services`, the others untouched): created where missing, started
        where stopped; returns once their containers run."""
        self.compose.services = list(services) if services else None
        try:
            self._run("up", self.compose.start)
        finally:
            self.compose.services = None

    def down(self) -> None:
        self._run("down", lambda: self.compose.stop(down=True))

    def build(self, services: list[str]) -> None:
        cmd = [*self.compose.compose_command_property, "--profile", "build", "build", *services]
        res = subprocess.run(cmd, check=False, cwd=self.compose.context, capture_output=True, text=True)
        if res.returncode != 0:
            raise EnvironmentProblem(f"image build failed (exit code {res.returncode}): {res.stderr.strip()[-2000:]}",
                                     "check the package mirrors are reachable, then run `make images` again")


def containers(lab: str, with_pids: bool = False) -> dict[str, Container]:
    """The lab's containers by compose service name, found by the lab's label: one listing, plus one
    inspection per running container when their processes are asked for (`with_pids`)."""
    out = {}
    with _engine_errors(f"list the containers of lab {lab}"):
        found = client().api.containers(all=True, filters={"label": f"{LAB_LABEL}={lab}"})
    for c in found:
        labels = c.get("Labels") or {}
        name = labels.get(SERVICE_LABEL) or (c.get("Names") or ["?"])[0].lstrip("/")
        state = c.get("State", "")
        process, started = _run_of(c["Id"]) if with_pids and state == "running" else (0, "")
        out[name] = Container(c["Id"], name, labels.get(ROLE_LABEL, ""), state, process, started)
    return out


def _run_of(container_id: str) -> tuple[int, str]:
    """A container's main process and when it started (0 and "" if it is not running or is gone)."""
    with _engine_errors(f"inspect container {container_id[:12]}"):
        try:
            state = client().api.inspect_container(container_id)["State"]
        except docker.errors.NotFound:
            return 0, ""
    return int(state.get("Pid") or 0), str(state.get("StartedAt") or "")


def pid(container_id: str) -> int:
    """A container's main process (0 if it is not running or is gone)."""
    return _run_of(container_id)[0]


def start(container_id: str) -> None:
    """Starts a container that stopped (a restarting one is stopped first): it gets a new network namespace."""
    with _engine_errors(f"start container {container_id[:12]}"):
        c = client().containers.get(container_id)
        if c.status == "restarting":
            c.stop(timeout=1)
        c.start()


def unpause(container_id: str) -> None:
    """Resumes a paused container (its network namespace, links and all, stayed)."""
    with _engine_errors(f"unpause container {container_id[:12]}"):
        client().containers.get(container_id).unpause()


def remove_container(container_id: str) -> None:
    """Removes one container, running or not (gone already is fine)."""
    with _engine_errors(f"remove container {container_id[:12]}"):
        try:
            client().containers.get(container_id).remove(force=True)
        except docker.errors.NotFound:
            pass


def remove_lab_containers(lab: str) -> int:
    """Removes every container carrying the lab's label (after a crash, when compose cannot)."""
    n = 0
    with _engine_errors(f"remove the containers of lab {lab}"):
        for c in client().containers.list(all=True, filters={"label": f"{LAB_LABEL}={lab}"}, ignore_removed=True):
            try:
                c.remove(force=True)
                n += 1
            except docker.errors.NotFound:
                pass
    return n


@contextmanager
def _exec_errors(container_id: str, argv: list[str]) -> Iterator[None]:
    """A command run in a container that cannot run: the container is gone, or the engine refused."""
    try:
        yield
    except docker.errors.NotFound:
        raise NodeError(f"container {container_id[:12]} is gone", "run `nfwlab status`") from None
    except docker.errors.APIError as e:
        raise NodeError(f"cannot run {argv[0]} in {container_id[:12]}: {e.explanation}",
                        "is the node running? see `nfwlab status`") from None


def exec_in(container_id: str, argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Runs a command in a container; returns exit code, stdout, stderr."""
    with _exec_errors(container_id, argv):
        res = client().containers.get(container_id).exec_run(argv, demux=True, environment=env or {})
    out, err = res.output if res.output else (b"", b"")
    return res.exit_code, (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace")


def put_files(container_id: str, directory: str, files: dict[str, bytes]) -> None:
    """Writes files into a running container's `directory` (made if missing)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    with _exec_errors(container_id, ["put", directory]):
        c = client().containers.get(container_id)
        c.exec_run(["mkdir", "-p", directory])
        c.put_archive(directory, buf.getvalue())


def exec_lines(container_id: str, argv: list[str]) -> Iterator[str]:
    """Runs a command in a container and yields its output lines as it writes them (stderr lines
    prefixed "stderr: ")."""
    with _exec_errors(container_id, argv):
        api = client().api
        exec_id = api.exec_create(container_id, argv)["Id"]
        chunks = api.exec_start(exec_id, stream=True, demux=True)
    pending = {"": b"", "stderr: ": b""}
    for out, err in chunks:
        for prefix, data in (("", out), ("stderr: ", err)):
            if not data:
                continue
            pending[prefix] += data
            *lines, pending[prefix] = pending[prefix].split(b"\n")
            for line in lines:
                yield prefix + line.decode(errors="replace")
    for prefix, rest in pending.items():
        if rest:
            yield prefix + rest.decode(errors="replace")


def exec_detached(container_id: str, argv: list[str]) -> None:
    """Starts a command in a container and returns at once (its output is not kept)."""
    with _exec_errors(container_id, argv):
        client().containers.get(container_id).exec_run(argv, detach=True)


def logs(container_id: str, tail: int = 40, since: float | None = None) -> str:
    """The last `tail` lines of a container's output, only those written at or after `since` (epoch) if given."""
    try:
        with _engine_errors(f"read the output of container {container_id[:12]}"):
            return client().containers.get(container_id).logs(tail=tail, since=since).decode(errors="replace")
    except NodeError:
        return "(container is gone)"


def signal(container_id: str, name: str) -> None:
    with _engine_errors(f"send {name} to container {container_id[:12]}"):
        client().containers.get(container_id).kill(signal=name)


def compose_env(values: dict[str, str]) -> str:
    """An env file for `docker compose --env-file`."""
    for k, v in values.items():
        if "\n" in v:
            raise ValueError(f"{k} must be one line")
    return "".join(f"{k}={v}\n" for k, v in sorted(values.items()))


def run_script(path: Path, env: dict[str, str] | None = None, args: list[str] | None = None) -> str:
    res = subprocess.run(["bash", str(path), *(args or [])], check=False, capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    if res.returncode != 0:
        raise EnvironmentProblem(f"{path.name} failed (exit code {res.returncode}): {res.stderr.strip()[-1500:]}",
                                 "see the message above")
    return res.stdout.strip()
