"""Reports of a case run and of a policy diff: JUnit XML (checked against tests/data/junit.xsd), Markdown, text."""
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from lab.cases import parse_cases
from lab.report import diff_markdown, diff_table, junit_xml, markdown_summary, text_report
from lab.results import CaseDiff, CaseResult, CaseRun, DiffRow, Seen

SCHEMA = xmlschema.XMLSchema(Path(__file__).parent.parent / "data" / "junit.xsd")
FILE = "cases/deny-domains.yaml"
STARTED = 1795616850.0  # 2026-11-25T14:27:30Z

CASES = {c.name: c for c in parse_cases({
    "cases": [
        {"name": "allowed.example passes", "from": "server-a", "to": "allowed.example", "protocol": "tls",
         "expect": "pass", "tags": ["smoke"]},
        {"name": "ping the internet", "from": "server-b", "to": "203.0.113.10", "protocol": "icmp", "expect": "pass"},
    ],
    "groups": [{"name": "Deny list", "tags": ["deny"], "cases": [
        {"name": "blocked.example is dropped", "from": "server-a", "to": "blocked.example", "protocol": "tls",
         "expect": "drop", "alert": {"sid": 1}},
        {"name": "evil.example is dropped", "from": "server-b", "to": "evil.example", "protocol": "http",
         "expect": "drop", "alert": {"sid": 2}},
    ]}],
}, Path(FILE)).cases}

PASS_SEEN = Seen("pass", "answer: HTTP 200", "server-a", 40001, (), "10.0.13.92", None, 11, 0.5)
DROP_SEEN = Seen("drop", "drop record of flow 12", "server-b", 40002, ((2, "evil"),), "10.0.13.92", None, 12, 1.25)
LEAK_SEEN = Seen("pass", "answer: HTTP 200", "server-a", 40003, (), "10.0.13.92", None, 13, 2.0)
UNDECIDED = Seen(None, "no record of the flow in 10s", "server-b", 40004, (), None, None, None, 10.0)
PROBLEMS = ("expected drop, seen pass", "expected alert sid 1, seen no alert")


def run_of(*results, file=FILE, seconds=10.5):
    return CaseRun(file, "default", tuple(results), seconds, STARTED, ("policies/deny.json",), ("nat-first",))


@pytest.fixture
def mixed():
    return run_of(
        CaseResult(CASES["allowed.example passes"], PASS_SEEN),
        CaseResult(CASES["ping the internet"], UNDECIDED, error="the ping was never answered nor logged"),
        CaseResult(CASES["Deny list / blocked.example is dropped"], LEAK_SEEN, PROBLEMS),
        CaseResult(CASES["Deny list / evil.example is dropped"], DROP_SEEN))


def counts(el):
    return {k: el.get(k) for k in ("tests", "failures", "errors", "skipped")}


# ----------------------------------------------------------------- JUnit XML
def test_junit_counts_cases_at_both_levels_and_validates(mixed):
    text = junit_xml(mixed)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    SCHEMA.validate(text)
    root = ET.fromstring(text)
    assert root.tag == "testsuites" and root.get("name") == "nfwlab deny-domains" and root.get("time") == "10.500"
    assert counts(root) == {"tests": "4", "failures": "1", "errors": "1", "skipped": "0"}
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert counts(suites["deny-domains"]) == {"tests": "2", "failures": "0", "errors": "1", "skipped": "0"}
    assert counts(suites["Deny list"]) == {"tests": "2", "failures": "1", "errors": "0", "skipped": "0"}
    assert suites["Deny list"].get("timestamp") == "2026-11-25T14:27:30+00:00"
    assert suites["Deny list"].get("time") == "2.000" and suites["Deny list"].get("hostname")
    assert len(root.findall(".//failure")) == 1 and len(root.findall(".//error")) == 1
    assert len(root.findall(".//testcase")) == 4


def test_a_failed_case_carries_its_problems_and_the_evidence(mixed):
    root = ET.fromstring(junit_xml(mixed))
    [failure] = root.iter("failure")
    assert failure.get("type") == "AssertionError"
    assert failure.get("message") == "expected drop, seen pass; expected alert sid 1, seen no alert"
    body = failure.text
    for line in ("request:  server-a -> tls blocked.example:443", "expected: drop, alert sid 1",
                 "seen:     pass, no alert, logged from 10.0.13.92", "evidence: answer: HTTP 200",
                 "server:   server-a, source port 40003", "flow id:  13",
                 "case:     cases/deny-domains.yaml: groups[0].cases[0] (blocked.example is dropped)",
                 "problem: expected drop, seen pass"):
        assert line in body


def test_an_undecided_case_is_an_error_with_why(mixed):
    root = ET.fromstring(junit_xml(mixed))
    [error] = root.iter("error")
    assert (error.get("type"), error.get("message")) == ("Undecided", "the ping was never answered nor logged")
    assert "seen:     undecided (no record of the flow in 10s)" in error.text
    assert "request:  server-b -> icmp 203.0.113.10" in error.text


def test_cases_land_in_the_suite_of_their_group_under_their_own_name(mixed):
    root = ET.fromstring(junit_xml(mixed, suite_name="policy regression"))
    assert root.get("name") == "policy regression"
    where = {tc.get("name"): (suite.get("name"), tc.get("classname"), tc.get("file"), tc.get("time"))
             for suite in root.iter("testsuite") for tc in suite.iter("testcase")}
    assert where["allowed.example passes"] == ("deny-domains", "nfwlab.deny-domains", FILE, "0.500")
    assert where["evil.example is dropped"] == ("Deny list", "nfwlab.deny-domains.deny-list", FILE, "1.250")
    assert [s.get("name") for s in root.iter("testsuite")] == ["deny-domains", "Deny list"]


def test_a_passed_case_says_what_was_seen_and_carries_its_tags(mixed):
    root = ET.fromstring(junit_xml(mixed))
    case = root.find(".//testcase[@name='allowed.example passes']")
    assert case.find("system-out").text.strip() == "seen: pass, no alert, logged from 10.0.13.92"
    assert [(p.get("name"), p.get("value")) for p in case.iter("property")] == [("tag", "smoke")]
    grouped = root.find(".//testcase[@name='evil.example is dropped']")
    assert ("tag", "deny") in [(p.get("name"), p.get("value")) for p in grouped.iter("property")]
    assert grouped.find("system-out").text.strip().startswith('seen: drop, alert 2 "evil"')


def test_names_and_evidence_with_markup_quotes_and_non_ascii_round_trip():
    name = 'a <b> & "c" \'d\' — café'
    case = parse_cases({"cases": [{"name": name, "from": "server-a", "to": "blocked.example", "protocol": "tls",
                                   "expect": "drop"}]}, Path("cases/ünïcode & <x>.yaml")).cases[0]
    seen = Seen("pass", 'answer: "<html>" & \x07bell\nsecond line', "server-a", 1, ((7, "<é>"),))
    text = junit_xml(run_of(CaseResult(case, seen, (f"{name} was not dropped",)), file=case.where.split(": ")[0]))
    SCHEMA.validate(text)
    root = ET.fromstring(text.encode("utf-8"))
    [testcase] = root.iter("testcase")
    assert testcase.get("name") == name
    assert testcase.find("failure").get("message") == f"{name} was not dropped"
    assert 'evidence: answer: "<html>" & \\x07bell\nsecond line' in testcase.find("failure").text
    assert root.find("testsuite").get("name") == "ünïcode & <x>"


def test_the_schema_refuses_a_report_without_its_counts():
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        SCHEMA.validate('<testsuites><testsuite name="x"><testcase name="y" classname="z"/></testsuite></testsuites>')


# ----------------------------------------------------------------- Markdown
def test_markdown_lists_the_failures_and_every_case_in_details(mixed):
    md = markdown_summary(mixed)
    assert md.startswith("### ❌ nfwlab test deny-domains.yaml: 2 passed, 1 failed, 1 error in 10.5s")
    assert "Lab `default`, policies `policies/deny.json`, topologies `nat-first`." in md
    table, details = md.split("<details>")
    assert "| ❌ Deny list / blocked.example is dropped | server-a -> tls blocked.example:443 | drop, alert sid 1 | " \
           "pass, no alert, logged from 10.0.13.92 |" in table
    assert "ping the internet" in table and "allowed.example passes" not in table
    assert details.count("\n| ✅ |") == 2 and "| ❌ |" in details and "| ⚠️ |" in details


def test_markdown_escapes_pipes_and_newlines_in_cells():
    case = parse_cases({"cases": [{"name": "a | b", "from": "server-a", "to": "blocked.example", "protocol": "tls",
                                   "expect": "drop"}]}, Path(FILE)).cases[0]
    seen = Seen(None, "no answer | no record\nin 10s")
    md = markdown_summary(run_of(CaseResult(case, seen, error="timeout")))
    row = next(line for line in md.splitlines() if line.startswith("| ⚠️ a"))
    assert row.startswith("| ⚠️ a \\| b |")
    assert "undecided (no answer \\| no record<br>in 10s): timeout" in row
    assert row.replace("\\|", "").count("|") == 5  # four cells: the pipes in them do not make more


def test_markdown_says_so_when_every_case_passed():
    md = markdown_summary(run_of(CaseResult(CASES["allowed.example passes"], PASS_SEEN)))
    assert md.startswith("### ✅") and "All 1 case passed." in md
    assert "| case | request | expected | seen |" not in md


# ----------------------------------------------------------------- terminal
def test_text_report_shows_what_did_not_pass_and_the_counts(mixed):
    lines = text_report(mixed).splitlines()
    width = len("Deny list / blocked.example is dropped")  # the longest name shown
    assert lines[0] == "ERROR  " + "ping the internet".ljust(width) + "  server-b -> icmp 203.0.113.10  " \
                       "undecided (no record of the flow in 10s) (10.00s)"
    assert lines[1] == "       the ping was never answered nor logged"
    assert lines[3].startswith("FAIL   Deny list / blocked.example is dropped  server-a -> tls blocked.example:443")
    assert lines[4:7] == ["       expected drop, seen pass", "       expected alert sid 1, seen no alert",
                          "       evidence: answer: HTTP 200"]
    assert lines[-1] == "4 cases: 2 passed, 1 failed, 1 error in 10.5s (lab default)"
    assert len(lines) == 8


def test_text_report_verbose_shows_every_case_and_cuts_long_names(mixed):
    long = CaseResult(parse_cases({"cases": [{"name": "x" * 80, "from": "server-a", "to": "a.example",
                                              "protocol": "tls", "expect": "pass"}]}, Path(FILE)).cases[0], PASS_SEEN)
    run = run_of(*mixed.results, long)
    lines = text_report(run, verbose=True).splitlines()
    heads = [line for line in lines if not line.startswith(" ")]
    assert [h[:7] for h in heads[:-1]] == ["PASS   ", "ERROR  ", "FAIL   ", "PASS   ", "PASS   "]
    assert heads[-2].startswith("PASS   " + "x" * 59 + "…  server-a -> tls a.example:443  pass, no alert")
    assert heads[0].startswith("PASS   " + "allowed.example passes".ljust(60) + "  server-a")
    assert text_report(run_of(CaseResult(CASES["allowed.example passes"], PASS_SEEN))) == \
        "1 case: 1 passed, 0 failed, 0 errors in 10.5s (lab default)\n"


# ----------------------------------------------------------------- policy diff
@pytest.fixture
def diff(mixed):
    blocked, evil = CASES["Deny list / blocked.example is dropped"], CASES["Deny list / evil.example is dropped"]
    allowed = CASES["allowed.example passes"]
    old = run_of(*(CaseResult(c, PASS_SEEN) for c in CASES.values()))
    rows = (DiffRow(evil, LEAK_SEEN, DROP_SEEN, ("verdict", "alert"), True),
            DiffRow(blocked, DROP_SEEN, LEAK_SEEN, ("verdict",), False),
            DiffRow(allowed, PASS_SEEN, PASS_SEEN, (), True))  # unchanged: not listed
    return CaseDiff("policies/old.json", "policies/new.json", old, mixed, rows)


def test_the_diff_table_lists_exactly_the_changed_cases(diff):
    lines = diff_table(diff).splitlines()
    assert [c.strip() for c in lines[0].split("|")] == ["case", "request", "old", "new", "expected?"]
    body = [[c.strip() for c in line.split(" | ")] for line in lines[2:-2]]
    assert body == [
        ["Deny list / evil.example is dropped", "server-b -> http evil.example:80",
         "pass, no alert, logged from 10.0.13.92", 'drop, alert 2 "evil", logged from 10.0.13.92', "yes"],
        ["Deny list / blocked.example is dropped", "server-a -> tls blocked.example:443",
         'drop, alert 2 "evil", logged from 10.0.13.92', "pass, no alert, logged from 10.0.13.92",
         "NO — expected drop, seen pass; expected alert sid 1, seen no alert"]]
    assert lines[-2] == "2 of 4 cases changed (1 not expected)"
    assert lines[-1] == "1 case could not be decided under policies/new.json: the diff cannot speak for them"


def test_the_diff_says_when_nothing_changed(diff):
    same = CaseDiff("old.json", "new.json", diff.old, diff.old, ())
    assert diff_table(same) == "no case changed between old.json and new.json (4 cases)\n"
    assert "no case changed between old.json and new.json (4 cases)" in diff_markdown(same)
    assert "|" not in diff_markdown(same)


def test_the_diff_in_markdown_names_the_policies_and_the_unexpected_change(diff):
    md = diff_markdown(diff)
    assert md.startswith("### ⚠️ Policy change: `policies/old.json` → `policies/new.json`")
    rows = [line for line in md.splitlines() if line.startswith("| Deny list")]
    assert len(rows) == 2 and rows[1].endswith("| NO — expected drop, seen pass; expected alert sid 1, seen no alert |")
    assert "2 of 4 cases changed (1 not expected)" in md
