"""Nearest neighbours: brute-force agreement, duplicates (mode collapse), memorisation ratio."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluators.neighbours import nearest_neighbours, neighbour_sheet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def sample(n: int, seed: int, size: int = 4) -> np.ndarray:
    """A smooth-ish distribution: per-image brightness plus pixel noise, on [0, 1]."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0.2, 0.8, (n, 1, 1, 1))
    return np.clip(level + rng.normal(0, 0.1, (n, 1, size, size)), 0, 1).astype(np.float32)


def brute_force(queries: np.ndarray, base: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    q, b = queries.reshape(len(queries), -1).astype(np.float64), base.reshape(len(base), -1)
    distances = np.sqrt(((q[:, None, :] - b[None, :, :].astype(np.float64)) ** 2).sum(-1))
    if exclude_self:
        np.fill_diagonal(distances, np.inf)
    return distances


@pytest.mark.parametrize("chunk", [1024, 7, 2])
def test_neighbours_and_threshold_match_brute_force(chunk):
    generated, train, test = sample(30, 0), sample(45, 1), sample(25, 2)
    report = nearest_neighbours(generated, train, test, k=3, percentile=30.0, chunk=chunk)
    to_train = brute_force(generated, train)
    order = np.argsort(to_train, axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(report.nearest_train, order)
    np.testing.assert_allclose(
        report.nearest_train_distance, np.take_along_axis(to_train, order, 1), rtol=1e-9, atol=1e-9
    )
    within = brute_force(generated, generated, exclude_self=True)
    np.testing.assert_array_equal(report.nearest_generated, within.argmin(1))
    np.testing.assert_allclose(report.nearest_generated_distance, within.min(1), rtol=1e-9)
    test_self = brute_force(test, test, exclude_self=True).min(1)
    threshold = np.percentile(test_self, 30.0)
    assert report.duplicate_threshold == pytest.approx(threshold, rel=1e-9)
    assert report.duplicate_rate == pytest.approx(np.mean(within.min(1) < threshold))
    assert 0.0 < report.duplicate_rate < 1.0  # the percentile makes the comparison non-trivial
    median_test = np.median(brute_force(test, train).min(1))
    assert report.median_test_to_train == pytest.approx(median_test, rel=1e-9)
    assert report.memorisation_ratio == pytest.approx(
        np.median(to_train.min(1)) / median_test, rel=1e-9
    )


def test_one_repeated_image_is_all_duplicates():
    train, test = sample(200, 3), sample(200, 4)
    collapsed = np.repeat(sample(1, 5), 200, axis=0)
    report = nearest_neighbours(collapsed, train, test)
    assert report.duplicate_threshold > 0
    assert report.duplicate_rate == 1.0
    assert (report.nearest_generated != np.arange(200)).all()  # self excluded by index
    assert np.allclose(report.nearest_generated_distance, 0.0, atol=1e-6)


def test_fresh_samples_of_the_test_distribution_are_rarely_duplicates():
    train, test, generated = sample(300, 6), sample(300, 7), sample(300, 8)
    report = nearest_neighbours(generated, train, test)
    assert report.duplicate_rate <= 0.05  # ~ percentile / 100 = 0.01 in expectation
    assert 0.85 < report.memorisation_ratio < 1.15


def test_copies_of_training_images_are_memorisation():
    train, test = sample(300, 9), sample(300, 10)
    picked = np.random.default_rng(11).choice(300, 200, replace=False)
    report = nearest_neighbours(train[picked], train, test, k=2)
    np.testing.assert_array_equal(report.nearest_train[:, 0], picked)
    assert report.median_generated_to_train < 1e-6
    assert report.memorisation_ratio < 0.01


def test_exact_copies_are_at_distance_zero_not_round_off():
    """Training images scored against their own training set: every nearest distance and the
    memorisation ratio are exactly 0 (the norm expansion alone leaves ~1e-8)."""
    rng = np.random.default_rng(3)
    train = rng.integers(0, 256, (300, 1, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (50, 1, 28, 28), dtype=np.uint8)
    report = nearest_neighbours(train[rng.permutation(300)[:60]], train, test, chunk=64)
    assert (report.nearest_train_distance[:, 0] == 0.0).all()
    assert report.memorisation_ratio == 0.0


def test_uint8_input_is_divided_by_255():
    rng = np.random.default_rng(12)
    raw = [rng.integers(0, 256, (n, 1, 3, 3), dtype=np.uint8) for n in (10, 12, 9)]
    as_uint8 = nearest_neighbours(*raw, k=2)
    as_float = nearest_neighbours(*(r / 255.0 for r in raw), k=2)
    assert as_uint8.memorisation_ratio == pytest.approx(as_float.memorisation_ratio, rel=1e-6)
    np.testing.assert_array_equal(as_uint8.nearest_train, as_float.nearest_train)


def test_input_errors():
    a = sample(5, 0)
    with pytest.raises(ValueError, match="one shape"):
        nearest_neighbours(a, sample(5, 1, size=3), a)
    with pytest.raises(ValueError, match="k <= 5"):
        nearest_neighbours(a, a, a, k=6)
    with pytest.raises(ValueError, match="at least 2"):
        nearest_neighbours(a[:1], a, a)


def test_sheet_rows_are_a_sample_then_its_training_neighbours():
    generated, train, test = sample(10, 13, size=8), sample(20, 14, size=8), sample(10, 15, size=8)
    report = nearest_neighbours(generated, train, test, k=4)
    sheet = neighbour_sheet(generated, train, report, rows=3)
    assert sheet.shape == (3 * 10 + 2, 5 * 10 + 2, 3)
    as_uint8 = np.rint(torch.as_tensor(generated).numpy() * 255).astype(np.uint8)
    train_uint8 = np.rint(train * 255).astype(np.uint8)
    for row in range(3):
        top = row * 10 + 2
        np.testing.assert_array_equal(sheet[top : top + 8, 2:10, 0], as_uint8[row, 0])
        for j in range(4):
            left = (j + 1) * 10 + 2
            expected = train_uint8[report.nearest_train[row, j], 0]
            np.testing.assert_array_equal(sheet[top : top + 8, left : left + 8, 0], expected)
    chosen = neighbour_sheet(generated, train, report, indices=[9, 4])
    assert chosen.shape == (2 * 10 + 2, 5 * 10 + 2, 3)
    with pytest.raises(ValueError, match="report is for"):
        neighbour_sheet(generated[:5], train, report)
