"""Image sets named on the command line: a folder of images, an .npz archive or a dataset split.

``load_image_set("samples/")``, ``load_image_set("fake.npz")``, ``load_image_set("mnist5k:test")``
all return an :class:`ImageSet` of uint8 images (N, C, H, W). Reading is delegated to
``trainables.datasets`` (its registry for dataset names, its .npz and image-file readers for
paths); this module only decides which of the three a name is and keeps the images as they are:
nothing is resized, so two sets of different sizes are an error, not silently made comparable.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from orchestrator.errors import UserError
from orchestrator.runs import RunDir
from trainables.datasets import (
    DATASET_OPTIONS,
    REQUIRED_OPTIONS,
    DatasetError,
    ImageData,
    dataset_names,
    load_dataset,
)
from trainables.datasets.files import IMAGE_SUFFIXES, image_files, load_npz, read_image

SPLITS = ("train", "test")


@dataclass(frozen=True)
class ImageSet:
    """uint8 images (N, C, H, W) and where they came from.

    ``dataset`` is the whole dataset for a dataset name (its LeNet judge is the reference
    judge); ``grey_from_colour`` marks a folder of colour-format files whose pixels are all
    grey (R = G = B), loaded as one channel and widened to three beside a colour set.
    """

    source: str
    kind: str  # "folder" | "npz" | "dataset"
    images: np.ndarray
    dataset: ImageData | None = None
    split: str | None = None
    grey_from_colour: bool = False

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def describe(self) -> str:
        kind = "" if self.kind == "dataset" else f"{self.kind}, "
        return f"{self.source} ({kind}{len(self.images)} images {shape_text(self.shape)})"


def load_image_set(source: str) -> ImageSet:
    """The images a command-line name stands for; :class:`UserError` (one line) if unreadable.

    An existing path wins over a dataset name (write ``./mnist5k`` or ``mnist5k:test`` to be
    explicit).

    - an existing folder: every image file under it (``IMAGE_SUFFIXES``, subfolders included,
      hidden ones skipped), all of one size; one channel when every pixel of every image is
      grey, else RGB (alpha dropped);
    - an existing file: an .npz archive with an ``images`` array (uint8 (N,H,W), (N,H,W,C) or
      (N,C,H,W), or float in [0, 1], quantised to uint8 like a saved PNG); an archive with
      ``train_images``/``test_images`` needs ``PATH:train`` or ``PATH:test``;
    - otherwise a dataset name with an optional split, ``NAME[:train|:test]`` (default test),
      for the datasets that need no options (``mnist5k``, ``patches``, ``digits``).
    """
    path, split = _split_suffix(source)
    if path.is_dir():
        return _load_folder(source, path)
    if path.exists():
        return _load_npz(source, path, split)
    if _looks_like_path(source):
        raise UserError(f"{source}: no such file or folder")
    return _load_dataset_split(source)


def load_reference_dataset(name: str) -> ImageData:
    """A dataset given by name alone (``--judge mnist5k``), for its LeNet judge."""
    return _dataset(name, name)


def run_dataset(run: RunDir) -> dict[str, Any] | None:
    """The dataset the run's spec.yaml names (a sweep's); None when the run has no spec.yaml or
    its spec names no dataset (the command's --dataset must then name one)."""
    text = run.read_text("spec.yaml")
    spec = yaml.safe_load(text) if text is not None else None
    if not isinstance(spec, dict) or not isinstance(spec.get("dataset"), dict):
        return None
    return spec["dataset"]


@contextmanager
def dataset_errors(prefix: str = "") -> Iterator[None]:
    """A :class:`DatasetError` raised inside becomes a one-line :class:`UserError` (its message
    after ``prefix``)."""
    try:
        yield
    except DatasetError as exc:
        raise UserError(f"{prefix}{exc}") from None


def subsample(image_set: ImageSet, n: int | None, seed: int) -> ImageSet:
    """At most ``n`` images, a seeded uniform random subset without replacement (order kept)."""
    if n is None or len(image_set.images) <= n:
        return image_set
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    return replace(image_set, images=seeded_subset(image_set.images, n, seed)[0])


def seeded_subset(
    images: np.ndarray, n: int, seed: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """At most ``n`` of ``images`` (and their ``labels``): a uniform random subset without
    replacement drawn with ``seed``, in their order."""
    if len(images) <= n:
        return images, labels
    keep = np.sort(np.random.default_rng(seed).choice(len(images), n, replace=False))
    return images[keep], None if labels is None else labels[keep]


def match_shapes(a: ImageSet, b: ImageSet) -> tuple[ImageSet, ImageSet]:
    """The two sets with equal image shapes, or a :class:`UserError` saying how they differ.

    The one conversion made: a grey folder read from colour files beside a 3-channel set is
    widened back to three equal channels (lossless). Sizes are never changed.
    """
    if a.shape[0] != b.shape[0]:
        a, b = _widen_grey_folder(a, b), _widen_grey_folder(b, a)
    if a.shape != b.shape:
        raise UserError(
            f"image shapes differ: A {a.source} is {shape_text(a.shape)} (CxHxW), "
            f"B {b.source} is {shape_text(b.shape)} (CxHxW); resize one set to match"
        )
    return a, b


def shape_text(shape: tuple[int, ...]) -> str:
    """``1x28x28`` for the shape (C, H, W) of an image."""
    return "x".join(str(int(side)) for side in shape)


def _widen_grey_folder(image_set: ImageSet, other: ImageSet) -> ImageSet:
    if image_set.grey_from_colour and image_set.shape[0] == 1 and other.shape[0] == 3:
        return replace(
            image_set, images=np.repeat(image_set.images, 3, axis=1), grey_from_colour=False
        )
    return image_set


def _split_suffix(source: str) -> tuple[Path, str | None]:
    """``FILE:train`` -> (FILE, "train") when FILE is an existing file (an .npz); else (the
    whole name, None). Folders take no split, so ``mnist5k:test`` stays a dataset name even
    beside a folder called ``mnist5k``."""
    head, sep, tail = source.rpartition(":")
    if sep and tail in SPLITS and head and Path(head).expanduser().is_file():
        return Path(head).expanduser(), tail
    return Path(source).expanduser(), None


def _looks_like_path(source: str) -> bool:
    return (
        "/" in source
        or "\\" in source
        or source.startswith((".", "~"))
        or source.lower().endswith((".npz", *IMAGE_SUFFIXES))
    )


def _load_folder(source: str, path: Path) -> ImageSet:
    files = image_files(path, recursive=True)
    if not files:
        raise UserError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    with dataset_errors(), ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        pixels = list(pool.map(lambda file: np.asarray(read_image(file, "RGB")), files))
    for file, image in zip(files, pixels, strict=True):
        if image.shape != pixels[0].shape:
            raise UserError(
                f"{source}: images differ in size: {files[0].name} is "
                f"{pixels[0].shape[1]}x{pixels[0].shape[0]}, {file.name} is "
                f"{image.shape[1]}x{image.shape[0]} (WxH); resize them to one size"
            )
    images = np.stack(pixels).transpose(0, 3, 1, 2)  # (N, 3, H, W)
    grey = bool((images[:, :1] == images[:, 1:]).all())
    if grey:
        images = images[:, :1]
    return ImageSet(source, "folder", np.ascontiguousarray(images), grey_from_colour=grey)


def _load_npz(source: str, path: Path, split: str | None) -> ImageSet:
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise UserError(f"{source}: a single image; give the folder that holds the images")
    try:
        data = load_npz(str(path), test_fraction=0.0)
    except DatasetError as exc:
        message = str(exc).replace("dataset.path: ", "")
        raise UserError(message) from None
    holds_splits = len(data.test_images) > 0  # test_fraction 0 leaves 'images' all in train
    if holds_splits and split is None:
        raise UserError(
            f"{source}: holds train_images and test_images; name one as "
            f"{source}:train or {source}:test"
        )
    images = data.test_images if split == "test" else data.train_images
    if not len(images):
        what = f"{split} images" if split else "images"
        raise UserError(f"{source}: no {what} in this archive")
    return ImageSet(source, "npz", images, split=split if holds_splits else None)


def _load_dataset_split(source: str) -> ImageSet:
    name, _, split = source.partition(":")
    split = split or "test"
    if split not in SPLITS:
        raise UserError(f"{source}: unknown split {split!r}; use {name}:train or {name}:test")
    data = _dataset(source, name)
    return ImageSet(source, "dataset", getattr(data, f"{split}_images"), dataset=data, split=split)


def _dataset(source: str, name: str) -> ImageData:
    if name not in DATASET_OPTIONS:
        raise UserError(
            f"{source}: no such file or folder, and {name!r} is not a dataset "
            f"(datasets by name: {', '.join(_by_name())})"
        )
    if name not in _by_name():
        raise UserError(
            f"{source}: dataset {name!r} needs options (a root or path); give its "
            f"images as a folder or .npz instead (datasets by name: "
            f"{', '.join(_by_name())})"
        )
    with dataset_errors(f"{source}: "):
        return load_dataset({"name": name})


def _by_name() -> list[str]:
    """Datasets that load from their name alone (no required option)."""
    return [name for name in dataset_names() if not REQUIRED_OPTIONS[name]]
