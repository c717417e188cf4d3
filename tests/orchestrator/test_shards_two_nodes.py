"""The shard pool on a two-node Ray cluster on one machine (``ray.cluster_utils.Cluster``):
shards land on both nodes, and removing the worker node mid-run still ends with every shard
written exactly once. Runs in a subprocess: the cluster needs its own driver."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter

import pytest

from orchestrator.tables import Table

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent('''
    import sys, threading, time
    import ray
    from ray.cluster_utils import Cluster
    from orchestrator.cluster import quiet
    from orchestrator.shards import Shard, run_shards
    from orchestrator.tables import Table

    class SlowJob:
        def run(self, task):
            time.sleep(0.3)
            return [{"value": float(task), "node": ray.get_runtime_context().get_node_id()}]

    quiet()
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 2, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    table = Table(sys.argv[1], "eval")
    shards = [Shard(id=f"s{i}", key={"generator": f"g{i}", "metric": "m", "extractor": "x",
                                     "seed": 0}, task=i) for i in range(30)]

    def remove_worker_node():  # once both nodes have finished shards
        while True:
            rows = table.read(latest=False)
            if rows.num_rows and len(set(rows.column("node").to_pylist())) >= 2:
                cluster.remove_node(worker)
                print("removed", worker.unique_id, flush=True)
                return
            time.sleep(0.1)

    threading.Thread(target=remove_worker_node, daemon=True).start()
    report = run_shards("two-nodes", shards, SlowJob, {}, table, actors=2)
    print("deaths", report.worker_deaths, "done", report.done, "failed", len(report.failures))
    ray.shutdown()
    cluster.shutdown()
''')


def test_shards_spread_over_two_nodes_and_survive_losing_one(tmp_path):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "removed" in result.stdout and "failed 0" in result.stdout, result.stdout
    deaths = int(result.stdout.split("deaths ")[1].split()[0])
    assert deaths >= 1, result.stdout  # the removed node's worker died and was replaced
    rows = Table(str(tmp_path), "eval").read(latest=False)
    assert Counter(rows.column("shard").to_pylist()) == {f"s{i}": 1 for i in range(30)}
    assert len(set(rows.column("node").to_pylist())) == 2
