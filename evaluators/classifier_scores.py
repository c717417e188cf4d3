"""Scores computed from a judge classifier's outputs: Inception Score and label accuracy."""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

_SUM_TOLERANCE = 1e-4


def _as_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Validated (N, K) float64 rows, renormalised to sum to exactly 1."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 1:
        raise ValueError(f"probabilities must have shape (N, classes) with N >= 1, got {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("probabilities contain NaN or infinite values")
    if (p < 0).any():
        raise ValueError("probabilities must be non-negative (pass softmax outputs, not logits)")
    sums = p.sum(axis=1)
    worst = np.abs(sums - 1.0).max()
    if worst > _SUM_TOLERANCE:
        raise ValueError(
            f"each row of probabilities must sum to 1 (within {_SUM_TOLERANCE}); "
            f"the worst row is off by {worst:.3g}"
        )
    # Float32 softmax rows are off by ~1e-7; renormalising keeps p(y) a distribution exactly.
    return p / sums[:, None]


def inception_score(probabilities: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016) of a judge's class probabilities, mean and std.

    Definition: the N rows are cut into S = min(splits, N) contiguous blocks, block i being rows
    [i N // S, (i + 1) N // S) in the given order (as in the original OpenAI code). For each block
    B, p(y) is the mean of its rows and

        IS_B = exp( 1/|B| sum_{x in B} KL(p(y|x) || p(y)) ),  KL(p || q) = sum_y p_y log(p_y / q_y)

    with 0 log 0 = 0. Returns (mean, population std with ddof=0) of IS_B over the blocks, in
    float64. IS lies in [1, K] for K classes: K for confident predictions spread evenly over the
    classes, 1 when every row is the same.

    Because blocks are contiguous, rows sorted by class (e.g. conditional samples generated label
    by label) make each block nearly one class and the score collapses towards 1: shuffle such
    rows first. With splits=1 the score does not depend on row order.

    Inputs: ``probabilities`` (N, K), N >= 1, any real dtype; each row non-negative and summing
    to 1 within 1e-4 (rows are renormalised to sum to exactly 1). ``splits`` >= 1, default 10,
    capped at N. Raises ValueError otherwise.
    """
    p = _as_probabilities(probabilities)
    if splits < 1:
        raise ValueError(f"splits must be >= 1, got {splits}")
    n = p.shape[0]
    blocks = min(splits, n)
    scores = np.empty(blocks, dtype=np.float64)
    for i in range(blocks):
        part = p[i * n // blocks : (i + 1) * n // blocks]
        marginal = part.mean(axis=0)
        kl = (xlogy(part, part) - xlogy(part, marginal)).sum(axis=1)
        scores[i] = np.exp(kl.mean())
    return float(scores.mean()), float(scores.std())


def label_accuracy(probabilities_or_predictions: np.ndarray, labels: np.ndarray) -> float:
    """Share of samples whose judge prediction equals its conditioning label, in [0, 1].

    Definition: accuracy = 1/N sum_i [pred_i == labels_i]. ``probabilities_or_predictions`` is
    either (N, K) class scores (probabilities, or logits: pred_i = argmax_k, ties to the lowest
    index) or (N,) predicted class indices with integral values. ``labels`` is (N,) with
    integral values, N >= 1. Raises ValueError on shape mismatches or non-integral class indices.
    """
    scores = np.asarray(probabilities_or_predictions)
    if scores.ndim == 2:
        predictions = scores.argmax(axis=1)
    elif scores.ndim == 1:
        predictions = _as_class_indices(scores, "predictions")
    else:
        raise ValueError(f"expected (N, classes) scores or (N,) predictions, got {scores.shape}")
    targets = _as_class_indices(np.asarray(labels), "labels")
    if targets.ndim != 1 or targets.shape[0] != predictions.shape[0]:
        raise ValueError(f"labels must have shape ({predictions.shape[0]},), got {targets.shape}")
    if targets.shape[0] == 0:
        raise ValueError("label_accuracy needs at least one sample")
    return float(np.mean(predictions == targets))


def _as_class_indices(values: np.ndarray, name: str) -> np.ndarray:
    """``values`` as int64 class indices; floats are accepted only when integral."""
    if values.dtype.kind in "iub":
        return values.astype(np.int64)
    integral = values.dtype.kind == "f" and np.isfinite(values).all()
    if integral and (values == np.round(values)).all():
        return values.astype(np.int64)
    raise ValueError(f"{name} must be integer class indices, got dtype {values.dtype}")
