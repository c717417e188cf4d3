"""Inception Score and label accuracy from judge outputs: closed forms and invariants."""

from __future__ import annotations

import numpy as np
import pytest

from evaluators.classifier_scores import inception_score, label_accuracy


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes)[labels]


def test_confident_uniformly_spread_predictions_score_the_class_count():
    probabilities = one_hot(np.arange(1000) % 10, 10)
    mean, std = inception_score(probabilities, splits=10)
    assert mean == pytest.approx(10.0, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_constant_predictions_score_one():
    row = np.array([0.1, 0.2, 0.3, 0.4])
    mean, std = inception_score(np.tile(row, (50, 1)), splits=5)
    assert mean == pytest.approx(1.0, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_two_class_closed_form():
    # rows [1, 0] and [1/2, 1/2] in equal numbers: p(y) = [3/4, 1/4],
    # KL_1 = log(4/3), KL_2 = 1/2 log(2/3) + 1/2 log(2) = 1/2 log(4/3), IS = exp(3/4 log(4/3))
    probabilities = np.array([[1.0, 0.0], [0.5, 0.5]] * 4)
    mean, _ = inception_score(probabilities, splits=1)
    assert mean == pytest.approx((4.0 / 3.0) ** 0.75, rel=1e-12)


def test_splits_are_contiguous_blocks_with_population_std():
    # first half: two confident classes (IS 2); second half: constant rows (IS 1)
    probabilities = np.vstack(
        [one_hot(np.array([0, 1, 0, 1]), 3), np.tile([0.2, 0.3, 0.5], (4, 1))]
    )
    mean, std = inception_score(probabilities, splits=2)
    assert mean == pytest.approx(1.5, rel=1e-12)
    assert std == pytest.approx(0.5, rel=1e-12)


def test_invariant_to_row_order_and_class_relabelling():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((300, 7)) * 3
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    reference = inception_score(probabilities, splits=1)
    assert 1.0 < reference[0] < 7.0
    assert inception_score(probabilities[rng.permutation(300)], splits=1) == pytest.approx(
        reference, rel=1e-12
    )
    shuffled_classes = inception_score(probabilities[:, rng.permutation(7)], splits=3)
    assert shuffled_classes == pytest.approx(inception_score(probabilities, splits=3), rel=1e-12)


def test_splits_are_capped_by_the_sample_count():
    # three samples, ten splits -> three single-row splits, each with IS exactly 1
    assert inception_score(one_hot(np.array([0, 1, 2]), 3), splits=10) == pytest.approx((1.0, 0.0))


def test_float32_softmax_rows_are_accepted():
    probabilities = one_hot(np.arange(20) % 4, 4).astype(np.float32) * 0.99997 + 0.0000075
    mean, _ = inception_score(probabilities, splits=1)
    assert mean == pytest.approx(4.0, rel=1e-3)


@pytest.mark.parametrize(
    ("probabilities", "splits", "message"),
    [
        (np.array([[0.5, 0.6]]), 1, "sum to 1"),
        (np.array([[1.5, -0.5]]), 1, "non-negative"),
        (np.array([0.5, 0.5]), 1, "shape"),
        (np.zeros((0, 3)), 1, "shape"),
        (np.array([[0.5, 0.5]]), 0, "splits"),
    ],
)
def test_inception_score_rejects_bad_inputs(probabilities, splits, message):
    with pytest.raises(ValueError, match=message):
        inception_score(probabilities, splits=splits)


def test_label_accuracy_from_probabilities():
    probabilities = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.6, 0.4, 0.0]])
    assert label_accuracy(probabilities, np.array([0, 1, 1, 1])) == pytest.approx(0.5)


def test_label_accuracy_from_predicted_indices():
    assert label_accuracy(np.array([1, 2, 3, 3]), np.array([1, 2, 0, 3])) == pytest.approx(0.75)
    assert label_accuracy(np.array([1.0, 2.0]), np.array([1, 0])) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("predictions", "labels", "message"),
    [
        (np.array([0, 1]), np.array([0, 1, 2]), "labels must have shape"),
        (np.array([0.5, 1.0]), np.array([0, 1]), "integer class indices"),
        (np.zeros((2, 2, 2)), np.array([0, 1]), "expected"),
        (np.array([], dtype=int), np.array([], dtype=int), "at least one"),
    ],
)
def test_label_accuracy_rejects_bad_inputs(predictions, labels, message):
    with pytest.raises(ValueError, match=message):
        label_accuracy(predictions, labels)
