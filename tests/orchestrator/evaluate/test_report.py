"""The eval table's rows and pivot: intervals, each shard's latest attempt, column order."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest

from orchestrator.evaluate.report import clopper_pearson, latest_attempts, pivot_eval, value_rows
from orchestrator.tables import Table


def test_intervals_are_clopper_pearson_or_spread_based():
    low, high = clopper_pearson(0.0, 10)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 10))
    low, high = clopper_pearson(1.0, 10)
    assert high == 1.0 and low == pytest.approx(0.025 ** (1 / 10))
    for k, n in [(1, 10), (5, 10), (37, 100), (999, 1000), (3, 7)]:
        exact = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert clopper_pearson(k / n, n) == pytest.approx((exact.low, exact.high), rel=1e-9)
    rows = {
        r["metric"]: r
        for r in value_rows(
            {"kid_mean": 2.0, "kid_std": 0.5, "c2st_accuracy": 0.5, "c2st_n_test": 100, "fid": 3.0},
            200,
            "fp",
        )
    }
    assert rows["kid_mean"]["ci_low"] == pytest.approx(2.0 - 1.96 * 0.5, abs=1e-3)
    assert rows["c2st_accuracy"]["ci_low"] < 0.5 < rows["c2st_accuracy"]["ci_high"]
    assert rows["fid"]["ci_low"] is None and rows["fid"]["n_samples"] == 200


def test_pivot_shows_each_shards_latest_attempt(tmp_path):
    table = Table(str(tmp_path), "eval")
    key = {"generator": "g", "extractor": "lenet", "seed": 0}
    table.append([{"shard": "s", **key, "metric": "fid", "error": "too few"}])
    table.append(
        [
            {"shard": "s", **key, "metric": "fid", "value": 3.0, "error": None},
            {"shard": "k", **key, "metric": "kid_mean", "value": 1.0, "error": None},
            {"shard": "k", **key, "metric": "kid_std", "value": 0.1, "error": None},
        ]
    )
    pivot = pivot_eval(table.read()).to_pylist()
    assert pivot == [{"generator": "g", "fid": 3.0, "kid_mean": 1.0}]
    assert latest_attempts(table.read()).column("metric").to_pylist() == [
        "fid",
        "kid_mean",
        "kid_std",
    ]
    table.append([{"shard": "k", **key, "metric": "kid", "error": "worker died"}])
    assert pivot_eval(table.read()).to_pylist() == [{"generator": "g", "fid": 3.0, "failed": "kid"}]


def test_values_kept_after_a_failed_redo_show_with_the_failure(tmp_path):
    table = Table(str(tmp_path), "eval")
    key = {"generator": "g", "extractor": "lenet", "seed": 0}
    values = [
        {"shard": "g|kid|lenet|0", **key, "metric": "kid_mean", "value": 1.0, "error": None},
        {"shard": "g|kid|lenet|0", **key, "metric": "kid_std", "value": 0.1, "error": None},
    ]
    table.append([{"shard": "g|kid|lenet|0", **key, "metric": "kid", "error": "too few"}])
    table.append(values)
    table.append([{**row, "redo_error": "worker died"} for row in values])
    kept = latest_attempts(table.read()).to_pylist()
    assert [(r["metric"], r["value"], r["redo_error"]) for r in kept] == [
        ("kid_mean", 1.0, "worker died"),
        ("kid_std", 0.1, "worker died"),
    ]
    assert pivot_eval(table.read()).to_pylist() == [
        {"generator": "g", "kid_mean": 1.0, "failed": "kid (redo failed; earlier value shown)"}
    ]


def test_pivot_orders_measures_as_the_registry_and_puts_the_reference_last(tmp_path):
    table = Table(str(tmp_path), "eval")
    for generator in ("reference", "g"):  # in the order shards finished: slowest first
        for metric, values in (
            ("c2st", {"c2st_accuracy": 0.9}),
            ("fid", {"fid": 3.0}),
            ("kid", {"kid_mean": 1.0}),
        ):
            table.append(
                [
                    {
                        "shard": f"{generator}|{metric}|x|0|n10",
                        "generator": generator,
                        "metric": name,
                        "extractor": "x",
                        "seed": 0,
                        "value": value,
                        "error": None,
                    }
                    for name, value in values.items()
                ]
            )
    pivot = pivot_eval(table.read())
    assert pivot.column_names == ["generator", "fid", "kid_mean", "c2st_accuracy"]
    assert pivot.column("generator").to_pylist() == ["g", "reference"]
