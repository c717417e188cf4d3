"""The metric registry behind `ganorch metrics`, called in-process: what each entry returns,
the image-set loader's rules, and invariants a wrong wiring would break. Metrics whose evaluator
module is not there yet are skipped."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from orchestrator.errors import UserError
from orchestrator.evaluate import commands as cli
from orchestrator.evaluate.context import MeasureContext
from orchestrator.evaluate.measures import METRICS
from orchestrator.evaluate.metric import render_values
from orchestrator.image_sets import load_image_set, match_shapes, subsample
from orchestrator.judges import judge_of, lenet_judge
from trainables.datasets import ImageData, load_dataset


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Single-threaded torch: steadier timings on 2 shared cores."""


@pytest.fixture(scope="module")
def mnist() -> ImageData:
    return load_dataset({"name": "mnist5k"})


@pytest.fixture(scope="module")
def context(mnist) -> MeasureContext:
    provider, name = lenet_judge(None, mnist)
    return MeasureContext(load_judge=provider, judge_name=name, device="cpu")


@pytest.fixture(scope="module")
def real(mnist) -> np.ndarray:
    return np.array(mnist.train_images[:300])


@pytest.fixture(scope="module")
def same(mnist) -> np.ndarray:
    """Other real digits: the same distribution as ``real``."""
    return np.array(mnist.test_images[:300])


@pytest.fixture(scope="module")
def different(same) -> np.ndarray:
    """Digits shifted right by 6 pixels: a different distribution of the same shape."""
    return np.roll(same, 6, axis=3)


def test_every_metric_names_its_values_in_its_summary():
    assert list(METRICS) == [
        "fid",
        "kid",
        "is",
        "prdc",
        "fid_inf",
        "is_inf",
        "c2st",
        "c2st_features",
        "sharpness",
        "color_kl",
        "confidence",
        "label_accuracy",
        "nn",
        "iqa",
    ]
    # What `ganorch metrics --help` lists: every metric but those that need labels.
    assert [name for name, metric in METRICS.items() if metric.needs_labels] == ["label_accuracy"]
    assert ", ".join(name for name in METRICS if name != "label_accuracy") == cli._METRIC_NAMES
    for name, metric in METRICS.items():
        assert metric.summary.startswith(f"{name}: ")
        assert metric.uses in ("features", "pixels", "probabilities")


def test_fid_is_zero_for_one_set_and_orders_near_and_far(context, real, same, different):
    assert METRICS["fid"](real, real, context) == {"fid": pytest.approx(0.0, abs=1e-6)}
    near = METRICS["fid"](real, same, context)["fid"]
    far = METRICS["fid"](real, different, context)["fid"]
    assert 0 < near < far
    assert "LeNet judge of mnist5k" in context.notes["extractor"]


def test_cached_features_belong_to_the_array_they_were_computed_from(context):
    # Temporaries are freed at once, so the second may reuse the first's id: a cache keyed by
    # id alone would hand back the dark images' features for the bright ones.
    dark = context.features(np.zeros((4, 1, 28, 28), np.uint8))
    bright = context.features(np.full((4, 1, 28, 28), 255, np.uint8))
    assert not np.allclose(dark, bright)


def test_too_few_images_and_a_judge_of_another_shape_are_user_errors(context, real):
    with pytest.raises(UserError, match="fid needs at least 2 images in B"):
        METRICS["fid"](real, real[:1], context)
    with pytest.raises(UserError, match="LeNet judge takes 1x28x28 images, these are 1x32x32"):
        METRICS["fid"](
            np.zeros((4, 1, 32, 32), np.uint8), np.zeros((4, 1, 32, 32), np.uint8), context
        )
    no_judge = MeasureContext(load_judge=lenet_judge(None, None)[0])
    with pytest.raises(UserError, match="--judge DATASET"):
        METRICS["fid"](real, real, no_judge)
    with pytest.raises(UserError, match="unknown extractor"):
        MeasureContext(extractor="vgg")


def test_lenet_judge_prefers_the_named_dataset(mnist):
    provider, name = lenet_judge("mnist5k", None)
    assert name == "mnist5k"
    assert provider().fingerprint == judge_of(mnist).fingerprint == mnist.fingerprint


def test_render_values_as_table_and_json():
    values = {"kid_mean": 0.00123456789, "n": 7, "bad": float("nan")}
    assert render_values(values, "table").splitlines() == [
        "kid_mean  0.00123457",
        "n         7",
        "bad       nan",
    ]
    assert render_values(values, "json").replace(" ", "").replace("\n", "") == (
        '{"kid_mean":0.00123456789,"n":7,"bad":null}'
    )


def test_kid_is_near_zero_for_one_distribution_and_larger_for_another(
    context, real, same, different
):
    near = METRICS["kid"](real, same, context)
    far = METRICS["kid"](real, different, context)
    assert set(near) == {"kid_mean", "kid_std"}
    assert abs(near["kid_mean"]) < far["kid_mean"] / 5


def test_prdc_is_one_for_a_set_against_itself_and_lower_for_shifted_digits(
    context, real, same, different
):
    itself = METRICS["prdc"](real, real, context)
    # Closed balls: every point lies in its own ball; density counts the k own neighbours + 1.
    assert itself == {
        "precision": 1.0,
        "recall": 1.0,
        "density": pytest.approx(6 / 5),
        "coverage": 1.0,
    }
    near, far = METRICS["prdc"](real, same, context), METRICS["prdc"](real, different, context)
    for name in ("precision", "recall", "coverage"):
        assert far[name] < near[name] <= 1.0, name


def test_fid_inf_removes_part_of_the_finite_sample_bias(context, real, same):
    """Two samples of one distribution: the true FID is 0, FID at N is biased upward, and the
    extrapolation to N -> infinity lands closer to 0 with the positive c/N slope it removed."""
    fid = METRICS["fid"](real, same, context)["fid"]
    extrapolated = METRICS["fid_inf"](real, same, context)
    assert abs(extrapolated["fid_inf"]) < fid and extrapolated["fid_inf_slope"] > 0
    assert 0.0 <= extrapolated["fid_inf_r2"] <= 1.0


def test_is_inf_of_real_digits_is_at_least_the_score_of_the_whole_set(context, same):
    from evaluators.classifier_scores import inception_score

    whole, _ = inception_score(context.probabilities(same), splits=1)
    extrapolated = METRICS["is_inf"](same, same, context)
    assert extrapolated["is_inf"] >= whole > 5  # IS is biased downward at finite N


def test_confidence_is_lower_on_shifted_digits_than_on_real_ones(context, real, different):
    values = METRICS["confidence"](real, different, context)
    assert values["confidence_real"] > 0.9 and values["confidence_top_real"] > 0.8
    assert values["confidence_generated"] < values["confidence_real"]
    assert values["confidence_top_generated"] < values["confidence_top_real"]


def test_inception_score_of_real_digits_is_high_and_of_one_digit_low(context, real, same):
    digits = METRICS["is"](real, same, context)
    assert set(digits) == {"is_mean", "is_std"}
    assert 5 < digits["is_mean"] <= 10  # ten classes, a ~95% accurate judge
    one_image = np.repeat(same[:1], 50, axis=0)
    assert METRICS["is"](real, one_image, context)["is_mean"] == pytest.approx(1.0, abs=1e-6)


def test_inception_score_does_not_depend_on_the_order_of_class_sorted_input(context, real, mnist):
    images, labels = np.array(mnist.test_images[:400]), np.array(mnist.test_labels[:400])
    by_class = images[np.argsort(labels, kind="stable")]
    shuffled = METRICS["is"](real, images, context)["is_mean"]
    assert METRICS["is"](real, by_class, context)["is_mean"] == pytest.approx(shuffled, rel=0.1)


def test_c2st_cannot_tell_one_distribution_apart_but_can_tell_shifted_digits(
    context, real, same, different
):
    null = METRICS["c2st"](real, same, context)
    assert set(null) == {
        "c2st_accuracy",
        "c2st_accuracy_real",
        "c2st_accuracy_generated",
        "c2st_p_value",
        "c2st_n_test",
    }
    assert null["c2st_accuracy"] < 0.7
    shifted = METRICS["c2st"](real, different, context)
    assert shifted["c2st_accuracy"] > 0.9 and shifted["c2st_p_value"] < 1e-6
    on_features = METRICS["c2st_features"](real, different, context)
    assert on_features["c2st_accuracy"] > 0.9


def test_sharpness_of_each_set_and_color_kl_of_identical_sets(context, real, same):
    values = METRICS["sharpness"](real, same, context)
    assert set(values) == {
        "sharpness_real",
        "sharpness_real_std",
        "sharpness_generated",
        "sharpness_generated_std",
    }
    assert values["sharpness_real"] > 0
    flat = np.zeros_like(same)
    assert METRICS["sharpness"](real, flat, context)["sharpness_generated"] == 0.0
    kl = METRICS["color_kl"](real, real, context)
    assert kl and all(name.startswith("color_kl_") for name in kl)
    assert all(value == pytest.approx(0.0, abs=1e-12) for value in kl.values())
    assert METRICS["color_kl"](real, flat, context)["color_kl_grey"] > 0.1


# --- image sets -----------------------------------------------------------------------------


def test_dataset_names_default_to_the_test_split(mnist):
    image_set = load_image_set("mnist5k")
    assert image_set.split == "test" and image_set.dataset is mnist
    assert len(load_image_set("mnist5k:train").images) == len(mnist.train_images)


def test_npz_archives_with_train_and_test_arrays_need_a_split(tmp_path):
    path = tmp_path / "both.npz"
    np.savez(
        path, train_images=np.zeros((5, 8, 8), np.uint8), test_images=np.ones((3, 8, 8), np.float32)
    )
    with pytest.raises(UserError, match="both.npz:train or .*both.npz:test"):
        load_image_set(str(path))
    assert load_image_set(f"{path}:test").images.max() == 255  # float [0, 1] -> uint8
    assert load_image_set(f"{path}:train").images.shape == (5, 1, 8, 8)


def test_a_grey_folder_of_colour_files_widens_beside_a_colour_set(tmp_path):
    folder = tmp_path / "grey"
    folder.mkdir()
    for index in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * index, np.uint8)).save(folder / f"{index}.png")
    grey = load_image_set(str(folder))
    assert grey.shape == (1, 8, 8) and grey.grey_from_colour
    np.savez(tmp_path / "colour.npz", images=np.zeros((2, 8, 8, 3), np.uint8))
    colour = load_image_set(str(tmp_path / "colour.npz"))
    widened, _ = match_shapes(grey, colour)
    assert widened.shape == (3, 8, 8)
    np.testing.assert_array_equal(widened.images[:, 0], grey.images[:, 0])
    np.savez(tmp_path / "grey.npz", images=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(UserError, match="image shapes differ"):
        match_shapes(load_image_set(str(tmp_path / "grey.npz")), colour)


def test_subsample_is_seeded_and_keeps_order():
    image_set = load_image_set("mnist5k")
    a, b = subsample(image_set, 10, seed=3), subsample(image_set, 10, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    assert len(a.images) == 10
    assert subsample(image_set, 10_000, seed=0) is image_set


def test_label_accuracy_of_real_digits_with_their_labels_and_shuffled_ones(mnist):
    provider, _ = lenet_judge(None, mnist)
    images = np.array(mnist.test_images[:200])
    labels = np.array(mnist.test_labels[:200])
    context = MeasureContext(load_judge=provider, device="cpu", labels=labels)
    right = METRICS["label_accuracy"](images, images, context)["label_accuracy"]
    context = MeasureContext(load_judge=provider, device="cpu", labels=np.roll(labels, 1))
    wrong = METRICS["label_accuracy"](images, images, context)["label_accuracy"]
    assert right > 0.8 and wrong < 0.3
    with pytest.raises(UserError, match="needs the conditioning labels"):
        METRICS["label_accuracy"](images, images, MeasureContext(load_judge=provider))


def test_nn_flags_copies_of_the_training_set(mnist):
    train, test = np.array(mnist.train_images[:300]), np.array(mnist.test_images[:100])
    context = MeasureContext(device="cpu", train=train)
    copies = METRICS["nn"](test, train[:100], context)
    fresh = METRICS["nn"](test, np.array(mnist.test_images[100:200]), context)
    assert copies["nn_memorisation_ratio"] == pytest.approx(0.0, abs=1e-6)
    assert 0.5 < fresh["nn_memorisation_ratio"] < 2.0
    with pytest.raises(UserError, match="needs the training split"):
        METRICS["nn"](test, test, MeasureContext())


def test_iqa_is_zero_for_images_of_the_set_and_positive_for_noise(mnist):
    real = np.array(mnist.test_images[:100])
    # A shuffled subset: only pairing each image with its nearest real image gives 0 here;
    # pairing by index would compare different digits.
    shuffled = real[np.random.default_rng(0).permutation(len(real))[:50]]
    same = METRICS["iqa"](real, shuffled, MeasureContext(device="cpu"))
    assert all(value == pytest.approx(0.0, abs=1e-9) for value in same.values())
    noise = np.random.default_rng(0).integers(0, 256, (50, 1, 28, 28), dtype=np.uint8)
    noisy = METRICS["iqa"](real, noise, MeasureContext(device="cpu"))
    assert noisy["iqa_l1"] > 0.2 and noisy["iqa_gmsm"] > 0.1 and noisy["iqa_l1_sem"] > 0
    assert noisy["iqa_chroma"] == pytest.approx(0.0, abs=1e-9)  # grey images have no chroma
