"""``ganorch eval``: score generators on every measure, sharded over Ray actors, into ``eval``.

The generators are trial checkpoints, external sample sets and the reference row (real
training images, so every measure shows what real data scores). Each shard is one
(generator, metric family, seed); :func:`orchestrator.shards.run_shards` runs them on
long-lived actors, longest first. When ``n`` exceeds ``chunk``, the feature measures (fid, kid,
is, c2st_features, label_accuracy) of a generator do not featurise all its samples in one
actor: intermediate shards draw and featurise one chunk each, and the measure's shard combines
their features (the chunks are rows of the same draw, so the values do not depend on
``chunk``). Each actor builds one :class:`EvalJob`: it loads the LeNet judge once, keeps
each generator's samples per seed, the real test subset per seed, and its features (read
from or written to a disk cache shared by every actor and rerun). A shard's values
become long-format rows: ``metric`` is the value's name (``c2st_accuracy``, ``kid_mean``...),
with ``value``, ``ci_low``/``ci_high`` (null where the measure gives no interval),
``n_samples``, ``dataset_fingerprint`` and ``wall_s``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from orchestrator.errors import UserError
from orchestrator.evaluate.measures import METRICS, MeasureContext, judge_of
from orchestrator.shards import Shard, shard_outcomes

DEFAULT_METRICS = ("fid", "kid", "is", "label_accuracy", "c2st", "sharpness", "color_kl", "nn",
                   "iqa")
REFERENCE = "reference"
FIGURES = "figures"  # the per-generator figure shard's metric name
# Pixel measures do not depend on the extractor; label_accuracy always asks the LeNet judge.
_FIXED_EXTRACTOR = {"label_accuracy": "lenet"}
# value name -> the value's spread; the interval is value +- 1.96 * spread.
_SPREADS = {"kid_mean": "kid_std", "is_mean": "is_std",
            **{f"iqa_{d}": f"iqa_{d}_sem" for d in ("l1", "gmsm", "chroma", "gmsd")}}
_Z = 1.959963984540054
# Shards start in this order of their measure (the slow ones first, so the pool ends evenly);
# chunks come before everything, since measures wait for them.
_LONGEST_FIRST = ("figures", "c2st", "c2st_features", "nn", "iqa", "kid", "fid", "is",
                  "label_accuracy", "sharpness", "color_kl")


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
    if metric in _FIXED_EXTRACTOR:
        return _FIXED_EXTRACTOR[metric]
    return extractor if METRICS[metric].uses != "pixels" else "pixels"


def check_metrics(names: Sequence[str]) -> list[str]:
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise UserError(f"--metrics: unknown metric {unknown[0]!r} "
                        f"(choose from {', '.join(METRICS)})")
    if not names:
        raise UserError("--metrics: name at least one metric")
    return list(dict.fromkeys(names))


def plan_shards(generators: Sequence[EvalGenerator], metrics: Sequence[str], seeds: int,
                settings: EvalSettings, figures: bool = True) -> list[Shard]:
    """One shard per (generator, metric, seed), plus one figure shard per generator;
    label_accuracy only for generators with conditioning labels. Feature measures of a
    generator with more than ``settings.chunk`` samples need one chunk shard per chunk and
    extractor. Ordered chunks first, then slowest measure first."""
    _check_chunk(settings.chunk)
    shards = []
    for generator in generators:
        wanted = [m for m in metrics if m != "label_accuracy" or generator.conditional]
        for seed in range(seeds):
            chunks = _chunk_shards(generator, wanted, seed, settings)
            shards += [chunk for group in chunks.values() for chunk in group]
            for metric in wanted:
                needs = tuple(s.id for s in chunks.get(extractor_of(metric, settings.extractor),
                                                       ()) if _chunked(metric))
                shards.append(_shard(generator, metric, seed, settings, needs))
        if figures:
            shards.append(_shard(generator, FIGURES, 0, settings))
    rank = {metric: i for i, metric in enumerate(_LONGEST_FIRST)}
    return sorted(shards, key=lambda s: -1 if s.intermediate else rank.get(s.task.metric, 0))


def _check_chunk(chunk: int) -> None:
    from trainables.trainable import GENERATE_BATCH

    if chunk < GENERATE_BATCH or chunk % GENERATE_BATCH:
        raise UserError(f"--chunk: expected a multiple of {GENERATE_BATCH}, got {chunk}")


def _chunked(metric: str) -> bool:
    """Measures computed from extractor outputs alone, which can be gathered chunk by chunk."""
    return metric in METRICS and METRICS[metric].uses in ("features", "probabilities")


def _chunk_shards(generator: EvalGenerator, metrics: Sequence[str], seed: int,
                  settings: EvalSettings) -> dict[str, list[Shard]]:
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
            Shard(id=f"{generator.label}|chunk{start}-{stop}|{extractor}|{seed}|n{settings.n}",
                  key=None, task=EvalChunk(generator, seed, start, stop, extractor,
                                           "features" in uses, "probabilities" in uses))
            for start in range(0, n, settings.chunk)
            for stop in [min(start + settings.chunk, n)]]
    return chunks


def _shard(generator: EvalGenerator, metric: str, seed: int, settings: EvalSettings,
           needs: tuple[str, ...] = ()) -> Shard:
    extractor = extractor_of(metric, settings.extractor)
    key = {"generator": generator.label, "metric": metric, "extractor": extractor, "seed": seed}
    return Shard(id=f"{generator.label}|{metric}|{extractor}|{seed}|n{settings.n}", key=key,
                 task=EvalTask(generator, metric, seed), needs=needs)


@dataclass
class EvalJob:
    """Built once per actor from the object store's copies of the data; runs one shard."""

    data: Any  # trainables.datasets.ImageData
    sources: dict[str, np.ndarray]
    settings: EvalSettings
    _judge: Any = field(default=None, repr=False)
    _models: dict[str, Any] = field(default_factory=dict, repr=False)
    _samples: dict[tuple[str, int], tuple[np.ndarray, np.ndarray | None]] = field(
        default_factory=dict, repr=False)
    _real: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _contexts: dict[tuple[str, int], MeasureContext] = field(default_factory=dict, repr=False)

    def run(self, task: EvalTask | EvalChunk, *chunks: dict[str, Any]) -> Any:
        """Rows of one measure's values; for an :class:`EvalChunk`, its extractor outputs;
        ``chunks``: the outputs of the chunks a chunked measure needs, in order."""
        if isinstance(task, EvalChunk):
            return self.featurise(task)
        if chunks:
            images, labels = self.gathered(task, chunks)
        else:
            images, labels = self.samples(task.generator, task.seed)
        if task.metric == FIGURES:
            from orchestrator.evaluate.figures import write_figures

            written = write_figures(self, task.generator, images)
            return [{"value": float(written), "n_samples": len(images),
                     "dataset_fingerprint": self.data.fingerprint}]
        real = self.real(task.seed)
        context = self.context(_FIXED_EXTRACTOR.get(task.metric, self.settings.extractor),
                               task.seed)
        context.labels = labels
        self._remember_real_features(context, real, task.seed, task.metric)
        values = METRICS[task.metric](real, images, context)
        if chunks:
            context.forget(images)  # the gathered features are this shard's alone
        return value_rows(values, len(images), self.data.fingerprint)

    def featurise(self, chunk: EvalChunk) -> dict[str, Any]:
        """Features and/or class probabilities of one chunk of a generator's samples."""
        images, labels = self.samples(chunk.generator, chunk.seed, chunk.start, chunk.stop)
        context = self.context(chunk.extractor, chunk.seed)
        out = {"count": len(images), "labels": labels, "features": None, "probabilities": None}
        if chunk.features:
            out["features"] = context.features(images)
        if chunk.probabilities:
            out["probabilities"] = context.probabilities(images)
        context.forget(images)  # the chunk's pixels are done with
        return out

    def gathered(self, task: EvalTask,
                 chunks: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        """A stand-in for the generator's samples whose features and probabilities, put
        together from ``chunks``, the measure's context already holds: an (N, 0) array, so
        the measure sees N images without their pixels ever being in one place."""
        context = self.context(_FIXED_EXTRACTOR.get(task.metric, self.settings.extractor),
                               task.seed)
        stand_in = np.empty((sum(c["count"] for c in chunks), 0), np.uint8)
        for what, remember in (("features", context.remember_features),
                               ("probabilities", context.remember_probabilities)):
            if chunks[0][what] is not None:
                remember(stand_in, np.concatenate([c[what] for c in chunks]))
        labels = (np.concatenate([c["labels"] for c in chunks])
                  if chunks[0]["labels"] is not None else None)
        return stand_in, labels

    def judge(self) -> Any:
        if self._judge is None:
            self._judge = judge_of(self.data)
        return self._judge

    def context(self, extractor: str, seed: int) -> MeasureContext:
        key = (extractor, seed)
        if key not in self._contexts:
            self._contexts[key] = MeasureContext(
                extractor=extractor, judge=self.judge, judge_name=self.data.name,
                inception_weights=self.settings.inception_weights, seed=seed,
                train=self.data.train_images)
        return self._contexts[key]

    def real(self, seed: int) -> np.ndarray:
        """The real side: ``n`` test images, a seeded subset (order kept)."""
        if seed not in self._real:
            self._real[seed] = _subset(self.data.test_images, self.settings.n, seed)[0]
        return self._real[seed]

    def model(self, generator: EvalGenerator) -> Any:
        if generator.label not in self._models:
            from orchestrator.runs import local_copy
            from trainables.checkpoints import load_generator

            gpus = 1.0 if os.environ.get("CUDA_VISIBLE_DEVICES") else 0.0
            try:
                self._models[generator.label] = load_generator(
                    local_copy(generator.checkpoint), gpus=gpus)  # a URI is downloaded first
            except (OSError, ValueError) as exc:
                raise UserError(f"{generator.label}: {exc}") from None
        return self._models[generator.label]

    def samples(self, generator: EvalGenerator, seed: int, start: int = 0,
                stop: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Images ``start..stop-1`` (default: all ``n``) of ``generator``'s draw for ``seed``
        and their labels. A whole draw is kept per actor, a chunk is not."""
        key = (generator.label, seed)
        if key in self._samples:
            images, labels = self._samples[key]
            return images[start:stop], None if labels is None else labels[start:stop]
        n = self.settings.n if stop is None else stop
        if generator.kind == "trial":
            from trainables.checkpoints import draw_samples

            drawn = draw_samples(self.model(generator), n, seed, start)
        else:
            pool, pool_labels = ((self.sources[generator.label], None)
                                 if generator.kind == "source" else
                                 (self.data.train_images, self.data.train_labels))
            images, labels = _subset(pool, self.settings.n, seed, pool_labels)
            drawn = images[start:n], None if labels is None else labels[start:n]
        if start == 0 and stop is None:
            self._samples[key] = drawn
        return drawn

    def _remember_real_features(self, context: MeasureContext, real: np.ndarray,
                                seed: int, metric: str) -> None:
        """Real features from the disk cache, or computed now and written there."""
        if self.settings.cache is None or METRICS[metric].uses == "pixels":
            return
        name = (f"{self.data.fingerprint}-{context.extractor}-n{len(real)}-s{seed}"
                f"{_judge_tag(self, context)}.npy")
        path = Path(self.settings.cache) / "eval-features" / name
        if path.is_file():
            context.remember_features(real, np.load(path))
            return
        features = context.features(real)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        with open(partial, "wb") as sink:
            np.save(sink, features)
        partial.replace(path)  # atomic: a concurrent reader sees the whole file or none


def _judge_tag(job: EvalJob, context: MeasureContext) -> str:
    return f"-judge{job.judge().fingerprint}" if context.extractor == "lenet" else ""


def _subset(images: np.ndarray, n: int, seed: int,
            labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    if len(images) <= n:
        return images, labels
    keep = np.sort(np.random.default_rng(seed).choice(len(images), n, replace=False))
    return images[keep], None if labels is None else labels[keep]


def value_rows(values: dict[str, float], n: int, fingerprint: str) -> list[dict[str, Any]]:
    """Long-format rows of one shard's values, with a 95% interval where one is defined:
    value +- 1.96 spread for KID, IS and IQA (spread: their std over subsets/splits or standard
    error), Clopper-Pearson for C2ST and label accuracy (binomial counts)."""
    rows = []
    for name, value in values.items():
        low = high = None
        if name in _SPREADS and _SPREADS[name] in values:
            low, high = value - _Z * values[_SPREADS[name]], value + _Z * values[_SPREADS[name]]
        elif name == "c2st_accuracy" and "c2st_n_test" in values:
            low, high = clopper_pearson(value, int(values["c2st_n_test"]))
        elif name == "label_accuracy":
            low, high = clopper_pearson(value, n)
        rows.append({"metric": name, "value": float(value), "ci_low": low, "ci_high": high,
                     "n_samples": n, "dataset_fingerprint": fingerprint})
    return rows


def clopper_pearson(share: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for a share ``share`` of ``n`` trials (k = round(share * n))."""
    from scipy.stats import beta

    k, alpha = round(share * n), 1 - level
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def latest_attempts(data: pa.Table) -> pa.Table:
    """The rows of each shard's latest attempt: its values if it finished, else its error
    (an earlier attempt's rows have other keys, so the table's latest-per-key keeps them)."""
    if data.num_rows == 0 or "shard" not in data.column_names:
        return data
    outcome = shard_outcomes(data)
    errors = (data.column("error").to_pylist() if "error" in data.column_names
              else [None] * data.num_rows)
    keep = [(error is None) == (outcome.get(shard) is None)
            for shard, error in zip(data.column("shard").to_pylist(), errors, strict=True)]
    return data.filter(pa.array(keep))


def pivot_eval(data: pa.Table) -> pa.Table:
    """Generators x value names (mean over seeds; spreads, counts and figures left out), the
    generators in first-seen order with the reference last, the values in the registry's
    order of their measures (shards finish in any order); failed shards show as ``error`` in
    a column of their own."""
    rows = latest_attempts(data).to_pylist()
    hidden = ("_std", "_sem", "_n_test")
    metrics = list(dict.fromkeys(
        r["metric"] for r in rows if r.get("error") is None and r["metric"] != FIGURES
        and not r["metric"].endswith(hidden)))
    measure = {r["metric"]: _measure_rank(r.get("shard")) for r in rows}
    metrics.sort(key=lambda name: measure[name])  # stable: a measure's values keep their order
    rows.sort(key=lambda r: r["generator"] == REFERENCE)
    cells: dict[str, dict[str, list[float]]] = {}
    errors: dict[str, list[str]] = {}
    for r in rows:
        cells.setdefault(r["generator"], {})
        if r.get("error") is not None:
            errors.setdefault(r["generator"], []).append(r["metric"])
        elif r.get("value") is not None:
            cells[r["generator"]].setdefault(r["metric"], []).append(r["value"])
    columns: dict[str, list[Any]] = {"generator": list(cells)}
    for metric in metrics:
        columns[metric] = [_mean(cells[g].get(metric)) for g in cells]
    if errors:
        columns["failed"] = [", ".join(errors.get(g, [])) or None for g in cells]
    return pa.table(columns)


def _measure_rank(shard: str | None) -> int:
    """Position of a shard's measure (``generator|metric|...``) in the registry."""
    names = list(METRICS)
    measure = shard.split("|")[1] if shard and shard.count("|") >= 1 else None
    return names.index(measure) if measure in names else len(names)


def _mean(values: list[float] | None) -> float | None:
    if not values:
        return None
    finite = [v for v in values if v is not None]
    return float(np.mean(finite)) if finite else math.nan
