"""The plan of ``ganorch eval``: which generators, which shards, in which order.

The generators are trial checkpoints, external sample sets and the reference row (real
training images, so every measure shows what real data scores). Each shard is one
(generator, measure, seed), plus one figure shard per generator; the pool
(:mod:`orchestrator.shards`) runs them on long-lived actors, costliest first. When ``n``
exceeds ``chunk``, the feature measures (fid, kid, is, prdc, fid_inf, is_inf, confidence,
c2st_features, label_accuracy) of a generator do not featurise all its samples in one
actor: intermediate shards draw and featurise one chunk each, and the measure's shard
combines their features (the chunks are rows of the same draw, so the values do not depend
on ``chunk``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import UserError
from orchestrator.evaluate.measures import METRICS
from orchestrator.shards import Shard

REFERENCE = "reference"
FIGURES = "figures"  # the per-generator figure shard's metric name
FIGURES_COST = 100  # above every measure's: the sheets train a C2ST classifier and more


@dataclass(frozen=True)
class EvalGenerator:
    """One row of the final table: a trial checkpoint, an external sample set or the reference."""

    label: str
    kind: str  # "trial" | "source" | "reference"
    checkpoint: str | None = None
    conditional: bool = False  # label_accuracy applies (conditioning labels are known)
    available: int | None = None  # images it holds (None: a checkpoint draws any number)


@dataclass(frozen=True)
class EvalSettings:
    n: int = 1000
    extractor: str = "lenet"
    inception_weights: str | None = None
    cache: str | None = None  # folder of cached real-set features (None: no disk cache)
    artifacts: str | None = None  # folder for figure PNGs
    tb: str | None = None  # TensorBoard folder for figure images
    chunk: int = 10_000  # samples per feature-extraction shard (a multiple of GENERATE_BATCH)


@dataclass(frozen=True)
class EvalTask:
    generator: EvalGenerator
    metric: str
    seed: int


@dataclass(frozen=True)
class EvalChunk:
    """An intermediate shard: features and/or class probabilities of samples ``start..stop-1``
    of ``generator``'s draw for ``seed``, for the chunked measures of one extractor."""

    generator: EvalGenerator
    seed: int
    start: int
    stop: int
    extractor: str
    features: bool
    probabilities: bool


def extractor_of(metric: str, extractor: str) -> str:
    """The extractor column of a metric's rows: "pixels" for pixel measures."""
    if metric == FIGURES:
        return "pixels"
    if METRICS[metric].extractor is not None:
        return METRICS[metric].extractor
    return extractor if METRICS[metric].uses != "pixels" else "pixels"


def check_metrics(names: Sequence[str]) -> list[str]:
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise UserError(
            f"--metrics: unknown metric {unknown[0]!r} (choose from {', '.join(METRICS)})"
        )
    if not names:
        raise UserError("--metrics: name at least one metric")
    return list(dict.fromkeys(names))


def plan_shards(
    generators: Sequence[EvalGenerator],
    metrics: Sequence[str],
    seeds: int,
    settings: EvalSettings,
    figures: bool = True,
) -> list[Shard]:
    """One shard per (generator, metric, seed), plus one figure shard per generator; measures
    that need labels (label_accuracy) only for generators with conditioning labels. Feature
    measures of a generator with more than ``settings.chunk`` samples need one chunk shard per
    chunk and extractor. Ordered chunks first, then slowest measure first."""
    _check_chunk(settings.chunk)
    shards = []
    for generator in generators:
        wanted = [m for m in metrics if not METRICS[m].needs_labels or generator.conditional]
        for seed in range(seeds):
            chunks = _chunk_shards(generator, wanted, seed, settings)
            shards += [chunk for group in chunks.values() for chunk in group]
            for metric in wanted:
                needs = tuple(
                    s.id
                    for s in chunks.get(extractor_of(metric, settings.extractor), ())
                    if _chunked(metric)
                )
                shards.append(_shard(generator, metric, seed, settings, needs))
        if figures:
            shards.append(_shard(generator, FIGURES, 0, settings))
    return sorted(shards, key=_start_order)


def _start_order(shard: Shard) -> tuple[int, int]:
    """Chunks first (measures wait for them), then the costliest measures (so the pool ends
    evenly); figures cost most, since they train a C2ST classifier of their own."""
    if shard.intermediate:
        return 0, 0
    metric = shard.task.metric
    return 1, -(METRICS[metric].cost if metric in METRICS else FIGURES_COST)


def _check_chunk(chunk: int) -> None:
    from trainables.trainable import GENERATE_BATCH

    if chunk < GENERATE_BATCH or chunk % GENERATE_BATCH:
        raise UserError(f"--chunk: expected a multiple of {GENERATE_BATCH}, got {chunk}")


def _chunked(metric: str) -> bool:
    """Measures computed from extractor outputs alone, which can be gathered chunk by chunk."""
    return metric in METRICS and METRICS[metric].uses in ("features", "probabilities")


def _chunk_shards(
    generator: EvalGenerator, metrics: Sequence[str], seed: int, settings: EvalSettings
) -> dict[str, list[Shard]]:
    """Extractor -> the chunk shards of ``generator`` and ``seed`` its chunked ``metrics``
    need; empty when the samples fit in one chunk."""
    n = min(settings.n, generator.available or settings.n)
    if n <= settings.chunk:
        return {}
    by_extractor: dict[str, list[str]] = {}
    for metric in filter(_chunked, metrics):
        by_extractor.setdefault(extractor_of(metric, settings.extractor), []).append(metric)
    chunks = {}
    for extractor, chunked in by_extractor.items():
        uses = {METRICS[m].uses for m in chunked}
        chunks[extractor] = [
            Shard(
                id=f"{generator.label}|chunk{start}-{stop}|{extractor}|{seed}|n{settings.n}",
                key=None,
                task=EvalChunk(
                    generator,
                    seed,
                    start,
                    stop,
                    extractor,
                    "features" in uses,
                    "probabilities" in uses,
                ),
            )
            for start in range(0, n, settings.chunk)
            for stop in [min(start + settings.chunk, n)]
        ]
    return chunks


def _shard(
    generator: EvalGenerator,
    metric: str,
    seed: int,
    settings: EvalSettings,
    needs: tuple[str, ...] = (),
) -> Shard:
    extractor = extractor_of(metric, settings.extractor)
    key = {"generator": generator.label, "metric": metric, "extractor": extractor, "seed": seed}
    return Shard(
        id=f"{generator.label}|{metric}|{extractor}|{seed}|n{settings.n}",
        key=key,
        task=EvalTask(generator, metric, seed),
        needs=needs,
    )
