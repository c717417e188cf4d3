"""SmoothGrad sensitivity maps (Smilkov et al. 2017) of a classifier, e.g. the C2ST classifier."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from evaluators.images import as_float_images
from evaluators.sheets import heatmap_tiles, image_grid, rgb_tiles


def smoothgrad(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    *,
    samples: int = 100,
    sigma: float = 0.1,
    seed: int = 0,
    batch_size: int = 50,
) -> np.ndarray:
    """SmoothGrad maps: (1 / samples) * sum_s d CE(model(x + e_s), y) / d(x + e_s).

    e_s ~ N(0, sigma^2 I) independently per image and copy, with sigma on the [0, 1] image scale
    (default 0.1, 100 copies); noisy copies are not clipped to [0, 1]. CE is each image's own
    cross-entropy -log softmax(model(x))[y] (not a batch mean), so the map does not depend on how
    many images are passed together.

    model: a classifier returning logits (N, classes); evaluated in eval mode (its previous mode is
    restored) on the device of its first parameter (CPU if it has none); its parameters' grads
    are left untouched. images: (N, C, H, W) or (N, H, W), float on [0, 1] or uint8 on 0..255.
    labels: (N,) integer classes the loss is taken against (for C2ST: 0 = generated, 1 = real).
    batch_size: noisy copies per forward pass. The noise of image i comes from its own generator
    seeded with (seed, i), so results do not depend on ``batch_size``.

    Returns signed gradients, float32, with the shape of the (N, C, H, W) images.
    """
    x = as_float_images(images)
    if isinstance(labels, np.ndarray):
        labels = labels.copy()  # may be read-only
    y = torch.as_tensor(labels).detach().cpu().long()
    if y.shape != (len(x),):
        raise ValueError(f"labels must have shape ({len(x)},), got {tuple(y.shape)}")
    if samples < 1 or batch_size < 1 or sigma < 0:
        raise ValueError("need samples >= 1, batch_size >= 1 and sigma >= 0")
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")

    generators = [
        torch.Generator().manual_seed(int(np.random.SeedSequence([seed, i]).generate_state(1)[0]))
        for i in range(len(x))
    ]
    # (image, copy) pairs in image-major order: each image draws its copies in a fixed order.
    pairs = torch.arange(len(x)).repeat_interleave(samples)
    total = torch.zeros_like(x, dtype=torch.float64)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():  # callers often hold torch.no_grad()
            for start in range(0, len(pairs), batch_size):
                index = pairs[start : start + batch_size]
                noise = torch.stack(
                    [torch.randn(x.shape[1:], generator=generators[i]) for i in index.tolist()]
                )
                noisy = (x[index] + sigma * noise).to(device).requires_grad_(True)
                loss = F.cross_entropy(model(noisy), y[index].to(device), reduction="sum")
                (gradient,) = torch.autograd.grad(loss, noisy)
                total.index_add_(0, index, gradient.detach().cpu().double())
    finally:
        model.train(was_training)
    return (total / samples).float().numpy()


def smoothgrad_sheet(
    images: np.ndarray | torch.Tensor, maps: np.ndarray | torch.Tensor, columns: int = 8
) -> np.ndarray:
    """Sheet of images, each directly above the heatmap of its sensitivity map, uint8 (H, W, 3).

    images: (N, C, H, W) as for :func:`smoothgrad`; maps: its (N, C, H, W) output. A map is shown
    as max over channels of |map|, coloured per map by :func:`evaluators.sheets.heatmap`.
    Images fill rows of ``columns`` (default 8), each row of images followed by the row of their
    heatmaps, the last pair of rows padded with white tiles; the grid is
    :func:`evaluators.sheets.image_grid` with padding 2, so the sheet is
    ``(2 * ceil(N / c) * (H + 2) + 2, c * (W + 2) + 2, 3)`` with ``c = min(columns, N)``.
    """
    x = as_float_images(images)
    maps_t = torch.as_tensor(maps).detach().cpu()
    if maps_t.shape != x.shape:
        raise ValueError(f"maps {tuple(maps_t.shape)} must have the images' shape {tuple(x.shape)}")
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    tiles, heat = rgb_tiles(x), heatmap_tiles(maps_t.abs().amax(dim=1))
    n = len(tiles)
    columns = min(columns, n)
    blank = torch.ones((columns, *tiles.shape[1:]))
    rows = []
    for start in range(0, n, columns):
        fill = blank[: max(0, start + columns - n)]
        rows += [tiles[start : start + columns], fill, heat[start : start + columns], fill]
    return image_grid(torch.cat(rows), nrow=columns)
