"""Regression cases: what a firewall policy must do to given requests, written once as data.

    # yaml-language-server: $schema=schema.json
    policy: deny-domains                       # optional: a shipped policy's name, or a file relative to this one
    topology: nat-first                        # optional
    cases:
      - name: the deny list drops blocked.example
        from: server-a                          # a server, or a subnet ("any server there")
        to: blocked.example                     # a domain name or an address on the lab's internet
        protocol: tls                           # tls http tcp udp icmp dns
        expect: drop                            # pass drop reject
        alert: {sid: 1}                         # or {message: "..."}, or none
        logged_source: nat-gateway              # the source the firewall logs: an address or a node

Cases may sit in `groups` (each with its own name, tags, defaults, policy and topology), take
`defaults` from the file or group, and be parametrised with `each` over lists of values that
`{name}` in any text field takes in turn. `load_cases` checks everything before anything runs and
refuses a bad file naming the case and the field (CaseError). SCHEMA is the same format as a
JSON Schema for editors (cases/schema.json is written from it).
"""
from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import yaml

from .documents import load_yaml
from .errors import ConfigError
from .shipped import policy_path

PROTOCOLS = ("tls", "http", "tcp", "udp", "icmp", "dns")
VERDICTS = ("pass", "drop", "reject")
DEFAULT_PORTS = {"tls": 443, "http": 80, "dns": 53}
NAME_FIELD = {"tls": "sni", "http": "host", "dns": "query"}  # the protocol's name field, if it has one
CASE_FIELDS = ("name", "description", "from", "to", "port", "protocol", "sni", "host", "query", "expect", "alert",
               "logged_source", "availability_zone", "tags", "each")
SETTABLE = tuple(f for f in CASE_FIELDS if f not in ("name", "description", "each"))  # what `defaults` may set
GROUP_FIELDS = ("name", "description", "tags", "defaults", "policy", "topology", "cases")
FILE_FIELDS = ("description", "policy", "topology", "defaults", "cases", "groups")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class CaseError(ConfigError):
    """A case file the runner refuses: the message names the file, the case and the field."""


@dataclass(frozen=True)
class AlertExpectation:
    """What the ALERT log must say of the flow: a signature id, a message, both; or (absent) no alert at all."""

    sid: int | None = None
    message: str | None = None
    absent: bool = False

    def describe(self) -> str:
        if self.absent:
            return "no alert"
        parts = ([f"sid {self.sid}"] if self.sid is not None else []) + \
                ([f'"{self.message}"'] if self.message is not None else [])
        return "alert " + " ".join(parts)


@dataclass(frozen=True)
class Case:
    """One request and what must happen to it."""

    name: str  # unique in its run: "group / name" for a case in a group
    source: str  # a server or a subnet, as written
    to: str  # a domain name or an address, as written
    protocol: str
    port: int | None  # None for icmp
    expect: str
    server_name: str | None = None  # the SNI, HTTP Host or DNS query name
    alert: AlertExpectation | None = None
    logged_source: str | None = None  # an address or a node, as written
    availability_zone: str | None = None
    tags: tuple[str, ...] = ()
    group: str = ""
    description: str = ""
    policy: Path | None = None  # the policy file it runs under (None: whatever the lab enforces)
    topology: str | None = None  # the topology whose route tables it runs in (None: the lab's)
    where: str = ""  # "FILE: cases[3]" for messages

    @property
    def address(self) -> IPv4Address | None:
        try:
            return IPv4Address(self.to)
        except ValueError:
            return None

    def request(self) -> str:
        """The request in a few words: "tls blocked.example:443", "icmp 203.0.113.10"."""
        dest = self.to if self.port is None else f"{self.to}:{self.port}"
        named = f" ({NAME_FIELD[self.protocol]} {self.server_name})" if (
            self.server_name and self.server_name != self.to) else ""
        return f"{self.protocol} {dest}{named}"

    def expectation(self) -> str:
        """What must happen, in a few words: "drop, alert sid 1, logged from nat-gateway"."""
        parts = [self.expect]
        if self.alert:
            parts.append(self.alert.describe())
        if self.logged_source:
            parts.append(f"logged from {self.logged_source}")
        if self.availability_zone:
            parts.append(f"in {self.availability_zone}")
        return ", ".join(parts)


@dataclass(frozen=True)
class CaseFile:
    path: Path
    description: str
    cases: tuple[Case, ...]
    policy: Path | None = None
    topology: str | None = None


@dataclass
class _Ctx:
    path: Path
    where: str
    errors: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.errors.append(f"{self.path}: {self.where}: {what}")


def _fields(ctx: _Ctx, data: Any, allowed: Iterable[str], what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        ctx.fail(f"{what} must be a mapping, not {type(data).__name__}")
        return {}
    unknown = [k for k in data if k not in allowed]
    for k in unknown:
        ctx.fail(f"unknown field {k!r} (allowed: {', '.join(allowed)})")
    for k, v in data.items():
        if v is None and k in allowed:
            ctx.fail(f"{k} is empty: give it a value or leave it out")
    return {k: v for k, v in data.items() if k in allowed}


def _text(ctx: _Ctx, value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        ctx.fail(f"{name} must be a non-empty string, not {value!r}")
        return None
    return value.strip()


def _tags(ctx: _Ctx, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(t, str) and TAG_RE.match(t) for t in value):
        ctx.fail(f"tags must be a list of words (letters, digits, . _ : -), not {value!r}")
        return ()
    return tuple(value)


def _alert(ctx: _Ctx, value: Any) -> AlertExpectation | None:
    if value is None:
        return None
    if value is False or value == "none":  # YAML reads `alert: no` as False
        return AlertExpectation(absent=True)
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"sid": value}
    data = _fields(ctx, value, ("sid", "message"), "alert (a mapping with sid and/or message, or none)")
    sid, message = data.get("sid"), data.get("message")
    if sid is not None and (not isinstance(sid, int) or isinstance(sid, bool) or sid < 1):
        ctx.fail(f"alert.sid must be a positive whole number, not {sid!r}")
        sid = None
    if message is not None and (not isinstance(message, str) or not message):
        ctx.fail(f"alert.message must be a non-empty string, not {message!r}")
        message = None
    if isinstance(value, dict) and "sid" not in value and "message" not in value:
        ctx.fail("alert needs a sid, a message or both (or `alert: none` for no alert)")
    return AlertExpectation(sid, message)


def _substitute(ctx: _Ctx, value: Any, values: dict[str, Any]) -> Any:
    """`{name}` in text fields replaced by the parametrised value (a whole `{name}` keeps the value's type)."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]

        def one(m: re.Match[str]) -> str:
            if m.group(1) not in values:
                ctx.fail(f"{{{m.group(1)}}} names no parameter of `each` ({', '.join(values) or 'none given'})")
                return m.group(0)
            return str(values[m.group(1)])
        return PLACEHOLDER.sub(one, value)
    if isinstance(value, dict):
        return {k: _substitute(ctx, v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(ctx, v, values) for v in value]
    return value


def _expand(ctx: _Ctx, raw: dict[str, Any]) -> list[dict[str, Any]]:
    """A case with `each` as one case per combination of its lists' values."""
    each = raw.get("each")
    if each is None:
        return [raw]
    if not isinstance(each, dict) or not each or not all(
            isinstance(v, list) and v and isinstance(k, str) for k, v in each.items()):
        ctx.fail(f"each must map parameter names to non-empty lists, not {each!r}")
        return []
    if "name" in raw and not any(f"{{{k}}}" in str(raw["name"]) for k in each):
        ctx.fail(f"name must contain a parameter of `each` ({', '.join('{' + k + '}' for k in each)}): "
                 "every case it makes needs a name of its own")
        return []
    body = {k: v for k, v in raw.items() if k != "each"}
    return [_substitute(ctx, body, dict(zip(each, combo, strict=True)))
            for combo in itertools.product(*each.values())]


def _case(ctx: _Ctx, raw: dict[str, Any], group: str, tags: tuple[str, ...], policy: Path | None,
          topology: str | None) -> Case | None:
    before = len(ctx.errors)
    name = _text(ctx, raw.get("name"), "name")
    if name is None and "name" not in raw:
        ctx.fail("name is missing: every case needs a name (it names the case in reports)")
    source = _text(ctx, raw.get("from"), "from")
    if source is None and "from" not in raw:
        ctx.fail("from is missing: name a server or a subnet of the topology")
    to = _text(ctx, raw.get("to"), "to")
    if to is None and "to" not in raw:
        ctx.fail("to is missing: name a domain or an address")
    elif to is not None:
        to = to.lower()
        try:
            IPv4Address(to)
        except ValueError:
            if not DOMAIN_RE.match(to):
                ctx.fail(f"to {to!r} is neither an IPv4 address nor a domain name")
    protocol = raw.get("protocol")
    if not isinstance(protocol, str) or protocol not in PROTOCOLS:
        bad = protocol
        protocol = None
        ctx.fail(f"protocol must be one of {', '.join(PROTOCOLS)}, not {bad!r}"
                 if "protocol" in raw else f"protocol is missing (one of {', '.join(PROTOCOLS)})")
    expect = raw.get("expect")
    if not isinstance(expect, str) or expect not in VERDICTS:
        ctx.fail(f"expect must be one of {', '.join(VERDICTS)}, not {expect!r}"
                 if "expect" in raw else f"expect is missing (one of {', '.join(VERDICTS)})")
    port = raw.get("port", DEFAULT_PORTS.get(protocol or ""))
    if protocol == "icmp":
        if "port" in raw:
            ctx.fail("port: an icmp case has no port")
        port = None
    elif port is None:
        if protocol in PROTOCOLS:
            ctx.fail(f"port is missing: a {protocol} case needs one")
    elif not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        ctx.fail(f"port must be a whole number from 1 to 65535, not {port!r}")
    if expect == "reject" and protocol not in ("tls", "http", "tcp", None):
        ctx.fail(f"expect: reject applies to TCP only (AWS: \"REJECT is available only for TCP traffic\"); "
                 f"a {protocol} flow that a reject rule matches is dropped: expect drop")
    server_name = None
    for proto, key in NAME_FIELD.items():
        if key in raw:
            if protocol != proto:
                ctx.fail(f"{key} applies to {proto} cases only, not {protocol}")
            else:
                server_name = _text(ctx, raw[key], key)
                if server_name and not DOMAIN_RE.match(server_name.lower()):
                    ctx.fail(f"{key} {server_name!r} is not a domain name")
                server_name = server_name.lower() if server_name else None
    if protocol in NAME_FIELD and server_name is None and to is not None:
        try:
            IPv4Address(to)
            if protocol == "dns":
                ctx.fail("query is missing: a dns case sent to an address needs the name it asks for")
        except ValueError:
            server_name = to
    alert = _alert(ctx, raw.get("alert"))
    logged = raw.get("logged_source")
    logged_source = _text(ctx, logged, "logged_source") if logged is not None else None
    zone = _text(ctx, raw.get("availability_zone"), "availability_zone")
    own_tags = _tags(ctx, raw.get("tags"))
    description = _text(ctx, raw.get("description"), "description") or ""
    for key, value in (("name", name), ("from", source), ("to", to)):
        if value is None and key in raw:  # null: written so (reported once), from `defaults` or from `each`
            said = f"{ctx.path}: {ctx.where}: {key} is empty: give it a value or leave it out"
            if said not in ctx.errors:
                ctx.errors.append(said)
    if len(ctx.errors) > before or not (name and source and to and protocol and expect):
        return None
    assert name and source and to and protocol and expect
    return Case(f"{group} / {name}" if group else name, source, to, protocol, port, expect, server_name, alert,
                logged_source, zone, tuple(dict.fromkeys(tags + own_tags)), group, description, policy, topology,
                f"{ctx.path}: {ctx.where}")


def _relative(ctx: _Ctx, value: Any, key: str) -> Path | None:
    """A path made relative to the case file; a bare name (no separator, no suffix) is a shipped policy's."""
    text = _text(ctx, value, key)
    if text is None:
        return None
    if "/" not in text and not text.endswith((".json", ".yaml", ".yml")):
        try:
            return policy_path(text)
        except ConfigError as e:
            ctx.fail(f"{key} {text!r}: {e.message} ({e.hint})")
            return None
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # ~user of no user on this host
        ctx.fail(f"{key} {text!r}: no home directory for {text.split('/', 1)[0]}")
        return None
    return path if path.is_absolute() else Path(os.path.normpath(ctx.path.parent / path))


def _topology(ctx: _Ctx, value: Any) -> str | None:
    """A topology name as written, or a path made relative to the case file."""
    text = _text(ctx, value, "topology")
    if text and (text.endswith((".yaml", ".yml", ".json")) or "/" in text) and not Path(text).is_absolute():
        return os.path.normpath(ctx.path.parent / text)
    return text


def _cases(ctx: _Ctx, items: Any, prefix: str, defaults: dict[str, Any], group: str, tags: tuple[str, ...],
           policy: Path | None, topology: str | None) -> list[Case]:
    if not isinstance(items, list) or not items:
        ctx.fail(f"{prefix.rsplit('.', 1)[-1] or 'cases'} must be a non-empty list of cases")
        return []
    out: list[Case] = []
    for i, item in enumerate(items):
        ctx.where = f"{prefix}[{i}]" + (f" ({item['name']})" if isinstance(item, dict) and "name" in item else "")
        raw = _fields(ctx, item, CASE_FIELDS, "a case")
        for expanded in _expand(ctx, {**defaults, **raw}):
            case = _case(ctx, expanded, group, tags, policy, topology)
            if case:
                out.append(case)
    return out


def _defaults(ctx: _Ctx, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    return _fields(ctx, value, SETTABLE, "defaults")


def parse_cases(data: Any, path: Path) -> CaseFile:
    """A case file's contents (already read from YAML or JSON) checked and expanded; CaseError lists every
    problem, each naming the case and the field."""
    ctx = _Ctx(path, "the file")
    top = _fields(ctx, data, FILE_FIELDS, "a case file (with `cases` or `groups`)")
    if isinstance(data, dict) and not top.get("cases") and not top.get("groups"):
        ctx.fail("no cases: give a non-empty `cases`, `groups`, or both")
    defaults = _defaults(ctx, top.get("defaults"))
    policy = _relative(ctx, top.get("policy"), "policy")
    topology = _topology(ctx, top.get("topology"))
    cases: list[Case] = []
    if "cases" in top:
        cases += _cases(ctx, top["cases"], "cases", defaults, "", (), policy, topology)
    groups = top.get("groups", [])
    if not isinstance(groups, list):
        ctx.where = "groups"
        ctx.fail("groups must be a list")
        groups = []
    for g, raw_group in enumerate(groups):
        ctx.where = f"groups[{g}]"
        group = _fields(ctx, raw_group, GROUP_FIELDS, "a group")
        name = _text(ctx, group.get("name"), "name")
        if name is None and "name" not in group:
            ctx.fail("name is missing: every group needs a name")
        cases += _cases(ctx, group.get("cases"), f"groups[{g}].cases", {**defaults, **_defaults(
            ctx, group.get("defaults"))}, name or f"group {g}", _tags(ctx, group.get("tags")),
                        _relative(ctx, group["policy"], "policy") if "policy" in group else policy,
                        _topology(ctx, group["topology"]) if "topology" in group else topology)
    seen: dict[str, str] = {}
    for c in cases:
        if c.name in seen:
            ctx.errors.append(f"{c.where}: the name {c.name!r} is taken by {seen[c.name].split(': ', 1)[1]}: "
                              "each case needs a name of its own")
        seen.setdefault(c.name, c.where)
    if ctx.errors:
        shown = ctx.errors[:20] + ([f"... and {len(ctx.errors) - 20} more"] if len(ctx.errors) > 20 else [])
        raise CaseError(f"{len(ctx.errors)} problem(s) in the case file {path}:\n  " + "\n  ".join(shown),
                        "fix them; nothing was run (the format: docs/cases.md, or `nfwlab test --schema`)")
    return CaseFile(path, _text(ctx, top.get("description"), "description") or "", tuple(cases), policy, topology)


def load_cases(path: str | Path) -> CaseFile:
    """A case file (YAML or JSON), checked and expanded: see parse_cases."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise CaseError(f"cannot read the case file {path}: {e.strerror}", "give the path of a YAML case file") \
            from None
    except UnicodeDecodeError as e:
        raise CaseError(f"cannot read the case file {path}: not UTF-8 text ({e.reason} at byte {e.start})",
                        "give the path of a YAML case file") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise CaseError(f"{path} is not YAML: {str(e).splitlines()[0]}"
                        + (f" (line {mark.line + 1})" if mark is not None else ""),
                        "fix the syntax; nothing was run") from None
    return parse_cases(data, path)


def select(cases: Iterable[Case], tags: Iterable[str] = (), names: Iterable[str] = ()) -> list[Case]:
    """The cases carrying every tag given and whose name contains one of the texts given (when given)."""
    want, texts = set(tags), [n.lower() for n in names]
    return [c for c in cases if want <= set(c.tags) and (not texts or any(t in c.name.lower() for t in texts))]


def with_overrides(cases: Iterable[Case], policy: Path | None = None, topology: str | None = None) -> list[Case]:
    """The cases run under the policy and/or topology given on the command line instead of their own."""
    return [replace(c, policy=policy or c.policy, topology=topology or c.topology) for c in cases]


# ----------------------------------------------------------------- JSON Schema
def _or_placeholder(schema: dict[str, Any]) -> dict[str, Any]:
    """A field's schema, or a whole `{parameter}` of `each` standing for it."""
    return {"anyOf": [schema, {"type": "string", "pattern": "^" + PLACEHOLDER.pattern + "$"}]}


def _case_schema(required: bool) -> dict[str, Any]:
    name_prop = {"type": "string", "minLength": 1}
    props: dict[str, Any] = {
        "name": {**name_prop, "description": "Names the case in reports; unique in the file. "
                 "With `each`, contains `{parameter}`."},
        "description": {"type": "string"},
        "from": {**name_prop, "description": "A server of the topology, or a subnet (any server there)."},
        "to": {**name_prop, "description": "A domain name (the lab's internet serves any) or an address on it."},
        "port": {"type": ["integer", "string"], "minimum": 1, "maximum": 65535,
                 "description": "Destination port (tls 443, http 80, dns 53 by default; none for icmp)."},
        "protocol": _or_placeholder({"enum": list(PROTOCOLS)}),
        "sni": {**name_prop, "description": "tls: the Client Hello's SNI (default: `to` when it is a name)."},
        "host": {**name_prop, "description": "http: the Host header (default: `to` when it is a name)."},
        "query": {**name_prop, "description": "dns: the name asked for (default: `to` when it is a name)."},
        "expect": {**_or_placeholder({"enum": list(VERDICTS)}), "description": "What the firewall does to the flow."},
        "alert": {"description": "What the ALERT log must say of the flow; `none`: no alert.",
                  "anyOf": [{"const": "none"}, {"const": False}, {"type": "integer", "minimum": 1},
                            {"type": "string", "pattern": "^" + PLACEHOLDER.pattern + "$"},
                            {"type": "object", "additionalProperties": False, "minProperties": 1,
                             "properties": {"sid": {"type": ["integer", "string"]},
                                            "message": {"type": "string", "minLength": 1}}}]},
        "logged_source": {**name_prop, "description": "The source address the firewall logs, or a node "
                          "(server, NAT gateway) whose address it is."},
        "availability_zone": {**name_prop, "description": "The Availability Zone of the endpoint that logs it."},
        "tags": {"anyOf": [{"type": "string", "pattern": TAG_RE.pattern},
                           {"type": "array", "items": {"type": "string", "pattern": TAG_RE.pattern}}]},
        "each": {"type": "object", "description": "Parameter name -> list of values: one case per combination.",
                 "additionalProperties": {"type": "array", "minItems": 1}},
    }
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": props}
    if required:
        schema["required"] = ["name", "from", "to", "protocol", "expect"]
    return schema


def _settable_schema() -> dict[str, Any]:
    props = _case_schema(False)["properties"]
    return {"type": "object", "additionalProperties": False, "properties": {k: props[k] for k in SETTABLE}}


def schema() -> dict[str, Any]:
    """The case file format as a JSON Schema (draft 2020-12). Fields that `defaults` fill in are not required
    of a case by the schema; the runner checks them."""
    case = _case_schema(False)
    cases = {"type": "array", "minItems": 1, "items": case}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://nfw-lab.invalid/schema/cases.json",
        "title": "nfw-lab regression cases",
        "description": "Requests and what an AWS Network Firewall policy must do to them (nfwlab test).",
        "type": "object", "additionalProperties": False,
        "anyOf": [{"required": ["cases"]}, {"required": ["groups"]}],
        "properties": {
            "description": {"type": "string"},
            "policy": {"type": "string", "description": "The policy to run under: a shipped policy's name, or a file "
                                                      "relative to this file."},
            "topology": {"type": "string", "description": "A topology name, or a file relative to this file."},
            "defaults": _settable_schema(),
            "cases": cases,
            "groups": {"type": "array", "items": {
                "type": "object", "additionalProperties": False, "required": ["name", "cases"],
                "properties": {"name": {"type": "string", "minLength": 1}, "description": {"type": "string"},
                               "tags": case["properties"]["tags"], "defaults": _settable_schema(),
                               "policy": {"type": "string"}, "topology": {"type": "string"}, "cases": cases}}},
        },
    }


def schema_text() -> str:
    return json.dumps(schema(), indent=2) + "\n"
