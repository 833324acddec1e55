"""Shell completion: the script `nfwlab completion bash` prints, run by a real bash.

Each test sources the script, sets COMP_WORDS and COMP_CWORD as bash does when TAB is pressed, calls the
completion function and reads COMPREPLY. Node names come from `nfwlab --name LAB nodes`: a stub `nfwlab`
on PATH stands in for it, prints three names and records how it was called.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.cli import main, parser
from lab.lab import topology_names

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

STUB = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/calls"
[ "$3" = nodes ] && printf 'server-a\\nserver-b\\nfw-a\\n'
"""


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "nfwlab.bash"
    out = subprocess.run([*_nfwlab(), "completion", "bash"], check=True, capture_output=True, text=True).stdout
    path.write_text(out)
    return path


def _nfwlab() -> list[str]:
    import sys
    return [sys.executable, "-m", "lab"]


@pytest.fixture
def stub(tmp_path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nfwlab").write_text(STUB)
    (bin_dir / "nfwlab").chmod(0o755)
    return bin_dir


def complete(script: Path, words: list[str], cwd: Path, path_dir: Path | None = None) -> list[str]:
    """COMPREPLY for the command line `words`, the cursor on the last word."""
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    program = (f"source '{script}'\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
               "_nfwlab\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    env = {"PATH": f"{path_dir}:/usr/bin:/bin" if path_dir else "/usr/bin:/bin", "HOME": str(cwd)}
    res = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], cwd=cwd, env=env, capture_output=True,
                         text=True, check=True)
    assert res.stderr == "", res.stderr
    return [line for line in res.stdout.splitlines() if line]


def _commands() -> set[str]:
    for action in parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("the parser has no commands")


def test_every_command_of_the_parser_completes(script, tmp_path):
    assert set(complete(script, ["nfwlab", ""], tmp_path)) == _commands()
    assert complete(script, ["nfwlab", "st"], tmp_path) == ["status"]
    assert complete(script, ["nfwlab", "--name", "hfa", "sw"], tmp_path) == ["switch"]  # --name's value skipped


def test_a_command_completes_its_own_options(script, tmp_path):
    assert complete(script, ["nfwlab", "up", "--to"], tmp_path) == ["--topology"]
    assert set(complete(script, ["nfwlab", "routes", "--d"], tmp_path)) == {"--design", "--diff"}
    assert "--name" in complete(script, ["nfwlab", "status", "--"], tmp_path)  # also after the command
    assert complete(script, ["nfwlab", "--"], tmp_path) == ["--help", "--name", "--progress"]


def test_topology_names_complete_where_a_topology_goes(script, tmp_path):
    assert complete(script, ["nfwlab", "up", "--topology", "fi"], tmp_path) == ["firewall-first"]
    assert complete(script, ["nfwlab", "switch", ""], tmp_path) == topology_names()
    assert complete(script, ["nfwlab", "routes", "--topology", "nat-first", "--diff", "f"], tmp_path) == [
        "firewall-first"]
    (tmp_path / "mine.yaml").write_text("")
    assert complete(script, ["nfwlab", "up", "--topology", "mi"], tmp_path) == ["mine.yaml"]  # or a file


def test_choices_and_policy_names(script, tmp_path):
    assert complete(script, ["nfwlab", "alerts", "--format", ""], tmp_path) == ["text", "eve", "aws"]
    assert complete(script, ["nfwlab", "policy", "c"], tmp_path) == ["check", "convert"]
    # A shipped policy's name finds it from any directory, so the names are offered everywhere, with files.
    assert complete(script, ["nfwlab", "up", "--policy", "de"], tmp_path) == ["deny-domains"]
    (tmp_path / "deny-mine.json").write_text("{}")
    assert complete(script, ["nfwlab", "policy", "apply", "deny"], tmp_path) == ["deny-domains", "deny-mine.json"]


def test_node_names_come_from_the_lab_named_on_the_line(script, tmp_path, stub):
    assert complete(script, ["nfwlab", "--name", "hfb", "exec", "ser"], tmp_path, stub) == ["server-a", "server-b"]
    assert complete(script, ["nfwlab", "curl", "--name", "hfc", ""], tmp_path, stub) == ["server-a", "server-b",
                                                                                          "fw-a"]
    assert complete(script, ["nfwlab", "trace", "f"], tmp_path, stub) == ["fw-a"]
    assert complete(script, ["nfwlab", "--name", "=", "hfd", "diagram", "--server", "server-b"], tmp_path,
                    stub) == ["server-b"]
    assert (stub / "calls").read_text().splitlines() == [
        "--name hfb nodes", "--name hfc nodes", "--name default nodes", "--name hfd nodes"]


def test_exec_completes_files_after_the_node_not_options(script, tmp_path, stub):
    (tmp_path / "notes.txt").write_text("")
    assert complete(script, ["nfwlab", "exec", "server-a", "--", "cat", "no"], tmp_path, stub) == ["notes.txt"]
    assert complete(script, ["nfwlab", "exec", "server-a", "ip", "--"], tmp_path, stub) == []


def test_nodes_prints_a_topologys_nodes_one_a_line(capsys):
    assert main(["nodes", "--name", "hfe", "--topology", "multi-az"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "vpc-router", "server-a", "server-c", "nat-a", "nat-c", "fw-a", "fw-c", "internet-gateway", "internet"]


def test_nodes_of_a_lab_that_is_not_up_says_how(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NFWLAB_STATE_ROOT", str(tmp_path))
    assert main(["--name", "hff", "nodes"]) == 4
    err = capsys.readouterr().err
    assert "lab hff is not up" in err and "`nfwlab --name hff up`" in err
