"""The BEGAN family: autoencoder shapes, the uniform prior, the beta-weighted distance, the k_t
update, learning-rate decay, per-distance metrics, checkpoints and config errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from evaluators.image_quality import gmsm_distance, l1
from trainables.datasets import load_dataset
from trainables.families import TrainingDiverged, family_class
from trainables.families.began import mixed_distance, parse_betas

from .family_kit import CPU, changed, count, snapshot
from .family_kit import image_batch as batch
from .family_kit import unlabelled_step as step

SMALL = {"base_channels": 8, "n_z": 16}
COLOUR = (3, 32, 32)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def began(shape=(1, 28, 28), **config):
    return family_class("began")({**SMALL, **config}, shape, 10, CPU)


def strided(module: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d) and m.stride == (2, 2) for m in module.modules())


# --- architecture -------------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "scales"), [((1, 28, 28), 2), (COLOUR, 2), ((3, 64, 64), 3)])
def test_generator_and_autoencoder_keep_the_image_shape(shape, scales):
    model = began(shape)
    images = model.sample(model.latent(3, torch.Generator().manual_seed(0)))
    assert images.shape == (3, *shape)
    assert images.min() >= -1 and images.max() <= 1
    assert model.discriminator(images).shape == (3, *shape)
    encoder, decoder = model.discriminator.encoder, model.discriminator.decoder
    assert encoder(images).shape == (3, 16)  # N_h = N_z
    # stride-2 downsampling and nearest upsampling, once per halving down to 8x8 (7x7 for 28)
    assert strided(encoder) == scales and strided(decoder) == strided(model.generator) == 0
    ups = [m for m in decoder.modules() if isinstance(m, nn.Upsample)]
    assert len(ups) == scales and all(m.mode == "nearest" for m in ups)
    # two 3x3 convs per scale plus the first (and, in the decoder, the output) conv
    assert count(encoder, nn.Conv2d) == 1 + 2 * (scales + 1) + scales
    assert count(decoder, nn.Conv2d) == 2 * (scales + 1) + 1
    for net in (encoder, decoder, model.generator):
        assert count(net, (nn.BatchNorm2d, nn.BatchNorm1d)) == 0
        assert all(m.kernel_size == (3, 3) for m in net.modules() if isinstance(m, nn.Conv2d))
    assert count(encoder, nn.ELU) == count(encoder, nn.Conv2d)
    # the generator is the decoder's architecture with its own weights
    g_shapes = [p.shape for p in model.generator.parameters()]
    assert g_shapes == [p.shape for p in decoder.parameters()]
    assert not torch.equal(next(model.generator.parameters()), next(decoder.parameters()))
    # samples end in tanh like every family's; the autoencoder's output is linear, as in the
    # papers (behind a tanh, l1 towards MNIST's -1 background saturates it)
    assert isinstance(model.generator[-1], nn.Tanh)
    assert isinstance(decoder[-1], nn.Conv2d) and count(decoder, nn.Tanh) == 0


def test_encoder_filters_grow_linearly_and_the_decoders_stay_constant():
    model = began(COLOUR, base_channels=4)
    enc = [
        m.out_channels for m in model.discriminator.encoder.modules() if isinstance(m, nn.Conv2d)
    ]
    assert enc == [4, 4, 4, 8, 8, 8, 12, 12, 12]
    dec = [m.out_channels for m in model.generator.modules() if isinstance(m, nn.Conv2d)]
    assert dec == [4] * 6 + [3]
    hidden = [m for m in model.discriminator.encoder.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in hidden] == [(12 * 8 * 8, 16)]


def test_latents_are_uniform_on_minus_one_to_one():
    z = began().latent(4000, torch.Generator().manual_seed(0))
    assert z.shape == (4000, 16) and z.min() >= -1 and z.max() < 1
    assert z.mean().item() == pytest.approx(0.0, abs=0.01)
    assert z.var().item() == pytest.approx(1 / 3, rel=0.02)  # U(-1, 1)


def test_reported_metrics():
    metrics = family_class("began").reported_metrics()
    assert {
        "d_loss",
        "g_loss",
        "k_t",
        "m_global",
        "l1_real",
        "l1_fake",
        "gmsm_real",
        "gmsm_fake",
        "chrom_real",
        "chrom_fake",
        "fid",
    } <= set(metrics)
    assert "label_accuracy" not in metrics


# --- the distance -------------------------------------------------------------------------------


def _similarity(a: float, b: float, c: float = 0.0026) -> float:
    return (2 * a * b + c) / (a * a + b * b + c)


def test_weighted_mix_is_the_closed_form_for_coloured_ramps():
    """Each channel is a horizontal ramp plus a per-channel offset. Y is the ramp (its weights
    sum to 1), I and Q are the offsets' (theirs sum to 0), so every distance is known by hand:
    Sobel/4 sees 2 x slope inside and 1 x slope on the two replicated edge columns."""
    j = torch.arange(8, dtype=torch.float64)
    ref_offsets, dist_offsets = (0.3, 0.1, 0.0), (0.1, 0.05, 0.0)
    reference = torch.stack([0.1 + 0.05 * j + o for o in ref_offsets]).expand(2, 4, 3, 8)
    distorted = torch.stack([0.1 + 0.02 * j + o for o in dist_offsets]).expand(2, 4, 3, 8)
    reference, distorted = reference.permute(0, 2, 1, 3), distorted.permute(0, 2, 1, 3)
    l1_by_hand = 0.03 * 3.5 + (0.2 + 0.05 + 0.0) / 3
    gmsm_by_hand = 1 - (6 * _similarity(0.10, 0.04) + 2 * _similarity(0.05, 0.02)) / 8

    def iq(r, g, b):
        return 0.596 * r - 0.274 * g - 0.322 * b, 0.211 * r - 0.523 * g + 0.312 * b

    (i_r, q_r), (i_d, q_d) = iq(*ref_offsets), iq(*dist_offsets)
    chrom_by_hand = 1 - _similarity(i_r, i_d) * _similarity(q_r, q_d)
    by_hand = {"l1": l1_by_hand, "gmsm": gmsm_by_hand, "chrom": chrom_by_hand}
    assert min(by_hand.values()) > 0.01  # all three distances take part
    for betas in ((1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 1, 1), (2, 1, 0), (0.5, 0, 2)):
        weights = dict(zip(("l1", "gmsm", "chrom"), betas, strict=True))
        expected = sum(b * by_hand[d] for d, b in weights.items()) / sum(betas)
        per_image = mixed_distance(reference, distorted, weights, reduction="none")
        assert per_image.tolist() == pytest.approx([expected] * 2, rel=1e-9), betas
        assert mixed_distance(reference, distorted, weights).item() == pytest.approx(expected)


def test_mix_refuses_bad_weights():
    images = torch.rand(1, 3, 8, 8)
    for betas in ({"l1": 0, "gmsm": 0}, {"l1": -1, "gmsm": 2}, {"l2": 1}):
        with pytest.raises(ValueError, match="betas"):
            mixed_distance(images, images, betas)


def test_betas_strings_parse_in_l1_gmsm_chrom_order():
    assert parse_betas("2-1-0") == {"l1": 2.0, "gmsm": 1.0, "chrom": 0.0}
    assert parse_betas("0.5-0-1.5") == {"l1": 0.5, "gmsm": 0.0, "chrom": 1.5}
    for bad in ("1-1", "1-1-1-1", "a-1-0", "", "1--1-0", "inf-1-0"):
        with pytest.raises(ValueError, match="l1-gmsm-chrom"):
            parse_betas(bad)


def test_betas_string_sets_the_three_weights():
    model = began(COLOUR, betas="2-1-0")
    assert model.betas == {"l1": 2.0, "gmsm": 1.0, "chrom": 0.0}
    assert (model.config["beta_l1"], model.config["beta_gmsm"]) == (2.0, 1.0)
    assert began(COLOUR, betas="1-1-1", beta_gmsm=1.0).betas["chrom"] == 1.0  # agreeing is fine
    assert began(COLOUR, beta_l1=0.0, beta_chrom=1.0).betas == {
        "l1": 0.0,
        "gmsm": 0.0,
        "chrom": 1.0,
    }
    # the resolved config (what checkpoints store) builds the same family again
    again = family_class("began")(model.config, COLOUR, 10, CPU)
    assert again.config == model.config


# --- training -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "betas"), [((1, 28, 28), "1-1-0"), (COLOUR, "1-1-1")])
def test_train_steps_give_finite_losses_and_move_every_weight(shape, betas):
    model = began(shape, betas=betas, lr=1e-3)
    g_before, d_before = snapshot(model.generator), snapshot(model.discriminator)
    for losses in step(model, batch(shape=shape), times=2):
        assert set(losses) == set(family_class("began").losses + model.extra_metrics)
        colour = {k: v for k, v in losses.items() if shape[0] == 3 or "chrom" not in k}
        assert all(math.isfinite(v) for v in colour.values())
        assert 0 <= losses["k_t"] <= 1
    assert changed(g_before, model.generator) == len(g_before)
    assert changed(d_before, model.discriminator) == len(d_before)
    assert {int(s["step"]) for opt in (model.opt_d, model.opt_g) for s in opt.state.values()} == {2}


def test_chrominance_metrics_are_nan_on_grey_images_and_finite_on_colour():
    grey = step(began(), batch())[0]
    assert math.isnan(grey["chrom_real"]) and math.isnan(grey["chrom_fake"])
    colour = step(began(COLOUR), batch(shape=COLOUR))[0]
    assert 0 < colour["chrom_real"] < 2 and 0 <= colour["chrom_fake"] < 2


def _autoencoder_losses(model, real: torch.Tensor) -> tuple[float, float, torch.Tensor]:
    """L(x) and L(G(z)) with L = (l1 + gmsm) / 2, computed from the evaluators with the next
    latents the model will draw (a copy of its RNG), before its step."""
    rng = torch.Generator()
    rng.set_state(model.rng.get_state())
    with torch.no_grad():
        fake = model.generator(model.latent(len(real), rng))

        def loss(v: torch.Tensor) -> float:
            a, b = (v + 1) / 2, (model.discriminator(v) + 1) / 2
            return ((l1(a, b) + gmsm_distance(a, b)) / 2).item()

        return loss(real), loss(fake), fake


def test_k_follows_the_update_rule_on_hand_computed_losses():
    model = began(betas="1-1-0", gamma=0.7, lambda_k=0.5)
    real = batch()
    k = 0.0
    for _ in range(3):
        l_real, l_fake, _fake = _autoencoder_losses(model, real)
        losses = step(model, real)[0]
        assert losses["d_loss"] == pytest.approx(l_real - k * l_fake, rel=1e-5)
        assert losses["g_loss"] == pytest.approx(l_fake, rel=1e-5)
        assert losses["m_global"] == pytest.approx(l_real + abs(0.7 * l_real - l_fake), rel=1e-5)
        k = min(max(k + 0.5 * (0.7 * l_real - l_fake), 0.0), 1.0)
        assert losses["k_t"] == pytest.approx(k, rel=1e-5) and model.k == losses["k_t"]
    assert 0 < k < 1  # the rule moved k without clipping


def test_k_is_clipped_to_zero_and_one():
    model = began(gamma=1.0, lambda_k=1.0)  # gamma L(x) > L(G(z)) for an untrained G
    ks = [s["k_t"] for s in step(model, batch(), times=8)]
    assert all(0 <= k <= 1 for k in ks) and ks[-1] == 1.0
    assert ks == sorted(ks)
    never = began(gamma=0.0, lambda_k=1.0)  # 0 - L(G(z)) < 0 from k_0 = 0
    assert [s["k_t"] for s in step(never, batch(), times=3)] == [0.0] * 3


def test_learning_rate_halves_every_lr_decay_every_steps_down_to_the_floor():
    model = began(lr=1e-3, lr_decay_every=2, lr_floor=3e-4)
    seen = []
    for _ in range(6):
        step(model, batch(4))
        seen.append({g["lr"] for opt in (model.opt_d, model.opt_g) for g in opt.param_groups})
    assert seen == [{1e-3}, {1e-3}, {5e-4}, {5e-4}, {3e-4}, {3e-4}]
    high_floor = began(lr=1e-4, lr_decay_every=1, lr_floor=1e-3)  # never raises lr
    step(high_floor, batch(4), times=3)
    assert high_floor.current_lr() == 1e-4


def test_gradients_are_those_of_d_loss_for_the_autoencoder_and_g_loss_for_the_generator():
    """Reference gradients by autograd on the two losses, from the same weights, latents and
    k_t, against what the step leaves in .grad."""
    model = began(COLOUR, betas="1-1-1")
    model.k = 0.3
    real = batch(shape=COLOUR)
    rng = torch.Generator()
    rng.set_state(model.rng.get_state())
    d_params, g_params = list(model.discriminator.parameters()), list(model.generator.parameters())

    def loss(v: torch.Tensor) -> torch.Tensor:
        return mixed_distance(
            (v + 1) / 2, (model.discriminator(v) + 1) / 2, {"l1": 1.0, "gmsm": 1.0, "chrom": 1.0}
        )

    fake = model.generator(model.latent(len(real), rng))
    d_expected = torch.autograd.grad(loss(real) - 0.3 * loss(fake), d_params)
    g_expected = torch.autograd.grad(loss(fake), g_params)
    step(model, real)
    for p, expected in zip(d_params + g_params, d_expected + g_expected, strict=True):
        torch.testing.assert_close(p.grad, expected, rtol=1e-4, atol=1e-7)


def test_autoencoder_step_ignores_the_generator_while_k_is_zero():
    """With k = 0 the discriminator's loss is L(x) alone, so G's weights do not reach it: two
    models that differ only in G's weights take the same autoencoder step."""
    a, b = began(seed=1), began(seed=1)
    with torch.no_grad():
        for p in b.generator.parameters():
            p.mul_(1.5)
    step(a, batch())
    step(b, batch())
    for pa, pb in zip(a.discriminator.parameters(), b.discriminator.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def _digits(n: int = 16) -> torch.Tensor:
    """The first ``n`` training digits of mnist5k on [-1, 1]."""
    data = load_dataset({"name": "mnist5k"})
    return torch.tensor(data.train_images[:n].copy()).float().div(127.5).sub(1)


def test_autoencoder_output_depends_on_its_input_from_the_start():
    """At initialisation a reconstruction must carry its input: with PyTorch's default
    initialisation the signal shrinks ~3x per layer through BEGAN's ~17 layers, so every digit
    got the same reconstruction (spread over the batch ~1e-5; docs/decisions.md, "BEGAN")."""
    model = family_class("began")({}, (1, 28, 28), 10, CPU)
    with torch.no_grad():
        reconstructions = model.discriminator(_digits())
    assert reconstructions.std(dim=0).mean() > 1e-2


def test_autoencoder_alone_beats_an_all_black_reconstruction_within_120_steps():
    """The symptom BEGAN had: an autoencoder that reconstructs every digit as the black
    background (l1 = the digits' mean intensity, ~0.13) for ~1,000 steps. At the defaults, 120
    steps of the autoencoder alone on 16 digits go below that (0.70 of it; 1.08 with PyTorch's
    default initialisation)."""
    model = family_class("began")({}, (1, 28, 28), 10, CPU)
    digits = _digits()
    black = ((digits + 1) / 2).mean().item()  # the l1 of an all-black reconstruction

    def loss() -> torch.Tensor:
        return mixed_distance((digits + 1) / 2, (model.discriminator(digits) + 1) / 2, model.betas)

    for _ in range(120):
        model.opt_d.zero_grad(set_to_none=True)
        loss().backward()
        model.opt_d.step()
    with torch.no_grad():
        assert loss().item() < 0.97 * black


def test_nan_batch_raises_training_diverged():
    with pytest.raises(TrainingDiverged, match="nan"):
        step(began(), torch.full((4, 1, 28, 28), float("nan")))


def test_checkpoint_round_trip_restores_weights_k_and_the_decay_clock():
    trained = began(COLOUR, seed=5, lambda_k=0.1, lr_decay_every=2)
    step(trained, batch(shape=COLOUR), times=3)
    state = trained.state_dict()
    fresh = began(COLOUR, seed=5, lambda_k=0.1, lr_decay_every=2)
    z = trained.latent(6, torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert not torch.equal(fresh.sample(z), trained.sample(z))  # the load must matter
        fresh.load_state_dict(state)
        torch.testing.assert_close(fresh.sample(z), trained.sample(z), rtol=0, atol=0)
    assert trained.k > 0 and fresh.k == trained.k and fresh.steps == trained.steps == 3
    assert fresh.current_lr() == trained.current_lr() == trained.config["lr"] / 2
    # both go on identically: same latents, same k, same learning rate
    after_trained, after_fresh = (step(m, batch(shape=COLOUR, seed=2))[0] for m in (trained, fresh))
    assert after_fresh == after_trained


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"bogus": 1}, "bogus"),
        ({"g_layers": 3}, "g_layers"),  # BEGAN's depth follows the image size
        ({"d_steps": 2}, "d_steps"),
        ({"gamma": 2.5}, "gamma"),
        ({"lambda_k": -0.1}, "lambda_k"),
        ({"beta_l1": -1.0}, "beta_l1"),
        ({"betas": "1-1"}, "betas"),
        ({"betas": "x-1-0"}, "betas"),
        ({"lr_decay_every": 0}, "lr_decay_every"),
        ({"beta_l1": 0.0}, "all 0"),
        ({"betas": "0-0-0"}, "all 0"),
        ({"betas": "2-1-0", "beta_l1": 1.0}, "give each weight once"),
        ({"beta_chrom": 1.0}, "colour"),  # on grey images
        ({"betas": "1-1-1"}, "colour"),
    ],
)
def test_bad_hyperparameters_raise_naming_the_problem(config, key):
    with pytest.raises(ValueError, match=key):
        began(**config)


def test_defaults_follow_the_report():
    defaults = {k: p.default for k, p in family_class("began").all_params().items()}
    assert {
        k: defaults[k]
        for k in (
            "n_z",
            "lr",
            "beta1",
            "gamma",
            "lambda_k",
            "beta_l1",
            "beta_gmsm",
            "beta_chrom",
            "betas",
            "batch_size",
        )
    } == {
        "n_z": 64,
        "lr": 3e-4,
        "beta1": 0.5,
        "gamma": 1.0,
        "lambda_k": 0.1,
        "beta_l1": 1.0,
        "beta_gmsm": 0.0,
        "beta_chrom": 0.0,
        "betas": "",
        "batch_size": 16,
    }
    # a laptop's width, not the papers' 64 (docs/decisions.md, "BEGAN")
    assert defaults["base_channels"] == 16
    model = began()
    assert model.k == 0.0 and model.steps == 0
    assert model.opt_d.param_groups[0]["betas"] == (0.5, 0.999)
