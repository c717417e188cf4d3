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
    assert removed, outcome  # a trial reported its second epoch on the one-CPU worker
    assert len(ran_on) >= 2 and ran_on <= workers | {removed["node_id"]}, outcome

    # The trial that lost its node resumed from a checkpoint on another node, not from scratch:
    # every epoch kept once, the first from the lost node (a rerun would have replaced it), the
    # rest from a surviving one. The second is on either side: its checkpoint may have been
    # saved before the node went, or not (then the epoch ran again).
    assert removed["epoch"] == 2
    lost = [e for e in epochs if e["trial_id"] == removed["trial_id"]]
    assert sorted(e["epoch"] for e in lost) == [1, 2, 3]
    on_lost_node = sorted(e["epoch"] for e in lost if e["node_id"] == removed["node_id"])
    assert on_lost_node in ([1], [1, 2]), outcome
    assert all(e["node_id"] in workers for e in lost if e["epoch"] not in on_lost_node)
