"""SmoothGrad: the plain input gradient at sigma = 0, a linear classifier's closed form, and the
sheet layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from torch import nn
from torch.nn import functional as F

from evaluators.c2st import C2STClassifier
from evaluators.sheets import HEATMAP_COLORMAP
from evaluators.smoothgrad import smoothgrad, smoothgrad_sheet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def classifier_and_data(n: int = 6, channels: int = 3, size: int = 8):
    torch.manual_seed(0)
    model = C2STClassifier(channels, size, width=4)
    images = torch.rand(n, channels, size, size)
    labels = torch.arange(n) % 2
    return model, images, labels


def linear_model(pixels: int, scale: float) -> nn.Module:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(pixels, 2))
    with torch.no_grad():
        model[1].weight.mul_(scale)
    return model


def test_one_noiseless_sample_is_the_plain_input_gradient():
    model, images, labels = classifier_and_data()
    x = images.clone().requires_grad_(True)
    # Per-image gradients: the sum over images separates them.
    (plain,) = torch.autograd.grad(F.cross_entropy(model(x), labels, reduction="sum"), x)
    maps = smoothgrad(model, images, labels, samples=1, sigma=0.0)
    assert maps.shape == tuple(images.shape) and maps.dtype == np.float32
    np.testing.assert_allclose(maps, plain.numpy(), rtol=1e-5, atol=1e-7)
    assert np.abs(maps).max() > 0


def test_linear_classifier_map_matches_its_closed_form():
    """Logits W x + b: with a = w_1 - w_0 and d = a.x + b_1 - b_0, d CE / dx = -sigmoid(-d) a for
    label 1 and sigmoid(d) a for label 0. Under noise a.e ~ N(0, sigma^2 |a|^2), so SmoothGrad is
    a (constant direction) times E[sigmoid(-/+(d + sigma |a| Z))], a Gauss-Hermite integral."""
    pixels, sigma, samples = 16, 0.1, 4000
    model = linear_model(pixels, scale=1.0)
    a = torch.randn(pixels, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    a *= 20.0 / a.norm()  # sigma |a| = 2: strong smoothing
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([torch.zeros(pixels), a.float()]))
        model[1].bias.copy_(torch.tensor([0.0, float(2.0 - 0.5 * a.sum())]))  # d = 2 at grey 0.5
    a = model[1].weight.detach().double()[1]
    c = float(model[1].bias.detach().double()[1])
    jitter = torch.rand(4, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    images = 0.5 + 0.1 * (jitter - 0.5)
    labels = torch.tensor([1, 0, 1, 0])
    maps = smoothgrad(model, images, labels, samples=samples, sigma=sigma, batch_size=1000)
    flat = torch.as_tensor(maps).double().flatten(1)

    coefficient = flat @ a / (a @ a)
    residual = flat - coefficient[:, None] * a
    assert residual.abs().max() < 1e-5 * flat.abs().max()  # every map is parallel to a

    spread = sigma * float(a.norm())
    nodes, weights = np.polynomial.hermite.hermgauss(80)
    for i, label in enumerate(labels.tolist()):
        d = float(images[i].double().flatten() @ a) + c
        sign = -1.0 if label == 1 else 1.0
        values = 1.0 / (1.0 + np.exp(-sign * (d + np.sqrt(2.0) * spread * nodes)))
        expected = sign * (weights @ values) / np.sqrt(np.pi)
        unsmoothed = sign / (1.0 + np.exp(-sign * d))
        # Monte Carlo error of a mean of 4000 values on (0, 1): std <= 0.5 / sqrt(4000) = 0.008.
        assert float(coefficient[i]) == pytest.approx(expected, abs=0.03)
        assert abs(expected - unsmoothed) > 0.08  # so a missing or mis-scaled noise would fail


def test_linear_classifier_without_noise_has_the_exact_gradient():
    model = linear_model(16, scale=1.0)
    weight, bias = model[1].weight.detach(), model[1].bias.detach()
    images = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    labels = torch.tensor([0, 1, 1])
    maps = torch.as_tensor(smoothgrad(model, images, labels, samples=5, sigma=0.0)).flatten(1)
    probabilities = torch.softmax(images.flatten(1) @ weight.T + bias, dim=1)
    expected = (probabilities - F.one_hot(labels, 2)) @ weight
    np.testing.assert_allclose(maps.numpy(), expected.numpy(), rtol=1e-5, atol=1e-7)


def test_maps_do_not_depend_on_batch_size_but_do_on_seed():
    model, images, labels = classifier_and_data(n=5)
    reference = smoothgrad(model, images, labels, samples=12, batch_size=50)
    np.testing.assert_allclose(
        smoothgrad(model, images, labels, samples=12, batch_size=7), reference, rtol=1e-5, atol=1e-8
    )
    np.testing.assert_array_equal(smoothgrad(model, images, labels, samples=12), reference)
    assert not np.allclose(smoothgrad(model, images, labels, samples=12, seed=1), reference)


def test_model_mode_and_parameter_grads_are_left_alone():
    model, images, labels = classifier_and_data(n=2)
    model.train()
    smoothgrad(model, images.numpy(), labels.numpy(), samples=2)
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def test_label_shape_is_checked():
    model, images, _ = classifier_and_data(n=3)
    with pytest.raises(ValueError, match="labels"):
        smoothgrad(model, images, torch.zeros(2, dtype=torch.long))


def test_sheet_puts_each_image_above_its_heatmap():
    n, columns, size = 5, 3, 6
    images = torch.stack([torch.full((1, size, size), i / 10) for i in range(n)])
    maps = torch.zeros(n, 1, size, size)
    for i in range(n):
        maps[i, 0, i, i] = -2.0  # sign is dropped: |map|
    sheet = smoothgrad_sheet(images, maps, columns=columns)
    step = size + 2
    assert sheet.shape == (2 * 2 * step + 2, columns * step + 2, 3)  # 2 row pairs of 3 columns
    low = np.rint(np.asarray(colormaps[HEATMAP_COLORMAP](0.0)[:3]) * 255)
    high = np.rint(np.asarray(colormaps[HEATMAP_COLORMAP](1.0)[:3]) * 255)
    for i in range(n):
        top, left = (i // columns) * 2 * step + 2, (i % columns) * step + 2
        assert (sheet[top : top + size, left : left + size] == round(255 * i / 10)).all()
        heat = sheet[top + step : top + step + size, left : left + size]
        np.testing.assert_array_equal(heat[i, i], high)
        np.testing.assert_array_equal(heat[(i + 1) % size, i], low)
    top = left = 2 * step + 2  # sixth cell of the second pair of rows: blank image and heatmap
    assert (sheet[top : top + 2 * step - 2, left : left + size] == 255).all()


def test_sheet_takes_max_over_channels_and_checks_shapes():
    images = torch.rand(2, 3, 4, 4)
    maps = torch.zeros(2, 3, 4, 4)
    maps[0, 2, 1, 1] = 5.0
    maps[0, 0, 1, 1] = 1.0
    maps[0, 1, 3, 3] = 2.5  # half of the maximum over channels
    sheet = smoothgrad_sheet(images, maps)
    heat = sheet[4 + 2 + 2 : 4 + 2 + 2 + 4, 2 : 2 + 4]
    np.testing.assert_array_equal(
        heat[3, 3], np.rint(np.asarray(colormaps[HEATMAP_COLORMAP](0.5)[:3]) * 255)
    )
    with pytest.raises(ValueError, match="shape"):
        smoothgrad_sheet(images, maps[:, :1])


def test_works_inside_no_grad():
    model, images, labels = classifier_and_data(n=2)
    reference = smoothgrad(model, images, labels, samples=3)
    with torch.no_grad():
        np.testing.assert_array_equal(smoothgrad(model, images, labels, samples=3), reference)
