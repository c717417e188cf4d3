"""Fault injection: the sweep driver, an eval actor and a grid actor are killed (SIGKILL) at
seeded random points over several rounds, each followed by a rerun. Afterwards every table
holds each key once and equals the table of the same command run without faults.

A round starts the command, waits until it has written a new row (so every kill lands
mid-run, after progress), waits a further seeded random delay, and kills. The driver is killed
with its process group (what a closed terminal or an OOM kill does); an actor is killed alone,
and the driver, still alive, must rerun its work. ``GANORCH_FAULT_SEED`` replays another
sequence of kill points; a failure message names the seed it ran with.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from orchestrator.tables import TABLE_KEYS, Table
from tests.conftest import GANORCH, run_cli, shard_workers_below, write_spec
from tests.orchestrator.augment.test_augment import save_generator
from tests.orchestrator.evaluate.test_evaluation import make_run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("mnist5k_judge")]

SEED = int(os.environ.get("GANORCH_FAULT_SEED", "0"))
JITTER_S = 1.5  # the random part of a kill point, after the round's first new row
ROUND_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def mnist5k_judge() -> None:
    """The dataset's judge trained (into the session's cache) before any round, so that no
    round spends its time training it and every kill lands in the command's own work."""
    from orchestrator.judges import judge_of
    from trainables.datasets import load_dataset

    judge_of(load_dataset({"name": "mnist5k"}))


def kill_driver(driver: subprocess.Popen) -> bool:
    os.killpg(driver.pid, signal.SIGKILL)
    return True


def kill_actor(driver: subprocess.Popen) -> bool:
    """SIGKILL one of this session's shard actors; False when none is alive right now."""
    workers = shard_workers_below(os.getpid())
    if not workers:
        return False
    os.kill(workers[0], signal.SIGKILL)
    return True


def interrupted_round(
    command: list[str],
    table: Table,
    kill: Callable[[subprocess.Popen], bool],
    rng: random.Random,
    log: Path,
) -> bool:
    """Run ``command`` until it adds a row to ``table``, wait a seeded random delay, then
    ``kill``; wait for the driver to end (its stderr goes to ``log``). True when a kill landed
    before the driver finished."""
    rows_before = _rows(table)
    with open(log, "w") as stderr:
        driver = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + ROUND_TIMEOUT_S
    killed = False
    try:
        while driver.poll() is None and time.monotonic() < deadline:
            if _rows(table) > rows_before:
                time.sleep(rng.uniform(0.0, JITTER_S))
                killed = driver.poll() is None and kill(driver)
                if killed:
                    break
            time.sleep(0.05)
        driver.wait(timeout=ROUND_TIMEOUT_S)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    return killed


def _rows(table: Table) -> int:
    return table.read(latest=False).num_rows if table.fragments() else 0


def assert_each_key_once(tables: Path, name: str) -> list[dict]:
    """The rows of table ``name`` (every fragment, superseded or not); each key once."""
    rows = pq.read_table(tables / name).to_pylist()
    keys = Counter(tuple(r[k] for k in TABLE_KEYS[name]) for r in rows)
    twice = [key for key, count in keys.items() if count > 1]
    assert not twice, f"seed {SEED}: {name} keys written more than once: {twice}"
    return rows


def by(rows: list[dict], *keys: str) -> dict[tuple, dict]:
    return {tuple(r[k] for k in keys): r for r in rows}


def test_sweep_survives_driver_kills_and_equals_a_run_without_them(tmp_path, ray_address):
    rng = random.Random(SEED)
    spec = write_spec(
        tmp_path / "s.yaml",
        name="faults",
        epochs=2,
        search={"algorithm": "grid", "samples": 1, "max_concurrent": 1},
        space={"seed": [0, 1]},
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


def test_eval_survives_driver_and_actor_kills_and_equals_an_eval_without_them(
    tmp_path, ray_address
):
    rng = random.Random(SEED + 1)
    run = make_run(tmp_path / "faulty")
    shutil.copytree(tmp_path / "faulty", tmp_path / "clean")  # the same generators, unscored

    def command(root: Path) -> list[str]:
        return [
            str(GANORCH),
            *("eval", "run", "r", "--runs-dir", str(root), "--address", ray_address),
            *("--n", "100", "--actors", "2", "--seeds", "2", "--no-figures"),
            *("--metrics", "fid,sharpness,color_kl"),
        ]

    table, logs = Table(run.tables, "eval"), [tmp_path / "driver.log", tmp_path / "actor.log"]
    # Driver kills first: an actor kill leaves the driver alive to finish the whole run.
    kills = [interrupted_round(command(tmp_path / "faulty"), table, kill_driver, rng, logs[0])]
    kills.append(interrupted_round(command(tmp_path / "faulty"), table, kill_actor, rng, logs[1]))
    assert any(kills), f"seed {SEED}: the eval finished before any kill"
    if kills[1]:  # the driver saw its actor die, started another and finished the run
        assert "worker restarts 1" in logs[1].read_text(), logs[1].read_text()
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
    kills.append(interrupted_round(command(faulty), table, kill_actor, rng, logs[1]))
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
