"""Errors: what went wrong, what to do, and the CLI exit code for each kind."""


class LabError(Exception):
    """An error the user can act on. `hint` says what to do about it."""

    exit_code = 1

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  -> {self.hint}" if self.hint else self.message


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
