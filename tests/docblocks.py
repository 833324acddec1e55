"""The fenced blocks of the README and docs/*.md, classified: commands the docs test runs, commands it does not
run (with the reason the page shows), the output a page shows, and files a page lists.

The marking is the fence's info string: the first word is the language (GitHub highlights by it and ignores
the rest); a block the tests do not run carries `title="not run by the tests: REASON"`, which MkDocs shows as
the block's title. A block of commands without that title is run by tests/integration/test_docs_runnable.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_RUN = "not run by the tests:"
COMMAND_LANGS = {"sh", "python", "console"}   # shell lines, a Python snippet, a `$ `-prompted transcript
OUTPUT_LANGS = {"text"}                         # what a command printed (or a picture in characters)
FILE_LANGS = {"yaml", "json", "hcl", "ini"}     # a file's content

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
TITLE = re.compile(r'title="([^"]*)"')
EXIT = re.compile(r"\(exit (\d+)\b")
# Commands that need no running lab (a topology given, or nothing of a lab's): their page runs on none.
NO_LAB = re.compile(r"^(nfwlab (trace \S+ \S+|check) --topology \S+|source <\(nfwlab completion bash\))$")
LAB_CALL = re.compile(r'\bLab\("([^"]*)"')
# What a page states a command prints, checked in its output: addresses and CIDRs, AWS resource ids.
KEY_TOKEN = re.compile(r"\b(?:\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?|(?:rtb|nat|vpce|igw|subnet|vpc)-[0-9a-f]{8,17})\b")

# Phrases a command's output must hold, beyond what its comment or transcript shows: (page, command as written,
# which of its runs on the page: 1, 2, ... or 0 for every one) -> phrases.
KEY_PHRASES: dict[tuple[str, str, int], tuple[str, ...]] = {
    ("README.md", "nfwlab status", 0): ("topology nat-first", "firewall engine"),
    ("README.md", "nfwlab curl server-a https://allowed.example/", 0): ("HTTP 200",),
    ("README.md", "nfwlab who", 0): ("server-a (10.0.136.108)",),
    ("README.md", "nfwlab routes --diff firewall-first", 0): ("route table private-rtb",),
    ("README.md", "nfwlab trace server-a blocked.example:443", 0): ("by rule group deny-domains, sid 1",
                                                                    "=> the firewall drops it"),
    ("README.md", "nfwlab switch firewall-first", 0): ("firewall-first",),
    ("README.md", "nfwlab check --topology asymmetric", 0): ("asymmetric routing",),
    ("README.md", "nfwlab ui", 0): ("served: HTTP 200",),
    ("README.md", "nfwlab test cases.yaml", 0): ("3 cases: 2 passed, 1 failed", "expected drop, saw pass"),
    # the text block after "with it:" shows the shipped policy's explain of the blocked request
    ("docs/next-generation.md", "nfwlab explain", 1): ("verdict: dropped at tls:client_hello by rule 4",),
    ("docs/next-generation.md", "nfwlab explain", 2): ("alerted by rule 100", "verdict: accepted"),
}


def key_phrases(page: str, command: str, nth: int) -> tuple[str, ...]:
    """The phrases the nth run (1-based) of `command` on `page` must print."""
    return KEY_PHRASES.get((page, command, 0), ()) + KEY_PHRASES.get((page, command, nth), ())


def pages() -> list[Path]:
    """The README and every page of the site."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its title and its text."""
    page: str        # relative to the repository: "README.md", "docs/cli.md"
    line: int        # the line of the opening fence (1-based)
    lang: str        # the info string's first word ("" when it has none)
    title: str | None
    text: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def kind(self) -> str:
        """command, output, file, or unclassified (a language the docs test does not know)."""
        if self.lang in COMMAND_LANGS:
            return "command"
        if self.lang in OUTPUT_LANGS:
            return "output"
        if self.lang in FILE_LANGS:
            return "file"
        return "unclassified"

    @property
    def not_run_reason(self) -> str | None:
        """The reason the page gives for not running the block, or None (the block is run)."""
        if self.title is None or not self.title.startswith(NOT_RUN):
            return None
        return self.title[len(NOT_RUN):].strip()

    @property
    def runs(self) -> bool:
        return self.kind == "command" and self.title is None

    @property
    def file_name(self) -> str | None:
        """The name a file block's title gives it (```yaml title="cases.yaml"): the docs test writes it into its
        working directory before the page's commands run."""
        return self.title if self.kind == "file" and self.title and self.not_run_reason is None else None

    @property
    def needs_lab(self) -> bool:
        """Whether the block runs on a lab that is up (else on none: its commands give their own topology)."""
        return self.lang == "python" or not all(NO_LAB.match(c.command) for c in commands(self))

    @property
    def is_pytest(self) -> bool:
        """A Python block of test functions: run by pytest, with the nfwlab plugin's fixtures."""
        return self.lang == "python" and re.search(r"^def test_", self.text, re.M) is not None

    @property
    def starts_a_lab(self) -> bool:
        """Whether the block brings a lab up itself (then it runs on a lab that is down)."""
        if self.lang == "python":
            return self.is_pytest or re.search(r"\.(up|running)\(", self.text) is not None
        return any(re.match(r"nfwlab( --name \S+)? up\b", c.command) for c in commands(self))


def read_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order; an unclosed fence is an error naming its line."""
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    page = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info, start = m["fence"], m["info"].strip(), i
        body: list[str] = []
        i += 1
        while i < len(lines) and not re.match(rf"^ *{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[i]):
            body.append(lines[i][len(m["indent"]):])
            i += 1
        if i == len(lines):
            raise ValueError(f"{page}:{start + 1}: the fence opened here is never closed")
        title = TITLE.search(info)
        blocks.append(Block(page, start + 1, info.split()[0].lstrip("{.") if info else "",
                            title[1] if title else None, "\n".join(body) + "\n"))
        i += 1
    return blocks


def all_blocks() -> list[Block]:
    return [b for p in pages() for b in read_blocks(p)]


def runnable_by_page() -> tuple[dict[str, list[Block]], dict[Block, Block]]:
    """The blocks the docs test runs, by page in order, and the blocks it does not run again because an
    earlier page has the same one (docs/index.md repeats the README's walk): each mapped to the one that runs."""
    pages_: dict[str, list[Block]] = {}
    first: dict[tuple[str, str], Block] = {}
    repeats: dict[Block, Block] = {}
    for block in all_blocks():
        if not block.runs:
            continue
        if (block.lang, block.text) in first:
            repeats[block] = first[(block.lang, block.text)]
            continue
        first[(block.lang, block.text)] = block
        pages_.setdefault(block.page, []).append(block)
    return pages_, repeats


def files_by_page() -> dict[str, list[Block]]:
    """The file blocks each page names (its commands read them)."""
    out: dict[str, list[Block]] = {}
    for block in all_blocks():
        if block.file_name:
            out.setdefault(block.page, []).append(block)
    return out


@dataclass(frozen=True)
class Command:
    """One command of a shell block or transcript: the command as written, the comment after it, and the
    output the page shows for it (a transcript's lines after the `$` line)."""
    command: str
    comment: str
    shown: str = ""

    @property
    def exit_code(self) -> int:
        """The exit code the comment states ("(exit 1)"), else 0."""
        m = EXIT.search(self.comment)
        return int(m[1]) if m else 0


def key_tokens(text: str) -> set[str]:
    """The addresses, CIDRs and AWS ids a comment or a shown output names."""
    return set(KEY_TOKEN.findall(text))


def split_comment(line: str) -> tuple[str, str]:
    """A shell line's command and its trailing comment (a `#` outside quotes, at the start or after a blank)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def commands(block: Block) -> list[Command]:
    """A shell block's commands (comment-only and blank lines dropped), or a transcript's `$` lines with the
    output shown after each."""
    out: list[Command] = []
    if block.lang == "console":
        for line in block.text.splitlines():
            if line.startswith("$ "):
                command, comment = split_comment(line[2:])
                out.append(Command(command, comment))
            elif out:
                last = out[-1]
                out[-1] = Command(last.command, last.comment, last.shown + line + "\n")
        return out
    if block.lang != "sh":
        return out
    for line in block.text.splitlines():
        command, comment = split_comment(line)
        if command:
            out.append(Command(command, comment))
    return out
