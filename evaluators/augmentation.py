"""Generated images as training data: a LeNet retrained on real and generated images, scored on
real test images.

The data-augmentation study of the MNIST coursework report (section 4, appendix 7.19): a LeNet
is trained from scratch on a subset of the real training split plus a subset of generated
samples and its accuracy on the real test split is the cell's result. Four strategies:

* ``mix``: real and generated images shuffled together in every epoch;
* ``filter``: as ``mix``, keeping only the generated images the dataset's LeNet judge
  classifies as their label (the report's "quality check");
* ``finetune``: the first ``epochs // 2`` epochs on generated images only, the rest on real
  images only, one optimiser throughout;
* ``source``: as ``mix`` with a second input channel, +1 on real and -1 on generated images
  (+1 on the test images), so the network can tell the two apart.

When one side is empty, every strategy trains all its epochs on the other side, so the cells
without generated images train on the same real images under every strategy (``source``'s
network still has its second, constant +1, channel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from evaluators.judges.lenet import (
    TrainingPhase,
    judge_predictions,
    to_unit_float,
    train_lenet_phases,
)

STRATEGIES = ("mix", "filter", "finetune", "source")
REAL_SOURCE, GENERATED_SOURCE = 1.0, -1.0


@dataclass(frozen=True)
class Labelled:
    """uint8 images (N, C, H, W) and their int class labels (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.images)

    def take(self, keep: np.ndarray) -> Labelled:
        return Labelled(self.images[keep], self.labels[keep])


@dataclass(frozen=True)
class RetrainResult:
    test_accuracy: float  # NaN when nothing was left to train on
    n_train: int  # images the classifier trained on
    n_generated_used: int  # generated images among them (after the quality check)
    in_channels: int  # of the classifier's first convolution


def retrain(
    strategy: str,
    real: Labelled,
    generated: Labelled,
    test: Labelled,
    num_classes: int,
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    judge_labels: np.ndarray | None = None,
    device: str | torch.device = "cpu",
) -> RetrainResult:
    """Train a fresh LeNet on ``real`` and ``generated`` by ``strategy`` and score it on ``test``.

    ``judge_labels`` (the judge's predicted class of each generated image) is required by
    ``filter``. The classifier's initial weights and batch order depend on ``seed`` only, so
    cells of one seed differ by their data alone.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r} (choose from {', '.join(STRATEGIES)})")
    if strategy == "finetune" and epochs < 2:
        raise ValueError("finetune needs at least 2 epochs (half on generated, half on real)")
    if strategy == "filter":
        if judge_labels is None or len(judge_labels) != len(generated):
            raise ValueError("filter needs the judge's label for every generated image")
        generated = generated.take(np.asarray(judge_labels) == generated.labels)
    n_train = len(real) + len(generated)
    channels, side = test.images.shape[1], test.images.shape[2]
    source = strategy == "source"
    in_channels = channels + 1 if source else channels
    if n_train == 0:
        return RetrainResult(math.nan, 0, 0, in_channels)

    real_x = _inputs(real.images, REAL_SOURCE if source else None)
    generated_x = _inputs(generated.images, GENERATED_SOURCE if source else None)
    real_y, generated_y = _labels(real.labels), _labels(generated.labels)
    if strategy == "finetune" and len(real) and len(generated):
        phases = [
            TrainingPhase(generated_x, generated_y, epochs // 2),
            TrainingPhase(real_x, real_y, epochs - epochs // 2),
        ]
    else:
        phases = [
            TrainingPhase(
                torch.cat([real_x, generated_x]), torch.cat([real_y, generated_y]), epochs
            )
        ]
    model = train_lenet_phases(
        phases,
        in_channels,
        num_classes,
        side,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
    )
    test_x = _inputs(test.images, REAL_SOURCE if source else None)
    predicted = judge_predictions(model, test_x).argmax(axis=1)
    return RetrainResult(
        float((predicted == test.labels).mean()), n_train, len(generated), model.conv1.in_channels
    )


def _inputs(images: np.ndarray, source: float | None) -> torch.Tensor:
    """Float inputs on [0, 1], with a constant source plane appended when ``source`` is set."""
    x = to_unit_float(images)
    if source is None:
        return x
    return torch.cat([x, torch.full((len(x), 1, *x.shape[2:]), source)], dim=1)


def _labels(labels: np.ndarray) -> torch.Tensor:
    return torch.tensor(labels, dtype=torch.long)
