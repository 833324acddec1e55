"""Every fenced block of the README and docs/*.md is classified: a block of commands is either run by
tests/integration/test_docs_runnable.py or shows, as its title, why not. The extractor is checked against the
README's own blocks, so the check cannot pass by finding nothing."""
from __future__ import annotations

import re
from html import unescape

import docblocks as docs
import markdown
import pytest
import yaml
from docblocks import Block, commands

from lab.cli import parser

BLOCKS = docs.all_blocks()


def test_the_extractor_finds_the_readmes_blocks() -> None:
    readme = [b for b in BLOCKS if b.page == "README.md"]
    langs = [b.lang for b in readme]
    assert langs[:4] == ["sh", "sh", "python", "yaml"], langs
    walk = [c.command for c in commands(readme[1])]
    assert walk[:3] == [". .venv/bin/activate", "nfwlab status", "nfwlab curl server-a https://blocked.example/"]
    assert walk.count("nfwlab alerts --last 1") == 2 and "nfwlab switch firewall-first" in walk
    assert readme[2].text.startswith("from lab import Lab\n")
    assert "make lab-up" in readme[0].text and readme[0].not_run_reason
    assert any("terraform apply" in b.text and b.not_run_reason for b in readme)
    runnable, _ = docs.runnable_by_page()
    assert [b.lang for b in runnable["README.md"]] == ["sh", "python", "console"]
    assert [b.file_name for b in docs.files_by_page()["README.md"]] == ["cases.yaml"]
    assert len(BLOCKS) > 50 and {"docs/python-api.md", "docs/topologies.md"} <= set(runnable)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_every_block_is_classified(block: Block) -> None:
    assert block.kind != "unclassified", (
        f"{block.where}: fence language {block.lang!r}; use one of {sorted(docs.COMMAND_LANGS)} (commands), text "
        "(output), or a file's language (yaml, json, hcl, ini)")
    if block.kind == "output":
        assert not re.search(r"^\$ ", block.text, re.M), f"{block.where}: `$ ` lines are commands: use ```console"
    if block.kind == "file" and block.title is not None:
        assert re.fullmatch(r"[\w.-]+", block.title) or block.not_run_reason, (
            f'{block.where}: a file block\'s title is the name the docs test writes it under (title="cases.yaml")')
    if block.kind != "command":
        return
    if block.title is not None:
        assert block.not_run_reason, f'{block.where}: a command block\'s title is title="{docs.NOT_RUN} REASON"'
        return
    if block.lang == "python":
        compile(block.text, block.where, "exec")
        assert all(re.fullmatch(r"[a-z][a-z0-9-]*", n) for n in re.findall(r'\bLab\("([^"]*)"', block.text))
        assert not re.search(r"\bLab\((?!\"|\))", block.text), f"{block.where}: name the lab as a literal"
    else:
        found = commands(block)
        assert found, f"{block.where}: a runnable block with no command"
        for c in found:
            assert not c.command.endswith("\\") and "<<" not in c.command, (
                f"{block.where}: `{c.command}`: one command a line (the test frames each line)")
            assert not re.search(r"--name\s", c.command), (
                f"{block.where}: `{c.command}`: --name wins over NFWLAB_NAME, so the test cannot give it its lab")


def test_a_not_run_reason_is_visible_on_the_site() -> None:
    """MkDocs shows the title above the block (the site's own extensions, as mkdocs.yml lists them)."""
    config = yaml.safe_load((docs.ROOT / "mkdocs.yml").read_text())
    extensions = [e if isinstance(e, str) else next(iter(e)) for e in config["markdown_extensions"]]
    block = next(b for b in BLOCKS if b.not_run_reason)
    fence = f'```{block.lang} title="{block.title}"\n{block.text}```\n'
    html = markdown.markdown(fence, extensions=extensions)
    assert f'<span class="filename">{block.title}</span>' in unescape(html)


def test_the_key_phrases_name_commands_the_test_runs() -> None:
    runnable, _ = docs.runnable_by_page()
    runs: dict[tuple[str, str], int] = {}
    for blocks in runnable.values():
        for c in (c for b in blocks for c in commands(b)):
            runs[(blocks[0].page, c.command)] = runs.get((blocks[0].page, c.command), 0) + 1
    for page, command, nth in docs.KEY_PHRASES:
        assert runs.get((page, command), 0) >= max(nth, 1), f"{page}: `{command}` (run {nth}) is not run"


def test_a_repeated_block_is_the_same_text_as_the_one_that_runs() -> None:
    _, repeats = docs.runnable_by_page()
    assert repeats, "docs/index.md repeats the README's walk"
    for copy, original in repeats.items():
        assert (copy.lang, copy.text) == (original.lang, original.text) and copy.page != original.page


def test_comments_state_exit_codes_and_addresses(tmp_path) -> None:
    page = tmp_path / "p.md"
    page.write_text("```sh\nnfwlab curl x  # dropped (exit 1)\necho '#1' # 10.0.13.92, vpce-0e5f6a7b8c9d00001\n"
                    "```\n\n```console\n$ nfwlab who\nwho:   server-b (10.0.140.23)\n```\n")
    sh, console = docs.read_blocks(page)
    first, second = commands(sh)
    assert (first.command, first.exit_code, second.command, second.exit_code) == ("nfwlab curl x", 1, "echo '#1'", 0)
    assert docs.key_tokens(second.comment) == {"10.0.13.92", "vpce-0e5f6a7b8c9d00001"}
    (who,) = commands(console)
    assert who.command == "nfwlab who" and docs.key_tokens(who.shown) == {"10.0.140.23"}
    assert docs.split_comment('a "b # c" # d') == ('a "b # c"', "d")


def test_an_unclosed_fence_is_an_error_naming_its_line(tmp_path) -> None:
    page = tmp_path / "p.md"
    page.write_text("text\n\n```sh\nnfwlab up\n")
    with pytest.raises(ValueError, match=r"p.md:3: the fence opened here is never closed"):
        docs.read_blocks(page)


def test_nfwlab_name_is_the_default_lab_and_name_wins(monkeypatch) -> None:
    monkeypatch.delenv("NFWLAB_NAME", raising=False)
    assert parser().parse_args(["status"]).name == "default"
    monkeypatch.setenv("NFWLAB_NAME", "docs")
    assert parser().parse_args(["status"]).name == "docs"
    assert parser().parse_args(["--name", "x", "status"]).name == "x"
    assert parser().parse_args(["status", "--name", "x"]).name == "x"
