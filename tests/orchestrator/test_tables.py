"""Result tables: immutable fragments, latest row per key, readable by plain pyarrow."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from orchestrator.errors import UserError
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


def test_compact_with_keep_drops_the_other_rows_even_from_one_fragment(tmp_path):
    table = Table(str(tmp_path), "trials")
    table.append([{"trial_id": t, "status": "RUNNING"} for t in ("a", "ghost", "b")])
    table.compact(keep=lambda rows: pc.invert(pc.equal(rows.column("trial_id"), "ghost")))
    assert len(table.fragments()) == 1
    assert table.read().column("trial_id").to_pylist() == ["a", "b"]


def test_rows_without_their_key_are_refused(tmp_path):
    with pytest.raises(ValueError, match="epoch"):
        Table(str(tmp_path), "epochs").append([{"trial_id": "a"}])


def test_empty_and_unknown_tables(tmp_path):
    assert Table(str(tmp_path), "eval").read().num_rows == 0
    with pytest.raises(ValueError, match="unknown table"):
        Table(str(tmp_path), "losses")


def _damaged(data: bytes, damage: str) -> bytes:
    """A fragment's bytes cut short, emptied, or with its data pages overwritten."""
    return {
        "truncated": data[: len(data) // 2],
        "empty": b"",
        "overwritten": data[:100] + b"\xff" * 200 + data[300:],
    }[damage]


@pytest.mark.parametrize("damage", ["truncated", "empty", "overwritten"])
def test_an_unreadable_fragment_is_named_then_set_aside_by_a_rerun(tmp_path, damage):
    table = Table(str(tmp_path), "eval")
    key = {"metric": "fid", "extractor": "lenet", "seed": 0}
    table.append([{"generator": "kept", **key, "value": 1.0}])
    bad = Path(table.append([{"generator": f"g{i}", **key, "value": i} for i in range(500)]))
    bad.write_bytes(_damaged(bad.read_bytes(), damage))
    damaged = bad.read_bytes()
    with pytest.raises(UserError) as raised:
        table.read()
    assert str(raised.value).startswith(f"eval table: fragment {bad} cannot be read (")
    assert str(raised.value).endswith(
        "`ganorch eval run` on this run moves it to _quarantine/ and recomputes its rows"
    )
    warnings: list[str] = []
    moved = table.set_aside_unreadable(warnings.append)
    assert moved == [str(tmp_path / "eval" / "_quarantine" / bad.name)]
    assert Path(moved[0]).read_bytes() == damaged and not bad.exists()
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: eval table: fragment {bad}")
    assert table.read().column("generator").to_pylist() == ["kept"]
    assert table.set_aside_unreadable(warnings.append) == [] and len(warnings) == 1
    # The table folder stays a dataset plain pyarrow reads (it skips '_' folders).
    assert ds.dataset(tmp_path / "eval", format="parquet").count_rows() == 1
