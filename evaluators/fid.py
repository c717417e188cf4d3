"""Frechet distance between two sets of feature vectors (FID when the features are a judge's)."""

from __future__ import annotations

import numpy as np


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (ddof=1) of ``features`` (N, D), both in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors of shape (N, D), got {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(
    mu_r: np.ndarray, sigma_r: np.ndarray, mu_g: np.ndarray, sigma_g: np.ndarray
) -> float:
    """FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)), in float64, clamped at 0.

    Tr((S_r S_g)^(1/2)) is the sum of the square roots of the eigenvalues of S_r S_g: the
    product of two PSD matrices is similar to S_r^(1/2) S_g S_r^(1/2), which is PSD, so its
    eigenvalues are real and >= 0 in exact arithmetic. Round-off can leave tiny negative or
    imaginary parts; they are dropped. This avoids ``scipy.linalg.sqrtm`` and stays finite for
    rank-deficient covariances (fewer samples than feature dimensions).
    """
    mu_r, mu_g = np.asarray(mu_r, np.float64), np.asarray(mu_g, np.float64)
    sigma_r, sigma_g = np.asarray(sigma_r, np.float64), np.asarray(sigma_g, np.float64)
    if mu_r.shape != mu_g.shape or sigma_r.shape != sigma_g.shape:
        raise ValueError(f"feature dimensions differ: {mu_r.shape} vs {mu_g.shape}")
    eigenvalues = np.linalg.eigvals(sigma_r @ sigma_g)
    trace_sqrt = np.sqrt(np.clip(eigenvalues.real, 0.0, None)).sum()
    diff = mu_r - mu_g
    value = diff @ diff + np.trace(sigma_r) + np.trace(sigma_g) - 2.0 * trace_sqrt
    return float(max(value, 0.0))


def fid_from_features(real: np.ndarray, generated: np.ndarray) -> float:
    """FID between two feature sets (N_r, D) and (N_g, D); see :func:`frechet_distance`."""
    return frechet_distance(*feature_statistics(real), *feature_statistics(generated))
