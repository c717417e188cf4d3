"""``ganorch eval``: score generators on every measure, sharded over Ray actors, into ``eval``.

The generators are trial checkpoints, external sample sets and the reference row (real
training images, so every measure shows what real data scores). Each shard is one
(generator, metric family, seed); :func:`orchestrator.shards.run_shards` runs them on
long-lived actors, each of which builds one :class:`EvalJob`: it loads the LeNet judge once,
keeps each generator's samples per seed, the real test subset per seed, and its features
(read from or written to a disk cache shared by every actor and rerun). A shard's values
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
from orchestrator.measure import METRICS, MeasureContext, judge_of
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


@dataclass(frozen=True)
class EvalGenerator:
    """One row of the final table: a trial checkpoint, an external sample set or the reference."""

    label: str
    kind: str  # "trial" | "source" | "reference"
    checkpoint: str | None = None
    conditional: bool = False  # label_accuracy applies (conditioning labels are known)


@dataclass(frozen=True)
class EvalSettings:
    n: int = 1000
    extractor: str = "lenet"
    inception_weights: str | None = None
    cache: str | None = None  # folder of cached real-set features (None: no disk cache)
    artifacts: str | None = None  # folder for figure PNGs
    tb: str | None = None  # TensorBoard folder for figure images


@dataclass(frozen=True)
class EvalTask:
    generator: EvalGenerator
    metric: str
    seed: int


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
    label_accuracy only for generators with conditioning labels."""
    shards = []
    for generator in generators:
        wanted = [m for m in metrics if m != "label_accuracy" or generator.conditional]
        for seed in range(seeds):
            for metric in wanted:
                shards.append(_shard(generator, metric, seed, settings))
        if figures:
            shards.append(_shard(generator, FIGURES, 0, settings))
    return shards


def _shard(generator: EvalGenerator, metric: str, seed: int, settings: EvalSettings) -> Shard:
    extractor = extractor_of(metric, settings.extractor)
    key = {"generator": generator.label, "metric": metric, "extractor": extractor, "seed": seed}
    return Shard(id=f"{generator.label}|{metric}|{extractor}|{seed}|n{settings.n}", key=key,
                 task=EvalTask(generator, metric, seed))


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

    def run(self, task: EvalTask) -> list[dict[str, Any]]:
        images, labels = self.samples(task.generator, task.seed)
        if task.metric == FIGURES:
            from orchestrator.eval_figures import write_figures

            written = write_figures(self, task.generator, images)
            return [{"value": float(written), "n_samples": len(images),
                     "dataset_fingerprint": self.data.fingerprint}]
        real = self.real(task.seed)
        context = self.context(_FIXED_EXTRACTOR.get(task.metric, self.settings.extractor),
                               task.seed)
        context.labels = labels
        self._remember_real_features(context, real, task.seed, task.metric)
        values = METRICS[task.metric](real, images, context)
        return value_rows(values, len(images), self.data.fingerprint)

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

    def samples(self, generator: EvalGenerator,
                seed: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``n`` images of ``generator`` for ``seed`` and their labels (drawn once per actor)."""
        key = (generator.label, seed)
        if key not in self._samples:
            if generator.kind == "trial":
                from trainables.checkpoints import draw_samples

                drawn = draw_samples(self.model(generator), self.settings.n, seed)
            elif generator.kind == "source":
                drawn = _subset(self.sources[generator.label], self.settings.n, seed)[0], None
            else:
                drawn = _subset(self.data.train_images, self.settings.n, seed,
                                self.data.train_labels)
            self._samples[key] = drawn
        return self._samples[key]

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
    generators in first-seen order; failed shards show as ``error`` in a column of their own."""
    rows = latest_attempts(data).to_pylist()
    hidden = ("_std", "_sem", "_n_test")
    metrics = list(dict.fromkeys(
        r["metric"] for r in rows if r.get("error") is None and r["metric"] != FIGURES
        and not r["metric"].endswith(hidden)))
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


def _mean(values: list[float] | None) -> float | None:
    if not values:
        return None
    finite = [v for v in values if v is not None]
    return float(np.mean(finite)) if finite else math.nan
