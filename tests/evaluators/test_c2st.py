"""C2ST: architecture, exact binomial p-value, chance level under H0, detection under H1."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
import torch
from torch import nn

from evaluators.c2st import (
    GENERATED_LABEL,
    REAL_LABEL,
    C2STClassifier,
    binomial_p_value,
    c2st,
    c2st_features,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def noise_images(n: int, low: float, high: float, seed: int, size: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, (n, 1, size, size)).astype(np.float32)


@pytest.fixture(scope="module")
def same_distribution():
    return c2st(noise_images(200, 0, 1, seed=1), noise_images(200, 0, 1, seed=2), seed=0)


@pytest.fixture(scope="module")
def separable():
    # Dark vs bright noise: real (bright) is class 1, generated (dark) class 0.
    return c2st(noise_images(200, 0.55, 1, seed=3), noise_images(200, 0, 0.45, seed=4), seed=0)


@pytest.mark.parametrize(("size", "convs", "side"), [(16, 2, 4), (28, 3, 4), (32, 3, 4), (4, 1, 2)])
def test_classifier_is_stride_2_3x3_convs_down_to_4x4_and_two_logits(size, convs, side):
    model = C2STClassifier(in_channels=3, image_size=size, width=8)
    conv_layers = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    activations = [m for m in model.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(conv_layers) == len(activations) == convs
    for i, conv in enumerate(conv_layers):
        assert conv.kernel_size == (3, 3) and conv.stride == (2, 2) and conv.padding == (1, 1)
        assert conv.out_channels == 8 * 2**i
    assert all(a.negative_slope == 0.2 for a in activations)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1 and linears[0].out_features == 2
    assert linears[0].in_features == 8 * 2 ** (convs - 1) * side * side
    assert model(torch.rand(5, 3, size, size)).shape == (5, 2)


def test_classifier_handles_non_square_images():
    model = C2STClassifier(1, (28, 12), width=4)
    assert model(torch.rand(2, 1, 28, 12)).shape == (2, 2)


@pytest.mark.parametrize("n", [1, 7, 10])
def test_p_value_is_the_binomial_upper_tail(n):
    for k in range(n + 1):
        brute = sum(comb(n, i) for i in range(k, n + 1)) / 2**n
        assert binomial_p_value(k, n) == pytest.approx(brute, rel=1e-12)
    assert binomial_p_value(n, n) == pytest.approx(0.5**n)
    assert binomial_p_value(0, n) == pytest.approx(1.0)


def assert_at_chance(results: list, budget: int) -> None:
    """Under the null hypothesis the test rejects at level 0.05 in at most 5% of draws (the
    exact binomial tail is conservative), so over the seeds at most ``budget`` p-values may fall
    below 0.05 (``budget`` is set so that a correct test exceeds it with probability < 0.3%),
    and the mean accuracy stays at 0.5 within ~4 of its standard errors."""
    rejections = sum(r.p_value < 0.05 for r in results)
    assert rejections <= budget, [round(r.p_value, 3) for r in results]
    spread = 0.5 / np.sqrt(results[0].n_test * len(results))  # s.e. of the mean accuracy
    assert abs(np.mean([r.accuracy for r in results]) - 0.5) < 4 * spread + 0.01


def test_two_samples_of_one_distribution_are_at_chance(same_distribution):
    assert same_distribution.n_test == 100 and same_distribution.n_per_set == 200
    results = [
        c2st(
            noise_images(200, 0, 1, seed=2 * s + 100),
            noise_images(200, 0, 1, seed=2 * s + 101),
            seed=s,
        )
        for s in range(12)
    ]
    assert_at_chance(results, budget=3)  # P(X >= 4) = 0.2% for X ~ Bin(12, 0.05)


def test_separable_samples_are_detected(separable):
    assert separable.accuracy >= 0.95
    assert separable.accuracy_real >= 0.9 and separable.accuracy_generated >= 0.9
    assert separable.p_value < 1e-6


@pytest.mark.parametrize("name", ["same_distribution", "separable"])
def test_result_is_consistent_with_its_model_and_test_split(name, request):
    result = request.getfixturevalue(name)
    labels = result.test_labels
    assert (labels == REAL_LABEL).sum() == (labels == GENERATED_LABEL).sum() == result.n_test // 2
    # Balanced test split: the overall accuracy is the mean of the per-class accuracies.
    mean_of_classes = (result.accuracy_real + result.accuracy_generated) / 2
    assert result.accuracy == pytest.approx(mean_of_classes, abs=1e-6)
    with torch.no_grad():
        predicted = result.model(result.test_inputs).argmax(1)
    correct = predicted == labels
    assert correct.float().mean().item() == pytest.approx(result.accuracy)
    assert correct[labels == REAL_LABEL].float().mean().item() == pytest.approx(
        result.accuracy_real
    )
    k = int(correct.sum())
    assert result.p_value == pytest.approx(binomial_p_value(k, result.n_test), rel=1e-12)
    assert 1 <= result.best_epoch <= result.epochs <= 20
    if result.epochs < 20:  # stopped early: exactly `patience` epochs after the best one
        assert result.epochs == result.best_epoch + 3


def test_early_stopping_keeps_the_best_epochs_weights(same_distribution):
    """Training is a deterministic function of the seed, so a run capped at the best epoch ends
    with exactly the weights the early-stopped run must have restored."""
    assert same_distribution.epochs > same_distribution.best_epoch  # it did train past the best
    capped = c2st(
        noise_images(200, 0, 1, seed=1),
        noise_images(200, 0, 1, seed=2),
        seed=0,
        max_epochs=same_distribution.best_epoch,
    )
    assert capped.best_epoch == capped.epochs == same_distribution.best_epoch
    for a, b in zip(capped.model.parameters(), same_distribution.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert capped.accuracy == same_distribution.accuracy


def test_small_case_p_value_matches_brute_force_tail():
    real, generated = noise_images(16, 0.5, 1, seed=5), noise_images(20, 0, 0.5, seed=6)
    result = c2st(real, generated, seed=0, max_epochs=3)
    assert result.n_per_set == 16 and result.n_test == 8  # balanced: min(16, 20) per set
    k = round(result.accuracy * 8)
    assert result.p_value == pytest.approx(sum(comb(8, i) for i in range(k, 9)) / 2**8)


def test_unbalanced_sets_are_subsampled_to_the_smaller_one():
    result = c2st(noise_images(60, 0, 1, 7), noise_images(40, 0, 1, 8), seed=0, max_epochs=2)
    assert result.n_per_set == 40 and result.n_test == 20
    assert (result.test_labels == REAL_LABEL).sum() == 10


def test_seeded_runs_repeat_and_leave_the_global_rng_alone():
    real, generated = noise_images(40, 0, 1, 9), noise_images(40, 0.2, 1, 10)
    state = torch.random.get_rng_state()
    first = c2st(real, generated, seed=3, max_epochs=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = c2st(real, generated, seed=3, max_epochs=2)
    assert first == second  # all reported numbers
    for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_uint8_images_give_the_same_result_as_floats():
    rng = np.random.default_rng(11)
    raw_real = rng.integers(0, 256, (24, 1, 8, 8), dtype=np.uint8)
    raw_gen = rng.integers(0, 256, (24, 1, 8, 8), dtype=np.uint8)
    as_uint8 = c2st(raw_real, raw_gen, seed=0, max_epochs=2)
    as_float = c2st(raw_real / 255.0, raw_gen / 255.0, seed=0, max_epochs=2)
    assert as_uint8 == as_float


def test_too_few_samples_and_shape_mismatches_are_clear_errors():
    with pytest.raises(ValueError, match="at least 8 samples per set"):
        c2st(noise_images(7, 0, 1, 0), noise_images(50, 0, 1, 1))
    with pytest.raises(ValueError, match="differ in shape"):
        c2st(noise_images(20, 0, 1, 0), noise_images(20, 0, 1, 1, size=8))
    with pytest.raises(ValueError, match="test_fraction"):
        c2st(
            noise_images(20, 0, 1, 0),
            noise_images(20, 0, 1, 1),
            test_fraction=0.6,
            val_fraction=0.5,
        )


def test_feature_c2st_detects_a_mean_shift_and_not_its_absence():
    rng = np.random.default_rng(12)
    real = rng.standard_normal((400, 8))
    shifted = rng.standard_normal((400, 8)) + 0.5  # Bayes accuracy Phi(0.5 * sqrt(8) / 2) = 0.76
    detected = c2st_features(real, shifted, seed=0)
    assert detected.n_test == 200
    assert detected.accuracy > 0.65 and detected.p_value < 1e-4
    nulls = []
    for s in range(20):
        draws = np.random.default_rng(100 + s)
        nulls.append(
            c2st_features(draws.standard_normal((400, 8)), draws.standard_normal((400, 8)), seed=s)
        )
    assert_at_chance(nulls, budget=4)  # P(X >= 5) = 0.26% for X ~ Bin(20, 0.05)
    logistic = c2st_features(real, shifted, seed=0, hidden=0)
    assert logistic.accuracy > 0.65 and logistic.p_value < 1e-4
    assert len(list(logistic.model.parameters())) == 2  # one Linear(D, 2)


def test_feature_c2st_input_errors():
    with pytest.raises(ValueError, match="feature dimensions differ"):
        c2st_features(np.zeros((20, 3)), np.zeros((20, 4)))
    with pytest.raises(ValueError, match="at least 8"):
        c2st_features(np.zeros((5, 3)), np.zeros((20, 3)))
