"""A request checked against botocore's service model, as an AWS JSON service checks it before its own logic.

`problems(shape, value)` lists what is wrong with `value` for the model's `shape`: a missing required member
and a length, range, pattern or enum the value breaks, each in the words AWS's validation layer uses ("Value
'x' at 'firewallName' failed to satisfy constraint: Member must satisfy regular expression pattern: ..."); a
member the shape does not have and a value of the wrong JSON type in botocore's own words. `message(list)`
joins them as AWS does ("2 validation errors detected: ...; ..."). Pure functions; the caller raises.
"""
from __future__ import annotations

import re
from functools import cache
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape  # type: ignore[import-untyped, unused-ignore]

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "blob": (str,), "boolean": (bool,), "integer": (int,), "long": (int,),
    "float": (int, float), "double": (int, float), "timestamp": (int, float, str),
    "structure": (dict,), "map": (dict,), "list": (list,),
}


@cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def _where(path: str) -> str:
    return path or "request"


def _constraint(value: Any, path: str, rule: str) -> str:
    shown = value if isinstance(value, str | int | float) else "[...]" if isinstance(value, list) else "{...}"
    if isinstance(shown, str) and len(shown) > 80:
        shown = shown[:77] + "..."
    return f"Value '{shown}' at '{_where(path)}' failed to satisfy constraint: Member must {rule}"


def _member_path(path: str, name: str) -> str:
    name = name[:1].lower() + name[1:]  # AWS names members in lower camel case ("firewallPolicy.priority")
    return f"{path}.{name}" if path else name


def problems(shape: Shape, value: Any, path: str = "") -> list[str]:
    """Everything wrong with `value` as a `shape`, outermost first."""
    kind = shape.type_name
    allowed = _JSON_TYPES.get(kind, (object,))
    if not isinstance(value, allowed) or (kind in ("integer", "long", "float", "double") and isinstance(value, bool)):
        return [f"Invalid type for parameter {_where(path)}, value: {value!r}, type: {type(value).__name__}, "
                f"valid types: {', '.join(t.__name__ for t in allowed)}"]
    found: list[str] = []
    meta = shape.metadata
    if isinstance(value, str | list | dict) and kind != "timestamp":
        if "min" in meta and len(value) < meta["min"]:
            found.append(_constraint(value, path, f"have length greater than or equal to {meta['min']}"))
        if "max" in meta and len(value) > meta["max"]:
            found.append(_constraint(value, path, f"have length less than or equal to {meta['max']}"))
    elif isinstance(value, int | float) and kind in ("integer", "long", "float", "double"):
        if "min" in meta and value < meta["min"]:
            found.append(_constraint(value, path, f"have value greater than or equal to {meta['min']}"))
        if "max" in meta and value > meta["max"]:
            found.append(_constraint(value, path, f"have value less than or equal to {meta['max']}"))
    if isinstance(value, str) and kind == "string":
        if "enum" in meta and value not in meta["enum"]:
            found.append(_constraint(value, path, f"satisfy enum value set: [{', '.join(meta['enum'])}]"))
        elif "pattern" in meta and not _pattern(meta["pattern"]).fullmatch(value):
            found.append(_constraint(value, path, f"satisfy regular expression pattern: {meta['pattern']}"))
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        members = shape.members
        for name in shape.required_members:
            if value.get(name) is None:
                found.append(f"Value null at '{_member_path(path, name)}' failed to satisfy constraint: "
                             "Member must not be null")
        for name, item in value.items():
            if name not in members:
                found.append(f"Unknown parameter in {_where(path)}: \"{name}\", must be one of: "
                             f"{', '.join(members)}")
            elif item is not None:
                found += problems(members[name], item, _member_path(path, name))
    elif isinstance(shape, ListShape) and isinstance(value, list):
        for i, item in enumerate(value):
            found += problems(shape.member, item, f"{_where(path)}.{i + 1}.member")
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        for key, item in value.items():
            found += problems(shape.key, key, f"{_where(path)}.key")
            found += problems(shape.value, item, f"{_where(path)}.{key}")
    return found


def message(found: list[str]) -> str:
    """AWS's sentence for a request's validation errors."""
    n = len(found)
    return f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(found)
