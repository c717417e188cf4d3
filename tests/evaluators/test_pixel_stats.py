"""Sharpness and colour-histogram KL: ramps, flat images and hand-computed histograms."""

from __future__ import annotations

import numpy as np
import pytest

from evaluators.pixel_stats import SharpnessResult, color_kl, sharpness


def ramp(slope_x: float, slope_y: float = 0.0, height: int = 12, width: int = 20) -> np.ndarray:
    """(H, W) grey levels on 0..255 rising by slope_x per column and slope_y per row."""
    rows = np.arange(height).reshape(-1, 1)
    cols = np.arange(width).reshape(1, -1)
    return 10.0 + slope_x * cols + slope_y * rows


# ---------------------------------------------------------------- sharpness


def test_sharpness_of_a_uint8_ramp_is_its_slope():
    image = ramp(3.0).astype(np.uint8)[None, None]
    result = sharpness(image)
    assert isinstance(result, SharpnessResult)
    np.testing.assert_allclose(result.per_image, [3.0])
    assert result.mean == pytest.approx(3.0) and result.std == 0.0


def test_sharpness_of_a_diagonal_ramp_is_the_length_of_its_gradient():
    image = ramp(3.0, 4.0).astype(np.uint8)[None, None]
    assert sharpness(image).mean == pytest.approx(5.0)


def test_float_images_are_scaled_to_0_255_and_rgb_goes_through_grey():
    grey = ramp(6.0, height=8, width=30) / 255.0
    rgb = np.stack([grey, grey, grey])[None]  # R = G = B, so grey = the same ramp
    assert sharpness(rgb).mean == pytest.approx(6.0, rel=1e-12)
    # a pure red ramp is seen through the 0.299 red weight
    red = np.stack([grey, np.zeros_like(grey), np.zeros_like(grey)])[None]
    assert sharpness(red).mean == pytest.approx(0.299 * 6.0, rel=1e-12)


def test_sharpness_ignores_borders_and_is_zero_for_flat_images():
    flat = np.full((2, 3, 9, 9), 0.4)
    assert sharpness(flat).mean == 0.0
    framed = np.full((1, 1, 9, 9), 100, dtype=np.uint8)
    framed[..., 0, :] = framed[..., -1, :] = 0  # a jump between border rows and the next ones
    # interior rows 1 and 7 see (100 - 0) / 2 vertically, over 7 of the 49 interior pixels each
    assert sharpness(framed).mean == pytest.approx(2 * 7 * 50.0 / 49)


def test_sharpness_mean_and_population_std_over_the_set():
    images = np.stack([ramp(2.0), ramp(4.0)]).astype(np.uint8)[:, None]
    result = sharpness(images)
    np.testing.assert_allclose(result.per_image, [2.0, 4.0])
    assert result.mean == pytest.approx(3.0) and result.std == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, 3, 8)), "shape"),
        (np.zeros((2, 2, 8, 8)), "shape"),
        (np.full((1, 1, 8, 8), 1.5), r"\[0, 1\]"),
        (np.zeros((1, 1, 8, 8), dtype=np.int32), "uint8"),
        (np.zeros((1, 1, 2, 8)), "H, W >= 3"),
    ],
)
def test_sharpness_rejects_bad_inputs(images, message):
    with pytest.raises(ValueError, match=message):
        sharpness(images)


# ---------------------------------------------------------------- colour KL


def kl_with_eps(p_mass: dict[int, float], q_mass: dict[int, float], bins=25, eps=1e-10) -> float:
    """KL of two sparse histograms {bin: probability} after the eps smoothing."""
    p, q = np.zeros(bins), np.zeros(bins)
    for k, v in p_mass.items():
        p[k] = v
    for k, v in q_mass.items():
        q[k] = v
    p, q = (p + eps) / (1 + bins * eps), (q + eps) / (1 + bins * eps)
    return float(np.sum(p * np.log(p / q)))


def two_colour_set(count_a: int, count_b: int) -> np.ndarray:
    """One 1 x n RGB uint8 image: count_a red (255, 0, 0) pixels, count_b teal (0, 128, 255)."""
    pixels = [(255, 0, 0)] * count_a + [(0, 128, 255)] * count_b
    return np.array(pixels, dtype=np.uint8).T.reshape(1, 3, 1, -1)


def test_color_kl_of_a_two_colour_example_matches_hand_computation():
    real, generated = two_colour_set(3, 1), two_colour_set(1, 3)
    # bins of width 1/25: red R = 1 -> bin 24, teal R = 0 -> bin 0; G: 0 -> bin 0, 128/255 = 0.502
    # -> bin 12; B: 0 -> bin 0, 1 -> bin 24; grey: red 0.299 -> bin 7,
    # teal 0.587 * 128/255 + 0.114 = 0.4087 -> bin 10
    expected = {
        "r": kl_with_eps({24: 0.75, 0: 0.25}, {24: 0.25, 0: 0.75}),
        "g": kl_with_eps({0: 0.75, 12: 0.25}, {0: 0.25, 12: 0.75}),
        "b": kl_with_eps({0: 0.75, 24: 0.25}, {0: 0.25, 24: 0.75}),
        "grey": kl_with_eps({7: 0.75, 10: 0.25}, {7: 0.25, 10: 0.75}),
    }
    # without smoothing each is 0.75 log 3 + 0.25 log(1/3) = 0.5 log 3
    assert expected["r"] == pytest.approx(0.5 * np.log(3), rel=1e-8)
    got = color_kl(real, generated)
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key] == pytest.approx(expected[key], rel=1e-12), key


def test_color_kl_is_zero_for_identical_sets_and_positive_for_different():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (20, 3, 8, 8), dtype=np.uint8)
    assert color_kl(real, real.copy()) == {"r": 0.0, "g": 0.0, "b": 0.0, "grey": 0.0}
    darker = (real // 2).astype(np.uint8)
    result = color_kl(real, darker)
    assert all(np.isfinite(v) and v > 0.1 for v in result.values()), result


def test_color_kl_is_finite_when_generated_bins_are_empty():
    real = np.linspace(0, 1, 100).reshape(1, 1, 10, 10)  # every bin occupied
    generated = np.zeros((1, 1, 10, 10))  # only bin 0
    value = color_kl(real, generated)["grey"]
    assert np.isfinite(value) and value > 10  # ~ log(0.04 / 1e-10) mass-weighted


def test_color_kl_uint8_and_float_inputs_agree_and_grey_sets_give_only_grey():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (5, 1, 6, 6), dtype=np.uint8)
    b = rng.integers(0, 200, (7, 1, 6, 6), dtype=np.uint8)
    as_uint8 = color_kl(a, b)
    assert as_uint8.keys() == {"grey"}
    assert color_kl(a / 255.0, b / 255.0) == pytest.approx(as_uint8, rel=1e-12)
    assert as_uint8["grey"] > 0


def test_color_kl_is_not_symmetric_and_rejects_mixed_channels():
    real, generated = two_colour_set(3, 1), two_colour_set(2, 2)
    assert color_kl(real, generated)["r"] != pytest.approx(color_kl(generated, real)["r"])
    with pytest.raises(ValueError, match="channel counts differ"):
        color_kl(real, np.zeros((1, 1, 1, 4), dtype=np.uint8))
