"""The Tune trainable, run for one epoch inside a real Tune trial on the session's Ray."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evaluators.fid import feature_statistics, frechet_distance
from evaluators.judges import judge_features
from orchestrator.judges import judge_of
from orchestrator.runs import RunDir
from orchestrator.sweep.spec import parse_spec
from orchestrator.sweep.tuner import run_sweep
from orchestrator.tables import Table
from trainables.datasets import load_dataset
from trainables.families import family_class
from trainables.trainable import FID_SEED, STATE_FILE, generate

pytestmark = pytest.mark.slow


def test_one_epoch_reports_metrics_and_a_resumable_checkpoint(tmp_path, ray_address):
    spec = parse_spec(
        {
            "name": "one",
            "dataset": {"name": "mnist5k"},
            "family": "dcgan",
            "epochs": 1,
            "search": {"algorithm": "grid"},
            "scheduler": {"name": "none"},
            "fixed": {
                "base_channels": 8,
                "n_z": 16,
                "batch_size": 100,
                "fid_samples": 300,
                "g_layers": 3,
                "seed": 3,
            },
        }
    )
    run = RunDir.of(str(tmp_path), "one")
    outcome = run_sweep(spec, run, say=lambda _: None)
    assert (outcome.trials, outcome.finished, outcome.failed) == (1, 1, 0)

    (epoch,) = Table(run.tables, "epochs").read().to_pylist()
    assert epoch["epoch"] == 1 and epoch["fid"] == epoch["best_fid"] > 0
    assert epoch["images_per_s"] > 0 and epoch["epoch_s"] > 0
    assert torch.isfinite(torch.tensor([epoch["g_loss"], epoch["d_loss"]])).all()

    state = torch.load(Path(epoch["checkpoint"]) / STATE_FILE, weights_only=True)
    assert state["epoch"] == 1 and state["best_fid"] == epoch["fid"]
    assert state["config"]["seed"] == 3 and state["config"]["g_layers"] == 3
    assert state["image_shape"] == (1, 28, 28) and state["num_classes"] == 10
    assert isinstance(state["rng"], torch.Tensor)  # the batch order resumes where it stopped

    # The FID that drives Optuna, ASHA and --sort is the checkpoint's: recomputed from its
    # weights on the same latents with the dataset's judge and evaluators.fid, it is the same.
    data = load_dataset({"name": "mnist5k"})
    judge_net = judge_of(data).build(torch.device("cpu"))
    model = family_class("dcgan")(state["config"], data.shape, 10, torch.device("cpu"))
    model.load_state_dict(state["model"])
    samples = generate(model, 300, FID_SEED, 10)
    real = feature_statistics(judge_features(judge_net, data.test_images))
    fid = frechet_distance(*real, *feature_statistics(judge_features(judge_net, samples)))
    assert fid == pytest.approx(epoch["fid"], rel=1e-5)
    (trial,) = Table(run.tables, "trials").read().to_pylist()
    assert trial["best_fid"] == pytest.approx(fid, rel=1e-5) and trial["best_epoch"] == 1


def test_generate_is_deterministic_and_in_unit_range():
    model = family_class("dcgan")(
        {"base_channels": 8, "n_z": 16}, (1, 28, 28), 10, torch.device("cpu")
    )
    first, second = (
        generate(model, 7, seed=5, num_classes=10, batch=3),
        generate(model, 7, seed=5, num_classes=10, batch=7),
    )
    assert first.shape == (7, 1, 28, 28)
    # Same latents whatever the batching; convolutions may round differently per batch size.
    assert torch.allclose(first, second, atol=1e-5)
    assert first.min() >= 0 and first.max() <= 1


def test_generate_from_a_start_gives_those_rows_of_the_whole_draw():
    model = family_class("cdcgan")(
        {"base_channels": 8, "n_z": 16}, (1, 28, 28), 10, torch.device("cpu")
    )
    whole = generate(model, 11, seed=2, num_classes=10, batch=4)
    tail = generate(model, 11, seed=2, num_classes=10, batch=4, start=8)
    assert tail.shape == (3, 1, 28, 28)
    assert torch.allclose(tail, whole[8:], atol=1e-6)
    assert generate(model, 8, seed=2, num_classes=10, batch=4, start=8).shape == (0, 1, 28, 28)
    with pytest.raises(ValueError, match="multiple of 4"):
        generate(model, 11, seed=2, num_classes=10, batch=4, start=6)
