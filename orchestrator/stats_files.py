"""Reference statistics files: a feature set's mean and covariance in pytorch-fid's layout.

A file is an .npz archive with ``mu`` (D,) and ``sigma`` (D, D), float64, under exactly the
keys pytorch-fid's ``--save-stats`` writes and reads, so files go both ways. ganorch adds its
own metadata as further 0-d arrays, which pytorch-fid ignores: ``extractor`` (``lenet`` or
``inception``), ``weights_hash`` (what identifies the extractor's weights: the SHA-256 of the
Inception file, the LeNet judge's fingerprint), ``n`` (the number of feature vectors) and
``dataset_fingerprint``. A file without them (pytorch-fid's) reads with the metadata None.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.npyio import NpzFile

_TEXT_KEYS = ("extractor", "weights_hash", "dataset_fingerprint")


@dataclass(frozen=True)
class FeatureStatistics:
    """Mean ``mu`` (D,) and covariance ``sigma`` (D, D), float64, and where they came from."""

    mu: np.ndarray
    sigma: np.ndarray
    extractor: str | None = None
    weights_hash: str | None = None
    n: int | None = None
    dataset_fingerprint: str | None = None

    @property
    def dimension(self) -> int:
        return int(self.mu.shape[0])


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB pieces (for ``weights_hash``)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for piece in iter(lambda: file.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def write_statistics(path: str | Path, statistics: FeatureStatistics) -> Path:
    """Write ``statistics`` to ``path`` (compressed .npz, the name kept as given) and return it.

    Written to a temporary file beside it and renamed, so an existing file is replaced whole
    or not at all. Metadata that is None is left out.
    """
    path = Path(path)
    mu, sigma = _checked_arrays(str(path), statistics.mu, statistics.sigma)
    arrays: dict[str, np.ndarray] = {"mu": mu, "sigma": sigma}
    for key in _TEXT_KEYS:
        value = getattr(statistics, key)
        if value is not None:
            arrays[key] = np.array(str(value))
    if statistics.n is not None:
        arrays["n"] = np.array(int(statistics.n), dtype=np.int64)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "wb") as file:
            np.savez_compressed(file, **arrays)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def read_statistics(
    path: str | Path, *, dimension: int | None = None, extractor: str | None = None
) -> FeatureStatistics:
    """The statistics in ``path``: a file from :func:`write_statistics` or from pytorch-fid.

    ``dimension`` and ``extractor`` (when given) are what the features they will be compared
    with have; a file of another dimension, or one that records another extractor, is refused.
    Raises ValueError with a one-line message naming the file for anything that is not such a
    statistics file (unreadable, no ``mu``/``sigma``, wrong shapes, NaN), never loading pickles.
    """
    name = str(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with loaded as archive:
            contents = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ValueError(f"{name}: not a readable .npz statistics file: {reason}") from None
    missing = [key for key in ("mu", "sigma") if key not in contents]
    if missing:
        raise ValueError(
            f"{name}: no {' or '.join(missing)} array; a statistics file holds mu "
            "(D,) and sigma (D, D) as pytorch-fid writes them"
        )
    mu, sigma = _checked_arrays(name, contents["mu"], contents["sigma"])
    metadata = {key: str(contents[key]) for key in _TEXT_KEYS if key in contents}
    n = int(contents["n"]) if "n" in contents else None
    statistics = FeatureStatistics(mu, sigma, n=n, **metadata)
    recorded = statistics.extractor
    if extractor is not None and recorded is not None and recorded != extractor:
        raise ValueError(
            f"{name}: statistics of {recorded} features, but the features to "
            f"compare are from {extractor} (use --extractor {recorded})"
        )
    if dimension is not None:
        check_dimension(name, statistics, dimension, extractor)
    return statistics


def check_dimension(
    name: str, statistics: FeatureStatistics, dimension: int, extractor: str | None = None
) -> None:
    """ValueError (one line naming the file) unless ``statistics`` are of ``dimension``-d
    features, those of ``extractor`` when given."""
    if statistics.dimension != dimension:
        source = f"the {extractor} extractor gives" if extractor else "the features have"
        raise ValueError(
            f"{name}: statistics of {statistics.dimension}-d features, but "
            f"{source} {dimension}-d features"
        )


def _checked_arrays(name: str, mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, ...]:
    mu, sigma = np.asarray(mu), np.asarray(sigma)
    if mu.dtype.kind not in "fiu" or sigma.dtype.kind not in "fiu":
        raise ValueError(f"{name}: mu and sigma must be numeric, got {mu.dtype} and {sigma.dtype}")
    mu, sigma = mu.astype(np.float64), sigma.astype(np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]) or mu.shape[0] == 0:
        raise ValueError(
            f"{name}: mu must have shape (D,) and sigma (D, D), got {mu.shape} and {sigma.shape}"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"{name}: mu or sigma contains NaN or infinite values")
    return mu, sigma
