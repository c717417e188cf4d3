"""Image-quality distances (l1, GMS/GMSM, chrominance, GMSD): closed forms, invariants, grads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluators.image_quality import (
    YIQ_FROM_RGB,
    chroma_distance,
    gms_map,
    gmsd,
    gmsm_distance,
    gradient_magnitude,
    l1,
    rgb_to_yiq,
    yiq_to_rgb,
)

C = 0.0026


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Single-threaded torch: steadier timings on 2 shared cores."""


def random_images(n=2, channels=3, size=16, seed=0, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=generator, dtype=dtype)


def smooth_images(n=2, channels=3, size=16, seed=0) -> torch.Tensor:
    """Images with structure at several scales, so blurs and shifts change their gradients."""
    x = torch.linspace(0, 1, size, dtype=torch.float64)
    yy, xx = torch.meshgrid(x, x, indexing="ij")
    images = []
    for k in range(n):
        chans = [
            0.5 + 0.4 * torch.sin(6 * xx * (k + c + 1) + 3 * yy * (c + 1)) for c in range(channels)
        ]
        images.append(torch.stack(chans))
    noise = random_images(n, channels, size, seed) * 0.1
    return (torch.stack(images) * 0.9 + noise).clamp(0, 1)


def distort(images: torch.Tensor) -> torch.Tensor:
    """Blur plus a colour cast: changes luminance gradients and chrominance."""
    blurred = torch.nn.functional.avg_pool2d(
        images, 3, stride=1, padding=1, count_include_pad=False
    )
    if images.shape[1] == 3:
        blurred = blurred * torch.tensor([1.0, 0.7, 0.9], dtype=images.dtype).view(1, 3, 1, 1)
    return blurred


# ---------------------------------------------------------------- YIQ


def test_yiq_matrix_is_the_ntsc_one():
    expected = [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]
    np.testing.assert_array_equal(YIQ_FROM_RGB.numpy(), np.array(expected))
    red = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).view(1, 3, 1, 1)
    np.testing.assert_allclose(rgb_to_yiq(red).flatten().numpy(), [0.299, 0.596, 0.211])


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_yiq_round_trips(dtype, tol):
    x = random_images(3, 3, 8, dtype=dtype)
    back = yiq_to_rgb(rgb_to_yiq(x))
    assert back.dtype == dtype
    torch.testing.assert_close(back, x, atol=tol, rtol=0)
    yiq = rgb_to_yiq(x)
    torch.testing.assert_close(rgb_to_yiq(yiq_to_rgb(yiq)), yiq, atol=tol, rtol=0)


def test_y_of_a_grey_image_is_the_grey_value_and_chroma_is_zero():
    grey = random_images(2, 1, 8)
    for image in (grey, grey.expand(-1, 3, -1, -1)):
        yiq = rgb_to_yiq(image)
        torch.testing.assert_close(yiq[:, :1], grey, atol=1e-12, rtol=0)
        torch.testing.assert_close(yiq[:, 1:], torch.zeros_like(yiq[:, 1:]), atol=1e-12, rtol=0)


# ---------------------------------------------------------------- gradients and GMS


def ramp(height: int, width: int, slope_x: float, slope_y: float = 0.0) -> torch.Tensor:
    rows = torch.arange(height, dtype=torch.float64).view(-1, 1)
    cols = torch.arange(width, dtype=torch.float64).view(1, -1)
    return (slope_x * cols + slope_y * rows).view(1, 1, height, width)


@pytest.mark.parametrize("operator", ["sobel", "prewitt"])
def test_gradient_magnitude_of_a_ramp_is_twice_its_per_pixel_slope(operator):
    """Sobel/4 and Prewitt/3 both respond 2 s to a ramp rising s per pixel (un-halved central
    difference); edge columns see a one-sided difference under replicate padding."""
    m = gradient_magnitude(ramp(6, 9, 0.03), operator)
    assert m.shape == (1, 1, 6, 9)
    torch.testing.assert_close(m[..., 1:-1], torch.full((1, 1, 6, 7), 0.06, dtype=torch.float64))
    torch.testing.assert_close(m[..., [0, -1]], torch.full((1, 1, 6, 2), 0.03, dtype=torch.float64))
    diagonal = gradient_magnitude(ramp(7, 7, 0.03, -0.04), operator)[..., 1:-1, 1:-1]
    torch.testing.assert_close(diagonal, torch.full_like(diagonal, 2 * 0.05))


def test_gradient_magnitude_of_a_flat_image_is_zero():
    # float32 convolution round-off leaves ~1e-8 for some grey levels
    assert gradient_magnitude(torch.full((2, 1, 5, 5), 0.4)).abs().max() < 1e-6


def test_sobel_and_prewitt_differ_off_ramps():
    y = random_images(1, 1, 8)
    assert not torch.allclose(gradient_magnitude(y, "sobel"), gradient_magnitude(y, "prewitt"))
    with pytest.raises(ValueError, match="operator"):
        gradient_magnitude(y, "roberts")


def test_gms_of_an_image_with_itself_is_one_everywhere():
    x = random_images(2, 3, 12)
    for operator in ("sobel", "prewitt"):
        g = gms_map(x, x.clone(), operator=operator)
        assert g.shape == (2, 1, 12, 12)
        torch.testing.assert_close(g, torch.ones_like(g), atol=1e-12, rtol=0)


def test_gms_of_two_ramps_matches_closed_form():
    s1, s2 = 0.02, 0.05  # per-pixel slopes; gradient magnitudes 2 s in the interior
    g = gms_map(ramp(5, 8, s1), ramp(5, 8, s2))[..., 1:-1]
    m1, m2 = 2 * s1, 2 * s2
    expected = (2 * m1 * m2 + C) / (m1**2 + m2**2 + C)
    torch.testing.assert_close(g, torch.full_like(g, expected))
    assert expected < 0.95


def test_gms_uses_the_y_channel():
    """Colour changes that keep Y (R <-> G shift of Y-neutral size) leave GMS at 1."""
    x = random_images(1, 3, 10) * 0.5
    y_neutral = x + 0.1 * torch.tensor([0.587, -0.299, 0.0], dtype=x.dtype).view(1, 3, 1, 1) * (
        torch.arange(10, dtype=x.dtype).view(1, 1, 1, 10) / 10
    )
    torch.testing.assert_close(gms_map(x, y_neutral), torch.ones(1, 1, 10, 10, dtype=x.dtype))


# ---------------------------------------------------------------- distances


def test_l1_closed_form():
    reference = torch.zeros(2, 3, 4, 4)
    distorted = reference.clone()
    distorted[0, :, :2] = 0.5  # half the pixels of image 0 off by 0.5
    distorted[1] = 0.2
    per_image = l1(reference, distorted, reduction="none")
    torch.testing.assert_close(per_image, torch.tensor([0.25, 0.2]))
    torch.testing.assert_close(l1(reference, distorted), torch.tensor(0.225))


def test_chroma_distance_of_two_flat_colours_matches_closed_form():
    a, b = (0.8, 0.2, 0.1), (0.3, 0.6, 0.5)

    def iq(r, g, bl):
        return 0.596 * r - 0.274 * g - 0.322 * bl, 0.211 * r - 0.523 * g + 0.312 * bl

    def s(u, v):
        return (2 * u * v + C) / (u * u + v * v + C)

    (i_a, q_a), (i_b, q_b) = iq(*a), iq(*b)
    expected = 1 - s(i_a, i_b) * s(q_a, q_b)
    reference = torch.tensor(a, dtype=torch.float64).view(1, 3, 1, 1).expand(1, 3, 4, 5)
    distorted = torch.tensor(b, dtype=torch.float64).view(1, 3, 1, 1).expand(1, 3, 4, 5)
    assert chroma_distance(reference, distorted).item() == pytest.approx(expected, rel=1e-12)
    assert expected > 0.5


DISTANCES = {
    "l1": l1,
    "gmsm_sobel": gmsm_distance,
    "gmsm_prewitt": lambda r, d, **kw: gmsm_distance(r, d, operator="prewitt", **kw),
    "chroma": chroma_distance,
    "gmsd": gmsd,
}


@pytest.mark.parametrize("name", DISTANCES)
def test_distances_are_zero_for_identical_and_positive_for_distorted(name):
    distance = DISTANCES[name]
    x = smooth_images(3, 3, 16)
    same = distance(x, x.clone(), reduction="none")
    assert same.shape == (3,)
    torch.testing.assert_close(same, torch.zeros(3, dtype=x.dtype), atol=1e-12, rtol=0)
    changed = distance(x, distort(x), reduction="none")
    assert (changed > 1e-3).all(), changed
    assert distance(x, distort(x)).item() == pytest.approx(changed.mean().item(), rel=1e-12)


@pytest.mark.parametrize("name", ["l1", "gmsm_sobel", "gmsd"])
def test_grey_images_are_accepted(name):
    x = smooth_images(2, 1, 16)
    assert DISTANCES[name](x, x.clone()).item() == pytest.approx(0.0, abs=1e-12)
    assert DISTANCES[name](x, distort(x)).item() > 1e-3


def test_chroma_distance_of_grey_images_is_zero():
    x = smooth_images(2, 1, 8)
    assert chroma_distance(x, distort(x)).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("name", DISTANCES)
def test_distances_backpropagate_to_the_distorted_image(name):
    reference = smooth_images(2, 3, 16).float()
    distorted = distort(reference).detach().requires_grad_()
    DISTANCES[name](reference, distorted).backward()
    assert torch.isfinite(distorted.grad).all()
    assert distorted.grad.abs().sum() > 0


@pytest.mark.parametrize("name", DISTANCES)
def test_gradients_stay_finite_on_flat_and_identical_images(name):
    """sqrt at zero gradient magnitude and std at zero variance must not produce NaN."""
    flat = torch.full((2, 3, 8, 8), 0.5)  # exactly zero gradient magnitude in float32
    for reference in (flat, flat.double(), smooth_images(2, 3, 8).float()):
        distorted = reference.clone().requires_grad_()
        DISTANCES[name](reference, distorted).backward()
        assert torch.isfinite(distorted.grad).all(), name


def test_gmsd_matches_a_direct_transcription_of_the_reference_code():
    """Xue et al.'s MATLAB steps on 0..255 luminance with T = 170, written out loop by loop;
    odd sizes exercise the zero padding of the 2x2 average and of the Prewitt filter."""
    reference = random_images(2, 3, 11, seed=1)[..., :9]
    distorted = distort(reference) * 0.9 + 0.05

    def luminance(image):
        r, g, b = image.numpy() * 255.0
        return 0.299 * r + 0.587 * g + 0.114 * b

    def average_downsample(y):
        h, w = y.shape
        padded = np.zeros((h + 1, w + 1))
        padded[:h, :w] = y
        return np.array(
            [[padded[i : i + 2, j : j + 2].mean() for j in range(0, w, 2)] for i in range(0, h, 2)]
        )

    def prewitt_magnitude(y):
        h, w = y.shape
        padded = np.zeros((h + 2, w + 2))
        padded[1:-1, 1:-1] = y
        m = np.zeros_like(y)
        for i in range(h):
            for j in range(w):
                window = padded[i : i + 3, j : j + 3]
                gx = (window[:, 2] - window[:, 0]).sum() / 3
                gy = (window[2, :] - window[0, :]).sum() / 3
                m[i, j] = np.hypot(gx, gy)
        return m

    expected = []
    for r, d in zip(reference, distorted, strict=True):
        m_r = prewitt_magnitude(average_downsample(luminance(r)))
        m_d = prewitt_magnitude(average_downsample(luminance(d)))
        gms = (2 * m_r * m_d + 170) / (m_r**2 + m_d**2 + 170)
        expected.append(np.sqrt(np.mean((gms - gms.mean()) ** 2)))
    got = gmsd(reference, distorted, reduction="none").numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    assert min(expected) > 1e-3


def test_bad_shapes_and_reductions_raise():
    x = random_images(2, 3, 8)
    with pytest.raises(ValueError, match="shapes differ"):
        l1(x, x[:, :, :4])
    with pytest.raises(ValueError, match="channels"):
        gmsm_distance(x[:, :2], x[:, :2])
    with pytest.raises(ValueError, match="reduction"):
        chroma_distance(x, x, reduction="sum")
    with pytest.raises(ValueError, match="1 channels"):
        gradient_magnitude(x)
