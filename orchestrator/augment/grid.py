"""`ganorch grid augment`: does a generator's output help a classifier? The report's grid.

The driver resolves the generator and the dataset, plans the cells
(:mod:`orchestrator.augment.cells`), draws the generated sample pools once and runs the cells
as shards on the actor pool (:mod:`orchestrator.shards`): each finished cell is one fragment of
``tables/augment`` and a rerun skips finished cells, refusing cells trained with other settings.
Then it draws the figures (:mod:`orchestrator.augment.report`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pyarrow.fs as pafs

from orchestrator.augment.cells import (
    RetrainJob,
    RetrainSettings,
    SamplePool,
    cell_shard,
    draw_pool,
    plan_cells,
)
from orchestrator.augment.spec import AugmentSpec
from orchestrator.errors import UserError
from orchestrator.generators import TrialGenerator, resolve_generator
from orchestrator.locks import run_locked
from orchestrator.runs import RunDir, local_copy, local_folder
from orchestrator.shards import ERROR_COLUMN, SHARD_COLUMN, Shard, ShardReport, finished_shards
from orchestrator.tables import Table

TABLE = "augment"
# Columns that must agree between a finished cell and a rerun for the cell to be reused.
SETTING_COLUMNS = ("epochs", "batch_size", "lr", "dataset", "checkpoint")


@dataclass
class AugmentOutcome:
    run: RunDir
    generator: TrialGenerator
    report: ShardReport
    rows: list[dict[str, Any]]  # the grid's finished cells
    figures: list[PurePath] = field(default_factory=list)  # in the run's filesystem

    def baseline(self) -> float | None:
        """Mean test accuracy over seeds with the largest real subset and no generated images
        (of ``mix`` if the grid has it: ``source``'s network differs)."""
        strategies = {r["strategy"] for r in self.rows}
        strategy = "mix" if "mix" in strategies else min(strategies, default=None)
        cells = [r for r in self.rows if r["strategy"] == strategy and r["n_generated"] == 0]
        if not cells:
            return None
        largest = max(r["n_real"] for r in cells)
        return float(np.mean([r["test_accuracy"] for r in cells if r["n_real"] == largest]))


def run_augment(
    spec: AugmentSpec,
    runs_dir: str | None,
    *,
    actors: int | None = None,
    address: str | None = None,
    force: bool = False,
    say: Callable[[str], None] = print,
) -> AugmentOutcome:
    """Run (or finish) the grid of ``spec``; the table is complete when it returns. The run
    is locked meanwhile (one writer at a time)."""
    run = RunDir.of(runs_dir, spec.run)
    if not Path(spec.generator).exists():
        run.existing()  # before the lock makes its folder: a generator of the run needs the run
    with run_locked(run, "grid augment", say):
        return _grid(spec, run, actors=actors, address=address, force=force, say=say)


def _grid(
    spec: AugmentSpec,
    run: RunDir,
    *,
    actors: int | None,
    address: str | None,
    force: bool,
    say: Callable[[str], None],
) -> AugmentOutcome:
    from orchestrator.cluster import connect
    from orchestrator.image_sets import dataset_errors
    from orchestrator.shards import run_shards
    from trainables.datasets import load_dataset

    generator = resolve_generator(run, spec.generator)
    with dataset_errors():
        data = load_dataset(_dataset_of(run, spec))
    cells = plan_cells(spec, len(data.train_images))
    shards = [cell_shard(generator.label, cell) for cell in cells]
    table = Table(run.tables, TABLE)
    table.set_aside_unreadable(say)  # their cells count as not done: trained again below
    model = _load(generator, run.resolvable(generator.checkpoint), data)
    settings = RetrainSettings(
        generator.label,
        generator.checkpoint,
        "condition" if model.conditional else "judge",
        spec.epochs,
        spec.batch_size,
        spec.lr,
        data.fingerprint,
    )
    if not force:
        _check_settings(table, shards, settings, run.name)
    done = set() if force else finished_shards(table)
    todo = [s.task for s in shards if s.id not in done]
    say(
        f"grid {run.name!r} / {generator.label}: {len(cells)} cells "
        f"({', '.join(spec.strategies)}; {len({c.n_real for c in cells})} real x "
        f"{len({c.n_generated for c in cells})} generated sizes; {_count(spec.seeds, 'seed')}; "
        f"{_count(spec.epochs, 'epoch')}), {len(cells) - len(todo)} already done"
    )

    pools = _draw_pools(todo, model, data, say)
    if todo:  # a rerun with nothing left to do needs no cluster
        connect(address)
    report = run_shards(
        f"{run.name}/augment",
        shards,
        RetrainJob,
        {"data": data, "pools": pools, "settings": settings},
        table,
        actors=actors,
        force=force,
        noun="cells",
    )
    rows = grid_rows(table, shards)
    return AugmentOutcome(run, generator, report, rows, _figures(run, generator, rows, report))


def _draw_pools(
    todo: list[Any], model: Any, data: Any, say: Callable[[str], None]
) -> dict[int, SamplePool]:
    """Per seed, the generated images the unfinished cells ``todo`` need (their largest
    count), labelled; drawn here once and shared with every actor."""
    from orchestrator.judges import judge_of

    pools: dict[int, SamplePool] = {}
    needed = {
        seed: max(c.n_generated for c in todo if c.seed == seed) for seed in {c.seed for c in todo}
    }
    if any(needed.values()):
        judge = judge_of(data)
        judge_net = judge.build()
        for seed, n in sorted(needed.items()):
            if n:
                pools[seed] = draw_pool(model, judge_net, n, seed)
        agree = np.mean([np.mean(p.labels == p.judge_labels) for p in pools.values()])
        say(
            f"drew {sum(len(p.images) for p in pools.values())} generated images "
            f"({len(pools)} seeds); the judge agrees with their labels on {agree:.1%}"
        )
    return pools


def _figures(
    run: RunDir, generator: TrialGenerator, rows: list[dict[str, Any]], report: ShardReport
) -> list[PurePath]:
    """The grid's figures: drawn again when cells were trained now (or none exist yet), else
    the ones an earlier run wrote."""
    from orchestrator.augment.report import figure_prefix, write_figures

    existing = _figure_files(run, f"{figure_prefix(generator.label)}-")
    if rows and (report.done or not existing):  # a rerun with nothing new keeps them
        with (
            local_folder(run.location("artifacts", "augment")) as out,
            local_folder(run.location("tb", "augment")) as tb,
        ):
            written = write_figures(rows, out, tb, generator.label)
        return [run.artifacts / "augment" / path.name for path in written]
    return existing


def _figure_files(run: RunDir, prefix: str) -> list[PurePath]:
    """The run's augment PNGs whose names start with ``prefix``."""
    folder = pafs.FileSelector(run.path("artifacts", "augment"), allow_not_found=True)
    return sorted(
        run.artifacts / "augment" / info.base_name
        for info in run.fs.get_file_info(folder)
        if info.base_name.startswith(prefix) and info.base_name.endswith(".png")
    )


def grid_rows(table: Table, shards: list[Shard]) -> list[dict[str, Any]]:
    """The finished rows (no error) of ``shards`` in ``table``."""
    ids = {s.id for s in shards}
    data = table.read()
    if data.num_rows == 0:
        return []
    return [
        r for r in data.to_pylist() if r.get(SHARD_COLUMN) in ids and r.get(ERROR_COLUMN) is None
    ]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _dataset_of(run: RunDir, spec: AugmentSpec) -> dict[str, Any]:
    """The run's dataset (its spec.yaml), or the one the grid names for a run without one."""
    from orchestrator.image_sets import run_dataset

    from_run = run_dataset(run)
    if spec.dataset and from_run and spec.dataset != from_run:
        raise UserError(
            f"--dataset {spec.dataset} differs from run {run.name!r}'s dataset "
            f"{from_run}; leave it out to use the run's"
        )
    dataset = spec.dataset or from_run
    if not dataset:
        raise UserError(
            f"run {run.name!r} has no spec.yaml naming its dataset; name it with "
            "--dataset (e.g. --dataset mnist5k)"
        )
    return dataset


def _load(generator: TrialGenerator, checkpoint: str, data: Any) -> Any:
    """The generator's model from ``checkpoint`` (a path or URI), checked against the dataset
    it will augment."""
    from trainables.checkpoints import load_generator

    try:
        model = load_generator(local_copy(checkpoint))
    except (OSError, ValueError) as exc:
        raise UserError(f"generator {generator.label}: {exc}") from None
    if tuple(model.image_shape) != data.shape or model.num_classes != data.num_classes:
        raise UserError(
            f"generator {generator.label} makes {tuple(model.image_shape)} images of "
            f"{model.num_classes} classes; dataset {data.name} has {data.shape} "
            f"images of {data.num_classes} classes"
        )
    return model


def _check_settings(
    table: Table, shards: list[Shard], settings: RetrainSettings, run_name: str
) -> None:
    """Refuse to mix cells trained with other settings into this grid."""
    ids = {s.id for s in shards}
    expected = settings.row()
    for row in table.read().to_pylist():
        if row.get(SHARD_COLUMN) not in ids or row.get(ERROR_COLUMN) is not None:
            continue
        for column in SETTING_COLUMNS:
            if row.get(column) != expected[column]:
                raise UserError(
                    f"run {run_name!r} holds cell {row[SHARD_COLUMN]} with {column} "
                    f"{row.get(column)!r}, this grid asks for "
                    f"{expected[column]!r}; rerun with the same settings or pass --force to "
                    "retrain every cell"
                )
