"""`ganorch results importance` on runs whose metric depends on one knob by construction."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image

from orchestrator.runs import RunDir
from orchestrator.tables import Table

from ...conftest import run_cli, run_in_process


def make_run(root, rows: list[dict], **spec) -> RunDir:
    run = RunDir.of(str(root), "imp")
    run.root.mkdir(parents=True)
    run.spec_file.write_text(
        yaml.safe_dump(
            {
                "name": "imp",
                "dataset": {"name": "mnist5k"},
                "family": "dcgan",
                "epochs": 1,
                "search": {"algorithm": "random", "samples": len(rows)},
                **spec,
            }
        )
    )
    Table(run.tables, "trials").append(rows)
    return run


def trial(i: int, family: str, fid: float, status: str = "TERMINATED", **config) -> dict:
    return {
        "trial_id": f"t{i:03d}",
        "family": family,
        "status": status,
        "best_fid": fid,
        **{f"config/{key}": value for key, value in config.items()},
    }


def lr_run(root, n: int = 40):
    """best_fid = 100 * log10(lr) + noise of 1: lr explains nearly all of it, the batch size
    nothing."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        lr, batch = 10 ** rng.uniform(-4, -2), int(rng.choice([32, 64]))
        rows.append(
            trial(i, "dcgan", 500 + 100 * np.log10(lr) + rng.normal(), lr=lr, batch_size=batch)
        )
    rows.append(trial(n, "dcgan", float("nan"), "ERROR", lr=1e-3, batch_size=32))  # left out
    space = {"lr": {"loguniform": [1e-4, 1e-2]}, "batch_size": [32, 64]}
    return make_run(root, rows, space=space)


@pytest.mark.parametrize("evaluator", ["fanova", "ped-anova"])
def test_the_knob_the_metric_depends_on_ranks_first(tmp_path, evaluator):
    lr_run(tmp_path)
    result = run_in_process(
        "results", "importance", "imp", "--runs-dir", str(tmp_path), "--evaluator", evaluator
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "importance of each searched hyperparameter for best_fid"
    knob, share = lines[1].split()[:2]
    assert knob == "lr" and float(share) > 0.8, result.stdout
    assert lines[2].split()[0] == "batch_size" and "(40 trials)" in lines[2]


def test_a_prefixed_knob_is_ranked_within_its_familys_trials(tmp_path):
    """n_critic decides WGAN's FID and exists only in WGAN's trials; lr decides nothing."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(40):
        lr = 10 ** rng.uniform(-4, -2)
        if i % 2:
            critic = int(rng.integers(1, 6))
            rows.append(trial(i, "wgan", 100 + 20 * critic + rng.normal(), lr=lr, n_critic=critic))
        else:
            rows.append(trial(i, "dcgan", 300 + rng.normal(), lr=lr, n_critic=None))
    space = {"lr": {"loguniform": [1e-4, 1e-2]}, "wgan.n_critic": {"int": [1, 5]}}
    make_run(tmp_path, rows, family=["dcgan", "wgan"], space=space)
    result = run_cli("results", "importance", "imp", "--runs-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    shares = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert shares.keys() == {"family", "lr", "wgan.n_critic"}
    share = {knob: float(line.split()[1]) for knob, line in shares.items()}
    assert share["family"] > 0.8  # dcgan at 300, wgan at 120-200; lr is noise
    assert "(20 wgan trials)" in shares["wgan.n_critic"]
    assert share["wgan.n_critic"] > 0.8
    chart = tmp_path / "imp" / "artifacts" / "importance.png"
    assert f"wrote {chart}" in result.stderr
    with Image.open(chart) as image:
        assert image.width > 100 and image.height > 50


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--evaluator", "shap"), "--evaluator must be one of fanova, ped-anova, got 'shap'"),
        (("--metric", "best_kid"), "--metric: the trials table has no column 'best_kid'"),
    ],
)
def test_bad_options_are_one_line(tmp_path, args, message):
    lr_run(tmp_path)
    result = run_in_process("results", "importance", "imp", "--runs-dir", str(tmp_path), *args)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [f"error: {message}"]


def test_too_few_finished_trials_is_one_line(tmp_path):
    lr_run(tmp_path, n=3)
    result = run_in_process("results", "importance", "imp", "--runs-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: run 'imp' has 3 finished trial(s) with a finite best_fid; importance needs "
        "at least 4"
    )
    assert not (tmp_path / "imp" / "artifacts").exists()
