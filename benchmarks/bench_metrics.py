"""ganorch's feature measures against pytorch-fid on the same weights and folders, and the
cost of the fast routes in ``evaluators``.

What it measures, on the CPU with ``--threads`` torch and BLAS threads for everything:

1. Feature extraction, images per second over two folders of ``--images`` PNGs each:
   ganorch reads a folder the way ``ganorch metrics`` does (``load_image_set``) and runs
   ``inception_features``; pytorch-fid runs ``get_activations`` (its folder dataset,
   ``num_workers=0``) with its ``InceptionV3``. Both load one weights file: a randomly
   initialised FID InceptionV3 saved as ``pt_inception-2015-12-05-6726825d.pth`` in a temporary
   torch hub cache, where pytorch-fid finds it instead of downloading. The largest difference
   between the two feature sets is printed (same network, so round-off only).
2. The FID itself, seconds from the two feature arrays to the number: ganorch's
   ``fid_from_features`` against pytorch-fid's ``np.mean``/``np.cov`` plus
   ``calculate_frechet_distance`` (scipy ``sqrtm``); both values are printed.
3. ``fid_from_features`` at n = 500 per side, d = 2,048: the D x D eigenvalue route against
   the nuclear-norm route it now takes when n < d.
4. KID's cubic kernel over a 1,000 x 1,000 Gram matrix (d = 2,048): ``** 3`` against the
   in-place cube ``evaluators.kid`` now uses, and one whole KID subset (three kernels).

Each timing is the best of ``--repeats`` runs, the two sides alternating. It reports, it does
not assert: the exit status is 0 whatever the ratios (target: ganorch >= 1.0x pytorch-fid).
pytorch-fid is the ``bench`` extra (``pip install -e ".[bench]"``), never a runtime
dependency. Run it from the repository root (a few minutes on 2 CPU cores)::

    .venv/bin/python benchmarks/bench_metrics.py [--images 100] [--threads 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pytorch_fid.fid_score import calculate_frechet_distance, get_activations
from pytorch_fid.inception import InceptionV3
from threadpoolctl import threadpool_limits

from evaluators import kid
from evaluators.fid import feature_statistics, fid_from_features, frechet_distance
from evaluators.judges.inception import WEIGHTS_FILE, FIDInception, inception_features
from evaluators.judges.inception import load_fid_inception as load_ganorch_inception
from orchestrator.image_sets import load_image_set

BATCH_SIZE = 50


def best_of(repeats: int, work: Callable[[], object]) -> tuple[float, object]:
    """Fewest seconds of ``repeats`` calls of ``work`` and the last call's result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


def write_folder(folder: Path, count: int, size: int, seed: int) -> list[Path]:
    """``count`` smooth random RGB PNGs (noise upsampled 8x), one brightness per folder seed."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    files = []
    for i in range(count):
        coarse = rng.uniform(0, 255, (size // 8, size // 8, 3)) * (0.6 + 0.1 * seed)
        image = Image.fromarray(coarse.clip(0, 255).astype(np.uint8)).resize(
            (size, size), Image.BILINEAR
        )
        files.append(folder / f"{i:05d}.png")
        image.save(files[-1])
    return files


def relu_like(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(99).standard_normal((64, d)) / 8.0
    return np.maximum(rng.standard_normal((n, 64)) @ mixing + 0.2 * seed, 0.0)


def line(label: str, seconds: float, extra: str = "") -> None:
    print(f"  {label:<26}{seconds:9.3f} s  {extra}")


def write_random_weights(root: Path) -> Path:
    """A randomly initialised FID InceptionV3 in a torch hub cache, where pytorch-fid finds it."""
    torch.hub.set_dir(str(root / "hub"))  # pytorch-fid looks for the weights here
    weights = root / "hub" / "checkpoints" / WEIGHTS_FILE
    weights.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(FIDInception().state_dict(), weights)
    return weights


def compare_feature_extraction(
    args: argparse.Namespace, weights: Path, folders: list[Path], files: list[list[Path]]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Step 1: images/s of both feature extractors; each side's features of both folders."""
    ganorch_model = load_ganorch_inception(weights)
    pytorch_fid_model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()

    def ganorch_features():
        return [
            inception_features(ganorch_model, load_image_set(str(f)).images, BATCH_SIZE)
            for f in folders
        ]

    def pytorch_fid_features():
        return [get_activations(f, pytorch_fid_model, BATCH_SIZE, 2048, "cpu", 0) for f in files]

    n_images = 2 * args.images
    print(
        f"feature extraction: 2 folders x {args.images} PNGs {args.size}x{args.size}, "
        f"batch {BATCH_SIZE}, {args.threads} threads, random FID InceptionV3 weights"
    )
    ganorch_model.features(torch.zeros(2, 3, 8, 8))  # first-call set-up outside timings
    pytorch_fid_model(torch.zeros(2, 3, 8, 8))
    ours, theirs = float("inf"), float("inf")
    for _ in range(args.repeats):  # alternating, so load on the machine hits both
        seconds, ganorch_out = best_of(1, ganorch_features)
        ours = min(ours, seconds)
        seconds, fid_out = best_of(1, pytorch_fid_features)
        theirs = min(theirs, seconds)
    line("ganorch", ours, f"{n_images / ours:7.2f} images/s")
    line("pytorch-fid", theirs, f"{n_images / theirs:7.2f} images/s")
    difference = max(np.abs(a - b).max() for a, b in zip(ganorch_out, fid_out, strict=True))
    print(
        f"  ratio ganorch / pytorch-fid (images/s) = {theirs / ours:.2f}x "
        f"(target >= 1.0); features differ by at most {difference:.2g}"
    )
    return ganorch_out, fid_out


def compare_fid_value(
    args: argparse.Namespace, ganorch_out: list[np.ndarray], fid_out: list[np.ndarray]
) -> None:
    """Step 2: seconds from the two feature arrays to the FID, on each side's features."""
    real, generated = ganorch_out
    print(f"\nFID from the two feature sets (n = {args.images} per side, d = 2048)")

    def pytorch_fid_value():
        mu1, sigma1 = np.mean(fid_out[0], axis=0), np.cov(fid_out[0], rowvar=False)
        mu2, sigma2 = np.mean(fid_out[1], axis=0), np.cov(fid_out[1], rowvar=False)
        return calculate_frechet_distance(mu1, sigma1, mu2, sigma2)

    ours, ganorch_fid = best_of(args.repeats, lambda: fid_from_features(real, generated))
    theirs, their_fid = best_of(args.repeats, pytorch_fid_value)
    line("ganorch", ours, f"FID {ganorch_fid:.6f}")
    line("pytorch-fid", theirs, f"FID {float(their_fid):.6f}")
    print(f"  ratio pytorch-fid / ganorch (seconds) = {theirs / ours:.1f}x")


def compare_fid_routes(args: argparse.Namespace) -> None:
    """Step 3: ``fid_from_features``'s D x D eigenvalue route against the nuclear-norm one."""
    print("\nfid_from_features at n = 500 per side, d = 2048")
    a, b = relu_like(500, 2048, 1), relu_like(500, 2048, 2)
    with threadpool_limits(args.threads):
        old, old_value = best_of(
            args.repeats, lambda: frechet_distance(*feature_statistics(a), *feature_statistics(b))
        )
        new, new_value = best_of(args.repeats, lambda: fid_from_features(a, b))
    line("D x D eigenvalue route", old, f"FID {old_value:.9f}")
    line("nuclear-norm route", new, f"FID {new_value:.9f}")
    print(
        f"  speedup = {old / new:.1f}x; relative difference "
        f"{abs(old_value - new_value) / new_value:.1e} (round-off of the D x D route)"
    )


def compare_kid_cube(args: argparse.Namespace) -> None:
    """Step 4: KID's cubic kernel, ``** 3`` against the in-place cube, and one KID subset."""
    print("\nKID's cubic kernel over m x m = 1000 x 1000 (d = 2048), and one KID subset")
    x, y = relu_like(1000, 2048, 3), relu_like(1000, 2048, 4)
    gram = x @ y.T / 2048 + 1.0

    def in_place_cube():
        cube = gram * gram
        cube *= gram
        return cube

    with threadpool_limits(args.threads):
        old, _ = best_of(args.repeats, lambda: gram**3)
        new, _ = best_of(args.repeats, in_place_cube)
        subset, _ = best_of(args.repeats, lambda: kid.kid(x, y, subsets=1, subset_size=1000))
    line("gram ** 3", old)
    line("in-place cube", new, f"speedup {old / new:.1f}x")
    line(
        "one KID subset (3 kernels)",
        subset,
        f"was about {subset + 3 * (old - new):.3f} s: {(subset + 3 * (old - new)) / subset:.2f}x",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100, help="images per folder")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(args.threads):
        root = Path(tmp)
        weights = write_random_weights(root)
        folders = [root / name for name in ("a", "b")]
        files = [write_folder(f, args.images, args.size, seed) for seed, f in enumerate(folders)]
        ganorch_out, fid_out = compare_feature_extraction(args, weights, folders, files)
        compare_fid_value(args, ganorch_out, fid_out)
    compare_fid_routes(args)
    compare_kid_cube(args)


if __name__ == "__main__":
    main()
