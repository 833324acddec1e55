"""Errors: what went wrong, what to do, and the CLI exit code for each kind."""
from __future__ import annotations

import re

# `nfwlab CMD` in backticks, not naming a lab yet
_UNNAMED = re.compile(r"(?<=`)nfwlab(?= (?!--name\b))|(?<=; )nfwlab(?= (?!--name\b))")


def nfwlab(lab: str) -> str:
    """The command line's start for `lab`: `nfwlab`, or `nfwlab --name LAB` for a lab other than the default."""
    return "nfwlab" if lab == "default" else f"nfwlab --name {lab}"


class LabError(Exception):
    """An error the user can act on. `hint` says what to do about it. Raised as itself (exit 1): the command
    found no match, such as a FLOW_ID that no alert or record of the lab's logs has."""

    exit_code = 1

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  -> {self.hint}" if self.hint else self.message

    def for_lab(self, lab: str) -> str:
        """The error as the CLI prints it for `lab`: the commands of the hint name the lab, so that they act on
        it when followed (the modules that raise know a node or a container, not always the lab)."""
        if not self.hint or lab == "default":
            return str(self)
        return f"{self.message}\n  -> {_UNNAMED.sub(nfwlab(lab), self.hint)}"


class ConfigError(LabError):
    """A file or argument is wrong (topology, design, rule group, CLI value)."""

    exit_code = 2


class EnvironmentProblem(LabError):
    """The host lacks something: Docker, root, an image, a kernel feature."""

    exit_code = 3


class StateError(LabError):
    """The lab is not in the state the command needs (not up, already up...)."""

    exit_code = 4


class NodeError(LabError):
    """A node failed: a container exited, Suricata refused its rules, a command failed."""

    exit_code = 5


class WaitTimeout(LabError):
    """A condition was awaited and did not come true in time."""

    exit_code = 6
