"""The augmentation grid without Ray: spec, cells, sample pools, one actor's job, the pivot."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from evaluators.judges.lenet import LeNet
from orchestrator.augment.cells import (
    POOL_BLOCK,
    Cell,
    RetrainJob,
    RetrainSettings,
    SamplePool,
    draw_pool,
    plan_cells,
)
from orchestrator.augment.report import pivot_augment
from orchestrator.augment.spec import AugmentSpec, load_augment_spec, parse_augment_spec
from orchestrator.errors import SpecError
from trainables.checkpoints import load_generator
from trainables.datasets import load_dataset
from trainables.families import family_class
from trainables.trainable import STATE_FILE


def save_generator(folder: Path, family: str = "cdcgan") -> Path:
    """An untrained tiny generator saved as a trial checkpoint would be (no sweep needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    model = family_class(family)(
        {"base_channels": 8, "n_z": 16}, (1, 28, 28), 10, torch.device("cpu")
    )
    torch.save(
        {
            "model": model.state_dict(),
            "family": family,
            "config": model.config,
            "image_shape": (1, 28, 28),
            "num_classes": 10,
            "epoch": 1,
        },
        folder / STATE_FILE,
    )
    return folder


# --- spec -----------------------------------------------------------------------------------


def test_spec_defaults_are_the_reports_grid():
    spec = parse_augment_spec({"run": "r", "generator": "best"})
    assert spec.strategies == ("mix", "filter", "finetune", "source")
    assert spec.real == spec.generated == (0, 1, 10, 20, 50, 100)
    assert (spec.unit, spec.seeds, spec.epochs, spec.batch_size) == ("percent", 3, 30, 64)
    # On full MNIST's 60,000 training images: the report's 0/600/6,000/12,000/30,000/60,000.
    assert spec.sizes("real", 60000) == (0, 600, 6000, 12000, 30000, 60000)
    assert spec.sizes("generated", 4000) == (0, 40, 400, 800, 2000, 4000)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"colour": 1}, "colour: unknown key"),
        ({"strategies": ["mix", "blend"]}, "strategies: unknown strategy 'blend'"),
        ({"strategies": ["mix", "mix"]}, "strategies: expected distinct"),
        ({"real": [0, 120]}, "real: at most 100 percent"),
        ({"unit": "count", "generated": [10.5]}, "generated: counts must be whole numbers"),
        ({"real": []}, "real: expected a non-empty list"),
        ({"generated": [-1]}, "generated: must be >= 0"),
        ({"unit": "images"}, "unit: expected one of percent, count"),
        ({"epochs": 1}, "epochs: finetune needs at least 2"),
        ({"seeds": 0}, "seeds: must be >= 1"),
        ({"real": [0], "generated": [0]}, "only the meaningless 0 real / 0 generated cell"),
        ({"dataset": {"name": "mnist5k", "root": "/x"}}, "dataset.root: unknown key"),
    ],
)
def test_bad_spec_values_name_their_key(raw, message):
    with pytest.raises(SpecError, match=message):
        parse_augment_spec({"run": "r", "generator": "best", **raw})


def test_counts_are_checked_against_the_training_split():
    spec = parse_augment_spec(
        {
            "run": "r",
            "generator": "g",
            "unit": "count",
            "real": [0, 100, 5000],
            "generated": [0, 9000],
        }
    )
    assert spec.sizes("generated", 4000) == (0, 9000)  # generated images are not capped
    with pytest.raises(
        SpecError, match="5000 real images asked for, the training split holds 4000"
    ):
        spec.sizes("real", 4000)


def test_cells_skip_zero_by_zero_and_run_largest_first():
    spec = AugmentSpec(
        "r", "g", strategies=("mix", "source"), real=(0, 10, 50), generated=(0, 10), seeds=2
    )
    cells = plan_cells(spec, 1000)
    assert len(cells) == 2 * 2 * (3 * 2 - 1)
    assert Cell("mix", 0, 0, 0) not in cells and Cell("source", 500, 100, 1) in cells
    sizes = [c.n_real + c.n_generated for c in cells]
    assert sizes == sorted(sizes, reverse=True)


# --- pools and the job ----------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """The job sets one torch thread, as in an actor; the fixture restores the count."""


@pytest.fixture(scope="module")
def mnist():
    return load_dataset({"name": "mnist5k"})


def test_pool_prefix_does_not_depend_on_the_pool_size(tmp_path):
    model = load_generator(save_generator(tmp_path / "cdcgan"))
    judge_net = LeNet()  # an untrained judge: only where its labels go matters here
    small = draw_pool(model, judge_net, 700, seed=1)
    large = draw_pool(model, judge_net, POOL_BLOCK + 500, seed=1)
    np.testing.assert_array_equal(large.images[:700], small.images)
    np.testing.assert_array_equal(small.labels, np.arange(700) % 10)  # conditioning labels
    assert not np.array_equal(draw_pool(model, judge_net, 700, seed=2).images, small.images)
    unconditional = load_generator(save_generator(tmp_path / "dcgan", "dcgan"))
    pool = draw_pool(unconditional, judge_net, 50, seed=0)
    np.testing.assert_array_equal(pool.labels, pool.judge_labels)  # labelled by the judge


def test_filter_cell_drops_the_images_whose_label_the_judge_disputes(mnist):
    # A pool "generated" with every fourth label wrong; the judge's labels are the true ones.
    images, truth = mnist.test_images[:200], mnist.test_labels[:200]
    wrong = np.arange(200) % 4 == 0
    pool = SamplePool(images, np.where(wrong, (truth + 3) % 10, truth), truth)
    settings = RetrainSettings("g", "/ck", "condition", 1, 64, 1e-3, mnist.fingerprint)
    job = RetrainJob(mnist, {0: pool}, settings)
    [row] = job.run(Cell("filter", 100, 120, 0))
    assert row["n_generated_used"] == int((~wrong[:120]).sum()) == 90
    assert row["n_train"] == 100 + 90 and row["in_channels"] == 1
    [mix] = job.run(Cell("mix", 100, 120, 0))
    assert (mix["n_generated_used"], mix["n_train"]) == (120, 220)
    [source] = job.run(Cell("source", 100, 0, 0))
    assert source["in_channels"] == 2 and source["n_generated_used"] == 0
    assert 0 <= row["test_accuracy"] <= 1 and row["epochs"] == 1
    with pytest.raises(RuntimeError, match="no pool of 300 generated images"):
        job.run(Cell("mix", 100, 300, 0))


# --- pivot ----------------------------------------------------------------------------------


def test_pivot_averages_seeds_per_cell_and_leaves_gaps_empty():
    rows = [
        {
            "generator": "g",
            "strategy": "mix",
            "n_real": r,
            "n_generated": n,
            "seed": s,
            "test_accuracy": acc,
            "error": None,
        }
        for r, n, s, acc in [
            (0, 40, 0, 0.2),
            (0, 40, 1, 0.4),
            (400, 0, 0, 0.8),
            (400, 40, 0, 0.9),
            (400, 40, 1, math.nan),
        ]
    ]
    rows.append({**rows[0], "seed": 2, "test_accuracy": None, "error": "boom"})
    pivot = pivot_augment(pa.Table.from_pylist(rows)).to_pylist()
    assert pivot == [
        {
            "generator": "g",
            "strategy": "mix",
            "n_real": 0,
            "gen=0": None,
            "gen=40": pytest.approx(0.3),
            "seeds": 2,
        },
        {
            "generator": "g",
            "strategy": "mix",
            "n_real": 400,
            "gen=0": 0.8,
            "gen=40": 0.9,
            "seeds": 1,
        },
    ]


def test_example_specs_validate_and_the_mnist_one_is_the_reports_grid():
    examples = Path(__file__).resolve().parents[3] / "examples"
    for path in examples.rglob("*augment*.yaml"):
        load_augment_spec(path, {})
    assert load_augment_spec(examples / "augment-mnist.yaml", {}) == AugmentSpec(
        "cgan-mnist", "best"
    )
    assert load_augment_spec(None, {"run": "x", "generator": "best", "seeds": 1}).seeds == 1
