"""What a sweep costs beyond its trials' own work, measured on one real `ganorch sweep run`.

The command runs as a user runs it (the installed console script, its own embedded Ray) on
``--trials`` one-epoch DCGAN trials on mnist5k (base_channels 8, n_z 16, batch_size 100,
fid_samples 200, random search over lr, ``--concurrent`` at a time, one CPU each). Each trial's
end is the wall time of its last TensorBoard event; its start is that end minus Tune's
``time_total_s`` for it. Printed:

* to first trial - command start to the first trial's start (imports, Ray start, dataset, judge,
  Tune set-up, the first worker process);
* median gap - a trial's start minus the latest trial end before it (slot hand-over), over the
  trials that waited for a slot;
* tail - the last trial's end to the command's exit (reconcile, compaction, Ray shutdown);
* inside a trial - Tune's ``time_total_s`` split into the epoch (training + FID, the trial's
  ``epoch_s``) and the rest (dataset fetch, family build, checkpoint, report), for the first
  trials of a worker process and for the trials that reused one;
* the last line: ``overhead ratio = command wall / (sum of trial walls / concurrent) = R
  (target <= 1.5)``.

Before the sweep it times, each in a fresh interpreter on an otherwise idle machine, the
imports no sweep can skip: the driver's (the `sweep run` code path: torch, Ray Tune, Optuna,
pyarrow) and a trial worker's (Ray, torch, Tune's function trainable, ganorch's trainable, and
``torch._dynamo``, which every ``torch.optim`` optimiser imports on first use). A trial cannot
start before the driver and one worker have done theirs (all but ``torch._dynamo``, which
comes with the trial's first optimiser), so they are a floor under "to first trial".

It reports, it does not assert. Run it from the repository root (about a minute on 2 cores)::

    .venv/bin/python benchmarks/bench_sweep_overhead.py [--trials 8] [--concurrent 2]

Runs and the judge cache go to a temporary folder; the judge is trained there by a first,
untimed one-trial sweep so that the timed run loads it as a user's second sweep would.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

GANORCH = Path(sys.executable).with_name("ganorch")


def write_spec(path: Path, name: str, trials: int, concurrent: int) -> Path:
    spec = {
        "name": name,
        "dataset": {"name": "mnist5k"},
        "family": "dcgan",
        "epochs": 1,
        "search": {"algorithm": "random", "samples": trials, "max_concurrent": concurrent},
        "scheduler": {"name": "none"},
        "resources": {"cpu": 1},
        "space": {"lr": {"loguniform": [2.0e-4, 2.0e-3]}},
        "fixed": {"base_channels": 8, "n_z": 16, "batch_size": 100, "fid_samples": 200},
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def run_command(spec: Path, runs: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run one sweep; its start and exit as ``time.time()`` seconds."""
    started = time.time()
    subprocess.run(
        [str(GANORCH), "sweep", "run", str(spec), "--runs-dir", str(runs)],
        check=True,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return started, time.time()


# What a fresh process must import before it can do its part of a sweep.
IMPORTS = {
    "driver": "import orchestrator.sweep.commands, orchestrator.sweep.tuner, optuna.storages",
    "trial worker": (
        "import ray, torch, torch._dynamo, ray.tune.trainable.function_trainable, "
        "trainables.trainable"
    ),
}


def import_seconds(statement: str, rounds: int = 3) -> tuple[float, float]:
    """Median wall and CPU seconds of ``python -c statement`` in a fresh interpreter."""
    walls, cpus = [], []
    for _ in range(rounds):
        before = os.times()
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        walls.append(time.perf_counter() - started)
        after = os.times()
        cpus.append(
            after.children_user
            + after.children_system
            - before.children_user
            - before.children_system
        )
    return statistics.median(walls), statistics.median(cpus)


def trial_spans(run: Path) -> list[dict[str, float]]:
    """Per trial: start, end (wall-clock seconds), Tune's total and the epoch's own time."""
    rows = pq.read_table(run / "tables" / "trials").to_pylist()
    spans = []
    for row in rows:
        events = EventAccumulator(str(run / "tb" / row["trial_id"]), size_guidance={"scalars": 0})
        events.Reload()
        end = events.Scalars("fid")[-1].wall_time
        total = row["last_time_total_s"]
        spans.append(
            {"start": end - total, "end": end, "total": total, "epoch": row["last_epoch_s"]}
        )
    return sorted(spans, key=lambda span: span["start"])


def report(spans: list[dict[str, float]], started: float, ended: float, concurrent: int) -> None:
    wall = ended - started
    first, reused = spans[:concurrent], spans[concurrent:]
    gaps = [
        span["start"] - max(other["end"] for other in spans if other["end"] <= span["start"])
        for span in reused
        if any(other["end"] <= span["start"] for other in spans)
    ]
    print(f"trials {len(spans)}, {concurrent} at a time; command wall {wall:.1f} s")
    print(f"to first trial   {spans[0]['start'] - started:6.1f} s")
    if gaps:
        print(f"median gap       {statistics.median(gaps):6.1f} s  (over {len(gaps)} hand-overs)")
    print(f"tail             {ended - max(span['end'] for span in spans):6.1f} s")
    for label, group in (("first in a worker", first), ("reused worker", reused)):
        if group:
            total = statistics.median(span["total"] for span in group)
            epoch = statistics.median(span["epoch"] for span in group)
            print(
                f"inside a trial, {label:17s}: {total:5.2f} s = epoch {epoch:5.2f} s "
                f"+ set-up, checkpoint and report {total - epoch:5.2f} s (medians)"
            )
    work = sum(span["total"] for span in spans) / concurrent
    print(
        f"overhead ratio = command wall / (sum of trial walls / concurrent) = "
        f"{wall:.1f} / {work:.1f} = {wall / work:.2f} (target <= 1.5)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--concurrent", type=int, default=2)
    args = parser.parse_args()
    for who, statement in IMPORTS.items():
        wall, cpu = import_seconds(statement)
        print(f"imports of a {who:12s} {wall:5.1f} s wall, {cpu:5.1f} s CPU (median of 3)")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        env = {**os.environ, "GANORCH_CACHE": str(root / "cache"), "RAY_ADDRESS": "local"}
        warm = write_spec(root / "warm.yaml", "warm", 1, 1)
        run_command(warm, root / "runs", env)  # trains the judge: not part of the measure
        spec = write_spec(root / "spec.yaml", "overhead", args.trials, args.concurrent)
        started, ended = run_command(spec, root / "runs", env)
        report(trial_spans(root / "runs" / "overhead"), started, ended, args.concurrent)


if __name__ == "__main__":
    main()
