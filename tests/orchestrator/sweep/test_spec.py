"""The spec validator: every bad input is one line naming the key, before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.errors import SpecError
from orchestrator.sweep.space import Choice, IntRange, LogUniform, Uniform
from orchestrator.sweep.spec import load_spec, parse_spec

from ...conftest import run_cli, write_spec

# Sweep specs, examples/reproduce/ included; *augment*.yaml are grid specs (test_augment.py).
EXAMPLES = sorted(
    p
    for p in Path(__file__).resolve().parents[3].joinpath("examples").rglob("*.yaml")
    if "augment" not in p.name
)
BASE = {"name": "q", "dataset": {"name": "mnist5k"}, "family": "dcgan", "epochs": 2}
GRID = {"search": {"algorithm": "grid"}}


def spec_with(**fields):
    return parse_spec({**BASE, **fields})


def test_issue_example_parses_into_typed_dimensions():
    spec = spec_with(
        metric={"name": "fid", "mode": "min"},
        search={"algorithm": "optuna", "samples": 4, "max_concurrent": 2, "seed": 0},
        scheduler={"name": "asha", "grace_period": 1},
        resources={"cpu": 1, "gpu": 0.5},
        space={
            "lr": {"loguniform": [2.0e-4, 2.0e-2]},
            "batch_size": [50, 100],
            "g_layers": {"int": [2, 4]},
            "real_label": {"uniform": [0.8, 1]},
        },
        fixed={"n_z": 100},
    )
    assert spec.space["lr"] == LogUniform(2e-4, 2e-2)
    assert spec.space["batch_size"] == Choice((50, 100))
    assert spec.space["g_layers"] == IntRange(2, 4)
    assert spec.space["real_label"] == Uniform(0.8, 1.0)
    assert spec.resources.gpu == 0.5 and spec.num_trials == 4


def test_resolved_spec_round_trips_through_yaml():
    spec = spec_with(
        space={"lr": {"loguniform": [1e-4, 1e-2]}, "d_steps": [1, 2]}, fixed={"real_label": 0.9}
    )
    again = parse_spec(yaml.safe_load(spec.to_yaml()))
    assert again == spec


def test_float_choices_are_normalised_and_grid_counts_every_point():
    spec = spec_with(
        search={"algorithm": "grid", "samples": 2},
        space={"lr": [1e-3, 1], "g_layers": {"int": [2, 4]}},
    )
    assert spec.space["lr"] == Choice((1e-3, 1.0))
    assert spec.num_trials == 2 * 3 * 2


@pytest.mark.parametrize(
    ("fields", "key", "words"),
    [
        ({"colour": 1}, "colour", "unknown key"),
        ({"epochs": 0}, "epochs", ">= 1"),
        ({"epochs": "two"}, "epochs", "integer"),
        ({"family": "stylegan9"}, "family", "unknown family"),
        ({"name": "a b"}, "name", "letters"),
        ({"dataset": {"name": "imagenet"}}, "dataset.name", "unknown dataset"),
        ({"dataset": {"name": "mnist"}}, "dataset.root", "required"),
        ({"dataset": {"name": "mnist5k", "size": 3}}, "dataset.size", "unknown key"),
        ({"search": {"algorithm": "bayes"}}, "search.algorithm", "optuna"),
        ({"search": {"samples": 0}}, "search.samples", ">= 1"),
        ({"search": {"sample": 4}}, "search.sample", "unknown key"),
        ({"scheduler": {"name": "hyperband"}}, "scheduler.name", "asha, pbt"),
        ({"scheduler": {"grace_period": 5}}, "scheduler.grace_period", "exceeds epochs"),
        ({"resources": {"gpu": -1}}, "resources.gpu", ">= 0"),
        ({"resources": {"gpu": "all"}}, "resources.gpu", "a number or auto, got 'all'"),
        ({"metric": {"name": "accuracy"}}, "metric.name", "fid"),
        ({"space": {"lr": {"loguniform": [1e-2, 1e-4]}}}, "space.lr", "empty range"),
        ({"space": {"lr": {"loguniform": [0, 1e-2]}}}, "space.lr", "low > 0"),
        ({"space": {"lr": {"normal": [0, 1]}}}, "space.lr", "unknown range kind"),
        ({"space": {"batch_size": []}}, "space.batch_size", "empty list"),
        ({"space": {"g_layers": {"int": [1, 4]}}}, "space.g_layers", ">= 2"),
        ({"space": {"g_layers": {"uniform": [2, 4]}}}, "space.g_layers", "float hyperparameter"),
        ({"space": {"lr": {"int": [1, 4]}}}, "space.lr", "integer hyperparameter"),
        ({"space": {"gamma": [0.5]}}, "space.gamma", "not a hyperparameter of family 'dcgan'"),
        ({"space": {"upsample": ["bilinear"]}}, "space.upsample", "transposed"),
        ({"fixed": {"batchnorm": "yes"}}, "fixed.batchnorm", "expected bool"),
        ({"fixed": {"n_z": 0}}, "fixed.n_z", ">= 1"),
        ({"space": {"n_z": [8]}, "fixed": {"n_z": 8}}, "space.n_z", "also in fixed"),
        (
            {"search": {"algorithm": "grid"}, "space": {"lr": {"uniform": [0.1, 0.2]}}},
            "space.lr",
            "grid search",
        ),
    ],
)
def test_bad_specs_name_their_key(fields, key, words):
    with pytest.raises(SpecError) as caught:
        spec_with(**fields)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ")
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


BEGAN_GRID = {"family": "began", "search": {"algorithm": "grid"}}


def test_began_betas_strings_give_the_reports_combinations_in_a_grid():
    combos = ["1-0-0", "0-1-0", "0-0-1", "1-1-0", "1-1-1", "2-1-0"]
    spec = spec_with(**BEGAN_GRID, space={"gamma": [0.5, 0.7], "betas": combos})
    assert spec.num_trials == 12
    assert spec.space["betas"] == Choice(tuple(combos))


@pytest.mark.parametrize(
    ("fields", "key", "words"),
    [
        (
            {"space": {"beta_l1": [0.0, 1.0]}},
            "space",
            "began grid point beta_l1=0.0: beta_l1, beta_gmsm and beta_chrom are all 0",
        ),
        ({"space": {"betas": ["1-0-0", "0-0-0"]}}, "space", "grid point betas=0-0-0"),
        (
            {"fixed": {"betas": "2-1-0", "beta_l1": 1.0}},
            "fixed",
            "began: betas '2-1-0' sets beta_l1 to 2, but beta_l1 is 1.0",
        ),
        ({"space": {"betas": ["1-1-0", "1-1"]}}, "space.betas", "l1-gmsm-chrom"),
    ],
)
def test_grid_points_a_family_refuses_are_spec_errors(fields, key, words):
    with pytest.raises(SpecError) as caught:
        spec_with(**BEGAN_GRID, **fields)
    assert caught.value.key == key and words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_points_are_only_enumerated_under_grid_search():
    spec = spec_with(
        family="began", search={"algorithm": "random", "samples": 2}, space={"beta_l1": [0.0, 1.0]}
    )  # a trial drawing 0 fails on its own
    assert spec.num_trials == 2


def test_seed_is_searched_like_any_knob_and_recorded_per_trial(tmp_path):
    from orchestrator.sweep.callbacks import TableRecorder
    from orchestrator.sweep.space import grid_points

    spec = spec_with(
        search={"algorithm": "grid"}, space={"seed": [0, 1, 2], "real_label": [0.9, 1.0]}
    )
    assert spec.num_trials == 6
    recorder = TableRecorder(str(tmp_path), "q", "fid", "min", 2, "mnist5k", "fp")
    rows = [
        recorder.trial_row("t", "TERMINATED", {}, {}, None, {"point": point})
        for point in grid_points(spec.space, spec.fixed, spec.family)
    ]  # the config a grid trial gets, as the tuner builds it
    assert sorted((r["config/seed"], r["config/real_label"]) for r in rows) == [
        (seed, label) for seed in (0, 1, 2) for label in (0.9, 1.0)
    ]


VARIANTS = {
    "baseline": {},
    "deep": {"cdcgan.g_layers": 5, "cdcgan.d_layers": 5},
    "smooth": {"real_label": 0.9},
    "dense": {"family": "cgan", "hidden_layers": 3},
}


def test_variants_are_arms_crossed_with_the_grid_and_named_per_trial(tmp_path):
    from orchestrator.sweep.callbacks import TableRecorder

    spec = spec_with(
        family=["cdcgan", "cgan"],
        search={"algorithm": "grid"},
        space={"seed": [0, 1, 2]},
        fixed={"real_label": 1.0, "cdcgan.g_layers": 3},
        variants=VARIANTS,
    )
    # cdcgan runs baseline, deep, smooth; cgan runs baseline, smooth, dense; 3 seeds each.
    assert spec.num_trials == (3 + 3) * 3
    recorder = TableRecorder(str(tmp_path), "q", "fid", "min", 2, "mnist5k", "fp")
    rows = [
        recorder.trial_row("t", "TERMINATED", {}, {}, None, {"point": point})
        for point in spec.grid_points()
    ]
    arms = {(r["family"], r["variant"]) for r in rows}
    assert arms == {
        ("cdcgan", "baseline"),
        ("cdcgan", "deep"),
        ("cdcgan", "smooth"),
        ("cgan", "baseline"),
        ("cgan", "smooth"),
        ("cgan", "dense"),
    }
    by_arm = {(r["family"], r["variant"], r["config/seed"]): r for r in rows}
    assert by_arm["cdcgan", "deep", 2]["config/g_layers"] == 5  # overrides fixed
    assert by_arm["cdcgan", "baseline", 0]["config/g_layers"] == 3
    assert by_arm["cdcgan", "smooth", 1]["config/real_label"] == 0.9
    assert by_arm["cgan", "baseline", 0]["config/real_label"] == 1.0
    assert by_arm["cgan", "dense", 0]["config/hidden_layers"] == 3
    assert yaml.safe_load(spec.to_yaml())["variants"] == VARIANTS
    assert "variants" not in spec_with().to_dict()  # spec.yaml of earlier runs is unchanged


@pytest.mark.parametrize(
    ("fields", "key", "words"),
    [
        ({"variants": {"a": {"lr": 1.0}}}, "variants", "need search.algorithm: grid"),
        ({"variants": {"a": {"nope": 1}}, **GRID}, "variants.a.nope", "not a hyperparameter"),
        ({"variants": {"a": {"lr": -1.0}}, **GRID}, "variants.a.lr", ""),
        ({"variants": {"a": {"family": "wgan"}}, **GRID}, "variants.a.family", "not in this"),
        (
            {"variants": {"a": {"lr": 1e-3}}, "space": {"lr": [1e-3]}, **GRID},
            "variants.a.lr",
            "space",
        ),
        ({"variants": {"a b": {}}, **GRID}, "variants", ""),
        ({"variants": {"a": 3}, **GRID}, "variants.a", "mapping"),
    ],
)
def test_bad_variants_name_their_key(fields, key, words):
    with pytest.raises(SpecError) as caught:
        spec_with(**fields)
    assert caught.value.key == key and words in str(caught.value)


def test_gpu_share_defaults_to_auto_and_takes_numbers():
    assert spec_with().resources.gpu == "auto"
    assert spec_with(resources={"gpu": "auto"}).to_dict()["resources"]["gpu"] == "auto"
    assert spec_with(resources={"gpu": 0.25}).resources.gpu == 0.25
    assert spec_with(resources={"gpu": 0}).resources.gpu == 0.0


def test_missing_required_key():
    with pytest.raises(SpecError, match="^epochs: required"):
        parse_spec({k: v for k, v in BASE.items() if k != "epochs"})


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(SpecError, match="cannot read spec"):
        load_spec(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML at line"):
        load_spec(broken)


def test_overrides_replace_name_samples_and_epochs(tmp_path):
    spec = load_spec(write_spec(tmp_path / "s.yaml"), name="other", samples=7, epochs=4)
    assert (spec.name, spec.search.samples, spec.epochs) == ("other", 7, 4)


def test_an_epochs_override_shortens_a_longer_grace_period(tmp_path):
    path = write_spec(
        tmp_path / "s.yaml",
        epochs=10,
        search={"algorithm": "optuna"},
        scheduler={"name": "asha", "grace_period": 3},
    )
    assert load_spec(path, epochs=2).scheduler.grace_period == 2
    assert load_spec(path, epochs=5).scheduler.grace_period == 3
    # written by hand, the same grace period is a mistake in the spec
    with pytest.raises(SpecError, match="grace_period: 3 exceeds epochs"):
        load_spec(
            write_spec(tmp_path / "t.yaml", epochs=2, scheduler={"name": "asha", "grace_period": 3})
        )


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ({"epochs": 0}, "epochs: must be >= 1, got 0"),
        ({"epochs": "2"}, "epochs: expected an integer, got '2'"),
        ({"samples": 0}, "search.samples: must be >= 1, got 0"),
    ],
)
def test_bad_overrides_are_spec_errors(tmp_path, override, words):
    with pytest.raises(SpecError, match=words):
        load_spec(write_spec(tmp_path / "s.yaml"), **override)


def test_smoke_overrides_fit_every_example():
    for example in EXAMPLES:
        spec = load_spec(example, samples=1, epochs=1)
        assert spec.epochs == 1 and spec.scheduler.grace_period == 1, example.name


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate(example):
    load_spec(example)


def test_cli_check_accepts_a_good_spec(tmp_path):
    spec = write_spec(
        tmp_path / "s.yaml",
        search={"algorithm": "grid"},
        space={"seed": [0, 1, 2], "real_label": [0.9, 1.0]},  # repeats under three seeds
    )
    result = run_cli("sweep", "check", str(spec))
    assert result.returncode == 0, result.stderr
    assert "ok (6 trials of dcgan, 1 epochs, grid search)" in result.stdout


@pytest.mark.parametrize("command", ["check", "run"])
def test_cli_rejects_a_bad_spec_with_one_line_and_exit_2(tmp_path, command):
    spec = write_spec(tmp_path / "bad.yaml", space={"lr": {"loguniform": [1e-2, 1e-4]}})
    runs = ["--runs-dir", str(tmp_path / "runs")] if command == "run" else []
    result = run_cli("sweep", command, str(spec), *runs)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: {spec}: space.lr: empty range [0.01, 0.0001]"]
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "runs").exists()  # nothing started


def test_sweep_run_checks_grid_points_against_the_dataset_before_starting(tmp_path):
    spec = write_spec(
        tmp_path / "grey.yaml",
        family="began",
        search={"algorithm": "grid"},
        space={"betas": ["1-0-0", "1-1-1"]},
    )
    load_spec(spec)  # the spec check reads no dataset, so it accepts this
    result = run_cli("sweep", "run", str(spec), "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {spec}: space: began grid point betas=1-1-1: beta_chrom > 0 needs colour "
        "(3-channel) images, these have 1: grey images carry no chrominance"
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()  # nothing written, nothing started


@pytest.mark.parametrize(
    "args",
    [
        ["sweep", "run", "x.yaml", "--samples", "0"],
        ["sweep", "run", "x.yaml", "--epochs", "0"],
        ["sweep", "run", "x.yaml", "--epochs", "two"],
        ["sweep", "check", "x.yaml", "--colour"],
        ["results", "show"],
        ["launch"],
    ],
)
def test_cli_usage_errors_are_one_line_with_exit_2(args):
    result = run_cli(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: ")
