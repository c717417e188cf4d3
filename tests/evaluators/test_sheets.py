"""Image grids and heatmaps: exact grid arithmetic, pixel placement, per-map normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib import colormaps

from evaluators.images import as_float_images
from evaluators.sheets import HEATMAP_COLORMAP, heatmap, image_grid


def colour(value: float) -> np.ndarray:
    return np.rint(np.asarray(colormaps[HEATMAP_COLORMAP](value)[:3]) * 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("n", "nrow", "padding", "expected"),
    [
        (5, 3, 2, (2 * (4 + 2) + 2, 3 * (6 + 2) + 2, 3)),
        (2, 5, 2, (1 * (4 + 2) + 2, 2 * (6 + 2) + 2, 3)),  # fewer images than nrow
        (6, 2, 0, (3 * 4, 2 * 6, 3)),
        (1, 1, 3, (4 + 6, 6 + 6, 3)),
    ],
)
def test_grid_shape_follows_the_grid_arithmetic(n, nrow, padding, expected):
    grid = image_grid(np.zeros((n, 1, 4, 6), np.float32), nrow=nrow, padding=padding)
    assert grid.shape == expected
    assert grid.dtype == np.uint8


def test_tiles_land_in_row_major_cells_and_padding_keeps_pad_value():
    images = torch.stack([torch.full((1, 4, 6), i / 10) for i in range(5)])
    grid = image_grid(images, nrow=3, padding=2, pad_value=1.0)
    for i in range(5):
        top, left = (i // 3) * 6 + 2, (i % 3) * 8 + 2
        tile = grid[top : top + 4, left : left + 6]
        assert (tile == round(255 * i / 10)).all()  # grey repeated to all three channels
    assert (grid[:2] == 255).all() and (grid[:, :2] == 255).all()
    empty = grid[6 + 2 : 6 + 2 + 4, 2 * 8 + 2 : 2 * 8 + 2 + 6]  # cell 6 of 6 is unused
    assert (empty == 255).all()


def test_zero_padding_is_plain_concatenation_and_rgb_order_is_kept():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (4, 3, 5, 7)).astype(np.float32)
    grid = image_grid(images, nrow=2, padding=0)
    hwc = np.rint(images.transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    expected = np.concatenate([np.concatenate(hwc[0:2], axis=1), np.concatenate(hwc[2:4], axis=1)])
    np.testing.assert_array_equal(grid, expected)


def test_uint8_input_equals_float_input_divided_by_255():
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, (3, 1, 6, 6), dtype=np.uint8)
    raw.flags.writeable = False  # shared dataset arrays are read-only
    np.testing.assert_array_equal(image_grid(raw, 3), image_grid(raw / 255.0, 3))
    np.testing.assert_allclose(as_float_images(raw).numpy(), raw / 255.0, atol=1e-7)


def test_grid_pad_value_and_range_checks():
    grid = image_grid(np.zeros((1, 1, 2, 2)), nrow=1, padding=1, pad_value=0.0)
    assert (grid == 0).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        image_grid(np.full((1, 1, 2, 2), -0.5), nrow=1)
    with pytest.raises(ValueError, match="channels"):
        image_grid(np.zeros((1, 2, 2, 2)), nrow=1)


def test_heatmap_normalises_each_map_by_its_maximum():
    base = np.arange(12, dtype=np.float64).reshape(3, 4)
    maps = np.stack([base, 7.0 * base, np.zeros((3, 4))])
    coloured = heatmap(torch.as_tensor(maps))
    assert coloured.shape == (3, 3, 4, 3) and coloured.dtype == np.uint8
    np.testing.assert_array_equal(coloured[0], coloured[1])  # scale-free per map
    np.testing.assert_array_equal(coloured[0, 0, 0], colour(0.0))
    np.testing.assert_array_equal(coloured[0, 2, 3], colour(1.0))
    np.testing.assert_array_equal(coloured[0, 1, 1], colour(5 / 11))
    assert (coloured[2] == colour(0.0)).all()  # an all-zero map stays at the low end


def test_heatmap_rejects_negative_or_non_2d_maps():
    with pytest.raises(ValueError, match="non-negative"):
        heatmap(-np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        heatmap(np.ones((2, 2)))
