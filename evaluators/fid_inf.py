"""FID and Inception Score extrapolated to infinitely many samples (Chong & Forsyth 2020)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evaluators.classifier_scores import inception_score
from evaluators.fid import fid_against_statistics


@dataclass(frozen=True)
class Extrapolation:
    """A score fitted as ``value + slope / N`` over subsets of ``sizes`` samples.

    ``value`` is the intercept (the score at N -> infinity), ``slope`` the bias coefficient
    c (the score at N is about value + c/N), ``r2`` the coefficient of determination of the
    fit (1.0 when the scores are all equal), ``sizes`` and ``scores`` the points fitted.
    """

    value: float
    slope: float
    r2: float
    sizes: tuple[int, ...]
    scores: tuple[float, ...]


def subset_sizes(
    n: int, points: int = 15, smallest_fraction: float = 0.2, minimum: int = 2
) -> np.ndarray:
    """``points`` sizes evenly spaced from max(minimum, round(n * smallest_fraction)) to n,
    rounded to integers, duplicates dropped; at least 2 distinct sizes or ValueError."""
    if points < 2 or not 0.0 < smallest_fraction < 1.0:
        raise ValueError(
            f"need points >= 2 and 0 < smallest_fraction < 1, got {points} and {smallest_fraction}"
        )
    smallest = max(minimum, round(n * smallest_fraction))
    sizes = np.unique(np.round(np.linspace(smallest, n, points)).astype(np.int64))
    if len(sizes) < 2:
        raise ValueError(
            f"extrapolation needs subsets of at least two sizes between "
            f"{minimum} and N; {n} samples are too few"
        )
    return sizes


def fit_inverse_n(sizes: np.ndarray, scores: np.ndarray) -> tuple[float, float, float]:
    """Least-squares fit score = value + slope / N; returns (value, slope, R^2)."""
    sizes, scores = np.asarray(sizes, np.float64), np.asarray(scores, np.float64)
    design = np.column_stack([np.ones_like(sizes), 1.0 / sizes])
    (value, slope), *_ = np.linalg.lstsq(design, scores, rcond=None)
    residual = scores - design @ np.array([value, slope])
    total = ((scores - scores.mean()) ** 2).sum()
    r2 = 1.0 if total == 0.0 else 1.0 - (residual @ residual) / total
    return float(value), float(slope), float(r2)


def _extrapolate(
    score_of: Callable[[np.ndarray], float],
    n: int,
    points: int,
    smallest_fraction: float,
    minimum: int,
    seed: int,
) -> Extrapolation:
    rng = np.random.default_rng(seed)
    sizes = subset_sizes(n, points, smallest_fraction, minimum)
    scores = np.array([score_of(rng.choice(n, size=size, replace=False)) for size in sizes])
    value, slope, r2 = fit_inverse_n(sizes, scores)
    return Extrapolation(
        value, slope, r2, tuple(int(s) for s in sizes), tuple(float(s) for s in scores)
    )


def fid_inf(
    mu_r: np.ndarray,
    sigma_r: np.ndarray,
    generated: np.ndarray,
    *,
    points: int = 15,
    smallest_fraction: float = 0.2,
    seed: int = 0,
) -> Extrapolation:
    """FID_inf: the FID of ``generated`` (M, D) against reference statistics (mu_r, sigma_r)
    extrapolated to infinitely many generated samples.

    Definition (Chong & Forsyth 2020): FID is biased upward at finite N by about c/N, with a c
    that depends on the generator, so FIDs at one N can rank generators wrongly. For each of
    ``points`` sizes N evenly spaced from round(M * smallest_fraction) to M (15 sizes from M/5
    to M by default, see :func:`subset_sizes`), FID_N is the FID of N generated rows drawn
    without replacement from ``numpy.random.default_rng(seed)`` (one fresh draw per size, in
    increasing order of N; the largest is all M rows), and the least-squares line
    FID_N = FID_inf + c / N gives ``value`` = FID_inf, ``slope`` = c and its R^2.

    The c/N law is the leading term of the bias for N well above D (Chong & Forsyth fit
    N = 5,000..50,000 Inception features, D = 2,048); with fewer samples than dimensions the
    bias bends away from it, the fit removes only part of it, and R^2 drops.

    Only the generated side is subsampled: the reference statistics are fixed (from the whole
    real set, or a statistics file), so a reference set's own bias is the same for every
    generator scored against it. Use :func:`evaluators.fid.feature_statistics` on real
    features. Each FID_N is :func:`evaluators.fid.fid_against_statistics` (cheap when N < D).

    Inputs: mu_r (D,), sigma_r (D, D), generated (M, D) finite with M large enough for two
    distinct sizes of at least 2 rows. Raises ValueError otherwise.
    """
    generated = np.asarray(generated, dtype=np.float64)
    if generated.ndim != 2:
        raise ValueError(f"generated features must have shape (M, D), got {generated.shape}")
    return _extrapolate(
        lambda rows: fid_against_statistics(mu_r, sigma_r, generated[rows]),
        len(generated),
        points,
        smallest_fraction,
        2,
        seed,
    )


def inception_score_inf(
    probabilities: np.ndarray,
    *,
    points: int = 15,
    smallest_fraction: float = 0.2,
    seed: int = 0,
) -> Extrapolation:
    """IS_inf: the Inception Score of ``probabilities`` (M, K) extrapolated to infinitely many
    samples, as :func:`fid_inf` does for FID.

    IS_N is :func:`evaluators.classifier_scores.inception_score` with one split of N rows drawn
    without replacement (so p(y) is estimated from all N, as Chong & Forsyth do); the line
    IS_N = IS_inf + c / N is fitted by least squares over the same sizes as :func:`fid_inf`.
    IS is biased downward at finite N (the estimated marginal p(y) has too little entropy),
    so c is usually negative.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2:
        raise ValueError(f"probabilities must have shape (N, classes), got {probabilities.shape}")
    return _extrapolate(
        lambda rows: inception_score(probabilities[rows], splits=1)[0],
        len(probabilities),
        points,
        smallest_fraction,
        1,
        seed,
    )
