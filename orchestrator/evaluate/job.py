"""The actor side of ``ganorch eval``: one :class:`EvalJob` per actor runs shards one at a time.

A job loads the LeNet judge once, keeps each generator's samples per seed, the real test subset
per seed, and their features (the real ones read from or written to a disk cache shared by
every actor and rerun); a shard's values become long-format rows
(:func:`orchestrator.evaluate.report.value_rows`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.errors import UserError
from orchestrator.evaluate.context import MeasureContext
from orchestrator.evaluate.measures import METRICS
from orchestrator.evaluate.plan import FIGURES, EvalChunk, EvalGenerator, EvalSettings, EvalTask
from orchestrator.evaluate.report import value_rows
from orchestrator.image_sets import seeded_subset
from orchestrator.judges import judge_of


@dataclass
class EvalJob:
    """Built once per actor from the object store's copies of the data; runs one shard."""

    data: Any  # trainables.datasets.ImageData
    sources: dict[str, np.ndarray]
    settings: EvalSettings
    _judge: Any = field(default=None, repr=False)
    _models: dict[str, Any] = field(default_factory=dict, repr=False)
    _samples: dict[tuple[str, int], tuple[np.ndarray, np.ndarray | None]] = field(
        default_factory=dict, repr=False
    )
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
            written = self.figures(task.generator, images)
            return [
                {
                    "value": float(written),
                    "n_samples": len(images),
                    "dataset_fingerprint": self.data.fingerprint,
                }
            ]
        real = self.real(task.seed)
        context = self.context(METRICS[task.metric].extractor or self.settings.extractor, task.seed)
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

    def gathered(
        self, task: EvalTask, chunks: Sequence[dict[str, Any]]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """A stand-in for the generator's samples whose features and probabilities, put
        together from ``chunks``, the measure's context already holds: an (N, 0) array, so
        the measure sees N images without their pixels ever being in one place."""
        context = self.context(METRICS[task.metric].extractor or self.settings.extractor, task.seed)
        stand_in = np.empty((sum(c["count"] for c in chunks), 0), np.uint8)
        for what, remember in (
            ("features", context.remember_features),
            ("probabilities", context.remember_probabilities),
        ):
            if chunks[0][what] is not None:
                remember(stand_in, np.concatenate([c[what] for c in chunks]))
        labels = (
            np.concatenate([c["labels"] for c in chunks])
            if chunks[0]["labels"] is not None
            else None
        )
        return stand_in, labels

    def figures(self, generator: EvalGenerator, images: np.ndarray) -> int:
        """Write the generator's sheets (see :mod:`orchestrator.evaluate.figures`)."""
        from orchestrator.evaluate.figures import write_figures
        from orchestrator.runs import join

        model = self.model(generator) if generator.kind == "trial" else None
        return write_figures(
            images,
            real=self.real(0),
            train=self.data.train_images,
            model=model,
            artifacts=join(self.settings.artifacts, generator.label),
            tb=join(self.settings.tb, generator.label),
            judge=self.context("lenet", 0),
        )

    def judge(self) -> Any:
        if self._judge is None:
            self._judge = judge_of(self.data)
        return self._judge

    def context(self, extractor: str, seed: int) -> MeasureContext:
        key = (extractor, seed)
        if key not in self._contexts:
            self._contexts[key] = MeasureContext(
                extractor=extractor,
                load_judge=self.judge,
                judge_name=self.data.name,
                inception_weights=self.settings.inception_weights,
                seed=seed,
                train=self.data.train_images,
            )
        return self._contexts[key]

    def real(self, seed: int) -> np.ndarray:
        """The real side: ``n`` test images, a seeded subset (order kept)."""
        if seed not in self._real:
            self._real[seed] = seeded_subset(self.data.test_images, self.settings.n, seed)[0]
        return self._real[seed]

    def model(self, generator: EvalGenerator) -> Any:
        if generator.label not in self._models:
            from orchestrator.runs import local_copy
            from trainables.checkpoints import load_generator

            gpus = 1.0 if os.environ.get("CUDA_VISIBLE_DEVICES") else 0.0
            try:
                self._models[generator.label] = load_generator(
                    local_copy(generator.checkpoint), gpus=gpus
                )  # a URI is downloaded first
            except (OSError, ValueError) as exc:
                raise UserError(f"{generator.label}: {exc}") from None
        return self._models[generator.label]

    def samples(
        self, generator: EvalGenerator, seed: int, start: int = 0, stop: int | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
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
            pool, pool_labels = (
                (self.sources[generator.label], None)
                if generator.kind == "source"
                else (self.data.train_images, self.data.train_labels)
            )
            images, labels = seeded_subset(pool, self.settings.n, seed, pool_labels)
            drawn = images[start:n], None if labels is None else labels[start:n]
        if start == 0 and stop is None:
            self._samples[key] = drawn
        return drawn

    def _remember_real_features(
        self, context: MeasureContext, real: np.ndarray, seed: int, metric: str
    ) -> None:
        """Real features from the disk cache, or computed now and written there."""
        if self.settings.cache is None or METRICS[metric].uses == "pixels":
            return
        judge = f"-judge{self.judge().fingerprint}" if context.extractor == "lenet" else ""
        name = f"{self.data.fingerprint}-{context.extractor}-n{len(real)}-s{seed}{judge}.npy"
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
