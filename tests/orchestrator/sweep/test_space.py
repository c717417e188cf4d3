"""Conditional search spaces: family-prefixed keys are sampled only for their family."""

from __future__ import annotations

import optuna
import pytest

from orchestrator.errors import SpecError
from orchestrator.sweep.space import (
    Choice,
    DefineByRun,
    IntRange,
    LogUniform,
    applies_to,
    family_config,
    grid_points,
)
from orchestrator.sweep.spec import parse_spec

BASE = {"name": "q", "dataset": {"name": "mnist5k"}, "epochs": 1}


def test_prefixed_keys_apply_to_their_family_only():
    assert applies_to("lr", "dcgan") and applies_to("dcgan.d_steps", "dcgan")
    assert not applies_to("wgan.n_critic", "dcgan")


def test_family_config_strips_prefixes_and_drops_other_families():
    config = {"family": "b", "lr": 0.1, "b.k": 2, "a.k": 3}
    assert family_config(config) == ("b", {"lr": 0.1, "k": 2})
    assert family_config({"point": config}) == ("b", {"lr": 0.1, "k": 2})


def test_define_by_run_samples_only_the_drawn_familys_keys():
    space = {"lr": LogUniform(1e-4, 1e-2), "a.x": IntRange(1, 3), "b.y": Choice((5, 6))}
    suggest = DefineByRun(space, {"a.z": 1, "n": 7}, ("a", "b"))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        fixed = suggest(trial)
        family = trial.params["family"]
        seen.add(family)
        assert ("a.x" in trial.params) == (family == "a")
        assert ("b.y" in trial.params) == (family == "b")
        assert "lr" in trial.params
        assert fixed == (
            {"family": "a", "a.z": 1, "n": 7} if family == "a" else {"family": "b", "n": 7}
        )
        study.tell(trial, 1.0)
    assert seen == {"a", "b"}


def test_single_family_define_by_run_draws_no_family():
    study = optuna.create_study()
    trial = study.ask()
    assert DefineByRun({"lr": LogUniform(1e-4, 1e-2)}, {}, ("dcgan",))(trial) == {"family": "dcgan"}
    assert set(trial.params) == {"lr"}


def test_grid_points_multiply_within_each_family_only():
    space = {"lr": Choice((1, 2)), "a.x": IntRange(1, 3), "b.y": Choice((5,))}
    points = grid_points(space, {"a.z": 0}, ("a", "b"))
    assert len(points) == 2 * 3 + 2 * 1
    assert {"family": "a", "a.z": 0, "lr": 2, "a.x": 3} in points
    assert {"family": "b", "lr": 1, "b.y": 5} in points


def test_spec_with_a_family_list_validates_prefixed_keys():
    spec = parse_spec({**BASE, "family": ["dcgan"], "space": {"dcgan.d_steps": [1, 2]}})
    assert spec.family == ("dcgan",)
    assert spec.to_dict()["family"] == "dcgan"


@pytest.mark.parametrize(
    ("fields", "key", "words"),
    [
        ({"family": []}, "family", "expected a family name"),
        ({"family": ["dcgan", "dcgan"]}, "family", "twice"),
        ({"family": ["dcgan", "nope"]}, "family", "unknown family 'nope'"),
        (
            {"family": "dcgan", "space": {"wgan.n_critic": [1]}},
            "space.wgan.n_critic",
            "not in this spec's family list",
        ),
        (
            {"family": "dcgan", "space": {"dcgan.gamma": [1]}},
            "space.dcgan.gamma",
            "not a hyperparameter of family 'dcgan'",
        ),
    ],
)
def test_family_list_errors(fields, key, words):
    with pytest.raises(SpecError) as caught:
        parse_spec({**BASE, **fields})
    assert caught.value.key == key and words in str(caught.value)


def test_a_plain_key_must_exist_in_every_listed_family():
    with pytest.raises(SpecError) as caught:
        parse_spec({**BASE, "family": ["dcgan", "wgan"], "space": {"n_critic": [2, 5]}})
    assert str(caught.value) == (
        "space.n_critic: family dcgan has no 'n_critic'; "
        "write wgan.n_critic to set it only where it exists"
    )


def test_a_sweep_may_only_optimise_a_metric_every_family_reports():
    with pytest.raises(SpecError, match="^metric.name: expected one of"):
        parse_spec({**BASE, "family": ["dcgan", "vae"], "metric": {"name": "d_loss"}})
    assert parse_spec({**BASE, "family": ["dcgan", "vae"]}).metric.name == "fid"
