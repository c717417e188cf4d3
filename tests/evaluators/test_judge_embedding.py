"""Judge embedding: PCA against the covariance eigendecomposition, confidences, the figure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluators.judge_embedding import (
    confidence_summary,
    judge_embedding,
    judge_embedding_figure,
)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    scales = np.array([5.0, 2.0, 1.0, 0.5, 0.2, 0.1])
    real = (rng.standard_normal((150, 6)) * scales) @ rotation.T + 3.0
    generated = (rng.standard_normal((90, 6)) * scales) @ rotation.T + 3.5
    real_p = softmax(rng.standard_normal((150, 10)) * 3)
    generated_p = softmax(rng.standard_normal((90, 10)))
    return real, generated, real_p, generated_p, rotation


def test_pca_matches_the_covariance_eigendecomposition(data):
    real, generated, real_p, generated_p, rotation = data
    embedding = judge_embedding(real, generated, real_p, generated_p)
    combined = np.concatenate([real, generated])
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(combined, rowvar=False))
    top = eigenvalues[::-1][:2]
    assert embedding.explained_variance.shape == (2,)
    assert embedding.explained_variance[0] >= embedding.explained_variance[1]  # sorted
    np.testing.assert_allclose(embedding.explained_variance, top, rtol=1e-10)
    np.testing.assert_allclose(
        embedding.explained_variance_ratio, top / eigenvalues.sum(), rtol=1e-10
    )
    for i in range(2):  # same axes up to sign
        cosine = embedding.components[i] @ eigenvectors[:, ::-1][:, i]
        assert abs(cosine) == pytest.approx(1.0, abs=1e-8)
    # The dominant generating axis (scale 5) is recovered as the first component.
    assert abs(embedding.components[0] @ rotation[:, 0]) > 0.99


def test_projection_of_the_combined_set_is_centred_with_the_explained_variance(data):
    real, generated, real_p, generated_p, _ = data
    embedding = judge_embedding(torch.as_tensor(real), generated, real_p, generated_p)
    assert embedding.real_2d.shape == (150, 2) and embedding.generated_2d.shape == (90, 2)
    projected = np.concatenate([embedding.real_2d, embedding.generated_2d])
    np.testing.assert_allclose(projected.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(
        projected.var(axis=0, ddof=1), embedding.explained_variance, rtol=1e-10
    )
    np.testing.assert_allclose(embedding.components @ embedding.components.T, np.eye(2), atol=1e-12)
    expected = (real - np.concatenate([real, generated]).mean(axis=0)) @ embedding.components.T
    np.testing.assert_allclose(embedding.real_2d, expected, atol=1e-10)


def test_axis_signs_follow_the_largest_loading(data):
    real, generated, real_p, generated_p, _ = data
    first = judge_embedding(real, generated, real_p, generated_p)
    for component in first.components:
        assert component[np.abs(component).argmax()] > 0
    # Negated features have the same axes, so their coordinates are exactly negated.
    negated = judge_embedding(-real, -generated, real_p, generated_p)
    np.testing.assert_allclose(negated.components, first.components, atol=1e-10)
    np.testing.assert_allclose(negated.real_2d, -first.real_2d, atol=1e-10)


def test_confidence_is_the_max_softmax_probability(data):
    real, generated, real_p, generated_p, _ = data
    embedding = judge_embedding(real, generated, real_p, generated_p)
    np.testing.assert_array_equal(embedding.real_confidence, real_p.max(axis=1))
    np.testing.assert_array_equal(embedding.generated_confidence, generated_p.max(axis=1))
    assert embedding.real_confidence.mean() > embedding.generated_confidence.mean()


def test_confidence_summary_is_the_mean_and_the_top_bin_share():
    # Confidences 1.0, 0.9 (on the top bin's edge: counted), 0.5, 0.7: mean 0.775, top 2/4.
    probabilities = np.array(
        [[1.0, 0.0, 0.0], [0.05, 0.9, 0.05], [0.5, 0.25, 0.25], [0.1, 0.2, 0.7]]
    )
    mean, top = confidence_summary(probabilities)
    assert mean == pytest.approx(0.775) and top == 0.5
    assert confidence_summary(probabilities, top_bin=0.6) == (pytest.approx(0.775), 0.75)
    uniform = np.full((7, 10), 0.1)  # the least confident a 10-way classifier can be
    assert confidence_summary(uniform) == (pytest.approx(0.1), 0.0)
    with pytest.raises(ValueError, match="not logits"):
        confidence_summary(np.log(probabilities + 1e-9))
    with pytest.raises(ValueError, match="at least one sample"):
        confidence_summary(np.empty((0, 10)))


def test_input_errors(data):
    real, generated, real_p, generated_p, _ = data
    with pytest.raises(ValueError, match="not logits"):
        judge_embedding(real, generated, np.log(real_p), generated_p)
    with pytest.raises(ValueError, match="rows"):
        judge_embedding(real, generated, real_p[:10], generated_p)
    with pytest.raises(ValueError, match="feature dimensions"):
        judge_embedding(real, generated[:, :5], real_p, generated_p)


def test_figure_is_an_rgb_array_of_the_documented_size(data):
    real, generated, real_p, generated_p, _ = data
    embedding = judge_embedding(real, generated, real_p, generated_p)
    figure = judge_embedding_figure(embedding)
    assert figure.shape == (400, 1200, 3) and figure.dtype == np.uint8
    assert (figure < 200).any(axis=-1).mean() > 0.01  # something is drawn on the white canvas
    assert not np.array_equal(figure, judge_embedding_figure(embedding, bins=3))
    with pytest.raises(ValueError, match="bins"):
        judge_embedding_figure(embedding, bins=0)
