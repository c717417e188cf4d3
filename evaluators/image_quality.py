"""Full-reference image-quality distances in torch: l1, GMS/GMSM, YIQ chrominance and GMSD.

These are the distances of the BEGAN image-quality report (Vertolli and Davies 2017: l1, GMSM and
the chrominance part of cQS, Gupta et al. 2017) plus GMSD (Xue et al. 2014). All are batched and
differentiable, so the BEGAN trainer uses them directly as autoencoder losses.

Conventions for every function: images are float tensors (N, 3, H, W) RGB or (N, 1, H, W) grey,
with values on [0, 1] (not checked, to avoid a device sync inside training losses); computation
stays in the input's dtype and device. ``reduction="mean"`` returns a scalar, the mean over the
batch of the per-image values; ``reduction="none"`` returns the (N,) per-image values.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Reduction = Literal["mean", "none"]
Operator = Literal["sobel", "prewitt"]

# The report's footnote 2: "We use C = 0.0026 following the work on cQS"; it is GMSD's T = 170
# for 0..255 images rescaled to [0, 1] (170 / 255^2 = 0.002614).
GMS_C = 0.0026
GMSD_T = 170.0 / 255.0**2

YIQ_FROM_RGB = torch.tensor(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
    dtype=torch.float64,
)
"""(3, 3) float64 matrix M with [Y, I, Q]^T = M [R, G, B]^T (NTSC YIQ as in the cQS paper)."""

_RGB_FROM_YIQ = torch.linalg.inv(YIQ_FROM_RGB)

# Both operators have the same gain: a ramp rising by s per pixel gives a response of 2 s (the
# un-halved central difference), the scale that GMSD's T and hence C = 0.0026 are calibrated for.
_KERNELS_X = {
    "sobel": torch.tensor(
        [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64
    )
    / 4.0,
    "prewitt": torch.tensor([[-1.0, 0.0, 1.0]] * 3, dtype=torch.float64) / 3.0,
}


def _check_images(images: torch.Tensor, channels: tuple[int, ...] = (1, 3)) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        raise ValueError(
            "expected a float tensor of shape (N, C, H, W), got "
            f"{getattr(images, 'shape', type(images))}"
        )
    if images.shape[1] not in channels:
        raise ValueError(
            f"expected {' or '.join(map(str, channels))} channels, got shape {tuple(images.shape)}"
        )


def _check_pair(reference: torch.Tensor, distorted: torch.Tensor) -> None:
    _check_images(reference)
    _check_images(distorted)
    if reference.shape != distorted.shape:
        raise ValueError(
            f"reference and distorted shapes differ: {tuple(reference.shape)} vs "
            f"{tuple(distorted.shape)}"
        )


def _reduce(per_image: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "mean":
        return per_image.mean()
    if reduction == "none":
        return per_image
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _apply_matrix(matrix: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    return torch.einsum(
        "ij,njhw->nihw", matrix.to(dtype=images.dtype, device=images.device), images
    )


def _luma(images: torch.Tensor) -> torch.Tensor:
    """Y channel (N, 1, H, W). Grey images are their own Y: the Y row sums to 1, so repeating
    them to RGB would give the same values up to round-off."""
    if images.shape[1] == 1:
        return images
    return _apply_matrix(YIQ_FROM_RGB[:1], images)


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt(x) for x >= 0 whose gradient at 0 is 0 instead of inf * 0 = NaN (flat regions)."""
    positive = x > 0
    return torch.where(
        positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x)
    )


def _similarity(a: torch.Tensor, b: torch.Tensor, c: float) -> torch.Tensor:
    """S(a, b) = (2 a b + c) / (a^2 + b^2 + c), elementwise (report's Eq. 4)."""
    return (2.0 * a * b + c) / (a * a + b * b + c)


def _gradient_magnitude(
    y: torch.Tensor, operator: str, padding: Literal["replicate", "zeros"]
) -> torch.Tensor:
    if operator not in _KERNELS_X:
        raise ValueError(f"operator must be 'sobel' or 'prewitt', got {operator!r}")
    kx = _KERNELS_X[operator]
    weight = torch.stack([kx, kx.T]).unsqueeze(1).to(dtype=y.dtype, device=y.device)
    if padding == "replicate":
        gradients = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), weight)
    else:
        gradients = F.conv2d(y, weight, padding=1)
    return _safe_sqrt(gradients.square().sum(dim=1, keepdim=True))


def rgb_to_yiq(images: torch.Tensor) -> torch.Tensor:
    """YIQ of RGB images: [Y, I, Q] = YIQ_FROM_RGB @ [R, G, B] per pixel.

    Y = .299R + .587G + .114B, I = .596R - .274G - .322B, Q = .211R - .523G + .312B.
    Input (N, 3, H, W) RGB on [0, 1], or (N, 1, H, W) grey, repeated to 3 channels (so Y = grey,
    I = Q = 0). Output (N, 3, H, W): Y on [0, 1], I on [-.596, .596], Q on [-.523, .523].
    """
    _check_images(images)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return _apply_matrix(YIQ_FROM_RGB, images)


def yiq_to_rgb(images: torch.Tensor) -> torch.Tensor:
    """RGB of YIQ images (N, 3, H, W): the exact inverse of YIQ_FROM_RGB (computed in float64)
    applied per pixel, so ``yiq_to_rgb(rgb_to_yiq(x)) == x`` up to round-off."""
    _check_images(images, channels=(3,))
    return _apply_matrix(_RGB_FROM_YIQ, images)


def l1(
    reference: torch.Tensor, distorted: torch.Tensor, reduction: Reduction = "mean"
) -> torch.Tensor:
    """Mean absolute error: per image 1/(C H W) sum |reference - distorted| over channels and
    pixels; (N, C, H, W) pairs of equal shape, C in {1, 3}. 0 iff the images are equal."""
    _check_pair(reference, distorted)
    return _reduce((reference - distorted).abs().flatten(1).mean(dim=1), reduction)


def gradient_magnitude(y: torch.Tensor, operator: Operator = "sobel") -> torch.Tensor:
    """Gradient magnitude m = sqrt(gx^2 + gy^2) of a single-channel map ``y`` (N, 1, H, W).

    gx and gy are correlations with a 3x3 kernel and its transpose, after replicate padding of
    one pixel so the output keeps shape (N, 1, H, W):
      "sobel" (default): [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] / 4;
      "prewitt":         [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]] / 3 (as in GMSD).
    Sobel is divided by 4 (not by 8) so that both operators have the same gain: a ramp rising by
    s per pixel gives m = 2 s in the interior (edge pixels see a one-sided difference, m = s).
    That is the scale for which GMSD calibrated T = 170 on 0..255, i.e. C = 0.0026 on [0, 1], so
    C means the same for either operator. The gradient of m at m = 0 is taken as 0 (no NaN).
    """
    _check_images(y, channels=(1,))
    return _gradient_magnitude(y, operator, "replicate")


def gms_map(
    reference: torch.Tensor, distorted: torch.Tensor, c: float = GMS_C, operator: Operator = "sobel"
) -> torch.Tensor:
    """Gradient magnitude similarity map GMS = (2 m_r m_d + c) / (m_r^2 + m_d^2 + c), (N, 1, H, W).

    m_r, m_d are :func:`gradient_magnitude` (Sobel/4 by default, Prewitt/3 selectable, replicate
    padding) of the Y channel (.299R + .587G + .114B; grey images are used as they are) of the
    reference and distorted images on [0, 1]. Values lie in (0, 1], 1 where the gradient
    magnitudes agree. Default c = 0.0026 (the BEGAN report, after cQS).
    """
    _check_pair(reference, distorted)
    m_r = _gradient_magnitude(_luma(reference), operator, "replicate")
    m_d = _gradient_magnitude(_luma(distorted), operator, "replicate")
    return _similarity(m_r, m_d, c)


def gmsm_distance(
    reference: torch.Tensor,
    distorted: torch.Tensor,
    c: float = GMS_C,
    operator: Operator = "sobel",
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """GMSM distance: per image 1 - mean over the H x W pixels of :func:`gms_map`; in [0, 1),
    0 for identical images. Default c = 0.0026, Sobel/4 operator."""
    return _reduce(
        1.0 - gms_map(reference, distorted, c, operator).flatten(1).mean(dim=1), reduction
    )


def chroma_distance(
    reference: torch.Tensor,
    distorted: torch.Tensor,
    c: float = GMS_C,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Chrominance distance of cQS: per image 1 - mean over pixels of S(I_r, I_d) * S(Q_r, Q_d).

    I, Q are the YIQ chrominance channels of :func:`rgb_to_yiq` and S(a, b) = (2 a b + c) /
    (a^2 + b^2 + c) applied to the channel values themselves (not their gradients). c = 0.0026:
    the report gives a single constant C for its similarity S (Eq. 4, footnote 2: "We use
    C = 0.0026 following the work on cQS") and applies Eq. 4 to I and Q. Grey images are
    repeated to RGB, so I = Q = 0 and the distance is 0.

    Range [0, 2]: I and Q are signed, so S lies in [-1, 1] and the product of two negative
    similarities is positive; an image whose I and Q are both sign-flipped scores close to 0.
    """
    _check_pair(reference, distorted)
    yiq_r, yiq_d = rgb_to_yiq(reference), rgb_to_yiq(distorted)
    s_i = _similarity(yiq_r[:, 1], yiq_d[:, 1], c)
    s_q = _similarity(yiq_r[:, 2], yiq_d[:, 2], c)
    return _reduce(1.0 - (s_i * s_q).flatten(1).mean(dim=1), reduction)


def _average_downsample(y: torch.Tensor) -> torch.Tensor:
    """2x2 mean filter then keep every 2nd row and column, as MATLAB's conv2(Y, ones(2)/4, 'same')
    followed by Y(1:2:end, 1:2:end): non-overlapping 2x2 blocks, zeros beyond odd edges."""
    y = F.pad(y, (0, y.shape[-1] % 2, 0, y.shape[-2] % 2))
    return F.avg_pool2d(y, kernel_size=2, stride=2)


def gmsd(
    reference: torch.Tensor, distorted: torch.Tensor, reduction: Reduction = "mean"
) -> torch.Tensor:
    """Gradient Magnitude Similarity Deviation (Xue et al. 2014), per image.

    Steps, as in the paper and its reference MATLAB code: Y channel (.299R + .587G + .114B;
    grey images as they are) on [0, 1]; 2x2 average filter and downsampling by 2 (non-overlapping
    2x2 blocks, zero padding past an odd edge); Prewitt/3 gradients [[-1, 0, 1]] * 3 / 3 and its
    transpose with zero padding ('same' size); m = sqrt(gx^2 + gy^2); GMS = (2 m_r m_d + T) /
    (m_r^2 + m_d^2 + T) with T = 170 / 255^2 (the paper's T = 170 for 0..255 images);
    GMSD = sqrt(1/P sum_p (GMS_p - mean GMS)^2), the population std over the P pixels (the
    paper's formula; its MATLAB code's std2 divides by P - 1 instead). 0 for identical images.
    """
    _check_pair(reference, distorted)
    m_r = _gradient_magnitude(_average_downsample(_luma(reference)), "prewitt", "zeros")
    m_d = _gradient_magnitude(_average_downsample(_luma(distorted)), "prewitt", "zeros")
    gms = _similarity(m_r, m_d, GMSD_T).flatten(1)
    variance = (gms - gms.mean(dim=1, keepdim=True)).square().mean(dim=1)
    # torch.std has a NaN gradient at zero variance (identical images); _safe_sqrt does not.
    return _reduce(_safe_sqrt(variance), reduction)
