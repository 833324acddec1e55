"""Case files (lab/cases.py): what a good file expands to, what a bad one is refused for, selection, and the
JSON Schema written to cases/schema.json. Pure: no Docker."""
import copy
import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from lab.cases import AlertExpectation, CaseError, load_cases, parse_cases, schema, schema_text, select, with_overrides

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "cases" / "schema.json"
FILE = Path("/lab/cases/deny.yaml")  # only its directory matters: policies and topologies are relative to it

GOOD = {
    "description": "deny list and friends",
    "policy": "../policies/deny-domains.json",
    "topology": "nat-first",
    "defaults": {"from": "server-a", "protocol": "tls"},
    "cases": [
        {"name": "allowed passes", "to": "allowed.example", "expect": "pass", "alert": "none", "tags": ["smoke"]},
        {"name": "blocked by sid", "to": "blocked.example", "expect": "drop", "alert": 5},
        {"name": "blocked by sid mapping", "to": "Blocked.Example", "expect": "reject", "alert": {"sid": 5}},
        {"name": "blocked by message", "from": "private", "to": "blocked.example", "protocol": "http",
         "expect": "drop", "alert": {"message": "x"}, "logged_source": "nat-gateway"},
        {"name": "dns by default port", "to": "example.test", "protocol": "dns", "expect": "pass"},
        {"name": "dns to an address", "to": "203.0.113.10", "protocol": "dns", "query": "a.example.test",
         "expect": "pass"},
        {"name": "tls to an address", "to": "203.0.113.10", "expect": "pass"},
        {"name": "tls with its own sni", "to": "203.0.113.10", "sni": "Blocked.Example", "expect": "drop",
         "alert": {"sid": 1, "message": "matching TLS denylisted FQDNs"}},
        {"name": "ping", "to": "203.0.113.10", "protocol": "icmp", "expect": "pass",
         "availability_zone": "ap-northeast-1a"},
        {"name": "udp echo", "to": "203.0.113.20", "protocol": "udp", "port": 7, "expect": "drop"},
    ],
    "groups": [
        {"name": "ports", "description": "one host, two names, two ports", "tags": ["ports", "smoke"],
         "policy": "policies/ports.json", "topology": "../topologies/multi-az.yaml",
         "defaults": {"protocol": "http", "expect": "pass"},
         "cases": [
             {"name": "{host} on {p}", "each": {"host": ["a.example", "b.example"], "p": [80, 8080]},
              "to": "{host}", "port": "{p}", "tags": ["each", "smoke"], "description": "to {host}:{p}"},
             {"name": "tcp 22 is rejected", "to": "203.0.113.10", "protocol": "tcp", "port": 22,
              "expect": "reject"},
         ]},
        {"name": "inherits", "cases": [{"name": "alone", "to": "example.test", "expect": "pass"}]},
    ],
}


def norm(path):
    """A path as the file it names (the parser may or may not collapse `..`)."""
    return Path(os.path.normpath(path))


def good():
    return copy.deepcopy(GOOD)


@pytest.fixture(scope="module")
def parsed():
    return parse_cases(good(), FILE)


@pytest.fixture(scope="module")
def by_name(parsed):
    return {c.name: c for c in parsed.cases}


# ------------------------------------------------------------------ a good file
def test_good_file_expands_every_case_in_order(parsed):
    assert parsed.path == FILE
    assert parsed.description == "deny list and friends"
    assert [c.name for c in parsed.cases] == [
        "allowed passes", "blocked by sid", "blocked by sid mapping", "blocked by message", "dns by default port",
        "dns to an address", "tls to an address", "tls with its own sni", "ping", "udp echo",
        "ports / a.example on 80", "ports / a.example on 8080", "ports / b.example on 80", "ports / b.example on 8080",
        "ports / tcp 22 is rejected", "inherits / alone"]


def test_top_level_defaults_policy_and_topology(parsed, by_name):
    assert norm(parsed.policy) == Path("/lab/policies/deny-domains.json")
    assert parsed.topology == "nat-first"
    c = by_name["allowed passes"]
    assert (c.source, c.to, c.protocol, c.port, c.expect, c.server_name) == (
        "server-a", "allowed.example", "tls", 443, "pass", "allowed.example")
    assert norm(c.policy) == Path("/lab/policies/deny-domains.json") and c.topology == "nat-first"
    assert c.group == "" and c.tags == ("smoke",)
    assert c.where == f"{FILE}: cases[0] (allowed passes)"
    # a case's own field beats the defaults
    assert by_name["blocked by message"].source == "private"
    assert by_name["blocked by message"].protocol == "http"


def test_groups_prefix_names_merge_tags_and_resolve_paths_from_the_file(by_name):
    c = by_name["ports / a.example on 8080"]
    assert c.group == "ports"
    assert c.tags == ("ports", "smoke", "each")  # group's first, then the case's, each once
    assert norm(c.policy) == Path("/lab/cases/policies/ports.json")
    assert norm(c.topology) == Path("/lab/topologies/multi-az.yaml")
    assert (c.source, c.expect) == ("server-a", "pass")  # file defaults under the group's
    assert c.where == f"{FILE}: groups[0].cases[0] ({{host}} on {{p}})"
    rejected = by_name["ports / tcp 22 is rejected"]
    assert (rejected.protocol, rejected.port, rejected.tags) == ("tcp", 22, ("ports", "smoke"))
    # a group without policy or topology runs under the file's
    alone = by_name["inherits / alone"]
    assert (norm(alone.policy), alone.topology, alone.tags, alone.protocol) == (
        Path("/lab/policies/deny-domains.json"), "nat-first", (), "tls")


def test_each_is_the_product_and_a_whole_placeholder_keeps_the_type(parsed):
    made = [c for c in parsed.cases if c.name.startswith(("ports / a.", "ports / b."))]
    assert [(c.to, c.port, c.server_name, c.description) for c in made] == [
        ("a.example", 80, "a.example", "to a.example:80"),
        ("a.example", 8080, "a.example", "to a.example:8080"),
        ("b.example", 80, "b.example", "to b.example:80"),
        ("b.example", 8080, "b.example", "to b.example:8080")]
    assert all(type(c.port) is int for c in made)


def test_each_substitutes_inside_text_as_text():
    cases = parse_cases({"cases": [{"name": "port {p}", "each": {"p": [80, 81]}, "from": "server-a",
                                    "to": "h{p}.example", "protocol": "http", "port": "{p}", "expect": "pass"}]},
                        FILE).cases
    assert [(c.name, c.to, c.port) for c in cases] == [("port 80", "h80.example", 80), ("port 81", "h81.example", 81)]


def test_default_ports_and_names(by_name):
    assert by_name["blocked by message"].port == 80
    assert by_name["dns by default port"].port == 53
    assert by_name["dns by default port"].server_name == "example.test"
    assert by_name["ping"].port is None and by_name["ping"].server_name is None
    assert by_name["udp echo"].port == 7 and by_name["udp echo"].server_name is None
    # a name in `to` is lower-cased and is the SNI; an address is not a name
    assert (by_name["blocked by sid mapping"].to, by_name["blocked by sid mapping"].server_name) == (
        "blocked.example", "blocked.example")
    assert by_name["tls to an address"].server_name is None
    assert by_name["tls with its own sni"].server_name == "blocked.example"
    assert by_name["dns to an address"].server_name == "a.example.test"


def test_alert_forms(by_name):
    assert by_name["allowed passes"].alert == AlertExpectation(absent=True)
    assert by_name["blocked by sid"].alert == AlertExpectation(sid=5)
    assert by_name["blocked by sid mapping"].alert == AlertExpectation(sid=5)
    assert by_name["blocked by message"].alert == AlertExpectation(message="x")
    assert by_name["tls with its own sni"].alert == AlertExpectation(1, "matching TLS denylisted FQDNs")
    assert by_name["dns by default port"].alert is None  # no alert expectation at all
    assert by_name["allowed passes"].alert.describe() == "no alert"
    assert by_name["tls with its own sni"].alert.describe() == 'alert sid 1 "matching TLS denylisted FQDNs"'


def test_request_and_expectation_in_words(by_name):
    assert by_name["tls with its own sni"].request() == "tls 203.0.113.10:443 (sni blocked.example)"
    assert by_name["ping"].request() == "icmp 203.0.113.10"
    assert by_name["blocked by message"].expectation() == 'drop, alert "x", logged from nat-gateway'
    assert by_name["ping"].expectation() == "pass, in ap-northeast-1a"


def test_load_cases_reads_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("# yaml-language-server: $schema=schema.json\npolicy: p.json\ncases:\n"
                    "  - {name: one, from: server-a, to: blocked.example, protocol: tls, expect: drop, alert: 1}\n")
    loaded = load_cases(path)
    assert norm(loaded.policy) == tmp_path / "p.json"
    assert [(c.name, c.alert, c.where) for c in loaded.cases] == [("one", AlertExpectation(sid=1),
                                                                   f"{path}: cases[0] (one)")]


# ------------------------------------------------------------ refused files
BASE = {"name": "ok", "from": "server-a", "to": "allowed.example", "protocol": "tls", "expect": "pass"}
DROP = object()  # case(field=DROP): the field left out


def case(**fields):
    out = {**BASE, "name": "bad"}
    for k, v in fields.items():
        if v is DROP:
            out.pop(k)
        else:
            out[k] = v
    return out

# (id, the second case of a file, what its CaseError must say after "FILE: cases[1] (...)")
BAD_CASES = [
    ("unknown field", case(sorce="server-a"), "(bad): unknown field 'sorce'"),
    ("missing name", case(name=DROP), ": name is missing"),
    ("missing from", case(**{"from": DROP}), "(bad): from is missing"),
    ("missing to", case(to=DROP), "(bad): to is missing"),
    ("missing protocol", case(protocol=DROP), "(bad): protocol is missing (one of tls, http, tcp, udp, icmp, dns)"),
    ("missing expect", case(expect=DROP), "(bad): expect is missing (one of pass, drop, reject)"),
    ("bad protocol", case(protocol="https"), "(bad): protocol must be one of tls, http, tcp, udp, icmp, dns, not 'https'"),
    ("bad expect", case(expect="deny"), "(bad): expect must be one of pass, drop, reject, not 'deny'"),
    ("port 0", case(port=0), "(bad): port must be a whole number from 1 to 65535, not 0"),
    ("port 70000", case(port=70000), "(bad): port must be a whole number from 1 to 65535, not 70000"),
    ("port abc", case(port="abc"), "(bad): port must be a whole number from 1 to 65535, not 'abc'"),
    ("port true", case(port=True), "(bad): port must be a whole number from 1 to 65535, not True"),
    ("port on icmp", case(protocol="icmp", to="203.0.113.10", port=7), "(bad): port: an icmp case has no port"),
    ("reject on udp", case(protocol="udp", port=53, expect="reject"),
     '(bad): expect: reject applies to TCP only (AWS: "REJECT is available only for TCP traffic")'),
    ("reject on dns", case(protocol="dns", expect="reject"), '(AWS: "REJECT is available only for TCP traffic")'),
    ("sni on http", case(protocol="http", sni="allowed.example"), "(bad): sni applies to tls cases only, not http"),
    ("host on tls", case(host="allowed.example"), "(bad): host applies to http cases only, not tls"),
    ("bad sni", case(sni="not a name"), "(bad): sni 'not a name' is not a domain name"),
    ("dns to an address without query", case(protocol="dns", to="203.0.113.10"),
     "(bad): query is missing: a dns case sent to an address needs the name it asks for"),
    ("bad domain in to", case(to="bad_domain!.example"),
     "(bad): to 'bad_domain!.example' is neither an IPv4 address nor a domain name"),
    ("to not text", case(to=5), "(bad): to must be a non-empty string, not 5"),
    ("empty from", case(**{"from": " "}), "(bad): from must be a non-empty string, not ' '"),
    ("alert {}", case(alert={}), "(bad): alert needs a sid, a message or both (or `alert: none` for no alert)"),
    ("alert sid -1", case(alert={"sid": -1}), "(bad): alert.sid must be a positive whole number, not -1"),
    ("alert sid text", case(alert={"sid": "5"}), "(bad): alert.sid must be a positive whole number, not '5'"),
    ("alert empty message", case(alert={"message": ""}), "(bad): alert.message must be a non-empty string, not ''"),
    ("alert unknown key", case(alert={"sig": 5}), "(bad): unknown field 'sig' (allowed: sid, message)"),
    ("alert bad word", case(alert="never"), "(bad): alert (a mapping with sid and/or message, or none) must be a mapping, not str"),
    ("duplicate names", case(name="ok"), "(ok): the name 'ok' is taken by cases[0] (ok): each case needs a name of its own"),
    ("each name without placeholder", case(each={"p": [1, 2]}),
     "(bad): name must contain a parameter of `each` ({p}): every case it makes needs a name of its own"),
    ("placeholder naming no parameter", case(name="bad {p}", each={"p": [1]}, description="{q}"),
     "(bad {p}): {q} names no parameter of `each` (p)"),
    ("each not lists", case(name="bad {p}", each={"p": 1}), "(bad {p}): each must map parameter names to non-empty lists, not {'p': 1}"),
    ("placeholder without each", case(to="{host}"), "(bad): to '{host}' is neither an IPv4 address nor a domain name"),
    ("tags not a list of words", case(tags=["two words"]),
     "(bad): tags must be a list of words (letters, digits, . _ : -), not ['two words']"),
    ("tags a mapping", case(tags={"a": 1}), "(bad): tags must be a list of words"),
    ("availability_zone empty", case(availability_zone=""), "(bad): availability_zone must be a non-empty string, not ''"),
    ("case not a mapping", "server-a to allowed.example", ": a case must be a mapping, not str"),
]


@pytest.mark.parametrize("bad, said", [pytest.param(b, s, id=i) for i, b, s in BAD_CASES])
def test_a_bad_case_is_refused_naming_file_case_and_field(bad, said):
    with pytest.raises(CaseError) as e:
        parse_cases({"cases": [dict(BASE), bad]}, FILE)
    message = e.value.message
    lines = message.splitlines()
    assert lines[0].endswith(f"problem(s) in the case file {FILE}:"), message
    assert lines[1].startswith(f"  {FILE}: cases[1]"), message
    assert said in message, message
    assert "nothing was run" in e.value.hint


def test_a_bad_case_in_a_group_is_named_by_its_place_in_the_group():
    with pytest.raises(CaseError) as e:
        parse_cases({"groups": [{"name": "g", "cases": [dict(BASE), case(port=0)]}]}, FILE)
    assert f"{FILE}: groups[0].cases[1] (bad): port must be a whole number" in e.value.message


def test_a_case_of_each_that_is_bad_once_expanded_names_its_field():
    with pytest.raises(CaseError) as e:
        parse_cases({"cases": [case(name="to {p}", port="{p}", each={"p": [443, 0]})]}, FILE)
    assert e.value.message.splitlines()[1] == (
        f"  {FILE}: cases[0] (to {{p}}): port must be a whole number from 1 to 65535, not 0")


BAD_FILES = [
    ("top-level list", [BASE], "the file: a case file (with `cases` or `groups`) must be a mapping, not list"),
    ("top-level text", "cases", "the file: a case file (with `cases` or `groups`) must be a mapping, not str"),
    ("empty file", None, "the file: a case file (with `cases` or `groups`) must be a mapping, not NoneType"),
    ("no cases at all", {"description": "nothing"}, "the file: no cases: give a non-empty `cases`, `groups`, or both"),
    ("cases empty", {"cases": []}, "the file: cases must be a non-empty list of cases"),
    ("unknown top-level field", {"cases": [BASE], "case": []}, "the file: unknown field 'case'"),
    ("defaults with a name", {"defaults": {"name": "x"}, "cases": [BASE]}, "the file: unknown field 'name'"),
    ("group without name", {"groups": [{"cases": [BASE]}]}, "groups[0]: name is missing: every group needs a name"),
    ("group without cases", {"groups": [{"name": "g"}]}, "groups[0]: cases must be a non-empty list of cases"),
    ("groups not a list", {"groups": {"name": "g"}}, "groups: groups must be a list"),
]


@pytest.mark.parametrize("data, said", [pytest.param(d, s, id=i) for i, d, s in BAD_FILES])
def test_a_bad_file_is_refused(data, said):
    with pytest.raises(CaseError) as e:
        parse_cases(data, FILE)
    assert f"{FILE}: {said}" in e.value.message, e.value.message


@pytest.mark.parametrize("data", [{}, {"groups": []}], ids=["empty mapping", "empty groups"])
def test_a_file_without_a_single_case_is_refused(data):
    with pytest.raises(CaseError, match="no cases"):
        parse_cases(data, FILE)


def test_a_protocol_that_is_a_list_is_refused_not_a_crash():
    with pytest.raises(CaseError, match=r"protocol must be one of"):
        parse_cases({"cases": [case(protocol=["tls"])]}, FILE)


def test_alert_zero_is_refused_not_read_as_no_alert():
    with pytest.raises(CaseError, match=r"alert\.sid must be a positive whole number, not 0"):
        parse_cases({"cases": [case(alert=0)]}, FILE)


def test_every_problem_of_a_file_is_reported_at_once():
    with pytest.raises(CaseError) as e:
        parse_cases({"cases": [case(name="one", port=0), dict(BASE), case(name="two", expect="deny")],
                     "groups": [{"name": "g", "cases": [case(name="three", protocol="icmp", port=1)]}]}, FILE)
    lines = e.value.message.splitlines()
    assert lines == [
        f"3 problem(s) in the case file {FILE}:",
        f"  {FILE}: cases[0] (one): port must be a whole number from 1 to 65535, not 0",
        f"  {FILE}: cases[2] (two): expect must be one of pass, drop, reject, not 'deny'",
        f"  {FILE}: groups[0].cases[0] (three): port: an icmp case has no port"]


def test_more_than_twenty_problems_are_counted_not_all_shown():
    with pytest.raises(CaseError) as e:
        parse_cases({"cases": [case(name=f"c{i}", port=0) for i in range(25)]}, FILE)
    lines = e.value.message.splitlines()
    assert lines[0] == f"25 problem(s) in the case file {FILE}:"
    assert len(lines) == 22 and lines[-1] == "  ... and 5 more"


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("cases:\n  - name: a\n    from: [server-a\n    to: x\n")
    with pytest.raises(CaseError) as e:
        load_cases(path)
    assert e.value.message == f"{path} is not YAML: while parsing a flow sequence (line 4)"


def test_a_file_that_cannot_be_read_is_refused(tmp_path):
    with pytest.raises(CaseError) as e:
        load_cases(tmp_path / "missing.yaml")
    assert e.value.message == f"cannot read the case file {tmp_path / 'missing.yaml'}: No such file or directory"
    with pytest.raises(CaseError) as e:
        load_cases(tmp_path)
    assert e.value.message == f"cannot read the case file {tmp_path}: Is a directory"


def test_load_cases_refuses_what_parse_cases_refuses(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("cases:\n  - {name: a, from: server-a, to: x.example, protocol: quic, expect: pass}\n")
    with pytest.raises(CaseError, match=rf"{path}: cases\[0\] \(a\): protocol must be one of"):
        load_cases(path)


# ------------------------------------------------------------------ selection
def test_select_by_tags_needs_every_tag(parsed):
    assert [c.name for c in select(parsed.cases, tags=["smoke"])] == [
        "allowed passes", "ports / a.example on 80", "ports / a.example on 8080", "ports / b.example on 80",
        "ports / b.example on 8080", "ports / tcp 22 is rejected"]
    assert [c.name for c in select(parsed.cases, tags=["smoke", "each"])] == [
        "ports / a.example on 80", "ports / a.example on 8080", "ports / b.example on 80", "ports / b.example on 8080"]
    assert select(parsed.cases, tags=["smoke", "nope"]) == []
    assert select(parsed.cases) == list(parsed.cases)


def test_select_by_name_text_any_of_them_case_insensitive(parsed):
    assert [c.name for c in select(parsed.cases, names=["BLOCKED BY"])] == [
        "blocked by sid", "blocked by sid mapping", "blocked by message"]
    assert [c.name for c in select(parsed.cases, names=["8080", "alone"])] == [
        "ports / a.example on 8080", "ports / b.example on 8080", "inherits / alone"]
    assert [c.name for c in select(parsed.cases, tags=["ports"], names=["8080"])] == [
        "ports / a.example on 8080", "ports / b.example on 8080"]


def test_with_overrides_replaces_policy_and_topology(parsed):
    policy = Path("/other/policy.json")
    both = with_overrides(parsed.cases, policy, "firewall-first")
    assert {(c.policy, c.topology) for c in both} == {(policy, "firewall-first")}
    assert [c.name for c in both] == [c.name for c in parsed.cases]
    only_policy = with_overrides(parsed.cases, policy=policy)
    assert [c.topology for c in only_policy] == [c.topology for c in parsed.cases]
    assert {c.policy for c in only_policy} == {policy}
    assert with_overrides(parsed.cases) == list(parsed.cases)


# ---------------------------------------------------------------- JSON Schema
def test_schema_file_is_the_schema_the_code_writes():
    assert SCHEMA_FILE.exists() and SCHEMA_FILE.read_text() == schema_text(), (
        "cases/schema.json is out of date with lab/cases.py: regenerate it with "
        "`nfwlab test --schema > cases/schema.json`")


def test_schema_is_a_valid_draft_2020_12_schema():
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema())
    assert json.loads(schema_text()) == schema()


VALIDATOR = jsonschema.Draft202012Validator(schema())
GOOD_EXAMPLES = {
    "the good file": GOOD,
    "one case": {"cases": [BASE]},
    "groups only": {"groups": [{"name": "g", "tags": ["a"], "cases": [BASE]}]},
    "each with a string port": {"cases": [case(name="p {p}", each={"p": [80, 8080]}, protocol="http", port="{p}")]},
}


@pytest.mark.parametrize("data", GOOD_EXAMPLES.values(), ids=GOOD_EXAMPLES.keys())
def test_good_examples_parse_and_validate_against_the_schema(data):
    parse_cases(copy.deepcopy(data), FILE)
    assert [e.message for e in VALIDATOR.iter_errors(data)] == []


BAD_FOR_BOTH = {
    "unknown field": {"cases": [case(sorce="server-a")]},
    "bad protocol": {"cases": [case(protocol="https")]},
    "bad expect": {"cases": [case(expect="deny")]},
    "alert {}": {"cases": [case(alert={})]},
    "unknown top-level field": {"cases": [BASE], "case": []},
    "no cases": {"description": "nothing"},
    "tags with a space": {"cases": [case(tags=["two words"])]},
    "group without name": {"groups": [{"cases": [BASE]}]},
    "alert: null": {"cases": [case(alert=None)]},
    "description: null": {"cases": [case(description=None)]},
}


@pytest.mark.parametrize("data", BAD_FOR_BOTH.values(), ids=BAD_FOR_BOTH.keys())
def test_malformed_examples_fail_the_schema_and_the_parser(data):
    assert not VALIDATOR.is_valid(data)
    with pytest.raises(CaseError):
        parse_cases(copy.deepcopy(data), FILE)


# What the parser accepts, the schema accepts too: an editor marks no good file as wrong.
PARSER_ONLY = {
    "tags as one word": {"cases": [case(tags="smoke")]},
    "alert as a whole placeholder": {"cases": [case(name="a {s}", each={"s": [1, 2]}, alert="{s}")]},
    "protocol as a placeholder": {"cases": [case(name="{proto}", each={"proto": ["tls", "http"]}, protocol="{proto}")]},
    "expect as a placeholder": {"cases": [case(name="{e}", each={"e": ["drop", "reject"]}, expect="{e}")]},
}


@pytest.mark.parametrize("data", PARSER_ONLY.values(), ids=PARSER_ONLY.keys())
def test_what_the_parser_accepts_the_schema_accepts(data):
    parse_cases(copy.deepcopy(data), FILE)
    assert VALIDATOR.is_valid(data)


SHIPPED = sorted((ROOT / "cases").glob("*.yaml"))


def test_the_case_files_are_shipped():
    assert {p.stem for p in SHIPPED} >= {"scenario", "deny-domains", "allow-domains", "home-net-trap",
                                         "strict-allow", "next-generation", "multi-az"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_case_file_loads_and_validates_against_the_schema(path):
    data = yaml.safe_load(path.read_text())
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in VALIDATOR.iter_errors(data)]
    assert not errors, errors
    loaded = load_cases(path)
    assert loaded.cases and loaded.policy is not None and loaded.policy.exists(), loaded.policy
