"""`ganorch results`: read a run's tables back, sorted and trimmed."""

from __future__ import annotations

import pyarrow as pa

from orchestrator.augment.report import pivot_augment
from orchestrator.display import render
from orchestrator.errors import UserError
from orchestrator.runs import RunDir
from orchestrator.tables import TABLE_KEYS, Table

SHOWN_TABLES = ("trials", "epochs", "eval", "augment")
FORMATS = ("table", "csv", "json")
# The columns a terminal shows first for the trials table; csv/json carry every column.
_TRIAL_SUMMARY = ("trial_id", "status", "stopped_early", "epochs")
_EVAL_COLUMNS = (
    "generator",
    "metric",
    "extractor",
    "seed",
    "value",
    "ci_low",
    "ci_high",
    "n_samples",
    "wall_s",
)
_EVAL_HIDDEN = ("shard", "dataset_fingerprint")
_AUGMENT_SUMMARY = (
    "generator",
    "strategy",
    "n_real",
    "n_generated",
    "seed",
    "test_accuracy",
    "n_train",
    "n_generated_used",
    "label_source",
    "epochs",
    "wall_s",
    "error",
    "redo_error",
)


def load(name: str, table: str, runs_dir: str | None = None) -> pa.Table:
    if table not in SHOWN_TABLES:
        raise UserError(f"--table must be one of {', '.join(SHOWN_TABLES)}, got {table!r}")
    run = RunDir.of(runs_dir, name).existing()
    data = Table(run.tables, table).read()
    if data.num_rows == 0:
        raise UserError(f"run {name!r} has no rows in its {table} table yet")
    return data


def _pivot_eval(data: pa.Table) -> pa.Table:
    from orchestrator.evaluate.report import pivot_eval

    return pivot_eval(data)


# Table name -> its one-row-per-subject view for ``--pivot``.
PIVOTS = {"eval": _pivot_eval, "augment": pivot_augment}


def show(
    name: str,
    *,
    table: str = "trials",
    sort: str | None = None,
    descending: bool = False,
    top: int | None = None,
    fmt: str = "table",
    runs_dir: str | None = None,
    pivot: bool = False,
) -> str:
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if pivot and table not in PIVOTS:
        raise UserError(f"--pivot works with --table {' or '.join(PIVOTS)}, not {table!r}")
    data = load(name, table, runs_dir)
    if pivot:
        data = PIVOTS[table](data)
        if data.num_rows == 0:
            raise UserError(f"run {name!r} has no finished rows in its {table} table to pivot")
    if sort:
        column = sort if sort in data.column_names else f"best_{sort}"
        if column not in data.column_names:
            raise UserError(
                f"--sort: no column {sort!r} in the {table} table "
                f"(columns: {', '.join(data.column_names)})"
            )
        order = "descending" if descending else "ascending"
        data = data.sort_by([(column, order)])  # nulls (failed trials) sort last
    elif table == "epochs":
        data = data.sort_by([("trial_id", "ascending"), ("epoch", "ascending")])
    elif table == "eval" and not pivot:
        from orchestrator.evaluate.report import latest_attempts

        data = latest_attempts(data).sort_by([("generator", "ascending"), ("metric", "ascending")])
    elif table == "augment" and not pivot:
        data = data.sort_by([(key, "ascending") for key in TABLE_KEYS["augment"]])
    if top:
        data = data.slice(0, top)
    return render(data, fmt, _terminal_columns(data, table) if fmt == "table" else None)


def _terminal_columns(data: pa.Table, table: str) -> list[str]:
    names = data.column_names
    if table == "eval":  # provenance columns stay in csv/json
        first = [c for c in _EVAL_COLUMNS if c in names]
        return first + [c for c in names if c not in first and c not in _EVAL_HIDDEN]
    if table == "augment" and "shard" in names:  # the raw table; a pivot shows every column
        return [c for c in _AUGMENT_SUMMARY if c in names]
    if table != "trials":
        return names
    numeric = {
        c
        for c in names
        if pa.types.is_integer(data.schema.field(c).type)
        or pa.types.is_floating(data.schema.field(c).type)
    }
    metrics = [c for c in names if c.startswith("best_") and c in numeric]
    metrics += [c for c in names if c.startswith("last_") and c in numeric][:4]
    # The searched knobs: config columns whose value differs between trials.
    config = [
        c
        for c in names
        if c.startswith("config/") and len(set(map(str, data.column(c).to_pylist()))) > 1
    ]
    tail = [c for c in ("wall_s", "error") if c in names]
    return [c for c in _TRIAL_SUMMARY if c in names] + metrics + config + tail
