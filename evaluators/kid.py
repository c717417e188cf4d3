"""Kernel Inception Distance: unbiased MMD^2 with a cubic polynomial kernel, over random subsets."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KIDResult:
    """KID averaged over ``subsets`` subset pairs of ``subset_size`` samples each.

    ``mean`` and ``std`` are the mean and population standard deviation (ddof=0) of the
    per-subset MMD^2 estimates; ``subset_size`` is the size actually used, after capping.
    ``std`` is NaN when every subset is the whole of both sets: there is one estimate, and it
    says nothing about the spread (a zero would claim a zero-width interval).
    """

    mean: float
    std: float
    subsets: int
    subset_size: int


def _polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / d + 1)^3 for every row pair of ``a`` and ``b``.

    Cubed by two in-place products: numpy's ``** 3`` calls pow() per element, which took a
    sixth of a 1,000-sample subset's time at d = 2,048 (x * x * x differs by an ulp at most).
    """
    kernel = a @ b.T
    kernel /= a.shape[1]
    kernel += 1.0
    cube = kernel * kernel
    cube *= kernel
    return cube


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equally sized samples (Gretton et al. 2012, eq. 3)."""
    m = x.shape[0]
    k_xx, k_yy, k_xy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    # The within-sample terms exclude i == j: k(x_i, x_i) is what biases the plug-in estimate.
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kid(
    real: np.ndarray,
    generated: np.ndarray,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> KIDResult:
    """Kernel Inception Distance between feature sets ``real`` (N_r, d) and ``generated`` (N_g, d).

    Definition, per subset: draw m = min(subset_size, N_r, N_g) rows of ``real`` (X) and m rows
    of ``generated`` (Y), each without replacement, and compute the unbiased MMD^2 estimate

        MMD^2_u = 1/(m(m-1)) sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)] - 2/m^2 sum_{i,j} k(x_i, y_j)

    with the cubic polynomial kernel k(x, y) = (x . y / d + 1)^3 (Binkowski et al. 2018; the
    cross term runs over all pairs, as in their reference code). ``mean`` is the average over
    ``subsets`` independent subset draws and ``std`` their population std (ddof=0). Subsets come
    from ``numpy.random.default_rng(seed)``: for each subset the real indices are drawn, then the
    generated ones (when m equals both set sizes every draw is a permutation of the whole sets,
    so the one estimate is computed once and ``std`` is NaN). The estimate can be negative; its
    expectation is 0 when both sets come from one distribution.

    Inputs: any real dtype, converted to float64; finite values; at least 2 rows on each side
    and the same d. Defaults: 100 subsets of 1,000. Raises ValueError otherwise.
    """
    x = np.asarray(real, dtype=np.float64)
    y = np.asarray(generated, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"KID needs feature arrays of shape (N, d), got {x.shape} and {y.shape}")
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"feature dimensions differ: real d={x.shape[1]}, generated d={y.shape[1]}"
        )
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError(
            f"KID needs at least 2 samples on each side, got {x.shape[0]} real "
            f"and {y.shape[0]} generated"
        )
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"need subsets >= 1 and subset_size >= 2, got {subsets}, {subset_size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("KID features contain NaN or infinite values")

    m = min(subset_size, x.shape[0], y.shape[0])
    if m == x.shape[0] == y.shape[0]:
        # Every subset is then a permutation of both whole sets, and MMD^2_u does not depend on
        # row order: each of the ``subsets`` estimates is this one value, with no spread to tell.
        return KIDResult(mean=_mmd2_unbiased(x, y), std=math.nan, subsets=subsets, subset_size=m)
    rng = np.random.default_rng(seed)
    estimates = np.empty(subsets, dtype=np.float64)
    for s in range(subsets):
        rows_x = rng.choice(x.shape[0], size=m, replace=False)
        rows_y = rng.choice(y.shape[0], size=m, replace=False)
        estimates[s] = _mmd2_unbiased(x[rows_x], y[rows_y])
    return KIDResult(
        mean=float(estimates.mean()), std=float(estimates.std()), subsets=subsets, subset_size=m
    )
