"""InceptionV3 as used for FID: the network of the TF FID code, in torchvision's module layout.

The module names and parameter shapes are those of torchvision's ``Inception3`` without
``AuxLogits`` and with a 1008-way ``fc`` (the 2015-12-05 TF graph has 1008 classes), so
``state_dict()`` has exactly the keys of the widely used FID weights file
``pt_inception-2015-12-05-6726825d.pth`` (the pytorch-fid port of the TF graph). The FID graph
differs from torchvision's network in its pooling branches, reproduced here:

- Mixed_5b/5c/5d (InceptionA), Mixed_6b..6e (InceptionC) and Mixed_7b (InceptionE): the pool
  branch is a 3x3 stride-1 average pool with padding 1 that does *not* count the padding
  (``count_include_pad=False``);
- Mixed_7c (InceptionE): the pool branch is a 3x3 stride-1 *max* pool with padding 1.

Input convention (:meth:`FIDInception.features`): float images on [0, 1], shape (N, C, H, W);
grey (C = 1) is repeated to 3 channels, everything is resized to 299 x 299 by bilinear
interpolation (``align_corners=False``) and mapped to [-1, 1] by ``2 x - 1``. The features are
the 2048-d "pool3" activations: the global average of Mixed_7c's output.

Weights are never downloaded: :func:`inception_weights_path` finds a local file or says where
to put one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.inception import (
    BasicConv2d,
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
)

from evaluators.judges.lenet import to_unit_float
from evaluators.weights_file import load_weights

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FEATURE_DIM = 2048
NUM_CLASSES = 1008
INPUT_SIZE = 299


def _avg_pool_no_pad_count(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(InceptionA):
    """InceptionA whose pool branch averages without counting the padding."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(_avg_pool_no_pad_count(x))
        return [self.branch1x1(x), branch5x5, branch3x3dbl, branch_pool]


class FIDInceptionC(InceptionC):
    """InceptionC whose pool branch averages without counting the padding."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = x
        for layer in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            branch7x7dbl = layer(branch7x7dbl)
        branch_pool = self.branch_pool(_avg_pool_no_pad_count(x))
        return [self.branch1x1(x), branch7x7, branch7x7dbl, branch_pool]


class FIDInceptionE(InceptionE):
    """InceptionE with the FID graph's pool branch: average (no pad count) or max pooling."""

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__(in_channels)
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat(
            [self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1
        )
        if self.pool == "avg":
            pooled = _avg_pool_no_pad_count(x)
        else:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return [self.branch1x1(x), branch3x3, branch3x3dbl, self.branch_pool(pooled)]


class FIDInception(nn.Module):
    """InceptionV3 of the TF FID graph; attribute names follow torchvision's ``Inception3``.

    A fresh instance has random weights (conv layers He-initialised so activations keep their
    scale through the depth, BatchNorm running statistics 0/1); load real ones with
    :func:`load_fid_inception`. Use it in eval mode: BatchNorm then uses running statistics,
    so every image's features are independent of the rest of its batch.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, pool="avg")
        self.Mixed_7c = FIDInceptionE(2048, pool="max")
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        self.eval()

    @staticmethod
    def preprocess(x: torch.Tensor) -> torch.Tensor:
        """[0,1] images (N, 1 or 3, H, W) -> (N, 3, 299, 299) on [-1, 1] (bilinear resize)."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected images (N, 1 or 3, H, W), got shape {tuple(x.shape)}")
        x = x.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(
                x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False
            )
        return 2.0 * x - 1.0

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """The network proper: preprocessed (N, 3, 299, 299) input -> (N, 2048) pool3."""
        for block in (
            self.Conv2d_1a_3x3,
            self.Conv2d_2a_3x3,
            self.Conv2d_2b_3x3,
            self.maxpool1,
            self.Conv2d_3b_1x1,
            self.Conv2d_4a_3x3,
            self.maxpool2,
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        return self.avgpool(x).flatten(1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """pool3 features (N, 2048), float32, of [0,1] images (N, C, H, W); see the module doc."""
        return self.pool3(self.preprocess(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The 1008 class logits (``fc`` with its bias) of [0,1] images."""
        return self.fc(self.features(x))


def inception_weights_path(explicit: str | Path | None = None) -> Path:
    """The FID Inception weights file: ``explicit`` if given, else torch hub's checkpoint cache.

    The default location is ``torch.hub.get_dir()/checkpoints/pt_inception-2015-12-05-6726825d.pth``
    (``$TORCH_HOME/hub/checkpoints/``, by default ``~/.cache/torch/hub/checkpoints/``), which is
    where pytorch-fid and torchmetrics leave it. Raises :class:`FileNotFoundError` with a
    one-line message naming both places when there is no file; nothing is ever downloaded.
    """
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_file():
            return path
        raise FileNotFoundError(
            f"Inception weights not found at {path}; give an existing file with "
            f"--inception-weights PATH or put {WEIGHTS_FILE} at {hub_file} "
            "(ganorch never downloads weights)"
        )
    if hub_file.is_file():
        return hub_file
    raise FileNotFoundError(
        f"Inception weights not found: put {WEIGHTS_FILE} (the FID InceptionV3 weights of "
        f"pytorch-fid) at {hub_file} or pass --inception-weights PATH "
        "(ganorch never downloads weights)"
    )


def load_fid_inception(
    path: str | Path | None = None, *, device: str | torch.device = "cpu"
) -> FIDInception:
    """:class:`FIDInception` with the weights of ``path`` (default: see
    :func:`inception_weights_path`), in eval mode on ``device``.

    The file is read with :func:`~evaluators.weights_file.load_weights` (tensors and plain
    values only) and loaded strictly: it must be a state dict with exactly this network's keys
    and shapes. A file without BatchNorm
    ``num_batches_tracked`` counters (they do not affect inference) is accepted. Raises
    :class:`FileNotFoundError` for a missing file and :class:`ValueError` (one line) for a file
    that is not such a state dict.
    """
    file = inception_weights_path(path)
    state = load_weights(file, what="PyTorch state dict")
    if not isinstance(state, dict):
        raise ValueError(f"{file}: expected a state dict, found {type(state).__name__}")
    model = FIDInception()
    expected = model.state_dict()
    state = dict(state)
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    wrong_shape = sorted(
        key
        for key in expected.keys() & state.keys()
        if tuple(state[key].shape) != tuple(expected[key].shape)
    )
    if missing or unexpected or wrong_shape:
        details = [
            f"{len(items)} {what} (e.g. {items[0]})"
            for what, items in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("keys of the wrong shape", wrong_shape),
            )
            if items
        ]
        raise ValueError(f"{file}: not the FID InceptionV3 weights: {'; '.join(details)}")
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def _batches(model: FIDInception, images: np.ndarray | torch.Tensor, batch_size: int):
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    model.eval()
    device = next(model.parameters()).device
    for start in range(0, len(images), batch_size):
        yield model.features(to_unit_float(images[start : start + batch_size]).to(device))


@torch.no_grad()
def inception_features(
    model: FIDInception, images: np.ndarray | torch.Tensor, batch_size: int = 50
) -> np.ndarray:
    """pool3 features (N, 2048) as float64 of uint8 (0..255) or [0,1]-float images (N, C, H, W).

    Computed in float32 and widened; the batch size only changes round-off (eval-mode
    BatchNorm uses running statistics).
    """
    chunks = [chunk.double().cpu() for chunk in _batches(model, images, batch_size)]
    if not chunks:
        return np.empty((0, FEATURE_DIM))
    return torch.cat(chunks).numpy()


@torch.no_grad()
def class_probabilities(model: FIDInception, pool3: np.ndarray | torch.Tensor) -> np.ndarray:
    """Softmax over the 1008 classes (N, 1008), float64, from pool3 features (N, 2048).

    The logits are ``pool3 @ fc.weight.T`` *without* the fc bias, as in the original TF
    Inception Score code (and torch-fidelity's ``logits_unbiased``), so scores are comparable
    with published IS values.
    """
    weight = model.fc.weight.detach().double().cpu()
    logits = torch.as_tensor(np.asarray(pool3), dtype=torch.float64) @ weight.T
    return F.softmax(logits, dim=1).numpy()
