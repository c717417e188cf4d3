"""FID_inf and IS_inf: the c/N fit, and extrapolation against scores known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from evaluators.classifier_scores import inception_score
from evaluators.fid import feature_statistics, fid_against_statistics
from evaluators.fid_inf import (
    Extrapolation,
    fid_inf,
    fit_inverse_n,
    inception_score_inf,
    subset_sizes,
)


def test_fit_recovers_an_exact_line_in_one_over_n():
    sizes = np.array([100, 200, 400, 1000])
    value, slope, r2 = fit_inverse_n(sizes, 3.0 + 50.0 / sizes)
    assert (value, slope, r2) == pytest.approx((3.0, 50.0, 1.0), rel=1e-12)


def test_fit_r2_measures_the_residuals():
    """Scores 1, 3, 1, 3 at 1/N = 1, 2, 3, 4: the best line is 1 + 0.4 x, with
    SS_res = 3.2 and SS_tot = 4, so R^2 = 0.2."""
    value, slope, r2 = fit_inverse_n(
        np.array([1.0, 1 / 2, 1 / 3, 1 / 4]), np.array([1.0, 3.0, 1.0, 3.0])
    )
    assert slope == pytest.approx(0.4)
    assert value == pytest.approx(2.0 - 0.4 * 2.5)
    assert r2 == pytest.approx(0.2)
    assert fit_inverse_n(np.array([10, 20]), np.array([5.0, 5.0]))[2] == 1.0


def test_subset_sizes_span_a_fifth_to_all():
    sizes = subset_sizes(1000)
    assert len(sizes) == 15 and sizes[0] == 200 and sizes[-1] == 1000
    assert (np.diff(sizes) > 0).all()
    assert list(subset_sizes(6, points=15)) == [2, 3, 4, 5, 6]  # duplicates dropped, floor 2
    with pytest.raises(ValueError, match="too few"):
        subset_sizes(2)


def test_fid_inf_is_closer_to_the_true_distance_than_fid_at_full_n():
    """Reference N(0, I) given by its exact statistics, generated N(mu, I) with ||mu||^2 = 4 in
    D = 64: the true FID is 4. FID at N = 1,000 is biased upward by about D^2/(4N) ~ 1 (the
    sample covariance's eigenvalues spread, so Tr S - 2 Tr S^(1/2) + D > 0) while its spread
    over draws is ~ 2||mu||/sqrt(N) ~ 0.06; FID_inf removes the c/N part."""
    d = 64
    mu_r, sigma_r = np.zeros(d), np.eye(d)
    shift = np.zeros(d)
    shift[:4] = 1.0
    for seed in range(5):
        generated = np.random.default_rng(seed).standard_normal((1000, d)) + shift
        result = fid_inf(mu_r, sigma_r, generated, seed=seed)
        fid_full = fid_against_statistics(mu_r, sigma_r, generated)
        assert result.scores[-1] == pytest.approx(fid_full, rel=1e-12)  # largest N: all rows
        assert fid_full - 4.0 > 0.5
        assert abs(result.value - 4.0) < 0.5 * abs(fid_full - 4.0)
        assert result.slope > 0 and result.r2 > 0.9


def test_fid_inf_uses_seeded_subsets_and_reports_them():
    rng = np.random.default_rng(6)
    mu_r, sigma_r = feature_statistics(rng.standard_normal((300, 8)))
    generated = rng.standard_normal((100, 8)) + 0.5
    result = fid_inf(mu_r, sigma_r, generated, points=5, seed=3)
    assert result == fid_inf(mu_r, sigma_r, generated, points=5, seed=3)
    assert result != fid_inf(mu_r, sigma_r, generated, points=5, seed=4)
    assert result.sizes == (20, 40, 60, 80, 100)
    draws = np.random.default_rng(3)
    for size, score in zip(result.sizes, result.scores, strict=True):
        rows = draws.choice(100, size=size, replace=False)
        assert score == fid_against_statistics(mu_r, sigma_r, generated[rows])
    value, slope, r2 = fit_inverse_n(np.array(result.sizes), np.array(result.scores))
    assert result == Extrapolation(value, slope, r2, result.sizes, result.scores)


def test_fid_inf_with_fewer_samples_than_dimensions():
    """Every subset is below D (the N x N route). The bias is then far from linear in 1/N
    (about D^2/(4N) ~ 80 here against a true FID of 2.56), so the fit removes only part of it,
    but it still moves the right way."""
    rng = np.random.default_rng(7)
    mu_r, sigma_r = np.zeros(256), np.eye(256)
    generated = rng.standard_normal((200, 256)) + 0.1
    result = fid_inf(mu_r, sigma_r, generated)
    assert result.scores[-1] == pytest.approx(
        fid_against_statistics(mu_r, sigma_r, generated), rel=1e-12
    )
    assert 2.56 < result.value < result.scores[-1]
    assert result.slope > 0


def test_is_inf_is_closer_to_the_class_count_than_is_at_full_n():
    """One-hot predictions with labels uniform over K = 100 classes: IS = exp(H(p(y))), whose
    limit is K = 100. The plug-in entropy of N labels is low by about (K - 1)/(2N), so IS at
    N = 2,000 is about 100 exp(-0.025) ~ 97.5; IS_inf removes that."""
    classes = 100
    for seed in range(5):
        labels = np.random.default_rng(seed).integers(0, classes, 2000)
        probabilities = np.eye(classes)[labels]
        result = inception_score_inf(probabilities, seed=seed)
        is_full = inception_score(probabilities, splits=1)[0]
        assert result.scores[-1] == pytest.approx(is_full, rel=1e-12)
        assert classes - is_full > 1.0
        assert abs(result.value - classes) < 0.5 * abs(is_full - classes)
        assert result.slope < 0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="shape"):
        fid_inf(np.zeros(3), np.eye(3), np.zeros(30))
    with pytest.raises(ValueError, match="dimension"):
        fid_inf(np.zeros(3), np.eye(3), np.zeros((30, 4)))
    with pytest.raises(ValueError, match="points"):
        inception_score_inf(np.full((30, 2), 0.5), points=1)
