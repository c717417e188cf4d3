"""The in-memory image dataset every loader returns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


class DatasetError(ValueError):
    """A dataset cannot be loaded; the message names the offending path or option."""


@dataclass(frozen=True)
class ImageData:
    """Images as uint8 arrays (N, C, H, W) with int64 labels, split into train and test.

    numpy rather than torch so that ``ray.put`` shares the arrays zero-copy between trials.
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            if images.dtype != np.uint8 or images.ndim != 4:
                raise DatasetError(f"{self.name}: {split} images must be uint8 (N,C,H,W)")
            if labels.shape != (images.shape[0],):
                raise DatasetError(f"{self.name}: {split} labels do not match the images")
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise DatasetError(f"{self.name}: train and test images differ in shape")
        if not self.fingerprint:
            object.__setattr__(
                self,
                "fingerprint",
                fingerprint_arrays(
                    self.train_images, self.train_labels, self.test_images, self.test_labels
                ),
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    """Hex digest over the shapes, dtypes and bytes of the arrays: equal data, equal print."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) holding out ``round(count * test_fraction)`` of every class.

    Both index arrays come back shuffled by the same seeded RNG, so any prefix of the train
    split is a fair sample and equal inputs always give equal splits.
    """
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        held_out = int(round(len(members) * test_fraction))
        test.append(members[:held_out])
        train.append(members[held_out:])
    empty = np.empty(0, dtype=np.int64)
    train_index = rng.permutation(np.concatenate(train or [empty]))
    test_index = rng.permutation(np.concatenate(test or [empty]))
    return train_index, test_index


def split_dataset(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    test_fraction: float,
    seed: int = 0,
) -> ImageData:
    """ImageData from one pool of images, split per class by :func:`stratified_split`."""
    labels = labels.astype(np.int64, copy=False)
    train, test = stratified_split(labels, test_fraction, seed)
    return ImageData(name, images[train], labels[train], images[test], labels[test], num_classes)
