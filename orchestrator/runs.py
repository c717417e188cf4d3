"""The run folder: ``<runs-dir>/<name>/`` with spec.yaml, tune/, tables/, tb/ and artifacts/.

A runs-dir is a local folder (also as a ``file://`` URI) or an object-store URI that pyarrow
resolves (``s3://bucket/prefix``, ``gs://bucket/prefix``, with pyarrow's options as a query
string, e.g. ``?endpoint_override=host:9000&scheme=http``). Everything a run stores goes through
the run's pyarrow filesystem, so workers on other nodes read and write the same run.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.fs as pafs

from orchestrator.errors import UserError, first_line

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
NAME_RULE = (
    "use letters, digits, '.', '_' and '-' only, starting with a letter or digit, "
    "at most 100 characters"
)


def check_name(name: str, what: str = "run name") -> str:
    """``name`` when it can name one folder inside its parent and nothing else: letters,
    digits, '.', '_' and '-', not starting with punctuation (so never '..' or hidden), at most
    100 characters. Every run name and every label that becomes a folder passes here."""
    if not NAME_PATTERN.match(name):
        raise UserError(f"{what} {name!r}: {NAME_RULE}")
    return name


def default_runs_dir() -> str:
    return os.environ.get("GANORCH_RUNS", "runs")


def cache_dir() -> Path:
    """Where judges and feature statistics are cached (``GANORCH_CACHE``)."""
    return Path(os.environ.get("GANORCH_CACHE", Path.home() / ".cache" / "ganorch"))


@dataclass(frozen=True)
class RunDir:
    """One run's folder. ``root`` is a local path, or for an object-store runs-dir the run's
    path inside ``fs`` (``bucket/prefix/name``; pure, so a local file call on it fails loudly
    instead of writing to this machine's disk); ``uri`` is then the run folder as a URI with
    the runs-dir's options, which anything running elsewhere resolves on its own."""

    root: PurePath
    name: str
    fs: pafs.FileSystem = field(default_factory=pafs.LocalFileSystem, compare=False, repr=False)
    uri: str | None = None

    @classmethod
    def of(cls, runs_dir: str | None, name: str) -> RunDir:
        check_name(name)  # the one place a run name from the command line is checked
        base = runs_dir or default_runs_dir()
        if base.startswith("file://"):  # a path in URI form: the same folder
            parsed = urlparse(base)
            if parsed.netloc not in ("", "localhost"):
                raise UserError(
                    f"runs-dir {base!r}: a file:// URI names this machine's files (file:///path)"
                )
            base = unquote(parsed.path)
        elif "://" in base:
            return cls._in_store(base, name)
        return cls(Path(base).expanduser().resolve() / name, name)

    @classmethod
    def _in_store(cls, base: str, name: str) -> RunDir:
        shown = _without_options(base)
        try:
            fs, path = pafs.FileSystem.from_uri(base)
            # One round trip now: a missing bucket or an unreachable endpoint is one line here
            # rather than a traceback from a worker later.
            bucket = fs.get_file_info(path.split("/", 1)[0] or "/")
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise UserError(f"runs-dir {shown}: {first_line(exc)}") from None
        if bucket.type != pafs.FileType.Directory:
            raise UserError(f"runs-dir {shown}: bucket {bucket.path!r} does not exist")
        return cls(PurePosixPath(path) / name, name, fs, join(base, name))

    @property
    def remote(self) -> bool:
        return self.uri is not None

    def path(self, *parts: str) -> str:
        """A path inside the run on its filesystem ``fs``."""
        return self.root.joinpath(*parts).as_posix()

    def location(self, *parts: str) -> str:
        """A path inside the run as a local path or a URI that resolves on any node."""
        return join(self.uri, *parts) if self.uri else self.path(*parts)

    def resolvable(self, shown: str) -> str:
        """A URI the tables hold (``shown``), with the runs-dir's options put back."""
        if self.uri is None or "://" not in shown:
            return shown
        return urlunsplit(urlsplit(shown)._replace(query=urlsplit(self.uri).query))

    def shown(self, path: str | None = None) -> str:
        """How messages and tables name a path of ``fs`` (default: the run folder): the local
        path, or ``scheme://path`` without the runs-dir's options (which may hold secrets)."""
        path = self.path() if path is None else path
        return path if self.uri is None else f"{urlsplit(self.uri).scheme}://{path}"

    @property
    def runs_dir(self) -> str:
        """The runs-dir, as messages name it."""
        return self.shown(self.root.parent.as_posix())

    def existing(self) -> RunDir:
        """This run, or a UserError if it was never started."""
        if self.fs.get_file_info(self.path()).type != pafs.FileType.Directory:
            raise UserError(f"no run named {self.name!r} under {self.runs_dir}")
        return self

    def read_text(self, part: str) -> str | None:
        """A file of the run as text, None when it is not there."""
        path = self.path(part)
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as stream:
            return stream.read().decode()

    def write_text(self, part: str, text: str) -> None:
        self.fs.create_dir(self.path(), recursive=True)
        with self.fs.open_output_stream(self.path(part)) as stream:
            stream.write(text.encode())

    def remove(self, part: str) -> None:
        """Delete a file or folder of the run, if it is there."""
        path = self.path(part)
        kind = self.fs.get_file_info(path).type
        if kind == pafs.FileType.Directory:
            self.fs.delete_dir(path)
        elif kind == pafs.FileType.File:
            self.fs.delete_file(path)

    def download(self, path: str) -> Path:
        """A fresh local copy of a folder of ``fs`` (the folder itself for a local run)."""
        if not self.remote:
            return Path(path)
        return _download(self.fs, path, self.shown(path), refresh=True)

    @property
    def spec_file(self) -> PurePath:
        return self.root / "spec.yaml"

    @property
    def storage(self) -> str:
        """Tune's storage path on ``fs`` (``RunConfig(storage_path=..., name=name)``)."""
        return self.path("tune")

    @property
    def experiment(self) -> str:
        """Tune's experiment folder on ``fs``."""
        return self.path("tune", self.name)

    @property
    def tables(self) -> str:
        return self.location("tables")

    @property
    def tb(self) -> PurePath:
        return self.root / "tb"

    @property
    def artifacts(self) -> PurePath:
        return self.root / "artifacts"


def join(location: str, *parts: str) -> str:
    """``location/part/...`` for a local path or a URI (its options kept at the end)."""
    if "://" not in location:
        return "/".join((location.rstrip("/"), *parts))
    split = urlsplit(location)
    return urlunsplit(split._replace(path="/".join((split.path.rstrip("/"), *parts))))


def local_copy(location: str) -> str:
    """A folder that never changes once written (a trial checkpoint), named by a local path or
    a URI, as a local folder: a URI's folder is downloaded once into the cache."""
    if "://" not in location:
        return location
    fs, path = pafs.FileSystem.from_uri(location)
    shown = _without_options(location)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        raise FileNotFoundError(f"no folder at {shown}")
    return str(_download(fs, path, shown, refresh=False))


@contextmanager
def local_folder(location: str) -> Iterator[Path]:
    """A local folder to write into: ``location`` itself, or for a URI a temporary folder whose
    files are copied there on leaving (for writers such as SummaryWriter and PIL)."""
    if "://" not in location:
        Path(location).mkdir(parents=True, exist_ok=True)
        yield Path(location)
        return
    fs, path = pafs.FileSystem.from_uri(location)
    with tempfile.TemporaryDirectory(prefix="ganorch-") as folder:
        yield Path(folder)
        pafs.copy_files(folder, path, destination_filesystem=fs)


def _download(fs: pafs.FileSystem, path: str, name: str, refresh: bool) -> Path:
    """``path`` of ``fs`` (if it is there) copied to ``GANORCH_CACHE/downloads/<hash of name>``.

    The copy lands in a staging folder first and is renamed into place whole, so actors on one
    node that fetch the same checkpoint at once never read a half-written file."""
    local = cache_dir() / "downloads" / hashlib.sha256(name.encode()).hexdigest()[:16]
    if local.is_dir() and not refresh:
        return local
    local.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=local.parent))
    if fs.get_file_info(path).type == pafs.FileType.Directory:
        pafs.copy_files(
            path, str(staging), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem()
        )
    if refresh:
        shutil.rmtree(local, ignore_errors=True)
    try:
        staging.rename(local)
    except OSError:  # another process put its copy there first
        shutil.rmtree(staging, ignore_errors=True)
    return local


def _without_options(uri: str) -> str:
    return urlunsplit(urlsplit(uri)._replace(query="", fragment=""))
