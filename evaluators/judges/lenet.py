"""The LeNet judge: two conv and three dense layers; its 84-d penultimate layer feeds domain FID.

Input convention for every judge: float images in [0, 1], shape (N, C, H, W).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

FEATURE_DIM = 84


class LeNet(nn.Module):
    """conv5(6) -> pool -> conv5(16) -> pool -> fc120 -> fc84 -> fc(classes), ReLU between."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        side = ((image_size // 2) - 4) // 2  # after pool, conv5 (no padding), pool
        if side < 1:
            raise ValueError(f"LeNet needs images of at least 12x12, got {image_size}")
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, FEATURE_DIM)
        self.fc3 = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 84-d penultimate activations (after ReLU)."""
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return F.relu(self.fc2(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.features(x))


def to_unit_float(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images on 0..255 -> float32 on [0, 1]; float input is passed through."""
    if isinstance(images, np.ndarray) and not images.flags.writeable:
        images = images.copy()  # shared dataset arrays are read-only; torch wants writable
    tensor = torch.as_tensor(images)
    return tensor.float().div_(255.0) if tensor.dtype == torch.uint8 else tensor.float()


@torch.no_grad()
def judge_features(
    model: LeNet, images: np.ndarray | torch.Tensor, batch_size: int = 500
) -> np.ndarray:
    """Penultimate features (N, 84) in float64 for uint8 or [0,1]-float images.

    Batching does not change the result: the network has no batch-dependent layers.
    """
    model.eval()
    device = next(model.parameters()).device
    chunks = [
        model.features(to_unit_float(images[i : i + batch_size]).to(device)).double().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(chunks).numpy()


@torch.no_grad()
def judge_predictions(model: LeNet, images: np.ndarray | torch.Tensor, batch_size: int = 500):
    """Softmax class probabilities (N, classes) as float64."""
    model.eval()
    device = next(model.parameters()).device
    chunks = [
        F.softmax(model(to_unit_float(images[i : i + batch_size]).to(device)), dim=1).double().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(chunks).numpy()


def train_lenet(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
) -> LeNet:
    """Train a LeNet with Adam and cross-entropy on uint8 images (N, C, H, W); deterministic."""
    _, channels, height, _ = images.shape
    phase = TrainingPhase(to_unit_float(images), torch.tensor(labels, dtype=torch.long), epochs)
    return train_lenet_phases(
        [phase], channels, num_classes, height, batch_size=batch_size, lr=lr, seed=seed
    )


@dataclass(frozen=True)
class TrainingPhase:
    """``epochs`` passes over float inputs (N, C, H, W) and their class labels."""

    inputs: torch.Tensor
    labels: torch.Tensor
    epochs: int


def train_lenet_phases(
    phases: Sequence[TrainingPhase],
    in_channels: int,
    num_classes: int,
    image_size: int,
    *,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> LeNet:
    """A fresh LeNet trained through ``phases`` in order with one Adam optimiser (state kept
    across phases) and cross-entropy; each epoch visits its phase's inputs in a new seeded
    order, in batches of ``batch_size`` (the last one may be smaller). Deterministic for a seed
    on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = LeNet(in_channels, num_classes, image_size).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for phase in phases:
        x, y = phase.inputs.to(device), phase.labels.to(device)
        for _ in range(phase.epochs):
            order = torch.randperm(len(x), generator=generator).to(device)
            for start in range(0, len(x), batch_size):
                batch = order[start : start + batch_size]
                optimiser.zero_grad(set_to_none=True)
                F.cross_entropy(model(x[batch]), y[batch]).backward()
                optimiser.step()
    return model.eval()


@dataclass
class Judge:
    """A trained LeNet judge with what it was trained on and how well it does."""

    state_dict: dict[str, torch.Tensor]
    in_channels: int
    num_classes: int
    image_size: int
    test_accuracy: float
    fingerprint: str
    train_seconds: float

    def build(self, device: str | torch.device = "cpu") -> LeNet:
        model = LeNet(self.in_channels, self.num_classes, self.image_size)
        model.load_state_dict(self.state_dict)
        return model.to(device).eval()


def load_or_train_judge(
    cache_dir: str | Path,
    fingerprint: str,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    num_classes: int,
) -> Judge:
    """The LeNet judge for a dataset, trained once and cached as ``lenet-<fingerprint>.pt``.

    A cache file that cannot be read is replaced by a fresh training run. The file is written
    to a temporary name and renamed, so concurrent callers never see half a file.
    """
    path = Path(cache_dir) / f"lenet-{fingerprint}.pt"
    if path.exists():
        try:
            return Judge(**torch.load(path, map_location="cpu", weights_only=True))
        except Exception:  # noqa: BLE001 - a damaged cache entry is rebuilt, not fatal
            path.unlink(missing_ok=True)
    started = time.perf_counter()
    model = train_lenet(train_images, train_labels, num_classes)
    seconds = time.perf_counter() - started
    predictions = judge_predictions(model, test_images).argmax(axis=1)
    judge = Judge(
        state_dict=model.state_dict(),
        in_channels=train_images.shape[1],
        num_classes=num_classes,
        image_size=train_images.shape[2],
        test_accuracy=float((predictions == test_labels).mean()),
        fingerprint=fingerprint,
        train_seconds=seconds,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{time.time_ns()}.tmp")
    torch.save(judge.__dict__, partial)
    partial.replace(path)
    return judge
