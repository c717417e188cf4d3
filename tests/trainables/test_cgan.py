"""The dense conditional GAN: MLP widths, batch-norm, label paths, training, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from evaluators.judges import LeNet
from trainables.families import family_class
from trainables.families.layers import Maxout

from .family_kit import CPU, changed, count, snapshot
from .family_kit import labelled_batch as batch
from .family_kit import labelled_step as step

SMALL = {"hidden_layers": 2, "hidden_units": 32, "n_z": 16}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cgan(shape=(1, 28, 28), **config):
    return family_class("cgan")({**SMALL, **config}, shape, 10, CPU)


def linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


# --- architecture -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_shapes_and_dense_widths(shape):
    model = cgan(shape, hidden_layers=3, hidden_units=24)
    z, labels = model.latent(4), torch.arange(4)
    images = model.sample(z, labels)
    assert images.shape == (4, *shape)
    assert images.min() >= -1 and images.max() <= 1
    assert model.discriminate(images, labels).shape == (4, 1)
    pixels = math.prod(shape)
    g, d = linears(model.generator), linears(model.discriminator)
    assert [(m.in_features, m.out_features) for m in g] == [
        (16 + 10, 24),
        (24, 24),
        (24, 24),
        (24, pixels),
    ]
    assert [(m.in_features, m.out_features) for m in d] == [
        (pixels + 10, 24),
        (24, 24),
        (24, 24),
        (24, 1),
    ]
    assert count(model.generator, nn.Conv2d) == count(model.discriminator, nn.Conv2d) == 0


def test_batchnorm_follows_every_hidden_layer_of_g_and_none_of_d():
    with_bn, without = cgan(hidden_layers=3), cgan(hidden_layers=3, batchnorm=False)
    assert count(with_bn.generator, nn.BatchNorm1d) == 3
    assert count(with_bn.discriminator, nn.BatchNorm1d) == 0
    assert count(without.generator, nn.BatchNorm1d) == 0
    assert count(without.discriminator, nn.BatchNorm1d) == 0


def test_maxout_widens_the_hidden_layers_by_the_piece_count():
    model = cgan(activation="maxout", maxout_pieces=3, hidden_units=8)
    assert count(model.generator, Maxout) == 2 and count(model.discriminator, Maxout) == 2
    assert linears(model.generator)[0].out_features == 24
    assert linears(model.generator)[1].in_features == 8
    assert all(math.isfinite(v) for v in step(model, *batch())[0].values())


def test_samples_depend_on_the_label_only_through_gs_label_weights():
    model = cgan()
    model.train(False)
    z = model.latent(1, torch.Generator().manual_seed(0)).expand(10, -1)
    with torch.no_grad():
        images = model.sample(z, torch.arange(10))
        assert all(not torch.allclose(images[0], images[k]) for k in range(1, 10))
        linears(model.generator)[0].weight[:, 16:].zero_()  # the one-hot's input weights
        images = model.sample(z, torch.arange(10))
        for k in range(1, 10):
            torch.testing.assert_close(images[0], images[k], rtol=0, atol=0)


def test_discriminator_reads_the_label_beside_the_flattened_image():
    model = cgan()
    model.train(False)
    images, _ = batch(4)
    with torch.no_grad():
        by_label = [model.discriminate(images, torch.full((4,), k)) for k in (3, 8)]
        assert not torch.allclose(*by_label)
        linears(model.discriminator)[0].weight[:, 28 * 28 :].zero_()
        by_label = [model.discriminate(images, torch.full((4,), k)) for k in (3, 8)]
        torch.testing.assert_close(*by_label, rtol=0, atol=0)


# --- training -----------------------------------------------------------------------------------


def test_train_steps_give_finite_losses_and_move_both_networks():
    model = cgan()
    g_before, d_before = snapshot(model.generator), snapshot(model.discriminator)
    for losses in step(model, *batch(), times=3):
        assert set(losses) == {"d_loss", "g_loss"}
        assert all(math.isfinite(v) for v in losses.values())
    assert changed(g_before, model.generator) == len(g_before)
    assert changed(d_before, model.discriminator) == len(d_before)


def test_checkpoint_round_trip_reproduces_samples_for_the_same_z_and_labels():
    trained = cgan(seed=5)
    step(trained, *batch(), times=3)
    state = trained.state_dict()
    fresh = cgan(seed=5)
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
    generators = {}
    for alpha in (0.0, 1.0):
        model = cgan(seed=2, classifier_feedback=alpha)
        torch.manual_seed(0)
        model.attach_judge(LeNet(1, 10, 28))
        step(model, *batch())
        generators[alpha] = snapshot(model.generator)
    assert any(not torch.equal(a, b) for a, b in zip(generators[0.0], generators[1.0], strict=True))
    with pytest.raises(ValueError, match="judge"):
        step(cgan(classifier_feedback=0.5), *batch())


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"hidden_layers": 0}, "hidden_layers"),
        ({"hidden_units": 0}, "hidden_units"),
        ({"g_layers": 3}, "g_layers"),  # a conv knob the dense family does not have
    ],
)
def test_bad_hyperparameters_raise_naming_the_key(config, key):
    with pytest.raises(ValueError, match=key):
        cgan(**config)
