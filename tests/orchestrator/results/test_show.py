"""`results show --group-by` on tables written to real Parquet: keys, default metrics, order."""

from __future__ import annotations

import json
import math

import pytest

from orchestrator.errors import UserError
from orchestrator.results.show import show
from orchestrator.tables import Table

from .test_group import T_975_1, T_975_2

# (real_label, seed) -> best_label_accuracy; the failed trial has none.
ACCURACY = {(0.9, 0): 0.5, (0.9, 1): 0.7, (0.9, 2): 0.6, (1.0, 0): 0.2, (1.0, 1): 0.4}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run whose spec optimises label_accuracy: a 2 x 3 seed grid with one failed trial, a
    lone real_label 0.8 trial, two epochs for two trials and an eval table over two seeds."""
    runs = tmp_path_factory.mktemp("runs")
    (runs / "study").mkdir()
    (runs / "study" / "spec.yaml").write_text("metric: {name: label_accuracy, mode: max}\n")
    tables = str(runs / "study" / "tables")
    trials = [
        {
            "trial_id": f"t{real_label}-{seed}",
            "variant": "smooth" if real_label == 0.9 else "plain",
            "status": "TERMINATED" if (real_label, seed) in ACCURACY else "ERROR",
            "best_fid": 100.0 * seed + real_label,
            "best_label_accuracy": ACCURACY.get((real_label, seed)),
            "config/real_label": real_label,
            "config/seed": seed,
        }
        for real_label in (0.9, 1.0)
        for seed in (0, 1, 2)
    ]
    trials.append({**trials[0], "trial_id": "lone", "best_label_accuracy": 0.9})
    trials[-1]["config/real_label"] = 0.8
    Table(tables, "trials").append(trials)
    Table(tables, "epochs").append(
        {"trial_id": trial, "epoch": epoch, "label_accuracy": accuracy, "fid": 1.0}
        for trial, epoch, accuracy in [
            ("t0.9-0", 1, 0.1),
            ("t0.9-0", 2, 0.3),
            ("t1.0-0", 1, 0.2),
            ("t1.0-0", 2, 0.6),
        ]
    )
    Table(tables, "eval").append(
        {"generator": g, "metric": "fid", "extractor": "lenet", "seed": s, "value": v}
        for g, s, v in [
            ("a", 0, 10.0),
            ("a", 1, 12.0),
            ("b", 0, 7.0),
            ("b", 1, 7.5),
            ("t0.9-0", 0, 3.0),
            ("t0.9-1", 0, 5.0),
            ("t1.0-0", 0, 9.0),
        ]
    )
    # Two augmentation cells over three seeds: one seed of the second failed outright, one
    # failed a redo and kept its earlier accuracy.
    Table(tables, "augment").append(
        {
            "generator": "t0.9-0",
            "strategy": "mix",
            "n_real": n_real,
            "n_generated": 400,
            "seed": seed,
            "test_accuracy": accuracy,
            "error": "boom" if accuracy is None else None,
            "redo_error": "lost" if (n_real, seed) == (40, 1) else None,
        }
        for n_real, seed, accuracy in [
            (0, 0, 0.7),
            (0, 1, 0.8),
            (0, 2, 0.6),
            (40, 0, 0.75),
            (40, 1, 0.85),
            (40, 2, None),
        ]
    )
    return str(runs)


def grouped(runs: str, **options) -> list[dict]:
    return json.loads(show("study", runs_dir=runs, fmt="json", **options))


def test_trials_group_by_a_config_key_sorted_by_mean_of_the_runs_metric(runs):
    groups = grouped(runs, group_by="real_label")
    assert [(g["config/real_label"], g["n"]) for g in groups] == [(1.0, 2), (0.9, 3), (0.8, 1)]
    assert [g["mean"] for g in groups] == pytest.approx([0.3, 0.6, 0.9])
    half_width = T_975_2 * 0.1 / math.sqrt(3)  # 0.5, 0.7, 0.6: std 0.1
    assert (groups[1]["ci_low"], groups[1]["ci_high"]) == pytest.approx(
        (0.6 - half_width, 0.6 + half_width)
    )
    assert [groups[2][c] for c in ("std", "ci_low", "ci_high")] == [None, None, None]
    assert grouped(runs, group_by="real_label", descending=True, top=1) == [groups[2]]
    by_fid = grouped(runs, group_by="config/real_label,seed", metric="fid")
    assert len(by_fid) == 7 and all(g["n"] == 1 for g in by_fid)  # the failed trial has a fid
    assert [g["mean"] for g in by_fid] == sorted(g["mean"] for g in by_fid)
    text = show("study", runs_dir=runs, group_by="real_label").splitlines()
    assert text[0].split() == ["real_label", "n", "mean", "std", "ci_low", "ci_high"]
    assert text[-1].split() == ["0.8", "1", "0.9", "-", "-", "-"]


def test_epochs_group_by_their_trials_config(runs):
    groups = grouped(runs, table="epochs", group_by="epoch", sort="epoch")
    assert [(g["epoch"], g["n"]) for g in groups] == [(1, 2), (2, 2)]
    assert [g["mean"] for g in groups] == pytest.approx([0.15, 0.45])
    by_label = grouped(runs, table="epochs", group_by="real_label,epoch")
    assert [(g["config/real_label"], g["epoch"], g["mean"]) for g in by_label] == [
        (0.9, 1, 0.1),
        (1.0, 1, 0.2),
        (0.9, 2, 0.3),
        (1.0, 2, 0.6),
    ]


def test_eval_groups_its_values_over_seeds(runs):
    groups = grouped(runs, table="eval", group_by="generator,metric")
    pooled = [(g["generator"], g["n"], g["mean"]) for g in groups if g["n"] > 1]
    assert pooled == [("b", 2, 7.25), ("a", 2, 11.0)]


def test_eval_and_epochs_rows_carry_their_trials_variant(runs):
    """Eval rows of trial generators group by the trial's variant and config; the other
    generators (external sources, the reference) fall in the null group."""
    by_variant = grouped(runs, table="eval", group_by="variant", sort="variant")
    assert [(g["variant"], g["n"], g["mean"]) for g in by_variant] == [
        ("plain", 1, 9.0),
        ("smooth", 2, 4.0),
        (None, 4, pytest.approx(9.125)),
    ]
    by_label = grouped(runs, table="eval", group_by="real_label")
    assert [(g["config/real_label"], g["mean"]) for g in by_label][:2] == [(0.9, 4.0), (1.0, 9.0)]
    epochs = grouped(runs, table="epochs", group_by="variant,epoch", sort="epoch")
    assert [(g["variant"], g["epoch"]) for g in epochs] == [
        ("plain", 1),
        ("smooth", 1),
        ("plain", 2),
        ("smooth", 2),
    ]


def test_augment_groups_test_accuracy_over_seeds_without_failed_cells(runs):
    groups = grouped(runs, table="augment", group_by="n_real,n_generated", sort="n_real")
    assert [(g["n_real"], g["n_generated"], g["n"]) for g in groups] == [(0, 400, 3), (40, 400, 2)]
    assert [g["mean"] for g in groups] == pytest.approx([0.7, 0.8])
    half_width = T_975_2 * 0.1 / math.sqrt(3)  # 0.7, 0.8, 0.6: std 0.1
    assert (groups[0]["ci_low"], groups[0]["ci_high"]) == pytest.approx(
        (0.7 - half_width, 0.7 + half_width)
    )
    half_width = T_975_1 * 0.05  # 0.75, 0.85: std 0.1 / sqrt(2), over sqrt(2)
    assert (groups[1]["ci_low"], groups[1]["ci_high"]) == pytest.approx(
        (0.8 - half_width, 0.8 + half_width)
    )


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"group_by": "nope"}, "--group-by: no column 'nope' in the trials table (columns: "),
        ({"group_by": "seed", "metric": "nope"}, "--metric: no column 'nope'"),
        ({"group_by": "seed", "metric": "status"}, "column 'status' of the trials table is not"),
        ({"group_by": "seed", "metric": "seed"}, "'config/seed' cannot be a key"),
        ({"group_by": ","}, "--group-by needs at least one column"),
        ({"group_by": "seed", "table": "nope"}, "--group-by works with --table trials"),
        ({"group_by": "seed", "table": "eval", "pivot": True}, "and without --pivot"),
        ({"metric": "fid"}, "give --group-by too"),
    ],
)
def test_bad_grouping_is_one_line(runs, options, words):
    with pytest.raises(UserError) as caught:
        show("study", runs_dir=runs, **options)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_ganorch_runs_is_the_default_runs_dir_and_runs_dir_overrides_it(runs, tmp_path):
    from typer.testing import CliRunner

    from orchestrator import cli

    command = ["results", "show", "study", "--format", "json"]
    found = CliRunner().invoke(cli.app, command, env={"GANORCH_RUNS": runs})
    assert found.exit_code == 0, found.output
    assert {t["trial_id"] for t in json.loads(found.output)} == {
        *(f"t{label}-{seed}" for label in (0.9, 1.0) for seed in (0, 1, 2)),
        "lone",
    }
    elsewhere = {"GANORCH_RUNS": str(tmp_path)}
    missing = CliRunner().invoke(cli.app, command, env=elsewhere)
    assert missing.exit_code == 2 and str(tmp_path) in missing.output
    overridden = CliRunner().invoke(cli.app, [*command, "--runs-dir", runs], env=elsewhere)
    assert overridden.exit_code == 0 and json.loads(overridden.output) == json.loads(found.output)
