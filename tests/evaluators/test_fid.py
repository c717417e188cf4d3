"""FID: ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)) checked against closed forms."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from evaluators.fid import (
    feature_statistics,
    fid_against_statistics,
    fid_from_features,
    frechet_distance,
)


def random_orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def test_statistics_are_the_mean_and_unbiased_covariance():
    x = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])
    mu, sigma = feature_statistics(x)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, [2.0, 4.0])
    # ddof=1: var([0,2,4]) = 8/2, var([1,3,8]) = 26/2, cov = (-2*-3 + 0 + 2*4)/2
    np.testing.assert_allclose(sigma, [[4.0, 7.0], [7.0, 13.0]])


def test_fid_of_identical_feature_sets_is_zero():
    x = np.random.default_rng(0).standard_normal((500, 16)) * 3.0 + 1.0
    assert fid_from_features(x, x) == pytest.approx(0.0, abs=1e-8)


def test_fid_is_symmetric():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((300, 8))
    b = rng.standard_normal((200, 8)) @ rng.standard_normal((8, 8)) + 0.5
    assert fid_from_features(a, b) == pytest.approx(fid_from_features(b, a), rel=1e-10)


def test_pure_mean_shift_gives_squared_distance_of_means():
    sigma = np.diag([1.0, 2.0, 3.0])
    mu_r, mu_g = np.array([0.0, 1.0, 2.0]), np.array([3.0, -1.0, 2.0])
    assert frechet_distance(mu_r, sigma, mu_g, sigma) == pytest.approx(9.0 + 4.0, abs=1e-10)


def test_diagonal_gaussians_match_closed_form():
    """For diagonal S_r = diag(a), S_g = diag(b) the trace term is sum((sqrt(a) - sqrt(b))^2)."""
    a, b = np.array([1.0, 4.0, 9.0, 0.25]), np.array([4.0, 1.0, 9.0, 2.0])
    mu_r, mu_g = np.array([1.0, 0.0, -1.0, 2.0]), np.array([0.0, 0.0, 1.0, 2.0])
    expected = np.sum((mu_r - mu_g) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert expected == pytest.approx(5.0 + 1.0 + 1.0 + 0.0 + (np.sqrt(2) - 0.5) ** 2)
    got = frechet_distance(mu_r, np.diag(a), mu_g, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-12)


def test_commuting_non_diagonal_covariances_match_closed_form():
    """S_i = U diag(l_i) U^T share eigenvectors, so (S_1 S_2)^(1/2) = U diag(sqrt(l_1 l_2)) U^T
    and the trace term is sum((sqrt(l_1) - sqrt(l_2))^2)."""
    rng = np.random.default_rng(2)
    d = 6
    u = random_orthogonal(d, rng)
    l1, l2 = rng.uniform(0.1, 5.0, d), rng.uniform(0.1, 5.0, d)
    s1, s2 = u @ np.diag(l1) @ u.T, u @ np.diag(l2) @ u.T
    assert np.abs(s1 - np.diag(np.diag(s1))).max() > 0.1  # genuinely non-diagonal
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(l1) - np.sqrt(l2)) ** 2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_non_commuting_covariances_match_symmetric_square_root_form():
    """Tr((S_1 S_2)^(1/2)) = Tr((S_1^(1/2) S_2 S_1^(1/2))^(1/2)), computed by two eigh calls."""
    rng = np.random.default_rng(3)
    d = 5
    a, b = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    s1, s2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    w, v = np.linalg.eigh(s1)
    root1 = v @ np.diag(np.sqrt(w)) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    expected = np.trace(s1) + np.trace(s2) - 2.0 * np.sqrt(inner).sum()
    got = frechet_distance(np.zeros(d), s1, np.zeros(d), s2)
    assert got == pytest.approx(expected, rel=1e-9)


def test_large_samples_approach_the_analytic_fid():
    """200k draws per side: the estimate's spread is ~2||dmu|| sqrt(lambda/N) + O(d/N) ~ 0.02,
    so a 0.15 absolute tolerance on an analytic value of ~8 is > 5 sigma."""
    rng = np.random.default_rng(4)
    d, n = 4, 200_000
    u = random_orthogonal(d, rng)
    l1, l2 = np.array([0.5, 1.0, 2.0, 3.0]), np.array([2.0, 0.5, 1.0, 4.0])
    s1, s2 = u @ np.diag(l1) @ u.T, u @ np.diag(l2) @ u.T
    m1, m2 = np.zeros(d), np.array([1.0, -1.0, 0.5, 2.0])
    analytic = frechet_distance(m1, s1, m2, s2)
    assert analytic == pytest.approx(
        np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(l1) - np.sqrt(l2)) ** 2), rel=1e-9
    )
    x = rng.multivariate_normal(m1, s1, size=n)
    y = rng.multivariate_normal(m2, s2, size=n)
    assert fid_from_features(x, y) == pytest.approx(analytic, abs=0.15)


def test_rank_deficient_covariances_give_finite_non_negative_fid():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((10, 84))
    b = rng.standard_normal((10, 84)) + 0.3
    assert np.linalg.matrix_rank(feature_statistics(a)[1]) == 9
    value = fid_from_features(a, b)
    assert np.isfinite(value) and value > 0.0


def test_rank_deficient_identical_sets_are_clamped_to_exactly_zero():
    """Round-off on the 75 zero eigenvalues of S S inflates the sqrt-trace (the unclamped
    value here is about -6e-4); the result is clamped at 0, never negative."""
    a = np.random.default_rng(6).standard_normal((10, 84)) * 10.0
    assert fid_from_features(a, a) == 0.0


def test_clamp_never_returns_negative_for_near_identical_inputs():
    rng = np.random.default_rng(7)
    for _ in range(20):
        a = rng.standard_normal((rng.integers(2, 20), 32))
        assert fid_from_features(a, a + 1e-12) >= 0.0


def test_mismatched_feature_dimensions_raise():
    rng = np.random.default_rng(8)
    with pytest.raises(ValueError, match="dimension"):
        fid_from_features(rng.standard_normal((20, 5)), rng.standard_normal((20, 6)))
    with pytest.raises(ValueError, match="dimension"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


@pytest.mark.parametrize("shape", [(1, 5), (0, 5), (5,)])
def test_fewer_than_two_vectors_raise(shape):
    with pytest.raises(ValueError, match="at least 2"):
        feature_statistics(np.zeros(shape))
    with pytest.raises(ValueError):
        fid_from_features(np.zeros(shape), np.ones((10, 5)))


def old_path(real: np.ndarray, generated: np.ndarray) -> float:
    """The D x D eigenvalue route, whatever the sample sizes."""
    return frechet_distance(*feature_statistics(real), *feature_statistics(generated))


def exact_fid(real: np.ndarray, generated: np.ndarray) -> float:
    """The definition evaluated with 60 significant digits (mpmath): the D - N zero eigenvalues
    of S_r S_g come out as ~1e-60 instead of float64 round-off."""
    with mpmath.workdps(60):
        stats = []
        for x in (real, generated):
            m = mpmath.matrix(x.tolist())
            n, d = m.rows, m.cols
            mu = [mpmath.fsum(m[i, j] for i in range(n)) / n for j in range(d)]
            centred = mpmath.matrix([[m[i, j] - mu[j] for j in range(d)] for i in range(n)])
            stats.append((mu, centred.T * centred / (n - 1)))
        (mu_r, s_r), (mu_g, s_g) = stats
        eigenvalues, _ = mpmath.eig(s_r * s_g)
        trace_sqrt = mpmath.fsum(mpmath.sqrt(max(mpmath.re(e), 0)) for e in eigenvalues)
        mean_term = mpmath.fsum((a - b) ** 2 for a, b in zip(mu_r, mu_g, strict=True))
        traces = mpmath.fsum(s_r[i, i] + s_g[i, i] for i in range(s_r.rows))
        return float(mean_term + traces - 2 * trace_sqrt)


def test_fewer_samples_than_dimensions_matches_high_precision_definition():
    rng = np.random.default_rng(9)
    real = rng.standard_normal((5, 12)) * 2.0 + 1.0
    generated = rng.standard_normal((7, 12)) @ rng.standard_normal((12, 12)) * 0.5
    assert fid_from_features(real, generated) == pytest.approx(
        exact_fid(real, generated), rel=1e-12
    )


def frechet_in_span(mu_r, sigma_r, mu_g, sigma_g, rows: np.ndarray) -> float:
    """The eigenvalue route of :func:`frechet_distance` restricted to the span of ``rows``'
    centred vectors, which holds the range of the smaller set's covariance. With Q an
    orthonormal basis of it, S = Q (Q^T S Q) Q^T and the nonzero eigenvalues of S_r S_g are
    those of (Q^T S_r Q)(Q^T S_g Q): a full-rank product, without the D - N zero eigenvalues
    whose round-off the D x D route turns into spurious square roots."""
    centred = rows - rows.mean(axis=0)
    basis = np.linalg.svd(centred, full_matrices=False)[2][: len(rows) - 1].T
    product = (basis.T @ sigma_r @ basis) @ (basis.T @ sigma_g @ basis)
    trace_sqrt = np.sqrt(np.linalg.eigvals(product).real.clip(0.0)).sum()
    diff = mu_r - mu_g
    return float(diff @ diff + np.trace(sigma_r) + np.trace(sigma_g) - 2.0 * trace_sqrt)


def relu_like(
    n: int, dimension: int, rng: np.random.Generator, scale: float = 1.0, shift: float = 0.0
) -> np.ndarray:
    """Correlated non-negative features with a non-zero mean, like pool3 activations."""
    mixing = np.random.default_rng(99).standard_normal((dimension, dimension))
    return np.abs(rng.standard_normal((n, dimension)) @ mixing / np.sqrt(dimension) * scale + shift)


@pytest.mark.parametrize(
    ("n_real", "n_generated", "dimension"),
    [(30, 40, 64), (200, 50, 128), (63, 63, 64), (300, 200, 256)],
)
def test_nuclear_norm_route_equals_the_eigenvalue_route(n_real, n_generated, dimension):
    """Equal to 1e-12 against the eigenvalue route in the span, and to 1e-7 against the plain
    D x D route, which is the less accurate one here: each of its D - N zero eigenvalues
    comes out as round-off ~eps ||S_r S_g||, whose square root adds ~1e-8 ||S|| to the trace
    (measured 1e-9 to 3e-8 relative for D up to 2,048, against 1e-15 for the nuclear norm in
    the high-precision test above)."""
    rng = np.random.default_rng(10)
    real = relu_like(n_real, dimension, rng)
    generated = relu_like(n_generated, dimension, rng, scale=1.2, shift=0.1)
    value = fid_from_features(real, generated)
    smaller = real if n_real <= n_generated else generated
    in_span = frechet_in_span(*feature_statistics(real), *feature_statistics(generated), smaller)
    assert value == pytest.approx(in_span, rel=1e-12)
    assert value == pytest.approx(old_path(real, generated), rel=1e-7)


def test_nuclear_norm_route_is_symmetric_and_zero_for_identical_sets():
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal((20, 50)), rng.standard_normal((30, 50)) + 0.2
    assert fid_from_features(a, b) == pytest.approx(fid_from_features(b, a), rel=1e-12)
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-12 * np.trace(np.cov(a.T)))


def test_against_statistics_equals_the_statistics_route():
    rng = np.random.default_rng(12)
    reference = relu_like(400, 32, rng)
    mu_r, sigma_r = feature_statistics(reference)
    for n in (10, 31, 32, 100):  # below, just below, at and above D
        generated = relu_like(n, 32, rng, scale=1.5, shift=0.3)
        stats_g = feature_statistics(generated)
        value = fid_against_statistics(mu_r, sigma_r, generated)
        if n < 32:
            in_span = frechet_in_span(mu_r, sigma_r, *stats_g, generated)
            assert value == pytest.approx(in_span, rel=1e-12)
        assert value == pytest.approx(frechet_distance(mu_r, sigma_r, *stats_g), rel=1e-7)
    with pytest.raises(ValueError, match="dimension"):
        fid_against_statistics(mu_r, sigma_r, generated[:, :31])
