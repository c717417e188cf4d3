"""Figures of one generator for ``ganorch eval``: PNGs under ``artifacts/eval/<generator>/``
and the same images in TensorBoard under ``tb/eval/<generator>/``.

Sheets: ``samples`` (an 8 x 8 grid), ``neighbours`` (samples beside their nearest training
images), ``c2st_smoothgrad`` (samples and real images over the SmoothGrad maps of the C2ST
classifier trained on this generator against the real test subset), ``judge_embedding``
(the LeNet judge's features of samples and real images on two principal components, and
histograms of its confidence on each; where the dataset has a judge) and, for trial
checkpoints, ``interpolation`` (slerp between latent pairs, one class per row).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from orchestrator.evaluate.context import MeasureContext

SHEET_SAMPLES = 64
NEIGHBOUR_ROWS = 8
SMOOTHGRAD_IMAGES = 16
SMOOTHGRAD_COPIES = 16  # noisy copies per image: enough for a readable sheet, cheap on CPU
INTERPOLATION_ROWS, INTERPOLATION_STEPS = 4, 8


def sheets(
    images: np.ndarray,
    real: np.ndarray,
    train: np.ndarray,
    model: Any | None,
    judge: MeasureContext | None = None,
) -> dict[str, np.ndarray]:
    """Sheet name -> uint8 (H, W, 3) image, from a generator's samples ``images``, the real
    test subset ``real``, the training split ``train``, for a trial checkpoint its ``model``
    (None for external samples and the reference) and a LeNet ``judge`` context."""
    import torch

    from evaluators.c2st import c2st
    from evaluators.neighbours import nearest_neighbours, neighbour_sheet
    from evaluators.sheets import image_grid
    from evaluators.smoothgrad import smoothgrad, smoothgrad_sheet

    shown = images[:SHEET_SAMPLES]
    out = {"samples": image_grid(shown, nrow=8)}
    rows = shown[:NEIGHBOUR_ROWS]
    if len(rows) >= 2:
        report = nearest_neighbours(rows, train, real, k=4)
        out["neighbours"] = neighbour_sheet(rows, train, report)
    if len(images) >= 8:
        result = c2st(real, images, seed=0)
        inputs = result.test_inputs[:SMOOTHGRAD_IMAGES]
        maps = smoothgrad(
            result.model, inputs, result.test_labels[:SMOOTHGRAD_IMAGES], samples=SMOOTHGRAD_COPIES
        )
        out["c2st_smoothgrad"] = smoothgrad_sheet(inputs, maps)
    if judge is not None:
        embedding = _judge_embedding(images, real, judge)
        if embedding is not None:
            out["judge_embedding"] = embedding
    if model is not None:
        from evaluators.interpolation import interpolation_sheet

        latents = model.latent(2 * INTERPOLATION_ROWS, torch.Generator().manual_seed(0))
        labels = (
            torch.arange(INTERPOLATION_ROWS * INTERPOLATION_STEPS, device=model.device)
            // INTERPOLATION_STEPS
        ) % model.num_classes

        def sample(z: torch.Tensor) -> torch.Tensor:
            return model.draw(z.to(model.device), labels).add(1).div(2).clamp(0, 1).cpu()

        out["interpolation"] = interpolation_sheet(
            sample,
            latents[:INTERPOLATION_ROWS].cpu(),
            latents[INTERPOLATION_ROWS:].cpu(),
            steps=INTERPOLATION_STEPS,
        )
    return out


def _judge_embedding(
    images: np.ndarray, real: np.ndarray, judge: MeasureContext
) -> np.ndarray | None:
    """The judge-embedding sheet, or None where the dataset has no judge."""
    from evaluators.judge_embedding import judge_embedding, judge_embedding_figure
    from orchestrator.errors import UserError

    try:
        embedding = judge_embedding(
            judge.features(real),
            judge.features(images),
            judge.probabilities(real),
            judge.probabilities(images),
        )
    except UserError:
        return None
    finally:
        judge.forget(images)
    return judge_embedding_figure(embedding)


def write_figures(
    images: np.ndarray,
    *,
    real: np.ndarray,
    train: np.ndarray,
    model: Any | None,
    artifacts: str,
    tb: str,
    judge: MeasureContext | None = None,
) -> int:
    """Write the :func:`sheets` as PNGs into the folder ``artifacts`` and as images of an
    event file in the folder ``tb`` (local paths or URIs); returns how many."""
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter

    from orchestrator.runs import local_folder

    made = sheets(images, real, train, model, judge)
    with local_folder(artifacts) as folder:
        for name, sheet in made.items():
            Image.fromarray(sheet).save(folder / f"{name}.png")
    # One event folder per generator: figure shards of different generators never share a file.
    with local_folder(tb) as folder, SummaryWriter(str(folder)) as writer:
        for name, sheet in made.items():
            writer.add_image(f"eval/{name}", sheet, 0, dataformats="HWC")
    return len(made)
