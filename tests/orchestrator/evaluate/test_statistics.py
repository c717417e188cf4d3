"""`ganorch metrics stats SET -o FILE` and statistics files (ganorch's and pytorch-fid's layout)
as either side of `ganorch metrics fid`: the same FID as from the images, and one-line errors
for files that cannot be compared."""

from __future__ import annotations

import json

import numpy as np
import pytest

from orchestrator.stats_files import FeatureStatistics, read_statistics, write_statistics

from ...conftest import run_cli, run_in_process
from .test_metrics_cli import assert_one_line_error, colour_folder, random_inception_weights


def pytorch_fid_file(path, mu: np.ndarray, sigma: np.ndarray):
    """A file as pytorch-fid's ``--save-stats`` writes it: ``np.savez_compressed(path, mu=m,
    sigma=s)`` and nothing else."""
    np.savez_compressed(path, mu=mu, sigma=sigma)
    return path


@pytest.fixture(scope="module")
def train_stats(tmp_path_factory):
    """mnist5k's training split written by the installed console script."""
    path = tmp_path_factory.mktemp("stats") / "train.npz"
    result = run_cli("metrics", "stats", "mnist5k:train", "-o", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["n"] == 4000
    assert f"-> {path}" in result.stderr
    return path


def fid(*args: str) -> float:
    """FID at full precision (JSON, not the table's six digits)."""
    result = run_in_process("metrics", "fid", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["fid"]


def test_stats_file_records_the_features_and_where_they_came_from(train_stats):
    statistics = read_statistics(train_stats, dimension=84, extractor="lenet")
    assert statistics.n == 4000 and statistics.extractor == "lenet"
    assert len(statistics.weights_hash) == 64
    assert statistics.dataset_fingerprint.endswith(":train")
    assert np.allclose(statistics.sigma, statistics.sigma.T)
    assert np.linalg.eigvalsh(statistics.sigma).min() > -1e-9


def test_a_stats_file_on_either_side_gives_the_fid_of_the_images(train_stats, tmp_path):
    from_images = fid("mnist5k:train", "mnist5k:test")
    assert from_images > 0
    assert fid(str(train_stats), "mnist5k:test") == pytest.approx(from_images, rel=1e-9)
    assert fid("mnist5k:test", str(train_stats)) == pytest.approx(from_images, rel=1e-9)
    # Both sides files: ganorch's for A, pytorch-fid's layout (mu and sigma only) for B.
    written = tmp_path / "test.npz"
    assert run_in_process("metrics", "stats", "mnist5k:test", "-o", str(written)).returncode == 0
    test_split = read_statistics(written)
    theirs = pytorch_fid_file(tmp_path / "theirs.npz", test_split.mu, test_split.sigma)
    assert fid(str(train_stats), str(theirs)) == pytest.approx(from_images, rel=1e-9)
    assert fid(str(theirs), str(train_stats)) == pytest.approx(from_images, rel=1e-9)


def test_inception_stats_of_fewer_images_than_dimensions_give_the_same_fid(tmp_path):
    """Six images against 2,048-d features: the file's side and the images' side both take the
    low-rank routes, which must agree with the direct images-to-images value."""
    weights, folder = random_inception_weights(tmp_path), colour_folder(tmp_path, 6)
    other = np.random.default_rng(1).integers(0, 256, (7, 3, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "other.npz", images=other)
    inception = ("--extractor", "inception", "--inception-weights", str(weights))
    stats = tmp_path / "colour.npz"
    written = run_in_process("metrics", "stats", str(folder), "-o", str(stats), *inception)
    assert written.returncode == 0, written.stderr
    assert read_statistics(stats).extractor == "inception"
    direct = fid(str(folder), str(tmp_path / "other.npz"), *inception)
    assert direct > 0
    # Two routes (singular values of a cross product; square roots of eigenvalues): a rank
    # deficiency's round-off eigenvalue eps * lambda_max adds up to sqrt(eps * lambda_max) to
    # the second, so they agree to ~1e-8, not to machine precision (measured 2.6e-9 relative).
    assert fid(str(stats), str(tmp_path / "other.npz"), *inception) == pytest.approx(
        direct, rel=1e-7
    )
    # The same file against the LeNet extractor is refused: it records inception features.
    refused = run_in_process("metrics", "fid", str(stats), "mnist5k:test")
    assert_one_line_error(refused, "statistics of inception features", "--extractor inception")


def lenet_file(path, dimension: int = 84, **metadata) -> str:
    rng = np.random.default_rng(0)
    features = rng.standard_normal((dimension + 5, dimension))
    write_statistics(
        path, FeatureStatistics(features.mean(0), np.cov(features, rowvar=False), **metadata)
    )
    return str(path)


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("dimension", ["statistics of 10-d features", "lenet extractor gives 84-d"]),
        ("weights", ["other lenet weights than the ones in use", "ganorch metrics stats"]),
        ("not_fid", ["a statistics file (mu, sigma) serves fid only, not kid"]),
        ("stats_with_b", ["stats takes one image set"]),
        ("stats_without_o", ["give it with -o FILE"]),
        ("o_without_stats", ["-o/--output is for stats"]),
        ("o_in_missing_folder", ["does not exist"]),
        ("o_not_npz", ["ends in .npz"]),
        ("stats_of_stats", ["already a statistics file"]),
        ("fid_without_b", ["fid scores B against A"]),
    ],
)
def test_statistics_files_that_cannot_be_used_are_one_line_errors(case, fragments, tmp_path):
    pytorch_10d = str(pytorch_fid_file(tmp_path / "10d.npz", np.zeros(10), np.eye(10)))
    other_weights = lenet_file(tmp_path / "w.npz", extractor="lenet", weights_hash="0" * 64)
    plain = lenet_file(tmp_path / "plain.npz")
    out = str(tmp_path / "out.npz")
    args = {
        "dimension": ("fid", pytorch_10d, "mnist5k:test"),
        "weights": ("fid", other_weights, "mnist5k:test"),
        "not_fid": ("kid", plain, "mnist5k:test"),
        "stats_with_b": ("stats", "mnist5k:train", "mnist5k:test", "-o", out),
        "stats_without_o": ("stats", "mnist5k:train"),
        "o_without_stats": ("fid", "mnist5k:train", "mnist5k:test", "-o", out),
        "o_in_missing_folder": ("stats", "mnist5k:train", "-o", str(tmp_path / "no" / "s.npz")),
        "o_not_npz": ("stats", "mnist5k:train", "-o", str(tmp_path / "s.txt")),
        "stats_of_stats": ("stats", plain, "-o", out),
        "fid_without_b": ("fid", "mnist5k:train"),
    }[case]
    assert_one_line_error(run_in_process("metrics", *args), *fragments)
    assert not (tmp_path / "out.npz").exists()
