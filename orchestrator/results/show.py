"""`ganorch results`: read a run's tables back, sorted, trimmed, pivoted or grouped."""

from __future__ import annotations

import pyarrow as pa

from orchestrator.augment.report import pivot_augment
from orchestrator.display import render
from orchestrator.errors import UserError
from orchestrator.generators import spec_metric
from orchestrator.results.group import STAT_COLUMNS, group_stats
from orchestrator.runs import RunDir
from orchestrator.tables import TABLE_KEYS, Table

SHOWN_TABLES = ("trials", "epochs", "eval", "augment")
GROUPED_TABLES = SHOWN_TABLES  # every shown table groups
FORMATS = ("table", "csv", "json")
# The columns a terminal shows first for the trials table; csv/json carry every column.
_TRIAL_SUMMARY = ("trial_id", "variant", "status", "stopped_early", "epochs")
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
    group_by: str | None = None,
    metric: str | None = None,
) -> str:
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if pivot and table not in PIVOTS:
        raise UserError(f"--pivot works with --table {' or '.join(PIVOTS)}, not {table!r}")
    if group_by is not None and (pivot or table not in GROUPED_TABLES):
        raise UserError(
            f"--group-by works with --table {', '.join(GROUPED_TABLES)} and without --pivot"
        )
    if metric is not None and group_by is None:
        raise UserError("--metric names the column --group-by summarises; give --group-by too")
    data = load(name, table, runs_dir)
    if group_by is not None:
        data = grouped(RunDir.of(runs_dir, name), table, data, group_by, metric)
        sort = sort or "mean"
    elif pivot:
        data = PIVOTS[table](data)
        if data.num_rows == 0:
            raise UserError(f"run {name!r} has no finished rows in its {table} table to pivot")
    if sort:
        column = _column(data, sort, "--sort", table)
        order = "descending" if descending else "ascending"
        data = data.sort_by([(column, order)])  # stable; nulls (failed trials) sort last
    elif table == "epochs":
        data = data.sort_by([("trial_id", "ascending"), ("epoch", "ascending")])
    elif table == "eval" and not pivot:
        from orchestrator.evaluate.report import latest_attempts

        data = latest_attempts(data).sort_by([("generator", "ascending"), ("metric", "ascending")])
    elif table == "augment" and not pivot:
        data = data.sort_by([(key, "ascending") for key in TABLE_KEYS["augment"]])
    if top:
        data = data.slice(0, top)
    shown = _terminal_columns(data, table) if fmt == "table" and group_by is None else None
    return render(data, fmt, shown)


def grouped(run: RunDir, table: str, data: pa.Table, group_by: str, metric: str | None) -> pa.Table:
    """One row per distinct value of the ``group_by`` columns (comma-separated): the keys and
    the statistics of ``metric`` (default: the run's metric; ``value`` in the eval table,
    ``test_accuracy`` in the augment table) that :mod:`orchestrator.results.group` defines, in
    the keys' order. Epoch rows carry their trial's family, variant and config columns, and so
    do eval rows of trial generators, so both group by hyperparameters too. Failed shards of
    the eval and augment tables have no value and are left out of their group's n."""
    if table == "eval":
        from orchestrator.evaluate.report import latest_attempts

        data = _with_trial_config(run, latest_attempts(data), "generator")
    elif table == "epochs":
        data = _with_trial_config(run, data, "trial_id")
    names = [key.strip() for key in group_by.split(",") if key.strip()]
    if not names:
        raise UserError("--group-by needs at least one column name")
    keys = list(dict.fromkeys(_column(data, key, "--group-by", table) for key in names))
    column = _column(data, metric or _default_metric(run, table), "--metric", table)
    if not _is_number(data.schema.field(column).type):
        raise UserError(f"--metric: column {column!r} of the {table} table is not numeric")
    clash = [
        key
        for key in keys
        if key in STAT_COLUMNS or key == column or pa.types.is_nested(data.schema.field(key).type)
    ]
    if clash:
        raise UserError(
            f"--group-by: {clash[0]!r} cannot be a key (the metric, a statistic's name or a "
            "column of lists)"
        )
    rows = group_stats(data.select([*keys, column]).to_pylist(), keys, column)
    schema = pa.schema(
        [data.schema.field(key) for key in keys]
        + [pa.field("n", pa.int64())]
        + [pa.field(stat, pa.float64()) for stat in STAT_COLUMNS[1:]]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def _default_metric(run: RunDir, table: str) -> str:
    if table == "eval":
        return "value"
    if table == "augment":
        return "test_accuracy"
    metric, _ = spec_metric(run)
    return f"best_{metric}" if table == "trials" else metric


def _with_trial_config(run: RunDir, rows: pa.Table, trial_column: str) -> pa.Table:
    """``rows`` with the family, variant and config columns of the trial each row's
    ``trial_column`` names (nulls for a trial the trials table does not hold, such as an eval
    table's external sources and reference)."""
    trials = Table(run.tables, "trials").read()
    if "trial_id" not in trials.column_names:
        return rows
    config = [
        c for c in trials.column_names if c in ("family", "variant") or c.startswith("config/")
    ]
    by_trial = {row["trial_id"]: row for row in trials.select(["trial_id", *config]).to_pylist()}
    ids = rows.column(trial_column).to_pylist()
    # Looked up row by row: Arrow's join refuses null-typed columns (a knob left at None).
    for name in config:
        if name in rows.column_names:
            continue
        field = trials.schema.field(name)
        values = [by_trial.get(trial, {}).get(name) for trial in ids]
        rows = rows.append_column(field, pa.array(values, type=field.type))
    return rows


def _column(data: pa.Table, name: str, option: str, table: str) -> str:
    """The column ``name`` means: itself, else ``best_<name>`` (``fid`` for ``best_fid``), else
    ``config/<name>`` (``lr`` for ``config/lr``)."""
    for column in (name, f"best_{name}", f"config/{name}"):
        if column in data.column_names:
            return column
    raise UserError(
        f"{option}: no column {name!r} in the {table} table "
        f"(columns: {', '.join(data.column_names)})"
    )


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind)


def _terminal_columns(data: pa.Table, table: str) -> list[str]:
    names = data.column_names
    if table == "eval":  # provenance columns stay in csv/json
        first = [c for c in _EVAL_COLUMNS if c in names]
        return first + [c for c in names if c not in first and c not in _EVAL_HIDDEN]
    if table == "augment" and "shard" in names:  # the raw table; a pivot shows every column
        return [c for c in _AUGMENT_SUMMARY if c in names]
    if table != "trials":
        return names
    numeric = {c for c in names if _is_number(data.schema.field(c).type)}
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
