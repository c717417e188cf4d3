"""Reading an augmentation grid back: mean accuracy per cell, the pivot, the report's figures.

Per (generator, strategy) three figures, as in the report's appendix 7.19: a contour plot of mean
test accuracy over (real size, generated size), accuracy against the generated size with one
line per real size, and accuracy against the real size with one line per generated size; error
bars are the standard deviation over seeds. Sizes are spaced evenly on the axes (0, 1%, 10%, ...
span orders of magnitude) and labelled with their image counts.
"""

from __future__ import annotations

import io
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class CellMean:
    generator: str
    strategy: str
    n_real: int
    n_generated: int
    mean: float
    std: float  # over seeds (sample standard deviation; 0 for one seed)
    seeds: int


def cell_means(rows: Iterable[dict[str, Any]]) -> list[CellMean]:
    """Mean and spread of ``test_accuracy`` over seeds for every cell with a finite value."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for row in rows:
        value = row.get("test_accuracy")
        if row.get("error") is None and value is not None and math.isfinite(value):
            key = (row["generator"], row["strategy"], row["n_real"], row["n_generated"])
            groups[key].append(value)
    return [
        CellMean(*key, float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v))
        for key, v in sorted(groups.items())
    ]


def pivot_augment(data: pa.Table) -> pa.Table:
    """One row per (generator, strategy, n_real), one ``gen=N`` column per generated size:
    the mean test accuracy over seeds (null where the cell has no result)."""
    means = cell_means(data.to_pylist())
    if not means:
        return pa.table({})
    generated = sorted({m.n_generated for m in means})
    rows: dict[tuple, dict[str, Any]] = {}
    for m in means:
        row = rows.setdefault(
            (m.generator, m.strategy, m.n_real),
            {
                "generator": m.generator,
                "strategy": m.strategy,
                "n_real": m.n_real,
                **{f"gen={g}": None for g in generated},
                "seeds": 0,
            },
        )
        row[f"gen={m.n_generated}"] = m.mean
        row["seeds"] = max(row["seeds"], m.seeds)
    return pa.Table.from_pylist(list(rows.values()))


def figure_prefix(generator: str) -> str:
    """Figure file names start with the generator's label, made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", generator)


def write_figures(
    rows: list[dict[str, Any]],
    out_dir: Path,
    tb_dir: Path,
    generator: str,
    tensorboard: bool = True,
) -> list[Path]:
    """PNG figures per strategy into ``out_dir`` (and, with ``tensorboard``, the same images
    into an event file under ``tb_dir/<generator>``); returns the PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means = [m for m in cell_means(rows) if m.generator == generator]
    safe = figure_prefix(generator)
    out_dir.mkdir(parents=True, exist_ok=True)
    images: dict[str, bytes] = {}
    paths: list[Path] = []
    for strategy in sorted({m.strategy for m in means}):
        cells = [m for m in means if m.strategy == strategy]
        for kind, draw in (
            ("contour", _contour),
            ("by-generated", _by_generated),
            ("by-real", _by_real),
        ):
            figure = draw(cells, f"{generator} · {strategy}")
            if figure is None:
                continue
            png = io.BytesIO()
            figure.savefig(png, format="png", dpi=110)
            plt.close(figure)
            path = out_dir / f"{safe}-{strategy}-{kind}.png"
            path.write_bytes(png.getvalue())
            paths.append(path)
            images[f"augment/{strategy}/{kind}"] = png.getvalue()
    if tensorboard and images:
        _log_images(tb_dir / safe, images)
    return paths


def _log_images(folder: Path, images: dict[str, bytes]) -> None:
    """The rendered PNGs as TensorBoard images (decoded, not drawn a second time)."""
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(folder)) as writer:
        for tag, png in images.items():
            pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            writer.add_image(tag, pixels, dataformats="HWC")


def _grid(cells: list[CellMean]) -> tuple[list[int], list[int], np.ndarray, np.ndarray]:
    """Real sizes, generated sizes and (real x generated) matrices of means and stds (NaN
    where a cell is missing)."""
    real = sorted({c.n_real for c in cells})
    generated = sorted({c.n_generated for c in cells})
    mean = np.full((len(real), len(generated)), np.nan)
    std = np.full_like(mean, np.nan)
    for c in cells:
        i, j = real.index(c.n_real), generated.index(c.n_generated)
        mean[i, j], std[i, j] = c.mean, c.std
    return real, generated, mean, std


def _contour(cells: list[CellMean], title: str):
    import matplotlib.pyplot as plt

    real, generated, mean, _ = _grid(cells)
    if len(real) < 2 or len(generated) < 2:
        return None  # a contour needs a surface
    figure, axes = plt.subplots(figsize=(6.4, 5.2), layout="constrained")
    x, y = np.meshgrid(range(len(generated)), range(len(real)))
    filled = axes.contourf(x, y, np.ma.masked_invalid(mean), levels=12, cmap="viridis")
    figure.colorbar(filled, ax=axes, label="mean test accuracy")
    for i in range(len(real)):
        for j in range(len(generated)):
            if np.isfinite(mean[i, j]):  # the measured value at each grid point
                axes.text(
                    j,
                    i,
                    f"{mean[i, j]:.3f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.7, "lw": 0},
                )
    _ticks(axes, generated, real)
    axes.set(xlim=(-0.15, len(generated) - 0.85), ylim=(-0.15, len(real) - 0.85))
    axes.set(xlabel="generated images", ylabel="real images", title=title)
    return figure


def _by_generated(cells: list[CellMean], title: str):
    real, generated, mean, std = _grid(cells)
    return _lines(
        generated,
        [(f"{r} real", mean[i], std[i]) for i, r in enumerate(real)],
        "generated images",
        title,
    )


def _by_real(cells: list[CellMean], title: str):
    real, generated, mean, std = _grid(cells)
    return _lines(
        real,
        [(f"{g} generated", mean[:, j], std[:, j]) for j, g in enumerate(generated)],
        "real images",
        title,
    )


def _lines(
    sizes: list[int], series: list[tuple[str, np.ndarray, np.ndarray]], xlabel: str, title: str
):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    for label, values, spread in series:
        shown = np.isfinite(values)
        if shown.any():
            axes.errorbar(
                np.arange(len(sizes))[shown],
                values[shown],
                yerr=spread[shown],
                marker="o",
                capsize=3,
                label=label,
            )
    _ticks(axes, sizes, None)
    axes.set(xlabel=xlabel, ylabel="test accuracy", title=title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    return figure


def _ticks(axes, x_sizes: list[int], y_sizes: list[int] | None) -> None:
    axes.set_xticks(range(len(x_sizes)), [str(s) for s in x_sizes])
    if y_sizes is not None:
        axes.set_yticks(range(len(y_sizes)), [str(s) for s in y_sizes])
