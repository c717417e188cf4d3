"""Training throughput of the ganorch trainable under Ray Tune versus a bare PyTorch loop.

What it measures: images/s of DCGAN training on the mnist5k train split (base_channels 32,
g_layers 3, d_layers 3, n_z 64, batch_size 64, seed 0), one CPU thread on both sides:

* tune - a real one-trial sweep through ``orchestrator.sweep.tuner.run_sweep`` (grid search, no
  scheduler, ``resources: {cpu: 1}``); the trainable's own per-epoch ``images_per_s`` is read
  back from the run's ``epochs`` table.
* bare - the same family class and config driven by a plain loop in this process
  (``torch.set_num_threads(1)``, full batches over a ``torch.randperm`` epoch order, images
  scaled to [-1, 1]), timed around the training loop only, as the trainable times itself.

Runs are interleaved (bare, tune, bare, ... for ``--rounds`` rounds) to cancel drift, and the
median per-epoch images/s of each side is compared; with 3 or more epochs the first epoch of
every run is left out as warm-up. The last line is ``ratio tune/bare = R (target >= 0.95)``.
It reports, it does not assert: the exit status is 0 whatever the ratio.

Run it from the repository root (a few minutes on 2 CPU cores)::

    .venv/bin/python benchmarks/bench_trainable.py [--epochs 3] [--rounds 1] [--keep]

A private local Ray is started with 2 CPUs (``RAY_ADDRESS=local``, so a cluster already
running on the machine is not joined). Runs and the judge cache go to temporary folders unless
``--keep`` is given (then the usual runs-dir and ``GANORCH_CACHE`` are used and kept).
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

from orchestrator.cluster import connect
from orchestrator.runs import RunDir, default_runs_dir
from orchestrator.sweep.spec import parse_spec
from orchestrator.sweep.tuner import prepare_dataset, run_sweep
from orchestrator.tables import Table
from trainables.families import family_class

FAMILY = "dcgan"
CONFIG = {"base_channels": 32, "g_layers": 3, "d_layers": 3, "n_z": 64, "batch_size": 64, "seed": 0}
TARGET = 0.95


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def bench_spec(epochs: int):
    return parse_spec(
        {
            "name": "bench-trainable",
            "dataset": {"name": "mnist5k"},
            "family": FAMILY,
            "epochs": epochs,
            "search": {"algorithm": "grid", "samples": 1},
            "scheduler": {"name": "none"},
            "resources": {"cpu": 1, "gpu": 0},
            "space": {},
            "fixed": {**CONFIG, "fid_samples": 200},  # keeps the per-epoch evaluation short
        }
    )


def bare_run(data, epochs: int) -> list[float]:
    """Per-epoch images/s of the family trained by a plain loop in this process."""
    torch.set_num_threads(1)
    device = torch.device("cpu")
    model = family_class(FAMILY)(CONFIG, data.shape, data.num_classes, device)
    images = torch.tensor(data.train_images).float().div_(127.5).sub_(1.0)
    labels = torch.tensor(data.train_labels)
    batch, per_step = model.config["batch_size"], model.real_batches_per_step
    size = batch * per_step
    steps = len(images) // size
    order_rng = torch.Generator().manual_seed(model.config["seed"])
    rates = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train(True)
        order = torch.randperm(len(images), generator=order_rng)
        for step in range(steps):
            chunk = order[step * size : (step + 1) * size].view(per_step, batch)
            model.train_step([images[i] for i in chunk], [labels[i] for i in chunk])
        rates.append(steps * size / (time.perf_counter() - started))
    return rates


def tune_run(spec, runs_dir: str, round_no: int) -> list[float]:
    """Per-epoch images/s the trainable reported in a real one-trial Tune sweep."""
    run = RunDir.of(runs_dir, f"{spec.name}-r{round_no}")
    outcome = run_sweep(spec, run, restart=True, say=progress)
    if outcome.finished != 1:
        raise SystemExit(f"the benchmark trial did not finish ({outcome}); see {run.root}")
    rows = Table(run.tables, "epochs").read().to_pylist()
    return [row["images_per_s"] for row in sorted(rows, key=lambda r: r["epoch"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="tune runs; each is preceded and followed by a bare run (default 1)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="use the usual runs-dir and judge cache and keep them"
    )
    args = parser.parse_args()
    if args.epochs < 1 or args.rounds < 1:
        parser.error("--epochs and --rounds must be >= 1")

    started = time.perf_counter()
    scratch = None if args.keep else tempfile.mkdtemp(prefix="ganorch-bench-")
    if scratch:
        os.environ["GANORCH_CACHE"] = os.path.join(scratch, "cache")
        runs_dir = os.path.join(scratch, "runs")
    else:
        runs_dir = default_runs_dir()
    skip = 1 if args.epochs >= 3 else 0
    # A private local Ray: without this, ray.init() joins a cluster started by `ray start` on
    # this machine (/tmp/ray/ray_current_cluster), where num_cpus is refused and CPUs are shared.
    os.environ["RAY_ADDRESS"] = "local"
    os.environ.pop("GANORCH_ADDRESS", None)
    try:
        torch.set_num_threads(1)
        spec = bench_spec(args.epochs)
        data, _ = prepare_dataset(spec)  # also trains (or loads) the judge before any timing
        connect(num_cpus=2)
        rates: dict[str, list[float]] = {"bare": [], "tune": []}
        runs = {"bare": 0, "tune": 0}
        sequence = ["bare"] + ["tune", "bare"] * args.rounds
        for index, side in enumerate(sequence, 1):
            progress(f"[{index}/{len(sequence)}] {side}: {args.epochs} epochs ...")
            per_epoch = (
                bare_run(data, args.epochs)
                if side == "bare"
                else tune_run(spec, runs_dir, index // 2)
            )
            progress(
                f"[{index}/{len(sequence)}] {side}: images/s per epoch "
                + ", ".join(f"{r:.0f}" for r in per_epoch)
            )
            rates[side].extend(per_epoch[skip:])
            runs[side] += 1
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    medians = {side: statistics.median(values) for side, values in rates.items()}
    note = "first epoch of each run left out as warm-up" if skip else "all epochs counted"
    plural = "s" if args.epochs > 1 else ""
    print(f"DCGAN on mnist5k, {CONFIG}, 1 thread; {args.epochs} epoch{plural} per run, {note}")
    print(f"{'side':<6}{'runs':>6}{'epochs':>8}{'median images/s':>18}")
    for side in ("bare", "tune"):
        print(f"{side:<6}{runs[side]:>6}{len(rates[side]):>8}{medians[side]:>18.1f}")
    print(
        f"wall time {time.perf_counter() - started:.0f} s"
        + (f"; runs kept under {Path(runs_dir).resolve()}" if args.keep else "")
    )
    print(f"ratio tune/bare = {medians['tune'] / medians['bare']:.2f} (target >= {TARGET})")


if __name__ == "__main__":
    main()
