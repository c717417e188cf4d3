"""Precision, recall, density and coverage: hand-computed ties, brute force, closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from evaluators.prdc import PRDCResult, prdc

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def column(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)[:, None]


def brute_force(real: np.ndarray, generated: np.ndarray, k_pr: int, k_dc: int) -> tuple:
    """The four definitions on full distance matrices (closed balls)."""
    real_real, fake_fake = cdist(real, real), cdist(generated, generated)
    np.fill_diagonal(real_real, np.inf)
    np.fill_diagonal(fake_fake, np.inf)
    real_radius = np.sort(real_real, axis=1)
    fake_radius = np.sort(fake_fake, axis=1)[:, k_pr - 1]
    fake_real = cdist(generated, real)
    in_pr = fake_real <= real_radius[None, :, k_pr - 1]
    in_dc = fake_real <= real_radius[None, :, k_dc - 1]
    return (
        in_pr.any(1).mean(),
        (fake_real <= fake_radius[:, None]).any(0).mean(),
        in_dc.sum() / (k_dc * len(generated)),
        in_dc.any(0).mean(),
    )


def test_hand_computed_example_with_boundary_ties():
    """1-D, k_pr = 1, k_dc = 2. Real X = -40, 0, 1, 3, 6, 10, 100, 101, 103; generated
    Y = 2, 9, -1, 16. Integer coordinates, so every distance is exact.

    Real radii (k=1 / k=2): -40: 40/41, 0: 1/3, 1: 1/2, 3: 2/3, 6: 3/4, 10: 4/7,
    100: 1/3, 101: 1/2, 103: 2/3. Generated radii (k=1): 2: 3, 9: 7 (2 and 16 tie), -1: 3, 16: 7.
    precision: 2 (d=1 to 1, on the boundary), 9 (d=3 to 6, on it), -1 (d=1 to 0, on it) are
    inside, 16 is not -> 3/4.
    density: balls holding 2: 0, 1, 3, 6 (d=4, on the boundary) = 4; 9: 6, 10 = 2;
    -1: -40 (39 <= 41), 0, 1 (d=2, on the boundary) = 3; 16: 10 = 1 -> 10 / (2 * 4) = 5/4.
    coverage: every real point but the far cluster 100, 101, 103 has a generated point within
    its k=2 radius -> 6/9. recall: 0, 1, 3 (near 2), 6, 10 (near 9) -> 5/9.
    With open balls (<) precision would still be 3/4 but density 8/8 = 1.
    """
    real = column([-40, 0, 1, 3, 6, 10, 100, 101, 103])
    generated = column([2, 9, -1, 16])
    result = prdc(real, generated, k_precision_recall=1, k_density_coverage=2)
    assert result == PRDCResult(
        precision=3 / 4,
        recall=5 / 9,
        density=5 / 4,
        coverage=6 / 9,
        k_precision_recall=1,
        k_density_coverage=2,
    )
    assert (result.precision, result.recall, result.density, result.coverage) == pytest.approx(
        brute_force(real, generated, 1, 2), abs=0
    )


def test_a_point_repeated_more_than_k_times_lies_in_its_zero_radius_ball():
    """Real 0, 0, 0, 5 with k=2: each 0 has two other 0s, radius 0; the generated 0 is on
    the boundary of those balls (inside), the generated 1 is only in 5's ball (radius 5)."""
    result = prdc(
        column([0, 0, 0, 5]), column([0, 0, 1]), k_precision_recall=2, k_density_coverage=2
    )
    assert result.precision == 1.0
    # balls holding each generated point: 0 -> the three 0s and 5 (d=5 <= 5); 1 -> 5 only
    assert result.density == pytest.approx((4 + 4 + 1) / (2 * 3), abs=0)
    assert result.coverage == 1.0  # min distances 0, 0, 0, 4 against radii 0, 0, 0, 5


def test_matches_brute_force_on_random_features():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((120, 6))
    generated = rng.standard_normal((90, 6)) * 1.3 + 0.4
    result = prdc(real, generated, k_precision_recall=3, k_density_coverage=5, block_size=32)
    expected = brute_force(real, generated, 3, 5)
    assert (result.precision, result.recall, result.density, result.coverage) == pytest.approx(
        expected, abs=1e-15
    )
    assert 0.0 < result.precision < 1.0 and 0.0 < result.recall < 1.0  # non-trivial case


def test_identical_sets_score_one_and_density_k_plus_one_over_k():
    """Each generated point equals a real one: it lies in its own ball (distance 0) and in the
    balls of the k real points it is a k-nearest neighbour of, so density is (k + 1)/k
    exactly; the k-th neighbour sits on the boundary, so this needs closed balls."""
    features = np.random.default_rng(1).standard_normal((300, 16)) * 5.0 + 2.0
    for k in (1, 3, 5):
        result = prdc(
            features, features.copy(), k_precision_recall=k, k_density_coverage=k, block_size=64
        )
        assert (result.precision, result.recall, result.coverage) == (1.0, 1.0, 1.0)
        assert result.density == pytest.approx((k + 1) / k, abs=1e-15)


def test_density_is_one_and_coverage_matches_closed_form_in_expectation():
    """Two independent samples of one distribution, N = M = 60, k = 5. A generated point is
    in a given real ball with probability k/N (its rank among the N - 1 other real points and
    itself is uniform), so E[density] = 1; a real point is uncovered when its k nearest among
    the other N - 1 real and M generated points are all real, so
    E[coverage] = 1 - prod_{t<k} (N-1-t)/(N+M-1-t) (Naeem et al. 2020). 300 draws; the
    tolerance is 4 standard errors of the mean."""
    rng = np.random.default_rng(2)
    n, k, draws = 60, 5, 300
    results = [
        prdc(rng.standard_normal((n, 3)), rng.standard_normal((n, 3)), k_density_coverage=k)
        for _ in range(draws)
    ]
    density = np.array([r.density for r in results])
    coverage = np.array([r.coverage for r in results])
    expected_coverage = 1.0 - np.prod([(n - 1 - t) / (2 * n - 1 - t) for t in range(k)])
    assert abs(density.mean() - 1.0) < 4 * density.std() / np.sqrt(draws)
    assert abs(coverage.mean() - expected_coverage) < 4 * coverage.std() / np.sqrt(draws)


def test_disjoint_far_apart_sets_score_zero():
    rng = np.random.default_rng(3)
    real = rng.standard_normal((100, 8))
    far = rng.standard_normal((80, 8)) + 1000.0
    assert prdc(real, far) == PRDCResult(0.0, 0.0, 0.0, 0.0, 3, 5)


def test_collapsed_generator_has_precision_but_no_recall():
    """Generated points packed near the real mode: all inside the real manifold, but their
    tiny balls hold only the central real points."""
    rng = np.random.default_rng(4)
    result = prdc(rng.standard_normal((500, 2)), rng.standard_normal((500, 2)) * 0.05)
    assert result.precision > 0.95
    assert result.recall < 0.1
    assert result.coverage < 0.1


def test_invariant_to_row_order_and_block_size():
    rng = np.random.default_rng(5)
    real = rng.standard_normal((150, 10))
    generated = rng.standard_normal((110, 10)) * 0.8 + 0.2
    reference = prdc(real, generated, block_size=1024)
    shuffled = prdc(real[rng.permutation(150)], generated[rng.permutation(110)])
    assert shuffled == reference
    for block_size in (3, 16, 64):
        assert prdc(real, generated, block_size=block_size) == reference


def test_float32_input_gives_the_float64_result():
    rng = np.random.default_rng(6)
    real = rng.standard_normal((80, 5)).astype(np.float32)
    generated = rng.standard_normal((70, 5)).astype(np.float32)
    assert prdc(real, generated) == prdc(real.astype(np.float64), generated.astype(np.float64))


@pytest.mark.parametrize(
    ("real", "generated", "options", "message"),
    [
        (np.zeros((10, 3)), np.zeros((10, 4)), {}, "dimensions differ"),
        (np.zeros(10), np.zeros((10, 1)), {}, r"shape \(N, D\)"),
        (np.full((10, 3), np.nan), np.zeros((10, 3)), {}, "NaN"),
        (np.zeros((5, 3)), np.zeros((10, 3)), {}, "more than 5 real"),
        (np.zeros((10, 3)), np.zeros((3, 3)), {}, "more than 3 generated"),
        (np.zeros((10, 3)), np.zeros((10, 3)), {"k_precision_recall": 0}, "at least 1"),
        (np.zeros((10, 3)), np.zeros((10, 3)), {"block_size": 0}, "block_size"),
    ],
)
def test_bad_inputs_raise(real, generated, options, message):
    with pytest.raises(ValueError, match=message):
        prdc(real, generated, **options)
