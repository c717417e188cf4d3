"""The ``eval`` table's rows and its reading back: a shard's values as long-format rows with
their 95% intervals, each shard's latest attempt, and the generators x values pivot.

``metric`` is the value's name (``c2st_accuracy``, ``kid_mean``...), with ``value``,
``ci_low``/``ci_high`` (null where the measure gives no interval), ``n_samples``,
``dataset_fingerprint`` and ``wall_s``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

from orchestrator.evaluate.measures import BINOMIAL, METRICS, SPREADS
from orchestrator.evaluate.plan import FIGURES, REFERENCE
from orchestrator.shards import ERROR_COLUMN, REDO_ERROR_COLUMN

_Z = 1.959963984540054


def value_rows(values: dict[str, float], n: int, fingerprint: str) -> list[dict[str, Any]]:
    """Long-format rows of one shard's values, with a 95% interval where the registry defines
    one: value +- 1.96 spread for KID, IS and IQA (spread: their std over subsets/splits or
    standard error; none when the spread is NaN), Clopper-Pearson for C2ST and label accuracy
    (binomial counts)."""
    rows = []
    for name, value in values.items():
        low = high = None
        if name in SPREADS and SPREADS[name] in values:
            spread = values[SPREADS[name]]
            if math.isfinite(spread):  # NaN: no spread to tell (KID from a single estimate)
                low, high = value - _Z * spread, value + _Z * spread
        elif name in BINOMIAL and (BINOMIAL[name] is None or BINOMIAL[name] in values):
            trials = n if BINOMIAL[name] is None else int(values[BINOMIAL[name]])
            low, high = clopper_pearson(value, trials)
        rows.append(
            {
                "metric": name,
                "value": float(value),
                "ci_low": low,
                "ci_high": high,
                "n_samples": n,
                "dataset_fingerprint": fingerprint,
            }
        )
    return rows


def clopper_pearson(share: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for a share ``share`` of ``n`` trials (k = round(share * n))."""
    from scipy.stats import beta

    k, alpha = round(share * n), 1 - level
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def latest_attempts(data: pa.Table) -> pa.Table:
    """The rows of each shard's latest attempt: its values if it finished, its error if it
    failed with nothing finished before, or the values it kept from the last attempt that
    finished, with the failure in ``redo_error``. (An earlier attempt's rows may have other
    keys, so the table's latest-per-key keeps them; the shard's last row says which kind its
    latest attempt wrote.)"""
    if data.num_rows == 0 or "shard" not in data.column_names:
        return data
    outcome_columns = [c for c in (ERROR_COLUMN, REDO_ERROR_COLUMN) if c in data.column_names]
    kinds = [_row_kind(row) for row in data.select(outcome_columns).to_pylist()]
    shards = data.column("shard").to_pylist()
    latest = dict(zip(shards, kinds, strict=True))
    keep = [kind == latest[shard] for shard, kind in zip(shards, kinds, strict=True)]
    return data.filter(pa.array(keep))


def _row_kind(row: dict[str, Any]) -> str:
    if row.get(ERROR_COLUMN) is not None:
        return "failed"
    return "kept" if row.get(REDO_ERROR_COLUMN) is not None else "finished"


def pivot_eval(data: pa.Table) -> pa.Table:
    """Generators x value names (mean over seeds; spreads, counts and figures left out), the
    generators in first-seen order with the reference last, the values in the registry's
    order of their measures (shards finish in any order); failed shards show as ``error`` in
    a column of their own, and so do measures whose values were kept after a redo failed."""
    rows = latest_attempts(data).to_pylist()
    hidden = ("_std", "_sem", "_n_test")
    metrics = list(
        dict.fromkeys(
            r["metric"]
            for r in rows
            if r.get("error") is None
            and r["metric"] != FIGURES
            and not r["metric"].endswith(hidden)
        )
    )
    measure = {r["metric"]: _measure_rank(r.get("shard")) for r in rows}
    metrics.sort(key=lambda name: measure[name])  # stable: a measure's values keep their order
    rows.sort(key=lambda r: r["generator"] == REFERENCE)
    cells: dict[str, dict[str, list[float]]] = {}
    errors: dict[str, dict[str, None]] = {}  # generator -> what failed (an ordered set)
    for r in rows:
        cells.setdefault(r["generator"], {})
        if r.get("error") is not None:
            errors.setdefault(r["generator"], {})[r["metric"]] = None
        elif r.get("value") is not None:
            cells[r["generator"]].setdefault(r["metric"], []).append(r["value"])
        if r.get(REDO_ERROR_COLUMN) is not None:
            redone = _measure_of(r.get("shard")) or r["metric"]
            errors.setdefault(r["generator"], {})[
                f"{redone} (redo failed; earlier value shown)"
            ] = None
    columns: dict[str, list[Any]] = {"generator": list(cells)}
    for metric in metrics:
        columns[metric] = [_mean(cells[g].get(metric)) for g in cells]
    if errors:
        columns["failed"] = [", ".join(errors.get(g, {})) or None for g in cells]
    return pa.table(columns)


def _measure_of(shard: str | None) -> str | None:
    """A shard's measure (``generator|metric|...``)."""
    return shard.split("|")[1] if shard and shard.count("|") >= 1 else None


def _measure_rank(shard: str | None) -> int:
    """Position of a shard's measure in the registry."""
    names = list(METRICS)
    measure = _measure_of(shard)
    return names.index(measure) if measure in names else len(names)


def _mean(values: list[float] | None) -> float | None:
    if not values:
        return None
    finite = [v for v in values if v is not None]
    return float(np.mean(finite)) if finite else math.nan
