"""Sweeps on Rays the session's fixture cannot be: run as ``python -m
tests.orchestrator.cluster_scripts <scenario> <runs-dir>`` in a process of their own, each
prints one JSON line of what the test checks (the progress line goes to stderr as usual)."""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path
from typing import Any

import ray

from orchestrator.cluster import quiet
from orchestrator.runs import RunDir
from orchestrator.sweep.spec import parse_spec
from orchestrator.sweep.tuner import run_sweep
from orchestrator.tables import Table

TINY = {"base_channels": 8, "n_z": 16, "batch_size": 100, "fid_samples": 200}
RAY_OPTIONS = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}


def tiny_spec(name: str, samples: int, epochs: int, **fields: Any):
    return parse_spec(
        {
            "name": name,
            "dataset": {"name": "mnist5k"},
            "family": "dcgan",
            "epochs": epochs,
            "search": {"algorithm": "random", "samples": samples, "max_concurrent": 8, "seed": 0},
            "scheduler": {"name": "none"},
            "space": {"lr": {"loguniform": [2.0e-4, 2.0e-3]}},
            "fixed": TINY,
            **fields,
        }
    )


def trials(run: RunDir) -> list[dict[str, Any]]:
    """The trials table as ganorch reads it (the latest row per trial)."""
    table = Table(run.tables, "trials")
    return [
        {key: row.get(key) for key in ("trial_id", "status", "node_id", "gpus", "epochs")}
        for row in table.read().to_pylist()
    ]


def fractional_gpus(runs: Path) -> dict[str, Any]:
    """Five trials of gpu 0.5 on a Ray with two (logical) GPUs and CPUs to spare."""
    quiet()
    ray.init(address="local", num_cpus=8, num_gpus=2, **RAY_OPTIONS)
    run = RunDir.of(str(runs), "gpus")
    spec = tiny_spec("gpus", samples=5, epochs=1, resources={"cpu": 1, "gpu": 0.5})
    # Ray's own accounting, polled while the sweep runs: a trial holds its GPU share from the
    # moment it is placed until it ends, so four placed at once leave no GPU free.
    free: list[float] = []
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.05):
            free.append(ray.available_resources().get("GPU", 0.0))

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    outcome = run_sweep(spec, run, say=lambda _: None)
    done.set()
    watcher.join()
    return {"finished": outcome.finished, "trials": trials(run), "fewest_free_gpus": min(free)}


def multi_node(runs: Path) -> dict[str, Any]:
    """Three trials on a head (no CPUs for trials) and two workers of 1 and 2 CPUs; the worker
    with one CPU is removed once its trial has reported its second of three epochs."""
    from ray.cluster_utils import Cluster

    quiet()
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    small = cluster.add_node(num_cpus=1)
    cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level=logging.ERROR, log_to_driver=False)
    run = RunDir.of(runs.as_uri(), "nodes")  # every node sees this machine's files
    spec = tiny_spec("nodes", samples=3, epochs=3, max_failures=2)
    removed: dict[str, Any] = {}
    done = threading.Event()
    watcher = threading.Thread(
        target=_remove_after_second_epoch, args=(cluster, small, run, removed, done)
    )
    watcher.start()
    try:
        outcome = run_sweep(spec, run, say=lambda _: None)
    finally:
        done.set()
        watcher.join()
        ray.shutdown()
    epochs = Table(run.tables, "epochs").read(latest=False).to_pylist()
    workers = [node.node_id for node in cluster.worker_nodes]
    cluster.shutdown()
    return {
        "finished": outcome.finished,
        "removed": removed,
        "trials": trials(run),
        "epochs": [
            {key: row.get(key) for key in ("trial_id", "epoch", "node_id")} for row in epochs
        ],
        "worker_nodes": workers,
    }


def _remove_after_second_epoch(
    cluster, node, run: RunDir, removed: dict[str, Any], done: threading.Event
) -> None:
    # Tune saves a trial's checkpoint after the result it came with has reached the callbacks,
    # and asks for the next epoch only once that save is registered: the second epoch's row
    # proves the first checkpoint survives the node (the first epoch's row alone does not).
    while not done.wait(0.1):
        rows = Table(run.tables, "epochs").read().to_pylist() if Path(run.tables).exists() else []
        on_node = [r for r in rows if r.get("node_id") == node.node_id and r["epoch"] == 2]
        if on_node:
            removed.update(
                node_id=node.node_id, trial_id=on_node[0]["trial_id"], epoch=on_node[0]["epoch"]
            )
            cluster.remove_node(node)
            return


class MeetingJob:
    """Each worker's first shard waits (up to 30 s) until another worker has started, so
    workers that can run side by side always both get shards."""

    def __init__(self, folder: str) -> None:
        import os

        self.folder, self.pid, self.met = Path(folder), os.getpid(), False
        (self.folder / str(self.pid)).touch()

    def run(self, task: int) -> list[dict[str, Any]]:
        import time

        deadline = time.monotonic() + 30
        while not self.met and time.monotonic() < deadline:
            self.met = len(list(self.folder.iterdir())) > 1
            time.sleep(0.1)
        return [{"value": float(task), "pid": self.pid}]


def shards_share_a_gpu(runs: Path) -> dict[str, Any]:
    """Eight shards on 2 workers on a Ray with one (logical) GPU: each worker gets half of it."""
    from orchestrator.shards import Shard, run_shards

    quiet()
    ray.init(address="local", num_cpus=4, num_gpus=1, **RAY_OPTIONS)
    table = Table(str(runs / "tables"), "eval")
    key = {"metric": "m", "extractor": "none", "seed": 0}
    shards = [Shard(id=f"s{i}", key={"generator": f"g{i}", **key}, task=i) for i in range(8)]
    folder = runs / "workers"
    folder.mkdir()
    report = run_shards("t", shards, MeetingJob, {"folder": str(folder)}, table, actors=2)
    rows = table.read().to_pylist()
    return {
        "done": report.done,
        "gpus": sorted({r["gpus"] for r in rows}),
        "workers": len({r["pid"] for r in rows}),
    }


SCENARIOS = {
    "fractional_gpus": fractional_gpus,
    "multi_node": multi_node,
    "shards_share_a_gpu": shards_share_a_gpu,
}

if __name__ == "__main__":
    result = SCENARIOS[sys.argv[1]](Path(sys.argv[2]))
    print(json.dumps(result), flush=True)
    ray.shutdown()
