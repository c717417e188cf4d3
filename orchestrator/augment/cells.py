"""The cells of ``ganorch grid augment`` and the actor job that trains them.

Every cell (strategy, real size, generated size, seed) trains a LeNet from scratch on a subset of
the real training split plus a prefix of the generator's samples (see
:mod:`evaluators.augmentation`) and scores it on the real test split. The (0 real, 0 generated)
cell is left out.

Data per seed ``s``: the real subset of size n is the first n of a permutation of the training
split seeded by ``s`` (so smaller subsets are nested in larger ones), and the generated subset
the first n of a sample pool drawn once per (generator, seed) in the driver and shared through
the object store. The pool is drawn in blocks of :data:`POOL_BLOCK` images, block ``b`` from
latent seed ``s * 2**20 + b``, so its first n images do not depend on the grid's largest size.
Labels of generated images are a conditional generator's conditioning labels, or the LeNet
judge's predictions for an unconditional one (the ``label_source`` column says which).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from orchestrator.augment.spec import AugmentSpec
from orchestrator.shards import Shard

POOL_BLOCK = 1000


@dataclass(frozen=True)
class Cell:
    strategy: str
    n_real: int
    n_generated: int
    seed: int


@dataclass(frozen=True)
class SamplePool:
    """Generated images (N, C, H, W) uint8, their labels and the judge's predicted labels."""

    images: np.ndarray
    labels: np.ndarray
    judge_labels: np.ndarray


@dataclass(frozen=True)
class RetrainSettings:
    """What every cell of one grid shares, written into each row."""

    generator: str
    checkpoint: str
    label_source: str  # "condition" (a conditional generator's labels) or "judge"
    epochs: int
    batch_size: int
    lr: float
    dataset: str  # the dataset's fingerprint

    def row(self) -> dict[str, Any]:
        return {
            "label_source": self.label_source,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "dataset": self.dataset,
            "checkpoint": self.checkpoint,
        }


def plan_cells(spec: AugmentSpec, n_train: int) -> list[Cell]:
    """Every cell but (0, 0), largest training sets first (the pool finishes evenly)."""
    real, generated = spec.sizes("real", n_train), spec.sizes("generated", n_train)
    cells = [
        Cell(strategy, r, g, seed)
        for strategy in spec.strategies
        for seed in range(spec.seeds)
        for r in real
        for g in generated
        if r or g
    ]
    return sorted(cells, key=lambda c: -(c.n_real + c.n_generated))


def cell_shard(generator: str, cell: Cell) -> Shard:
    key = {
        "generator": generator,
        "strategy": cell.strategy,
        "n_real": cell.n_real,
        "n_generated": cell.n_generated,
        "seed": cell.seed,
    }
    shard_id = f"{generator}/{cell.strategy}/r{cell.n_real}/g{cell.n_generated}/s{cell.seed}"
    return Shard(id=shard_id, key=key, task=cell)


def draw_pool(model: Any, judge_net: Any, n: int, seed: int) -> SamplePool:
    """``n`` samples of ``model`` for ``seed`` in :data:`POOL_BLOCK` blocks, labelled by their
    conditioning labels (or the judge's predictions for an unconditional model)."""
    from evaluators.judges.lenet import judge_predictions
    from trainables.checkpoints import draw_samples

    images, labels = [], []
    for block in range(-(-n // POOL_BLOCK)):
        block_images, block_labels = draw_samples(model, POOL_BLOCK, (seed << 20) + block)
        images.append(block_images)
        labels.append(block_labels)
    pool_images = np.concatenate(images)[:n]
    judge_labels = judge_predictions(judge_net, pool_images).argmax(axis=1)
    pool_labels = judge_labels if labels[0] is None else np.concatenate(labels)[:n]
    return SamplePool(pool_images, pool_labels.astype(np.int64), judge_labels.astype(np.int64))


class RetrainJob:
    """The work of one actor: cells of one grid, on the data the driver shared."""

    def __init__(self, data: Any, pools: dict[int, SamplePool], settings: RetrainSettings) -> None:
        import torch

        from trainables.device import select_device

        torch.set_num_threads(1)  # the actor holds one CPU
        self.device = select_device(1.0)  # CUDA only where Ray gave this actor a GPU
        self.data, self.pools, self.settings = data, pools, settings

    def run(self, cell: Cell) -> list[dict[str, Any]]:
        from evaluators.augmentation import Labelled, retrain

        data, settings, n = self.data, self.settings, cell.n_generated
        order = np.random.default_rng(cell.seed).permutation(len(data.train_images))
        chosen = np.sort(order[: cell.n_real])
        real = Labelled(data.train_images[chosen], data.train_labels[chosen])
        pool = self.pools.get(cell.seed) if n else None
        if n and (pool is None or len(pool.images) < n):
            raise RuntimeError(f"no pool of {n} generated images for seed {cell.seed}")
        if pool is None:
            generated = Labelled(data.train_images[:0], data.train_labels[:0])
            judge_labels = generated.labels
        else:
            generated = Labelled(pool.images[:n], pool.labels[:n])
            judge_labels = pool.judge_labels[:n]
        result = retrain(
            cell.strategy,
            real,
            generated,
            Labelled(data.test_images, data.test_labels),
            data.num_classes,
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            lr=settings.lr,
            seed=cell.seed,
            judge_labels=judge_labels,
            device=self.device,
        )
        return [
            {
                "test_accuracy": result.test_accuracy,
                "n_train": result.n_train,
                "n_generated_used": result.n_generated_used,
                "in_channels": result.in_channels,
                **settings.row(),
            }
        ]
