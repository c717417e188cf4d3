"""A sweep on a three-node Ray cluster on one machine (ray.cluster_utils.Cluster): trials spread
over the workers, and a worker removed mid-sweep costs a restart from a checkpoint, nothing more."""

from __future__ import annotations

import pytest

from tests.orchestrator.test_gpu_scheduling import run_scenario

pytestmark = pytest.mark.slow


def test_trials_spread_over_nodes_and_survive_a_lost_worker(tmp_path):
    outcome, _ = run_scenario("multi_node", tmp_path)
    trials, epochs, removed = outcome["trials"], outcome["epochs"], outcome["removed"]
    workers = set(outcome["worker_nodes"])

    # Every trial exactly once in the trials table (a restart is the same trial, not a new
    # one), each finished with all three epochs.
    assert len(trials) == 3 and outcome["finished"] == 3
    assert {t["trial_id"] for t in trials} == {e["trial_id"] for e in epochs}
    assert all(t["status"] == "TERMINATED" and t["epochs"] == 3 for t in trials)

    # The trials ran on more than one node, and only on the workers (the head has no CPUs).
    ran_on = {e["node_id"] for e in epochs}
    assert removed, outcome  # a trial reached its first checkpoint on the one-CPU worker
    assert len(ran_on) >= 2 and ran_on <= workers | {removed["node_id"]}, outcome

    # The trial that lost its node resumed from its last checkpoint on another node: every
    # epoch reported once, the first ones from the lost node, the rest from a surviving one.
    assert removed["epoch"] == 1
    lost = [e for e in epochs if e["trial_id"] == removed["trial_id"]]
    assert sorted(e["epoch"] for e in lost) == [1, 2, 3]
    on_lost_node = [e["epoch"] for e in lost if e["node_id"] == removed["node_id"]]
    assert on_lost_node[0] == 1 and len(on_lost_node) < 3
    assert all(e["node_id"] in workers for e in lost if e["epoch"] not in on_lost_node)
