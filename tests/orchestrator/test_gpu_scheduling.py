"""Fractional GPUs without a GPU: Ray's resource accounting on a Ray given two logical GPUs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def run_scenario(name: str, runs: Path, timeout: float = 300) -> tuple[dict, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.orchestrator.cluster_scripts", name, str(runs)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def test_two_shard_workers_share_one_gpu(tmp_path):
    """More workers than GPUs: each gets an equal share, so both run (a whole GPU each would
    leave the second waiting for ever, and one worker doing every shard)."""
    outcome, _ = run_scenario("shards_share_a_gpu", tmp_path)
    assert outcome == {"done": 8, "gpus": [0.5], "workers": 2}


def test_four_half_gpu_trials_share_two_gpus_at_once(tmp_path):
    outcome, progress = run_scenario("fractional_gpus", tmp_path)
    assert outcome["finished"] == 5
    assert {t["gpus"] for t in outcome["trials"]} == {0.5}  # what Ray assigned each trial
    # Two GPUs held four half-GPU trials at once (none left free) and never a fifth (CPUs were
    # not the limit).
    assert outcome["fewest_free_gpus"] == 0.0
    running = [int(n) for n in re.findall(r"running (\d+)", progress)]
    assert 0 < max(running) <= 4, progress
