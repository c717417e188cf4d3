"""`ganorch eval run` on a real local Ray: untrained tiny checkpoints of two trials, .npz
sources and the reference row fill the long-format eval table and figures reach artifacts/ and
TensorBoard; reruns skip finished shards; a killed worker's shard runs once."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from orchestrator.evaluate.job import EvalJob
from orchestrator.evaluate.measures import METRICS
from orchestrator.evaluate.plan import (
    REFERENCE,
    EvalChunk,
    EvalGenerator,
    EvalSettings,
    plan_shards,
)
from orchestrator.image_sets import seeded_subset
from orchestrator.judges import judge_of
from orchestrator.runs import RunDir
from orchestrator.shards import run_shards
from orchestrator.tables import Table
from tests.conftest import run_cli
from trainables.datasets import load_dataset
from trainables.families import family_class
from trainables.trainable import STATE_FILE

ALL = "fid,kid,is,prdc,label_accuracy,c2st,sharpness,color_kl,confidence,nn,iqa"


def make_run(root: Path) -> RunDir:
    """Run ``r`` on mnist5k with two untrained trials (dcgan, cdcgan) and two .npz sources:
    ``noise`` (300 images) and ``few`` (5 images: too few for c2st and is)."""
    run = RunDir.of(str(root), "r")
    run.root.mkdir(parents=True)
    run.spec_file.write_text(yaml.safe_dump({"dataset": {"name": "mnist5k"}}))
    rows = []
    for i, family in enumerate(["dcgan", "cdcgan"]):
        folder = root / f"checkpoint_{i}"
        folder.mkdir()
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
        rows.append(
            {
                "trial_id": f"t{i}",
                "family": family,
                "best_fid": 10.0 + i,  # t0 ranks first by fid...
                "best_label_accuracy": 0.2 + i,  # ...t1 by label accuracy (larger is better)
                "checkpoint": str(folder),
            }
        )
    Table(run.tables, "trials").append(rows)
    rng = np.random.default_rng(0)
    for name, count in (("noise", 300), ("few", 5)):
        np.savez(
            root / f"{name}.npz", images=rng.integers(0, 256, (count, 1, 28, 28), dtype=np.uint8)
        )
    return run


def eval_cli(
    run: RunDir, address: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return run_cli(
        "eval",
        "run",
        "r",
        "--runs-dir",
        str(run.root.parent),
        "--address",
        address,
        "--n",
        "100",
        "--actors",
        "2",
        *args,
        env=env,
    )


@pytest.mark.slow
def test_chunked_measures_equal_the_measures_on_all_samples_at_once(ray_address, tmp_path):
    """The chunks are rows of the generator's one draw, so cutting feature extraction into
    chunks (on two actors) gives the values of the whole set, up to float summation order."""
    run = make_run(tmp_path)
    rng = np.random.default_rng(1)
    sources = {"noise": rng.integers(0, 256, (700, 1, 28, 28), dtype=np.uint8)}

    data = load_dataset({"name": "mnist5k"})
    judge_of(data)  # as `ganorch eval` does: trained once here, not in every actor
    generators = [
        EvalGenerator("t1", "trial", str(tmp_path / "checkpoint_1"), True),
        EvalGenerator("noise", "source", available=700),
        EvalGenerator(REFERENCE, "reference", True, available=4000),
    ]
    metrics = ["fid", "kid", "is", "label_accuracy"]
    values = {}
    for chunk in (500, 10_000):
        settings = EvalSettings(n=1000, chunk=chunk)
        shards = plan_shards(generators, metrics, 1, settings, figures=False)
        assert any(s.intermediate for s in shards) == (chunk == 500)
        table = Table(str(run.root / f"tables-{chunk}"), "eval")
        report = run_shards(
            "eval",
            shards,
            EvalJob,
            {"data": data, "sources": sources, "settings": settings},
            table,
            actors=2,
        )
        assert not report.failures
        values[chunk] = {
            (r["generator"], r["metric"]): (r["value"], r["n_samples"])
            for r in table.read().to_pylist()
        }
    assert values[500].keys() == values[10_000].keys()
    assert {key[1] for key in values[500]} >= {"fid", "kid_mean", "is_mean", "label_accuracy"}
    for key, (value, n) in values[10_000].items():
        assert n == {"noise": 700}.get(key[0], 1000)
        assert values[500][key][1] == n
        # nan_ok: KID's std is NaN (no spread) where every subset is the whole set
        assert values[500][key][0] == pytest.approx(value, rel=1e-6, abs=1e-9, nan_ok=True), key


def test_a_chunk_draws_those_rows_of_the_generators_draw(tmp_path):
    make_run(tmp_path)

    data = load_dataset({"name": "mnist5k"})
    job = EvalJob(data, {}, EvalSettings(n=1500, chunk=500))
    for generator in (
        EvalGenerator("t1", "trial", str(tmp_path / "checkpoint_1"), True),
        EvalGenerator(REFERENCE, "reference", True, available=4000),
    ):
        whole, labels = job.samples(generator, 3)
        chunk = job.run(EvalChunk(generator, 3, 1000, 1500, "lenet", True, True))
        assert chunk["count"] == 500 and whole.shape[0] == 1500
        assert np.array_equal(chunk["labels"], labels[1000:])
        context = job.context("lenet", 3)
        np.testing.assert_allclose(
            chunk["features"], context.features(whole)[1000:], rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(
            chunk["probabilities"], context.probabilities(whole)[1000:], rtol=1e-5, atol=1e-7
        )


@pytest.mark.slow
def test_eval_fills_every_row_reports_failures_and_reruns_only_them(ray_address, tmp_path):
    run = make_run(tmp_path)
    # A cache of its own (the session's judges copied in), so that the feature files counted
    # below are this eval's, whichever tests ran before.
    cache = tmp_path / "cache"
    judge_of(load_dataset({"name": "mnist5k"}))  # into the session's cache, if not yet there
    shutil.copytree(Path(os.environ["GANORCH_CACHE"]) / "judges", cache / "judges")
    env = {**os.environ, "GANORCH_CACHE": str(cache)}
    first = eval_cli(
        run,
        ray_address,
        "--source",
        f"noise={tmp_path / 'noise.npz'}",
        "--source",
        f"few={tmp_path / 'few.npz'}",
        env=env,
    )
    assert first.returncode == 1, first.stderr
    failed = {"few|c2st|pixels|0|n100", "few|is|lenet|0|n100"}
    for shard in failed:
        assert f"failed: {shard}: " in first.stderr
    assert "needs at least 8 images in B (generated), got 5" in first.stderr
    assert "generator" in first.stdout and "reference" in first.stdout  # the pivot

    rows = Table(run.tables, "eval").read().to_pylist()
    rows = [r for r in rows if r["metric"] != "figures"]
    values = {(r["generator"], r["metric"]) for r in rows if r["error"] is None}
    expected_values = {
        name
        for metric in ALL.split(",")
        if metric != "label_accuracy"
        for name in _value_names(metric)
    }
    for generator in ("t0", "t1", "noise", "reference"):
        assert {(generator, name) for name in expected_values} <= values
    assert ("t1", "label_accuracy") in values and ("reference", "label_accuracy") in values
    assert ("t0", "label_accuracy") not in values  # dcgan is unconditional
    assert ("few", "fid") in values and ("few", "c2st_accuracy") not in values
    errors = {r["shard"]: r for r in rows if r["error"] is not None}
    assert set(errors) == failed and errors["few|c2st|pixels|0|n100"]["generator"] == "few"
    reference = {r["metric"]: r for r in rows if r["generator"] == "reference"}
    assert reference["label_accuracy"]["value"] > 0.8  # the judge on real training digits
    # The judge is surer of real digits than of an untrained generator's noise.
    assert reference["confidence_real"]["value"] > 0.8
    t1 = {r["metric"]: r["value"] for r in rows if r["generator"] == "t1"}
    assert t1["confidence_generated"] < t1["confidence_real"]
    assert reference["fid"]["value"] < next(
        r["value"] for r in rows if (r["generator"], r["metric"]) == ("t0", "fid")
    )
    assert all(
        r["n_samples"] == 100 and r["dataset_fingerprint"]
        for r in rows
        if r["error"] is None and r["generator"] != "few"
    )
    # n 100 is below KID's subset size: every subset is the whole set, one estimate with no
    # spread to tell, so no interval.
    kid_row = reference["kid_mean"]
    assert kid_row["ci_low"] is None and kid_row["ci_high"] is None
    assert math.isnan(reference["kid_std"]["value"])
    features = list((cache / "eval-features").glob("*-lenet-n100-*"))
    assert len(features) == 1  # the real subset's features, computed once for every actor
    # Every value of one generator is the measure computed directly on the same samples.
    noise = {r["metric"]: r["value"] for r in rows if r["generator"] == "noise"}
    direct = direct_values(np.load(tmp_path / "noise.npz")["images"], seed=0, n=100)
    assert set(noise) == set(direct)
    for name, value in direct.items():
        assert noise[name] == pytest.approx(value, rel=1e-6, abs=1e-12, nan_ok=True), name
    # Training images scored against the training split sit on it: memorisation ratio 0.
    assert reference["nn_memorisation_ratio"]["value"] == 0.0

    # A finished shard's fragment cut short meanwhile is set aside and the shard run again.
    table = Table(run.tables, "eval")
    damaged = next(
        Path(f)
        for f in table.fragments()
        if pq.read_table(f).column("shard")[0].as_py() == "t0|fid|lenet|0|n100"
    )
    damaged.write_bytes(damaged.read_bytes()[:-20])
    fragments = len(table.fragments())
    again = eval_cli(
        run,
        ray_address,
        "--source",
        f"noise={tmp_path / 'noise.npz'}",
        "--source",
        f"few={tmp_path / 'few.npz'}",
        env=env,
    )
    assert again.returncode == 1
    assert "shards 57/57 · failed 2 · skipped 54 (already done)" in again.stderr
    assert f"warning: eval table: fragment {damaged} cannot be read" in again.stderr
    # The failed two and the set-aside one ran again; the damaged fragment left the table.
    assert len(table.fragments()) == fragments - 1 + 3
    assert (damaged.parent / "_quarantine" / damaged.name).is_file()
    assert any(r["shard"] == "t0|fid|lenet|0|n100" for r in table.read().to_pylist())
    shown = run_cli(
        "results", "show", "r", "--table", "eval", "--pivot", "--runs-dir", str(tmp_path)
    )
    assert shown.returncode == 0, shown.stderr
    few = next(line for line in shown.stdout.splitlines() if line.startswith("few "))
    assert few.rstrip().endswith(("c2st, is", "is, c2st"))  # the failed column

    assert_figures(run)

    bad = run_cli("eval", "run", "r", "--runs-dir", str(tmp_path), "--metrics", "fid,bogus")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --metrics: unknown metric")


@pytest.mark.slow
def test_eval_options_pick_the_trials_data_extractor_and_chunks(ray_address, tmp_path):
    """--top/--by (label accuracy ranks largest first), --trials, --dataset for a run whose spec
    names none, --chunk below n and --extractor inception: the rows are those of the generators
    picked, and the reference's FID is the one computed directly on the same subsets."""
    from evaluators.fid import fid_from_features
    from evaluators.judges.inception import inception_features, load_fid_inception
    from evaluators.judges.lenet import judge_features
    from tests.orchestrator.evaluate.test_metrics_cli import random_inception_weights

    run = make_run(tmp_path)
    run.spec_file.write_text(yaml.safe_dump({"family": "dcgan"}))  # no dataset
    data = load_dataset({"name": "mnist5k"})

    def rows_of(*args: str) -> list[dict]:
        result = run_cli(
            "eval",
            "run",
            "r",
            "--runs-dir",
            str(tmp_path),
            "--address",
            ray_address,
            "--metrics",
            "fid",
            "--no-figures",
            "--force",
            *args,
        )
        assert result.returncode == 0, result.stderr
        return [r for r in Table(run.tables, "eval").read().to_pylist() if r["metric"] == "fid"]

    def direct_fid(features, n: int) -> float:
        real, train = (seeded_subset(x, n, 0)[0] for x in (data.test_images, data.train_images))
        return fid_from_features(features(real), features(train))

    refused = run_cli("eval", "run", "r", "--runs-dir", str(tmp_path), "--address", ray_address)
    assert refused.returncode == 2
    assert refused.stderr.endswith(
        "has no spec.yaml naming its dataset: name the real data with "
        "--dataset (e.g. --dataset mnist5k)\n"
    )

    weights = random_inception_weights(tmp_path)
    picked = rows_of(
        "--top",
        "1",
        "--by",
        "label_accuracy",
        "--dataset",
        "mnist5k",
        "--n",
        "4",
        "--actors",
        "1",  # one Inception load
        "--extractor",
        "inception",
        "--inception-weights",
        str(weights),
    )
    assert {(r["generator"], r["extractor"], r["n_samples"]) for r in picked} == {
        ("t1", "inception", 4),
        ("reference", "inception", 4),
    }
    assert {r["dataset_fingerprint"] for r in picked} == {data.fingerprint}
    inception = load_fid_inception(str(weights))
    reference = next(r["value"] for r in picked if r["generator"] == "reference")
    assert reference == pytest.approx(
        direct_fid(lambda x: inception_features(inception, x), 4), rel=1e-6
    )

    chunked = rows_of("--trials", "t0", "--dataset", "mnist5k", "--n", "600", "--chunk", "500")
    by_generator = {r["generator"]: r for r in chunked if r["extractor"] == "lenet"}
    assert set(by_generator) == {"t0", "reference"}
    assert all(r["n_samples"] == 600 for r in by_generator.values())
    lenet = judge_of(data).build("cpu")
    assert by_generator["reference"]["value"] == pytest.approx(
        direct_fid(lambda x: judge_features(lenet, x), 600), rel=1e-6
    )


def direct_values(source: np.ndarray, seed: int, n: int) -> dict[str, float]:
    """What eval must report for an .npz source, straight from ``evaluators``: the source's and
    the test split's seeded subsets of ``n`` (numpy's choice without replacement, sorted), the
    LeNet judge's features and softmax, each measure with the eval's seed."""
    from evaluators import image_quality
    from evaluators.c2st import c2st
    from evaluators.classifier_scores import inception_score
    from evaluators.fid import fid_from_features
    from evaluators.images import as_float_images
    from evaluators.judge_embedding import confidence_summary
    from evaluators.judges.lenet import judge_features, judge_predictions
    from evaluators.kid import kid
    from evaluators.neighbours import nearest_neighbours
    from evaluators.pixel_stats import color_kl, sharpness
    from evaluators.prdc import prdc

    data = load_dataset({"name": "mnist5k"})
    lenet = judge_of(data).build("cpu")

    def subset(images: np.ndarray) -> np.ndarray:
        rows = np.random.default_rng(seed).choice(len(images), n, replace=False)
        return images[np.sort(rows)]

    generated, real = subset(source), subset(data.test_images)
    f_real, f_gen = judge_features(lenet, real), judge_features(lenet, generated)
    p_real, p_gen = judge_predictions(lenet, real), judge_predictions(lenet, generated)
    values = {"fid": fid_from_features(f_real, f_gen)}
    kid_result = kid(f_real, f_gen, seed=seed)
    values |= {"kid_mean": kid_result.mean, "kid_std": kid_result.std}
    order = np.random.default_rng(seed).permutation(n)
    values["is_mean"], values["is_std"] = inception_score(p_gen[order])
    pr = prdc(f_real, f_gen, k_precision_recall=3)
    values |= {name: getattr(pr, name) for name in ("precision", "recall", "density", "coverage")}
    test = c2st(real, generated, seed=seed)
    values |= {
        "c2st_accuracy": test.accuracy,
        "c2st_accuracy_real": test.accuracy_real,
        "c2st_accuracy_generated": test.accuracy_generated,
        "c2st_p_value": test.p_value,
        "c2st_n_test": test.n_test,
    }
    for role, images, probabilities in (("real", real, p_real), ("generated", generated, p_gen)):
        result = sharpness(images)
        values[f"sharpness_{role}"], values[f"sharpness_{role}_std"] = result.mean, result.std
        mean, top = confidence_summary(probabilities)
        values[f"confidence_{role}"], values[f"confidence_top_{role}"] = mean, top
    values |= {f"color_kl_{c}": v for c, v in color_kl(real, generated).items()}
    memory = nearest_neighbours(generated, data.train_images, real)
    values |= {
        "nn_duplicate_rate": memory.duplicate_rate,
        "nn_memorisation_ratio": memory.memorisation_ratio,
        "nn_median_generated_to_train": memory.median_generated_to_train,
    }
    nearest = nearest_neighbours(generated, real, real, k=1).nearest_train[:, 0]
    reference = as_float_images(real)[torch.as_tensor(nearest)].expand(-1, 3, -1, -1)
    distorted = as_float_images(generated).expand(-1, 3, -1, -1)
    for name in ("l1", "gmsm", "chroma", "gmsd"):
        distance = {
            "l1": image_quality.l1,
            "gmsm": image_quality.gmsm_distance,
            "chroma": image_quality.chroma_distance,
            "gmsd": image_quality.gmsd,
        }[name]
        per_image = distance(reference, distorted, reduction="none").double().numpy()
        values[f"iqa_{name}"] = per_image.mean()
        values[f"iqa_{name}_sem"] = per_image.std() / np.sqrt(n)
    return {name: float(value) for name, value in values.items()}


def _value_names(metric: str) -> set[str]:
    names = {
        "fid": {"fid"},
        "kid": {"kid_mean", "kid_std"},
        "is": {"is_mean", "is_std"},
        "c2st": {"c2st_accuracy", "c2st_p_value", "c2st_n_test"},
        "sharpness": {"sharpness_real", "sharpness_generated"},
        "color_kl": {"color_kl_grey"},
        "confidence": {"confidence_real", "confidence_top_generated"},
        "prdc": {"precision", "recall", "density", "coverage"},
        "nn": {"nn_duplicate_rate", "nn_memorisation_ratio"},
        "iqa": {"iqa_l1", "iqa_gmsm", "iqa_chroma", "iqa_gmsd", "iqa_l1_sem"},
    }
    assert metric in METRICS
    return names[metric]


def assert_figures(run: RunDir) -> None:
    """Sheets of a trial and of the reference as PNGs and as TensorBoard images."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for generator, sheets in (
        ("t1", {"samples", "neighbours", "c2st_smoothgrad", "judge_embedding", "interpolation"}),
        ("reference", {"samples", "neighbours", "c2st_smoothgrad", "judge_embedding"}),
    ):
        assert {p.stem for p in (run.artifacts / "eval" / generator).glob("*.png")} == sheets
        events = EventAccumulator(str(run.tb / "eval" / generator))
        events.Reload()
        assert set(events.Tags()["images"]) == {f"eval/{name}" for name in sheets}
        image = events.Images("eval/samples")[0]
        assert image.width == 8 * 30 + 2 and image.height == 8 * 30 + 2
