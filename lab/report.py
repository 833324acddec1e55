"""Reports of a case run (`nfwlab test`) and of a policy diff (`nfwlab diff`), as text made from lab.results' records.

JUnit XML for CI systems (Jenkins, GitLab, GitHub test-report actions: one testcase per case, grouped cases in a
testsuite of their group), Markdown for $GITHUB_STEP_SUMMARY and for the review comment of a policy change, and
plain text for the terminal:

    from lab.report import diff_markdown, junit_xml, markdown_summary, text_report

    Path("cases.xml").write_text(junit_xml(run), encoding="utf-8")    # run: a CaseRun
    with open(os.environ["GITHUB_STEP_SUMMARY"], "a") as summary:
        summary.write(markdown_summary(run))
    print(text_report(run, verbose=args.verbose))
    print(diff_markdown(diff))                                          # diff: a CaseDiff

Standard library only.
"""
from __future__ import annotations

import re
import socket
import textwrap
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from .cases import Case
from .results import CaseDiff, CaseResult, CaseRun, DiffRow, Seen

WORDS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}  # the terminal's status column
MARKS = {"passed": "✅", "failed": "❌", "error": "⚠️"}
STATUS_WIDTH = max(len(w) for w in WORDS.values())
NAME_CAP = 60  # the widest a case column gets; longer names end in …
INDENT = " " * (STATUS_WIDTH + 2)
# What XML 1.0 cannot hold at all, escaped or not (control characters from a server's answer, say)
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# ----------------------------------------------------------------- shared
def _stem(run: CaseRun) -> str:
    return Path(run.file).stem or "cases"


def _own_name(case: Case) -> str:
    """The case's name without its "group / " prefix."""
    prefix = f"{case.group} / "
    return case.name[len(prefix):] if case.group and case.name.startswith(prefix) else case.name


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _counts(results: Iterable[CaseResult]) -> tuple[int, int, int]:
    """(passed, failed, error)."""
    statuses = [r.status for r in results]
    return statuses.count("passed"), statuses.count("failed"), statuses.count("error")


def _request(case: Case, seen: Seen | None = None) -> str:
    """"server-a -> tls blocked.example:443"; a subnet source names the server that sent it."""
    source = case.source if not seen or not seen.server or seen.server == case.source else \
        f"{case.source} ({seen.server})"
    return f"{source} -> {case.request()}"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


# ----------------------------------------------------------------- JUnit XML
def _xml_safe(text: str) -> str:
    return NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _element(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: _xml_safe(v) for k, v in attrs.items()})
    if text is not None:
        el.text = _xml_safe(text)
    return el


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "group"


def _classname(run: CaseRun, case: Case) -> str:
    return f"nfwlab.{_stem(run)}" + (f".{_slug(case.group)}" if case.group else "")


def _count_attrs(results: Sequence[CaseResult]) -> dict[str, str]:
    _, failed, errors = _counts(results)
    return {"tests": str(len(results)), "failures": str(failed), "errors": str(errors), "skipped": "0"}


def _details(result: CaseResult) -> str:
    """The body of a failure or an error: what CI shows of a case that did not pass."""
    case, seen = result.case, result.seen
    lines = [f"error: {result.error}"] if result.error else [f"problem: {p}" for p in result.problems]
    lines += [f"request:  {_request(case, seen)}",
              f"expected: {case.expectation()}",
              f"seen:     {seen.describe()}",
              f"evidence: {seen.evidence}",
              f"server:   {seen.server or 'unknown'}, source port {seen.source_port or 'unknown'}",
              f"flow id:  {seen.flow_id if seen.flow_id is not None else 'none'}",
              f"case:     {case.where}"]
    return "\n".join(lines) + "\n"


def _properties(parent: ET.Element, pairs: Sequence[tuple[str, str]]) -> None:
    if pairs:
        properties = _element(parent, "properties")
        for name, value in pairs:
            _element(properties, "property", name=name, value=value)


def _testcase(suite: ET.Element, run: CaseRun, result: CaseResult) -> None:
    case = result.case
    testcase = _element(suite, "testcase", name=_own_name(case), classname=_classname(run, case),
                        time=f"{result.seen.seconds:.3f}", file=run.file)
    if result.status == "failed":
        _element(testcase, "failure", _details(result), message="; ".join(result.problems), type="AssertionError")
    elif result.status == "error":
        _element(testcase, "error", _details(result), message=result.error or "", type="Undecided")
    else:
        _element(testcase, "system-out", f"seen: {result.seen.describe()}\n")
    pairs = [("tag", t) for t in case.tags]
    if case.policy is not None:
        pairs.append(("policy", str(case.policy)))
    if case.topology is not None:
        pairs.append(("topology", case.topology))
    _properties(testcase, pairs)


def _suites(run: CaseRun) -> dict[str, list[CaseResult]]:
    """Results by group ("" for the ungrouped), in the order the run met them."""
    groups: dict[str, list[CaseResult]] = {}
    for result in run.results:
        groups.setdefault(result.case.group, []).append(result)
    return groups


def _testsuite(root: ET.Element, run: CaseRun, group: str, results: list[CaseResult], host: str) -> None:
    # A case's seconds run from the run's start to its decision: the last of them is the suite's time.
    seconds = max((r.seen.seconds for r in results), default=0.0)
    started = datetime.fromtimestamp(run.started, UTC).isoformat(timespec="seconds")
    suite = _element(root, "testsuite", name=group or _stem(run), **_count_attrs(results),
                     time=f"{seconds:.3f}", timestamp=started, hostname=host)
    _properties(suite, [("lab", run.lab)] + [("policy", p) for p in run.policies]
                + [("topology", t) for t in run.topologies])
    for result in results:
        _testcase(suite, run, result)


def junit_xml(run: CaseRun, suite_name: str | None = None) -> str:
    """The run as JUnit XML: a testsuite per group of cases (the ungrouped in one named after the case file),
    a testcase per case, with a failure (the problems) or an error (why it was not decided)."""
    root = ET.Element("testsuites", {"name": _xml_safe(suite_name or f"nfwlab {_stem(run)}"),
                                     **_count_attrs(run.results), "time": f"{run.seconds:.3f}"})
    host = socket.gethostname()
    for group, results in _suites(run).items():
        _testsuite(root, run, group, results, host)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ----------------------------------------------------------------- Markdown
def _cell(text: str) -> str:
    """Text for a Markdown table cell: no HTML read into it, no `|` ending it, no newline breaking the row."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|")
    return "<br>".join(text.splitlines()) if text else ""


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
           ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _seen(result: CaseResult) -> str:
    seen = result.seen.describe()
    return f"{seen}: {result.error}" if result.error and result.error not in seen else seen


def _listed(items: Sequence[str], none: str) -> str:
    return ", ".join(f"`{i}`" for i in items) if items else none


def markdown_summary(run: CaseRun) -> str:
    """A short Markdown summary of the run for $GITHUB_STEP_SUMMARY: counts, then the cases that did not pass,
    then every case in a collapsed table."""
    passed, failed, errors = _counts(run.results)
    mark = "✅" if not failed and not errors else "❌"
    lines = [f"### {mark} nfwlab test {_cell(Path(run.file).name)}: {passed} passed, {failed} failed, "
             f"{_plural(errors, 'error')} in {run.seconds:.1f}s", "",
             f"Lab `{run.lab}`, policies {_listed(run.policies, 'as the lab enforces them')}, "
             f"topologies {_listed(run.topologies, 'as the lab runs them')}.", ""]
    lines += [f"> {_cell(note)}" for note in run.notes] + ([""] if run.notes else [])
    bad = [r for r in run.results if r.status != "passed"]
    if bad:
        lines += _table(["case", "request", "expected", "seen"],
                        ([f"{MARKS[r.status]} {r.case.name}", _request(r.case, r.seen), r.case.expectation(), _seen(r)]
                         for r in bad))
    else:
        lines.append(f"All {_plural(len(run.results), 'case')} passed.")
    lines += ["", f"<details><summary>All {_plural(len(run.results), 'case')}</summary>", ""]
    lines += _table(["", "case", "request", "seen"],
                    ([MARKS[r.status], r.case.name, _request(r.case, r.seen), _seen(r)] for r in run.results))
    return "\n".join(lines + ["", "</details>", ""])


# ----------------------------------------------------------------- terminal
def _case_lines(result: CaseResult, width: int) -> list[str]:
    case, seen = result.case, result.seen
    head = (f"{WORDS[result.status]:<{STATUS_WIDTH}}  {_fit(case.name, width):<{width}}  {_request(case, seen)}  "
            f"{seen.describe()} ({seen.seconds:.2f}s)")
    if result.status == "passed":
        return [head]
    details = ([result.error] if result.error else list(result.problems)) + [f"evidence: {seen.evidence}"]
    return [head] + [textwrap.indent(d, INDENT) for d in details]


def _count_line(run: CaseRun) -> str:
    passed, failed, errors = _counts(run.results)
    return (f"{_plural(len(run.results), 'case')}: {passed} passed, {failed} failed, {_plural(errors, 'error')} "
            f"in {run.seconds:.1f}s (lab {run.lab})")


def text_report(run: CaseRun, verbose: bool = False) -> str:
    """The terminal's report: a line per case that did not pass (per case, verbose), its problems and evidence
    indented under it, then the counts."""
    shown = [r for r in run.results if verbose or r.status != "passed"]
    width = min(max((len(r.case.name) for r in shown), default=0), NAME_CAP)
    lines = [line for r in shown for line in _case_lines(r, width)]
    lines += [f"note: {note}" for note in run.notes]
    return "\n".join(lines + [_count_line(run)]) + "\n"


# ----------------------------------------------------------------- policy diff
def _changed(diff: CaseDiff) -> list[DiffRow]:
    return [row for row in diff.rows if row.changed]


def _total(diff: CaseDiff) -> int:
    # Names repeat across case files: a case is its file's place and its name.
    cases = {(r.case.where, r.case.name) for r in (*diff.old.results, *diff.new.results)}
    return len(cases) or len(diff.rows)


def _why(diff: CaseDiff, row: DiffRow) -> str:
    """Why the new result misses the case's expectation: the new run's problems for the case, if it has any."""
    result = next((r for r in diff.new.results if r.case is row.case), None)
    if result is not None and (result.problems or result.error):
        return "; ".join(result.problems) or result.error or ""
    return f"expected {row.case.expectation()}"


def _diff_rows(diff: CaseDiff) -> list[list[str]]:
    return [[row.case.name, _request(row.case, row.new), row.old.describe(), row.new.describe(),
             "yes" if row.expected else f"NO — {_why(diff, row)}"] for row in _changed(diff)]


DIFF_HEADER = ("case", "request", "old", "new", "expected?")


def _diff_footer(diff: CaseDiff) -> list[str]:
    changed, total = _changed(diff), _total(diff)
    if not changed:
        lines = [f"no case changed between {diff.old_policy} and {diff.new_policy} ({_plural(total, 'case')})"]
    else:
        unexpected = sum(1 for row in changed if not row.expected)
        lines = [f"{len(changed)} of {_plural(total, 'case')} changed ({unexpected} not expected)"]
    undecided = [(policy, run.count("error")) for policy, run in
                 ((diff.old_policy, diff.old), (diff.new_policy, diff.new)) if run.count("error")]
    lines += [f"{_plural(n, 'case')} could not be decided under {policy}: the diff cannot speak for them"
              for policy, n in undecided]
    return lines


def _text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    flat = [[" ".join(c.splitlines()) for c in row] for row in rows]
    flat = [[_fit(row[0], NAME_CAP), *row[1:]] for row in flat]
    widths = [max(len(c) for c in column) for column in zip(header, *flat, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
    return [line(header), "-+-".join("-" * w for w in widths)] + [line(row) for row in flat]


def diff_table(diff: CaseDiff) -> str:
    """The cases whose verdict, alert or logged source changed between the two policies, as a plain-text table,
    and whether each change is what the case expects."""
    rows = _diff_rows(diff)
    return "\n".join((_text_table(DIFF_HEADER, rows) if rows else []) + _diff_footer(diff)) + "\n"


def diff_markdown(diff: CaseDiff) -> str:
    """The same as diff_table, in Markdown: the review comment a policy change needs."""
    rows = _diff_rows(diff)
    mark = "⚠️ " if any(not row.expected for row in _changed(diff)) else ""
    lines = [f"### {mark}Policy change: `{diff.old_policy}` → `{diff.new_policy}`", ""]
    if rows:
        lines += _table(DIFF_HEADER, rows) + [""]
    return "\n".join(lines + [line.replace("&", "&amp;").replace("<", "&lt;") for line in _diff_footer(diff)]) + "\n"


__all__ = ["diff_markdown", "diff_table", "junit_xml", "markdown_summary", "text_report"]
