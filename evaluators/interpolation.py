"""Latent interpolation: linear and spherical paths between latent vectors, and image sheets."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from evaluators.sheets import image_grid

PARALLEL_TOLERANCE = 1e-6  # slerp falls back to lerp when 1 - |cos(angle)| is below this


def lerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Linear path z(t) = (1 - t) z0 + t z1 at t = linspace(0, 1, steps), both ends included.

    z0, z1: float tensors of one shape, (d,) for one pair -> (steps, d), or (P, d) for P pairs ->
    (P, steps, d). Computed in float64, returned in the inputs' dtype; steps >= 2.
    """
    a, b, t = _prepare(z0, z1, steps)
    return _finish((1.0 - t) * a + t * b, z0)


def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical path z(t) = sin((1 - t) w) / sin(w) z0 + sin(t w) / sin(w) z1, t = linspace(0, 1,
    steps), with w the angle between z0 and z1 (Shoemake; White 2016 for Gaussian latents).

    The path follows the great circle in the plane of z0 and z1, so for ||z0|| = ||z1|| every
    point keeps that norm (a straight line would pass closer to the origin, where Gaussian latents
    never lie). Pairs that are (anti)parallel, 1 - |cos w| < 1e-6, or contain a zero vector use
    :func:`lerp`. Shapes and dtype as for :func:`lerp`; computed in float64.
    """
    a, b, t = _prepare(z0, z1, steps)
    norms = a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True)
    cos = torch.where(norms > 0, (a * b).sum(-1, keepdim=True) / norms.clamp_min(1e-300), 1.0)
    cos = cos.clamp(-1.0, 1.0)
    degenerate = (1.0 - cos.abs()) < PARALLEL_TOLERANCE
    omega = torch.acos(cos)
    sin_omega = torch.where(degenerate, torch.ones_like(omega), torch.sin(omega))
    spherical = (torch.sin((1.0 - t) * omega) * a + torch.sin(t * omega) * b) / sin_omega
    return _finish(torch.where(degenerate, (1.0 - t) * a + t * b, spherical), z0)


def _prepare(
    z0: torch.Tensor, z1: torch.Tensor, steps: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Endpoints as float64 (P, 1, d) and t as (1, steps, 1), after checking shapes."""
    z0, z1 = torch.as_tensor(z0), torch.as_tensor(z1)
    if z0.shape != z1.shape or z0.ndim not in (1, 2):
        raise ValueError(
            f"z0 and z1 must share a shape (d,) or (P, d), got {tuple(z0.shape)} and "
            f"{tuple(z1.shape)}"
        )
    if steps < 2:
        raise ValueError(f"steps must be >= 2 to include both ends, got {steps}")
    a = z0.detach().double().reshape(-1, 1, z0.shape[-1])
    b = z1.detach().to(a.device).double().reshape(-1, 1, z1.shape[-1])
    t = torch.linspace(0.0, 1.0, steps, dtype=torch.float64, device=a.device).reshape(1, -1, 1)
    return a, b, t


def _finish(path: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
    """Back to the input's float dtype (float32 for integer input); drop the pair axis for (d,)."""
    z0 = torch.as_tensor(z0)
    path = path.to(z0.dtype if z0.is_floating_point() else torch.float32)
    return path.squeeze(0) if z0.ndim == 1 else path


def interpolation_sheet(
    sample: Callable[[torch.Tensor], torch.Tensor],
    z_start: torch.Tensor,
    z_end: torch.Tensor,
    steps: int = 8,
    method: str = "slerp",
) -> np.ndarray:
    """Sheet with one row per latent pair: the generator's images along the path, uint8 (H, W, 3).

    sample: maps latents (M, d) to images (M, C, H, W) float on [0, 1] (or uint8), C = 1 or 3;
    reshape inside it if the generator wants (M, d, 1, 1), and close over labels for conditional
    models. It is called once, under torch.no_grad(), on all P * steps latents, pair-major.
    z_start, z_end: (d,) or (P, d). method: "slerp" (default, for Gaussian latents) or "lerp".
    Grid of :func:`evaluators.sheets.image_grid` with padding 2: shape
    ``(P * (H + 2) + 2, steps * (W + 2) + 2, 3)``.
    """
    paths = {"slerp": slerp, "lerp": lerp}
    if method not in paths:
        raise ValueError(f"method must be 'slerp' or 'lerp', got {method!r}")
    path = paths[method](z_start, z_end, steps)
    latents = path.reshape(-1, path.shape[-1])
    with torch.no_grad():
        images = sample(latents)
    if len(images) != len(latents):
        raise ValueError(f"sample returned {len(images)} images for {len(latents)} latents")
    return image_grid(images, nrow=steps)
