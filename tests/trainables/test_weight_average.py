"""``g_ema``: samples drawn from a moving average of the generator's weights (Family base)."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.trainables.family_kit import CPU, labelled_batch, snapshot
from trainables.families import family_class
from trainables.trainable import generate

# A family of each kind: batch-norm G, a conditional G(z, y), and a VAE whose "G" is its decoder.
CONFIGS = {
    "dcgan": {"base_channels": 8, "n_z": 16},
    "cdcgan": {"base_channels": 8, "n_z": 16},
    "vae": {"base_channels": 8, "n_z": 8, "hidden": 32},
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(name: str, **config):
    return family_class(name)({**CONFIGS[name], **config}, (1, 28, 28), 10, CPU)


def _train(model, steps: int, seed: int = 0) -> list[list[torch.Tensor]]:
    """``steps`` steps on fresh batches, each followed by the average's update; the trained
    generator's weights after each step."""
    history = []
    for step in range(steps):
        images, labels = labelled_batch(16, seed=seed + step)
        model.train_step([images] * model.real_batches_per_step, [labels])
        model.update_average()
        history.append(snapshot(getattr(model, model.generator_name)))
    return history


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_average_follows_its_closed_form_recursion(name):
    """avg_1 = w_1; avg_n = avg_{n-1} + r_n (w_n - avg_{n-1}), r_n = max(1 - d, 10 / (9 + n)),
    recomputed here in float64 from the trained weights after each step."""
    decay = 0.9
    model = _model(name, g_ema=decay)
    history = _train(model, 30)
    expected = [w.double() for w in history[0]]
    for n, weights in enumerate(history[1:], start=2):
        rate = max(1 - decay, 10 / (9 + n))
        expected = [e + rate * (w.double() - e) for e, w in zip(expected, weights, strict=True)]
    assert 10 / (9 + 30) > 1 - decay > 10 / (9 + 100)  # the warm-up rate, then the floor, matter
    average = list(model.average.parameters())
    for mean, want in zip(average, expected, strict=True):
        torch.testing.assert_close(mean.double(), want, rtol=0, atol=1e-5)
    # The average is not the last weights (it lags them), nor trained by any optimiser.
    assert any(not torch.equal(m, w) for m, w in zip(average, history[-1], strict=True))
    assert not any(p.requires_grad for p in model.average.parameters())


def test_without_g_ema_there_is_no_average_and_draw_is_sample():
    model = _model("dcgan")
    _train(model, 3)
    assert model.average is None and "g_average" not in model.state_dict()
    model.train(False)
    z = model.latent(8, torch.Generator().manual_seed(1))
    torch.testing.assert_close(model.draw(z), model.sample(z), rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_draw_and_generate_use_the_average_and_training_keeps_the_trained_generator(name):
    model = _model(name, g_ema=0.9)
    _train(model, 20)
    model.train(False)
    z = model.latent(10, torch.Generator().manual_seed(1))
    labels = torch.arange(10) % 10
    trained = getattr(model, model.generator_name)
    drawn = model.draw(z, labels)
    assert getattr(model, model.generator_name) is trained  # put back after drawing
    setattr(model, model.generator_name, model.average)
    from_average = model.sample(z, labels)
    setattr(model, model.generator_name, trained)
    torch.testing.assert_close(drawn, from_average, rtol=0, atol=0)
    assert not torch.allclose(drawn, model.sample(z, labels))
    # generate(), behind FID, grids and `ganorch eval`, draws from the average too
    torch.testing.assert_close(
        generate(model, 10, seed=1, num_classes=10),
        model.draw(z, labels).add(1).div(2).clamp(0, 1),
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_checkpoint_carries_the_average_and_training_resumes_it_bit_for_bit(name):
    model = _model(name, g_ema=0.95)
    _train(model, 5)
    state = copy.deepcopy(model.state_dict())  # as torch.save does: no tensor shared with model
    assert state["g_average_updates"] == 5
    resumed = _model(name, g_ema=0.95)
    resumed.load_state_dict(state)
    for run in (model, resumed):
        _train(run, 5, seed=100)
    assert resumed.average_updates == model.average_updates == 10
    for a, b in zip(resumed.average.parameters(), model.average.parameters(), strict=True):
        assert torch.equal(a, b)
    for run in (model, resumed):
        run.train(False)
    z = model.latent(6, torch.Generator().manual_seed(2))
    labels = torch.arange(6)
    assert torch.equal(model.draw(z, labels), resumed.draw(z, labels))


def test_g_ema_is_refused_outside_zero_to_below_one():
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="g_ema"):
            _model("dcgan", g_ema=bad)
