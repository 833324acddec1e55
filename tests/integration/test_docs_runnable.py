"""What the documentation says is what happens: every block of commands in the README and docs/*.md that the
page does not mark "not run by the tests" runs here as written, page by page in order, against a lab of the
test's own, from a directory outside the repository.

As a reader would run them: the working directory is an empty temporary folder (with `.venv` there, since the
README's walk starts with `. .venv/bin/activate`), `nfwlab` is the installed one, and the lab is the one
`NFWLAB_NAME` names, so `nfwlab status` runs unchanged; a Python snippet's `Lab("demo")` is the one change made
to a block (the lab's name). A page's file blocks titled with a file name (```yaml title="cases.yaml") are
written there first. A block runs on that lab up in nat-first with the default policy, as `make lab-up` leaves
it (brought up if the page's earlier blocks left it down); a block that brings a lab up itself starts on it
down; commands that give their own topology run on none. What a page says a command gives is checked: the
exit code a comment states ("(exit 1)", else 0), the addresses a comment names, the addresses and ids a
transcript shows, and the phrases docblocks.KEY_PHRASES lists. A Python snippet checks
itself with its own asserts; test functions run under pytest with the plugin's fixtures on the same lab.
The lab is removed at the end, also when a block fails."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from docblocks import LAB_CALL, ROOT, Block, Command, commands, files_by_page, key_phrases, key_tokens, runnable_by_page

from lab import Lab
from lab.pytest_plugin import worker_lab_name

VENV_BIN = Path(sys.executable).parent
BLOCK_TIMEOUT = 300.0
SERVING = re.compile(r"^nfwlab( --name \S+)? ui\b")   # serves until stopped: started, asked once, stopped
URL = re.compile(r"http://127\.0\.0\.1:(\d+)\S*")


PAGES, _ = runnable_by_page()
FILES = files_by_page()


@pytest.fixture(scope="module")
def lab_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """The test's own lab, removed at the end whatever happened."""
    name = worker_lab_name(f"{request.config.getoption('--nfwlab-name')}-docs")
    Lab(name).down(purge=True)
    yield name
    Lab(name).down(purge=True)


def _env(lab_name: str) -> dict[str, str]:
    """The reader's shell: the installed nfwlab first on PATH, the test's lab as the default lab, nothing of
    the test session's pytest (its xdist worker name would rename the plugin's lab)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NFWLAB_NAME"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NFWLAB_NAME"] = lab_name
    return env


def _script(cmds: list[Command]) -> str:
    """A bash script that runs the commands as written, one after another in one shell (so `. activate`
    carries on), each framed by markers with its output and exit code."""
    out = ["exec 2>&1"]
    for i, cmd in enumerate(cmds):
        out.append(f"printf '\\n@@cmd {i}@@\\n'; __t=$EPOCHREALTIME")
        if SERVING.match(cmd.command):
            port = URL.search(cmd.comment)
            assert port, f"{cmd.command!r}: its comment names no http://127.0.0.1:PORT to ask"
            out += [f"{cmd.command} &", "__pid=$!",
                    "for __i in $(seq 300); do",
                    f"  (exec 3<>/dev/tcp/127.0.0.1/{port[1]}) 2>/dev/null && break",
                    "  kill -0 $__pid 2>/dev/null || break", "  sleep 0.1", "done",
                    f"curl -s -o /dev/null -w 'served: HTTP %{{http_code}}\\n' {port[0]}",
                    "__rc=$?", "kill $__pid; wait $__pid 2>/dev/null", "(exit $__rc)"]
        else:
            out.append(cmd.command)
        out.append("printf '\\n@@rc %s %s %s@@\\n' \"$?\" \"$__t\" \"$EPOCHREALTIME\"")
    return "\n".join(out) + "\n"


def _run_shell(block: Block, cwd: Path, env: dict[str, str], runs: dict[str, int]) -> None:
    """Runs the block's commands; `runs` counts each command's runs on the page so far."""
    cmds = commands(block)
    assert cmds, f"{block.where}: no command found in a block marked runnable"
    res = subprocess.run(["bash", "-c", _script(cmds)], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=BLOCK_TIMEOUT)
    parts = re.split(r"\n@@cmd (\d+)@@\n", res.stdout)
    seen: dict[int, tuple[str, int]] = {}
    for index, body in zip(parts[1::2], parts[2::2], strict=True):
        m = re.search(r"\n@@rc (\d+) ([\d.]+) ([\d.]+)@@\n?$", body)
        seen[int(index)] = (body[:m.start()] if m else body, int(m[1]) if m else -1)
        if m:  # shown with -s, or with the failure: where a page's time goes
            print(f"{block.where}: {float(m[3]) - float(m[2]):6.2f}s  {commands(block)[int(index)].command}")
    for i, cmd in enumerate(cmds):
        where = f"{block.where}: `{cmd.command}`"
        assert i in seen, f"{where} never ran (the block stopped before it):\n{res.stdout[-3000:]}"
        output, code = seen[i]
        assert code == cmd.exit_code, (f"{where} exited {code}, the page says {cmd.exit_code}; it printed:\n"
                                       f"{output}")
        runs[cmd.command] = runs.get(cmd.command, 0) + 1
        expected = key_tokens(cmd.comment) | key_tokens(cmd.shown) | set(key_phrases(block.page, cmd.command,
                                                                                     runs[cmd.command]))
        missing = sorted(t for t in expected if t not in output)
        assert not missing, f"{where}: the page says its output has {missing}; it printed:\n{output}"


def _run_python(block: Block, name: str, cwd: Path, env: dict[str, str]) -> None:
    code = LAB_CALL.sub(f'Lab("{name}"', block.text)
    script = cwd / f"snippet_{Path(block.page).stem}_{block.line}.py"
    script.write_text(code)
    res = subprocess.run([str(VENV_BIN / "python"), script.name], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=BLOCK_TIMEOUT)
    assert res.returncode == 0, f"{block.where}: the snippet failed (exit {res.returncode}):\n{res.stdout}" \
                                f"{res.stderr[-4000:]}"


def _run_pytest(blocks: list[Block], name: str, cwd: Path, env: dict[str, str]) -> None:
    """Test functions of one page, in one file as a reader would keep them, with the plugin on the test's lab."""
    where = ", ".join(b.where for b in blocks)
    module = cwd / f"test_{Path(blocks[0].page).stem.replace('-', '_')}_snippets.py"
    module.write_text("\n\n".join(b.text for b in blocks))
    tests = sum(len(re.findall(r"^def test_", b.text, re.M)) for b in blocks)
    res = subprocess.run([str(VENV_BIN / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", module.name,
                          "--nfwlab-name", name], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=BLOCK_TIMEOUT)
    assert res.returncode == 0, f"{where}: the test functions failed:\n{res.stdout[-4000:]}{res.stderr[-2000:]}"
    # Parametrized tests count once per parameter: at least one result per function, none failed or skipped.
    passed = re.search(r"(\d+) passed", res.stdout)
    assert passed and int(passed[1]) >= tests and "skipped" not in res.stdout, res.stdout[-2000:]


def _units(blocks: list[Block]) -> list[list[Block]]:
    """The page's blocks as they run: consecutive test-function blocks together (one test file), others alone."""
    units: list[list[Block]] = []
    for block in blocks:
        if block.is_pytest and units and units[-1][0].is_pytest:
            units[-1].append(block)
        else:
            units.append([block])
    return units


@pytest.mark.parametrize("page", list(PAGES))
def test_the_page_runs_as_written(page: str, lab_name: str, tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(VENV_BIN.parent)
    for block in FILES.get(page, []):
        (tmp_path / str(block.file_name)).write_text(block.text)
    env = _env(lab_name)
    Lab(lab_name).down(purge=True)  # whatever the page before left
    runs: dict[str, int] = {}
    try:
        for unit in _units(PAGES[page]):
            first = unit[0]
            if first.starts_a_lab:
                Lab(lab_name).down(purge=True)
            elif first.needs_lab and Lab(lab_name).topology_name is None:
                Lab(lab_name).up("nat-first")  # as `make lab-up` leaves it (or brings it back after a block took it down)
            started = time.monotonic()
            if first.is_pytest:
                _run_pytest(unit, lab_name, tmp_path, env)
            elif first.lang == "python":
                _run_python(first, lab_name, tmp_path, env)
            else:
                _run_shell(first, tmp_path, env, runs)
            print(f"{first.where}: {time.monotonic() - started:6.2f}s  the block ({first.lang})")
    finally:
        Lab(lab_name).down(purge=True)
    assert not tmp_path.resolve().is_relative_to(ROOT)
