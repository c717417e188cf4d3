"""Improved precision and recall (Kynkaanniemi et al. 2019) and density and coverage (Naeem et
al. 2020): fidelity and diversity of generated features measured against k-NN balls."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from evaluators.neighbours import k_nearest, squared_distances

# |computed - exact| of a squared distance is below (2 D + 4) eps (||a||^2 + ||b||^2) for the
# matrix-product expansion and D eps ||a - b||^2 for the direct sum; this factor times
# D eps (||a||^2 + ||b||^2) covers both with room to spare.
_BAND_FACTOR = 8.0


@dataclass(frozen=True)
class PRDCResult:
    """The four scores, each in [0, 1] except density (in [0, N/k]), and the k they used."""

    precision: float
    recall: float
    density: float
    coverage: float
    k_precision_recall: int
    k_density_coverage: int


def prdc(
    real: np.ndarray,
    generated: np.ndarray,
    *,
    k_precision_recall: int = 3,
    k_density_coverage: int = 5,
    block_size: int = 1024,
    device: str | torch.device = "cpu",
) -> PRDCResult:
    """Precision, recall, density and coverage of ``generated`` (M, D) against ``real`` (N, D).

    Definitions, with d the Euclidean distance and NN_k(x, S) the distance from x to its k-th
    nearest neighbour in S other than x itself (an exact duplicate of x counts, at distance 0):

        B(x, S, k)  = {z : d(z, x) <= NN_k(x, S)}                 (a closed ball)
        precision   = 1/M  sum_j [ Y_j in union_i B(X_i, X, k_pr) ]
        recall      = 1/N  sum_i [ X_i in union_j B(Y_j, Y, k_pr) ]
        density     = 1/(k_dc M) sum_j sum_i [ Y_j in B(X_i, X, k_dc) ]
        coverage    = 1/N  sum_i [ min_j d(X_i, Y_j) <= NN_{k_dc}(X_i, X) ]

    for real X_1..X_N and generated Y_1..Y_M; k_pr = 3 (Kynkaanniemi et al.'s default) and
    k_dc = 5 (Naeem et al.'s).

    Boundary: a point *on* a ball's boundary counts as inside (``<=``, closed balls), as in
    Kynkaanniemi et al.'s reference code; Naeem et al.'s ``prdc`` package uses ``<``. Closed
    balls make each ball hold exactly the k neighbours its radius was taken from, so identical
    sets give precision = recall = coverage = 1 and density = (k+1)/k even when a point occurs
    more than k times (radius 0, which an open ball would leave empty). For continuous
    features ties have probability 0 and the two conventions agree.

    Computation: exact, in float64, on ``block_size`` x ``block_size`` tiles of the distance
    matrices, so memory is O(block_size^2 + (N + M) k) whatever N and M (50,000 x 50,000 is
    three passes of tiles, never a full matrix). The k nearest neighbours are found from
    ||a||^2 - 2 a.b + ||b||^2; a radius is then the largest of the k distances recomputed
    directly as sum((a - b)^2), and every membership test whose expanded distance lies within
    round-off of the radius is decided on the direct distance too. Boundary ties (duplicates,
    lattice points) are therefore decided on one symmetric formula: d(a, b) = d(b, a) exactly.
    Neither row order nor ``block_size`` changes the result.

    Expectations when both sets are independent samples of one continuous distribution:
    density is 1 and coverage is 1 - prod_{t<k}(N-1-t)/(N+M-1-t) (Naeem et al.); precision
    and recall are below 1 and fall as D grows.

    Inputs: any real dtype, finite, the same D on both sides; 1 <= k <= N - 1 and k <= M - 1
    for both k. ``device`` runs the distance tiles (e.g. "cuda"). Raises ValueError otherwise.
    """
    x, y = _validated(real, generated, k_precision_recall, k_density_coverage, block_size)
    k_pr, k_dc = k_precision_recall, k_density_coverage
    real_radii = _squared_radii(x, (k_pr, k_dc), block_size, device)
    fake_radii = _squared_radii(y, (k_pr,), block_size, device)
    real_pr, real_dc, fake_pr = real_radii[k_pr], real_radii[k_dc], fake_radii[k_pr]

    in_real_manifold = np.zeros(len(y), dtype=bool)
    real_balls_holding = np.zeros(len(y), dtype=np.int64)
    covered = np.zeros(len(x), dtype=bool)
    in_fake_manifold = np.zeros(len(x), dtype=bool)
    x_t, y_t = torch.as_tensor(x), torch.as_tensor(y)
    x_norms, y_norms = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
    for g_start in range(0, len(y), block_size):
        g = slice(g_start, g_start + block_size)
        y_block = y_t[g].to(device)
        for r_start in range(0, len(x), block_size):
            r = slice(r_start, r_start + block_size)
            tile = squared_distances(y_block, x_t[r].to(device)).cpu().numpy()
            tile = _Tile(tile, y, x, g_start, r_start, y_norms[g], x_norms[r])
            inside = tile.within(real_pr[None, r])
            in_real_manifold[g] |= inside.any(axis=1)
            inside = tile.within(real_dc[None, r])
            real_balls_holding[g] += inside.sum(axis=1)
            covered[r] |= inside.any(axis=0)
            in_fake_manifold[r] |= tile.within(fake_pr[g, None]).any(axis=0)
    return PRDCResult(
        precision=float(in_real_manifold.mean()),
        recall=float(in_fake_manifold.mean()),
        density=float(real_balls_holding.sum() / (k_dc * len(y))),
        coverage=float(covered.mean()),
        k_precision_recall=k_pr,
        k_density_coverage=k_dc,
    )


def _validated(real, generated, k_pr: int, k_dc: int, block_size: int):
    x = np.ascontiguousarray(real, dtype=np.float64)
    y = np.ascontiguousarray(generated, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"PRDC needs feature arrays of shape (N, D), got {x.shape} and {y.shape}")
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"feature dimensions differ: real D={x.shape[1]}, generated D={y.shape[1]}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("PRDC features contain NaN or infinite values")
    k_max = max(k_pr, k_dc)
    if min(k_pr, k_dc) < 1:
        raise ValueError(
            f"k must be at least 1, got k_precision_recall={k_pr}, k_density_coverage={k_dc}"
        )
    if len(x) <= k_max or len(y) <= k_pr:
        raise ValueError(
            f"PRDC with k={k_max} needs more than {k_max} real and more than "
            f"{k_pr} generated samples, got {len(x)} and {len(y)}"
        )
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")
    return x, y


def _direct_squared(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum((a - b)^2) row by row: symmetric in a and b to the last bit."""
    difference = a - b
    return np.einsum("ij,ij->i", difference, difference)


def _squared_radii(
    features: np.ndarray, ks: tuple[int, ...], block_size: int, device: str | torch.device
) -> dict[int, np.ndarray]:
    """k -> NN_k(x, features)^2 per row: the largest direct squared distance to the k nearest
    other rows, so each of those k rows lies inside (on or within) the ball."""
    _, neighbours = k_nearest(
        torch.as_tensor(features),
        torch.as_tensor(features),
        max(ks),
        block_size,
        device,
        exclude_self=True,
    )
    direct = np.empty(neighbours.shape, dtype=np.float64)
    for start in range(0, len(features), block_size):
        rows = slice(start, start + block_size)
        for column in range(neighbours.shape[1]):
            direct[rows, column] = _direct_squared(
                features[rows], features[neighbours[rows, column]]
            )
    running_max = np.maximum.accumulate(direct, axis=1)
    return {k: running_max[:, k - 1] for k in ks}


@dataclass
class _Tile:
    """Squared distances of generated rows [g, g + rows) to real rows [r, r + columns)."""

    expanded: np.ndarray
    generated: np.ndarray
    real: np.ndarray
    g_start: int
    r_start: int
    generated_norms: np.ndarray
    real_norms: np.ndarray

    def __post_init__(self) -> None:
        # How far the expanded distances may be from the direct ones (see _BAND_FACTOR).
        self.band = (
            _BAND_FACTOR
            * self.real.shape[1]
            * np.finfo(np.float64).eps
            * (self.generated_norms[:, None] + self.real_norms[None, :])
        )

    def within(self, squared_radius: np.ndarray) -> np.ndarray:
        """expanded <= squared_radius (broadcast), with near-boundary entries decided on the
        direct distance, so the test agrees with how the radii were computed."""
        inside = self.expanded <= squared_radius
        rows, columns = np.nonzero(np.abs(self.expanded - squared_radius) <= self.band)
        if len(rows):
            direct = _direct_squared(
                self.generated[self.g_start + rows], self.real[self.r_start + columns]
            )
            radius = np.broadcast_to(squared_radius, inside.shape)[rows, columns]
            inside[rows, columns] = direct <= radius
        return inside
