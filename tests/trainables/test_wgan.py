"""The WGAN family: critic shape, clipping, n_critic, the gradient penalty, reported estimates,
checkpoints and config errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainables.families import TrainingDiverged, family_class
from trainables.families.wgan import gradient_penalty

from .family_kit import CONVS, CPU, changed, count, snapshot
from .family_kit import image_batch as batch
from .family_kit import unlabelled_step as step

SMALL = {"base_channels": 8, "n_z": 16, "n_critic": 2}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def wgan(shape=(1, 28, 28), **config):
    return family_class("wgan")({**SMALL, **config}, shape, 10, CPU)


# --- architecture -------------------------------------------------------------------------------


@pytest.mark.parametrize("constraint", ["clip", "gp"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_generator_gives_the_image_shape_and_the_critic_one_unbounded_value(shape, constraint):
    model = wgan(shape, constraint=constraint, g_layers=4, d_layers=3)
    images = model.sample(model.latent(3, torch.Generator().manual_seed(0)))
    assert images.shape == (3, *shape)
    assert images.min() >= -1 and images.max() <= 1
    assert model.critic(images).shape == (3, 1)
    assert count(model.generator, CONVS) == 4 and count(model.critic, CONVS) == 3
    assert count(model.critic, nn.Sigmoid) == 0  # the critic's value is the raw last output


def test_gp_critic_uses_layer_norm_where_clip_keeps_batch_norm():
    clip, gp = wgan(d_layers=4), wgan(d_layers=4, constraint="gp")
    assert count(clip.critic, nn.BatchNorm2d) == 2 and count(clip.critic, nn.GroupNorm) == 0
    assert count(gp.critic, nn.BatchNorm2d) == 0 and count(gp.critic, nn.GroupNorm) == 2
    assert all(m.num_groups == 1 for m in gp.critic.modules() if isinstance(m, nn.GroupNorm))
    plain = wgan(d_layers=4, constraint="gp", batchnorm=False)
    assert count(plain.critic, (nn.BatchNorm2d, nn.GroupNorm)) == 0
    assert count(gp.generator, nn.BatchNorm2d) == 2  # G follows `batchnorm` either way
    # a layer-normed critic scores each image independently of the rest of the batch
    images = batch(4)
    torch.testing.assert_close(gp.critic(images)[:1], gp.critic(images[:1]))


def test_optimizer_choice_and_adam_betas():
    assert isinstance(wgan().opt_d, torch.optim.RMSprop)
    assert isinstance(wgan(constraint="gp").opt_g, torch.optim.RMSprop)  # explicit, not implied
    adam = wgan(optimizer="adam", beta1=0.0, lr=1e-4)
    for opt in (adam.opt_d, adam.opt_g):
        assert isinstance(opt, torch.optim.Adam)
        assert opt.param_groups[0]["betas"] == (0.0, 0.9) and opt.param_groups[0]["lr"] == 1e-4


def test_reported_metrics_include_the_wasserstein_estimate():
    metrics = family_class("wgan").reported_metrics()
    assert {"d_loss", "g_loss", "wasserstein", "fid"} <= set(metrics)
    assert "label_accuracy" not in metrics


# --- training -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("constraint", "optimizer"), [("clip", "rmsprop"), ("gp", "adam")])
def test_train_steps_give_finite_losses_and_move_both_networks(constraint, optimizer):
    model = wgan(constraint=constraint, optimizer=optimizer)
    g_before, d_before = snapshot(model.generator), snapshot(model.critic)
    for losses in step(model, batch(), times=2):
        assert set(losses) == {"d_loss", "g_loss", "wasserstein"}
        assert all(math.isfinite(v) for v in losses.values())
    assert changed(g_before, model.generator) == len(g_before)
    # Every critic parameter but the last bias, which cancels in E[D(x)] - E[D(G(z))] (and
    # does not enter the input gradient), so its gradient is exactly zero.
    final_bias = [m for m in model.critic.modules() if isinstance(m, nn.Conv2d)][-1].bias
    assert changed(d_before, model.critic) == len(d_before) - 1
    assert torch.equal(final_bias, d_before[-1])


def test_clipping_keeps_every_critic_parameter_within_the_bound():
    model = wgan(clip=0.005, lr=0.05)  # a large step pushes weights past the bound
    step(model, batch())
    params = list(model.critic.parameters())
    assert all(p.abs().max() <= 0.005 for p in params)
    assert any((p.abs() == 0.005).any() for p in params)  # ... and clipping brought them back
    bn = [m for m in model.critic.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bn and all(m.weight.abs().max() <= 0.005 for m in bn)  # BN scales are clipped too


def test_gp_does_not_clip():
    model = wgan(constraint="gp", clip=1e-6)
    step(model, batch())
    assert max(p.abs().max().item() for p in model.critic.parameters()) > 1e-3


@pytest.mark.parametrize("optimizer", ["rmsprop", "adam"])
def test_n_critic_steps_the_critic_optimiser_that_often(optimizer):
    model = wgan(n_critic=3, optimizer=optimizer)
    assert model.real_batches_per_step == 3
    step(model, batch(), times=2)
    d_counts = {int(s["step"]) for s in model.opt_d.state.values()}
    g_counts = {int(s["step"]) for s in model.opt_g.state.values()}
    assert d_counts == {6} and g_counts == {2}


def test_train_step_uses_every_real_batch_it_is_given():
    """A NaN in any of the n_critic batches reaches the critic loss."""
    model = wgan(n_critic=3)
    real = [batch(), batch(seed=1), torch.full((8, 1, 28, 28), float("nan"))]
    with pytest.raises(TrainingDiverged, match="d_loss=nan"):
        model.train_step(real, [torch.zeros(8, dtype=torch.long)] * 3)


def test_wasserstein_is_minus_the_critic_loss_under_clipping():
    for losses in step(wgan(), batch(), times=2):
        assert losses["wasserstein"] == pytest.approx(-losses["d_loss"], abs=1e-12)


def test_gp_critic_loss_adds_the_weighted_penalty_linearly():
    """One critic step from the same weights and random draws: d_loss = -wasserstein +
    gp_weight * penalty with one penalty > 0 for every weight (at initialisation the critic's
    input gradients are far from unit norm)."""
    runs = {
        w: step(wgan(constraint="gp", gp_weight=w, n_critic=1), batch())[0]
        for w in (0.0, 10.0, 20.0)
    }
    assert len({r["wasserstein"] for r in runs.values()}) == 1
    assert runs[0.0]["d_loss"] == pytest.approx(-runs[0.0]["wasserstein"], abs=1e-7)
    penalty = (runs[10.0]["d_loss"] + runs[10.0]["wasserstein"]) / 10
    assert penalty > 1e-3
    assert runs[20.0]["d_loss"] + runs[20.0]["wasserstein"] == pytest.approx(20 * penalty, rel=1e-4)


class Linear(nn.Module):
    """D(x) = <w, flatten(x)> + b, whose input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.flatten())
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) @ self.w + self.b).unsqueeze(1)


def test_gradient_penalty_is_zero_for_a_unit_norm_linear_critic_and_the_formula_otherwise():
    real, fake = batch(6, (3, 4, 4)), batch(6, (3, 4, 4), seed=1)
    w = torch.randn(3 * 16, generator=torch.Generator().manual_seed(2))
    unit = Linear(w / w.norm())
    assert gradient_penalty(unit, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    # ||grad|| = s everywhere, so the penalty is (s - 1)^2 exactly
    for scale in (0.5, 2.0, 3.0):
        value = gradient_penalty(Linear(scale * w / w.norm()), real, fake).item()
        assert value == pytest.approx((scale - 1) ** 2, rel=1e-5)


def test_gradient_penalty_is_differentiable_in_the_critic_weights():
    real, fake = batch(4, (1, 4, 4)), batch(4, (1, 4, 4), seed=1)
    critic = Linear(2 * torch.ones(16) / 4)  # norm 2
    gradient_penalty(critic, real, fake).backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = w at ||w|| = 2; b has no influence
    torch.testing.assert_close(critic.w.grad, critic.w.detach())
    assert critic.b.grad is None


def test_gradient_penalty_matches_a_hand_computed_nonlinear_case():
    """D(x) = sum(x^2): grad = 2 x at the interpolate, so the penalty is computable by hand
    once the interpolation weights are known (same generator seed)."""
    real, fake = batch(5, (1, 3, 3)), batch(5, (1, 3, 3), seed=1)

    class Square(nn.Module):
        def forward(self, x):
            return x.pow(2).flatten(1).sum(1, keepdim=True)

    value = gradient_penalty(Square(), real, fake, torch.Generator().manual_seed(7))
    e = torch.rand(5, 1, 1, 1, generator=torch.Generator().manual_seed(7))
    mixed = e * real + (1 - e) * fake
    expected = ((2 * mixed).flatten(1).norm(dim=1) - 1).pow(2).mean()
    torch.testing.assert_close(value, expected)


def test_nan_batch_raises_training_diverged():
    with pytest.raises(TrainingDiverged, match="nan"):
        step(wgan(constraint="gp"), torch.full((8, 1, 28, 28), float("nan")))


@pytest.mark.parametrize("constraint", ["clip", "gp"])
def test_checkpoint_round_trip_reproduces_samples(constraint):
    trained = wgan(seed=5, constraint=constraint)
    step(trained, batch(), times=2)
    state = trained.state_dict()
    fresh = wgan(seed=5, constraint=constraint)
    z = trained.latent(6, torch.Generator().manual_seed(1))
    trained.train(False)
    fresh.train(False)
    with torch.no_grad():
        assert not torch.equal(fresh.sample(z), trained.sample(z))  # the load must matter
        fresh.load_state_dict(state)
        torch.testing.assert_close(fresh.sample(z), trained.sample(z), rtol=0, atol=0)
        images = batch()
        torch.testing.assert_close(fresh.critic(images), trained.critic(images), rtol=0, atol=0)
    assert fresh.opt_d.state_dict()["state"][0]["step"] == 4  # 2 steps x n_critic 2


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"bogus": 1}, "bogus"),
        ({"n_critic": 0}, "n_critic"),
        ({"n_critic": 2.0}, "n_critic"),
        ({"constraint": "spectral"}, "constraint"),
        ({"clip": 0.0}, "clip"),
        ({"gp_weight": -1.0}, "gp_weight"),
        ({"optimizer": "sgd"}, "optimizer"),
        ({"g_layers": 1}, "g_layers"),
        ({"d_steps": 2}, "d_steps"),  # DCGAN's knob; WGAN's is n_critic
    ],
)
def test_bad_hyperparameters_raise_naming_the_key(config, key):
    with pytest.raises(ValueError, match=key):
        wgan(**config)


def test_shared_conv_knobs_are_the_base_declarations():
    from trainables.families.base import CONV_PARAMS

    params = family_class("wgan").params
    for key in (
        "g_layers",
        "d_layers",
        "base_channels",
        "n_z",
        "upsample",
        "activation",
        "maxout_pieces",
    ):
        assert params[key] is CONV_PARAMS[key]
    assert params["batchnorm"].default is True and params["batchnorm"].kind is bool
