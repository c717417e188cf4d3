"""Retraining a LeNet on real + generated images: what each strategy trains on and how."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluators.augmentation import Labelled, retrain
from trainables.datasets import load_dataset


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Single-threaded torch: steadier on 2 shared cores."""


@pytest.fixture(scope="module")
def splits() -> tuple[Labelled, Labelled, Labelled]:
    """300 real training digits, 200 other digits standing in for generated ones, 300 test."""
    data = load_dataset({"name": "mnist5k"})
    real = Labelled(data.train_images[:300], data.train_labels[:300])
    generated = Labelled(data.train_images[300:500], data.train_labels[300:500])
    test = Labelled(data.test_images[:300], data.test_labels[:300])
    return real, generated, test


def _retrain(strategy, real, generated, test, **options):
    return retrain(strategy, real, generated, test, 10, **{"epochs": 2, **options})


def test_filter_trains_exactly_on_the_images_the_judge_agrees_with(splits):
    real, generated, test = splits
    # A "generator" whose every third label is wrong; the judge knows the true class.
    wrong = np.arange(len(generated)) % 3 == 0
    emitted = Labelled(
        generated.images, np.where(wrong, (generated.labels + 1) % 10, generated.labels)
    )
    filtered = _retrain("filter", real, emitted, test, judge_labels=generated.labels)
    assert filtered.n_generated_used == int((~wrong).sum())
    assert filtered.n_train == len(real) + filtered.n_generated_used
    # The same as mixing in only the correctly labelled images, to the last bit.
    kept = _retrain("mix", real, emitted.take(~wrong), test)
    assert filtered.test_accuracy == kept.test_accuracy
    everything = _retrain("mix", real, emitted, test)
    assert everything.n_generated_used == len(generated)
    with pytest.raises(ValueError, match="judge's label"):
        _retrain("filter", real, emitted, test)


def test_source_classifier_has_a_second_input_channel(splits):
    real, generated, test = splits
    source = _retrain("source", real, generated, test, epochs=6)
    mix = _retrain("mix", real, generated, test, epochs=6)
    assert (source.in_channels, mix.in_channels) == (2, 1)
    assert source.n_train == mix.n_train == 500
    assert mix.test_accuracy > 0.5 and source.test_accuracy > 0.4  # chance is 0.1
    assert source.test_accuracy != mix.test_accuracy


def test_finetune_differs_from_mix_unless_one_side_is_empty(splits):
    real, generated, test = splits
    assert (
        _retrain("finetune", real, generated, test, epochs=4).test_accuracy
        != _retrain("mix", real, generated, test, epochs=4).test_accuracy
    )
    none = generated.take(np.zeros(len(generated), dtype=bool))
    for strategy in ("finetune", "filter"):
        options = {"judge_labels": none.labels} if strategy == "filter" else {}
        baseline = _retrain(strategy, real, none, test, **options)
        assert baseline.test_accuracy == _retrain("mix", real, none, test).test_accuracy
    with pytest.raises(ValueError, match="at least 2 epochs"):
        _retrain("finetune", real, generated, test, epochs=1)


def test_same_seed_same_result_and_nothing_to_train_on_is_nan(splits):
    real, generated, test = splits
    assert _retrain("mix", real, generated, test, seed=5) == _retrain(
        "mix", real, generated, test, seed=5
    )
    nothing = real.take(np.zeros(len(real), dtype=bool))
    empty = _retrain("filter", nothing, generated, test, judge_labels=(generated.labels + 1) % 10)
    assert empty.n_train == 0 and math.isnan(empty.test_accuracy)
    with pytest.raises(ValueError, match="unknown strategy"):
        _retrain("blend", real, generated, test)
