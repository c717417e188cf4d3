"""Statistics files: pytorch-fid's mu/sigma layout both ways, ganorch metadata, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from evaluators.fid import feature_statistics, fid_from_features, frechet_distance
from orchestrator.stats_files import (
    FeatureStatistics,
    file_sha256,
    read_statistics,
    write_statistics,
)


def statistics_of(features: np.ndarray, **metadata) -> FeatureStatistics:
    return FeatureStatistics(*feature_statistics(features), **metadata)


def test_round_trip_keeps_arrays_exactly_and_metadata(tmp_path):
    features = np.random.default_rng(0).standard_normal((50, 6))
    written = statistics_of(
        features, extractor="lenet", weights_hash="abc123", n=50, dataset_fingerprint="mnist5k-0f3a"
    )
    path = write_statistics(tmp_path / "stats.npz", written)
    read = read_statistics(path, dimension=6, extractor="lenet")
    np.testing.assert_array_equal(read.mu, written.mu)
    np.testing.assert_array_equal(read.sigma, written.sigma)
    assert read.mu.dtype == read.sigma.dtype == np.float64
    assert (read.extractor, read.weights_hash, read.n, read.dataset_fingerprint) == (
        "lenet",
        "abc123",
        50,
        "mnist5k-0f3a",
    )
    assert read.dimension == 6


def test_a_written_file_reads_the_way_pytorch_fid_reads_it(tmp_path):
    """pytorch-fid: ``with np.load(path) as f: m, s = f['mu'][:], f['sigma'][:]``; the extra
    keys are 0-d arrays that need no pickle."""
    features = np.random.default_rng(1).standard_normal((40, 5))
    path = write_statistics(tmp_path / "ref.npz", statistics_of(features, extractor="lenet"))
    with np.load(path, allow_pickle=False) as f:
        mu, sigma = f["mu"][:], f["sigma"][:]
        assert {"mu", "sigma", "extractor"} <= set(f.files)
    assert mu.dtype == sigma.dtype == np.float64
    expected_mu, expected_sigma = feature_statistics(features)
    np.testing.assert_array_equal(mu, expected_mu)
    np.testing.assert_array_equal(sigma, expected_sigma)


def test_a_pytorch_fid_file_reads_without_metadata(tmp_path):
    """pytorch-fid's --save-stats: np.savez_compressed(path, mu=mu, sigma=sigma), mu float32
    (the mean of float32 activations), sigma float64 (np.cov)."""
    rng = np.random.default_rng(2)
    real, generated = rng.standard_normal((60, 4)), rng.standard_normal((60, 4)) + 1.0
    mu, sigma = real.astype(np.float32).mean(axis=0), np.cov(real, rowvar=False)
    np.savez_compressed(tmp_path / "pytorch_fid.npz", mu=mu, sigma=sigma)
    read = read_statistics(tmp_path / "pytorch_fid.npz", dimension=4, extractor="inception")
    assert (read.extractor, read.weights_hash, read.n, read.dataset_fingerprint) == (
        None,
        None,
        None,
        None,
    )
    assert read.mu.dtype == np.float64
    # as either side of FID: the statistics stand in for the features they came from
    value = frechet_distance(read.mu, read.sigma, *feature_statistics(generated))
    assert value == pytest.approx(fid_from_features(real, generated), rel=1e-6)


def test_dimension_mismatch_is_one_clear_error(tmp_path):
    path = write_statistics(
        tmp_path / "lenet.npz", statistics_of(np.random.default_rng(3).standard_normal((90, 84)))
    )
    with pytest.raises(
        ValueError,
        match=r"^\S*lenet.npz: statistics of 84-d features, but the "
        r"inception extractor gives 2048-d features$",
    ):
        read_statistics(path, dimension=2048, extractor="inception")


def test_a_file_recording_another_extractor_is_refused(tmp_path):
    path = write_statistics(tmp_path / "s.npz", statistics_of(np.eye(3), extractor="lenet"))
    with pytest.raises(ValueError, match="statistics of lenet features.*--extractor lenet"):
        read_statistics(path, dimension=3, extractor="inception")


def test_writing_replaces_a_file_whole_and_keeps_the_name(tmp_path):
    target = tmp_path / "stats"  # no suffix: numpy must not append .npz
    write_statistics(target, statistics_of(np.eye(3)))
    write_statistics(target, statistics_of(np.eye(3) * 2.0, n=3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats"]
    assert read_statistics(target).n == 3


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"mu": np.zeros(3)}, "no sigma array"),
        ({"mean": np.zeros(3), "cov": np.eye(3)}, "no mu or sigma array"),
        ({"mu": np.zeros(3), "sigma": np.eye(4)}, r"shape \(D,\) and sigma \(D, D\)"),
        ({"mu": np.zeros((3, 1)), "sigma": np.eye(3)}, "shape"),
        ({"mu": np.full(2, np.nan), "sigma": np.eye(2)}, "NaN"),
        ({"mu": np.array(["a", "b"]), "sigma": np.eye(2)}, "numeric"),
    ],
)
def test_malformed_archives_are_one_line_errors(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message) as error:
        read_statistics(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


@pytest.mark.parametrize("content", [b"not an archive", b"PK\x03\x04broken zip"])
def test_unreadable_files_are_one_line_errors(tmp_path, content):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable .npz statistics file") as error:
        read_statistics(path)
    assert "\n" not in str(error.value)


def test_a_single_array_file_and_pickles_are_refused(tmp_path):
    np.save(tmp_path / "mu.npy", np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        read_statistics(tmp_path / "mu.npy")
    np.savez(tmp_path / "pickle.npz", mu=np.array([{"x": 1}], dtype=object), sigma=np.eye(1))
    with pytest.raises(ValueError, match="not a readable"):
        read_statistics(tmp_path / "pickle.npz")
    with pytest.raises(ValueError, match="not a readable"):
        read_statistics(tmp_path / "missing.npz")


def test_file_sha256_is_the_digest_of_the_bytes(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"abc")
    assert file_sha256(path) == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
