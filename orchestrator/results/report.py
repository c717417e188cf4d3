"""`ganorch report NAME`: one page that shows a run, ``report/index.html`` in the run folder.

The page is plain HTML with its images beside it (no script, no network): it opens from disk
and can be zipped and shared. It is regenerated from the tables and event files whenever the
command runs, also while a sweep is still running, and on object-store runs (written to the
bucket; a local copy is kept too). Sections appear only where their data exists: the spec; a
summary; the trials table sorted by the metric; the metric by epoch of every trial; the metric
against each searched hyperparameter; the importance chart; the last sample grid of the best
trials; the eval and augment pivots with their figures; how to open TensorBoard.
"""

from __future__ import annotations

import html
import io
import json
import math
import shutil
from pathlib import Path, PurePath
from typing import Any

import pyarrow.fs as pafs
import yaml

from orchestrator.errors import UserError
from orchestrator.generators import spec_metric
from orchestrator.runs import RunDir, cache_dir
from orchestrator.tables import Table

TOP_GRIDS = 3  # sample grids shown: the best trials'
SHOWN_TRIAL_COLUMNS = ("trial_id", "family", "variant", "status", "epochs", "best_epoch")


def write_report(name: str, runs_dir: str | None = None) -> tuple[PurePath, Path]:
    """Write the page; returns (its location in the run, a local copy's folder)."""
    run = RunDir.of(runs_dir, name).existing()
    trials = Table(run.tables, "trials").read().to_pylist()
    if not trials:
        raise UserError(f"run {name!r} has no trials yet: nothing to report")
    metric, mode = spec_metric(run)
    best = f"best_{metric}"
    spec_text = run.read_text("spec.yaml") or ""
    spec = yaml.safe_load(spec_text) or {}
    images: dict[str, bytes] = {}
    parts = [
        f"<h1>{_e(name)}</h1>",
        f"<p class=summary>{_e(_summary(trials, best, mode))}</p>",
        f"<h2>Spec</h2><pre>{_e(spec_text)}</pre>",
        "<h2>Trials</h2>",
        _trials_table(trials, best, mode, spec),
    ]
    epochs = Table(run.tables, "epochs").read().to_pylist()
    if epochs:
        images["curves.png"] = _curves(epochs, metric)
        parts.append(f"<h2>{_e(metric)} by epoch</h2>{_img('curves.png')}")
    scatters = _scatters(trials, best, spec)
    if scatters:
        images["hyperparameters.png"] = scatters
        parts.append(f"<h2>{_e(best)} against each searched hyperparameter</h2>")
        parts.append(_img("hyperparameters.png"))
    importance = _importance(name, runs_dir)
    if importance:
        images["importance.png"] = importance
        parts.append(f"<h2>Hyperparameter importance (fanova)</h2>{_img('importance.png')}")
    grids = _sample_grids(run, trials, best, mode)
    if grids:
        parts.append(f"<h2>Last sample grid of the best {len(grids)} trial(s)</h2><div class=row>")
        for trial_id, png in grids:
            images[f"samples-{trial_id}.png"] = png
            parts.append(f"<figure>{_img(f'samples-{trial_id}.png')}<figcaption>{_e(trial_id)}")
            parts.append("</figcaption></figure>")
        parts.append("</div>")
    for table, title in (("eval", "Evaluation"), ("augment", "Augmentation grid")):
        section = _pivot_section(run, name, runs_dir, table, title, images)
        if section:
            parts.append(section)
    shown = f" --runs-dir {run.runs_dir}" if runs_dir else ""
    parts.append(
        f"<h2>TensorBoard</h2><pre>ganorch tensorboard {_e(name)}{_e(shown)}</pre>"
        "<p>curves and sample grids of every trial, and the HPARAMS tab.</p>"
    )
    page = _PAGE.format(title=_e(f"ganorch report: {name}"), body="\n".join(parts))
    # Written whole into an emptied folder (no image of an earlier page stays): the run's own
    # report/ for a local run; for a bucket, a local copy that is then uploaded.
    local = cache_dir() / "reports" / name if run.remote else Path(run.path("report"))
    shutil.rmtree(local, ignore_errors=True)
    local.mkdir(parents=True)
    (local / "index.html").write_text(page)
    for file_name, data in images.items():
        (local / file_name).write_bytes(data)
    if run.remote:
        run.fs.delete_dir_contents(run.path("report"), missing_dir_ok=True)
        pafs.copy_files(str(local), run.path("report"), destination_filesystem=run.fs)
    return run.root / "report" / "index.html", local


def _summary(trials: list[dict[str, Any]], best: str, mode: str) -> str:
    finished = sum(t["status"] == "TERMINATED" for t in trials)
    failed = sum(t["status"] == "ERROR" for t in trials)
    scored = [t for t in trials if _finite(t.get(best))]
    text = f"{len(trials)} trials, {finished} finished, {failed} failed"
    if scored:
        top = (min if mode == "min" else max)(scored, key=lambda t: t[best])
        text += f"; best {best} {top[best]:.4g} (trial {top['trial_id']})"
    wall = sum(t.get("wall_s") or 0.0 for t in trials)
    return text + f"; {wall / 60:.1f} trial-minutes in all"


def _ordered(trials: list[dict[str, Any]], best: str, mode: str) -> list[dict[str, Any]]:
    sign = 1 if mode == "min" else -1
    return sorted(trials, key=lambda t: (not _finite(t.get(best)), sign * (t.get(best) or 0)))


def _searched(spec: dict[str, Any]) -> list[str]:
    return [key.split(".", 1)[-1] for key in (spec.get("space") or {})]


def _trials_table(trials: list[dict[str, Any]], best: str, mode: str, spec: dict) -> str:
    columns = [c for c in SHOWN_TRIAL_COLUMNS if any(t.get(c) is not None for t in trials)]
    columns.insert(4 if "variant" in columns else 3, best)
    columns += [f"config/{k}" for k in _searched(spec) if f"config/{k}" in trials[0]]
    columns += ["error"] if any(t.get("error") for t in trials) else []
    rows = [[t.get(c) for c in columns] for t in _ordered(trials, best, mode)]
    return _html_table(columns, rows, "trials")


def _html_table(columns: list[str], rows: list[list[Any]], table_id: str = "") -> str:
    head = "".join(f"<th>{_e(c.replace('config/', ''))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(_cell(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    named = f' id="{table_id}"' if table_id else ""
    return f"<table{named}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _curves(epochs: list[dict[str, Any]], metric: str) -> bytes:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4))
    by_trial: dict[str, list[dict[str, Any]]] = {}
    for row in epochs:
        if _finite(row.get(metric)):
            by_trial.setdefault(row["trial_id"], []).append(row)
    for _, rows in sorted(by_trial.items()):
        rows.sort(key=lambda r: r["epoch"])
        axes.plot([r["epoch"] for r in rows], [r[metric] for r in rows], marker="o", ms=2, lw=1)
    if by_trial and all(r[metric] > 0 for rows in by_trial.values() for r in rows):
        axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(_ticker().MaxNLocator(integer=True))
    axes.set_ylabel(metric)
    axes.grid(alpha=0.3)
    return _png(figure)


def _scatters(trials: list[dict[str, Any]], best: str, spec: dict) -> bytes | None:
    space = spec.get("space") or {}
    knobs = [
        k for k in space if any(_plain(t.get(f"config/{k.split('.', 1)[-1]}")) for t in trials)
    ]
    if not knobs:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(knobs), figsize=(3.2 * len(knobs), 3), squeeze=False)
    for axis, knob in zip(axes[0], knobs, strict=True):
        column = f"config/{knob.split('.', 1)[-1]}"
        points = [
            (t[column], t[best]) for t in trials if _plain(t.get(column)) and _finite(t.get(best))
        ]
        listed = isinstance(space[knob], list)  # a grid's or choice's values: one column each
        if not listed and all(isinstance(x, int | float) for x, _ in points):
            axis.scatter([x for x, _ in points], [y for _, y in points], s=12)
            if isinstance(space[knob], dict) and "loguniform" in space[knob]:
                axis.set_xscale("log")
                axis.xaxis.set_minor_formatter(_ticker().NullFormatter())  # no crowded labels
            elif all(isinstance(x, int) for x, _ in points):
                axis.xaxis.set_major_locator(_ticker().MaxNLocator(integer=True))
        else:
            labels = (
                [str(v) for v in space[knob]] if listed else sorted({str(x) for x, _ in points})
            )
            axis.scatter([labels.index(str(x)) for x, _ in points], [y for _, y in points], s=12)
            axis.set_xlim(-0.5, len(labels) - 0.5)
            axis.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
        axis.set_xlabel(knob)
        axis.set_ylabel(best)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return _png(figure)


def _importance(name: str, runs_dir: str | None) -> bytes | None:
    from orchestrator.results.importance import chart, importance

    try:
        metric, rows = importance(name, runs_dir=runs_dir)
    except UserError:  # too few trials, nothing searched: the page goes without the chart
        return None
    return chart(metric, rows, "fanova")


def _sample_grids(
    run: RunDir, trials: list[dict[str, Any]], best: str, mode: str
) -> list[tuple[str, bytes]]:
    """The last ``samples`` image of the best trials' TensorBoard folders."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    grids = []
    for trial in _ordered(trials, best, mode)[:TOP_GRIDS]:
        try:
            folder = run.download(run.path("tb", trial["trial_id"]))
        except (OSError, UserError):
            continue
        events = EventAccumulator(str(folder), size_guidance={"images": 1})
        events.Reload()
        if "samples" in events.Tags().get("images", []):
            grids.append((trial["trial_id"], events.Images("samples")[-1].encoded_image_string))
    return grids


def _pivot_section(
    run: RunDir, name: str, runs_dir: str | None, table: str, title: str, images: dict
) -> str | None:
    from orchestrator.results.show import show

    if Table(run.tables, table).read().num_rows == 0:
        return None
    try:
        rows = json.loads(show(name, table=table, pivot=True, fmt="json", runs_dir=runs_dir))
    except UserError:
        return None
    parts = [f"<h2>{title}</h2>"]
    if rows:
        columns = list(rows[0])
        parts.append(_html_table(columns, [[r.get(c) for c in columns] for r in rows]))
    figures = pafs.FileSelector(run.path("artifacts", table), allow_not_found=True)
    for info in sorted(run.fs.get_file_info(figures), key=lambda i: i.base_name):
        if info.base_name.endswith(".png"):
            file_name = f"{table}-{info.base_name}"
            images[file_name] = _read(run, info.path)
            parts.append(_img(file_name))
    return "\n".join(parts)


def _read(run: RunDir, path: str) -> bytes:
    with run.fs.open_input_stream(path) as stream:
        return stream.read()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ticker():
    import matplotlib.ticker

    return matplotlib.ticker


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    _pyplot().close(figure)
    return buffer.getvalue()


def _img(file_name: str) -> str:
    return f'<img src="{_e(file_name)}" alt="{_e(file_name)}">'


def _e(text: Any) -> str:
    return html.escape(str(text))


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _plain(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; margin: 0.5em 0; }}
th, td {{ border: 1px solid #ccc; padding: 3px 7px; text-align: right; }}
th {{ background: #f2f2f2; }}
pre {{ background: #f7f7f7; padding: 0.7em; overflow-x: auto; }}
img {{ max-width: 100%; }}
.row {{ display: flex; gap: 1em; flex-wrap: wrap; }}
figure {{ margin: 0; }}
</style></head>
<body>
{body}
</body></html>
"""
