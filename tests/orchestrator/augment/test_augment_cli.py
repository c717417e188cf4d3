"""`ganorch grid augment` end to end through the installed console script on a real local Ray."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from orchestrator.augment.cells import draw_pool
from orchestrator.judges import judge_of
from orchestrator.tables import Table
from trainables.checkpoints import load_generator
from trainables.datasets import load_dataset

from ...conftest import GANORCH, run_cli, shard_workers_below
from .test_augment import save_generator

pytestmark = pytest.mark.slow

STRATEGIES = ("mix", "filter", "finetune", "source")
GRID = (
    "--dataset",
    "mnist5k",
    "--real",
    "10,50",
    "--generated",
    "0,10",
    "--seeds",
    "1",
    "--epochs",
    "2",
    "--actors",
    "2",
)


def grid(runs: Path, address: str, *args: str) -> subprocess.CompletedProcess:
    result = run_cli("grid", "augment", *args, "--runs-dir", str(runs), "--address", address)
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def finished(tmp_path_factory, ray_address):
    """One 2x2 grid of every strategy (an untrained conditional generator, 2 epochs) through
    the CLI, with one of its two actors killed (SIGKILL) once the first cell is in the table
    (the driver paused meanwhile)."""
    tmp = tmp_path_factory.mktemp("augment")
    generator = save_generator(tmp / "ck")
    runs = tmp / "runs"
    args = ("aug", "--generator", str(generator), *GRID)
    driver = subprocess.Popen(
        [str(GANORCH), "grid", "augment", *args, "--runs-dir", str(runs), "--address", ray_address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    table = Table(str(runs / "aug" / "tables"), "augment")
    deadline = time.monotonic() + 300
    while not table.fragments() and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    # The driver is stopped while an actor is killed: it hands out no cell meanwhile, so at
    # least 13 of the 16 cells are still to hand out when it goes on, and the dead actor is
    # always found (by its running cell or the next one handed to it), never left idle to the
    # end. (On a loaded machine the workers may show up in /proc after the first row does.)
    driver.send_signal(signal.SIGSTOP)
    try:
        workers: list[int] = []
        while not workers and time.monotonic() < deadline:
            workers = shard_workers_below(os.getpid())
            time.sleep(0.05)
        if workers:
            os.kill(workers[0], signal.SIGKILL)
    finally:
        driver.send_signal(signal.SIGCONT)
    if not workers:
        driver.kill()
        _, stderr = driver.communicate()
        pytest.fail(f"no ShardWorker running mid-grid (driver exit {driver.returncode}): {stderr}")
    _, stderr = driver.communicate(timeout=300)
    assert driver.returncode == 0 and "Traceback" not in stderr, stderr
    return runs / "aug", generator, args, stderr


def test_every_cell_of_every_strategy_once_despite_the_killed_actor(finished):
    run, _, _, stderr = finished
    assert "worker restarts 1" in stderr  # the kill landed while the grid ran
    rows = pq.read_table(run / "tables" / "augment").to_pylist()  # plain pyarrow, every row
    cells = Counter((r["strategy"], r["n_real"], r["n_generated"], r["seed"]) for r in rows)
    assert cells == {(s, r, g, 0): 1 for s in STRATEGIES for r in (400, 2000) for g in (0, 400)}
    assert len(Table(str(run / "tables"), "augment").read(latest=False)) == 16
    for row in rows:
        assert row["error"] is None and 0 <= row["test_accuracy"] <= 1, row
        assert (row["generator"], row["label_source"], row["epochs"]) == ("ck", "condition", 2)
        assert row["in_channels"] == (2 if row["strategy"] == "source" else 1)
        assert row["wall_s"] > 0
        if row["strategy"] != "filter":
            assert row["n_train"] == row["n_real"] + row["n_generated"]
    assert "[aug/augment] cells 16/16" in stderr  # the progress line
    assert "16 trained now, 0 already done, 0 failed" in stderr


def test_filter_kept_exactly_the_samples_the_judge_labels_as_conditioned(finished):
    run, generator, _, _ = finished
    # The untrained generator's labels are mostly wrong; redraw its pool to count the right ones.
    pool = draw_pool(
        load_generator(generator), judge_of(load_dataset({"name": "mnist5k"})).build(), 400, seed=0
    )
    agreeing = int((pool.judge_labels == pool.labels).sum())
    assert 0 < agreeing < 400
    rows = pq.read_table(run / "tables" / "augment").to_pylist()
    for row in rows:
        if row["strategy"] == "filter" and row["n_generated"] == 400:
            assert row["n_generated_used"] == agreeing
            assert row["n_train"] == row["n_real"] + agreeing


def test_figures_tensorboard_and_pivot(finished):
    run, _, _, _ = finished
    figures = sorted((run / "artifacts" / "augment").glob("*.png"))
    assert [f.name for f in figures] == sorted(
        f"ck-{s}-{kind}.png" for s in STRATEGIES for kind in ("contour", "by-generated", "by-real")
    )
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in figures)
    events = EventAccumulator(str(run / "tb" / "augment" / "ck"), size_guidance={"images": 0})
    events.Reload()
    assert "augment/mix/contour" in events.Tags()["images"]
    assert len(events.Tags()["images"]) == 12
    shown = run_cli(
        "results",
        "show",
        "aug",
        "--table",
        "augment",
        "--pivot",
        "--format",
        "csv",
        "--runs-dir",
        str(run.parent),
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "generator,strategy,n_real,gen=0,gen=400,seeds"
    assert sorted(line.split(",")[1] for line in lines[1:]) == sorted(STRATEGIES * 2)


def test_rerun_from_a_spec_file_retrains_only_a_cell_whose_fragment_is_unreadable(
    finished, ray_address, tmp_path
):
    run, generator, _, _ = finished
    before = Table(str(run / "tables"), "augment").fragments()
    damaged = Path(before[0])
    damaged.write_bytes(damaged.read_bytes()[:-20])  # its footer cut off
    spec = tmp_path / "grid.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "run": "aug",
                "generator": str(generator),
                "dataset": {"name": "mnist5k"},
                "real": [10, 50],
                "generated": [0, 10],
                "seeds": 1,
                "epochs": 2,
            }
        )
    )
    result = grid(run.parent, ray_address, "--spec", str(spec), "--actors", "2")
    assert result.returncode == 0, result.stderr
    assert f"warning: augment table: fragment {damaged} cannot be read" in result.stderr
    assert "1 trained now, 15 already done" in result.stderr
    after = Table(str(run / "tables"), "augment").fragments()
    assert after[:-1] == before[1:] and (damaged.parent / "_quarantine" / damaged.name).exists()


def test_rerun_with_other_settings_is_refused(finished, ray_address):
    run, _, args, _ = finished
    result = grid(run.parent, ray_address, *args, "--epochs", "3")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "with epochs 2, this grid asks for 3" in result.stderr and "--force" in result.stderr


def test_bad_options_are_one_line_errors(tmp_path, ray_address):
    generator = save_generator(tmp_path / "ck")
    for extra, message in [
        (
            ("--strategies", "mix,blend", "--dataset", "mnist5k"),
            "error: --strategies: unknown strategy 'blend'",
        ),
        ((), "has no spec.yaml naming its dataset; name it with --dataset"),
    ]:
        result = grid(tmp_path / "runs", ray_address, "r", "--generator", str(generator), *extra)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert message in result.stderr
    spec = tmp_path / "bad.yaml"
    spec.write_text("run: r\ngenerator: best\ncolour: red\n")
    result = grid(tmp_path / "runs", ray_address, "--spec", str(spec))
    assert result.returncode == 2 and f"error: {spec}: colour: unknown key" in result.stderr


def test_grid_check_validates_a_spec_without_running_it(tmp_path):
    example = Path(__file__).parents[3] / "examples" / "augment-mnist.yaml"
    ok = run_cli("grid", "check", str(example), timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == (
        f"{example}: ok (run 'cgan-mnist', generator best, mix, filter, finetune, source over "
        "6 real x 6 generated sizes (percent), 3 seeds: at most 432 cells)"
    )
    bad = tmp_path / "grid.yaml"
    bad.write_text(yaml.safe_dump({"run": "r", "generator": "best", "seeds": 0, "bogus": 1}))
    refused = run_cli("grid", "check", str(bad), timeout=120)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"error: {bad}: bogus: unknown key (allowed: batch_size, dataset, description, epochs, "
        "generated, generator, lr, real, run, seeds, strategies, unit)"
    ]
