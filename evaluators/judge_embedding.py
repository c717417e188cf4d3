"""How the judge sees real and generated samples: a 2-D PCA of its penultimate activations and
histograms of its confidence (max softmax probability)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FIGURE_SIZE_INCHES = (12.0, 4.0)
FIGURE_DPI = 100  # so judge_embedding_figure returns (400, 1200, 3)
_PROBABILITY_TOLERANCE = 1e-3
TOP_BIN = 0.9  # lower edge of the last of 10 equal confidence bins on [0, 1]


@dataclass(frozen=True, eq=False)  # array fields: equality is identity
class JudgeEmbedding:
    """Result of :func:`judge_embedding` (all float64).

    real_2d (N_real, 2), generated_2d (N_generated, 2): coordinates on the first two principal
    components of the combined, centred feature set. explained_variance (2,): the variance along
    each component (squared singular value / (N - 1)), descending; explained_variance_ratio (2,):
    the same over the total variance (0 if the total is 0). real_confidence (N_real,),
    generated_confidence (N_generated,): max softmax probability per sample. components (2, D):
    the unit principal axes; mean (D,): the combined mean that was subtracted.
    """

    real_2d: np.ndarray
    generated_2d: np.ndarray
    explained_variance: np.ndarray
    real_confidence: np.ndarray
    generated_confidence: np.ndarray
    explained_variance_ratio: np.ndarray
    components: np.ndarray = field(repr=False)
    mean: np.ndarray = field(repr=False)


def judge_embedding(
    real_features: np.ndarray | torch.Tensor,
    generated_features: np.ndarray | torch.Tensor,
    real_probabilities: np.ndarray | torch.Tensor,
    generated_probabilities: np.ndarray | torch.Tensor,
) -> JudgeEmbedding:
    """2-component PCA of judge features for both sets together, and the judge's confidences.

    real_features (N_real, D), generated_features (N_generated, D): finite penultimate activations
    (e.g. :func:`evaluators.judges.lenet.judge_features`, D = 84), D >= 2, N_real + N_generated
    >= 2. PCA in float64: X = both sets stacked, mu = mean(X), X - mu = U S V^T (numpy SVD);
    coordinates = (X - mu) V[:, :2], explained variance = S[:2]^2 / (N - 1). Each axis's sign is
    fixed so that its loading of largest magnitude is positive (deterministic output).
    real_probabilities (N_real, K), generated_probabilities (N_generated, K): softmax outputs
    (rows non-negative, summing to 1 within 1e-3; logits raise ValueError); confidence = row max.
    """
    real_f = _matrix(real_features, "real_features")
    gen_f = _matrix(generated_features, "generated_features")
    real_p = _probabilities(real_probabilities, "real_probabilities", len(real_f))
    gen_p = _probabilities(generated_probabilities, "generated_probabilities", len(gen_f))
    if real_f.shape[1] != gen_f.shape[1]:
        raise ValueError(f"feature dimensions differ: {real_f.shape[1]} vs {gen_f.shape[1]}")
    combined = np.concatenate([real_f, gen_f])
    if combined.shape[0] < 2 or combined.shape[1] < 2:
        raise ValueError(
            f"PCA to 2-D needs N >= 2 samples and D >= 2 features, got {combined.shape}"
        )
    mean = combined.mean(axis=0)
    centred = combined - mean
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:2]
    largest = np.abs(components).argmax(axis=1)
    components = components * np.sign(components[np.arange(2), largest])[:, None]
    projected = centred @ components.T
    variance = singular**2 / (len(combined) - 1)
    total = variance.sum()
    return JudgeEmbedding(
        real_2d=projected[: len(real_f)],
        generated_2d=projected[len(real_f) :],
        explained_variance=variance[:2],
        real_confidence=real_p.max(axis=1),
        generated_confidence=gen_p.max(axis=1),
        explained_variance_ratio=variance[:2] / total if total > 0 else np.zeros(2),
        components=components,
        mean=mean,
    )


def confidence_summary(
    probabilities: np.ndarray | torch.Tensor, top_bin: float = TOP_BIN
) -> tuple[float, float]:
    """(mean confidence, share in the top bin) of softmax rows ``probabilities`` (N, K), N >= 1.

    A sample's confidence is its largest class probability, c_i = max_k p_ik; the mean is
    sum(c_i) / N and the top-bin share is #{i : c_i >= top_bin} / N, the tallest bar of the
    report's 10-bin confidence histogram when ``top_bin`` is 0.9.
    """
    matrix = _matrix(probabilities, "probabilities")
    confidence = _probabilities(matrix, "probabilities", len(matrix)).max(axis=1)
    if len(confidence) == 0:
        raise ValueError("confidence needs at least one sample")
    return float(confidence.mean()), float((confidence >= top_bin).mean())


def _matrix(values: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return matrix


def _probabilities(values: np.ndarray | torch.Tensor, name: str, rows: int) -> np.ndarray:
    matrix = _matrix(values, name)
    if len(matrix) != rows:
        raise ValueError(f"{name} has {len(matrix)} rows but the features have {rows}")
    sums = matrix.sum(axis=1)
    if (matrix < 0).any() or (np.abs(sums - 1.0) > _PROBABILITY_TOLERANCE).any():
        raise ValueError(
            f"{name} must be softmax probabilities (rows >= 0 summing to 1), not logits"
        )
    return matrix


def judge_embedding_figure(embedding: JudgeEmbedding, bins: int = 10) -> np.ndarray:
    """The embedding rendered as uint8 RGB (400, 1200, 3): 12 x 4 inches at 100 dpi, Agg.

    Left: scatter of real and generated samples on the two principal components (axis labels give
    each component's share of the variance). Middle / right: histograms of the real / generated
    confidences with ``bins`` equal bins on [0, 1]. Built on a standalone Figure with the Agg
    canvas, so it neither needs a display nor touches pyplot's global state.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    figure = Figure(figsize=FIGURE_SIZE_INCHES, dpi=FIGURE_DPI)
    canvas = FigureCanvasAgg(figure)
    scatter, real_hist, gen_hist = figure.subplots(1, 3)
    scatter.scatter(*embedding.real_2d.T, s=6, alpha=0.6, label="real", color="tab:blue")
    scatter.scatter(
        *embedding.generated_2d.T, s=6, alpha=0.6, label="generated", color="tab:orange"
    )
    ratio = embedding.explained_variance_ratio
    scatter.set_xlabel(f"PC1 ({100 * ratio[0]:.1f}% of variance)")
    scatter.set_ylabel(f"PC2 ({100 * ratio[1]:.1f}% of variance)")
    scatter.set_title("judge features, PCA")
    scatter.legend(loc="best")
    for axes, values, colour, name in (
        (real_hist, embedding.real_confidence, "tab:blue", "real"),
        (gen_hist, embedding.generated_confidence, "tab:orange", "generated"),
    ):
        axes.hist(values, bins=bins, range=(0.0, 1.0), color=colour)
        axes.set_xlim(0.0, 1.0)
        axes.set_xlabel("max softmax probability")
        axes.set_ylabel("samples")
        axes.set_title(f"judge confidence, {name} (n={len(values)})")
    figure.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
