"""The DCGAN family: shapes for every depth, losses, optimiser steps, checkpoints, config errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainables.families import TrainingDiverged, family_class
from trainables.families.layers import Maxout
from trainables.params import COMMON_PARAMS, Param, resolve_config

from .family_kit import CONVS, CPU, changed, count, snapshot
from .family_kit import image_batch as batch
from .family_kit import unlabelled_step as step

SMALL = {"base_channels": 8, "n_z": 16}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def dcgan(shape=(1, 28, 28), **config):
    return family_class("dcgan")({**SMALL, **config}, shape, 10, CPU)


# --- architecture -------------------------------------------------------------------------------


@pytest.mark.parametrize("upsample", ["transposed", "nearest"])
@pytest.mark.parametrize("layers", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_every_depth_gives_the_image_shape_and_one_logit(shape, layers, upsample):
    g_layers, d_layers = layers, 8 - layers  # both ends of 2..6 in one sweep
    model = dcgan(shape, g_layers=g_layers, d_layers=d_layers, upsample=upsample)
    images = model.sample(model.latent(3, torch.Generator().manual_seed(0)))
    assert images.shape == (3, *shape)
    assert images.min() >= -1 and images.max() <= 1
    assert model.discriminator(images).shape == (3, 1)
    assert count(model.generator, CONVS) == g_layers
    assert count(model.discriminator, CONVS) == d_layers


def test_batchnorm_false_leaves_no_batchnorm_modules():
    with_bn, without = dcgan(g_layers=4, d_layers=4), dcgan(g_layers=4, d_layers=4, batchnorm=False)
    # G: all but the output layer; D: all but the first and the final whole-map convolution
    assert count(with_bn.generator, nn.BatchNorm2d) == 3
    assert count(with_bn.discriminator, nn.BatchNorm2d) == 2
    assert count(without.generator, nn.BatchNorm2d) == 0
    assert count(without.discriminator, nn.BatchNorm2d) == 0


def test_maxout_is_the_elementwise_max_over_consecutive_channel_pieces():
    x = torch.tensor([[1.0, 5.0, -2.0, -3.0, 0.0, 7.0]]).view(1, 6, 1, 1)
    assert Maxout(2)(x).flatten().tolist() == [5.0, -2.0, 7.0]
    assert Maxout(3)(x).flatten().tolist() == [5.0, 7.0]
    y = torch.randn(2, 8, 3, 3)
    torch.testing.assert_close(Maxout(4)(y), y.view(2, 2, 4, 3, 3).amax(dim=2))


@pytest.mark.parametrize("pieces", [2, 3])
def test_maxout_activation_widens_convs_by_the_piece_count(pieces):
    model = dcgan(activation="maxout", maxout_pieces=pieces, g_layers=3, d_layers=3)
    plain = dcgan(g_layers=3, d_layers=3)
    assert count(model.generator, Maxout) == 2 and count(model.discriminator, Maxout) == 2
    first_g = [m for m in model.generator.modules() if isinstance(m, CONVS)][0]
    plain_g = [m for m in plain.generator.modules() if isinstance(m, CONVS)][0]
    assert first_g.out_channels == pieces * plain_g.out_channels
    images = model.sample(model.latent(4))
    assert images.shape == (4, 1, 28, 28) and model.discriminator(images).shape == (4, 1)
    assert all(math.isfinite(v) for v in step(model, batch())[0].values())


# --- training -----------------------------------------------------------------------------------


def test_train_steps_give_finite_losses_and_move_both_networks():
    model = dcgan()
    g_before, d_before = snapshot(model.generator), snapshot(model.discriminator)
    for losses in step(model, batch(), times=3):
        assert set(losses) == {"d_loss", "g_loss"}
        assert all(math.isfinite(v) for v in losses.values())
    assert changed(g_before, model.generator) == len(g_before)
    assert changed(d_before, model.discriminator) == len(d_before)


def test_d_steps_makes_the_discriminator_optimiser_step_that_often():
    model = dcgan(d_steps=3)
    assert model.real_batches_per_step == 3
    step(model, batch(), times=2)
    d_counts = {int(s["step"]) for s in model.opt_d.state.values()}
    g_counts = {int(s["step"]) for s in model.opt_g.state.values()}
    assert d_counts == {6} and g_counts == {2}


def test_minimax_generator_loss_is_negative_and_nonsaturating_positive():
    """minimax: mean(-softplus(l)) < 0; nonsaturating: mean(softplus(-l)) > 0; near init
    D(G(z)) ~ 1/2, so both are ~log 2 in magnitude."""
    minimax = step(dcgan(gen_loss="minimax"), batch())[0]["g_loss"]
    nonsaturating = step(dcgan(gen_loss="nonsaturating"), batch())[0]["g_loss"]
    assert minimax < 0 < nonsaturating
    assert abs(minimax) == pytest.approx(math.log(2), abs=0.2)
    assert nonsaturating == pytest.approx(math.log(2), abs=0.2)


def test_real_label_smoothing_shifts_d_loss_by_the_closed_form():
    """BCE(l, t) = softplus(l) - t l, so d_loss(t=0.9) - d_loss(t=1) = 0.1 mean(real logits)."""
    real = batch()
    # each constructor re-seeds the global RNG that train_step draws latents from, so build
    # and step one model at a time to give both the same weights and the same fakes
    d_smooth = step(dcgan(real_label=0.9), real)[0]["d_loss"]
    hard = dcgan(real_label=1.0)
    with torch.no_grad():
        logits = hard.discriminator(real)  # train mode: batch statistics, as in the step
    d_hard = step(hard, real)[0]["d_loss"]
    assert d_smooth != d_hard
    assert d_smooth - d_hard == pytest.approx(0.1 * logits.mean().item(), abs=1e-5)


def test_nan_batch_raises_training_diverged_naming_the_loss():
    model = dcgan()
    with pytest.raises(TrainingDiverged, match="d_loss=nan"):
        step(model, torch.full((8, 1, 28, 28), float("nan")))


def test_checkpoint_round_trip_reproduces_samples():
    trained = dcgan(seed=5)
    step(trained, batch(), times=3)
    state = trained.state_dict()
    fresh = dcgan(seed=5)
    z = trained.latent(6, torch.Generator().manual_seed(1))
    trained.train(False)
    fresh.train(False)
    with torch.no_grad():
        assert not torch.equal(fresh.sample(z), trained.sample(z))  # the load must matter
        fresh.load_state_dict(state)
        torch.testing.assert_close(fresh.sample(z), trained.sample(z), rtol=0, atol=0)
    assert fresh.opt_d.state_dict()["state"][0]["step"] == 3


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"bogus": 1}, "bogus"),
        ({"g_layers": 1}, "g_layers"),
        ({"d_layers": 7}, "d_layers"),
        ({"upsample": "bilinear"}, "upsample"),
        ({"real_label": 0.4}, "real_label"),
        ({"batchnorm": 1}, "batchnorm"),
    ],
)
def test_bad_hyperparameters_raise_naming_the_key(config, key):
    with pytest.raises(ValueError, match=key):
        dcgan(**config)


def test_resolve_config_fills_defaults_and_converts_ints_for_floats():
    resolved = resolve_config(COMMON_PARAMS, {"lr": 1, "batch_size": 32})
    assert resolved == {
        "lr": 1.0,
        "beta1": 0.5,
        "batch_size": 32,
        "seed": 0,
        "fid_samples": 1000,
        "g_ema": 0.0,
    }
    assert type(resolved["lr"]) is float and type(resolved["batch_size"]) is int


def test_param_check_accepts_ints_for_floats_and_rejects_bools_for_numbers():
    as_float, as_int = Param(float, 0.5, "f", low=0.0, high=1.0), Param(int, 3, "i", low=1)
    assert as_float.check(1) is None and as_float.check(0.25) is None
    assert "<= 1.0" in as_float.check(2)
    assert "expected float" in as_float.check(True)
    assert as_int.check(3) is None
    assert "expected int" in as_int.check(True)
    assert "expected int" in as_int.check(2.0)
    assert ">= 1" in as_int.check(0)
    assert "one of a, b" in Param(str, "a", "s", choices=("a", "b")).check("c")
    with pytest.raises(ValueError, match="batch_size"):
        resolve_config(COMMON_PARAMS, {"batch_size": True})
