"""A listing of a shipped file (a policy, a topology, a case file) shows the file as it is: the listing is the
whole file, or its lead-in says "abridged" and every line it shows is a line of the file, in the file's order.
A listing is introduced as a shipped file when the paragraph just before it names the file's path."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import docblocks as docs
import pytest

ROOT = docs.ROOT
# A shipped file's path as a page writes it in a lead-in: `topologies/firewall-first.yaml`.
SHIPPED = re.compile(r"`((?:policies|topologies|cases|suricata|compose|docs/examples)/[\w./-]+)`")


@dataclass(frozen=True)
class Listing:
    block: docs.Block
    lead_in: str    # the paragraph right before the fence
    path: str       # the shipped file it introduces (the last one the lead-in names)

    @property
    def abridged(self) -> bool:
        return "abridged" in self.lead_in.lower()


def lead_in(page: Path, fence_line: int) -> str:
    """The paragraph that ends right before the fence on `fence_line` (1-based): its lines up to a blank one."""
    lines = page.read_text().splitlines()[:fence_line - 1]
    while lines and not lines[-1].strip():
        lines.pop()
    para: list[str] = []
    while lines and lines[-1].strip() and not docs.FENCE.match(lines[-1]):
        para.insert(0, lines.pop())
    return " ".join(para)


def listings() -> list[Listing]:
    """Every file block whose lead-in names a file of the repository."""
    found = []
    for block in docs.all_blocks():
        if block.kind != "file":
            continue
        text = lead_in(ROOT / block.page, block.line)
        paths = [p for p in SHIPPED.findall(text) if (ROOT / p).is_file()]
        if paths:
            found.append(Listing(block, text, paths[-1]))
    return found


LISTINGS = listings()


def shown_in_order(shown: list[str], whole: list[str]) -> str | None:
    """None when every line of `shown` is a line of `whole`, in order; else the first line that is not."""
    rest = iter(whole)
    for line in shown:
        if not any(line == candidate for candidate in rest):
            return line
    return None


def test_the_finder_finds_the_listings_the_pages_show() -> None:
    """The check below must have listings to check: these pages list these shipped files."""
    named = {(x.block.page, x.path) for x in LISTINGS}
    assert {("docs/topologies.md", "topologies/firewall-first.yaml"),
            ("docs/policies.md", "policies/strict-allow.yaml"),
            ("docs/policies.md", "policies/deny-domains.json")} <= named, sorted(named)


def test_shown_in_order_refuses_a_line_the_file_does_not_have_or_has_earlier() -> None:
    whole = ["a: 1", "b: 2", "c: 3"]
    assert shown_in_order(["a: 1", "c: 3"], whole) is None
    assert shown_in_order(["c: 3", "a: 1"], whole) == "a: 1"
    assert shown_in_order(["a: 1", "d: 4"], whole) == "d: 4"


@pytest.mark.parametrize("listing", LISTINGS, ids=[f"{x.block.where}:{x.path}" for x in LISTINGS])
def test_a_listing_is_the_whole_file_or_says_it_is_abridged(listing: Listing) -> None:
    whole = (ROOT / listing.path).read_text().rstrip("\n").splitlines()
    shown = listing.block.text.rstrip("\n").splitlines()
    if shown == whole:
        return
    where = f"{listing.block.where} (the listing of {listing.path})"
    assert listing.abridged, (
        f'{where} differs from the file and its lead-in does not say so: show the file whole, or write '
        f'"(abridged; the whole file: {listing.path})" in the sentence before it')
    missing = shown_in_order([s.rstrip() for s in shown if s.strip()], [w.rstrip() for w in whole])
    assert missing is None, f"{where}, abridged: {missing!r} is not in the file, or not in the file's order"
