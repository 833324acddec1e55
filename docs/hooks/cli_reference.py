"""MkDocs hook: the CLI reference in cli.md, generated from `lab.cli.parser()`.

cli.md holds a placeholder line, `<!-- cli-reference -->`; this hook replaces it
with one section per command (the top-level parser first, then every
subcommand, nested ones included), each with the command's description and its
`--help` text. The reference therefore always says what the installed parser
says. The width of the help text is fixed (COLUMNS=100) so the output does not
depend on the terminal that runs `mkdocs build`.
"""
from __future__ import annotations

import argparse
import os

from mkdocs.exceptions import PluginError

PLACEHOLDER = "<!-- cli-reference -->"
PAGE = "cli.md"
COLUMNS = "100"


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, list[str], argparse.ArgumentParser]]:
    """(name, aliases, parser) of each subcommand, in the order they were added; an alias (a second name for
    the same parser) is listed with its command, not as a command of its own."""
    found: dict[int, tuple[str, list[str], argparse.ArgumentParser]] = {}
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in action.choices.items():
            if id(sub) in found:
                found[id(sub)][1].append(name)
            else:
                found[id(sub)] = (name, [], sub)
    return list(found.values())


def _section(path: list[str], aliases: list[str], parser: argparse.ArgumentParser) -> list[str]:
    title = " ".join(path)
    out = [f"## {title}", ""]
    if aliases:
        out += ["Also: " + ", ".join(f"`{' '.join(path[:-1] + [a])}`" for a in aliases) + ".", ""]
    if parser.description:
        out += [parser.description.strip(), ""]
    out += ["```text", parser.format_help().rstrip(), "```", ""]
    for name, sub_aliases, sub in _subcommands(parser):
        out += _section(path + [name], sub_aliases, sub)
    return out


def reference() -> str:
    """The generated Markdown: `## nfwlab`, then `## nfwlab COMMAND` for every subcommand."""
    os.environ["COLUMNS"] = COLUMNS
    try:
        from lab.cli import parser
    except ImportError as e:  # the package is not installed in the Python running mkdocs
        raise PluginError(f"cli_reference hook: cannot import lab.cli ({e}); run mkdocs from the project's "
                          f"virtualenv (.venv/bin/mkdocs) after `pip install -e '.[dev]'`") from e
    top = parser()
    return "\n".join(_section([top.prog], [], top)).rstrip() + "\n"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    lines = markdown.splitlines()
    hits = [i for i, line in enumerate(lines) if line.strip() == PLACEHOLDER]
    if len(hits) != 1:
        raise PluginError(f"cli_reference hook: {PAGE} must hold the line {PLACEHOLDER} exactly once "
                          f"(found {len(hits)})")
    lines[hits[0]] = reference()
    return "\n".join(lines) + "\n"
