"""`run_sweep` with a metric to maximise: Tune, Optuna, the checkpoint kept and the tables all
take the largest value as the best."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch

from orchestrator.runs import RunDir
from orchestrator.sweep.spec import parse_spec
from orchestrator.sweep.tuner import run_sweep
from orchestrator.tables import Table
from trainables.trainable import STATE_FILE

pytestmark = pytest.mark.slow


def test_a_maximised_metric_is_best_at_its_largest_value(tmp_path, ray_address):
    spec = parse_spec(
        {
            "name": "most",
            "dataset": {"name": "mnist5k"},
            "family": "cdcgan",
            "epochs": 2,
            "metric": {"name": "label_accuracy", "mode": "max"},
            "search": {"algorithm": "optuna", "samples": 2, "max_concurrent": 2, "seed": 0},
            "scheduler": {"name": "none"},
            "space": {"lr": {"loguniform": [1.0e-3, 3.0e-3]}},
            "fixed": {"base_channels": 8, "n_z": 16, "batch_size": 100, "fid_samples": 200},
        }
    )
    run = RunDir.of(str(tmp_path), "most")
    outcome = run_sweep(spec, run, say=lambda _: None)
    assert (outcome.trials, outcome.finished) == (2, 2)

    epochs = Table(run.tables, "epochs").read().to_pylist()
    trials = Table(run.tables, "trials").read().to_pylist()
    for trial in trials:
        curve = {
            e["epoch"]: e["label_accuracy"] for e in epochs if e["trial_id"] == trial["trial_id"]
        }
        assert len(curve) == 2 and curve[1] != curve[2]  # so min and max would differ
        assert trial["best_label_accuracy"] == max(curve.values())
        assert trial["best_epoch"] == max(curve, key=curve.get)
        kept = torch.load(Path(trial["checkpoint"]) / STATE_FILE, weights_only=True)
        assert kept["epoch"] == trial["best_epoch"]  # the checkpoint Tune keeps is the best
    best = max(trials, key=lambda t: t["best_label_accuracy"])
    assert (outcome.best_trial, outcome.best_value) == (
        best["trial_id"],
        best["best_label_accuracy"],
    )

    study = optuna.load_study(study_name="most", storage=f"sqlite:///{run.root / 'optuna.db'}")
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert study.best_value == max(t["label_accuracy"] for t in epochs if t["epoch"] == 2)
