"""Speedup of ``ganorch eval``'s sharding: the same evaluation job on 1 actor and on A actors.

What it measures: the wall time of :func:`orchestrator.shards.run_shards` over the shards of
``ganorch eval run`` (every measure, one seed, no figures) for ``--generators`` untrained
DCGAN/CDCGAN checkpoints (base_channels 32, n_z 64) plus the reference row on mnist5k, ``--n``
samples each; first with ``actors=1``, then with ``actors=A``, each into its own table. Both
runs include starting their workers (imports, judge load), as a user's command does. The
real-feature disk cache is off so neither run profits from the other; the LeNet judge is
trained (or loaded) once beforehand.

The last line is ``speedup 1 -> A actors = S (target >= 1.7 for A = 2 on 2 CPUs)``. It reports,
it does not assert: the exit status is 0 whatever the speedup.

Run it from the repository root (a few minutes on 2 CPU cores)::

    .venv/bin/python benchmarks/bench_eval_sharding.py [--actors 2] [--n 1000] [--generators 4]

A private local Ray with ``--actors`` CPUs is started. Checkpoints and tables go to a temporary
folder; the judge comes from ``GANORCH_CACHE`` (trained there once if missing).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from orchestrator.cluster import connect
from orchestrator.evaluate.job import EvalJob
from orchestrator.evaluate.measures import DEFAULT_METRICS
from orchestrator.evaluate.plan import REFERENCE, EvalGenerator, EvalSettings, plan_shards
from orchestrator.judges import judge_of
from orchestrator.shards import run_shards
from orchestrator.tables import Table
from trainables.datasets import load_dataset
from trainables.families import family_class
from trainables.trainable import STATE_FILE


def checkpoints(root: Path, count: int) -> list[EvalGenerator]:
    generators = []
    for i in range(count):
        family = ("dcgan", "cdcgan")[i % 2]
        folder = root / f"checkpoint_{i}"
        folder.mkdir(parents=True)
        model = family_class(family)(
            {"base_channels": 32, "n_z": 64, "seed": i}, (1, 28, 28), 10, torch.device("cpu")
        )
        torch.save(
            {
                "model": model.state_dict(),
                "family": family,
                "config": model.config,
                "image_shape": (1, 28, 28),
                "num_classes": 10,
                "epoch": 1,
            },
            folder / STATE_FILE,
        )
        generators.append(EvalGenerator(f"g{i}", "trial", str(folder), model.conditional))
    return generators + [EvalGenerator(REFERENCE, "reference", conditional=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--generators", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        root = Path(tmp)
        os.environ["RAY_ADDRESS"] = "local"
        data = load_dataset({"name": "mnist5k"})
        judge_of(data)
        generators = checkpoints(root / "checkpoints", args.generators)
        settings = EvalSettings(n=args.n, cache=None)
        shards = plan_shards(generators, DEFAULT_METRICS, 1, settings, figures=False)
        connect(num_cpus=args.actors)
        shared = {"data": data, "sources": {}, "settings": settings}
        seconds = {}
        for actors in (1, args.actors):
            table = Table(str(root / f"tables-{actors}"), "eval")
            started = time.perf_counter()
            report = run_shards(f"{actors} actor(s)", shards, EvalJob, shared, table, actors=actors)
            seconds[actors] = time.perf_counter() - started
            print(
                f"{actors} actor(s): {len(shards)} shards in {seconds[actors]:.1f} s "
                f"({len(report.failures)} failed)",
                flush=True,
            )
        speedup = seconds[1] / seconds[args.actors]
        print(
            f"speedup 1 -> {args.actors} actors = {speedup:.2f} "
            f"(target >= 1.7 for 2 actors on 2 CPUs)"
        )


if __name__ == "__main__":
    main()
