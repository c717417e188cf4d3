"""`ganorch metrics`, through the installed console script: dataset names, folders and .npz
files as inputs, the Inception extractor with weights given by path, and bad input of every kind
ending in one `error:` line with exit code 2."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from orchestrator.cli import app
from trainables.datasets import load_dataset

from ...conftest import run_cli, run_in_process


def metrics(*args: str, env: dict[str, str] | None = None):
    # One thread for torch and BLAS: on 2 shared cores, oversubscribed threads are what makes
    # judge training or Inception slow, not the work itself.
    env = {**os.environ, **(env or {}), "OMP_NUM_THREADS": "1"}
    result = run_cli("metrics", *args, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def value(result, name: str) -> float:
    assert result.returncode == 0, result.stderr
    values = dict(line.split() for line in result.stdout.splitlines())
    return float(values[name])


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """40 real test digits, uint8 (40, 1, 28, 28)."""
    return np.array(load_dataset({"name": "mnist5k"}).test_images[:40])


@pytest.fixture(scope="module")
def digit_files(digits, tmp_path_factory) -> dict[str, Path]:
    """The same 40 digits as a grey PNG folder, as RGB PNGs (how torchvision's save_image
    writes grey samples) and as an .npz of (N, H, W) uint8."""
    root = tmp_path_factory.mktemp("digits")
    grey, rgb = root / "grey", root / "rgb"
    grey.mkdir()
    (rgb / "nested").mkdir(parents=True)
    for index, image in enumerate(digits[:, 0]):
        Image.fromarray(image).save(grey / f"{index:03d}.png")
        Image.fromarray(np.repeat(image[..., None], 3, axis=2)).save(
            rgb / "nested" / f"{index:03d}.png"
        )
    np.savez(root / "digits.npz", images=digits[:, 0])
    return {"grey": grey, "rgb": rgb, "npz": root / "digits.npz"}


def test_fid_between_the_mnist5k_splits_is_small():
    result = metrics("fid", "mnist5k:train", "mnist5k:test")
    fid = value(result, "fid")
    assert math.isfinite(fid) and 0 < fid < 5, result.stdout
    assert "LeNet judge of mnist5k" in result.stderr


def test_prdc_k_widens_precision_and_recall_balls_only():
    """Balls of the k-th neighbour grow with k, so precision and recall cannot fall from k = 1
    to k = 3 to k = 10; density and coverage keep their own k = 5 whatever --k says."""
    values = {}
    for k in (1, 3, 10):
        result = run_in_process(
            "metrics", "prdc", "mnist5k:train", "mnist5k:test", "--n", "300", "--k", str(k)
        )
        assert result.returncode == 0, result.stderr
        values[k] = dict(
            (n, float(v)) for n, v in (line.split() for line in result.stdout.splitlines())
        )
    for name in ("precision", "recall"):
        assert values[1][name] <= values[3][name] <= values[10][name], name
    assert values[1]["precision"] < values[10]["precision"]
    for name in ("density", "coverage"):
        assert values[1][name] == values[3][name] == values[10][name], name
    refused = run_in_process("metrics", "prdc", "mnist5k:train", "mnist5k:test", "--k", "0")
    assert refused.returncode == 2 and refused.stderr.startswith("error: ")
    assert "--k" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


def test_folder_rgb_folder_and_npz_of_the_same_images_give_the_same_fid(digit_files):
    # The same images in the same order through either loader: the same features, bit for bit
    # (an .npz read in a shuffled order once moved FID in its sixth digit).
    grey, npz = (
        value(metrics("fid", "mnist5k:train", str(digit_files[kind])), "fid")
        for kind in ("grey", "npz")
    )
    assert grey > 0 and npz == grey
    # Neither set is a dataset: the judge is the one --judge names. RGB files of grey digits
    # load as the same grey images, so the distance is zero.
    same = metrics("fid", str(digit_files["rgb"]), str(digit_files["npz"]), "--judge", "mnist5k")
    assert value(same, "fid") == pytest.approx(0.0, abs=1e-6)


def test_n_caps_both_sets_with_a_seeded_subset():
    # "mnist5k" means its test split; --format json prints one object.
    args = ("fid", "mnist5k:train", "mnist5k", "--n", "300", "--format", "json")
    first, other = (metrics(*args, "--seed", seed) for seed in ("1", "2"))
    assert json.loads(first.stdout).keys() == {"fid"}
    assert json.loads(first.stdout) != json.loads(other.stdout)
    assert "mnist5k (300 images 1x28x28)" in first.stderr


def random_inception_weights(folder: Path) -> Path:
    """A randomly initialised (seed 0) FID InceptionV3 saved in ``folder``."""
    import torch

    from evaluators.judges.inception import FIDInception

    torch.manual_seed(0)
    weights = folder / "inception.pth"
    torch.save(FIDInception().state_dict(), weights)
    return weights


def colour_folder(folder: Path, n: int) -> Path:
    """``folder``/colour holding ``n`` random RGB PNGs."""
    colour = folder / "colour"
    colour.mkdir()
    for index, image in enumerate(colour_images(n)):
        Image.fromarray(image).save(colour / f"{index}.png")
    return colour


def test_fid_with_inception_weights_given_by_path(tmp_path, digits):
    weights, colour = random_inception_weights(tmp_path), colour_folder(tmp_path, 6)
    np.savez(tmp_path / "rgb.npz", images=np.repeat(digits[:6], 3, axis=1))
    result = metrics(
        "fid",
        str(colour),
        str(tmp_path / "rgb.npz"),
        "--extractor",
        "inception",
        "--inception-weights",
        str(weights),
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    fid = json.loads(result.stdout)["fid"]
    assert math.isfinite(fid) and fid > 0
    assert "inception pool3" in result.stderr


def colour_images(n: int) -> np.ndarray:
    """n random RGB images (n, 28, 28, 3)."""
    return np.random.default_rng(0).integers(0, 256, (n, 28, 28, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, digit_files) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    broken = root / "broken"
    broken.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(broken / "ok.png")
    (broken / "bad.png").write_bytes(b"not a png")
    mixed = root / "mixed"
    mixed.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(mixed / "a.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(mixed / "b.png")
    np.savez(root / "small.npz", images=np.zeros((16, 16, 16), np.uint8))
    np.savez(root / "one.npz", images=np.zeros((1, 28, 28), np.uint8))
    (root / "text.npz").write_text("hello")
    colour = root / "colour"
    colour.mkdir()
    for index, image in enumerate(colour_images(3)):
        Image.fromarray(image).save(colour / f"{index}.png")
    return {
        "colour": colour,
        "broken": broken,
        "mixed": mixed,
        "small": root / "small.npz",
        "one": root / "one.npz",
        "text": root / "text.npz",
        **digit_files,
    }


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("fid", "{missing}", "mnist5k:test"), ["no such file or folder"]),
        (("fid", "{broken}", "mnist5k:test"), ["bad.png", "unreadable image"]),
        (("fid", "{mixed}", "mnist5k:test"), ["images differ in size"]),
        (("fid", "{text}", "mnist5k:test"), ["not a .npz archive"]),
        (("fid", "nosuchset:test", "mnist5k:test"), ["'nosuchset' is not a dataset", "mnist5k"]),
        (("fid", "mnist5k:valid", "mnist5k:test"), ["unknown split 'valid'"]),
        (("fid", "mnist", "mnist5k:test"), ["needs options"]),
        (("fid", "mnist5k:test", "{small}"), ["image shapes differ", "1x28x28", "1x16x16"]),
        (
            ("fid", "{colour}", "{npz}", "--extractor", "inception"),
            ["image shapes differ", "3x28x28", "1x28x28"],
        ),
        (("fid", "mnist5k:test", "{one}"), ["fid needs at least 2 images", "got 1"]),
        (("is", "mnist5k:test", "{one}"), ["is needs at least 10 images"]),
        (("fid", "{grey}", "{npz}"), ["needs a judge", "--judge DATASET"]),
        (("fid", "{grey}", "{npz}", "--judge", "nosuchset"), ["'nosuchset' is not a dataset"]),
        (
            ("fid", "mnist5k:train", "mnist5k:test", "--extractor", "inception"),
            ["Inception weights not found", "{hub}", "never downloads"],
        ),
        (("fid", "mnist5k:train", "mnist5k:test", "--extractor", "vgg"), ["unknown extractor"]),
        (("fidd", "mnist5k:train", "mnist5k:test"), ["unknown metric 'fidd'", "fid, kid, is"]),
        (("fid", "mnist5k:train", "mnist5k:test", "--format", "xml"), ["unknown format"]),
        (("fid", "mnist5k:train", "mnist5k:test", "--n", "0"), ["--n"]),
    ],
    ids=lambda item: "-".join(item) if isinstance(item, tuple) else None,
)
def test_bad_input_is_one_line_and_exit_2(args, fragments, bad_inputs, tmp_path, monkeypatch):
    hub = tmp_path / "torch-home" / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth"
    names = {
        **{key: str(path) for key, path in bad_inputs.items()},
        "missing": str(tmp_path / "absent" / "x.npz"),
        "hub": str(hub),
    }
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    # In process: every case ends in argument or input checks, before any measure runs.
    result = run_in_process("metrics", *(arg.format(**names) for arg in args))
    assert_one_line_error(result, *(fragment.format(**names) for fragment in fragments))


def test_label_accuracy_is_not_offered_and_is_refused_in_one_line():
    # Refused before any image is read, so in process; image sets carry no conditioning labels.
    runner = CliRunner()
    shown = runner.invoke(app, ["metrics", "--help"], prog_name="ganorch").output
    assert "color_kl, confidence, nn, iqa" in " ".join(shown.split())
    assert "label_accuracy" not in shown
    result = runner.invoke(app, ["metrics", "label_accuracy", "mnist5k:train", "mnist5k:test"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: label_accuracy needs the conditioning")
    assert "ganorch eval run" in lines[0]
