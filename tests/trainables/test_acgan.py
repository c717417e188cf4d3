"""AC-GAN: a source logit and class logits from D, L_S and L_C, class accuracy, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from evaluators.judges import LeNet
from trainables.families import family_class
from trainables.families.base import discriminator_source_loss

from .family_kit import CPU, changed, convs, labelled_batch, snapshot
from .family_kit import labelled_step as step

SMALL = {"base_channels": 8, "n_z": 16}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def acgan(shape=(1, 28, 28), **config):
    return family_class("acgan")({**SMALL, **config}, shape, 10, CPU)


def batch(n=20, shape=(1, 28, 28), seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    return labelled_batch(n, shape, seed)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_shapes_and_a_source_logit_plus_one_logit_per_class(shape):
    model = acgan(shape)
    z, labels = model.latent(4), torch.arange(4)
    images = model.sample(z, labels)
    assert images.shape == (4, *shape)
    assert images.min() >= -1 and images.max() <= 1
    assert model.discriminator(images).shape == (4, 1 + 10)
    assert convs(model.generator)[0].in_channels == 16 + 10  # [z, one_hot(y)]
    assert convs(model.discriminator)[0].in_channels == shape[0]  # D never sees the label


def test_samples_depend_on_the_label_only_through_gs_label_weights():
    model = acgan()
    model.train(False)
    z = model.latent(1, torch.Generator().manual_seed(0)).expand(10, -1)
    with torch.no_grad():
        images = model.sample(z, torch.arange(10))
        assert all(not torch.allclose(images[0], images[k]) for k in range(1, 10))
        convs(model.generator)[0].weight[16:].zero_()
        images = model.sample(z, torch.arange(10))
        for k in range(1, 10):
            torch.testing.assert_close(images[0], images[k], rtol=0, atol=0)


def test_losses_are_the_source_bce_plus_class_cross_entropies():
    """d_loss = -(L_S + L_C) with smoothing on real; g_loss = -log D_S(G) - log P(C=y|G)."""
    model = acgan(real_label=0.9)
    real, labels = batch(8)
    fake, fake_labels = (
        model.sample(model.latent(8), torch.arange(8) % 3).detach(),
        torch.arange(8) % 3,
    )
    loss, stats = model.discriminator_loss(real, labels, fake, fake_labels)
    real_out, fake_out = model.discriminator(real), model.discriminator(fake)
    expected = (
        discriminator_source_loss(real_out[:, :1], fake_out[:, :1], 0.9)
        + F.cross_entropy(real_out[:, 1:], labels)
        + F.cross_entropy(fake_out[:, 1:], fake_labels)
    )
    torch.testing.assert_close(loss, expected)
    accuracy = (real_out[:, 1:].argmax(1) == labels).float().mean().item()
    assert stats == {"d_class_acc": pytest.approx(accuracy)}
    g_expected = F.binary_cross_entropy_with_logits(
        fake_out[:, :1], torch.ones(8, 1)
    ) + F.cross_entropy(fake_out[:, 1:], fake_labels)
    torch.testing.assert_close(model.generator_loss(fake, fake_labels), g_expected)


def test_train_steps_report_losses_and_class_accuracy_and_move_both_networks():
    model = acgan(d_steps=2)
    g_before, d_before = snapshot(model.generator), snapshot(model.discriminator)
    for losses in step(model, *batch(), times=3):
        assert set(losses) == {"d_loss", "g_loss", "d_class_acc"}
        assert all(math.isfinite(v) for v in losses.values())
        assert 0.0 <= losses["d_class_acc"] <= 1.0
    assert changed(g_before, model.generator) == len(g_before)
    assert changed(d_before, model.discriminator) == len(d_before)
    assert family_class("acgan").reported_metrics()[-3:] == (
        "d_class_acc",
        "label_accuracy",
        "inception_score",
    )


def test_class_loss_on_a_fixed_labelled_batch_decreases():
    model = acgan(lr=1e-3)
    real, labels = batch(20)

    def class_loss() -> float:
        with torch.no_grad():  # train mode, as in the steps: batch statistics
            return F.cross_entropy(model.discriminator(real)[:, 1:], labels).item()

    before = class_loss()
    accuracies = [losses["d_class_acc"] for losses in step(model, real, labels, times=8)]
    assert class_loss() < before / 2
    assert accuracies[-1] > accuracies[0]


def test_checkpoint_round_trip_reproduces_samples_for_the_same_z_and_labels():
    trained = acgan(seed=5)
    step(trained, *batch(), times=3)
    state = trained.state_dict()
    fresh = acgan(seed=5)
    z, labels = trained.latent(6, torch.Generator().manual_seed(1)), torch.arange(6)
    trained.train(False)
    fresh.train(False)
    with torch.no_grad():
        assert not torch.equal(fresh.sample(z, labels), trained.sample(z, labels))
        fresh.load_state_dict(state)
        torch.testing.assert_close(
            fresh.sample(z, labels), trained.sample(z, labels), rtol=0, atol=0
        )


def test_classifier_feedback_changes_the_generator_update_and_needs_a_judge():
    generators, discriminators = {}, {}
    for alpha in (0.0, 1.0):
        model = acgan(seed=2, classifier_feedback=alpha)
        torch.manual_seed(0)
        model.attach_judge(LeNet(1, 10, 28))
        step(model, *batch())
        generators[alpha], discriminators[alpha] = (
            snapshot(model.generator),
            snapshot(model.discriminator),
        )
    assert all(
        torch.equal(a, b) for a, b in zip(discriminators[0.0], discriminators[1.0], strict=True)
    )
    assert any(not torch.equal(a, b) for a, b in zip(generators[0.0], generators[1.0], strict=True))
    with pytest.raises(ValueError, match="judge"):
        step(acgan(classifier_feedback=0.5), *batch())
