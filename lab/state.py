"""State: what a lab keeps on disk between commands, in its state directory.

    /var/lib/nfwlab/NAME/   (NFWLAB_STATE_ROOT overrides /var/lib/nfwlab)
      lab.json         the lab's state: topology, phase, HOME_NET, domains, policy summary
      topology.yaml    the running topology (copied at `up` and at each switch)
      compose.yaml     the lab's Compose project, made from its topology; compose.env
      rules/           the running policy (the engine's files); dns/ the internet's names
      logs/            alert.log, flow.log, nat-translations.log, ENDPOINT/eve.json
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


def state_root() -> Path:
    return Path(os.environ.get("NFWLAB_STATE_ROOT", "/var/lib/nfwlab"))


@dataclass(frozen=True)
class Saved:
    """lab.json: the running lab's facts that are not in its topology file."""

    name: str = ""
    topology: str | None = None  # the running topology's name; None while the lab is not up
    topology_file: str | None = None
    phase: str = "down"  # starting | up
    home_net: str | None = None
    domains: tuple[str, ...] = ()
    policy: dict[str, Any] = field(default_factory=dict)
    flow_bypass: bool = True  # decided flows forwarded by the endpoint's kernel (lab/engine.py)


class LabState:
    """A lab's state directory and its lab.json."""

    def __init__(self, directory: Path):
        self.dir = directory

    @property
    def file(self) -> Path:
        return self.dir / "lab.json"

    @property
    def topology_file(self) -> Path:
        return self.dir / "topology.yaml"

    @property
    def rules_dir(self) -> Path:
        return self.dir / "rules"

    @property
    def logs_dir(self) -> Path:
        return self.dir / "logs"

    def read(self) -> Saved:
        try:
            data = json.loads(self.file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return Saved()
        known = {f.name for f in fields(Saved)}
        data = {k: v for k, v in data.items() if k in known}
        if "domains" in data:
            data["domains"] = tuple(data["domains"] or ())
        return Saved(**data)

    def write(self, **changes: Any) -> None:
        """lab.json with `changes`, replaced at once (a reader never sees half a file)."""
        saved = self.read()
        data = asdict(saved) | changes
        data["domains"] = list(data["domains"] or ())
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.file)

    def keep_topology(self, source: str | Path) -> None:
        shutil.copyfile(source, self.topology_file)

    def remove(self) -> bool:
        if not self.dir.exists():
            return False
        shutil.rmtree(self.dir)
        return True
