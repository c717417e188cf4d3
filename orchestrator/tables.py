"""Result tables as Arrow datasets of immutable Parquet fragments.

A writer writes a whole fragment under a temporary name and renames it, so a crash never
leaves half a file. Fragment names sort in write order; a reader keeps the latest row per key,
which makes appends idempotent and resumption a matter of skipping keys already present.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

SCHEMA_VERSION = "1"
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "trials": ("trial_id",),
    "epochs": ("trial_id", "epoch"),
    "eval": ("generator", "metric", "extractor", "seed"),
    "augment": ("generator", "strategy", "n_real", "n_generated", "seed"),
}
_ORDER = "__row_order"


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
        """All rows (schemas unified across fragments); with ``latest``, one row per key."""
        paths = self.fragments()
        if not paths:
            return pa.table({})
        schemas = [pq.read_schema(p, filesystem=self.fs) for p in paths]
        schema = pa.unify_schemas(schemas, promote_options="permissive")
        # Fragments in write order; columns a fragment lacks are filled with nulls.
        pieces = [ds.dataset(p, filesystem=self.fs, format="parquet").to_table() for p in paths]
        table = pa.concat_tables(pieces, promote_options="permissive").cast(schema)
        if latest:
            table = _latest_per_key(table, self.keys)
        return table.replace_schema_metadata(
            {"ganorch.schema_version": SCHEMA_VERSION, "ganorch.table": self.name}
        )

    def existing_keys(self) -> set[tuple[Any, ...]]:
        table = self.read()
        if table.num_rows == 0:
            return set()
        return set(zip(*(table.column(k).to_pylist() for k in self.keys), strict=True))

    def compact(self) -> None:
        """Rewrite the table as one fragment of its latest rows, then drop the old fragments.

        A crash between the two steps leaves duplicates that readers already resolve.
        """
        old = self.fragments()
        if len(old) <= 1:
            return
        self._write(self.read())
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
