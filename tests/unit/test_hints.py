"""Every hint the CLI can print is a command that runs.

The hints are read from the source of lab/ (ast), not from a list kept by hand: the `hint` of every error
(the second argument of LabError and its subclasses, the `fix` of a document's `fail`, the `hint` of a
Wait) and every other string the code prints. An f-string's fields become sample values. Each command
written in backticks, `nfwlab ...`, is parsed by the real parser (lab.cli.parser(), nothing run); each
`make TARGET` names a target of the Makefile. A hint that names nfwlab outside backticks is refused too:
it would escape this check.
"""
from __future__ import annotations

import argparse
import ast
import re
import shlex
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from fakes import FakeDocker, FakeKernel

from lab import cli, deploy
from lab.cli import parser
from lab.errors import ConfigError
from lab.lab import Lab
from lab.model import load_topology
from lab.nodes import services
from lab.shipped import TOPOLOGIES_DIR, topology_names

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "lab"
SAMPLE = "sample"  # what an f-string field becomes: one word, no leading '-'
SAMPLES = {"port": "8088"}  # fields whose name asks for a kind of value (an option with type=int)
METAVARS = {"PORT": "8088", "N": "1"}  # a synopsis's placeholders for numbers
BACKTICKED = re.compile(r"`([^`]*)`")
HINT_KEYWORDS = ("hint", "fix")


@dataclass(frozen=True)
class Text:
    """A string the code can print, with its sample fields filled in, and where it is."""

    where: str
    text: str
    is_hint: bool


def _error_classes(trees: dict[Path, ast.Module]) -> set[str]:
    """LabError and every class that derives from it, in any module of lab/."""
    found = {"LabError"}
    grew = True
    while grew:
        grew = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in found and any(
                        (b.id if isinstance(b, ast.Name) else getattr(b, "attr", None)) in found for b in node.bases):
                    found.add(node.name)
                    grew = True
    return found


def _sample(expr: ast.expr) -> str:
    name = ast.unparse(expr)
    for word, value in SAMPLES.items():
        if re.search(rf"\b{word}\b", name):
            return value
    return SAMPLE


def _texts(node: ast.AST) -> list[str] | None:
    """The texts a string expression can have (both branches of a conditional), None if it is not one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        out = [""]
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                piece = _texts(part.value) or [_sample(part.value)]
            else:
                piece = [str(ast.literal_eval(part))]
            out = [a + b for a in out for b in piece]
        return out
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _texts(node.left), _texts(node.right)
        if left is not None or right is not None:
            return [a + b for a in (left or [SAMPLE]) for b in (right or [SAMPLE])]
    if isinstance(node, ast.IfExp):
        body, orelse = _texts(node.body), _texts(node.orelse)
        if body is not None or orelse is not None:
            return (body or []) + (orelse or [])
    return None


def _call_name(call: ast.Call) -> str:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _hint_args(call: ast.Call, errors: set[str]) -> list[ast.expr]:
    """The arguments of `call` that are an error's hint."""
    name = _call_name(call)
    hints = [k.value for k in call.keywords if k.arg in HINT_KEYWORDS]
    if name in errors and len(call.args) > 1:
        hints.append(call.args[1])
    if name == "fail" and len(call.args) > 2:
        hints.append(call.args[-1])
    return hints


def _docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def printed_texts() -> list[Text]:
    """Every hint, and every other string (docstrings and comments aside) of lab/."""
    trees = {path: ast.parse(path.read_text(), str(path)) for path in sorted(LAB.rglob("*.py"))}
    errors = _error_classes(trees)
    out: list[Text] = []
    for path, tree in trees.items():
        docs, hints = _docstrings(tree), set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                hints |= {id(a) for a in _hint_args(node, errors)}
        stack: list[ast.AST] = [tree]
        while stack:
            node = stack.pop()
            texts = None if id(node) in docs else _texts(node)
            if texts is None:
                stack.extend(ast.iter_child_nodes(node))
                continue
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
            out += [Text(where, t, id(node) in hints) for t in texts]
    return out


def _alternatives(command: str) -> list[str]:
    """A synopsis's forms: `[X]` with and without X; `...` dropped (`nfwlab policy apply F [G ...]`)."""
    command = command.replace("...", " ")
    inner = re.search(r"\[([^\[\]]*)\]", command)
    if not inner:
        return [command]
    a, b = command[:inner.start()], command[inner.end():]
    return _alternatives(a + inner.group(1) + b) + _alternatives(a + b)


def commands(texts: list[Text], program: str) -> list[tuple[str, str]]:
    """(where, command) of every `PROGRAM ...` in backticks; `a; b` and `a && b` are two commands."""
    found = []
    for t in texts:
        for quoted in BACKTICKED.findall(t.text):
            for part in re.split(r";|&&", quoted):
                if part.strip().startswith(program + " ") or part.strip() == program:
                    found.append((t.where, part.strip()))
    return found


TEXTS = printed_texts()


def test_the_scan_finds_the_hints_it_is_about():
    """The scan sees the hints this test exists for (a scan that finds nothing passes everything)."""
    found = {c for _, c in commands(TEXTS, "nfwlab")}
    assert f"nfwlab --name {SAMPLE} down" in found  # `up` of a lab that exists (lab/deploy.py)
    assert "nfwlab exec ENDPOINT -- cat /var/log/suricata/suricata.log" in found  # lab/engine.py's LOG_HINT
    assert len(found) > 20
    assert {c for _, c in commands(TEXTS, "make")} >= {"make images", "make lab-up"}
    hints = {t.text for t in TEXTS if t.is_hint}
    assert f"use it, take it down with `nfwlab --name {SAMPLE} down`, or pick another --name" in hints
    assert f"see `nfwlab exec {SAMPLE} -- tail /var/log/suricata/suricata.log`" in hints  # a Wait's hint


def _command_names() -> set[str]:
    found: set[str] = set()
    for action in parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            found |= set(action.choices)
    return found


def problem(command: str) -> str | None:
    """Why `command` (nfwlab ...) would not run as written, or None; argparse's own message goes to stderr."""
    words = command.split()
    if len(words) == 2 and not words[1].startswith("-"):  # "(so `nfwlab import` reads it back)": a reference
        return None if words[1] in _command_names() else f"there is no command {words[1]}"
    top = parser()
    for form in _alternatives(command):
        argv = [METAVARS.get(w, w) for w in shlex.split(form)[1:]]
        try:
            top.parse_args(argv)
        except SystemExit:
            return f"does not parse as nfwlab {' '.join(argv)!r}"
    return None


def test_the_check_refuses_commands_that_would_not_run(capsys):
    assert problem("nfwlab --name x down") is None and problem("nfwlab down --name x") is None
    assert problem("nfwlab down --nmae x") and problem("nfwlab curl server-a") and problem("nfwlab repiar")
    assert problem("nfwlab serve --port PORT") is None and problem("nfwlab serve --port NOW")
    assert problem("nfwlab policy apply POLICY.json [RULE-GROUP.json ...] [--oops]")  # every form is tried


@pytest.mark.parametrize("where, command", sorted(set(commands(TEXTS, "nfwlab"))))
def test_every_nfwlab_command_in_a_hint_parses(where, command):
    assert problem(command) is None, f"{where}: the hint `{command}` {problem(command)}"


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.M)}


@pytest.mark.parametrize("where, command", sorted(set(commands(TEXTS, "make"))))
def test_every_make_target_in_a_hint_exists(where, command):
    words = [w for w in shlex.split(command)[1:] if "=" not in w]
    assert words, f"{where}: `{command}` names no target"
    missing = [w for w in words if w not in _make_targets()]
    assert not missing, f"{where}: `{command}`: no target {', '.join(missing)} in the Makefile"


def test_hints_write_nfwlab_commands_in_backticks():
    """A command outside backticks would be neither checked nor easy to copy: in a hint, and in any text that
    offers one after a colon ("try: nfwlab ...")."""
    offered = re.compile(r":\s+nfwlab\s+(--|(" + "|".join(sorted(_command_names())) + r")\b)")
    loose = []
    for t in TEXTS:
        bare = BACKTICKED.sub("", t.text)
        if t.is_hint and re.search(r"\bnfwlab\s+(-|[a-z])", bare) or offered.search(bare):
            loose.append(f"{t.where}: {t.text!r}")
    assert not loose, "nfwlab commands outside backticks:\n" + "\n".join(loose)


# ------------------------------------------------------------------------------------ node names in hints
# A hint that names a node must name one of the topology the user runs: scale-50 has app-1 ... app-50 and no
# server-a, multi-az has fw-a and fw-c and no "firewall".
TOPOLOGIES = {name: load_topology(TOPOLOGIES_DIR / f"{name}.yaml") for name in topology_names()}
NODES = {name: set(services(t.vpc)) for name, t in TOPOLOGIES.items()}
EVERYWHERE = set.intersection(*NODES.values())  # vpc-router, internet-gateway, internet
NODE_ARGUMENTS = ("node", "source", "server")  # exec/curl NODE, trace SOURCE, --server, --node


def hint_nodes(command: str) -> list[str]:
    """The node names a hint's command gives (exec, curl, trace, --server, --node), less the placeholders (NODE,
    an f-string's field)."""
    found = []
    for form in _alternatives(command):
        try:
            args = parser().parse_args([METAVARS.get(w, w) for w in shlex.split(form)[1:]])
        except SystemExit:
            continue  # test_every_nfwlab_command_in_a_hint_parses reports it
        found += [v for v in (getattr(args, a, None) for a in NODE_ARGUMENTS)
                  if isinstance(v, str) and v != SAMPLE and not v.isupper()]
    return found


def test_the_topologies_differ_in_their_node_names():
    """What the checks below stand on: the shipped topologies are found, and the default's servers are not
    every topology's."""
    assert {"nat-first", "multi-az", "scale-50"} <= set(TOPOLOGIES)
    assert "server-a" not in EVERYWHERE and "firewall" not in EVERYWHERE and "vpc-router" in EVERYWHERE
    assert hint_nodes("nfwlab trace server-a blocked.example:443") == ["server-a"]
    assert hint_nodes(f"nfwlab --name {SAMPLE} curl {SAMPLE} https://blocked.example/") == []


@pytest.mark.parametrize("where, command", sorted(set(commands([t for t in TEXTS if t.is_hint], "nfwlab"))))
def test_a_node_a_hint_names_is_in_every_topology(where, command):
    """A node an error's hint writes in the code is in every topology, or the hint would name a node the lab may
    not have: the code takes it from the running topology instead (an f-string field). (`--help`'s examples
    are the default topology's: they are no hints.)"""
    fixed = [n for n in hint_nodes(command) if n not in EVERYWHERE]
    assert not fixed, f"{where}: `{command}` names {fixed}, which not every topology has"


def test_hints_name_no_node_of_the_default_topology_in_words():
    """The default topology's own names (server-a, server-b, nat-gateway) copied into a hint's words."""
    default_only = {n for n in NODES["nat-first"] - EVERYWHERE if "-" in n}
    assert default_only >= {"server-a", "server-b", "nat-gateway"}
    named = [f"{t.where}: {t.text!r}" for t in TEXTS if t.is_hint
             and default_only & set(re.findall(r"(?<![\w-])[a-z][a-z0-9]*(?:-[a-z0-9]+)+", t.text))]
    assert not named, "hints that name a node of nat-first only:\n" + "\n".join(named)


@pytest.fixture
def fake_cli(monkeypatch, tmp_path):
    """main() on labs of fakes (tests/unit/fakes.py) in tmp_path."""
    monkeypatch.setattr(deploy.os, "geteuid", lambda: 0)
    monkeypatch.setenv("NFWLAB_STATE_ROOT", str(tmp_path))
    monkeypatch.setattr(cli, "Lab", partial(Lab, docker=FakeDocker(), kernel=FakeKernel()))


@pytest.mark.parametrize("topology", ["nat-first", "multi-az", "scale-50"])
def test_the_up_hint_names_a_server_of_the_topology_started(topology, fake_cli, capsys):
    assert cli.main(["--name", "hints", "up", "--topology", topology]) == 0
    tried = next(line for line in capsys.readouterr().out.splitlines() if "try:" in line)
    nodes = [n for quoted in BACKTICKED.findall(tried) for n in hint_nodes(quoted)]
    servers = {s.name for s in TOPOLOGIES[topology].vpc.servers}
    assert nodes and set(nodes) <= servers, f"{tried!r} names {nodes}, not servers of {topology}"


@pytest.mark.parametrize("topology", ["nat-first", "multi-az", "scale-50"])
def test_the_trace_hint_names_a_server_of_the_topology_traced(topology, tmp_path):
    with pytest.raises(ConfigError) as e:
        Lab("hints", state_dir=tmp_path / "hints").trace("no-such-server", "blocked.example", topology=topology)
    nodes = [n for quoted in BACKTICKED.findall(e.value.hint) for n in hint_nodes(quoted)]
    servers = {s.name for s in TOPOLOGIES[topology].vpc.servers}
    assert nodes and set(nodes) <= servers, f"{e.value.hint!r} names {nodes}, not servers of {topology}"
