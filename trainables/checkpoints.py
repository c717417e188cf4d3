"""Generators back from trial checkpoints: rebuild the family and draw samples from it.

The trainable saves ``state.pt`` with the family's name, resolved config, image shape and class
count beside the weights (see :mod:`trainables.trainable`), so a checkpoint folder alone is
enough to rebuild the model on any device.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from evaluators.weights_file import load_weights
from trainables.device import select_device
from trainables.families import Family, family_class
from trainables.trainable import STATE_FILE, generate, generated_labels


def load_generator(checkpoint: str | Path, gpus: float = 0.0) -> Family:
    """The family saved in ``checkpoint`` (a Tune checkpoint folder or its ``state.pt``),
    in eval mode, on CUDA when ``gpus`` > 0 and available. FileNotFoundError / ValueError
    say what is missing; a file holding anything but tensors and plain values is refused
    (:class:`~evaluators.weights_file.RefusedFile`) without running it."""
    path = Path(checkpoint)
    if path.is_dir():
        path = path / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    device = select_device(gpus)
    # Tensors and plain values only, never objects; read onto the CPU (RNG states must stay CPU
    # byte tensors) and load_state_dict copies the weights onto the model's device.
    state = load_weights(path, map_location="cpu")
    missing = {"model", "family", "config", "image_shape", "num_classes"} - set(state)
    if missing:
        absent = ", ".join(sorted(missing))
        raise ValueError(f"{path} is not a ganorch checkpoint (missing {absent})")
    model = family_class(state["family"])(
        state["config"], tuple(state["image_shape"]), state["num_classes"], device
    )
    model.load_state_dict(state["model"])
    model.train(False)
    return model


def draw_samples(
    model: Family, n: int, seed: int, start: int = 0
) -> tuple[np.ndarray, np.ndarray | None]:
    """Samples ``start..n-1`` of ``n`` as uint8 images (N, C, H, W) from seeded latents, and
    their conditioning labels (cycling through the classes) for a conditional family, else
    None. ``start`` must be a multiple of ``trainables.trainable.GENERATE_BATCH``; the rows are
    then exactly those of the whole draw, so a draw can be cut into chunks."""
    images = generate(model, n, seed, model.num_classes, start=start)
    pixels = images.mul(255).round_().to(torch.uint8).cpu().numpy()
    labels = generated_labels(n, model.num_classes)[start:] if model.conditional else None
    return pixels, labels
