"""Pixel-space nearest neighbours: duplicates within the generated set (mode collapse) and
distances to the training set (memorisation)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from evaluators.images import as_float_images
from evaluators.sheets import image_grid


@dataclass(frozen=True)
class NeighbourReport:
    """Result of :func:`nearest_neighbours`; distances are Euclidean on flattened [0, 1] pixels.

    duplicate_rate: share of generated samples whose nearest other generated sample is closer
    (strictly) than ``duplicate_threshold``, the ``percentile``-th percentile of the test set's
    nearest-other-sample distances. memorisation_ratio: median_generated_to_train /
    median_test_to_train, the medians over samples of the distance to the nearest training image
    (inf if only the denominator is 0, nan if both are). nearest_generated (N_gen,): index of each
    generated sample's nearest other generated sample; nearest_train (N_gen, k): indices into the
    training set of its k nearest training images, closest first; the ``*_distance`` arrays hold
    the matching distances.
    """

    duplicate_rate: float
    duplicate_threshold: float
    memorisation_ratio: float
    median_generated_to_train: float
    median_test_to_train: float
    nearest_generated: np.ndarray = field(repr=False, compare=False)
    nearest_train: np.ndarray = field(repr=False, compare=False)
    nearest_generated_distance: np.ndarray = field(repr=False, compare=False)
    nearest_train_distance: np.ndarray = field(repr=False, compare=False)


def nearest_neighbours(
    generated: np.ndarray | torch.Tensor,
    train: np.ndarray | torch.Tensor,
    test: np.ndarray | torch.Tensor,
    *,
    k: int = 4,
    percentile: float = 1.0,
    chunk: int = 1024,
    device: str | torch.device = "cpu",
) -> NeighbourReport:
    """Euclidean pixel-space k-NN within the generated set and from it to the training set.

    generated, train, test: images of one shape (N, C, H, W) (or (N, H, W)), float on [0, 1] or
    uint8 on 0..255 (divided by 255), flattened to vectors; distance d(a, b) = ||a - b||_2,
    computed in float64 as sqrt(max(||a||^2 - 2 a.b + ||b||^2, 0)) over blocks of ``chunk`` x
    ``chunk`` pairs, so memory is O(chunk^2 + N * k) whatever the set sizes.

    (a) Mode collapse: threshold = ``percentile``-th percentile (0..100, default 1; numpy's linear
    interpolation) of the test set's nearest-other-sample distances; duplicate_rate = share of
    generated samples whose nearest other generated sample is closer than the threshold. Nearest
    distances shrink as a set grows, so compare a generated set and a test set of about the same
    size; then fresh samples of the test distribution give a rate near percentile / 100.
    (b) Memorisation: ratio = median over generated samples of the distance to the nearest
    training image / the same median for test samples; ~1 for a generator as far from the
    training set as unseen real data, << 1 for one copying training images.

    Needs at least 2 generated and 2 test images and k <= N_train. Self-matches are excluded by
    index, so exact duplicates within a set are found at distance 0.
    """
    gen_x, train_x, test_x = (
        as_float_images(images).flatten(1) for images in (generated, train, test)
    )
    if not gen_x.shape[1] == train_x.shape[1] == test_x.shape[1]:
        raise ValueError(
            f"generated, train and test images must have one shape, got {gen_x.shape[1]}, "
            f"{train_x.shape[1]} and {test_x.shape[1]} pixels per image"
        )
    if len(gen_x) < 2 or len(test_x) < 2:
        raise ValueError("need at least 2 generated and 2 test images")
    if not 1 <= k <= len(train_x):
        raise ValueError(f"need 1 <= k <= {len(train_x)} (training images), got k={k}")
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile is on 0..100, got {percentile}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")

    test_self, _ = k_nearest(test_x, test_x, 1, chunk, device, exclude_self=True)
    gen_self, gen_self_index = k_nearest(gen_x, gen_x, 1, chunk, device, exclude_self=True)
    gen_train, gen_train_index = k_nearest(gen_x, train_x, k, chunk, device)
    test_train, _ = k_nearest(test_x, train_x, 1, chunk, device)

    threshold = float(np.percentile(test_self[:, 0], percentile))
    median_generated = float(np.median(gen_train[:, 0]))
    median_test = float(np.median(test_train[:, 0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.float64(median_generated) / np.float64(median_test))
    return NeighbourReport(
        duplicate_rate=float(np.mean(gen_self[:, 0] < threshold)),
        duplicate_threshold=threshold,
        memorisation_ratio=ratio,
        median_generated_to_train=median_generated,
        median_test_to_train=median_test,
        nearest_generated=gen_self_index[:, 0],
        nearest_train=gen_train_index,
        nearest_generated_distance=gen_self[:, 0],
        nearest_train_distance=gen_train,
    )


def squared_distances(queries: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """||q - b||^2 for every row pair, float64, as ||q||^2 - 2 q.b + ||b||^2.

    One matrix product per call; the expansion's round-off is at most about
    (2 D + 4) eps (||q||^2 + ||b||^2) per entry for D-dimensional rows, so an entry within that
    bound is set to 0: an exact duplicate is at distance 0, not at round-off's square root
    (~1e-8). For images on a 1/255 grid the smallest true nonzero value, 1/255^2, is far above
    the bound.
    """
    queries, base = queries.to(torch.float64), base.to(torch.float64)
    query_norms = (queries * queries).sum(1, keepdim=True)
    base_norms = (base * base).sum(1)
    squared = query_norms - 2.0 * queries @ base.T + base_norms
    bound = (2 * queries.shape[1] + 4) * torch.finfo(torch.float64).eps
    return squared.masked_fill_(squared <= bound * (query_norms + base_norms), 0.0)


def k_nearest(
    queries: torch.Tensor,
    base: torch.Tensor,
    k: int,
    chunk: int,
    device: str | torch.device,
    exclude_self: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """k smallest distances (float64, ascending) and their indices into ``base`` per query.

    Works on ``chunk`` x ``chunk`` blocks of :func:`squared_distances`, keeping a running top-k
    per query block; a stable sort puts the lower index first among equal distances. With
    ``exclude_self`` (queries and base are one set) row i never matches base row i, so an
    exact duplicate elsewhere in the set is found at distance 0.
    """
    distances, indices = [], []
    for q_start in range(0, len(queries), chunk):
        q = queries[q_start : q_start + chunk].to(device, torch.float64)
        best_d = torch.full((len(q), 0), float("inf"), dtype=torch.float64, device=device)
        best_i = torch.zeros((len(q), 0), dtype=torch.long, device=device)
        rows = torch.arange(q_start, q_start + len(q), device=device)[:, None]
        for b_start in range(0, len(base), chunk):
            b = base[b_start : b_start + chunk].to(device, torch.float64)
            squared = squared_distances(q, b)
            columns = torch.arange(b_start, b_start + len(b), device=device)[None, :]
            if exclude_self:
                squared = squared.masked_fill(rows == columns, float("inf"))
            merged_d = torch.cat([best_d, squared], dim=1)
            merged_i = torch.cat([best_i, columns.expand(len(q), -1)], dim=1)
            merged_d, order = torch.sort(merged_d, dim=1, stable=True)
            best_d, best_i = merged_d[:, :k], merged_i.gather(1, order[:, :k])
        distances.append(best_d.sqrt().cpu())
        indices.append(best_i.cpu())
    return torch.cat(distances).numpy(), torch.cat(indices).numpy()


def neighbour_sheet(
    generated: np.ndarray | torch.Tensor,
    train: np.ndarray | torch.Tensor,
    report: NeighbourReport,
    rows: int = 8,
    indices: Sequence[int] | None = None,
) -> np.ndarray:
    """Sheet of generated samples and their nearest training images, uint8 (H, W, 3).

    One row per generated sample: the sample, then its k nearest training images from
    ``report.nearest_train`` (closest first). Samples shown: ``indices`` into ``generated`` if
    given, else the first ``min(rows, N_gen)``. ``generated`` and ``train`` must be the arrays the
    report was computed from (same conventions as :func:`nearest_neighbours`). Grid of
    :func:`evaluators.sheets.image_grid` with padding 2: shape
    ``(r * (H + 2) + 2, (k + 1) * (W + 2) + 2, 3)`` for r rows.
    """
    gen_x, train_x = as_float_images(generated), as_float_images(train)
    if len(gen_x) != len(report.nearest_train):
        raise ValueError(
            f"report is for {len(report.nearest_train)} generated samples, got {len(gen_x)}"
        )
    chosen = list(range(min(rows, len(gen_x)))) if indices is None else list(indices)
    if not chosen:
        raise ValueError("no generated samples selected for the sheet")
    tiles = []
    for i in chosen:
        tiles.append(gen_x[i : i + 1])
        tiles.append(train_x[torch.as_tensor(report.nearest_train[i])])
    return image_grid(torch.cat(tiles), nrow=report.nearest_train.shape[1] + 1)
