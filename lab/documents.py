"""Documents: the one reader of the lab's input files (topologies, policies, rule groups).

JSON for files named *.json (what the AWS CLI prints), YAML for everything else;
a missing or broken file is a ConfigError naming the file and, for syntax errors,
the line.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


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
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON: {e}", "fix the JSON at the line shown") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}", "fix the YAML at the line shown") from None


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

    def strings(self, data: Any, where: str) -> list[str]:
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise self.fail(where, f"expected a list of strings, got {data!r}", 'write ["a", "b"]')
        return data
