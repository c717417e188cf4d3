"""The image convention every evaluator shares: float32 tensors (N, C, H, W) on [0, 1].

Kept apart from :mod:`evaluators.sheets` (whose heatmaps use matplotlib's colour maps) so that
a measure that only converts images, such as C2ST, does not import matplotlib.
"""

from __future__ import annotations

import numpy as np
import torch

_RANGE_TOLERANCE = 1e-4  # float round-off from generators' tanh/sigmoid rescaling


def as_float_images(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The shared image convention: a float32 CPU tensor (N, C, H, W) on [0, 1], detached.

    Accepts a torch tensor or numpy array of shape (N, C, H, W), or (N, H, W) taken as grey
    (C = 1). uint8 input on 0..255 is divided by 255; any other dtype is cast to float32 and must
    already lie on [0, 1] (1e-4 tolerance, then clamped), otherwise ValueError: that is almost
    always a generator's [-1, 1] output passed without rescaling.
    """
    if isinstance(images, np.ndarray) and not images.flags.writeable:
        images = images.copy()  # torch.as_tensor warns on (and would alias) read-only arrays
    tensor = torch.as_tensor(images).detach().cpu()
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(1)
    if tensor.ndim != 4:
        shape = tuple(tensor.shape)
        raise ValueError(f"images must be (N, C, H, W) or (N, H, W), got shape {shape}")
    if tensor.dtype == torch.uint8:
        return tensor.float().div_(255.0)
    tensor = tensor.float()
    if tensor.numel() and not torch.isfinite(tensor).all():
        raise ValueError("images contain NaN or infinite values")
    if tensor.numel():
        low, high = tensor.min().item(), tensor.max().item()
        if low < -_RANGE_TOLERANCE or high > 1.0 + _RANGE_TOLERANCE:
            raise ValueError(
                f"float images must lie on [0, 1], got values in [{low:.4g}, {high:.4g}] "
                "(rescale [-1, 1] generator output with (x + 1) / 2)"
            )
    return tensor.clamp(0.0, 1.0)
