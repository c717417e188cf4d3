"""Result tables: immutable fragments, latest row per key, readable by plain pyarrow."""

from __future__ import annotations

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from orchestrator.tables import SCHEMA_VERSION, Table


def test_append_writes_one_fragment_per_call_and_no_temporaries(tmp_path):
    table = Table(str(tmp_path), "epochs")
    table.append([{"trial_id": "a", "epoch": 1, "fid": 3.0}])
    table.append([{"trial_id": "a", "epoch": 2, "fid": 2.0}, {"trial_id": "b", "epoch": 1}])
    files = sorted(p.name for p in (tmp_path / "epochs").iterdir())
    assert len(files) == 2 and all(f.startswith("part-") and f.endswith(".parquet") for f in files)
    assert ds.dataset(tmp_path / "epochs", format="parquet").count_rows() == 3


def test_latest_row_per_key_wins_and_schemas_unify(tmp_path):
    table = Table(str(tmp_path), "trials")
    table.append([{"trial_id": "a", "status": "RUNNING", "epochs": 0}])
    table.append([{"trial_id": "b", "status": "RUNNING", "epochs": 0}])
    table.append([{"trial_id": "a", "status": "TERMINATED", "epochs": 2, "best_fid": 12.5}])
    rows = {r["trial_id"]: r for r in table.read().to_pylist()}
    assert rows["a"] == {"trial_id": "a", "status": "TERMINATED", "epochs": 2, "best_fid": 12.5}
    assert rows["b"]["best_fid"] is None
    assert table.read(latest=False).num_rows == 3
    assert table.existing_keys() == {("a",), ("b",)}


def test_int_and_float_columns_promote_across_fragments(tmp_path):
    table = Table(str(tmp_path), "epochs")
    table.append([{"trial_id": "a", "epoch": 1, "value": 1}])
    table.append([{"trial_id": "a", "epoch": 2, "value": 2.5}])
    assert table.read().column("value").to_pylist() == [1.0, 2.5]


def test_compact_keeps_the_logical_table_and_leaves_one_fragment(tmp_path):
    table = Table(str(tmp_path), "trials")
    for status in ("RUNNING", "TERMINATED"):
        table.append([{"trial_id": "a", "status": status}])
    before = table.read()
    table.compact()
    assert len(table.fragments()) == 1
    assert table.read().equals(before)
    stored = pq.read_table(table.fragments()[0])
    assert stored.schema.metadata[b"ganorch.schema_version"] == SCHEMA_VERSION.encode()
    assert stored.schema.metadata[b"ganorch.table"] == b"trials"


def test_rows_without_their_key_are_refused(tmp_path):
    with pytest.raises(ValueError, match="epoch"):
        Table(str(tmp_path), "epochs").append([{"trial_id": "a"}])


def test_empty_and_unknown_tables(tmp_path):
    assert Table(str(tmp_path), "eval").read().num_rows == 0
    with pytest.raises(ValueError, match="unknown table"):
        Table(str(tmp_path), "losses")
