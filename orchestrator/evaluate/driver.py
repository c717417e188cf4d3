"""What ``ganorch eval run`` does on the driver: resolve the generators and the real data,
plan the shards, run them on the actor pool and render the generators x metrics table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from orchestrator.errors import UserError
from orchestrator.evaluate.measures import DEFAULT_METRICS
from orchestrator.evaluate.plan import (
    REFERENCE,
    EvalGenerator,
    EvalSettings,
    check_metrics,
    plan_shards,
)
from orchestrator.locks import run_locked
from orchestrator.runs import RunDir, cache_dir, check_name
from orchestrator.shards import ShardReport, run_shards
from orchestrator.tables import Table


@dataclass(frozen=True)
class EvalRequest:
    """What to score and how, as ``ganorch eval run`` takes it: ``name`` the run (a sweep's,
    or a new one for sources alone); the generators: the ``top`` trials by ``best_<by>`` or
    the comma-separated ``trials``, ``sources`` (``LABEL=PATH``) and the reference; the
    comma-separated ``metrics``, ``n`` samples per generator and seed, ``seeds``; the
    ``extractor`` and ``inception_weights``; ``chunk`` samples per feature-extraction shard;
    ``dataset`` naming the real data when not the run spec's; ``actors``; ``figures``;
    ``force`` to redo finished shards; ``runs_dir`` and the Ray ``address``."""

    name: str
    top: int | None = None
    by: str = "fid"
    trials: str | None = None
    sources: tuple[str, ...] = ()
    metrics: str = ",".join(DEFAULT_METRICS)
    n: int = 1000
    seeds: int = 1
    extractor: str = "lenet"
    inception_weights: str | None = None
    chunk: int = 10_000
    dataset: str | None = None
    actors: int | None = None
    figures: bool = True
    force: bool = False
    runs_dir: str | None = None
    address: str | None = None


def run_eval(request: EvalRequest, say: Callable[[str], None] = print) -> tuple[ShardReport, str]:
    """Run (or resume) the evaluation; returns the pool's report and the rendered table.
    The run is locked meanwhile (one writer at a time)."""
    from orchestrator.evaluate.context import check_extractor

    check_extractor(request.extractor)
    chosen = check_metrics([m.strip() for m in request.metrics.split(",") if m.strip()])
    run = RunDir.of(request.runs_dir, request.name)
    with run_locked(run, "eval run", say):
        return _evaluate(request, run, chosen, say)


def _evaluate(
    request: EvalRequest, run: RunDir, chosen: list[str], say: Callable[[str], None]
) -> tuple[ShardReport, str]:
    from orchestrator.cluster import connect
    from orchestrator.display import render
    from orchestrator.evaluate.job import EvalJob
    from orchestrator.evaluate.report import pivot_eval
    from orchestrator.judges import judge_of

    data = _real_data(run, request.dataset)
    generators = _trial_generators(
        run, request.top, request.by, request.trials, bool(request.sources)
    )
    external = _sources(request.sources, data, {g.label for g in generators})
    generators += [
        EvalGenerator(label, "source", available=len(images)) for label, images in external.items()
    ]
    generators.append(
        EvalGenerator(REFERENCE, "reference", conditional=True, available=len(data.train_images))
    )
    settings = EvalSettings(
        n=request.n,
        extractor=request.extractor,
        inception_weights=request.inception_weights,
        cache=str(cache_dir()),
        artifacts=run.location("artifacts", "eval"),
        tb=run.location("tb", "eval"),
        chunk=request.chunk,
    )
    shards = plan_shards(generators, chosen, request.seeds, settings, figures=request.figures)

    run.fs.create_dir(run.path(), recursive=True)
    connect(request.address)
    if request.extractor == "lenet" or "label_accuracy" in chosen:
        say(f"judge for {data.name}: loading (trained once, then cached)")
        judge_of(data)  # trained here once, so the actors all load it from the cache
    say(
        f"eval {request.name!r}: {len(generators)} generators x {len(chosen)} measures x "
        f"{request.seeds} seed(s) on {data.name} ({request.n} samples each): "
        f"{len(shards)} shards"
    )
    table = Table(run.tables, "eval")
    table.set_aside_unreadable(say)  # their shards count as unfinished: run again below
    report = run_shards(
        "eval",
        shards,
        EvalJob,
        {"data": data, "sources": external, "settings": settings},
        table,
        actors=request.actors,
        force=request.force,
    )
    return report, render(pivot_eval(table.read()), "table")


def _real_data(run: RunDir, dataset: str | None):
    """The dataset named by ``--dataset``, else the run spec's dataset."""
    from orchestrator.image_sets import dataset_errors, load_reference_dataset, run_dataset
    from trainables.datasets import load_dataset

    if dataset is not None:
        return load_reference_dataset(dataset)
    named = run_dataset(run)
    if named is None:
        raise UserError(
            f"run {run.name!r} under {run.runs_dir} has no spec.yaml naming its dataset: "
            "name the real data with --dataset (e.g. --dataset mnist5k)"
        )
    with dataset_errors(f"{run.shown(run.path('spec.yaml'))}: cannot load its dataset: "):
        return load_dataset(named)


def _trial_generators(
    run: RunDir, top: int | None, by: str, trials: str | None, have_sources: bool
) -> list[EvalGenerator]:
    from orchestrator.generators import pick_trials

    if trials and top:
        raise UserError("give --top or --trials, not both")
    has_trials = Table(run.tables, "trials").fragments()
    if not has_trials:
        if trials or top:
            raise UserError(f"run {run.name!r} has no trials to pick from")
        if not have_sources:
            raise UserError(
                f"run {run.name!r} has no trials: give --source LABEL=PATH to "
                "score external samples"
            )
        return []
    ids = [t.strip() for t in trials.split(",") if t.strip()] if trials else None
    picked = pick_trials(run, ids=ids, top=top, by=by)
    return [
        EvalGenerator(g.label, "trial", run.resolvable(g.checkpoint), _conditional(g.family))
        for g in picked
    ]


def _conditional(family: str | None) -> bool:
    from trainables.families import family_class

    return bool(family) and family_class(family).conditional


def _sources(specs: Sequence[str], data, taken: set[str]) -> dict[str, np.ndarray]:
    """``LABEL=PATH`` -> images, each of the real data's shape."""
    from orchestrator.image_sets import load_image_set, shape_text

    loaded: dict[str, np.ndarray] = {}
    shape = tuple(data.test_images.shape[1:])
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise UserError(f"--source: expected LABEL=PATH, got {spec!r}")
        check_name(label, "--source label")  # it names the source's artifacts folder
        if label in loaded or label in taken or label == REFERENCE:
            raise UserError(f"--source: label {label!r} is already used")
        images = load_image_set(path).images
        if tuple(images.shape[1:]) != shape:
            raise UserError(
                f"--source {label}: images are {shape_text(images.shape[1:])}, "
                f"the real data {shape_text(shape)} (CxHxW)"
            )
        loaded[label] = images
    return loaded
