"""The shard pool on a real local Ray: skipping, one fragment per shard, worker deaths, errors."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from orchestrator.errors import UserError
from orchestrator.shards import MAX_ATTEMPTS, Shard, finished_shards, gpu_share, run_shards
from orchestrator.tables import Table

_BUILDS = Counter()  # per worker process: how often this process built a job


class DoublingJob:
    """Doubles numbers; ``"fail"`` raises, ``"die"`` kills its own process the first time,
    ``"poison"`` every time."""

    def __init__(self, weights: np.ndarray, marker_dir: str) -> None:
        _BUILDS[os.getpid()] += 1
        self.weights, self.marker_dir = weights, Path(marker_dir)

    def run(self, task):
        if task == "fail":
            raise ValueError("too few samples for this shard")
        if task == "die":
            marker = self.marker_dir / "died-once"
            if not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            task = 0
        if task == "poison":
            os.kill(os.getpid(), signal.SIGKILL)
        return [
            {
                "value": float(task * 2 + self.weights.sum()),
                "pid": os.getpid(),
                "builds": _BUILDS[os.getpid()],
                "writable": self.weights.flags.writeable,
            }
        ]


class BrokenJob:
    def __init__(self, **shared) -> None:
        raise RuntimeError("no judge weights for this dataset")


def _shards(tasks):
    key = {"metric": "double", "extractor": "none", "seed": 0}
    return [
        Shard(id=f"s{i}", key={"generator": f"g{i}", **key}, task=t) for i, t in enumerate(tasks)
    ]


def _shard_counts(table: Table) -> Counter:
    return Counter(table.read(latest=False).column("shard").to_pylist())


def test_every_shard_once_then_rerun_skips(ray_address, tmp_path):
    table = Table(str(tmp_path / "tables"), "eval")
    shared = {"weights": np.zeros(1000), "marker_dir": str(tmp_path)}
    report = run_shards("t", _shards(range(6)), DoublingJob, shared, table, actors=2)
    assert (report.total, report.done, report.skipped, report.failures) == (6, 6, 0, {})
    rows = table.read().to_pylist()
    assert sorted(r["value"] for r in rows) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert {r["generator"] for r in rows} == {f"g{i}" for i in range(6)}
    assert all(r["wall_s"] >= 0 and r["error"] is None for r in rows)
    assert {r["gpus"] for r in rows} == {0.0}  # the GPU share each worker held: none here
    # At most two workers (one may finish everything before the other has started), each
    # built its job once and reused it; shared arrays come from the object store (read-only),
    # not pickled into each worker.
    assert 1 <= len({r["pid"] for r in rows}) <= 2
    assert all(r["builds"] == 1 and not r["writable"] for r in rows)
    assert len(table.fragments()) == 6  # one fragment per shard

    again = run_shards("t", _shards(range(6)), DoublingJob, shared, table, actors=2)
    assert (again.done, again.skipped) == (0, 6)
    assert len(table.fragments()) == 6
    forced = run_shards("t", _shards(range(2)), DoublingJob, shared, table, actors=1, force=True)
    assert forced.done == 2 and len(table.read().to_pylist()) == 6


def test_killed_worker_is_replaced_and_its_shard_runs_once(ray_address, tmp_path):
    table = Table(str(tmp_path / "tables"), "eval")
    tasks = [1, 2, "die", 3, 4, 5]
    report = run_shards(
        "t",
        _shards(tasks),
        DoublingJob,
        {"weights": np.zeros(3), "marker_dir": str(tmp_path)},
        table,
        actors=2,
    )
    assert report.worker_deaths == 1
    assert report.done == 6 and not report.failures
    assert _shard_counts(table) == {f"s{i}": 1 for i in range(6)}
    assert finished_shards(table) == {f"s{i}" for i in range(6)}


def test_a_shard_whose_worker_dies_on_every_attempt_fails_alone(ray_address, tmp_path):
    """The shard is handed out MAX_ATTEMPTS times, each to a new worker; then it is recorded
    as failed and the other shards finish; a rerun tries it again."""
    table = Table(str(tmp_path / "tables"), "eval")
    shared = {"weights": np.zeros(3), "marker_dir": str(tmp_path)}
    report = run_shards("t", _shards([1, "poison", 2]), DoublingJob, shared, table, actors=2)
    assert report.worker_deaths == MAX_ATTEMPTS == 3
    assert report.done == 2 and list(report.failures) == ["s1"]
    assert report.failures["s1"].startswith("worker died 3 times: ")
    rows = {r["shard"]: r for r in table.read().to_pylist()}
    assert rows["s1"]["error"].startswith("worker died 3 times") and rows["s1"]["generator"] == "g1"
    assert (rows["s0"]["value"], rows["s2"]["value"]) == (2.0, 4.0)
    assert finished_shards(table) == {"s0", "s2"}
    again = run_shards("t", _shards([1, 3, 2]), DoublingJob, shared, table, actors=1)
    assert (again.skipped, again.done, again.failures) == (2, 1, {})
    assert finished_shards(table) == {"s0", "s1", "s2"}


def test_failing_shard_is_recorded_and_others_go_on(ray_address, tmp_path):
    table = Table(str(tmp_path / "tables"), "eval")
    shared = {"weights": np.zeros(3), "marker_dir": str(tmp_path)}
    report = run_shards("t", _shards([1, "fail", 2]), DoublingJob, shared, table, actors=2)
    assert report.done == 2
    assert list(report.failures) == ["s1"]
    assert "ValueError: too few samples" in report.failures["s1"]
    failed = [r for r in table.read().to_pylist() if r["shard"] == "s1"]
    assert failed[0]["generator"] == "g1" and "too few samples" in failed[0]["error"]
    assert finished_shards(table) == {"s0", "s2"}
    # A rerun retries only the failed shard.
    again = run_shards("t", _shards([1, "fail", 2]), DoublingJob, shared, table, actors=1)
    assert (again.skipped, again.done, list(again.failures)) == (2, 0, ["s1"])


def test_a_forced_redo_that_fails_keeps_the_last_good_value_beside_its_error(ray_address, tmp_path):
    """The error row shares the value row's key here (as fid's does in the eval table), so
    writing it would replace the good value."""
    table = Table(str(tmp_path / "tables"), "eval")
    shared = {"weights": np.zeros(3), "marker_dir": str(tmp_path)}
    run_shards("t", _shards([1, 2]), DoublingJob, shared, table, actors=1)
    redo = run_shards("t", _shards(["fail", 3]), DoublingJob, shared, table, force=True, actors=1)
    assert list(redo.failures) == ["s0"] and "earlier result kept" in redo.failures["s0"]
    rows = {r["shard"]: r for r in table.read().to_pylist()}
    assert (rows["s0"]["value"], rows["s0"]["error"]) == (2.0, None)
    assert "ValueError: too few samples" in rows["s0"]["redo_error"]
    assert (rows["s1"]["value"], rows["s1"]["redo_error"]) == (6.0, None)
    # Not finished: a rerun retries it, and a redo that works replaces the kept value.
    assert finished_shards(table) == {"s1"}
    again = run_shards("t", _shards([5, 3]), DoublingJob, shared, table, actors=1)
    assert (again.skipped, again.done, again.failures) == (1, 1, {})
    rows = {r["shard"]: r for r in table.read().to_pylist()}
    assert (rows["s0"]["value"], rows["s0"]["redo_error"]) == (10.0, None)


def test_job_that_cannot_start_is_one_clear_error(ray_address, tmp_path):
    table = Table(str(tmp_path / "tables"), "eval")
    with pytest.raises(UserError, match="workers cannot start: .*no judge weights"):
        run_shards("t", _shards([1, 2]), BrokenJob, {}, table, actors=1)
    assert table.fragments() == []


class PartsJob:
    """Intermediates ("part", k) return an array; ("sum", _) adds up its inputs' arrays;
    ("part", "fail") raises. Every task writes a marker file, so a test sees what ran."""

    def __init__(self, marker_dir: str) -> None:
        self.marker_dir = Path(marker_dir)

    def run(self, task, *inputs):
        kind, arg = task
        (self.marker_dir / f"ran-{kind}-{arg}-{time.monotonic_ns()}").touch()
        if kind == "part":
            if arg == "fail":
                raise ValueError("this chunk cannot be drawn")
            return np.full(100_000, float(arg))  # 800 kB: kept in the object store
        return [
            {
                "value": float(sum(part.sum() for part in inputs)),
                "inputs": [float(part[0]) for part in inputs],
            }
        ]


def _parts_plan(fail_part: bool = False) -> list[Shard]:
    key = {"metric": "sum", "extractor": "none", "seed": 0}
    parts = [
        Shard(id=f"p{k}", key=None, task=("part", "fail" if fail_part and k == 2 else k))
        for k in range(3)
    ]
    return parts + [
        Shard(id="s01", key={"generator": "a", **key}, task=("sum", 0), needs=("p0", "p1")),
        Shard(id="s21", key={"generator": "b", **key}, task=("sum", 1), needs=("p2", "p1")),
        Shard(id="plain", key={"generator": "c", **key}, task=("sum", 2)),
    ]


def _ran(folder: Path) -> Counter:
    return Counter("-".join(p.name.split("-")[1:3]) for p in folder.glob("ran-*"))


def test_intermediates_feed_the_shards_that_need_them_and_write_no_rows(ray_address, tmp_path):
    table = Table(str(tmp_path / "tables"), "eval")
    markers = tmp_path / "markers"
    markers.mkdir()
    report = run_shards("t", _parts_plan(), PartsJob, {"marker_dir": str(markers)}, table, actors=2)
    assert (report.total, report.done, report.failures) == (6, 6, {})
    rows = {r["shard"]: r for r in table.read().to_pylist()}
    assert set(rows) == {"s01", "s21", "plain"}  # intermediates leave no rows
    assert rows["s01"]["value"] == 100_000 * (0 + 1) and rows["s01"]["inputs"] == [0.0, 1.0]
    assert rows["s21"]["value"] == 100_000 * (2 + 1) and rows["s21"]["inputs"] == [2.0, 1.0]
    assert rows["plain"]["inputs"] == []
    assert _ran(markers) == {
        "part-0": 1,
        "part-1": 1,
        "part-2": 1,
        "sum-0": 1,
        "sum-1": 1,
        "sum-2": 1,
    }

    # A rerun with everything finished runs nothing, intermediates included; with one shard
    # unfinished, only the intermediates that shard needs run again.
    assert (
        run_shards(
            "t", _parts_plan(), PartsJob, {"marker_dir": str(markers)}, table, actors=2
        ).skipped
        == 6
    )
    table.append(
        [
            {
                "shard": "s21",
                "generator": "b",
                "metric": "sum",
                "extractor": "none",
                "seed": 0,
                "error": "worker died",
            }
        ]
    )
    again = run_shards("t", _parts_plan(), PartsJob, {"marker_dir": str(markers)}, table, actors=2)
    assert (again.skipped, again.done) == (3, 3)
    assert _ran(markers) == {
        "part-0": 1,
        "part-1": 2,
        "part-2": 2,
        "sum-0": 1,
        "sum-1": 2,
        "sum-2": 1,
    }


def test_a_failed_intermediate_fails_what_needs_it_and_the_rest_go_on(ray_address, tmp_path):
    table = Table(str(tmp_path / "tables"), "eval")
    markers = tmp_path / "markers"
    markers.mkdir()
    report = run_shards(
        "t", _parts_plan(fail_part=True), PartsJob, {"marker_dir": str(markers)}, table, actors=2
    )
    assert set(report.failures) == {"p2", "s21"}
    assert "ValueError: this chunk cannot be drawn" in report.failures["p2"]
    rows = {r["shard"]: r for r in table.read().to_pylist()}
    assert rows["s21"]["error"].startswith("needs p2, which failed: ValueError: this chunk")
    assert rows["s21"]["generator"] == "b"  # the error row says what failed
    assert finished_shards(table) == {"s01", "plain"}
    assert "sum-1" not in _ran(markers)  # it never ran


def test_a_shard_may_only_need_intermediates_of_the_plan(ray_address, tmp_path):
    table = Table(str(tmp_path / "tables"), "eval")
    key = {"generator": "a", "metric": "sum", "extractor": "none", "seed": 0}
    with pytest.raises(ValueError, match="needs 'p9', which is not among the shards"):
        run_shards(
            "t",
            [Shard(id="s", key=key, task=("sum", 0), needs=("p9",))],
            PartsJob,
            {"marker_dir": str(tmp_path)},
            table,
        )


@pytest.mark.parametrize(
    ("actors", "gpus", "share"),
    [
        (1, 0, 0.0),
        (4, 0.5, 0.0),  # no whole GPU: workers run on CPUs
        (1, 1, 1.0),
        (2, 4, 1.0),  # a GPU each
        (2, 1, 0.5),
        (3, 2, 0.5),
        (4, 1, 0.25),
        (3, 1, 1 / 3),  # packed evenly on whole GPUs
    ],
)
def test_workers_share_gpus_evenly_when_they_outnumber_them(actors, gpus, share):
    assert gpu_share(actors, gpus) == pytest.approx(share)
    if share:  # every worker fits: at most 1/share of them on each whole GPU
        assert int(gpus) * round(1 / share) >= actors
