"""A grid whose driver and then one of whose actors are killed at seeded random points, then
rerun, equals a grid without faults (see tests/faults/kill_rounds.py)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.conftest import GANORCH, run_cli
from tests.faults.kill_rounds import (
    SEED,
    TABLE_KEYS,
    Table,
    actor_killer,
    actors_left_by_a_killed_driver,
    assert_each_key_once,
    by,
    interrupted_round,
    kill_driver,
)
from tests.orchestrator.augment.test_augment import save_generator

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("mnist5k_judge")]


def test_grid_survives_driver_and_actor_kills_and_equals_a_grid_without_them(tmp_path, ray_address):
    rng = random.Random(SEED + 2)
    generator = save_generator(tmp_path / "ck")

    def command(runs: Path) -> list[str]:
        return [
            str(GANORCH),
            *("grid", "augment", "aug", "--generator", str(generator), "--dataset", "mnist5k"),
            *("--strategies", "source", "--real", "10,50", "--generated", "0,10"),
            *("--seeds", "1", "--epochs", "2", "--actors", "2"),
            *("--runs-dir", str(runs), "--address", ray_address),
        ]

    faulty, clean = tmp_path / "faulty", tmp_path / "clean"
    table, logs = Table(str(faulty / "aug" / "tables"), "augment"), [tmp_path / "1", tmp_path / "2"]
    kills = [interrupted_round(command(faulty), table, kill_driver, rng, logs[0])]
    stale = actors_left_by_a_killed_driver()
    kills.append(interrupted_round(command(faulty), table, actor_killer(stale), rng, logs[1]))
    assert any(kills), f"seed {SEED}: the grid finished before any kill"
    for runs in (faulty, clean):
        result = run_cli(*command(runs)[1:])
        assert result.returncode == 0, f"seed {SEED}: {result.stderr}"

    keys = TABLE_KEYS["augment"]
    rows = {
        runs: by(assert_each_key_once(runs / "aug" / "tables", "augment"), *keys)
        for runs in (faulty, clean)
    }
    assert rows[faulty].keys() == rows[clean].keys() and len(rows[clean]) == 2 * 2
    for key, row in rows[clean].items():
        assert row["error"] is None and rows[faulty][key]["error"] is None, key
        assert rows[faulty][key]["test_accuracy"] == pytest.approx(row["test_accuracy"]), (
            f"seed {SEED}: cell {key} differs after the kills"
        )
