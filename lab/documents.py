"""Documents: the one reader of the lab's input files (topologies, policies, rule groups).

JSON for files named *.json (what the AWS CLI prints), YAML for everything else;
a missing or broken file is a ConfigError naming the file and, for syntax errors,
the line.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader whose value errors (a 5,000-digit number, `!!float x`) are YAML errors with a line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError) as e:
            reason = str(e).split(";")[0]  # Python's own advice (sys.set_int_max_str_digits) is not the user's
            raise yaml.constructor.ConstructorError(None, None, f"cannot read this value: {reason}",
                                                    node.start_mark) from None


def _json_int(text: str) -> Callable[[str], int]:
    """int() for json.loads that names the line of a number too long to read."""
    def parse(digits: str) -> int:
        try:
            return int(digits)
        except ValueError:  # longer than Python reads (4,300 digits)
            raise json.JSONDecodeError(f"a number of {len(digits)} digits", text, max(text.find(digits), 0)) \
                from None
    return parse


def _cycle(data: Any) -> bool:
    """Whether YAML aliases made the document contain itself (`&a [*a]`): no reader could ever finish it."""
    done: set[int] = set()
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:  # depth first, without recursion: a document may nest deeper than Python recurses
        node, leaving = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if leaving:
            on_path.discard(id(node))
            done.add(id(node))
        elif id(node) in on_path:
            return True
        elif id(node) not in done:  # an alias to a value already checked: shared, not a loop
            on_path.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in (node.values() if isinstance(node, dict) else node))
    return False


def load_yaml(text: str) -> Any:
    """YAML text as data; any problem is a yaml.YAMLError (with a line where PyYAML knows it)."""
    try:
        data = yaml.load(text, Loader=_Loader)
    except RecursionError:
        raise yaml.YAMLError("nested too deeply to read (look for a long run of [ or {)") from None
    if _cycle(data):
        raise yaml.YAMLError("an alias (*name) refers to the value that holds it: a value cannot contain itself")
    return data


def parse_text(text: str, path: Path, json_syntax: bool) -> Any:
    """A document's text as data: JSON or YAML. ConfigError naming the file and, where known, the line."""
    kind = "JSON" if json_syntax else "YAML"
    try:
        return json.loads(text, parse_int=_json_int(text)) if json_syntax else load_yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: not valid {kind}: {e}", f"fix the {kind} at the line shown") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid {kind}: nested too deeply to read (look for a long run of [ or {{)",
                          f"fix the {kind}") from None


def read_document(path: str | Path, what: str = "file") -> Any:
    """The content of a JSON or YAML file (`what` names the kind of file in errors)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file", "check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory", f"give a {what}") from None
    except (PermissionError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read ({e.__class__.__name__})", f"give a readable {what}") from None
    return parse_text(text, path, path.suffix == ".json")


class Fields:
    """Field access in an AWS document, with errors that name the file and the field. `ignored`: fields AWS
    returns that change nothing in the lab (metadata), accepted anywhere."""

    def __init__(self, source: str, ignored: frozenset[str] | set[str] = frozenset()):
        self.source, self.ignored = source, ignored

    def fail(self, where: str, what: str, fix: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where}: {what}", fix)

    def fields(self, data: Any, where: str, known: tuple[str, ...]) -> dict:
        if not isinstance(data, dict):
            raise self.fail(where, f"expected an object, got {type(data).__name__}", "see the README's examples")
        for key in data:
            if key not in known and key not in self.ignored:
                raise self.fail(f"{where}.{key}", "unknown field", f"known fields here: {', '.join(known)}")
        return data

    def part(self, data: dict, key: str, where: str) -> dict:
        """An optional object in `data` ({} when absent or empty), refused when it is something else."""
        value = data.get(key)
        if not value:
            return {}
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, got {type(value).__name__}", "see the README's examples")
        return value

    def listed(self, value: Any, where: str) -> list:
        """An optional list: [] when absent or empty, refused when it is something else."""
        if not value:
            return []
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, got {type(value).__name__}", "write [item, ...]")
        return value

    def name(self, value: Any, where: str) -> str:
        """A resource's name (a rule group's, a policy's): text."""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"expected a name, got {value!r}", "give a name: letters, digits and -")
        return value

    def strings(self, data: Any, where: str) -> list[str]:
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise self.fail(where, f"expected a list of strings, got {data!r}", 'write ["a", "b"]')
        return data
