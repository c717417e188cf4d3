"""The one place that decides where a trial's tensors live."""

from __future__ import annotations

import torch


def select_device(gpus: float) -> torch.device:
    """CUDA when the trial was given a (possibly fractional) GPU and CUDA works, else the CPU.

    Ray sets CUDA_VISIBLE_DEVICES for a trial that holds a GPU, so device 0 is always ours.
    """
    if gpus > 0 and torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True  # shapes are fixed within a trial
        return torch.device("cuda", 0)
    return torch.device("cpu")
