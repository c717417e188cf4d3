"""``ganorch eval``'s shards on a two-node Ray cluster on one machine
(``ray.cluster_utils.Cluster``): the measures of two checkpoints and the reference, with
feature extraction cut into chunks, land on both nodes, and removing the worker node mid-run
still ends with every shard written exactly once and the values of a run on one node. Runs in
a subprocess: the cluster needs its own driver."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter

import pytest

from orchestrator.tables import Table

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent("""
    import sys, threading, time
    from pathlib import Path
    import ray, torch
    from ray.cluster_utils import Cluster
    from orchestrator.cluster import quiet
    from orchestrator.evaluate.job import EvalJob
    from orchestrator.evaluate.plan import (REFERENCE, EvalChunk, EvalGenerator, EvalSettings,
                                         plan_shards)
    from orchestrator.judges import judge_of
    from orchestrator.shards import run_shards
    from orchestrator.tables import Table
    from trainables.datasets import load_dataset
    from trainables.families import family_class
    from trainables.trainable import STATE_FILE

    root = Path(sys.argv[1])
    data = load_dataset({"name": "mnist5k"})
    judge_of(data)  # trained once here, loaded from the cache by every worker
    generators = [EvalGenerator(REFERENCE, "reference", True, available=4000)]
    for i in range(2):
        folder = root / f"checkpoint_{i}"
        folder.mkdir()
        model = family_class("dcgan")({"base_channels": 8, "n_z": 16, "seed": i}, (1, 28, 28),
                                      10, torch.device("cpu"))
        torch.save({"model": model.state_dict(), "family": "dcgan", "config": model.config,
                    "image_shape": (1, 28, 28), "num_classes": 10}, folder / STATE_FILE)
        generators.append(EvalGenerator(f"g{i}", "trial", str(folder)))
    settings = EvalSettings(n=600, chunk=500, cache=None)
    shards = plan_shards(generators, ["fid", "kid", "is", "sharpness", "color_kl", "nn", "c2st"],
                         1, settings, figures=False)
    # c2st (the slowest) last: every worker takes several short shards first.
    shards.sort(key=lambda shard: "|c2st|" in shard.id)
    print("intermediates", sum(s.intermediate for s in shards), flush=True)
    shared = {"data": data, "sources": {}, "settings": settings}

    quiet()
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 2, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    table = Table(str(root / "tables"), "eval")

    def remove_worker_node():  # once it has written a shard's rows and holds the next shard
        while True:
            rows = table.read(latest=False)
            written = rows.num_rows and worker.node_id in rows.column("node_id").to_pylist()
            if written and (root / "held").exists():
                cluster.remove_node(worker)
                print("removed", worker.unique_id, flush=True)
                return
            time.sleep(0.1)

    # Every worker's first shard waits (up to 60 s) for all three workers to have started, so
    # the worker node always gets shards. After its first measure (not a feature chunk, which
    # writes no row), the worker node's next shard waits for the node to go: the loss always
    # interrupts a running shard, never lands after the node's last one. The head's workers
    # run one measure each, then wait for that hold before their next (chunks, which measures
    # may need, still run): on a loaded machine they once drained every shard while the
    # worker node ran its first, and no node was lost.
    class HeldOnTheWorkerNode(EvalJob):
        def run(self, task, *chunks):
            import os
            started = root / "started"
            if not self.met:
                started.mkdir(exist_ok=True)
                (started / str(os.getpid())).touch()
                deadline = time.monotonic() + 60
                while len(list(started.iterdir())) < 3 and time.monotonic() < deadline:
                    time.sleep(0.1)
                self.met = True
            on_worker_node = ray.get_runtime_context().get_node_id() == worker_node_id
            if on_worker_node and self.measured:
                (root / "held").touch()
                time.sleep(300)
            elif self.measured and not isinstance(task, EvalChunk):
                deadline = time.monotonic() + 240
                while not (root / "held").exists() and time.monotonic() < deadline:
                    time.sleep(0.1)
            result = super().run(task, *chunks)
            self.measured = self.measured or not isinstance(task, EvalChunk)
            return result

    HeldOnTheWorkerNode.met = False
    HeldOnTheWorkerNode.measured = False
    worker_node_id = worker.node_id
    threading.Thread(target=remove_worker_node, daemon=True).start()
    report = run_shards("two-nodes", shards, HeldOnTheWorkerNode, shared, table, actors=3)
    print("deaths", report.worker_deaths, "done", report.done, "failed", len(report.failures),
          report.failures, flush=True)
    alone = run_shards("one-node", shards, EvalJob, shared,
                       Table(str(root / "tables-one-node"), "eval"), actors=2)
    print("one node failed", len(alone.failures), flush=True)
    ray.shutdown()
    cluster.shutdown()
""")


def test_eval_shards_spread_over_two_nodes_and_survive_losing_one(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "removed" in out and "failed 0" in out and "one node failed 0" in out, out
    assert int(out.split("intermediates ")[1].split()[0]) == 3 * 2  # 2 chunks per generator
    deaths = int(out.split("deaths ")[1].split()[0])
    assert deaths >= 1, out  # the removed node's worker died and was replaced
    rows = Table(str(tmp_path / "tables"), "eval").read(latest=False)
    shards = Counter(rows.column("shard").to_pylist())
    extractors = {
        "fid": "lenet",
        "kid": "lenet",
        "is": "lenet",
        "sharpness": "pixels",
        "color_kl": "pixels",
        "nn": "pixels",
        "c2st": "pixels",
    }
    assert set(shards) == {
        f"{g}|{m}|{x}|0|n600" for g in ("reference", "g0", "g1") for m, x in extractors.items()
    }
    assert len(set(rows.column("node_id").to_pylist())) == 2
    alone = Table(str(tmp_path / "tables-one-node"), "eval").read(latest=False)
    # Each shard written once, however many times a worker died: as many rows as alone.
    assert shards == Counter(alone.column("shard").to_pylist())
    two_nodes = {(r["generator"], r["metric"]): r["value"] for r in rows.to_pylist()}
    one_node = {(r["generator"], r["metric"]): r["value"] for r in alone.to_pylist()}
    assert two_nodes.keys() == one_node.keys()
    for key, value in one_node.items():
        assert two_nodes[key] == pytest.approx(value, rel=1e-6, abs=1e-9, nan_ok=True), key
