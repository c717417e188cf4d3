"""The LeNet judge: shapes, batch-independent features, accuracy on mnist5k, and its cache."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluators.judges.lenet import (
    FEATURE_DIM,
    Judge,
    LeNet,
    TrainingPhase,
    judge_features,
    judge_predictions,
    load_or_train_judge,
    to_unit_float,
    train_lenet,
    train_lenet_phases,
)
from trainables.datasets import ImageData, load_dataset


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Single-threaded torch: steadier timings on 2 shared cores."""


@pytest.fixture(scope="module")
def mnist() -> ImageData:
    return load_dataset({"name": "mnist5k"})


@pytest.fixture(scope="module")
def cached(mnist, tmp_path_factory) -> tuple[Path, Judge, float]:
    """The one full training run of this module: a judge cached in a fresh directory."""
    cache = tmp_path_factory.mktemp("judges")
    started = time.perf_counter()
    judge = load_or_train_judge(
        cache,
        mnist.fingerprint,
        mnist.train_images,
        mnist.train_labels,
        mnist.test_images,
        mnist.test_labels,
        mnist.num_classes,
    )
    return cache, judge, time.perf_counter() - started


@pytest.fixture(scope="module")
def model(cached) -> LeNet:
    return cached[1].build()


def small_split(mnist: ImageData, n: int) -> tuple[np.ndarray, np.ndarray]:
    return mnist.train_images[:n], mnist.train_labels[:n]


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- the network ------------------------------------------------------------------------------


@pytest.mark.parametrize(("channels", "side", "classes"), [(1, 28, 10), (3, 32, 7)])
def test_lenet_gives_class_logits_and_84_features(channels, side, classes):
    net = LeNet(channels, classes, side)
    x = torch.rand(5, channels, side, side)
    assert net(x).shape == (5, classes)
    assert net.features(x).shape == (5, FEATURE_DIM) == (5, 84)
    assert (net.features(x) >= 0).all()  # after ReLU


def test_lenet_rejects_images_too_small_for_two_pools():
    with pytest.raises(ValueError, match="12x12"):
        LeNet(1, 10, 8)


# --- features -----------------------------------------------------------------------------------


def test_features_do_not_depend_on_batch_size(model, mnist):
    images = mnist.test_images[:300]
    reference = judge_features(model, images, batch_size=300)
    assert reference.shape == (300, 84) and reference.dtype == np.float64
    assert reference.std() > 0.1  # not a degenerate all-zero feature map
    for batch_size in (1, 7, 128, 1000):
        np.testing.assert_allclose(
            judge_features(model, images, batch_size=batch_size), reference, rtol=1e-5, atol=1e-4
        )


def test_uint8_and_unit_float_images_give_the_same_features(model, mnist):
    images = mnist.test_images[:200]
    as_float = images.astype(np.float32) / 255.0
    np.testing.assert_allclose(
        judge_features(model, as_float), judge_features(model, images), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        judge_features(model, torch.from_numpy(as_float)),
        judge_features(model, images),
        rtol=1e-6,
        atol=1e-6,
    )


def test_predictions_are_probability_rows(model, mnist):
    probs = judge_predictions(model, mnist.test_images[:100], batch_size=33)
    assert probs.shape == (100, 10) and probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)


# --- training -----------------------------------------------------------------------------------


def test_trained_judge_reaches_90_percent_on_mnist5k_test(cached, model, mnist):
    accuracy = (
        judge_predictions(model, mnist.test_images).argmax(axis=1) == mnist.test_labels
    ).mean()
    assert accuracy >= 0.90
    assert cached[1].test_accuracy == pytest.approx(accuracy)


def test_train_lenet_is_deterministic_for_a_seed(mnist):
    images, labels = small_split(mnist, 300)
    a = train_lenet(images, labels, 10, epochs=1, seed=3)
    b = train_lenet(images, labels, 10, epochs=1, seed=3)
    c = train_lenet(images, labels, 10, epochs=1, seed=4)
    assert same_state(a.state_dict(), b.state_dict())
    assert not same_state(a.state_dict(), c.state_dict())


def test_phases_continue_one_optimiser_and_one_batch_order(mnist):
    images, labels = small_split(mnist, 300)
    x, y = to_unit_float(images), torch.tensor(labels)
    whole = train_lenet(images, labels, 10, epochs=2, seed=1)
    halves = train_lenet_phases([TrainingPhase(x, y, 1), TrainingPhase(x, y, 1)], 1, 10, 28, seed=1)
    assert same_state(whole.state_dict(), halves.state_dict())
    other = train_lenet_phases(
        [TrainingPhase(x[:150], y[:150], 1), TrainingPhase(x, y, 1)], 1, 10, 28, seed=1
    )
    assert not same_state(whole.state_dict(), other.state_dict())


def test_built_judge_predicts_like_the_original_model(mnist):
    images, labels = small_split(mnist, 300)
    original = train_lenet(images, labels, 10, epochs=1)
    judge = Judge(
        state_dict=original.state_dict(),
        in_channels=1,
        num_classes=10,
        image_size=28,
        test_accuracy=0.0,
        fingerprint="x",
        train_seconds=0.0,
    )
    rebuilt = judge.build()
    assert rebuilt is not original and not rebuilt.training
    np.testing.assert_array_equal(
        judge_predictions(rebuilt, mnist.test_images[:200]),
        judge_predictions(original, mnist.test_images[:200]),
    )


# --- cache --------------------------------------------------------------------------------------


def test_first_call_trains_and_writes_the_cache_file(cached, mnist):
    cache, judge, _ = cached
    assert [p.name for p in cache.iterdir()] == [f"lenet-{mnist.fingerprint}.pt"]
    assert judge.fingerprint == mnist.fingerprint
    assert (judge.in_channels, judge.num_classes, judge.image_size) == (1, 10, 28)
    assert judge.train_seconds > 0


def test_second_call_loads_the_cached_judge(cached, mnist):
    cache, first, _ = cached
    path = cache / f"lenet-{mnist.fingerprint}.pt"
    written = path.stat().st_mtime_ns
    second = load_or_train_judge(
        cache,
        mnist.fingerprint,
        mnist.train_images,
        mnist.train_labels,
        mnist.test_images,
        mnist.test_labels,
        mnist.num_classes,
    )
    assert second.train_seconds == first.train_seconds  # a retrain would time itself anew
    assert same_state(second.state_dict, first.state_dict)
    assert second.test_accuracy == first.test_accuracy
    assert path.stat().st_mtime_ns == written  # loaded, not rewritten (no timing luck)


def test_corrupt_cache_file_is_replaced_by_a_retrain(tmp_path, mnist):
    images, labels = small_split(mnist, 200)
    path = tmp_path / "lenet-broken.pt"
    path.write_bytes(b"not a torch checkpoint")
    judge = load_or_train_judge(
        tmp_path, "broken", images, labels, mnist.test_images[:100], mnist.test_labels[:100], 10
    )
    assert judge.fingerprint == "broken"
    assert [p.name for p in tmp_path.iterdir()] == ["lenet-broken.pt"]  # no temp file left
    reloaded = load_or_train_judge(
        tmp_path, "broken", images[:0], labels[:0], images[:0], labels[:0], 10
    )  # empty data: only a load can succeed
    assert reloaded.train_seconds == judge.train_seconds
    assert same_state(reloaded.state_dict, judge.state_dict)
