"""A sweep whose driver is killed twice at seeded random points, then rerun, equals a sweep
run without faults, down to the bits of its last checkpoints (see tests/faults/kill_rounds.py)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from evaluators.weights_file import load_weights
from orchestrator.tables import Table
from tests.conftest import GANORCH, run_cli, write_spec
from tests.faults.kill_rounds import (
    SEED,
    assert_each_key_once,
    interrupted_round,
    kill_driver,
)
from trainables.trainable import STATE_FILE

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("mnist5k_judge")]


def test_sweep_survives_driver_kills_and_equals_a_run_without_them(tmp_path, ray_address):
    rng = random.Random(SEED)
    spec = write_spec(
        tmp_path / "s.yaml",
        name="faults",
        epochs=2,
        search={"algorithm": "grid", "samples": 1, "max_concurrent": 1},
        space={"seed": [0, 1]},
        # FID is drawn from G's weight average, which a resume must continue exactly too
        fixed={"base_channels": 8, "n_z": 16, "batch_size": 100, "fid_samples": 200, "g_ema": 0.99},
    )

    def command(runs: Path) -> list[str]:
        return [str(GANORCH), "sweep", "run", str(spec), "--runs-dir", str(runs)] + [
            "--address",
            ray_address,
        ]

    faulty, clean = tmp_path / "faulty", tmp_path / "clean"
    epochs = Table(str(faulty / "faults" / "tables"), "epochs")
    log = tmp_path / "round.log"
    kills = sum(interrupted_round(command(faulty), epochs, kill_driver, rng, log) for _ in range(2))
    assert kills >= 1, f"seed {SEED}: the sweep finished before any kill"
    for runs in (faulty, clean):
        result = run_cli(*command(runs)[1:])
        assert result.returncode == 0, f"seed {SEED}: {result.stderr}"

    trials = {}
    for runs in (faulty, clean):
        tables = runs / "faults" / "tables"
        rows = assert_each_key_once(tables, "trials")
        assert {r["status"] for r in rows} == {"TERMINATED"} and len(rows) == 2
        seeds = {r["trial_id"]: r["config/seed"] for r in rows}
        epoch_rows = assert_each_key_once(tables, "epochs")
        assert len(epoch_rows) == 4
        trials[runs] = {(seeds[r["trial_id"]], r["epoch"]): r for r in epoch_rows}
    assert trials[faulty].keys() == trials[clean].keys()
    for key, clean_row in trials[clean].items():
        for metric in ("fid", "d_loss", "g_loss"):
            assert trials[faulty][key][metric] == pytest.approx(clean_row[metric], rel=1e-6), (
                f"seed {SEED}: {metric} of (seed, epoch) {key} differs after the kills"
            )
    # The last checkpoints hold the same weights, optimiser states and RNG states, bit for bit:
    # a resumed epoch restores the batch order, the latents and Adam's moments exactly.
    # Only the trial id, which names the run's own trial, differs.
    for seed in (0, 1):
        states = []
        for runs in (faulty, clean):
            row = trials[runs][(seed, 2)]
            state = load_weights(Path(row["checkpoint"]) / STATE_FILE)
            assert state.pop("trial_id") == row["trial_id"]
            assert state["model"]["g_average_updates"] == 2 * 40  # 2 epochs of 4,000 / 100
            states.append(state)
        assert_same_state(*states, f"seed {SEED}: trial seed {seed}, epoch 2")


def assert_same_state(faulty, clean, where: str) -> None:
    if isinstance(clean, torch.Tensor):
        assert torch.equal(faulty, clean), f"{where} differs after the kills"
    elif isinstance(clean, dict):
        assert faulty.keys() == clean.keys(), where
        for key in clean:
            assert_same_state(faulty[key], clean[key], f"{where}/{key}")
    elif isinstance(clean, (list, tuple)):
        assert len(faulty) == len(clean), where
        for i, (a, b) in enumerate(zip(faulty, clean, strict=True)):
            assert_same_state(a, b, f"{where}/{i}")
    else:
        assert faulty == clean, f"{where} differs after the kills"
