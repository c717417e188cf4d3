"""Fault injection shared by the tests of this folder: the sweep driver, an eval actor and a grid
actor are killed (SIGKILL) at
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
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from orchestrator.tables import TABLE_KEYS, Table
from tests.conftest import shard_workers_below

SEED = int(os.environ.get("GANORCH_FAULT_SEED", "0"))
JITTER_S = 1.5  # the random part of a kill point, after the round's first new row
ROUND_TIMEOUT_S = 300


def kill_driver(driver: subprocess.Popen) -> bool:
    os.killpg(driver.pid, signal.SIGKILL)
    return True


def actors_left_by_a_killed_driver(timeout_s: float = 30.0) -> set[int]:
    """The shard actors still alive after a driver kill, once Ray has reaped what it will: Ray
    removes a dead driver's actors a little later, and may even start one that driver had
    asked for, so the next round waits for them to go (up to ``timeout_s``) before it picks an
    actor to kill; whatever is left is excluded from that pick."""
    deadline = time.monotonic() + timeout_s
    while (left := set(shard_workers_below(os.getpid()))) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def actor_killer(stale: set[int]) -> Callable[[subprocess.Popen], bool]:
    """A kill that SIGKILLs one shard actor of this session's Ray that is not in ``stale``
    (actors of a driver killed earlier, which Ray may not have reaped yet); it returns False
    when no such actor is alive right now."""

    def kill(driver: subprocess.Popen) -> bool:
        workers = [pid for pid in shard_workers_below(os.getpid()) if pid not in stale]
        if not workers:
            return False
        os.kill(workers[0], signal.SIGKILL)
        return True

    return kill


def interrupted_round(
    command: list[str],
    table: Table,
    kill: Callable[[subprocess.Popen], bool],
    rng: random.Random,
    log: Path,
    jitter_s: float = JITTER_S,
) -> bool:
    """Run ``command`` until it adds a row to ``table``, wait a seeded random delay of up to
    ``jitter_s``, then ``kill``; wait for the driver to end (its stderr goes to ``log``). True
    when a kill landed before the driver finished."""
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
                time.sleep(rng.uniform(0.0, jitter_s))
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
