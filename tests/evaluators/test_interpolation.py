"""Latent paths: lerp is affine, slerp follows the great circle; sheets have the grid's shape."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from evaluators.interpolation import interpolation_sheet, lerp, slerp

GENERATOR = torch.Generator().manual_seed(0)


def close(actual: torch.Tensor, expected: torch.Tensor, tolerance: float = 1e-6) -> None:
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=tolerance, atol=tolerance)


def test_lerp_includes_both_ends_and_its_midpoint_is_the_mean():
    z0, z1 = torch.randn(16, generator=GENERATOR), torch.randn(16, generator=GENERATOR)
    path = lerp(z0, z1, 5)
    assert path.shape == (5, 16) and path.dtype == torch.float32
    close(path[0], z0)
    close(path[-1], z1)
    close(path[2], (z0 + z1) / 2)
    steps = path.diff(dim=0)
    close(steps, (z1 - z0).expand(4, -1) / 4)  # equal spacing


def test_batched_pairs_give_one_path_each():
    z0, z1 = torch.randn(2, 3, 8, generator=GENERATOR, dtype=torch.float64)
    for method in (lerp, slerp):
        paths = method(z0, z1, 4)
        assert paths.shape == (3, 4, 8) and paths.dtype == torch.float64
        for p in range(3):
            close(paths[p], method(z0[p], z1[p], 4))


def test_slerp_keeps_equal_norms_and_endpoints():
    z0, z1 = torch.randn(2, 64, generator=GENERATOR, dtype=torch.float64)
    z1 = z1 * z0.norm() / z1.norm()
    path = slerp(z0, z1, 9)
    close(path[0], z0)
    close(path[-1], z1)
    norms = path.norm(dim=1)
    close(norms, z0.norm().expand(9))
    assert (norms >= z0.norm() * (1 - 1e-12)).all() and (norms <= z0.norm() * (1 + 1e-12)).all()
    # lerp would cut the corner: its midpoint is strictly shorter for non-parallel vectors.
    assert lerp(z0, z1, 3)[1].norm() < 0.99 * z0.norm()


def test_slerp_moves_at_constant_angular_speed():
    e0, e1 = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    path = slerp(e0, e1, 3)
    close(path[1], torch.tensor([1.0, 1.0, 0.0]) / math.sqrt(2.0))
    path = slerp(e0, e1, 7).double()
    angles = torch.atan2(path[:, 1], path[:, 0])
    np.testing.assert_allclose(angles.numpy(), np.linspace(0, np.pi / 2, 7), atol=1e-6)


@pytest.mark.parametrize("factor", [-1.0, 2.0, 0.0])
def test_slerp_of_parallel_or_zero_vectors_falls_back_to_lerp(factor):
    z0 = torch.randn(10, generator=GENERATOR)
    z1 = factor * z0
    path = slerp(z0, z1, 5)
    assert torch.isfinite(path).all()
    close(path, lerp(z0, z1, 5))


def test_path_errors():
    with pytest.raises(ValueError, match="steps"):
        slerp(torch.zeros(3), torch.ones(3), 1)
    with pytest.raises(ValueError, match="share a shape"):
        lerp(torch.zeros(3), torch.ones(4), 3)


def fake_generator(z: torch.Tensor) -> torch.Tensor:
    """Grey 6x5 images whose brightness is sigmoid of the first latent coordinate."""
    return torch.sigmoid(z[:, :1, None, None]).expand(-1, 1, 6, 5)


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_sheet_rows_are_the_paths(method):
    z_start = torch.tensor([[-3.0, 1.0], [0.0, 2.0], [2.0, -1.0]])
    z_end = torch.tensor([[3.0, 1.0], [1.0, -2.0], [-2.0, -1.0]])
    sheet = interpolation_sheet(fake_generator, z_start, z_end, steps=5, method=method)
    assert sheet.shape == (3 * (6 + 2) + 2, 5 * (5 + 2) + 2, 3)
    paths = {"slerp": slerp, "lerp": lerp}[method](z_start, z_end, 5)
    for row in range(3):
        for column in range(5):
            top, left = row * 8 + 2, column * 7 + 2
            value = round(255 * float(torch.sigmoid(paths[row, column, 0])))
            assert (sheet[top : top + 6, left : left + 5] == value).all()


def test_sheet_of_one_pair_and_bad_method():
    sheet = interpolation_sheet(fake_generator, torch.zeros(4), torch.ones(4), steps=8)
    assert sheet.shape == (6 + 4, 8 * 7 + 2, 3)
    with pytest.raises(ValueError, match="method"):
        interpolation_sheet(fake_generator, torch.zeros(4), torch.ones(4), method="cubic")
