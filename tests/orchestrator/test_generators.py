"""Picking generators from a run's trials table (real Parquet fragments) or a checkpoint path."""

from __future__ import annotations

import math

import pytest
import yaml

from orchestrator.errors import UserError
from orchestrator.generators import pick_trials, resolve_generator
from orchestrator.runs import RunDir
from orchestrator.tables import Table


@pytest.fixture
def run(tmp_path) -> RunDir:
    run = RunDir.of(str(tmp_path), "r")
    run.root.mkdir(parents=True)
    rows = [
        {
            "trial_id": "a",
            "family": "dcgan",
            "best_fid": 30.0,
            "best_label_accuracy": 0.5,
            "checkpoint": "/ck/a",
        },
        {
            "trial_id": "b",
            "family": "wgan",
            "best_fid": 10.0,
            "best_label_accuracy": 0.9,
            "checkpoint": "/ck/b",
        },
        {
            "trial_id": "c",
            "family": "dcgan",
            "best_fid": 20.0,
            "best_label_accuracy": 0.7,
            "checkpoint": "/ck/c",
        },
        {"trial_id": "d", "family": "dcgan", "best_fid": math.nan, "checkpoint": "/ck/d"},
        {"trial_id": "e", "family": "dcgan", "best_fid": None, "checkpoint": None},
    ]
    Table(run.tables, "trials").append(rows)
    return run


def test_top_by_metric_ranks_in_the_metrics_direction(run):
    assert [g.label for g in pick_trials(run, top=2)] == ["b", "c"]
    assert [g.score for g in pick_trials(run, top=2)] == [10.0, 20.0]
    assert [g.label for g in pick_trials(run)] == ["b", "c", "a"]  # unscored trials left out
    assert [g.label for g in pick_trials(run, top=1, by="label_accuracy")] == ["b"]
    assert [g.label for g in pick_trials(run, top=1, by="fid", maximise=True)] == ["a"]
    first = pick_trials(run, top=1)[0]
    assert (first.checkpoint, first.family) == ("/ck/b", "wgan")


def test_ids_keep_their_order_and_unknown_ones_are_named(run):
    assert [g.label for g in pick_trials(run, ids=["c", "a"])] == ["c", "a"]
    with pytest.raises(UserError, match="no trial 'zz'"):
        pick_trials(run, ids=["zz"])
    with pytest.raises(UserError, match="trial 'e' .* has no checkpoint"):
        pick_trials(run, ids=["e"])
    with pytest.raises(UserError, match="--by: .*no best_sharpness column"):
        pick_trials(run, by="sharpness")


def test_best_follows_the_spec_metric_and_paths_need_no_run(run, tmp_path):
    run.spec_file.write_text(yaml.safe_dump({"metric": {"name": "label_accuracy", "mode": "max"}}))
    assert resolve_generator(run, "best").label == "b"
    assert resolve_generator(run, "c").checkpoint == "/ck/c"
    folder = tmp_path / "checkpoint_000002"
    folder.mkdir()
    (folder / "state.pt").write_bytes(b"")
    for given in (folder, folder / "state.pt"):
        picked = resolve_generator(None, str(given))
        assert (picked.label, picked.checkpoint) == ("checkpoint_000002", str(folder))
    with pytest.raises(UserError, match="not a checkpoint path"):
        resolve_generator(None, "best")


def test_empty_run_is_a_clear_error(tmp_path):
    empty = RunDir.of(str(tmp_path), "empty")
    with pytest.raises(UserError, match="has no trials yet"):
        pick_trials(empty, top=3)
