"""Statistics files on the command line: ``ganorch metrics stats SET -o FILE`` writes a set's
feature mean and covariance, and ``ganorch metrics fid A B`` takes such a file (ganorch's or one
from pytorch-fid's ``--save-stats``) on either side in place of images.

A file written here records its extractor and a hash of the extractor's weights; a file that
records other weights than the extractor now in use is refused, since its FID would compare
features of two different networks. pytorch-fid's files record nothing, so only their
dimension is checked: they are meant for ``--extractor inception`` with pytorch-fid's weights.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orchestrator.errors import UserError
from orchestrator.evaluate.context import MeasureContext
from orchestrator.image_sets import ImageSet, load_image_set, subsample
from orchestrator.judges import lenet_judge
from orchestrator.stats_files import (
    FeatureStatistics,
    check_dimension,
    read_statistics,
    write_statistics,
)


def is_statistics_file(source: str) -> bool:
    """Whether ``source`` names an existing .npz archive with ``mu`` and ``sigma`` and no
    ``images`` (read from the archive's member names; nothing is loaded)."""
    path = Path(source).expanduser()
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        members = {name.removesuffix(".npy") for name in archive.namelist()}
    return {"mu", "sigma"} <= members and "images" not in members


@dataclass(frozen=True)
class Side:
    """One side of ``ganorch metrics fid``: a statistics file or an image set."""

    source: str
    statistics: FeatureStatistics | None = None
    image_set: ImageSet | None = None

    def describe(self) -> str:
        if self.image_set is not None:
            return self.image_set.describe()
        stats = self.statistics
        made = f"{stats.n} " if stats.n is not None else ""
        by = f"{stats.extractor} " if stats.extractor else ""
        return f"{self.source} (statistics of {made}{by}{stats.dimension}-d features)"


def write_set_statistics(
    source: str, output: str, context: MeasureContext, n: int | None, seed: int, judge: str | None
) -> tuple[FeatureStatistics, ImageSet]:
    """Features of the image set ``source`` (at most ``n``, a ``seed``ed subset) by the
    context's extractor, their mean and covariance written to ``output`` with the metadata."""
    target = _output_path(output)
    if is_statistics_file(source):
        raise UserError(f"{source}: already a statistics file; stats takes images")
    image_set = subsample(load_image_set(source), n, seed)
    if len(image_set.images) < 2:
        raise UserError(f"{source}: statistics need at least 2 images, it has 1")
    context.load_judge, context.judge_name = lenet_judge(
        judge, image_set.dataset if context.extractor == "lenet" else None
    )
    features = context.features(image_set.images)
    from evaluators.fid import feature_statistics

    if image_set.dataset is not None:
        made_from = f"{image_set.dataset.fingerprint}:{image_set.split or 'test'}"
    else:
        from trainables.datasets import fingerprint_arrays

        made_from = fingerprint_arrays(image_set.images)
    statistics = FeatureStatistics(
        *feature_statistics(features),
        extractor=context.extractor,
        weights_hash=context.weights_hash(),
        n=len(features),
        dataset_fingerprint=made_from,
    )
    write_statistics(target, statistics)
    return statistics, image_set


def fid_with_statistics(
    a: str, b: str, context: MeasureContext, n: int | None, seed: int, judge: str | None
) -> tuple[dict[str, float], Side, Side]:
    """``ganorch metrics fid A B`` where A, B or both are statistics files."""
    from evaluators.fid import fid_against_statistics, frechet_distance

    sides = [_side(source, context, n, seed) for source in (a, b)]
    images = [side.image_set for side in sides if side.image_set is not None]
    reference = next((s.dataset for s in images if s.dataset is not None), None)
    context.load_judge, context.judge_name = lenet_judge(judge, reference)
    stored = [side for side in sides if side.statistics is not None]
    if images:
        for side in stored:  # before the features: refused without extracting them
            _check_weights(side, context)
        features = context.features(images[0].images)
        for side in stored:
            _check_dimension(side, features.shape[1], context.extractor)
        stats = stored[0].statistics
        value = fid_against_statistics(stats.mu, stats.sigma, features)
    else:
        first, second = (side.statistics for side in sides)
        _check_dimension(sides[1], first.dimension, first.extractor)
        if first.weights_hash and second.weights_hash and first.weights_hash != second.weights_hash:
            raise UserError(f"{a} and {b}: statistics of features from different weights")
        value = frechet_distance(first.mu, first.sigma, second.mu, second.sigma)
    return {"fid": value}, sides[0], sides[1]


def _side(source: str, context: MeasureContext, n: int | None, seed: int) -> Side:
    if not is_statistics_file(source):
        return Side(source, image_set=subsample(load_image_set(source), n, seed))
    try:
        return Side(source, statistics=read_statistics(source, extractor=context.extractor))
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _check_dimension(side: Side, dimension: int, extractor: str | None) -> None:
    try:
        check_dimension(side.source, side.statistics, dimension, extractor)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _check_weights(side: Side, context: MeasureContext) -> None:
    recorded = side.statistics.weights_hash
    if recorded is not None and recorded != context.weights_hash():
        raise UserError(
            f"{side.source}: statistics of other {context.extractor} weights than the ones in "
            f"use ({recorded[:12]} vs {context.weights_hash()[:12]}); write them again with "
            "ganorch metrics stats"
        )


def _output_path(output: str | None) -> Path:
    if not output:
        raise UserError("stats writes a file: give it with -o FILE (e.g. -o stats.npz)")
    path = Path(output).expanduser()
    if path.is_dir():
        raise UserError(f"-o {output}: is a folder; give a file name (e.g. {output}/stats.npz)")
    if not path.parent.is_dir():
        raise UserError(f"-o {output}: folder {path.parent} does not exist")
    if path.suffix != ".npz":
        raise UserError(f"-o {output}: a statistics file ends in .npz")
    return path


def statistics_summary(statistics: FeatureStatistics) -> dict[str, float]:
    """What ``metrics stats`` prints: the number of features, their dimension, and the trace
    of the covariance and norm of the mean (enough to tell two files apart at a glance)."""
    return {
        "n": float(statistics.n or 0),
        "dimension": float(statistics.dimension),
        "mean_norm": float(np.linalg.norm(statistics.mu)),
        "trace_sigma": float(np.trace(statistics.sigma)),
    }
