"""Frechet distance between two sets of feature vectors (FID when the features are a judge's)."""

from __future__ import annotations

import numpy as np


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (ddof=1) of ``features`` (N, D), both in float64."""
    features = _as_features(features)
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
    return _combine(mu_r - mu_g, np.trace(sigma_r), np.trace(sigma_g), trace_sqrt)


def fid_from_features(real: np.ndarray, generated: np.ndarray) -> float:
    """FID between two feature sets (N_r, D) and (N_g, D); see :func:`frechet_distance`.

    With fewer samples than dimensions on either side (min(N_r, N_g) < D, e.g. a few hundred
    images against 2,048-d Inception features) the trace term comes from the N_r x N_g cross
    product instead of a D x D eigendecomposition. With centred feature matrices A (N_r x D)
    and B (N_g x D), S_r = A^T A / (N_r - 1) and S_g = B^T B / (N_g - 1), so S_r S_g =
    A^T (A B^T B) / c with c = (N_r - 1)(N_g - 1); XY and YX share their nonzero eigenvalues,
    and (A B^T B) A^T = M M^T with M = A B^T, whose eigenvalues are the squared singular values
    of M. Hence Tr (S_r S_g)^(1/2) = ||A B^T||_* / sqrt(c), the nuclear norm (sum of singular
    values), and Tr S = ||A||_F^2 / (N - 1). Same value, no round-off from the D - N zero
    eigenvalues, and O(N_r N_g D) instead of O(D^3) work.
    """
    real, generated = _as_features(real), _as_features(generated)
    if real.shape[1] != generated.shape[1]:
        raise ValueError(f"feature dimensions differ: {real.shape[1]} vs {generated.shape[1]}")
    if min(len(real), len(generated)) < real.shape[1]:
        return _fid_low_rank(real, generated)
    return frechet_distance(*feature_statistics(real), *feature_statistics(generated))


def fid_against_statistics(mu_r: np.ndarray, sigma_r: np.ndarray, generated: np.ndarray) -> float:
    """FID between reference statistics (mu_r, sigma_r) (e.g. from a statistics file) and a
    feature set (N_g, D); the value of :func:`frechet_distance` on ``generated``'s statistics.

    When N_g < D the trace term uses the N_g x N_g matrix B sigma_r B^T (B the centred features):
    S_r S_g = S_r B^T B / (N_g - 1) has the nonzero eigenvalues of B S_r B^T / (N_g - 1), which is
    symmetric positive semi-definite, so Tr (S_r S_g)^(1/2) is the sum of the square roots of its
    eigenvalues (``eigvalsh``), O(N_g D^2) instead of O(D^3). Its smallest eigenvalue is 0
    exactly (B's rows sum to 0) and is left out rather than have round-off's square root added.
    """
    generated = _as_features(generated)
    mu_r, sigma_r = np.asarray(mu_r, np.float64), np.asarray(sigma_r, np.float64)
    dimension = generated.shape[1]
    if mu_r.shape != (dimension,) or sigma_r.shape != (dimension, dimension):
        raise ValueError(
            f"feature dimensions differ: statistics of {mu_r.shape} and "
            f"{sigma_r.shape}, features of dimension {dimension}"
        )
    if len(generated) >= dimension:
        return frechet_distance(mu_r, sigma_r, *feature_statistics(generated))
    mu_g = generated.mean(axis=0)
    centred = generated - mu_g
    inner = centred @ sigma_r @ centred.T
    eigenvalues = np.linalg.eigvalsh((inner + inner.T) / 2.0)[1:] / (len(generated) - 1)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    trace_g = np.einsum("ij,ij->", centred, centred) / (len(generated) - 1)
    return _combine(mu_r - mu_g, np.trace(sigma_r), trace_g, trace_sqrt)


def _as_features(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors of shape (N, D), got {features.shape}")
    return features


def _fid_low_rank(real: np.ndarray, generated: np.ndarray) -> float:
    """fid_from_features through the nuclear norm of the centred cross product (see there)."""
    mu_r, mu_g = real.mean(axis=0), generated.mean(axis=0)
    a, b = real - mu_r, generated - mu_g
    n_r, n_g = len(real) - 1, len(generated) - 1
    singular_values = np.linalg.svd(a @ b.T, compute_uv=False)
    trace_sqrt = singular_values.sum() / np.sqrt(n_r * n_g)
    trace_r, trace_g = np.einsum("ij,ij->", a, a) / n_r, np.einsum("ij,ij->", b, b) / n_g
    return _combine(mu_r - mu_g, trace_r, trace_g, trace_sqrt)


def _combine(
    mean_difference: np.ndarray, trace_r: float, trace_g: float, trace_sqrt: float
) -> float:
    """||mu_r - mu_g||^2 + Tr S_r + Tr S_g - 2 Tr (S_r S_g)^(1/2), clamped at 0."""
    value = mean_difference @ mean_difference + trace_r + trace_g - 2.0 * trace_sqrt
    return float(max(value, 0.0))
