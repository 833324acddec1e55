"""Parsers that never crash: topologies, Classic and Next Generation policies, rule groups and case files,
generated from scratch or mutated from every shipped document, as data and as the text users give. Every
outcome is a valid model or a LabError whose message names the file; never another exception.

Reproducible: every test is derandomized (the same examples on every run, no example database), so a test
that fails once in CI fails every time. Each bug these tests found keeps its example below (@example, or a
plain test at the end)."""
from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lab.cases import load_cases, parse_cases
from lab.documents import read_document
from lab.errors import LabError
from lab.model import load_topology, parse_topology
from lab.nextgen import load_any_policy, parse_any_policy, render_any
from lab.policy import parse_any_group, policy_from_group, render, rules_file_policy
from lab.stateless import StatelessGroup, StatelessPolicy, iptables_rules

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY_FILES = sorted((ROOT / "topologies").glob("*.yaml"))
POLICY_FILES = sorted((ROOT / "policies").iterdir())
CASE_FILES = sorted((ROOT / "cases").glob("*.yaml"))
VPC = "10.0.0.0/16"
MAX_EXAMPLES = 200

# The same examples on every run and no example database: a failure in CI is a failure everywhere, every time.
FAST = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Seeds the shipped files do not cover: a stateless rule group with a custom action, and a Next Generation
# policy whose firewall and IPS sections reference rule groups (a domain list, modeled rules, an IPS group).
STATELESS = {
    "FirewallPolicyName": "stateless",
    "FirewallPolicy": {
        "StatelessDefaultActions": ["aws:forward_to_sfe"], "StatelessFragmentDefaultActions": ["aws:drop"],
        "StatelessRuleGroupReferences": [{"ResourceArn": "arn:aws:network-firewall:ap-northeast-1:111122223333:"
                                                         "stateless-rulegroup/telnet", "Priority": 10}],
        "StatefulRuleGroupReferences": []},
    "RuleGroups": [{
        "RuleGroupResponse": {"RuleGroupName": "telnet", "Type": "STATELESS", "Capacity": 10},
        "RuleGroup": {"RulesSource": {"StatelessRulesAndCustomActions": {
            "StatelessRules": [{"Priority": 1, "RuleDefinition": {
                "Actions": ["aws:drop", "CountTelnet"],
                "MatchAttributes": {"Protocols": [6], "Sources": [{"AddressDefinition": "10.0.0.0/16"}],
                                    "DestinationPorts": [{"FromPort": 23, "ToPort": 23}],
                                    "TCPFlags": [{"Flags": ["SYN"], "Masks": ["SYN", "ACK"]}]}}}],
            "CustomActions": [{"ActionName": "CountTelnet", "ActionDefinition": {
                "PublishMetricAction": {"Dimensions": [{"Value": "telnet"}]}}}]}}}}],
}
NEXTGEN_REFS = {
    "FirewallPolicyV2Name": "refs",
    "FirewallPolicyV2": {
        "FirewallDefaultAction": "REJECT", "PolicyMode": "MONITOR",
        "PolicyVariables": {"RuleVariables": {"HOME_NET": {"Definition": ["10.0.0.0/16"]}}},
        "StatefulEngineOptions": {"StreamExceptionPolicy": "DROP", "FlowTimeouts": {"TcpIdleTimeoutSeconds": 350}},
        "FirewallRuleGroupEntries": [{"Priority": 20, "ResourceArn": "allow"}, {"Priority": 10, "ResourceArn": "early"}],
        "IpsRuleGroupEntries": [{"ResourceArn": "ips", "Override": {"Action": "DROP_TO_ALERT"}}]},
    "RuleGroups": [
        {"RuleGroupName": "allow", "RuleGroupResponse": {"Type": "FIREWALL", "Capacity": 20},
         "FirewallRuleGroup": {"RulesSource": {"RulesSourceList": {
             "Targets": ["allowed.example", ".example.test"], "TargetTypes": ["TLS_SNI", "HTTP_HOST"],
             "GeneratedRulesType": "ALLOWLIST"}}}},
        {"RuleGroupName": "early", "FirewallRuleGroup": {
            "RuleVariables": {"PortSets": {"WEB": {"Definition": ["80", "443"]}}},
            "RulesSource": {"FirewallRules": [
                {"Action": "ACCEPT", "ActionScope": "FLOW", "Protocol": "TLS", "Hook": "TLS_CLIENT_HELLO",
                 "AcceptPriorHooks": True, "DestPorts": "$WEB", "BypassIPSEnabled": True,
                 "RuleMetadata": {"RuleDescription": "allow", "RuleEnabled": True},
                 "RuleOptions": [{"Keyword": "tls.sni"}, {"Keyword": "content", "Settings": ["\"a.example\""]}]},
                {"Action": "DROP", "ActionScope": "PACKET", "Protocol": "TCP", "Hook": "TCP_ALL",
                 "RuleMetadata": {"RuleEnabled": False}}]}}},
        {"RuleGroupName": "ips", "IpsRuleGroup": {"RulesSource": {"RulesString":
            'drop tls $HOME_NET any -> $EXTERNAL_NET any (tls.sni; content:"bad.example"; sid:7;)\n'}}}],
}


def paths(data: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every place in a document: the root, each key's value, each list item."""
    yield prefix
    if isinstance(data, dict):
        for k, v in data.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from paths(v, (*prefix, i))


def get(data: Any, path: tuple) -> Any:
    for step in path:
        data = data[step]
    return data


def put(data: Any, path: tuple, value: Any) -> Any:
    """The document with the value at `path` replaced (the root replaced when `path` is empty)."""
    if not path:
        return value
    get(data, path[:-1])[path[-1]] = value
    return data


def shipped(files: list[Path]) -> list[tuple[str, Any]]:
    return [(p.name, read_document(p)) for p in files]


def one_file(name: str, doc: dict) -> dict:
    """A policy in the lab's one-file form: the rule groups it finds next to it listed in its RuleGroups."""
    refs = [r for part in ("FirewallPolicy", "FirewallPolicyV2") for r in doc.get(part, {}).get(
        "StatefulRuleGroupReferences", [])]
    own = {g.get("RuleGroupName") for g in doc.get("RuleGroups", [])}
    extra = [read_document(ROOT / "policies" / f"{r['ResourceArn'].rsplit('/', 1)[-1]}.json") for r in refs
             if r["ResourceArn"].rsplit("/", 1)[-1] not in own]
    return {**doc, "RuleGroups": doc.get("RuleGroups", []) + extra} if extra else doc


TOPOLOGIES = shipped(TOPOLOGY_FILES)
POLICIES = [(name, one_file(name, doc)) for name, doc in shipped(POLICY_FILES)
            if "FirewallPolicy" in doc or "FirewallPolicyV2" in doc] + [("stateless.json", STATELESS),
                                                                         ("refs.json", NEXTGEN_REFS)]
GROUPS = [(name, doc) for name, doc in shipped(POLICY_FILES) if "RuleGroup" in doc] + [
    (f"{name}: RuleGroups[{i}]", g) for name, doc in POLICIES if "FirewallPolicy" in doc
    for i, g in enumerate(doc.get("RuleGroups", []))]  # Classic rule groups (a Next Generation policy's: above)
CASE_DOCS = [(p.name, yaml.safe_load(p.read_text())) for p in CASE_FILES]


# Suricata rules as users write them: every RulesString of the seeds (a rules file runs as one rule group).
RULES_TEXTS = sorted({get(d, p) for _, d in POLICIES for p in paths(d) if p and p[-1] == "RulesString"})
# The formats' own words, so that documents generated from scratch get past the first check now and then.
VOCABULARY = sorted({p[-1] for _, d in TOPOLOGIES + POLICIES + GROUPS + CASE_DOCS for p in paths(d)
                     if p and isinstance(p[-1], str)})

# Values of the wrong type, out of range, or hostile: what a mutation puts in place of a value.
ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 65535, 65536, 2**63, 10**30, 1.5, -0.0, math.nan, math.inf, -math.inf,
    "", " ", "x" * 5000, "ünïcödé ☃ 日本語", "../../etc/passwd", "/etc/passwd", "~nosuchuser/x", "\x00", "a\nb",
    "{n}", "{x}", "$HOME_NET", "$UNDEFINED", "0.0.0.0/0", "10.0.0.0/33", "10.0.136.108", "any", "ANY",
    "arn:aws:x/../../y", "tls:<client_hello", "tcp:<all", "accept:flow", '"', "(", ")", ";",
    [], {}, [None], [[]], [{}], {"": None}, {1: 2}, {None: None}, ["x"], [1, "a"],
]
# YAML and JSON tokens a mutation writes into a document's text: huge numbers, special floats, YAML's tags,
# dates, sets, complex keys, aliases (one that loops), undefined aliases, deep nesting.
YAML_TOKENS = ["9" * 5000, "-" + "9" * 5000, ".nan", "-.inf", "!!binary aGVsbG8=", "2001-12-14",
               "2001-12-14t21:59:43.10-05:00", "!!set {a, b}", "&loop [*loop]", "{? [a, b]: c}", "*undefined",
               "!!python/object/apply:os.getcwd []", "!!int x", "!!float x", "0x1F", "0o17", "1_000", "~", "yes",
               "'../../etc/passwd'", '"\\u0000"', "{1: a, b: 2}", "{null: a}", "[" * 60 + "]" * 60,
               "[" * 1000 + "]" * 1000, "{a: " * 1000 + "1" + "}" * 1000]
JSON_TOKENS = ["9" * 5000, "-" + "9" * 5000, "1e999", "NaN", "-Infinity", '"\\ud800"', '{"a": 1, "a": 2}',
               "[" * 60 + "]" * 60, "[" * 5000 + "]" * 5000, '{"a": ' * 2000 + "1" + "}" * 2000]
MARKER = "@@NFWLAB-MUTATION@@"

odd_values = st.sampled_from(ODD_VALUES).map(copy.deepcopy)  # a fresh copy: an edit may change it later
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | odd_values,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(VOCABULARY) | st.text(max_size=8), children, max_size=5),
    max_leaves=25)
# A document from scratch: an object in the format's words whose values may be anything.
documents = st.dictionaries(st.sampled_from(VOCABULARY), json_values, max_size=8) | json_values


# --------------------------------------------------------------------------
# The oracle
# --------------------------------------------------------------------------
def valid_or_refused(parse: Callable[[], Any], source: str) -> Any:
    """The model `parse` returns, or None when it refuses the document as the lab refuses: a LabError whose
    message is not empty and names the file. Any other exception propagates, failing the test."""
    try:
        return parse()
    except LabError as e:
        assert e.message.strip(), f"an empty refusal: {e!r}"
        assert source in e.message, f"the refusal does not name the file {source}: {e.message}"
        return None


def check_topology(data: Any, source: str = "topology.yaml") -> Any:
    return valid_or_refused(lambda: parse_topology(data, source), source)


def check_policy(data: Any, source: str = "policy.json") -> Any:
    def parse_and_render() -> Any:
        policy = parse_any_policy(data, source)
        return policy, render_any(policy, VPC)
    return valid_or_refused(parse_and_render, source)


def check_group(data: Any, source: str = "group.json") -> Any:
    def parse_and_render() -> Any:
        group = parse_any_group(data, source)
        if isinstance(group, StatelessGroup):
            return group, iptables_rules(StatelessPolicy(((1, group),)))
        return group, render(policy_from_group(group), VPC)
    return valid_or_refused(parse_and_render, source)


def check_cases(data: Any, source: str = "cases.yaml") -> Any:
    return valid_or_refused(lambda: parse_cases(data, Path(source)), source)


def load_topology_file(path: Path) -> Any:
    return valid_or_refused(lambda: load_topology(path), str(path))


def load_policy_file(path: Path) -> Any:
    def load_and_render() -> Any:
        policy = load_any_policy(path)
        return policy, render_any(policy, VPC)
    return valid_or_refused(load_and_render, str(path))


def load_case_file(path: Path) -> Any:
    return valid_or_refused(lambda: load_cases(path), str(path))


# --------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------
def nested(value: Any, depth: int, kind: str) -> Any:
    for _ in range(depth):
        value = [value] if kind == "list" else {"RulesSource": value}
    return value


EDITS = ("delete", "replace", "replace", "borrow", "add", "nest", "retype", "mangle", "mangle")
# What a text edit inserts: the punctuation of rules, addresses, hooks and YAML.
PUNCTUATION = st.text(alphabet=' ;:()"\\-<>$[],!{}#/.\n\t', min_size=1, max_size=4)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[tuple[str, Any]]) -> tuple[str, Any]:
    """A shipped document with one to four random edits: a key deleted, a value replaced by one of another
    type (or by another part of the document), a key or item added, a value nested deep or retyped."""
    name, doc = draw(st.sampled_from(seeds))
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 4))):
        places = list(paths(doc))
        path = draw(st.sampled_from(places))
        edit = draw(st.sampled_from(EDITS))
        target = get(doc, path)
        if edit == "delete" and path:
            parent = get(doc, path[:-1])
            del parent[path[-1]]
        elif edit == "borrow":
            doc = put(doc, path, copy.deepcopy(get(doc, draw(st.sampled_from(places)))))
        elif edit == "add" and isinstance(target, dict):
            target[draw(st.sampled_from(VOCABULARY) | st.text(max_size=6))] = draw(odd_values | json_values)
        elif edit == "add" and isinstance(target, list):
            item = copy.deepcopy(draw(st.sampled_from(target))) if target and draw(st.booleans()) else \
                draw(odd_values)
            target.insert(draw(st.integers(0, len(target))), item)
        elif edit == "nest":
            doc = put(doc, path, nested(target, draw(st.integers(1, 100)), draw(st.sampled_from(["list", "dict"]))))
        elif edit == "mangle" and isinstance(target, str):  # an edit inside a text: a rule, an address, a name
            at, end = sorted(draw(st.tuples(st.integers(0, len(target)), st.integers(0, len(target)))))
            doc = put(doc, path, target[:at] + draw(st.sampled_from(["", target[at:end]]) | PUNCTUATION
                                                    | st.text(max_size=3)) + target[end:])
        elif edit == "retype":
            doc = put(doc, path, draw(st.sampled_from([[target], str(target), {"value": target},
                                                       list(target) if isinstance(target, dict | list) else target])))
        else:
            doc = put(doc, path, draw(odd_values | json_values))
    return name, doc


def lines_edit(draw: st.DrawFn, text: bytes) -> bytes:
    lines = text.splitlines(keepends=True) or [b""]
    i = draw(st.integers(0, len(lines) - 1))
    kind = draw(st.sampled_from(["duplicate", "delete", "swap", "indent", "dedent"]))
    if kind == "duplicate":  # in YAML, a mapping's key twice
        lines.insert(i, lines[i])
    elif kind == "delete":
        del lines[i]
    elif kind == "swap":
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "indent":
        lines[i] = b"  " + lines[i]
    else:
        lines[i] = lines[i].lstrip()
    return b"".join(lines)


def with_token(draw: st.DrawFn, data: Any, suffix: str) -> bytes:
    """The document as text with one value replaced by a raw YAML or JSON token."""
    doc = copy.deepcopy(data)
    doc = put(doc, draw(st.sampled_from(list(paths(doc)))), MARKER)
    if suffix == ".json":
        return json.dumps(doc, indent=2).replace(f'"{MARKER}"', draw(st.sampled_from(JSON_TOKENS))).encode()
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    token = draw(st.sampled_from(YAML_TOKENS))
    return text.replace(f"'{MARKER}'", token).replace(MARKER, token).encode()


def text_edits(draw: st.DrawFn, text: bytes, least: int) -> bytes:
    """`least` to three edits of a text: truncated, random bytes or punctuation inserted, a line duplicated,
    deleted, swapped or re-indented."""
    for _ in range(draw(st.integers(least, 3))):
        edit = draw(st.sampled_from(["truncate", "bytes", "punctuation", "lines", "lines"]))
        at = draw(st.integers(0, len(text)))
        if edit == "truncate":
            text = text[:at]
        elif edit == "bytes":
            text = text[:at] + draw(st.binary(min_size=1, max_size=8)) + text[at:]
        elif edit == "punctuation":
            text = text[:at] + draw(PUNCTUATION).encode() + text[at:]
        else:
            text = lines_edit(draw, text)
    return text


@st.composite
def mutated_text(draw: st.DrawFn, files: list[Path]) -> tuple[Path, bytes]:
    """A shipped file's text, maybe with a value replaced by a raw token, then edited (text_edits)."""
    path = draw(st.sampled_from(files))
    text = path.read_bytes()
    if draw(st.booleans()):
        text = with_token(draw, read_document(path), path.suffix)
    return path, text_edits(draw, text, 0 if text != path.read_bytes() else 1)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped policies (a policy finds the rule groups it references next to it)."""
    d = tmp_path_factory.mktemp("parsers")
    for p in POLICY_FILES:
        (d / p.name).write_bytes(p.read_bytes())
    return d


def written(workdir: Path, original: Path, text: bytes) -> Path:
    """The mutated text as a file of the same kind (its suffix picks JSON or YAML) beside the policies."""
    path = workdir / f"mutated-{original.stem}{original.suffix}"
    path.write_bytes(text)
    return path


# --------------------------------------------------------------------------
# The shipped documents themselves are valid: the seeds are worth mutating
# --------------------------------------------------------------------------
def test_every_shipped_document_is_valid():
    assert all(load_topology_file(p) for p in TOPOLOGY_FILES)
    assert all(load_policy_file(p) for p in POLICY_FILES)
    assert all(check_policy(doc, name) for name, doc in POLICIES)
    assert all(check_group(doc, name) for name, doc in GROUPS)
    assert all(load_case_file(p) for p in CASE_FILES)


# --------------------------------------------------------------------------
# Mutated documents, as data
# --------------------------------------------------------------------------
@FAST
@given(mutated(TOPOLOGIES))
def test_mutated_topologies_are_valid_or_refused(case):
    name, doc = case
    check_topology(doc, name)


@FAST
@given(mutated(POLICIES))
def test_mutated_policies_are_valid_or_refused(case):
    name, doc = case
    check_policy(doc, name)


@FAST
@given(mutated(GROUPS))
def test_mutated_rule_groups_are_valid_or_refused(case):
    name, doc = case
    check_group(doc, name)


@FAST
@given(mutated(CASE_DOCS))
def test_mutated_case_files_are_valid_or_refused(case):
    name, doc = case
    check_cases(doc, name)


# --------------------------------------------------------------------------
# Mutated documents, as text in files
# --------------------------------------------------------------------------
@FAST
@given(mutated_text(TOPOLOGY_FILES))
def test_mutated_topology_files_are_valid_or_refused(workdir, case):
    original, text = case
    load_topology_file(written(workdir, original, text))


@FAST
@given(mutated_text(POLICY_FILES))
def test_mutated_policy_files_are_valid_or_refused(workdir, case):
    original, text = case
    load_policy_file(written(workdir, original, text))


@FAST
@given(mutated_text(CASE_FILES))
def test_mutated_case_files_as_text_are_valid_or_refused(workdir, case):
    original, text = case
    load_case_file(written(workdir, original, text))


@st.composite
def mutated_rules(draw: st.DrawFn) -> bytes:
    """One of the seeds' rule texts, edited (text_edits)."""
    return text_edits(draw, draw(st.sampled_from(RULES_TEXTS)).encode(), 1)


@FAST
@given(mutated_rules())
@example(b"\x80drop tcp any any -> any any (sid:1;)")  # found: not UTF-8 (UnicodeDecodeError)
def test_mutated_rules_files_are_valid_or_refused(workdir, text):
    path = workdir / "mutated.rules"
    path.write_bytes(text)
    valid_or_refused(lambda: render(rules_file_policy(path), VPC), str(path))


# --------------------------------------------------------------------------
# Documents from scratch
# --------------------------------------------------------------------------
@FAST
@given(documents)
@example({1: "a", "zzz": 2})  # found: a number among a mapping's keys (TypeError sorting them)
@example({"RuleGroupResponse": ["x"], "RulesSource": 1, "RuleGroups": 5, "StreamExceptionPolicy": ["DROP"]})
@example({"cases": [{"name": "a", "from": None, "to": "a.example", "protocol": "tls", "expect": "pass"}],
          "policy": "~nosuchuser/p.json"})
def test_generated_documents_are_valid_or_refused(doc):
    check_topology(doc)
    check_policy(doc)
    check_policy({"FirewallPolicyV2": doc})
    check_policy({"FirewallPolicy": doc})
    check_group(doc)
    check_group({"RuleGroup": doc})
    check_cases(doc)


@FAST
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
@example(b"\x80")  # found: not UTF-8 (UnicodeDecodeError in the case file reader)
@example(b"a: !!int x")  # found: a tag on a value it cannot hold (ValueError)
def test_generated_text_is_valid_or_refused(workdir, text):
    for suffix in (".yaml", ".json"):
        path = workdir / f"generated{suffix}"
        path.write_bytes(text)
        load_topology_file(path)
        load_policy_file(path)
        load_case_file(path)
    path = workdir / "generated.rules"
    path.write_bytes(text)
    valid_or_refused(lambda: render(rules_file_policy(path), VPC), str(path))


# --------------------------------------------------------------------------
# Where a refusal points: a sample
# --------------------------------------------------------------------------
def dotted(path: tuple) -> str:
    """A place in a document as refusals write it: subnets[0].cidr."""
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path).lstrip(".")


@pytest.mark.parametrize("bad", [None, {"x": 1}, [1], "x" * 300], ids=["null", "object", "list", "long text"])
def test_a_bad_value_anywhere_in_a_topology_is_refused_at_its_own_field(bad):
    name, seed = next((n, d) for n, d in TOPOLOGIES if n == "nat-first.yaml")
    checked = 0
    for path in (p for p in paths(seed) if not isinstance(get(seed, p), dict | list)):
        doc = put(copy.deepcopy(seed), path, copy.deepcopy(bad))
        if check_topology(doc, name) is None:  # refused (the description, for one, takes anything)
            with pytest.raises(LabError) as e:
                parse_topology(doc, name)
            assert e.value.message.startswith(f"{name}: {dotted(path)}: "), (path, e.value.message)
            checked += 1
    assert checked > 30


# (document, the place to change, the value put there, what the refusal must say, naming the place)
POLICY_SAMPLE = [
    ("home-net-trap.json", ("FirewallPolicy", "PolicyVariables", "RuleVariables", "HOME_NET", "Definition", 0),
     "10.0.0.0/33", "home-net-trap.json: FirewallPolicy.PolicyVariables.RuleVariables.HOME_NET.Definition: "
     "'10.0.0.0/33' is not a CIDR block"),
    ("next-generation.json", ("FirewallPolicyV2", "PolicyVariables"), {"RuleVariables": {"HOME_NET": {}}},
     "next-generation.json: FirewallPolicyV2.PolicyVariables.RuleVariables.HOME_NET.Definition: expected a list"),
    ("home-net-trap.json", ("RuleGroups", 0, "RuleGroup", "RulesSource", "RulesSourceList", "Targets"), [None],
     "home-net-trap.json: RuleGroups[0]: RuleGroup.RulesSource.RulesSourceList.Targets: expected a list of strings"),
    ("strict-allow.yaml", ("RuleGroups", 0, "RuleGroup", "RulesSource", "RulesString"), "# first\npass tcp any any -> any any (msg:\"x\";)",
     "strict-allow.yaml: RuleGroups[0]: RuleGroup.RulesSource.RulesString line 2: the rule has no sid"),
    ("strict-allow.yaml", ("FirewallPolicy", "StatefulEngineOptions", "StreamExceptionPolicy"), ["DROP"],
     "strict-allow.yaml: FirewallPolicy.StatefulEngineOptions.StreamExceptionPolicy: ['DROP'] is not valid"),
    ("refs.json", ("RuleGroups", 2, "IpsRuleGroup", "RulesSource", "RulesString"), None,
     "refs.json: RuleGroups[2]: IpsRuleGroup.RulesSource.RulesString: expected Suricata rules as text"),
    ("next-generation.json", ("FirewallPolicyV2", "IpsRuleGroupEntries", 0, "InlineRuleGroup", "RulesSource",
                              "RulesString"), 5,
     "next-generation.json: FirewallPolicyV2.IpsRuleGroupEntries[0]: InlineRuleGroup.RulesSource.RulesString: "
     "expected Suricata rules as text"),
    ("refs.json", ("RuleGroups", 1, "FirewallRuleGroup", "RulesSource", "FirewallRules", 0, "Protocol"), {"x": 1},
     "refs.json: RuleGroups[1]: FirewallRuleGroup.RulesSource.FirewallRules[0].Protocol: {'x': 1} is not a protocol"),
    ("refs.json", ("RuleGroups", 1, "FirewallRuleGroup", "RulesSource", "FirewallRules", 0, "RuleOptions", 1,
                   "Settings"), ['"a.example'],
     "refs.json: RuleGroups[1]: FirewallRuleGroup.RulesSource.FirewallRules[0]: options do not end with ';'"),
    ("stateless.json", ("RuleGroups", 0, "RuleGroup", "RulesSource", "StatelessRulesAndCustomActions",
                        "StatelessRules", 0, "RuleDefinition", "MatchAttributes", "TCPFlags"), 65535,
     "stateless.json: RuleGroups[0]: RuleGroup.RulesSource.StatelessRulesAndCustomActions.StatelessRules[0]."
     "RuleDefinition.MatchAttributes.TCPFlags: expected a list, got int"),
    ("stateless.json", ("RuleGroups", 0, "RuleGroupResponse"), "telnet",
     "stateless.json: RuleGroups[0]: RuleGroupResponse: expected an object, got str"),
]


@pytest.mark.parametrize("name, path, value, said", POLICY_SAMPLE,
                         ids=[f"{n}:{dotted(p)}" for n, p, _, _ in POLICY_SAMPLE])
def test_a_policy_refusal_names_the_file_and_the_field(name, path, value, said):
    doc = put(copy.deepcopy(dict(POLICIES)[name]), path, value)
    with pytest.raises(LabError) as e:
        parse_any_policy(doc, name)
    assert e.value.message.startswith(said), e.value.message


def test_a_case_file_refusal_names_the_file_the_case_and_the_field():
    name, seed = next((n, d) for n, d in CASE_DOCS if n == "scenario.yaml")
    doc = copy.deepcopy(seed)
    doc["groups"][0]["cases"][1]["protocol"] = ["http"]
    del doc["groups"][1]["cases"][0]["to"]
    with pytest.raises(LabError) as e:
        parse_cases(doc, Path(name))
    assert e.value.message.splitlines()[1:] == [
        f"  {name}: groups[0].cases[1] ({{server}} to blocked.example over HTTP too): protocol must be one of tls, "
        "http, tcp, udp, icmp, dns, not ['http']"] * 2 + [
        f"  {name}: groups[1].cases[0] ({{server}} to blocked.example is dropped and logged as the server): to is "
        "missing: name a domain or an address"] * 2


# --------------------------------------------------------------------------
# The bugs these tests found, each as it was first met (all crashed with a traceback before)
# --------------------------------------------------------------------------
CASE = {"name": "a", "from": "server-a", "to": "a.example", "protocol": "tls", "expect": "pass"}
STRICT = {"FirewallPolicy": {"StatefulEngineOptions": {"RuleOrder": "STRICT_ORDER"},
                             "StatefulRuleGroupReferences": [{"ResourceArn": "g", "Priority": 1}]},
          "RuleGroups": [{"RuleGroupName": "g", "RuleGroup": {"StatefulRuleOptions": {"RuleOrder": "STRICT_ORDER"},
                                                              "RulesSource": {"RulesString": (
                                                                  "pass tcp any any any (sid:1;)\n"
                                                                  "drop tcp any any -> any any (sid:2;)\n")}}}]}


def inline_firewall(source: dict) -> dict:
    return {"FirewallPolicyV2": {"FirewallRuleGroupEntries": [{"Priority": 1, "InlineRuleGroup": {
        "RulesSource": source}}]}}


def stateful(source: dict) -> dict:
    return {"RuleGroup": {"RulesSource": source}}


# (the bug, the text of a file (its suffix says JSON or YAML) or a document, what the refusal says)
TEXT_REGRESSIONS = [
    ("a JSON number of 5,000 digits (ValueError)", "a.json", '{"a": ' + "9" * 5000 + "}",
     "not valid JSON: a number of 5000 digits: line 1 column 7"),
    ("a YAML number of 5,000 digits (ValueError)", "a.yaml", "vpc:\n  id: " + "9" * 5000,
     "not valid YAML: cannot read this value: Exceeds the limit (4300 digits)"),
    ("a YAML tag on a value it cannot hold (ValueError)", "a.yaml", "name: !!float x", "line 1, column 7"),
    ("JSON nested 100,000 deep (RecursionError)", "a.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("YAML nested 1,000 deep (RecursionError)", "a.yaml", "[" * 1000 + "]" * 1000, "nested too deeply"),
    ("a YAML alias inside itself (RecursionError in a case file)", "c.yaml",
     "defaults: {tags: &t [*t]}\ncases: [{name: '{x}', each: {x: [a]}, from: s, to: a.example, protocol: tls, "
     "expect: pass}]\n", "an alias (*name) refers to the value that holds it"),
    ("a case file that is not UTF-8 (UnicodeDecodeError)", "c.yaml", b"\x80cases: []",
     "not UTF-8 text (invalid start byte at byte 0)"),
    ("a policy referencing ../outside.json (read a file outside the policy's folder)", "p.json",
     '{"FirewallPolicy": {"StatefulRuleGroupReferences": [{"ResourceArn": "../outside"}]}}',
     "FirewallPolicy.StatefulRuleGroupReferences[0].ResourceArn: '../outside' is not a rule group name"),
]


@pytest.mark.parametrize("name, text, said", [r[1:] for r in TEXT_REGRESSIONS], ids=[r[0] for r in TEXT_REGRESSIONS])
def test_regression_files(tmp_path, name, text, said):
    (tmp_path / "outside.json").write_text(json.dumps(stateful({"RulesString": "drop tcp any any -> any any (sid:1;)"})))
    folder = tmp_path / "policies"
    folder.mkdir()
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    for load in (load_topology_file, load_policy_file, load_case_file):
        assert load(path) is None
    with pytest.raises(LabError) as e:
        (load_cases if name.startswith("c.") else load_any_policy)(path)
    assert str(path) in e.value.message and said in e.value.message, e.value.message


DOCUMENT_REGRESSIONS = [
    ("a number as a topology key (TypeError in sorted)", parse_topology, {1: "a", "zzz": 2}, "t.yaml: 1: unknown field"),
    ("RuleGroupResponse not an object (AttributeError)", parse_any_group, {"RuleGroupResponse": ["x"], "RuleGroup": {}},
     "g.json: RuleGroupResponse: expected an object, got list"),
    ("FirewallPolicyResponse not an object (AttributeError)", parse_any_policy,
     {"FirewallPolicyResponse": ["x"], "FirewallPolicy": {}}, "p.json: FirewallPolicyResponse: expected an object"),
    ("FirewallPolicyV2Response not an object (AttributeError)", parse_any_policy,
     {"FirewallPolicyV2Response": "x", "FirewallPolicyV2": {}}, "p.json: FirewallPolicyV2Response: expected an object"),
    ("RulesSource a number (TypeError in is_stateless)", parse_any_group, {"RuleGroup": {"RulesSource": 1}},
     "g.json: RuleGroup.RulesSource: missing"),
    ("StreamExceptionPolicy a list (unhashable)", parse_any_policy,
     {"FirewallPolicy": {"StatefulEngineOptions": {"StreamExceptionPolicy": ["DROP"]}}},
     "p.json: FirewallPolicy.StatefulEngineOptions.StreamExceptionPolicy: ['DROP'] is not valid"),
    ("GeneratedRulesType a list (unhashable)", parse_any_group,
     stateful({"RulesSourceList": {"Targets": ["a.example"], "TargetTypes": ["TLS_SNI"], "GeneratedRulesType": []}}),
     "g.json: RuleGroup.RulesSource.RulesSourceList: rule group g: GeneratedRulesType [] is not supported"),
    ("Direction a list (unhashable)", parse_any_group, stateful({"StatefulRules": [{
        "Action": "PASS", "Header": {"Protocol": "TCP", "Source": "any", "SourcePort": "any", "Direction": [],
                                     "Destination": "any", "DestinationPort": "any"},
        "RuleOptions": [{"Keyword": "sid", "Settings": ["1"]}]}]}),
     "g.json: RuleGroup.RulesSource.StatefulRules[0].Header.Direction: [] is not valid"),
    ("a modeled rule's Action an object (unhashable)", parse_any_policy, inline_firewall({"FirewallRules": [{"Action": {}}]}),
     "p.json: FirewallPolicyV2.FirewallRuleGroupEntries[0].InlineRuleGroup.RulesSource.FirewallRules[0].Action: {} is "
     "not valid"),
    ("a Next Generation RuleGroupName an object (unhashable)", parse_any_policy,
     {"FirewallPolicyV2": {}, "RuleGroups": [{"RuleGroupName": {"a": 1}}]}, "p.json: RuleGroups[0]: no RuleGroupName"),
    ("a firewall domain list's GeneratedRulesType a list (unhashable)", parse_any_policy,
     {"FirewallPolicyV2": {"FirewallRuleGroupEntries": [{"Priority": 1, "ResourceArn": "g"}]},
      "RuleGroups": [{"RuleGroupName": "g", "FirewallRuleGroup": {"RulesSource": {"RulesSourceList": {
          "Targets": ["a.example"], "TargetTypes": ["TLS_SNI"], "GeneratedRulesType": []}}}}]},
     "p.json: RuleGroups[0]: FirewallRuleGroup.RulesSource.RulesSourceList.GeneratedRulesType: [] is not valid"),
    ("RuleGroups a number (not iterable)", parse_any_policy, {"FirewallPolicy": {}, "RuleGroups": 5},
     "p.json: RuleGroups: expected a list, got int"),
    ("StatelessRuleGroupReferences a number (not iterable)", parse_any_policy,
     {"FirewallPolicy": {"StatelessRuleGroupReferences": 5}},
     "p.json: FirewallPolicy.StatelessRuleGroupReferences: expected a list, got int"),
    ("a stateless rule's Sources a number (not iterable)", parse_any_group,
     {"RuleGroupResponse": {"Type": "STATELESS"}, "RuleGroup": {"RulesSource": {"StatelessRulesAndCustomActions": {
         "StatelessRules": [{"Priority": 1, "RuleDefinition": {"Actions": ["aws:drop"],
                                                               "MatchAttributes": {"Sources": 1}}}]}}}},
     "g.json: RuleGroup.RulesSource.StatelessRulesAndCustomActions.StatelessRules[0].RuleDefinition.MatchAttributes."
     "Sources: expected a list, got int"),
    ("a case's from null in defaults (bare assert)", parse_cases,
     {"defaults": {"from": None}, "cases": [{k: v for k, v in CASE.items() if k != "from"}]},
     "c.yaml: cases[0] (a): from is empty: give it a value or leave it out"),
    ("a case's name null through each (bare assert)", parse_cases, {"cases": [{**CASE, "name": "{x}", "each": {"x": [None]}}]},
     "c.yaml: cases[0] ({x}): name is empty"),
    ("a policy path under ~ of no user (RuntimeError)", parse_cases, {"policy": "~nosuchuser/p.json", "cases": [CASE]},
     "c.yaml: the file: policy '~nosuchuser/p.json': no home directory for ~nosuchuser"),
    ("a modeled rule's Settings with an open quote (ValueError)", parse_any_policy, inline_firewall({"FirewallRules": [{
        "Action": "ACCEPT", "ActionScope": "FLOW", "Protocol": "TCP", "Hook": "TCP_ALL",
        "RuleOptions": [{"Keyword": "msg", "Settings": ['"x']}]}]}),
     "p.json: FirewallPolicyV2.FirewallRuleGroupEntries[0].InlineRuleGroup.RulesSource.FirewallRules[0]: options do "
     "not end with ';'"),
    ("accept-prior-hooks on a packet hook (KeyError when rendered)", parse_any_policy,
     inline_firewall({"RulesString": "accept:flow tcp:<all any any -> any any (sid:1;)"}),
     "p.json: FirewallPolicyV2.FirewallRuleGroupEntries[0].InlineRuleGroup.RulesSource.RulesString line 1: tcp:<all: "
     "the accept-prior-hooks `<` form needs an application-layer protocol's hook"),
    ("accept-prior-hooks on no hook of the protocol (ValueError when rendered)", parse_any_policy,
     inline_firewall({"RulesString": "accept:flow tls:<nohook any any -> any any (sid:1;)"}),
     "RulesString line 1: tls:<nohook: the accept-prior-hooks `<` form"),
    ("a strict-order rule without 7 header parts (ValueError when rendered)", parse_any_policy, STRICT,
     "rule group g, RulesString line 1 (p.json: RuleGroups[0]): a rule's header has 7 parts"),
]


@pytest.mark.parametrize("parse, doc, said", [r[1:] for r in DOCUMENT_REGRESSIONS],
                         ids=[r[0] for r in DOCUMENT_REGRESSIONS])
def test_regression_documents(parse, doc, said):
    source = said.split(":", 1)[0] if said.split(":", 1)[0].endswith((".json", ".yaml")) else "p.json"
    with pytest.raises(LabError) as e:
        result = parse(doc, Path(source) if parse is parse_cases else source)
        render_any(result, VPC)  # a policy that reads is also rendered: some crashed only there
    assert said in e.value.message, e.value.message


def test_regression_a_lone_backslash_before_a_blank_line_is_no_rule():
    """IndexError before: the continuation of nothing made an empty rule."""
    group = parse_any_group(stateful({"RulesString": "\\\n\ndrop tcp any any -> any any (sid:1;)\n"}), "g.json")
    assert [r.text for r in group.rules] == ["drop tcp any any -> any any (sid:1;)"]


def test_regression_a_count_of_true_is_not_one_server():
    """`count: yes` read as one server before."""
    doc = copy.deepcopy(dict(TOPOLOGIES)["nat-first.yaml"])
    doc["servers"][0]["count"] = True
    with pytest.raises(LabError, match=r"t.yaml: servers\[0\].count: True is not a number of servers"):
        parse_topology(doc, "t.yaml")
