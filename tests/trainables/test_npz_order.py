"""An .npz of images read with nothing held out keeps the archive's order, so a folder and an
.npz of the same images are the same array, and every measure on them the same number."""

from __future__ import annotations

import numpy as np
from PIL import Image

from orchestrator.image_sets import load_image_set
from trainables.datasets import load_dataset
from trainables.datasets.files import load_npz


def test_a_folder_and_an_npz_of_the_same_images_load_as_the_same_array(tmp_path):
    digits = np.array(load_dataset({"name": "mnist5k"}).test_images[:40])
    (tmp_path / "grey").mkdir()
    for index, image in enumerate(digits[:, 0]):
        Image.fromarray(image).save(tmp_path / "grey" / f"{index:03d}.png")
    np.savez(tmp_path / "digits.npz", images=digits[:, 0], labels=np.arange(40) % 10)

    folder = load_image_set(str(tmp_path / "grey")).images
    archive = load_image_set(str(tmp_path / "digits.npz")).images
    np.testing.assert_array_equal(folder, digits)
    np.testing.assert_array_equal(archive, digits)  # the same order, not a permutation
    everything = load_npz(str(tmp_path / "digits.npz"), test_fraction=0.0)
    np.testing.assert_array_equal(everything.train_labels, np.arange(40) % 10)
    assert len(everything.test_images) == 0
