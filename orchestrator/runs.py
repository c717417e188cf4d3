"""The run folder: ``<runs-dir>/<name>/`` with spec.yaml, tune/, tables/, tb/ and artifacts/."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from orchestrator.errors import UserError


def default_runs_dir() -> str:
    return os.environ.get("GANORCH_RUNS", "runs")


def cache_dir() -> Path:
    """Where judges and feature statistics are cached (``GANORCH_CACHE``)."""
    return Path(os.environ.get("GANORCH_CACHE", Path.home() / ".cache" / "ganorch"))


@dataclass(frozen=True)
class RunDir:
    root: Path
    name: str

    @classmethod
    def of(cls, runs_dir: str | None, name: str) -> RunDir:
        base = runs_dir or default_runs_dir()
        if base.startswith("file://"):  # a path in URI form: the same folder
            parsed = urlparse(base)
            if parsed.netloc not in ("", "localhost"):
                raise UserError(f"runs-dir {base!r}: a file:// URI names this machine's "
                                "files (file:///path)")
            base = unquote(parsed.path)
        elif "://" in base:
            raise UserError(f"runs-dir {base!r}: object-store runs-dirs are not supported yet; "
                            "mount the bucket on every node and pass the mount point "
                            "(see clusters/README.md)")
        return cls(Path(base).expanduser().resolve() / name, name)

    def existing(self) -> RunDir:
        """This run, or a UserError if it was never started."""
        if not self.root.is_dir():
            raise UserError(f"no run named {self.name!r} under {self.root.parent}")
        return self

    @property
    def spec_file(self) -> Path:
        return self.root / "spec.yaml"

    @property
    def tune(self) -> Path:
        return self.root / "tune"

    @property
    def experiment(self) -> Path:
        """Tune's experiment folder (``RunConfig(storage_path=tune, name=name)``)."""
        return self.tune / self.name

    @property
    def tables(self) -> str:
        return str(self.root / "tables")

    @property
    def tb(self) -> Path:
        return self.root / "tb"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"
