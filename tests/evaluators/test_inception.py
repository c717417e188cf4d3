"""The FID InceptionV3: the weights file's key layout, loading by path, input handling, batching.

Random weights throughout (nothing is downloaded); Inception is slow on a CPU, so every test
pushes only a handful of images through it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models import inception_v3

from evaluators.judges.inception import (
    WEIGHTS_FILE,
    FIDInception,
    class_probabilities,
    inception_features,
    inception_weights_path,
    load_fid_inception,
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Single-threaded torch: steadier timings on 2 shared cores."""


@pytest.fixture(scope="module")
def model() -> FIDInception:
    torch.manual_seed(0)
    return FIDInception()


@pytest.fixture(scope="module")
def weights_file(model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inception") / WEIGHTS_FILE
    torch.save(model.state_dict(), path)
    return path


def rgb_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8)


def test_state_dict_has_the_keys_and_shapes_of_torchvision_inception_without_aux_logits(model):
    # The FID weights file is torchvision's Inception3 layout with 1008 classes and no AuxLogits.
    reference = inception_v3(
        weights=None, aux_logits=False, init_weights=False, num_classes=1008
    ).state_dict()
    ours = model.state_dict()
    assert set(ours) == set(reference)
    assert {key: tuple(value.shape) for key, value in ours.items()} == {
        key: tuple(value.shape) for key, value in reference.items()
    }
    assert not any(key.startswith("AuxLogits") for key in ours)
    assert tuple(ours["fc.weight"].shape) == (1008, 2048)
    assert tuple(ours["Mixed_7c.branch_pool.conv.weight"].shape) == (192, 2048, 1, 1)


def pool_branch_input(block: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What ``block``'s pool branch convolution receives for input ``x``."""
    seen = []
    handle = block.branch_pool.register_forward_hook(lambda _, inputs, __: seen.append(inputs[0]))
    try:
        with torch.no_grad():
            block(x)
    finally:
        handle.remove()
    return seen[0]


@pytest.mark.parametrize("name", ["Mixed_5b", "Mixed_5d", "Mixed_6b", "Mixed_6e", "Mixed_7b"])
def test_average_pool_branches_do_not_count_padding(model, name):
    # Averaging a constant map without counting the zero padding gives the constant everywhere;
    # torchvision's count_include_pad=True would give 4/9 of it in the corners.
    block = getattr(model, name)
    x = torch.full((1, block.branch1x1.conv.in_channels, 5, 5), 2.0)
    torch.testing.assert_close(pool_branch_input(block, x), x)


def test_mixed_7c_pool_branch_max_pools(model):
    x = torch.zeros(1, 2048, 5, 5)
    x[0, :, 0, 0] = 9.0
    expected = torch.zeros_like(x)
    expected[0, :, :2, :2] = 9.0  # a 3x3 max pool spreads the corner to its neighbours
    torch.testing.assert_close(pool_branch_input(model.Mixed_7c, x), expected)


def test_saved_weights_load_by_path_and_give_identical_features(model, weights_file):
    loaded = load_fid_inception(weights_file)
    assert not loaded.training
    images = rgb_images(2, 32, seed=1)
    np.testing.assert_array_equal(
        inception_features(loaded, images), inception_features(model, images)
    )
    assert inception_weights_path(str(weights_file)) == weights_file


def test_weights_without_batchnorm_counters_still_load(model, tmp_path):
    state = {
        key: value
        for key, value in model.state_dict().items()
        if not key.endswith("num_batches_tracked")
    }
    torch.save(state, tmp_path / "old.pth")
    loaded = load_fid_inception(tmp_path / "old.pth")
    assert torch.equal(loaded.fc.weight, model.fc.weight)


def test_other_state_dicts_are_refused_in_one_line(tmp_path):
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not the FID InceptionV3 weights") as error:
        load_fid_inception(tmp_path / "other.pth")
    assert "\n" not in str(error.value)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable PyTorch state dict"):
        load_fid_inception(tmp_path / "junk.pth")


def test_missing_weights_name_the_hub_path_and_never_download(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    hub_file = tmp_path / "hub" / "checkpoints" / WEIGHTS_FILE
    with pytest.raises(FileNotFoundError) as error:
        load_fid_inception()
    message = str(error.value)
    assert str(hub_file) in message and "--inception-weights" in message
    assert "never downloads" in message and "\n" not in message
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "absent.pth")) as error:
        inception_weights_path(str(tmp_path / "absent.pth"))
    assert str(hub_file) in str(error.value)
    hub_file.parent.mkdir(parents=True)
    hub_file.write_bytes(b"")
    assert inception_weights_path(None) == hub_file


def test_features_of_grey_28_and_rgb_32_images(model):
    grey = np.random.default_rng(2).integers(0, 256, (2, 1, 28, 28), dtype=np.uint8)
    features = inception_features(model, grey)
    assert features.shape == (2, 2048) and features.dtype == np.float64
    assert np.isfinite(features).all() and features.std() > 0
    # Grey is repeated to 3 channels, and uint8 means value / 255.
    as_rgb = inception_features(model, np.repeat(grey, 3, axis=1).astype(np.float32) / 255)
    np.testing.assert_allclose(features, as_rgb, rtol=1e-5, atol=1e-6)
    rgb = inception_features(model, rgb_images(1, 32))
    assert rgb.shape == (1, 2048)
    probabilities = class_probabilities(model, rgb)
    assert probabilities.shape == (1, 1008)
    assert probabilities.sum() == pytest.approx(1.0)


def test_preprocessing_resizes_to_299_and_scales_to_minus_one_one():
    x = torch.stack([torch.zeros(1, 28, 28), torch.ones(1, 28, 28)])
    out = FIDInception.preprocess(x)
    assert out.shape == (2, 3, 299, 299)
    torch.testing.assert_close(out[0], torch.full((3, 299, 299), -1.0))
    torch.testing.assert_close(out[1], torch.full((3, 299, 299), 1.0))
    with pytest.raises(ValueError, match="1 or 3"):
        FIDInception.preprocess(torch.zeros(1, 2, 8, 8))


def test_features_do_not_depend_on_the_batch_size(model):
    images = rgb_images(3, 32, seed=3)
    whole = inception_features(model, images, batch_size=3)
    one_by_one = inception_features(model, images, batch_size=1)
    assert np.abs(whole).max() > 1e-2  # the comparison below is not one of near-zeros
    np.testing.assert_allclose(one_by_one, whole, rtol=1e-4, atol=1e-5)
