"""An eval whose driver and then one of whose actors are killed at seeded random points, then
rerun, equals an eval without faults (see tests/faults/kill_rounds.py)."""

from __future__ import annotations

import random
import shutil
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
from tests.orchestrator.evaluate.test_evaluation import make_run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("mnist5k_judge")]


def test_eval_survives_driver_and_actor_kills_and_equals_an_eval_without_them(
    tmp_path, ray_address
):
    rng = random.Random(SEED + 1)
    run = make_run(tmp_path / "faulty")
    shutil.copytree(tmp_path / "faulty", tmp_path / "clean")  # the same generators, unscored

    def command(root: Path, seeds: int = 2) -> list[str]:
        return [
            str(GANORCH),
            *("eval", "run", "r", "--runs-dir", str(root), "--address", ray_address),
            *("--n", "100", "--actors", "2", "--seeds", str(seeds), "--no-figures"),
            *("--metrics", "fid,sharpness,color_kl"),
        ]

    table, logs = Table(run.tables, "eval"), [tmp_path / "actor.log", tmp_path / "driver.log"]
    # The actor kill comes first, on a fresh run of one seed, at the round's first new row:
    # 8 of its 9 shards are still to do, so the dead actor had or gets work and the driver must
    # replace it. The driver kill then lands in the second seed's shards, also at the first new
    # row: once the actors are warm, the rest take about a second.
    kill_actor = actor_killer(actors_left_by_a_killed_driver())
    kills = [
        interrupted_round(command(tmp_path / "faulty", 1), table, kill_actor, rng, logs[0], 0.0),
        interrupted_round(command(tmp_path / "faulty"), table, kill_driver, rng, logs[1], 0.0),
    ]
    assert any(kills), f"seed {SEED}: the eval finished before any kill"
    if kills[0]:  # the driver saw its actor die, started another and finished the run
        assert "worker restarts 1" in logs[0].read_text(), logs[0].read_text()
    for root in ("faulty", "clean"):
        result = run_cli(*command(tmp_path / root)[1:])
        assert result.returncode == 0, f"seed {SEED}: {result.stderr}"

    keys = TABLE_KEYS["eval"]
    faulty = by(assert_each_key_once(Path(run.tables), "eval"), *keys)
    clean = by(assert_each_key_once(tmp_path / "clean" / "r" / "tables", "eval"), *keys)
    assert faulty.keys() == clean.keys() and len(clean) > 12
    for key, row in clean.items():
        assert row["error"] is None and faulty[key]["error"] is None, key
        assert faulty[key]["value"] == pytest.approx(row["value"], rel=1e-6, nan_ok=True), (
            f"seed {SEED}: {key} differs after the kills"
        )
