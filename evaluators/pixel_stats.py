"""Pixel statistics of image sets in numpy: sharpness and colour-histogram KL divergence.

Images are (N, C, H, W) with C = 1 (grey) or 3 (RGB), either uint8 on 0..255 or floating point
on [0, 1]; other dtypes and float values outside [0, 1] raise ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_GREY_WEIGHTS = np.array([0.299, 0.587, 0.114])
_CHUNK = 256  # images per histogram pass: bounds the float64 copy of large sets


@dataclass(frozen=True)
class SharpnessResult:
    """Per-image sharpness (N,) float64, and its mean and population std (ddof=0) over the set."""

    per_image: np.ndarray
    mean: float
    std: float


def _check_images(images: np.ndarray, name: str = "images") -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] < 1:
        raise ValueError(
            f"{name} must have shape (N, C, H, W) with N >= 1 and C in (1, 3), got {images.shape}"
        )
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind != "f":
        raise ValueError(f"{name} must be uint8 on 0..255 or float on [0, 1], got {images.dtype}")
    if not (np.isfinite(images).all() and images.min() >= 0.0 and images.max() <= 1.0):
        raise ValueError(f"float {name} must be finite and on [0, 1]")
    return images


def _unit_range(images: np.ndarray) -> np.ndarray:
    """float64 copy on [0, 1]."""
    if images.dtype == np.uint8:
        return images.astype(np.float64) / 255.0
    return images.astype(np.float64)


def _grey(unit: np.ndarray) -> np.ndarray:
    """(N, H, W) grey of float64 images on [0, 1]: 0.299R + 0.587G + 0.114B, or the one channel."""
    if unit.shape[1] == 1:
        return unit[:, 0]
    # The weights sum to 1 only up to round-off; clip so white stays inside the [0, 1] histogram.
    return np.clip(np.einsum("c,nchw->nhw", _GREY_WEIGHTS, unit), 0.0, 1.0)


def sharpness(images: np.ndarray) -> SharpnessResult:
    """Mean gradient magnitude of the grey image on 0..255, per image, with mean and std.

    Definition: G = 255 * grey, grey = 0.299R + 0.587G + 0.114B for RGB (the channel itself for
    grey images) on [0, 1]. Central differences gx = (G[i, j+1] - G[i, j-1]) / 2 and
    gy = (G[i+1, j] - G[i-1, j]) / 2 are taken at interior pixels only (1 <= i <= H-2,
    1 <= j <= W-2: no padding, so borders invent no edges), and the per-image sharpness is the
    mean over those (H-2)(W-2) pixels of sqrt(gx^2 + gy^2). A ramp rising by s grey levels per
    pixel scores s; a flat image scores 0. ``mean`` and ``std`` (population, ddof=0) are over the
    set. Input: (N, C, H, W), C in {1, 3}, H, W >= 3, uint8 on 0..255 or float on [0, 1].
    """
    images = _check_images(images)
    if images.shape[2] < 3 or images.shape[3] < 3:
        raise ValueError(f"sharpness needs H, W >= 3, got {images.shape}")
    g = 255.0 * _grey(_unit_range(images))
    gx = (g[:, 1:-1, 2:] - g[:, 1:-1, :-2]) / 2.0
    gy = (g[:, 2:, 1:-1] - g[:, :-2, 1:-1]) / 2.0
    per_image = np.sqrt(gx * gx + gy * gy).mean(axis=(1, 2))
    return SharpnessResult(
        per_image=per_image, mean=float(per_image.mean()), std=float(per_image.std())
    )


def _channel_histograms(images: np.ndarray, bins: int) -> dict[str, np.ndarray]:
    """Pixel counts per channel over the whole set, histogrammed on [0, 1] in ``bins`` bins."""
    names = ("r", "g", "b", "grey") if images.shape[1] == 3 else ("grey",)
    counts = {name: np.zeros(bins, dtype=np.int64) for name in names}
    for start in range(0, images.shape[0], _CHUNK):
        unit = _unit_range(images[start : start + _CHUNK])
        channels = {"grey": _grey(unit)}
        if unit.shape[1] == 3:
            channels.update(r=unit[:, 0], g=unit[:, 1], b=unit[:, 2])
        for name in names:
            counts[name] += np.histogram(channels[name], bins=bins, range=(0.0, 1.0))[0]
    return counts


def _smoothed(counts: np.ndarray, eps: float) -> np.ndarray:
    p = counts / counts.sum()
    p = p + eps
    return p / p.sum()


def color_kl(
    real: np.ndarray, generated: np.ndarray, bins: int = 25, eps: float = 1e-10
) -> dict[str, float]:
    """KL(real || generated) of per-channel colour histograms over all pixels of each set.

    Definition, per channel c in R, G, B and grey (0.299R + 0.587G + 0.114B): values on [0, 1]
    (uint8 divided by 255) of all pixels of all images are counted in ``bins`` equal bins of
    [0, 1] (numpy.histogram: [k/bins, (k+1)/bins), the last bin closed), counts are normalised to
    probabilities, ``eps`` is added to every bin and the result renormalised, giving P (real) and
    Q (generated); KL = sum_k P_k log(P_k / Q_k) in nats, float64. eps keeps KL finite when a bin
    of Q is empty. Defaults: 25 bins, eps = 1e-10.

    Inputs: (N, C, H, W) with C in {1, 3}, the same C for both sets (N, H, W may differ); uint8
    or float on [0, 1]. Returns keys "r", "g", "b", "grey" for RGB and only "grey" for grey sets.
    """
    real = _check_images(real, "real")
    generated = _check_images(generated, "generated")
    if real.shape[1] != generated.shape[1]:
        raise ValueError(
            f"channel counts differ: real {real.shape[1]}, generated {generated.shape[1]}"
        )
    if bins < 1 or not eps > 0:
        raise ValueError(f"need bins >= 1 and eps > 0, got bins={bins}, eps={eps}")
    hist_r = _channel_histograms(real, bins)
    hist_g = _channel_histograms(generated, bins)
    result = {}
    for name in hist_r:
        p, q = _smoothed(hist_r[name], eps), _smoothed(hist_g[name], eps)
        result[name] = float(np.sum(p * np.log(p / q)))
    return result
