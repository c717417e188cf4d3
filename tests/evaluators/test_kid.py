"""KID: unbiased MMD^2 with k(x, y) = (x.y/d + 1)^3, against brute force and closed forms."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from evaluators.kid import kid


def brute_force_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased estimator written out pair by pair."""
    m, d = x.shape

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2))
    xy = sum(k(x[i], y[j]) for i, j in itertools.product(range(m), repeat=2))
    return (xx + yy) / (m * (m - 1)) - 2.0 * xy / (m * m)


def test_hand_computed_one_dimensional_case():
    # d = 1, k(a, b) = (ab + 1)^3: XX pair k(0,1) = 1, YY pair k(2,3) = 343,
    # XY k(0,2) = k(0,3) = 1, k(1,2) = 27, k(1,3) = 64 -> 1 + 343 - 2 * 93 / 4 = 297.5
    result = kid(np.array([[0.0], [1.0]]), np.array([[2.0], [3.0]]), subsets=3)
    assert result.mean == pytest.approx(297.5, rel=1e-12)
    assert math.isnan(result.std)  # one estimate: no spread to tell


def test_full_set_subsets_equal_brute_force_estimator():
    """With subset_size >= n every subset is a permutation of the whole set, and MMD^2_u does not
    depend on order: each estimate, hence the mean, is the brute-force value, and std is NaN (a
    single estimate has no spread)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 3))
    y = rng.standard_normal((6, 3)) * 1.5 + 0.3
    result = kid(x, y, subsets=5, subset_size=50)
    assert (result.subsets, result.subset_size) == (5, 6)
    assert result.mean == pytest.approx(brute_force_mmd2(x, y), rel=1e-10)
    assert math.isnan(result.std)


def test_subset_size_is_capped_by_the_smaller_set_and_subsets_vary():
    rng = np.random.default_rng(4)
    result = kid(
        rng.standard_normal((30, 4)), rng.standard_normal((12, 4)), subsets=20, subset_size=1000
    )
    assert result.subset_size == 12 and result.subsets == 20
    assert result.std > 0  # different real subsets give different estimates


def test_seed_makes_it_reproducible():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((40, 4)), rng.standard_normal((40, 4))
    a = kid(x, y, subsets=10, subset_size=10, seed=1)
    assert a == kid(x, y, subsets=10, subset_size=10, seed=1)
    assert a != kid(x, y, subsets=10, subset_size=10, seed=2)


def test_zero_in_expectation_for_one_distribution():
    """Average of many independent small-sample estimates. The plug-in (biased) estimator would
    be off by about 2 (E k(x,x) - E k(x,y)) / m ~ 0.8 here, dozens of standard errors."""
    rng = np.random.default_rng(6)
    estimates = np.array(
        [
            kid(rng.standard_normal((20, 4)), rng.standard_normal((20, 4)), subsets=1).mean
            for _ in range(400)
        ]
    )
    standard_error = estimates.std() / np.sqrt(len(estimates))
    assert abs(estimates.mean()) < 4 * standard_error


def test_one_distribution_mean_over_subsets_is_within_its_spread():
    rng = np.random.default_rng(7)
    result = kid(
        rng.standard_normal((500, 8)), rng.standard_normal((500, 8)), subsets=30, subset_size=100
    )
    assert abs(result.mean) < 3 * result.std


def test_clearly_positive_for_shifted_distributions():
    rng = np.random.default_rng(8)
    result = kid(
        rng.standard_normal((500, 8)),
        rng.standard_normal((500, 8)) + 0.5,
        subsets=30,
        subset_size=100,
    )
    assert result.mean > 0.1
    assert result.mean > 4 * result.std


@pytest.mark.parametrize(
    ("real", "generated", "message"),
    [
        (np.zeros((1, 3)), np.zeros((5, 3)), "at least 2 samples"),
        (np.zeros((5, 3)), np.zeros((1, 3)), "at least 2 samples"),
        (np.zeros((5, 3)), np.zeros((5, 4)), "dimensions differ"),
        (np.zeros(5), np.zeros((5, 1)), r"shape \(N, d\)"),
        (np.full((5, 3), np.nan), np.zeros((5, 3)), "NaN"),
    ],
)
def test_bad_inputs_raise(real, generated, message):
    with pytest.raises(ValueError, match=message):
        kid(real, generated)
