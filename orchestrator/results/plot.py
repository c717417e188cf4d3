"""`ganorch results plot`: a metric against the epoch, one line per group of trials, with the
95% Student-t band of :mod:`orchestrator.results.group` (a group of one trial has no band)."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from orchestrator.errors import UserError
from orchestrator.results.show import grouped, load
from orchestrator.runs import RunDir, local_folder


def plot_curves(
    name: str, group_by: str, metric: str | None = None, runs_dir: str | None = None
) -> PurePath:
    """Draw ``metric`` (default: the run's) of the epochs table against ``epoch``, one line per
    distinct value of the ``group_by`` columns, into the run's ``artifacts/curves/`` folder;
    returns the PNG's path there."""
    run = RunDir.of(runs_dir, name).existing()
    data = load(name, "epochs", runs_dir)
    keys = [key.strip() for key in group_by.split(",") if key.strip()]
    if "epoch" in keys:
        raise UserError("--group-by: epoch is the plot's x axis; group by other columns")
    stats = grouped(run, "epochs", data, ",".join([*keys, "epoch"]), metric)
    columns = stats.column_names
    key_columns, value_name = columns[: len(keys)], _metric_name(run, metric)
    png = _draw(stats.to_pylist(), key_columns, value_name, f"{name}: {value_name} by epoch")
    file_name = f"{_slug(value_name)}-by-{_slug('-'.join(keys))}.png"
    with local_folder(run.location("artifacts", "curves")) as out:
        (out / file_name).write_bytes(png)
    return run.artifacts / "curves" / file_name


def _metric_name(run: RunDir, metric: str | None) -> str:
    from orchestrator.generators import spec_metric

    return metric or spec_metric(run)[0]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text.replace("config/", ""))


def _draw(rows: Sequence[dict[str, Any]], keys: Sequence[str], metric: str, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    lines: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        if row["mean"] is not None:
            lines.setdefault(tuple(row[k] for k in keys), []).append(row)
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for key, points in sorted(lines.items(), key=lambda item: [str(v) for v in item[0]]):
        points.sort(key=lambda row: row["epoch"])
        epochs = [p["epoch"] for p in points]
        label = ", ".join(str(v) for v in key)
        n = max(p["n"] for p in points)
        (line,) = axes.plot(epochs, [p["mean"] for p in points], marker="o", ms=3)
        line.set_label(f"{label} (n={n})")
        band = [p for p in points if p["ci_low"] is not None]
        if band:
            axes.fill_between(
                [p["epoch"] for p in band],
                [p["ci_low"] for p in band],
                [p["ci_high"] for p in band],
                color=line.get_color(),
                alpha=0.15,
            )
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(f"{metric} (mean, 95% t interval)")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, title=", ".join(k.replace("config/", "") for k in keys))
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=110)
    plt.close(figure)
    return out.getvalue()
