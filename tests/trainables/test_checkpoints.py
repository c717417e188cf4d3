"""A generator rebuilt from a saved trial state draws the samples of the model that saved it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainables.checkpoints import draw_samples, load_generator
from trainables.families import family_class
from trainables.trainable import STATE_FILE

SMALL = {"base_channels": 8, "n_z": 16}


def _save(folder, name: str, config: dict) -> object:
    model = family_class(name)(config, (1, 28, 28), 10, torch.device("cpu"))
    torch.save(
        {
            "model": model.state_dict(),
            "family": name,
            "config": model.config,
            "image_shape": (1, 28, 28),
            "num_classes": 10,
            "epoch": 1,
        },
        folder / STATE_FILE,
    )
    return model


@pytest.mark.parametrize("name", ["dcgan", "cdcgan"])
def test_round_trip_gives_identical_samples(tmp_path, name):
    model = _save(tmp_path, name, SMALL)
    loaded = load_generator(tmp_path)
    assert loaded.config == model.config
    images, labels = draw_samples(loaded, 30, seed=3)
    again, _ = draw_samples(model, 30, seed=3)
    assert images.dtype == np.uint8 and images.shape == (30, 1, 28, 28)
    np.testing.assert_array_equal(images, again)
    other, _ = draw_samples(loaded, 30, seed=4)
    assert not np.array_equal(images, other)
    if name == "cdcgan":
        np.testing.assert_array_equal(labels, np.arange(30) % 10)
    else:
        assert labels is None


def test_missing_or_foreign_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_generator(tmp_path)
    torch.save({"weights": 1}, tmp_path / STATE_FILE)
    with pytest.raises(ValueError, match="not a ganorch checkpoint"):
        load_generator(tmp_path)
