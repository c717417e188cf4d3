"""Population Based Training on a real local Ray: a sweep whose driver is killed mid-run resumes
with each (trial, epoch) once, exploits are recorded in the epochs table, and an exploited
trial's next epoch is trained from its donor's checkpoint under the mutated lr."""

from __future__ import annotations

import random
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from evaluators.fid import feature_statistics, frechet_distance
from evaluators.judges import judge_features
from orchestrator.errors import SpecError
from orchestrator.judges import judge_of
from orchestrator.runs import RunDir
from orchestrator.sweep.spec import parse_spec
from orchestrator.tables import Table
from tests.conftest import GANORCH, run_cli, write_spec
from tests.faults.kill_rounds import SEED, assert_each_key_once, interrupted_round, kill_driver
from trainables.datasets import load_dataset
from trainables.families import family_class
from trainables.trainable import FID_SEED, STATE_FILE, _train_epoch, generate

FIXED = {"base_channels": 8, "n_z": 16, "batch_size": 100, "fid_samples": 200}
PBT = {
    "name": "pbt",
    "perturbation_interval": 1,
    "quantile_fraction": 0.25,
    "resample_probability": 0.25,
    "mutations": {"lr": {"loguniform": [1.0e-4, 3.0e-3]}},
}


def pbt_fields(**fields) -> dict:
    spec = {
        "name": "pbt",
        "dataset": {"name": "mnist5k"},
        "family": "dcgan",
        "epochs": 3,
        "search": {"algorithm": "random", "samples": 4, "max_concurrent": 2, "seed": 0},
        "scheduler": PBT,
        "resources": {"cpu": 1},
        # Some trials start too slow to learn in 3 epochs: the bottom one is always exploited.
        "space": {"lr": {"loguniform": [1.0e-5, 3.0e-3]}},
        "fixed": FIXED,
    }
    return {**spec, **fields}


def pbt_spec(**fields):
    return parse_spec(pbt_fields(**fields))


@pytest.mark.slow
def test_a_killed_pbt_sweep_resumes_and_exploited_trials_continue_their_donors(
    tmp_path, ray_address, one_torch_thread
):
    spec = write_spec(tmp_path / "pbt.yaml", **pbt_fields())
    command = [str(GANORCH), "sweep", "run", str(spec), "--runs-dir", str(tmp_path)]
    command += ["--address", ray_address]
    run = RunDir.of(str(tmp_path), "pbt")
    # The driver is killed (with its process group) after the first epoch row lands, then the
    # sweep is rerun: Tune resumes the population from its checkpoints.
    killed = interrupted_round(
        command, Table(run.tables, "epochs"), kill_driver, random.Random(SEED), tmp_path / "log"
    )
    assert killed, f"seed {SEED}: the PBT sweep finished before the kill"
    resumed = run_cli(*command[1:])
    assert resumed.returncode == 0, resumed.stderr
    tables = Path(run.tables)
    trials = assert_each_key_once(tables, "trials")
    assert len(trials) == 4 and {t["status"] for t in trials} == {"TERMINATED"}
    epochs = assert_each_key_once(tables, "epochs")  # each (trial, epoch) once
    row = {(e["trial_id"], e["epoch"]): e for e in epochs}
    # Every trial runs from epoch 1 to 3. PBT is asynchronous: a trial behind its donor jumps
    # to the donor's epoch, so an epoch may be missing, but only just before an exploit.
    for trial in {e["trial_id"] for e in epochs}:
        ran = sorted(epoch for t, epoch in row if t == trial)
        assert ran[0] == 1 and ran[-1] == 3, f"{trial} ran epochs {ran}"
        for before, after in pairwise(ran):
            if after != before + 1:
                exploit = row[(trial, after)].get("exploited_from") or ""
                assert exploit.endswith(f"@{after - 1}"), f"{trial} skipped to epoch {after}"
    exploits = [e for e in epochs if e.get("exploited_from")]
    assert exploits, "no trial was exploited"
    data = load_dataset({"name": "mnist5k"})
    judge_net = judge_of(data).build(torch.device("cpu"))
    real = feature_statistics(judge_features(judge_net, data.test_images))
    for exploit in exploits:
        donor, at = exploit["exploited_from"].rsplit("@", 1)
        at = int(at)
        assert exploit["epoch"] == at + 1 and donor != exploit["trial_id"]
        mutated = exploit["config/lr"]
        assert 1.0e-4 <= mutated <= 3.0e-3 and mutated != row[(donor, at)]["config/lr"]
        # The trial's own checkpoint of that epoch: the lr in force in its optimisers.
        state = torch.load(Path(exploit["checkpoint"]) / STATE_FILE, weights_only=True)
        if state["epoch"] == exploit["epoch"]:  # (a later epoch may have reused the folder)
            assert state["config"]["lr"] == mutated
            for optimiser in ("opt_g", "opt_d"):
                assert state["model"][optimiser]["param_groups"][0]["lr"] == mutated
        # One epoch from the donor's checkpoint under the mutated lr gives the exploited
        # trial's FID: it continued the donor's curve, not its own.
        donor_state = torch.load(
            Path(row[(donor, at)]["checkpoint"]) / STATE_FILE, weights_only=True
        )
        assert donor_state["epoch"] == at and donor_state["trial_id"] == donor
        model = family_class("dcgan")(
            {**donor_state["config"], "lr": mutated}, data.shape, 10, torch.device("cpu")
        )
        model.load_state_dict(donor_state["model"])
        model.apply_optimiser_config()
        batches = torch.Generator()
        batches.set_state(donor_state["rng"])
        images = torch.tensor(data.train_images).float().div_(127.5).sub_(1.0)
        _train_epoch(model, images, torch.tensor(data.train_labels), batches)
        samples = generate(model, FIXED["fid_samples"], FID_SEED, 10)
        fid = frechet_distance(*real, *feature_statistics(judge_features(judge_net, samples)))
        assert fid == pytest.approx(exploit["fid"], rel=1e-5)
    assert {t["trial_id"] for t in trials} == {e["trial_id"] for e in epochs}
    # The trials table keeps each trial's last config: the one its last epoch ran under.
    for trial in trials:
        assert trial["config/lr"] == row[(trial["trial_id"], 3)]["config/lr"]


@pytest.mark.parametrize(
    "fields, key, words",
    [
        ({"search": {"algorithm": "optuna", "samples": 4}}, "search.algorithm", "explores by"),
        ({"family": ["dcgan", "wgan"]}, "family", "one family"),
        ({"scheduler": {**PBT, "mutations": {"n_z": [8, 16]}}}, "mutations.n_z", "cannot change"),
        ({"scheduler": {**PBT, "grace_period": 1}}, "scheduler.grace_period", "unknown key"),
        ({"scheduler": {**PBT, "mutations": {}}}, "scheduler.mutations", "at least one"),
        ({"scheduler": {**PBT, "perturbation_interval": 4}}, "perturbation_interval", "exceeds"),
        ({"scheduler": {**PBT, "quantile_fraction": 0.6}}, "quantile_fraction", "(0, 0.5]"),
        ({"scheduler": {"name": "asha", "mutations": {}}}, "scheduler.mutations", "unknown key"),
    ],
)
def test_pbt_specs_refuse_what_pbt_cannot_do(fields, key, words):
    with pytest.raises(SpecError) as error:
        pbt_spec(**fields)
    assert key in str(error.value) and words in str(error.value)


def test_each_family_declares_its_mutable_knobs():
    assert family_class("dcgan").mutable_params() == ("lr", "beta1", "real_label", "d_steps")
    assert set(family_class("began").mutable_params()) == {"lr", "beta1", "gamma", "lambda_k"}
    assert "n_z" not in family_class("wgan").mutable_params()
