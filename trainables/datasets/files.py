"""Datasets read from files on disk: IDX (MNIST, Fashion-MNIST), CIFAR-10, image folders, .npz."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from .base import DatasetError, ImageData, split_dataset

SPLIT_SEED = 0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")

# IDX magic numbers: two zero bytes, 0x08 (= unsigned byte data), then the number of dimensions.
IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# Dataset name -> the torchvision class that can download it (and names its folder).
TORCHVISION_CLASSES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _existing_dir(root: str, key: str = "root") -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetError(f"dataset.{key}: no such directory: {path}")
    return path


# --- IDX (MNIST, Fashion-MNIST) --------------------------------------------------------------


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one IDX file of unsigned bytes (gzip'd if its name ends in .gz)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            data = stream.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: cannot read IDX file: {_one_line(exc)}") from exc
    found = int.from_bytes(data[:4], "big")
    if len(data) >= 4 and found != magic:
        raise DatasetError(f"{path}: bad IDX magic number 0x{found:08x}, expected 0x{magic:08x}")
    ndim = magic & 0xFF  # the magic's low byte counts the dimensions
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DatasetError(
            f"{path}: truncated IDX file ({len(data)} bytes, header needs {header_size})"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    expected = int(np.prod(shape))
    if len(data) - header_size != expected:
        raise DatasetError(
            f"{path}: truncated or oversized IDX file: header {shape} promises "
            f"{expected} bytes of data, found {len(data) - header_size}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def _find_idx_files(directory: Path) -> dict[str, Path] | None:
    """The four IDX files in ``directory`` (plain preferred over .gz), or None if any is missing."""
    found = {}
    for role, stem in IDX_FILES.items():
        candidates = [directory / stem, directory / f"{stem}.gz"]
        match = next((path for path in candidates if path.is_file()), None)
        if match is None:
            return None
        found[role] = match
    return found


def load_idx_dataset(name: str, root: str, download: bool = False) -> ImageData:
    """MNIST-format data from ``root``, ``root/raw`` or torchvision's ``root/<Class>/raw``.

    With ``download`` the files are fetched by torchvision when none of those places has them.
    """
    base = Path(root).expanduser()
    class_name = TORCHVISION_CLASSES[name]
    directories = [base, base / "raw", base / class_name / "raw"]
    files = next(filter(None, map(_find_idx_files, directories)), None)
    if files is None and download:
        _download_with_torchvision(name, base)
        files = _find_idx_files(base / class_name / "raw")
    if files is None:
        if not download and not base.is_dir():
            raise DatasetError(
                f"dataset.root: no such directory: {base} (set download: true to fetch {name})"
            )
        looked_in = ", ".join(str(directory) for directory in directories)
        raise DatasetError(
            f"dataset.root: no {name} IDX files ({IDX_FILES['train_images']}"
            f"[.gz] etc.) in {looked_in}; set download: true to fetch them"
        )
    arrays = {
        role: read_idx(path, IDX_IMAGES_MAGIC if role.endswith("images") else IDX_LABELS_MAGIC)
        for role, path in files.items()
    }
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise DatasetError(
                f"{files[f'{split}_labels']}: {len(labels)} labels for "
                f"{len(images)} images in {files[f'{split}_images']}"
            )
        if labels.size and labels.max() >= 10:
            raise DatasetError(f"{files[f'{split}_labels']}: label {labels.max()} out of 0..9")
    return ImageData(
        name,
        arrays["train_images"][:, None],
        arrays["train_labels"].astype(np.int64),
        arrays["test_images"][:, None],
        arrays["test_labels"].astype(np.int64),
        num_classes=10,
    )


def _download_with_torchvision(name: str, root: Path) -> None:
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, TORCHVISION_CLASSES[name])
    try:
        dataset_class(str(root), train=True, download=True)
    except (OSError, RuntimeError) as exc:
        raise DatasetError(
            f"dataset.download: could not download {name} into {root}: {_one_line(exc)}"
        ) from exc


# --- CIFAR-10 -------------------------------------------------------------------------------


def load_cifar10(root: str) -> ImageData:
    """The python-pickle CIFAR-10 batches in ``root`` or ``root/cifar-10-batches-py``.

    The batches are unpickled, so only point ``root`` at files you trust.
    """
    base = _existing_dir(root)
    batch_names = [f"data_batch_{index}" for index in range(1, 6)] + ["test_batch"]
    directory = next(
        (
            candidate
            for candidate in (base, base / "cifar-10-batches-py")
            if all((candidate / batch).is_file() for batch in batch_names)
        ),
        None,
    )
    if directory is None:
        raise DatasetError(
            f"dataset.root: no CIFAR-10 batches (data_batch_1..5, test_batch) in "
            f"{base} or {base / 'cifar-10-batches-py'}"
        )
    train = [_read_cifar_batch(directory / batch) for batch in batch_names[:-1]]
    test_images, test_labels = _read_cifar_batch(directory / "test_batch")
    return ImageData(
        "cifar10",
        np.concatenate([images for images, _ in train]),
        np.concatenate([labels for _, labels in train]),
        test_images,
        test_labels,
        num_classes=10,
    )


class _ArraysOnly(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays only: a batch file that names any other
    callable (a crafted file would run it) is refused, not executed."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as stream:
            batch = _ArraysOnly(stream, encoding="bytes").load()
        # Batches written by Python 2 have bytes keys; accept str keys too.
        batch = {
            key.decode() if isinstance(key, bytes) else key: value for key, value in batch.items()
        }
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
        images = data.reshape(len(data), 3, 32, 32)
    except (
        OSError,
        EOFError,
        pickle.UnpicklingError,
        AttributeError,
        KeyError,
        TypeError,
        ValueError,
    ) as exc:
        raise DatasetError(f"{path}: not a CIFAR-10 batch: {_one_line(exc)}") from exc
    in_range = labels.size == 0 or 0 <= labels.min() <= labels.max() < 10
    if labels.shape != (len(images),) or not in_range:
        raise DatasetError(f"{path}: labels must be {len(images)} values in 0..9")
    return images, labels


# --- Image folder ---------------------------------------------------------------------------


def load_folder(
    root: str, size: int = 64, channels: int = 3, test_fraction: float = 0.1
) -> ImageData:
    """Every image under ``root``, centre-cropped to a square and resized to size x size.

    A root holding only subfolders is read as one class per subfolder that has images (sorted
    by name); a root with images of its own is one unlabelled class, subfolders included.
    Hidden files and folders are skipped.
    """
    base = _existing_dir(root)
    if channels not in (1, 3):
        raise DatasetError(f"dataset.channels: must be 1 or 3, got {channels}")
    if size < 1:
        raise DatasetError(f"dataset.size: must be positive, got {size}")
    if not 0 <= test_fraction < 1:
        raise DatasetError(f"dataset.test_fraction: must be in [0, 1), got {test_fraction}")
    subfolders = (
        entry
        for entry in sorted(base.iterdir())
        if entry.is_dir() and not entry.name.startswith(".")
    )
    classes = {
        folder: files for folder in subfolders if (files := image_files(folder, recursive=True))
    }
    if image_files(base, recursive=False) or not classes:
        classes = {base: image_files(base, recursive=True)}
    paths = [path for files in classes.values() for path in files]
    labels = [label for label, files in enumerate(classes.values()) for _ in files]
    if not paths:
        raise DatasetError(f"dataset.root: no images ({', '.join(IMAGE_SUFFIXES)}) under {base}")
    mode = "L" if channels == 1 else "RGB"
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        pixels = list(pool.map(lambda path: _read_square_image(path, size, mode), paths))
    images = np.stack(pixels).reshape(len(paths), size, size, channels).transpose(0, 3, 1, 2)
    return split_dataset(
        "folder",
        np.ascontiguousarray(images),
        np.array(labels),
        len(classes),
        test_fraction,
        seed=SPLIT_SEED,
    )


def image_files(directory: Path, recursive: bool) -> list[Path]:
    """Image files (by suffix) in ``directory``, sorted; hidden files and folders skipped."""
    candidates = directory.rglob("*") if recursive else directory.iterdir()
    return sorted(
        path
        for path in candidates
        if path.suffix.lower() in IMAGE_SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(directory).parts)
    )


def read_image(path: Path, mode: str | None = None) -> Image.Image:
    """Decode one image file, converted to ``mode`` if given; DatasetError naming the file
    if it cannot be read or decoded."""
    try:
        with Image.open(path) as image:
            # convert() and load() decode the pixels, so corrupt data fails here.
            if mode is not None:
                return image.convert(mode)
            image.load()
            return image.copy()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"{path}: unreadable image: {_one_line(exc)}") from exc


def _read_square_image(path: Path, size: int, mode: str) -> np.ndarray:
    image = read_image(path, mode)
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((size, size), Image.Resampling.BILINEAR))


# --- .npz -----------------------------------------------------------------------------------


def load_npz(path: str, test_fraction: float = 0.2) -> ImageData:
    """Arrays ``images`` (+ ``labels``), split here (with ``test_fraction`` 0 all in train, in
    the archive's order); or ``train_images``/``test_images`` as is.

    Images may be (N,H,W), (N,H,W,C) or (N,C,H,W), uint8 or float in [0, 1]; missing labels
    mean a single class 0.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise DatasetError(f"dataset.path: no such file: {file}")
    if not 0 <= test_fraction < 1:
        raise DatasetError(f"dataset.test_fraction: must be in [0, 1), got {test_fraction}")
    if not zipfile.is_zipfile(file):  # else np.load would try, and refuse, to unpickle it
        raise DatasetError(f"{file}: not a .npz archive")
    try:
        with np.load(file, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{file}: not a readable .npz file: {_one_line(exc)}") from exc

    if "train_images" in arrays:
        if "test_images" not in arrays:
            raise DatasetError(f"{file}: has 'train_images' but no 'test_images'")
        splits = [_npz_split(file, arrays, prefix) for prefix in ("train_", "test_")]
        num_classes = max(int(labels.max(initial=0)) for _, labels in splits) + 1
        return ImageData("npz", *splits[0], *splits[1], num_classes=num_classes)
    if "images" not in arrays:
        raise DatasetError(
            f"{file}: needs an 'images' or 'train_images' array, found: "
            f"{', '.join(arrays) or 'none'}"
        )
    images, labels = _npz_split(file, arrays, "")
    num_classes = int(labels.max(initial=0)) + 1
    if test_fraction == 0:  # nothing held out: the archive's own order, as a folder reads
        return ImageData("npz", images, labels, images[:0], labels[:0], num_classes)
    return split_dataset("npz", images, labels, num_classes, test_fraction, seed=SPLIT_SEED)


def _npz_split(file: Path, arrays: dict[str, np.ndarray], prefix: str) -> tuple[np.ndarray, ...]:
    images = _as_nchw_uint8(file, f"{prefix}images", arrays[f"{prefix}images"])
    key = f"{prefix}labels"
    if key not in arrays:
        return images, np.zeros(len(images), dtype=np.int64)
    labels = arrays[key]
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(
            f"{file}: '{key}' must be {len(images)} integers, got {labels.dtype} {labels.shape}"
        )
    if labels.size and labels.min() < 0:
        raise DatasetError(f"{file}: '{key}' has negative labels")
    return images, labels.astype(np.int64)


def _as_nchw_uint8(file: Path, key: str, images: np.ndarray) -> np.ndarray:
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    elif images.ndim != 4:
        raise DatasetError(
            f"{file}: '{key}' must be (N,H,W), (N,H,W,C) or (N,C,H,W), got shape {images.shape}"
        )
    if images.shape[1] not in (1, 3):
        raise DatasetError(f"{file}: '{key}' has {images.shape[1]} channels, expected 1 or 3")
    if images.dtype == np.uint8:
        return np.ascontiguousarray(images)
    if np.issubdtype(images.dtype, np.floating):
        if images.size and not (images.min() >= 0 and images.max() <= 1):  # NaN fails too
            raise DatasetError(f"{file}: float '{key}' must lie in [0, 1]")
        return np.ascontiguousarray(np.rint(images * 255).astype(np.uint8))
    raise DatasetError(f"{file}: '{key}' must be uint8 or float in [0, 1], got {images.dtype}")
