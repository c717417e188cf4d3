"""Result tables as Arrow datasets of immutable Parquet fragments.

A writer writes a whole fragment under a temporary name and renames it, so a crash never
leaves half a file. Fragment names sort in write order; a reader keeps the latest row per key,
which makes appends idempotent and resumption a matter of skipping keys already present.

A fragment that cannot be parsed (truncated or corrupted outside ganorch) makes a reader fail
with one line naming it; the command that writes the table sets it aside in ``_quarantine/``
and recomputes its rows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from orchestrator.errors import UserError, first_line

SCHEMA_VERSION = "1"
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "trials": ("trial_id",),
    "epochs": ("trial_id", "epoch"),
    "eval": ("generator", "metric", "extractor", "seed"),
    "augment": ("generator", "strategy", "n_real", "n_generated", "seed"),
}
# The command whose rerun sets a table's unreadable fragments aside and recomputes them.
WRITERS = {
    "trials": "sweep run",
    "epochs": "sweep run",
    "eval": "eval run",
    "augment": "grid augment",
}
# Beside the fragments; the leading '_' makes pyarrow's dataset discovery skip it, so the
# table folder stays readable as a dataset by plain pyarrow.
QUARANTINE = "_quarantine"
_ORDER = "__row_order"


class UnreadableFragment(UserError):
    """A fragment whose bytes are not a Parquet file (truncated, overwritten)."""

    def __init__(self, table: str, shown: str, reason: str) -> None:
        super().__init__(
            f"{table} table: fragment {shown} cannot be read ({reason}); `ganorch "
            f"{WRITERS[table]}` on this run moves it to {QUARANTINE}/ and recomputes its rows"
        )
        self.reason = reason


def filesystem_and_path(location: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and path for a local folder or a URI (file://, s3://, gs://)."""
    if "://" in location:
        return pafs.FileSystem.from_uri(location)
    return pafs.LocalFileSystem(), location


class Table:
    """One named table under ``<run>/tables/<name>/``."""

    def __init__(self, tables_root: str, name: str) -> None:
        if name not in TABLE_KEYS:
            raise ValueError(f"unknown table {name!r}")
        self.name, self.keys = name, TABLE_KEYS[name]
        self.fs, root = filesystem_and_path(tables_root)
        self.path = f"{root.rstrip('/')}/{name}"
        # How messages name a path: ``scheme://path`` without the URI's options (secrets).
        self._scheme = tables_root.split("://", 1)[0] + "://" if "://" in tables_root else ""

    def append(self, rows: Iterable[Mapping[str, Any]]) -> str | None:
        """Write ``rows`` as one new fragment; returns its path (None for no rows)."""
        rows = list(rows)
        if not rows:
            return None
        for key in self.keys:
            if any(row.get(key) is None for row in rows):
                raise ValueError(f"{self.name} rows need the key column {key!r}")
        table = pa.Table.from_pylist(rows)
        table = table.replace_schema_metadata(
            {"ganorch.schema_version": SCHEMA_VERSION, "ganorch.table": self.name}
        )
        return self._write(table)

    def _write(self, table: pa.Table) -> str:
        self.fs.create_dir(self.path, recursive=True)
        name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        final, partial = f"{self.path}/{name}", f"{self.path}/.{name}.tmp"
        with self.fs.open_output_stream(partial) as sink:
            pq.write_table(table, sink)
        self.fs.move(partial, final)
        return final

    def fragments(self) -> list[str]:
        selector = pafs.FileSelector(self.path, allow_not_found=True)
        return sorted(
            info.path
            for info in self.fs.get_file_info(selector)
            if info.base_name.startswith("part-") and info.base_name.endswith(".parquet")
        )

    def read(self, latest: bool = True) -> pa.Table:
        """All rows (schemas unified across fragments); with ``latest``, one row per key.
        A fragment that cannot be read is an :class:`UnreadableFragment` naming it."""
        paths = self.fragments()
        if not paths:
            return pa.table({})
        # Fragments in write order; columns a fragment lacks are filled with nulls.
        pieces = [self._load(p) for p in paths]
        schema = pa.unify_schemas([p.schema for p in pieces], promote_options="permissive")
        table = pa.concat_tables(pieces, promote_options="permissive").cast(schema)
        if latest:
            table = _latest_per_key(table, self.keys)
        return table.replace_schema_metadata(
            {"ganorch.schema_version": SCHEMA_VERSION, "ganorch.table": self.name}
        )

    def _load(self, path: str) -> pa.Table:
        """One fragment. Its bytes are fetched first, so a filesystem that fails (a network
        error) is told apart from a file that is not Parquet, which alone is unreadable."""
        try:
            with self.fs.open_input_stream(path) as stream:
                data = stream.read()
        except OSError as exc:
            raise UserError(f"{self.name} table: cannot read {self._shown(path)}: {exc}") from None
        try:
            return pq.read_table(pa.BufferReader(data))
        except Exception as exc:  # noqa: BLE001 - the bytes are in memory: any failure is theirs
            raise UnreadableFragment(self.name, self._shown(path), first_line(exc)) from None

    def set_aside_unreadable(self, warn: Callable[[str], None]) -> list[str]:
        """Move every fragment that cannot be read to ``_quarantine/`` (with a warning for
        each), so a rerun recomputes the rows it held; returns where they went."""
        moved = []
        for path in self.fragments():
            try:
                self._load(path)
            except UnreadableFragment as exc:
                folder = f"{self.path}/{QUARANTINE}"
                target = f"{folder}/{path.rsplit('/', 1)[-1]}"
                self.fs.create_dir(folder, recursive=True)
                self.fs.move(path, target)
                warn(
                    f"warning: {self.name} table: fragment {self._shown(path)} cannot be read "
                    f"({exc.reason}); moved to {self._shown(target)}, its rows are recomputed"
                )
                moved.append(target)
        return moved

    def _shown(self, path: str) -> str:
        return f"{self._scheme}{path}"

    def existing_keys(self) -> set[tuple[Any, ...]]:
        table = self.read()
        if table.num_rows == 0:
            return set()
        return set(zip(*(table.column(k).to_pylist() for k in self.keys), strict=True))

    def compact(self, keep: Callable[[pa.Table], pa.Array] | None = None) -> None:
        """Rewrite the table as one fragment of its latest rows, then drop the old fragments;
        with ``keep``, only the rows where ``keep(table)`` is true.

        A crash between the two steps leaves duplicates that readers already resolve.
        """
        old = self.fragments()
        if len(old) <= 1 and keep is None or not old:
            return
        table = self.read()
        self._write(table if keep is None else table.filter(keep(table)))
        for path in old:
            self.fs.delete_file(path)


def _latest_per_key(table: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    if table.num_rows == 0 or not all(k in table.column_names for k in keys):
        return table
    table = table.append_column(_ORDER, pa.array(range(table.num_rows), pa.int64()))
    last = table.group_by(list(keys), use_threads=False).aggregate([(_ORDER, "max")])
    rows = pc.sort_indices(last.column(f"{_ORDER}_max"))
    picked = pc.take(last.column(f"{_ORDER}_max"), rows)
    return table.take(picked).drop_columns([_ORDER])
