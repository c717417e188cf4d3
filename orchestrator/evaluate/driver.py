"""What ``ganorch eval run`` does on the driver: resolve the generators and the real data,
plan the shards, run them on the actor pool and render the generators x metrics table."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import yaml

from orchestrator.errors import UserError
from orchestrator.evaluate.job import (
    REFERENCE,
    EvalGenerator,
    EvalJob,
    EvalSettings,
    check_metrics,
    pivot_eval,
    plan_shards,
)
from orchestrator.runs import RunDir, cache_dir
from orchestrator.shards import ShardReport, run_shards
from orchestrator.tables import Table


def run_eval(name: str, *, top: int | None = None, by: str = "fid", trials: str | None = None,
             sources: list[str] = (), metrics: str = "fid", n: int = 1000, seeds: int = 1,
             extractor: str = "lenet", inception_weights: str | None = None,
             chunk: int = 10_000, dataset: str | None = None, actors: int | None = None,
             figures: bool = True, force: bool = False, runs_dir: str | None = None,
             address: str | None = None,
             say: Callable[[str], None] = print) -> tuple[ShardReport, str]:
    """Run (or resume) the evaluation; returns the pool's report and the rendered table."""
    from orchestrator.display import render
    from orchestrator.evaluate.measures import EXTRACTORS

    if extractor not in EXTRACTORS:
        raise UserError(f"--extractor: unknown extractor {extractor!r} "
                        f"(choose {' or '.join(EXTRACTORS)})")
    chosen = check_metrics([m.strip() for m in metrics.split(",") if m.strip()])
    run = RunDir.of(runs_dir, name)
    data = _real_data(run, dataset)
    generators = _trial_generators(run, top, by, trials, bool(sources))
    external = _sources(sources, data, {g.label for g in generators})
    generators += [EvalGenerator(label, "source", available=len(images))
                   for label, images in external.items()]
    generators.append(EvalGenerator(REFERENCE, "reference", conditional=True,
                                    available=len(data.train_images)))
    settings = EvalSettings(n=n, extractor=extractor, inception_weights=inception_weights,
                            cache=str(cache_dir()), artifacts=run.location("artifacts", "eval"),
                            tb=run.location("tb", "eval"), chunk=chunk)
    shards = plan_shards(generators, chosen, seeds, settings, figures=figures)

    from orchestrator.cluster import connect

    run.fs.create_dir(run.path(), recursive=True)
    connect(address)
    if extractor == "lenet" or "label_accuracy" in chosen:
        say(f"judge for {data.name}: loading (trained once, then cached)")
        from orchestrator.evaluate.measures import judge_of

        judge_of(data)  # trained here once, so the actors all load it from the cache
    say(f"eval {name!r}: {len(generators)} generators x {len(chosen)} measures x {seeds} "
        f"seed(s) on {data.name} ({n} samples each): {len(shards)} shards")
    table = Table(run.tables, "eval")
    report = run_shards("eval", shards, EvalJob,
                        {"data": data, "sources": external, "settings": settings}, table,
                        actors=actors, force=force)
    return report, render(pivot_eval(table.read()), "table")


def _real_data(run: RunDir, dataset: str | None):
    """The dataset named by ``--dataset``, else the run spec's dataset."""
    from orchestrator.image_sets import load_reference_dataset

    if dataset is not None:
        return load_reference_dataset(dataset)
    spec = run.read_text("spec.yaml")
    if spec is None:
        raise UserError(f"no sweep named {run.name!r} under {run.runs_dir}: name the real "
                        "data with --dataset (e.g. --dataset mnist5k) to score sources alone")
    from trainables.datasets import DatasetError, load_dataset

    try:
        return load_dataset(yaml.safe_load(spec)["dataset"])
    except (DatasetError, KeyError, TypeError) as exc:
        raise UserError(f"{run.shown(run.path('spec.yaml'))}: cannot load its dataset: "
                        f"{exc}") from None


def _trial_generators(run: RunDir, top: int | None, by: str, trials: str | None,
                      have_sources: bool) -> list[EvalGenerator]:
    from orchestrator.generators import pick_trials

    if trials and top:
        raise UserError("give --top or --trials, not both")
    has_trials = Table(run.tables, "trials").fragments()
    if not has_trials:
        if trials or top:
            raise UserError(f"run {run.name!r} has no trials to pick from")
        if not have_sources:
            raise UserError(f"run {run.name!r} has no trials: give --source LABEL=PATH to "
                            "score external samples")
        return []
    ids = [t.strip() for t in trials.split(",") if t.strip()] if trials else None
    picked = pick_trials(run, ids=ids, top=top, by=by)
    return [EvalGenerator(g.label, "trial", run.resolvable(g.checkpoint), _conditional(g.family))
            for g in picked]


def _conditional(family: str | None) -> bool:
    from trainables.families import family_class

    return bool(family) and family_class(family).conditional


def _sources(specs: list[str], data, taken: set[str]) -> dict[str, np.ndarray]:
    """``LABEL=PATH`` -> images, each of the real data's shape."""
    from orchestrator.image_sets import load_image_set

    loaded: dict[str, np.ndarray] = {}
    shape = tuple(data.test_images.shape[1:])
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise UserError(f"--source: expected LABEL=PATH, got {spec!r}")
        if label in loaded or label in taken or label == REFERENCE:
            raise UserError(f"--source: label {label!r} is already used")
        images = load_image_set(path).images
        if tuple(images.shape[1:]) != shape:
            raise UserError(f"--source {label}: images are {'x'.join(map(str, images.shape[1:]))}"
                            f", the real data {'x'.join(map(str, shape))} (CxHxW)")
        loaded[label] = images
    return loaded
