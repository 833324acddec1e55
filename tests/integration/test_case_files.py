"""Regression cases on the real lab: the shipped case files pass, every verdict kind is told right and a wrong
expectation fails with what was seen, the verdict diff between two policies, the CLI's JUnit XML, Markdown and
exit codes, and pytest collecting a case file.

Every verdict comes from the firewall's own records (lab/regress.py); these tests check the runner against
them and against AWS's documented behaviour, quoted where a case follows it.
"""
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import xmlschema
import yaml

from lab.cases import load_cases, parse_cases
from lab.lab import HOME, Lab
from lab.pytest_plugin import worker_lab_name
from lab.regress import run_cases

CASES = HOME / "cases"
NFWLAB = [sys.executable, "-m", "lab"]
JUNIT_XSD = HOME / "tests" / "data" / "junit.xsd"


@pytest.fixture
def lab(nfwlab: Lab) -> Iterator[Lab]:
    """The session lab, put back to its own route tables and policy after a test that ran cases."""
    yield nfwlab
    nfwlab.switch("nat-first")
    nfwlab.apply_policy(nfwlab.policy)


def cli(lab: Lab, *argv: str, cwd: Path = HOME) -> subprocess.CompletedProcess:
    return subprocess.run([*NFWLAB, "--name", lab.name, *argv], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def write(tmp_path: Path, data: dict, name: str = "cases.yaml") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if name.endswith(".json") else yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("name", ["scenario", "deny-domains", "allow-domains", "home-net-trap", "strict-allow"])
def test_the_shipped_case_files_pass(lab, name):
    cases = load_cases(CASES / f"{name}.yaml").cases
    run = run_cases(lab, cases, name)
    failed = [f"{r.case.name}: {'; '.join(r.problems) or r.error}" for r in run.results if r.status != "passed"]
    assert not failed, "\n".join(failed)
    assert len(run.results) == len(cases) >= 3


# A reject policy: AWS "REJECTLIST" for TLS and HTTP, as tests/integration/test_reject_and_timeouts.py.
REJECT_POLICY = {"RuleGroupName": "reject-blocked", "RuleGroup": {"RulesSource": {"RulesSourceList": {
    "Targets": ["blocked.example"], "TargetTypes": ["TLS_SNI", "HTTP_HOST"], "GeneratedRulesType": "REJECTLIST"}}}}

# name -> (case fields, must it pass?, a text the failure must contain). AWS: "Reject ... Drops traffic that
# matches the conditions of the stateful rule and sends a TCP reset packet back to sender of the packet."
VERDICT_CASES = {
    "pass as pass": ({"to": "allowed.example", "expect": "pass", "alert": "none"}, True, ""),
    "reject as reject": ({"to": "blocked.example", "expect": "reject",
                          "alert": {"message": "matching TLS rejectlisted FQDNs"}}, True, ""),
    "http reject as reject": ({"to": "blocked.example", "protocol": "http", "expect": "reject"}, True, ""),
    "plain tcp passes": ({"to": "203.0.113.40", "port": 22, "protocol": "tcp", "expect": "pass"}, True, ""),
    "udp passes": ({"to": "203.0.113.40", "port": 514, "protocol": "udp", "expect": "pass"}, True, ""),
    "dns passes": ({"to": "203.0.113.53", "protocol": "dns", "query": "blocked.example", "expect": "pass"},
                   True, ""),
    "icmp passes": ({"to": "203.0.113.41", "protocol": "icmp", "expect": "pass"}, True, ""),
    "logged source": ({"to": "blocked.example", "expect": "reject", "logged_source": "nat-gateway",
                       "availability_zone": "ap-northeast-1a"}, True, ""),
    "reject taken for a drop": ({"to": "blocked.example", "expect": "drop"}, False, "expected drop, saw reject"),
    "reject taken for a pass": ({"to": "blocked.example", "protocol": "http", "expect": "pass"}, False,
                                "expected pass, saw reject"),
    "pass taken for a reject": ({"to": "allowed.example", "expect": "reject"}, False,
                                "expected reject, saw pass (answer: HTTP 200)"),
    "pass taken for a drop": ({"to": "203.0.113.40", "port": 8080, "protocol": "tcp", "expect": "drop"}, False,
                              "expected drop, saw pass"),
    "udp pass taken for a drop": ({"to": "203.0.113.40", "port": 5000, "protocol": "udp", "expect": "drop"},
                                  False, "expected drop, saw pass"),
    "wrong signature": ({"to": "blocked.example", "expect": "reject", "alert": {"sid": 99}}, False,
                        "expected alert sid 99, saw 1 'matching TLS rejectlisted FQDNs'"),
    "an alert where none is expected": ({"to": "blocked.example", "expect": "reject", "alert": "none"}, False,
                                        "expected no alert, saw 1"),
    "wrong logged source": ({"to": "blocked.example", "expect": "reject", "logged_source": "server-a"}, False,
                            "expected the firewall to log the source 10.0.136.108 (server-a), it logged 10.0.13.92"),
}
DROP_CASES = {  # under the lab's own deny list (drop, not reject)
    "drop as drop": ({"to": "blocked.example", "expect": "drop", "alert": {"sid": 1}}, True, ""),
    "drop taken for a reject": ({"to": "blocked.example", "expect": "reject"}, False, "expected reject, saw drop"),
    "drop taken for a pass": ({"to": "blocked.example", "protocol": "http", "expect": "pass"}, False,
                              "expected pass, saw drop"),
}


def verdict_file(tmp_path: Path, table: dict, policy: Path | None) -> Path:
    data: dict = {"defaults": {"from": "server-a", "protocol": "tls"},
                  "cases": [{"name": name, **fields} for name, (fields, _, _) in table.items()]}
    if policy:
        data["policy"] = str(policy)
    return write(tmp_path, data)


@pytest.mark.parametrize("table, policy", [(VERDICT_CASES, REJECT_POLICY), (DROP_CASES, None)],
                         ids=["reject policy", "deny list"])
def test_every_verdict_kind_passes_when_right_and_fails_with_what_was_seen_when_wrong(lab, tmp_path, table, policy):
    policy_file = write(tmp_path, policy, "policy.json") if policy else None
    run = run_cases(lab, load_cases(verdict_file(tmp_path, table, policy_file)).cases)
    by_name = {r.case.name: r for r in run.results}
    for name, (_, must_pass, text) in table.items():
        r = by_name[name]
        assert r.error is None, f"{name}: undecided: {r.error}"
        assert (r.status == "passed") == must_pass, f"{name}: {r.status} {r.problems} (seen {r.seen.describe()})"
        assert text in "; ".join(r.problems), f"{name}: {r.problems}"
        # Each verdict from evidence of the case's own flow: a block from the firewall's record of that flow, a
        # pass from the destination's answer (how fast cases are decided: `make bench`, P8).
        if r.seen.verdict in ("drop", "reject"):
            assert r.seen.flow_id and f"of flow {r.seen.flow_id}" in r.seen.evidence, f"{name}: {r.seen.evidence}"
        else:
            assert r.seen.evidence.startswith("answer: "), f"{name}: {r.seen.evidence}"


def test_the_diff_finds_exactly_the_cases_that_change_from_the_deny_list_to_the_allow_list(lab, tmp_path):
    """Deny list: "Traffic that matches a domain specification is dropped"; allow list: "all other traffic of
    those protocols is dropped" (docs/policies.md). Between the two, only names on neither list change
    verdict, and blocked.example changes signature."""
    data = {"defaults": {"from": "server-a", "protocol": "tls"}, "cases": [
        {"name": "allowed.example", "to": "allowed.example", "expect": "pass"},
        {"name": "a.example.test", "to": "a.example.test", "expect": "pass"},
        {"name": "blocked.example", "to": "blocked.example", "expect": "drop"},
        {"name": "www.allowed.example", "to": "www.allowed.example", "expect": "drop"},
        {"name": "other.invalid over http", "to": "other.invalid", "protocol": "http", "expect": "pass"},
        {"name": "ssh", "to": "203.0.113.40", "port": 22, "protocol": "tcp", "expect": "pass"},
    ]}
    cases = write(tmp_path, data)
    res = cli(lab, "diff", "policies/deny-domains.json", "policies/allow-domains.json", str(cases), "--json",
              "--summary", str(tmp_path / "diff.md"))
    assert res.returncode == 1, res.stdout + res.stderr  # other.invalid over http: expected pass, now dropped
    out = json.loads(res.stdout)
    changed = {row["name"]: (row["changed"], row["expected"]) for row in out["changed"]}
    assert changed == {
        "blocked.example": (["alert"], True),
        "www.allowed.example": (["verdict", "alert"], True),
        "other.invalid over http": (["verdict", "alert"], False),
    }, changed
    assert "other.invalid over http" in (tmp_path / "diff.md").read_text()
    assert out["old"]["errors"] == out["new"]["errors"] == 0


def test_the_cli_writes_junit_xml_that_validates_and_a_summary_and_exits_by_outcome(lab, tmp_path):
    table = {k: DROP_CASES[k] for k in ("drop as drop", "drop taken for a pass")}
    cases = verdict_file(tmp_path, table, None)
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.md"
    res = cli(lab, "test", str(cases), "--junit", str(junit), "--summary", str(summary))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "expected pass, saw drop" in res.stdout
    schema = xmlschema.XMLSchema(str(JUNIT_XSD))
    schema.validate(str(junit))
    root = schema.to_dict(str(junit))
    assert (root["@tests"], root["@failures"], root["@errors"]) == (2, 1, 0)
    assert "drop taken for a pass" in summary.read_text()
    passing = verdict_file(tmp_path, {"drop as drop": DROP_CASES["drop as drop"]}, None)
    res = cli(lab, "test", str(passing))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 cases: 1 passed" in res.stdout or "1 case: 1 passed" in res.stdout, res.stdout


@pytest.mark.parametrize("data, named", [
    ({"cases": [{"name": "a", "from": "server-a", "to": "blocked.example", "protocol": "tls", "expect": "drop"},
                {"name": "b", "from": "server-a", "to": "blocked.example", "protocol": "tls", "expect": "stop"}]},
     "cases[1] (b): expect must be one of pass, drop, reject, not 'stop'"),
    ({"cases": [{"name": "a", "from": "server-z", "to": "blocked.example", "protocol": "tls", "expect": "drop"}]},
     "cases[0] (a): from: 'server-z' is neither a server nor a subnet"),
    ({"cases": [{"name": "a", "from": "server-a", "to": "192.0.2.9", "protocol": "tcp", "port": 22,
                 "expect": "drop"}]}, "to: 192.0.2.9 is not a host address of the lab's internet"),
])
def test_a_malformed_case_file_is_refused_naming_case_and_field_and_nothing_runs(lab, tmp_path, data, named):
    cases = write(tmp_path, data)
    mark = lab.log_mark()
    ledger = lab.state_dir / "probe-ports.json"
    before = ledger.read_text() if ledger.exists() else None
    res = cli(lab, "test", str(cases))
    assert res.returncode == 2, res.stdout + res.stderr
    assert named in res.stderr and str(cases) in res.stderr, res.stderr
    assert (ledger.read_text() if ledger.exists() else None) == before, "no source port was taken"
    # A request would leave an application record (tls, http, dns) or an alert; earlier tests' flows may
    # still end (flow, netflow records) meanwhile.
    sent = [r for r in lab.eve.records(since=mark.eve) if r.get("event_type") in ("alert", "tls", "http", "dns")]
    assert sent == [], "nothing was sent"


def test_pytest_collects_a_case_file_one_item_per_case(tmp_path, pytestconfig):
    """A case file given to pytest: one item per case, a wrong expectation reported with what was seen."""
    cases = write(tmp_path, {"cases": [
        {"name": "right", "from": "server-a", "to": "blocked.example", "protocol": "tls", "expect": "drop"},
        {"name": "wrong", "from": "server-a", "to": "allowed.example", "protocol": "tls", "expect": "drop"},
    ]}, "policy-cases.yaml")
    name = worker_lab_name(f"{pytestconfig.getoption('--nfwlab-name')}-plugin")
    env = {**os.environ, "TESTCONTAINERS_RYUK_DISABLED": "true"}
    env.pop("PYTEST_XDIST_WORKER", None)  # the inner session is not a worker: its lab takes the name given
    res = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(cases),
                          "--nfwlab-name", name, "-rf"], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=300)
    assert "1 failed, 1 passed" in res.stdout, res.stdout + res.stderr
    assert "expected drop, saw pass (answer: HTTP 200)" in res.stdout, res.stdout
    assert not Lab(name).status().up, "the inner session removed its lab"


def test_a_subnet_source_spreads_over_its_servers_and_each_is_logged_as_itself(lab):
    """firewall-first: the firewall sees the servers' own addresses, one case per server of the subnet."""
    data = {"topology": "firewall-first", "cases": [
        {"name": f"private {i}", "from": "private", "to": "blocked.example", "protocol": "tls", "expect": "drop"}
        for i in range(4)]}
    run = run_cases(lab, parse_cases(data, HOME / "inline.yaml").cases)
    assert [r.seen.server for r in run.results] == ["server-a", "server-b"] * 2
    assert [r.seen.logged_source for r in run.results] == ["10.0.136.108", "10.0.140.23"] * 2


def test_each_availability_zone_logs_its_own_servers_and_a_wrong_zone_fails(tmp_path, pytestconfig):
    """multi-az: `nfwlab test` starts a lab of the cases' topology, keeps it with --keep; each endpoint logs
    its own AZ's flows, and a case expecting the other AZ fails naming both."""
    lab = Lab(worker_lab_name(f"{pytestconfig.getoption('--nfwlab-name')}-maz"))
    lab.down()
    try:
        res = cli(lab, "test", "cases/multi-az.yaml", "--keep")
        assert res.returncode == 0, res.stdout + res.stderr
        assert lab.status().up and lab.topology_name == "multi-az"
        wrong = write(tmp_path, {"topology": "multi-az", "cases": [
            {"name": "server-a in the other AZ", "from": "server-a", "to": "blocked.example", "protocol": "tls",
             "expect": "drop", "availability_zone": "ap-northeast-1c"}]})
        res = cli(lab, "test", str(wrong))
        assert res.returncode == 1, res.stdout + res.stderr
        assert "expected the endpoint in ap-northeast-1c to log it, saw ap-northeast-1a" in res.stdout, res.stdout
    finally:
        lab.down()
