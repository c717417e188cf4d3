"""Image sheets as arrays: grids of images and colour-mapped sensitivity maps.

Everything here returns uint8 RGB arrays; writing them to PNG is the caller's job. Colour maps come
from matplotlib's colormap registry, which needs no backend and never opens a display.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from evaluators.images import as_float_images

HEATMAP_COLORMAP = "viridis"  # perceptually uniform; 0 is dark purple, the maximum bright yellow


def image_grid(
    images: np.ndarray | torch.Tensor, nrow: int, padding: int = 2, pad_value: float = 1.0
) -> np.ndarray:
    """Tile N images into one uint8 RGB array (H, W, 3), row-major, ``nrow`` images per row.

    images: (N, C, H, W) or (N, H, W), float on [0, 1] or uint8 on 0..255 (see
    :func:`as_float_images`), C = 1 (grey, repeated to 3 channels) or 3. With
    ``columns = min(nrow, N)`` and ``rows = ceil(N / columns)`` the result has shape
    ``(rows * (H + padding) + padding, columns * (W + padding) + padding, 3)``: every tile is
    surrounded by ``padding`` pixels of ``pad_value`` (on [0, 1]; default 1.0 = white), and
    unused cells of the last row are left at ``pad_value``. Pixels map to uint8 as
    ``round(255 * x)``.
    """
    if nrow < 1 or padding < 0:
        raise ValueError(f"need nrow >= 1 and padding >= 0, got nrow={nrow}, padding={padding}")
    if not 0.0 <= pad_value <= 1.0:
        raise ValueError(f"pad_value is on [0, 1], got {pad_value}")
    tiles = rgb_tiles(images)
    n, _, height, width = tiles.shape
    if n == 0:
        raise ValueError("image_grid needs at least one image")
    columns = min(nrow, n)
    rows = math.ceil(n / columns)
    step_y, step_x = height + padding, width + padding
    grid = torch.full((3, rows * step_y + padding, columns * step_x + padding), float(pad_value))
    for index in range(n):
        top = (index // columns) * step_y + padding
        left = (index % columns) * step_x + padding
        grid[:, top : top + height, left : left + width] = tiles[index]
    return to_uint8(grid.permute(1, 2, 0).numpy())


def heatmap(maps: np.ndarray | torch.Tensor) -> np.ndarray:
    """Colour non-negative maps (N, H, W) as uint8 RGB (N, H, W, 3) with the viridis colormap.

    Each map is normalised on its own, ``m / max(m)`` (an all-zero map stays 0), so 0 is always
    the colormap's low end (dark purple) and each map's maximum its high end (yellow). Negative,
    NaN or infinite values raise ValueError: pass ``|map|`` for signed sensitivity maps.
    """
    if isinstance(maps, torch.Tensor):
        maps = maps.detach().cpu().numpy()
    values = np.asarray(maps, dtype=np.float64)
    if values.ndim != 3:
        raise ValueError(f"heatmap expects maps of shape (N, H, W), got {values.shape}")
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError("heatmap maps must be finite and non-negative (pass |map|)")
    peak = values.max(axis=(1, 2), keepdims=True)
    normalised = np.divide(values, peak, out=np.zeros_like(values), where=peak > 0)
    from matplotlib import colormaps  # here, not at import: trainables tile grids without it

    rgba = colormaps[HEATMAP_COLORMAP](normalised)  # float (N, H, W, 4) on [0, 1]
    return to_uint8(rgba[..., :3])


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Float array on [0, 1] -> uint8 ``round(255 * clip(x, 0, 1))``, same shape."""
    return np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def rgb_tiles(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Images (see :func:`as_float_images`) as float32 (N, 3, H, W) on [0, 1]; grey repeated."""
    tiles = as_float_images(images)
    if tiles.shape[1] == 1:
        tiles = tiles.expand(-1, 3, -1, -1)
    if tiles.shape[1] != 3:
        raise ValueError(f"expected 1- or 3-channel images, got {tiles.shape[1]} channels")
    return tiles


def heatmap_tiles(maps: np.ndarray | torch.Tensor) -> torch.Tensor:
    """:func:`heatmap` of maps (N, H, W) as float32 tiles (N, 3, H, W) on [0, 1] for grids."""
    return torch.from_numpy(heatmap(maps)).permute(0, 3, 1, 2).float().div_(255.0)
