"""Dataset registry: ``load_dataset({"name": "mnist5k"})`` -> :class:`ImageData`.

A spec is the ``dataset`` mapping of an experiment: ``name`` plus that dataset's options
(:data:`DATASET_OPTIONS`). Loaded datasets are memoised per process, keyed by the spec, and
their arrays are made read-only because every caller shares them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import embedded, files
from .base import DatasetError, ImageData, fingerprint_arrays

__all__ = [
    "DATASET_OPTIONS",
    "REQUIRED_OPTIONS",
    "DatasetError",
    "ImageData",
    "clear_dataset_cache",
    "dataset_names",
    "fingerprint_arrays",
    "load_dataset",
]

OptionType = type | tuple[type, ...]


@dataclass(frozen=True)
class _Dataset:
    load: Callable[..., ImageData]
    options: dict[str, OptionType] = field(default_factory=dict)
    required: frozenset[str] = frozenset()


_FRACTION = (float, int)  # YAML writes 0 and 1 as ints
_REGISTRY: dict[str, _Dataset] = {
    "mnist5k": _Dataset(embedded.load_mnist5k),
    "patches": _Dataset(embedded.load_patches, {"train": int, "test": int, "size": int}),
    "digits": _Dataset(embedded.load_digits, {"size": int}),
    "mnist": _Dataset(
        functools.partial(files.load_idx_dataset, "mnist"),
        {"root": str, "download": bool},
        frozenset({"root"}),
    ),
    "fashion-mnist": _Dataset(
        functools.partial(files.load_idx_dataset, "fashion-mnist"),
        {"root": str, "download": bool},
        frozenset({"root"}),
    ),
    "cifar10": _Dataset(files.load_cifar10, {"root": str}, frozenset({"root"})),
    "folder": _Dataset(
        files.load_folder,
        {"root": str, "size": int, "channels": int, "test_fraction": _FRACTION},
        frozenset({"root"}),
    ),
    "npz": _Dataset(files.load_npz, {"path": str, "test_fraction": _FRACTION}, frozenset({"path"})),
}

#: Per dataset, the option keys allowed besides ``name`` and the Python type(s) of each value.
DATASET_OPTIONS: dict[str, dict[str, OptionType]] = {
    name: dict(entry.options) for name, entry in _REGISTRY.items()
}
#: Per dataset, the options a spec must set.
REQUIRED_OPTIONS: dict[str, set[str]] = {
    name: set(entry.required) for name, entry in _REGISTRY.items()
}


def dataset_names() -> list[str]:
    """Names accepted as ``dataset.name``, sorted."""
    return sorted(_REGISTRY)


def load_dataset(spec: Mapping[str, Any]) -> ImageData:
    """Load (or fetch from the in-process cache) the dataset a spec describes.

    Raises :class:`DatasetError` with a one-line message naming the offending key or file
    for an unknown name, an unknown, missing or ill-typed option, or unreadable data.
    """
    _validate(spec)
    return _load_cached(tuple(sorted(spec.items())))


def clear_dataset_cache() -> None:
    """Forget memoised datasets, e.g. after the files under a ``root`` changed."""
    _load_cached.cache_clear()


def _validate(spec: Mapping[str, Any]) -> None:
    name = spec.get("name")
    if not isinstance(name, str) or name not in _REGISTRY:
        raise DatasetError(
            f"dataset.name: unknown dataset {name!r}; choose one of {', '.join(dataset_names())}"
        )
    entry = _REGISTRY[name]
    for key, value in spec.items():
        if key == "name":
            continue
        if key not in entry.options:
            allowed = ", ".join(sorted(entry.options)) or "none"
            raise DatasetError(f"dataset.{key}: unknown option for {name!r} (allowed: {allowed})")
        expected = entry.options[key]
        expected_types = expected if isinstance(expected, tuple) else (expected,)
        # bool is an int subclass; only accept it where bool is what is asked for.
        if not isinstance(value, expected_types) or (
            isinstance(value, bool) and bool not in expected_types
        ):
            wanted = " or ".join(kind.__name__ for kind in expected_types)
            raise DatasetError(f"dataset.{key}: expected {wanted}, got {value!r}")
    missing = entry.required - spec.keys()
    if missing:
        raise DatasetError(f"dataset.{min(missing)}: required option missing for {name!r}")


@functools.lru_cache(maxsize=16)
def _load_cached(items: tuple[tuple[str, Any], ...]) -> ImageData:
    options = dict(items)
    data = _REGISTRY[options.pop("name")].load(**options)
    for array in (data.train_images, data.train_labels, data.test_images, data.test_labels):
        array.flags.writeable = False
    return data
