"""Label accuracy and Inception Score of conditional families, scored by the LeNet judge."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from evaluators.judges import LeNet, load_or_train_judge
from trainables.datasets import load_dataset
from trainables.families import FAMILIES, family_class
from trainables.trainable import conditional_metrics, generate, generated_labels

CPU = torch.device("cpu")
CONDITIONAL = ("acgan", "cdcgan", "cgan")


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Single-threaded torch: steadier timings on 2 shared cores."""


@pytest.fixture(scope="module")
def mnist():
    return load_dataset({"name": "mnist5k"})


@pytest.fixture(scope="module")
def judge_net(mnist, tmp_path_factory) -> LeNet:
    """One judge for the module, trained on mnist5k into a temporary cache."""
    judge = load_or_train_judge(
        tmp_path_factory.mktemp("judge-cache"),
        mnist.fingerprint,
        mnist.train_images,
        mnist.train_labels,
        mnist.test_images,
        mnist.test_labels,
        mnist.num_classes,
    )
    return judge.build(CPU)


def test_generated_samples_of_a_cdcgan_score_within_the_metric_ranges(judge_net):
    model = family_class("cdcgan")({"base_channels": 8, "n_z": 16}, (1, 28, 28), 10, CPU)
    model.attach_judge(judge_net)
    samples = generate(model, 200, seed=7, num_classes=10, batch=64)
    scores = conditional_metrics(judge_net, samples, 10)
    assert set(scores) == {"label_accuracy", "inception_score"}
    assert 0.0 <= scores["label_accuracy"] <= 1.0
    assert 1.0 <= scores["inception_score"] <= 10.0
    assert scores == conditional_metrics(judge_net, samples, 10)  # a pure function


def test_real_digits_in_generation_order_score_high_and_misaligned_labels_low(mnist, judge_net):
    """Test digits ordered as ``generate`` orders labels (0, 1, ..., 9, 0, 1, ...) stand in for
    a perfect conditional generator: the judge's accuracy and a high IS; shifting every image
    one class along makes the labels wrong and the accuracy collapse, IS unchanged."""
    per_class = [np.flatnonzero(mnist.test_labels == k)[:30] for k in range(10)]
    order = np.stack(per_class, axis=1).reshape(-1)  # class-cycling
    images = torch.tensor(mnist.test_images[order]).float() / 255
    assert np.array_equal(mnist.test_labels[order], generated_labels(len(order), 10))
    aligned = conditional_metrics(judge_net, images, 10)
    assert aligned["label_accuracy"] > 0.85
    assert aligned["inception_score"] > 6.0
    shifted = conditional_metrics(judge_net, torch.roll(images, 1, dims=0), 10)
    assert shifted["label_accuracy"] < 0.2
    assert shifted["inception_score"] == pytest.approx(aligned["inception_score"], rel=0.05)


def test_generated_labels_are_the_labels_generate_conditions_on():
    seen = []

    class Recorder:
        device = CPU

        def train(self, mode: bool) -> None:
            pass

        def latent(self, n: int, generator: torch.Generator) -> torch.Tensor:
            return torch.randn(n, 2, generator=generator)

        def draw(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            seen.append(labels)
            return torch.zeros(len(z), 1, 28, 28)

    generate(Recorder(), 23, seed=0, num_classes=10, batch=5)
    assert torch.cat(seen).tolist() == generated_labels(23, 10).tolist()


def test_diverged_samples_score_nan_rather_than_raise(judge_net):
    samples = torch.full((20, 1, 28, 28), float("nan"))
    scores = conditional_metrics(judge_net, samples, 10)
    assert all(math.isnan(v) for v in scores.values())


def test_only_conditional_families_report_the_judge_metrics():
    assert family_class("dcgan").reported_metrics() == (
        "fid",
        "best_fid",
        "images_per_s",
        "epoch_s",
        "d_loss",
        "g_loss",
    )
    for name in CONDITIONAL:
        cls = family_class(name)
        assert cls.conditional
        assert cls.reported_metrics()[-2:] == ("label_accuracy", "inception_score")
        assert cls.all_params()["classifier_feedback"].default == 0.0
    assert set(CONDITIONAL) <= set(FAMILIES)
