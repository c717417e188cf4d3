"""Augmentation-grid throughput: one small grid on 1 actor and on 2, side by side.

What it measures: the wall time of the shard pool (actor start-up included, sample drawing and
figures excluded) running a `mix` grid through ``orchestrator.augment.grid.run_augment`` on the
mnist5k split: real 10/20/50/100% x generated 0/10/50% of the 4,000 training digits, one seed,
``--epochs`` epochs per cell (12 cells), with samples from an untrained tiny conditional DCGAN
saved to a temporary folder (the classifier's work does not depend on the samples' quality).
Each run retrains every cell (``force``); runs alternate 1 actor, 2 actors for ``--rounds``
rounds, and the median time of each side is compared. The last line is
``speedup 2 actors / 1 actor = S (target >= 1.7)``. It reports, it does not assert.

Run it from the repository root on a quiet machine with 2 or more cores (about 3 minutes with
the defaults on 2 cores)::

    .venv/bin/python benchmarks/bench_grid.py [--epochs 6] [--rounds 1]

A private local Ray is started with 2 CPUs; runs and the judge cache go to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from orchestrator.augment.grid import run_augment
from orchestrator.augment.spec import AugmentSpec
from orchestrator.cluster import connect
from trainables.families import family_class
from trainables.trainable import STATE_FILE

TARGET = 1.7
REAL, GENERATED = (10, 20, 50, 100), (0, 10, 50)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def save_generator(folder: Path) -> Path:
    """An untrained cdcgan (base_channels 8, n_z 16) saved like a trial checkpoint."""
    folder.mkdir(parents=True)
    model = family_class("cdcgan")(
        {"base_channels": 8, "n_z": 16}, (1, 28, 28), 10, torch.device("cpu")
    )
    torch.save(
        {
            "model": model.state_dict(),
            "family": "cdcgan",
            "config": model.config,
            "image_shape": (1, 28, 28),
            "num_classes": 10,
            "epoch": 0,
        },
        folder / STATE_FILE,
    )
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6, help="epochs per cell (default 6)")
    parser.add_argument("--rounds", type=int, default=1, help="1-actor/2-actor pairs (default 1)")
    args = parser.parse_args()
    if args.epochs < 1 or args.rounds < 1:
        parser.error("--epochs and --rounds must be >= 1")

    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="ganorch-bench-grid-"))
    os.environ["GANORCH_CACHE"] = str(scratch / "cache")
    os.environ["RAY_ADDRESS"] = "local"  # never join a cluster `ray start` left on this machine
    os.environ.pop("GANORCH_ADDRESS", None)
    seconds: dict[int, list[float]] = {1: [], 2: []}
    try:
        generator = save_generator(scratch / "generator")
        spec = AugmentSpec(
            "bench-grid",
            str(generator),
            strategies=("mix",),
            real=REAL,
            generated=GENERATED,
            seeds=1,
            epochs=args.epochs,
            dataset={"name": "mnist5k"},
        )
        connect(num_cpus=2)
        sequence = [1, 2] * args.rounds
        for index, actors in enumerate(sequence, 1):
            progress(f"[{index}/{len(sequence)}] {actors} actor(s) ...")
            outcome = run_augment(
                spec, str(scratch / "runs"), actors=actors, force=True, say=progress
            )
            report = outcome.report
            if report.done != report.total:
                raise SystemExit(
                    f"only {report.done} of {report.total} cells finished: {report.failures}"
                )
            seconds[actors].append(report.seconds)
            progress(f"[{index}/{len(sequence)}] {actors} actor(s): {report.seconds:.1f} s")
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)

    medians = {actors: statistics.median(values) for actors, values in seconds.items()}
    cells = len(REAL) * len(GENERATED)
    print(
        f"mix grid on mnist5k: {cells} cells (real {REAL}% x generated {GENERATED}%), "
        f"1 seed, {args.epochs} epochs per cell, 1 torch thread per actor"
    )
    print(f"{'actors':<8}{'runs':>6}{'median s':>10}{'cells/min':>11}")
    for actors, median in medians.items():
        print(f"{actors:<8}{len(seconds[actors]):>6}{median:>10.1f}{cells / median * 60:>11.1f}")
    print(f"wall time {time.perf_counter() - started:.0f} s")
    print(f"speedup 2 actors / 1 actor = {medians[1] / medians[2]:.2f} (target >= {TARGET})")


if __name__ == "__main__":
    main()
