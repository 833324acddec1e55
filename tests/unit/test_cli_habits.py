"""A person's habits: `--name` before or after any command, hints that name the lab, phase lines for long
steps only where a person watches, and output piped into a reader that stops early ending quietly."""
from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys

import pytest
from fakes import FakeDocker, FakeKernel

from lab import deploy, progress
from lab.cli import SIGPIPE_STATUS, _node_command, main, parser
from lab.errors import LabError, StateError
from lab.lab import Lab


def _commands() -> list[tuple[str, argparse.ArgumentParser]]:
    for action in parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices.items())
    raise AssertionError("the parser has no commands")


def _minimal(sub: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """The fewest words the command takes (its positionals and required options), and the options among them."""
    words: list[str] = []
    options: list[str] = []
    for action in sub._actions:
        value = str(next(iter(action.choices))) if action.choices else "1" if action.type in (int, float) else "x"
        if action.option_strings and action.required:
            options += [action.option_strings[0], value]
        elif not action.option_strings and action.nargs not in ("*", "?", argparse.REMAINDER):
            words.append(value)
    return words, options


@pytest.mark.parametrize("command, sub", _commands(), ids=[name for name, _ in _commands()])
def test_name_goes_before_or_after_every_command(command, sub):
    words, options = _minimal(sub)
    top = parser()

    def parse(argv: list[str]) -> argparse.Namespace:
        args = top.parse_args(argv)
        if command == "exec":  # what follows the node is the node's command: --name there is the lab's
            assert _node_command(args) == []
        return args
    fn = parse([command, *words, *options]).fn
    forms = [["--name", "hfa", command, *words, *options],  # before the command
             [command, "--name", "hfa", *words, *options],  # right after it
             [command, *words, *options, "--name", "hfa"]]  # at the end
    for argv in forms:
        args = parse(argv)
        assert (args.name, args.fn) == ("hfa", fn), argv
    assert parse([command, *words, *options]).name == "default"
    assert parse(["--name", "hfa", command, "--name", "hfb", *words, *options]).name == "hfb"  # the last
    assert parse([command, *words, *options, "--progress"]).progress is True
    assert parse(["--progress", command, *words, *options]).progress is True


def test_exec_takes_the_lab_options_before_the_node_command():
    args = parser().parse_args(["exec", "server-a", "--name", "hfc", "--", "ip", "--name", "x"])
    assert _node_command(args) == ["ip", "--name", "x"] and args.name == "hfc"
    args = parser().parse_args(["exec", "server-a", "--", "ip", "route"])
    assert _node_command(args) == ["ip", "route"] and args.name == "default"


def test_a_hint_names_the_lab_the_command_was_for():
    error = StateError("it broke", "see `nfwlab status`, then `nfwlab down; nfwlab up`; or `nfwlab --name x up`")
    assert error.for_lab("hfd").splitlines()[1] == (
        "  -> see `nfwlab --name hfd status`, then `nfwlab --name hfd down; nfwlab --name hfd up`; "
        "or `nfwlab --name x up`")
    assert error.for_lab("default") == str(error)
    assert LabError("no hint").for_lab("hfd") == "no hint"


def test_the_cli_prints_hints_for_the_lab_named_after_the_command(capsys):
    assert main(["policy", "apply", "--name", "hfe"]) == 1
    err = capsys.readouterr().err
    assert "-> `nfwlab --name hfe policy apply POLICY.json [RULE-GROUP.json ...]`" in err
    assert parser().parse_args(["--name", "hfe", "policy", "apply", "POLICY.json"]).name == "hfe"


# ------------------------------------------------------------------------------------------------ progress
class Terminal(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty, setting, forced, shown", [
    (True, "", False, True), (False, "", False, False),  # a terminal sees them; pipes and CI logs do not
    (False, "1", False, True), (False, "", True, True),  # NFWLAB_PROGRESS=1 or --progress force them
    (True, "0", False, False), (True, "0", True, True),  # NFWLAB_PROGRESS=0 silences them, --progress wins
])
def test_phase_lines_go_to_a_terminal_unless_told_otherwise(tty, setting, forced, shown):
    assert progress.wanted(Terminal(tty), forced, {"NFWLAB_PROGRESS": setting}) is shown


def test_a_phase_line_says_the_step_the_phase_and_the_seconds_since_the_step_began():
    now = iter([100.0, 102.34])
    out = Terminal(True)
    say = progress.PhaseLines("up", out, clock=lambda: next(now))
    say("wiring links and routes")
    assert out.getvalue() == "nfwlab up [2.3s] wiring links and routes\n"


def test_up_down_and_repair_say_their_phases_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(deploy.os, "geteuid", lambda: 0)
    lab = Lab("unit", state_dir=tmp_path / "unit", docker=FakeDocker(), kernel=FakeKernel())
    phases: list[str] = []
    with progress.reporting(phases.append):
        lab.up("nat-first")
    assert phases == [
        "checking the topology and the policy", "checking root, Docker and the images", "writing the lab's files",
        "starting 7 containers", "wiring links and routes",
        "waiting for every node to be ready (firewall endpoints: Suricata's 'Engine started')",
        "applying the policy's stateless rules"]
    with progress.reporting(phases.append):
        lab.down()
    assert phases[7] == "removing 7 containers"
    lab.up("nat-first")  # without a reporter: nothing is said, nothing printed
    assert len(phases) == 8 and capsys.readouterr() == ("", "")
    lab.docker.stop("unit", "nat-gateway")
    with progress.reporting(phases.append):
        lab.repair()
    assert phases[8:] == ["bringing back nat-gateway", "wiring their links and routes again",
                          "waiting for them to be ready"]


def test_the_cli_prints_phases_on_stderr_when_asked(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("NFWLAB_STATE_ROOT", str(tmp_path))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # `up` stops at its root check, after two phases
    monkeypatch.delenv("NFWLAB_PROGRESS", raising=False)
    assert main(["up", "--name", "hff"]) == 3
    assert "nfwlab up [" not in capsys.readouterr().err  # stderr is not a terminal here
    assert main(["up", "--name", "hff", "--progress"]) == 3
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("nfwlab up [")]
    assert [line.split("] ", 1)[1] for line in lines] == ["checking the topology and the policy",
                                                          "checking root, Docker and the images"]
    assert out == "" and "needs root" in err


# ------------------------------------------------------------------------------------------------ pipes
def _nfwlab(argv: list[str], state_root, **kwargs) -> subprocess.CompletedProcess:
    """`nfwlab ARGV` with labs of its own (none up)."""
    return subprocess.run([sys.executable, "-m", "lab", *argv], text=True, timeout=60,
                          env={**os.environ, "NFWLAB_STATE_ROOT": str(state_root)}, **kwargs)


def _into_closed_pipe(argv: list[str], state_root) -> subprocess.CompletedProcess:
    """`nfwlab ARGV | reader` where the reader has gone before the first write (as `head -1` after one line)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return _nfwlab(argv, state_root, stdout=write_end, stderr=subprocess.PIPE)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("argv", [["check", "--topology", "scale-50"], ["completion", "bash"]])
def test_output_into_a_closed_pipe_ends_quietly(argv, tmp_path):
    whole = _nfwlab(argv, tmp_path, capture_output=True)
    assert whole.returncode == 0 and len(whole.stdout) > 1000  # there was output to write
    res = _into_closed_pipe(argv, tmp_path)
    # as `ls | head`: no traceback; stderr holds at most the note that the lab is down (`check` then says which
    # topology it used)
    assert res.returncode == SIGPIPE_STATUS
    assert all(line.startswith("note: lab default is down: using ") for line in res.stderr.splitlines()), res.stderr


def test_help_into_a_closed_pipe_ends_quietly(tmp_path):
    res = _into_closed_pipe(["--help"], tmp_path)
    assert (res.returncode, res.stderr) == (0, "")
