"""The one place that decides where a trial's tensors live and in which precision they train."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

AMP_MODES = ("off", "bf16", "fp16")
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def select_device(gpus: float) -> torch.device:
    """CUDA when the trial was given a (possibly fractional) GPU and CUDA works, else the CPU.

    Ray sets CUDA_VISIBLE_DEVICES for a trial that holds a GPU, so device 0 is always ours.
    """
    if gpus > 0 and torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True  # shapes are fixed within a trial
        return torch.device("cuda", 0)
    return torch.device("cpu")


def amp_dtype(device: torch.device, amp: str) -> torch.dtype | None:
    """The autocast dtype of ``amp`` (off, bf16, fp16) on ``device``: None on the CPU, where
    mixed precision is ignored, and for ``off``."""
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}, got {amp!r}")
    return _AMP_DTYPES.get(amp) if device.type == "cuda" else None


def loss_scaler(device: torch.device, amp: str) -> torch.amp.GradScaler | None:
    """A dynamic loss scaler for fp16 on CUDA (bf16 has float32's range and needs none)."""
    return torch.amp.GradScaler("cuda") if amp_dtype(device, amp) is torch.float16 else None


def training_autocast(device_type: str, dtype: torch.dtype) -> torch.autocast:
    """Autocast to ``dtype`` for a region that contains optimiser steps, such as a whole epoch.

    Autocast's weight cache is off: with it on, the first forward pass casts each weight to
    ``dtype`` once and every later pass in the region reuses that copy, so networks would run
    with their weights from the start of the epoch while the optimisers update the float32
    ones unseen (GAN training then diverged under bf16 and fp16 alike). Re-casting each pass
    costs little next to the convolutions.
    """
    return torch.autocast(device_type, dtype=dtype, cache_enabled=False)


@contextlib.contextmanager
def mixed_precision(device: torch.device, amp: str) -> Iterator[None]:
    """Autocast the enclosed training steps to ``amp``'s dtype on CUDA; nothing on the CPU."""
    dtype = amp_dtype(device, amp)
    if dtype is None:
        yield
        return
    with training_autocast(device.type, dtype):
        yield


def release(device: torch.device) -> None:
    """Hand a finished trial's cached CUDA memory back, so the next trial on the GPU gets it."""
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
