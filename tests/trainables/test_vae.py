"""The VAE and CVAE families: architecture and shapes, the KL and reconstruction terms, the
reparameterisation, training, label conditioning, checkpoints and config errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from trainables.families import TrainingDiverged, family_class
from trainables.families.vae import gaussian_kl, reconstruction_loss, reparameterise

from .family_kit import CPU, changed, snapshot
from .family_kit import image_batch as batch

SMALL = {"base_channels": 8, "n_z": 8, "hidden": 32}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make(family="vae", shape=(1, 28, 28), **config):
    return family_class(family)({**SMALL, **config}, shape, 10, CPU)


def labels_of(n=8) -> torch.Tensor:
    return torch.arange(n) % 10


def step(model, real: torch.Tensor, labels: torch.Tensor | None = None, times: int = 1):
    labels = labels_of(len(real)) if labels is None else labels
    return [model.train_step([real], [labels]) for _ in range(times)]


def count(module: nn.Module, kinds) -> int:
    return sum(type(m) in kinds for m in module.modules())


# --- architecture -------------------------------------------------------------------------------


@pytest.mark.parametrize("upsample", ["transposed", "nearest"])
@pytest.mark.parametrize("family", ["vae", "cvae"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_samples_have_the_image_shape_and_range(shape, family, upsample):
    model = make(family, shape, upsample=upsample)
    images = model.sample(model.latent(3, torch.Generator().manual_seed(0)), labels_of(3))
    assert images.shape == (3, *shape)
    assert images.min() >= -1 and images.max() <= 1
    mu, logvar = model.encode(batch(3, shape), labels_of(3))
    assert mu.shape == logvar.shape == (3, 8)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_four_conv_encoder_and_three_transposed_plus_one_conv_decoder(shape):
    model = make("vae", shape)
    assert count(model.encoder, (nn.Conv2d,)) == 4
    assert count(model.encoder, (nn.ConvTranspose2d,)) == 0
    assert count(model.decoder, (nn.ConvTranspose2d,)) == 3
    assert count(model.decoder, (nn.Conv2d,)) == 1
    assert count(model.encoder, (nn.ReLU,)) == 5 and count(model.decoder, (nn.ReLU,)) == 5
    last = [m for m in model.decoder.modules() if isinstance(m, nn.Conv2d)][-1]
    assert last.out_channels == shape[0]
    nearest = make("vae", shape, upsample="nearest")
    assert count(nearest.decoder, (nn.Upsample,)) >= 2  # 28: two doublings, 32: three


def test_cvae_feeds_one_hot_labels_to_encoder_and_decoder():
    vae, cvae = make("vae"), make("cvae")
    first_conv = [m for m in cvae.encoder.modules() if isinstance(m, nn.Conv2d)][0]
    assert first_conv.in_channels == 1 + 10
    assert [m for m in vae.encoder.modules() if isinstance(m, nn.Conv2d)][0].in_channels == 1
    first_dense = [m for m in cvae.decoder.modules() if isinstance(m, nn.Linear)][0]
    assert first_dense.in_features == 8 + 10
    assert family_class("cvae").conditional and not family_class("vae").conditional


def test_batchnorm_and_maxout_options():
    bn = make("vae", batchnorm=True)
    assert count(bn.encoder, (nn.BatchNorm2d,)) == 4 and count(bn.decoder, (nn.BatchNorm2d,)) == 3
    assert count(make("vae").encoder, (nn.BatchNorm2d,)) == 0  # off by default
    maxout = make("vae", activation="maxout", maxout_pieces=3)
    assert all(math.isfinite(v) for v in step(maxout, batch())[0].values())
    assert maxout.sample(maxout.latent(2)).shape == (2, 1, 28, 28)


def test_reported_metrics_are_the_vae_losses_and_conditional_metrics_for_cvae():
    vae, cvae = family_class("vae").reported_metrics(), family_class("cvae").reported_metrics()
    assert {"loss", "recon", "kl", "fid"} <= set(vae) and "d_loss" not in vae
    assert "label_accuracy" not in vae and "label_accuracy" in cvae


# --- loss terms ---------------------------------------------------------------------------------


def test_kl_is_the_closed_form_for_a_diagonal_gaussian():
    mu = torch.tensor([[0.5, -1.0, 0.0], [0.0, 0.0, 0.0]])
    sigma = torch.tensor([[2.0, 0.5, 1.0], [1.0, 1.0, 1.0]])
    logvar = (sigma**2).log()
    expected = 0.5 * (mu**2 + sigma**2 - 1 - (sigma**2).log()).sum(dim=1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected)
    assert gaussian_kl(mu, logvar)[1].item() == 0.0  # q = prior
    # by hand: 0.5 * ((0.25 + 4 - 1 - log 4) + (1 + 0.25 - 1 - log 0.25) + 0)
    by_hand = 0.5 * (3.25 - math.log(4) + 0.25 - math.log(0.25))
    assert gaussian_kl(mu, logvar)[0].item() == pytest.approx(by_hand, rel=1e-6)
    reference = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, sigma), torch.distributions.Normal(0.0, 1.0)
    ).sum(1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), reference)


@pytest.mark.parametrize("family", ["vae", "cvae"])
def test_reported_kl_is_the_closed_form_of_a_hand_set_encoder_output(family):
    model = make(family, kl_weight=0.5)
    mu, sigma = torch.linspace(-1, 1, 8), torch.linspace(0.5, 2.0, 8)
    with torch.no_grad():  # the heads ignore their input: q(z|x) = N(mu, sigma^2) for every x
        model.encoder.mu.weight.zero_()
        model.encoder.mu.bias.copy_(mu)
        model.encoder.logvar.weight.zero_()
        model.encoder.logvar.bias.copy_((sigma**2).log())
    losses = step(model, batch())[0]
    closed = 0.5 * (mu**2 + sigma**2 - 1 - (sigma**2).log()).sum().item()
    assert losses["kl"] == pytest.approx(closed, rel=1e-5)
    assert losses["loss"] == pytest.approx(losses["recon"] + 0.5 * losses["kl"], rel=1e-6)


def test_reparameterisation_has_the_encoded_mean_and_standard_deviation():
    mu = torch.tensor([1.0, -2.0, 0.0]).expand(200_000, 3)
    sigma = torch.tensor([2.0, 0.5, 1.0])
    z = reparameterise(mu, (sigma**2).log().expand(200_000, 3), torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.mean(0), mu[0], atol=0.02, rtol=0)
    torch.testing.assert_close(z.std(0), sigma, atol=0, rtol=0.01)
    # gradients reach mu and logvar (the point of the trick)
    m, lv = torch.zeros(4, 2, requires_grad=True), torch.zeros(4, 2, requires_grad=True)
    reparameterise(m, lv).sum().backward()
    assert m.grad is not None and lv.grad is not None and torch.all(m.grad == 1)


def test_mse_reconstruction_is_zero_for_a_perfect_reconstruction():
    target = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9]).repeat(2, 1, 5, 1)  # (2, 1, 5, 5)
    perfect = torch.logit(target)
    assert reconstruction_loss(perfect, target, "mse").tolist() == pytest.approx([0, 0], abs=1e-10)
    off = reconstruction_loss(torch.logit(target.clamp(0.1, 0.75)), target, "mse")
    assert off.tolist() == pytest.approx([5 * 0.15**2] * 2, rel=1e-4)  # summed over pixels


def test_bce_reconstruction_is_the_pixel_sum_of_binary_cross_entropy_per_image():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(3, 2, 4, 4, generator=g), torch.rand(3, 2, 4, 4, generator=g)
    per_image = reconstruction_loss(logits, target, "bce")
    expected = F.binary_cross_entropy(torch.sigmoid(logits), target, reduction="none")
    torch.testing.assert_close(per_image, expected.flatten(1).sum(1))
    binary = (target > 0.5).float()  # a confident perfect reconstruction of binary pixels
    assert reconstruction_loss((binary * 2 - 1) * 30, binary, "bce").max() < 1e-9


def test_model_recon_matches_the_output_convention():
    """train_step's recon is the batch mean of the per-image loss against (real + 1) / 2 of the
    decoder's logits, i.e. the same images sample() returns as 2 sigmoid - 1."""
    model = make("vae", recon="mse", kl_weight=0.0)
    real = batch(4)
    with torch.no_grad():
        model.encoder.logvar.weight.zero_()
        model.encoder.logvar.bias.fill_(-60.0)  # sigma ~ 0: z = mu exactly in float32
        mu, _ = model.encode(real)
        decoded = model.sample(mu)
    expected = ((decoded - real) / 2).pow(2).flatten(1).sum(1).mean().item()
    losses = step(model, real)[0]
    assert losses["recon"] == pytest.approx(expected, rel=1e-5)
    assert losses["loss"] == pytest.approx(losses["recon"], rel=1e-6)


# --- training -----------------------------------------------------------------------------------


@pytest.mark.parametrize("recon", ["bce", "mse"])
@pytest.mark.parametrize("family", ["vae", "cvae"])
def test_train_steps_give_finite_losses_and_move_every_weight(family, recon):
    model = make(family, recon=recon, lr=1e-3)
    before = snapshot(model.encoder, model.decoder)
    history = step(model, batch(), times=5)
    for losses in history:
        assert set(losses) == {"loss", "recon", "kl"}
        assert all(math.isfinite(v) for v in losses.values())
        assert losses["loss"] == pytest.approx(losses["recon"] + losses["kl"], rel=1e-6)
        assert losses["kl"] >= 0
    assert changed(before, model.encoder, model.decoder) == len(before)
    assert history[-1]["loss"] < history[0]["loss"]


def test_adam_uses_beta1_and_steps_once_per_train_step():
    model = make("vae", beta1=0.9)
    assert model.opt.param_groups[0]["betas"] == (0.9, 0.999)
    assert model.real_batches_per_step == 1
    step(model, batch(), times=3)
    assert {int(s["step"]) for s in model.opt.state.values()} == {3}


def test_nan_batch_raises_training_diverged():
    with pytest.raises(TrainingDiverged, match="nan"):
        step(make("vae"), torch.full((4, 1, 28, 28), float("nan")))


@pytest.mark.parametrize("family", ["vae", "cvae"])
def test_checkpoint_round_trip_reproduces_samples(family):
    trained = make(family, seed=5, batchnorm=True)
    step(trained, batch(), times=3)
    state = trained.state_dict()
    fresh = make(family, seed=5, batchnorm=True)
    z, labels = trained.latent(6, torch.Generator().manual_seed(1)), labels_of(6)
    trained.train(False)
    fresh.train(False)
    with torch.no_grad():
        assert not torch.equal(fresh.sample(z, labels), trained.sample(z, labels))
        fresh.load_state_dict(state)
        torch.testing.assert_close(
            fresh.sample(z, labels), trained.sample(z, labels), rtol=0, atol=0
        )
    assert fresh.opt.state_dict()["state"][0]["step"] == 3
    assert torch.equal(fresh.rng.get_state(), trained.rng.get_state())


# --- labels -------------------------------------------------------------------------------------


def test_cvae_samples_depend_on_the_label_row_by_row():
    model = make("cvae")
    model.train(False)
    z = model.latent(1, torch.Generator().manual_seed(3)).expand(10, -1)
    with torch.no_grad():
        images = model.sample(z, torch.arange(10))
        # same z, different labels: ten different images
        assert len({tuple(im.flatten().tolist()) for im in images}) == 10
        # row i is decided by label i alone
        for i in (0, 7):
            torch.testing.assert_close(images[i : i + 1], model.sample(z[:1], torch.tensor([i])))
        swapped = model.sample(z[:2], torch.tensor([7, 0]))
        torch.testing.assert_close(swapped, images[[7, 0]])


def test_cvae_needs_labels_and_vae_ignores_them():
    with pytest.raises(ValueError, match="labels"):
        make("cvae").sample(torch.zeros(2, 8))
    vae = make("vae")
    vae.train(False)
    z = vae.latent(3)
    with torch.no_grad():
        torch.testing.assert_close(vae.sample(z), vae.sample(z, torch.tensor([1, 2, 3])))


def test_cvae_learns_to_honour_labels():
    """Label 0 images are black, label 1 images white: after training, the decoder draws the
    label's colour for prior latents."""
    model = make("cvae", lr=1e-2)
    labels = torch.arange(16) % 2
    real = (labels.float() * 2 - 1).view(16, 1, 1, 1).expand(16, 1, 28, 28).contiguous()
    step(model, real, labels, times=40)
    model.train(False)
    z = model.latent(8, torch.Generator().manual_seed(0))
    with torch.no_grad():
        dark = model.sample(z, torch.zeros(8, dtype=torch.long)).mean().item()
        light = model.sample(z, torch.ones(8, dtype=torch.long)).mean().item()
    assert dark < -0.5 and light > 0.5


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["vae", "cvae"])
@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"bogus": 1}, "bogus"),
        ({"n_z": 0}, "n_z"),
        ({"hidden": 0}, "hidden"),
        ({"recon": "l1"}, "recon"),
        ({"kl_weight": -0.1}, "kl_weight"),
        ({"activation": "tanh"}, "activation"),
        ({"g_layers": 3}, "g_layers"),  # a GAN knob: the VAE's depth is the report's, fixed
    ],
)
def test_bad_hyperparameters_raise_naming_the_key(family, config, key):
    with pytest.raises(ValueError, match=key):
        make(family, **config)


def test_defaults():
    config = make("vae").config
    assert config["n_z"] == 8  # SMALL
    defaults = {k: p.default for k, p in family_class("vae").params.items()}
    assert defaults == {
        "n_z": 16,
        "base_channels": 64,
        "hidden": 128,
        "activation": "relu",
        "maxout_pieces": 2,
        "upsample": "transposed",
        "batchnorm": False,
        "recon": "bce",
        "kl_weight": 1.0,
    }
    cvae = family_class("cvae").params
    assert set(cvae) == {*family_class("vae").params, "classifier_feedback"}
    assert cvae["classifier_feedback"].default == 0.0
    assert "classifier_feedback" not in family_class("vae").params


class UniformJudge(nn.Module):
    """A judge whose logits are all 0: CE = log(10) for any image and label."""

    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(784, 10)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x):
        return self.out(x.flatten(1))


def test_cvae_classifier_feedback_adds_alpha_times_the_judges_cross_entropy():
    model = make("cvae", classifier_feedback=2.0)
    with pytest.raises(ValueError, match="judge"):
        model.attach_judge(None)
    model.attach_judge(UniformJudge())
    losses = step(model, batch())[0]
    feedback = losses["loss"] - losses["recon"] - losses["kl"]
    assert feedback == pytest.approx(2.0 * math.log(10), rel=1e-4)


def test_cvae_classifier_feedback_moves_only_the_decoder():
    """Same weights and noise with and without feedback: the feedback term only reaches the
    decoder (through its samples), so the encoders end equal and the decoders differ."""
    judge = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    torch.nn.init.normal_(judge[1].weight, 0.0, 0.5)
    plain, fed = make("cvae"), make("cvae", classifier_feedback=5.0)
    fed.attach_judge(judge)
    step(plain, batch())
    step(fed, batch())
    for a, b in zip(plain.encoder.parameters(), fed.encoder.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert any(
        not torch.equal(a, b)
        for a, b in zip(plain.decoder.parameters(), fed.decoder.parameters(), strict=True)
    )
