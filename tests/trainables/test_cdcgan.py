"""The conditional DCGAN: shapes, the label paths into G and D, training, checkpoints, feedback."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from evaluators.judges import LeNet
from trainables.families import family_class
from trainables.families.layers import LabelledDiscriminator

from .family_kit import CPU, changed, convs, snapshot
from .family_kit import labelled_batch as batch
from .family_kit import labelled_step as step

SMALL = {"base_channels": 8, "n_z": 16}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cdcgan(shape=(1, 28, 28), **config):
    return family_class("cdcgan")({**SMALL, **config}, shape, 10, CPU)


def z_and_labels(model, n=10, seed=1):
    z = model.latent(n, torch.Generator().manual_seed(seed))
    return z, torch.arange(n) % 10


# --- architecture -------------------------------------------------------------------------------


@pytest.mark.parametrize("label_input", ["concat", "conv"])
@pytest.mark.parametrize("layers", [3, 5])  # the report's baseline and "extended" models
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_shapes_for_every_label_input_and_depth(shape, layers, label_input):
    model = cdcgan(shape, g_layers=layers, d_layers=layers, label_input=label_input)
    z, labels = z_and_labels(model, 4)
    images = model.sample(z, labels)
    assert images.shape == (4, *shape)
    assert images.min() >= -1 and images.max() <= 1
    assert model.discriminate(images, labels).shape == (4, 1)
    assert len(convs(model.generator)) == layers
    extra = 1 if label_input == "conv" else 0  # the label's own input convolution
    assert len(convs(model.discriminator)) == layers + extra


def test_generator_reads_the_one_hot_label_after_z():
    model = cdcgan()
    first = convs(model.generator)[0]
    assert first.in_channels == 16 + 10  # [z, one_hot(y)]


def test_concat_discriminator_reads_label_planes_beside_the_image():
    model = cdcgan((3, 32, 32), label_input="concat")
    assert isinstance(model.discriminator, LabelledDiscriminator)
    assert model.discriminator.label_layer is None
    assert convs(model.discriminator)[0].in_channels == 3 + 10


def test_conv_label_input_adds_a_label_convolution_concatenated_after_the_first_layer():
    model = cdcgan(label_input="conv")
    label_conv = convs(model.discriminator.label_layer)
    assert len(label_conv) == 1
    assert label_conv[0].in_channels == 10 and label_conv[0].out_channels == 8
    image_convs = convs(model.discriminator.net)
    assert image_convs[0].in_channels == 1  # the image alone
    assert image_convs[1].in_channels == 8 + 8  # image features + label features
    model.train(False)
    images, _ = batch(4)
    with torch.no_grad():
        by_label = [model.discriminate(images, torch.full((4,), k)) for k in (0, 7)]
        assert not torch.allclose(*by_label)
        for p in model.discriminator.label_layer.parameters():
            p.zero_()  # the label conv now emits act(0) = 0 whatever the label
        by_label = [model.discriminate(images, torch.full((4,), k)) for k in (0, 7)]
        torch.testing.assert_close(*by_label, rtol=0, atol=0)


def test_zeroing_the_label_weights_of_ds_first_layer_makes_it_label_blind():
    model = cdcgan(label_input="concat")
    model.train(False)
    images, _ = batch(4)
    with torch.no_grad():
        by_label = [model.discriminate(images, torch.full((4,), k)) for k in (2, 9)]
        assert not torch.allclose(*by_label)
        convs(model.discriminator)[0].weight[:, 1:].zero_()  # channels after the image's
        by_label = [model.discriminate(images, torch.full((4,), k)) for k in (2, 9)]
        torch.testing.assert_close(*by_label, rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_samples_depend_on_the_label_only_through_gs_label_weights(shape):
    model = cdcgan(shape)
    model.train(False)
    z = model.latent(1, torch.Generator().manual_seed(0)).expand(10, -1)  # same z, every label
    with torch.no_grad():
        images = model.sample(z, torch.arange(10))
        assert all(not torch.allclose(images[0], images[k]) for k in range(1, 10))
        convs(model.generator)[0].weight[16:].zero_()  # the one-hot's input weights
        images = model.sample(z, torch.arange(10))
        for k in range(1, 10):
            torch.testing.assert_close(images[0], images[k], rtol=0, atol=0)


def test_sample_without_labels_raises():
    model = cdcgan()
    with pytest.raises(ValueError, match="conditional"):
        model.sample(model.latent(2))


# --- training -----------------------------------------------------------------------------------


@pytest.mark.parametrize("label_input", ["concat", "conv"])
def test_train_steps_give_finite_losses_and_move_both_networks(label_input):
    model = cdcgan(label_input=label_input)
    g_before, d_before = snapshot(model.generator), snapshot(model.discriminator)
    for losses in step(model, *batch(), times=3):
        assert set(losses) == {"d_loss", "g_loss"}
        assert all(math.isfinite(v) for v in losses.values())
    assert changed(g_before, model.generator) == len(g_before)
    assert changed(d_before, model.discriminator) == len(d_before)


def test_training_is_reproducible_from_the_seed_and_d_steps_counts():
    first, second = cdcgan(seed=4, d_steps=2), cdcgan(seed=4, d_steps=2)
    assert step(first, *batch(), times=2) == step(second, *batch(), times=2)
    assert {int(s["step"]) for s in first.opt_d.state.values()} == {4}
    assert {int(s["step"]) for s in first.opt_g.state.values()} == {2}


def test_checkpoint_round_trip_reproduces_samples_for_the_same_z_and_labels():
    trained = cdcgan(seed=5, label_input="conv")
    step(trained, *batch(), times=3)
    state = trained.state_dict()
    fresh = cdcgan(seed=5, label_input="conv")
    z, labels = z_and_labels(trained, 6)
    trained.train(False)
    fresh.train(False)
    with torch.no_grad():
        assert not torch.equal(fresh.sample(z, labels), trained.sample(z, labels))
        fresh.load_state_dict(state)
        torch.testing.assert_close(
            fresh.sample(z, labels), trained.sample(z, labels), rtol=0, atol=0
        )
        images = trained.sample(z, labels)
        torch.testing.assert_close(
            fresh.discriminate(images, labels), trained.discriminate(images, labels), rtol=0, atol=0
        )
    assert torch.equal(fresh.rng.get_state(), trained.rng.get_state())


# --- classifier feedback --------------------------------------------------------------------------


def judge(shape=(1, 28, 28)) -> LeNet:
    torch.manual_seed(0)
    return LeNet(shape[0], 10, shape[1])


def test_classifier_feedback_changes_only_the_generator_update():
    updates = {}
    for alpha in (0.0, 1.0):
        model = cdcgan(seed=2, classifier_feedback=alpha)
        model.attach_judge(judge())
        losses = step(model, *batch())[0]
        updates[alpha] = (losses, snapshot(model.generator), snapshot(model.discriminator))
    (off, g_off, d_off), (on, g_on, d_on) = updates[0.0], updates[1.0]
    assert off["d_loss"] == on["d_loss"]  # D's step comes first and never sees the judge
    assert all(torch.equal(a, b) for a, b in zip(d_off, d_on, strict=True))
    assert on["g_loss"] > off["g_loss"]  # + alpha * cross-entropy, which is positive
    assert any(not torch.equal(a, b) for a, b in zip(g_off, g_on, strict=True))


def test_classifier_feedback_loss_is_alpha_times_the_judges_cross_entropy_on_unit_images():
    model, net = cdcgan(classifier_feedback=2.5), judge()
    model.attach_judge(net)
    images, labels = batch(6)
    expected = 2.5 * F.cross_entropy(net((images + 1) / 2), labels)
    torch.testing.assert_close(model.classifier_feedback_loss(images, labels), expected)
    assert all(not p.requires_grad for p in net.parameters()) and not net.training
    step(model, *batch())
    assert all(p.grad is None for p in net.parameters())  # frozen: never trained here


def test_classifier_feedback_without_a_judge_raises_a_clear_error():
    model = cdcgan(classifier_feedback=1.0)
    with pytest.raises(ValueError, match="classifier_feedback > 0 needs the dataset's judge"):
        step(model, *batch())
    with pytest.raises(ValueError, match="classifier_feedback > 0 needs the dataset's judge"):
        model.attach_judge(None)
    cdcgan().attach_judge(None)  # no feedback, no judge needed
    assert math.isfinite(step(cdcgan(), *batch())[0]["g_loss"])


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"label_input": "add"}, "label_input"),
        ({"classifier_feedback": -1.0}, "classifier_feedback"),
        ({"d_layers": 7}, "d_layers"),
    ],
)
def test_bad_hyperparameters_raise_naming_the_key(config, key):
    with pytest.raises(ValueError, match=key):
        cdcgan(**config)
