"""State: what a lab keeps on disk between commands, in its state directory.

    /var/lib/nfwlab/NAME/   (NFWLAB_STATE_ROOT overrides /var/lib/nfwlab)
      lab.json         the lab's state: topology, phase, HOME_NET, domains, policy summary
      topology.yaml    the running topology (copied at `up` and at each switch)
      compose.yaml     the lab's Compose project, made from its topology; compose.env
      rules/           the running policy (the engine's files); dns/ the internet's names
      logs/            alert.log, flow.log, nat-translations.log, ENDPOINT/eve.json (each with its rotated
                       parts x.1 ... and x.generation)

`down` moves logs/, rules/, topology.yaml and lab.json to an archive folder beside the labs'
directories, /var/lib/nfwlab/archive/NAME-YYYYmmddTHHMMSSZ (NFWLAB_ARCHIVE_ROOT overrides
/var/lib/nfwlab/archive), and removes the rest; `down --purge` removes everything.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .logs import DEFAULT_LOG_KEEP, DEFAULT_LOG_MAX_SIZE

ARCHIVE = "archive"  # the archive's folder in the state root: no lab may take its name
ARCHIVED = ("logs", "rules", "topology.yaml", "lab.json")  # what `down` keeps of a lab


def state_root() -> Path:
    return Path(os.environ.get("NFWLAB_STATE_ROOT", "/var/lib/nfwlab"))


def archive_root() -> Path:
    """Where `down` keeps the labs' logs: beside the labs' state directories, never inside one."""
    return Path(os.environ.get("NFWLAB_ARCHIVE_ROOT") or state_root() / ARCHIVE)


@dataclass(frozen=True)
class Saved:
    """lab.json: the running lab's facts that are not in its topology file."""

    name: str = ""
    topology: str | None = None  # the running topology's name; None while the lab is not up
    topology_file: str | None = None
    phase: str = "down"  # starting | up
    home_net: str | None = None
    home_net_override: str | None = None  # `up --home-net` (or `policy apply --home-net`): kept across applies
    home_net_from: str | None = None  # which of the two set it: "up --home-net", "policy apply --home-net"
    domains: tuple[str, ...] = ()
    policy: dict[str, Any] = field(default_factory=dict)
    flow_bypass: bool = True  # decided flows forwarded by the endpoint's kernel (lab/engine.py)
    log_max_size: int = DEFAULT_LOG_MAX_SIZE  # bytes at which a log rotates (0: never), `up --log-max-size`
    log_keep: int = DEFAULT_LOG_KEEP  # rotated parts each log keeps, `up --log-keep`


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

    def archive(self, name: str, root: Path | None = None, now: datetime | None = None) -> Path | None:
        """Moves what the lab produced and ran with (ARCHIVED, whichever exist: a lab that crashed while
        coming up has fewer) to ROOT/NAME-YYYYmmddTHHMMSSZ and removes the rest of the state directory.
        Returns the archive folder, or None when there was nothing to keep."""
        if not self.dir.exists():
            return None
        root = (root or archive_root()).resolve()
        mine = self.dir.resolve()
        if root == mine or mine in root.parents:
            raise ConfigError(f"the archive folder {root} is inside the state directory of lab {name} ({mine})",
                              "set NFWLAB_ARCHIVE_ROOT to a folder outside it (or `down --purge`)")
        kept = [self.dir / item for item in ARCHIVED if (self.dir / item).exists()]
        folder = None
        if kept:
            folder = self._new_folder(root, f"{name}-{(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}")
            for item in kept:
                shutil.move(str(item), str(folder / item.name))
        shutil.rmtree(self.dir)
        return folder

    @staticmethod
    def _new_folder(root: Path, base: str) -> Path:
        """ROOT/BASE, or BASE-2, BASE-3 ... when a lab of the same name went down within the same second."""
        root.mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):
            folder = root / (base if n == 1 else f"{base}-{n}")
            try:
                folder.mkdir()
                return folder
            except FileExistsError:
                continue
        raise ConfigError(f"{root}: too many archives named {base}", f"remove some of {root}/{base}-*")
