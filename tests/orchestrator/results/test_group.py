"""Grouped statistics against intervals worked out by hand."""

from __future__ import annotations

import math

import pytest

from orchestrator.results.group import group_stats, summarise

# Student-t 0.975 quantiles in closed form: 1 degree of freedom is the Cauchy distribution,
# 2 degrees of freedom have t_p = (2p - 1) / sqrt(2p(1 - p)).
T_975_1 = math.tan(math.pi * (0.975 - 0.5))  # 12.706204736174...
T_975_2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)  # 4.302652729749...


def test_three_values_give_the_student_t_interval():
    stats = summarise([1.0, 2.0, 4.0])
    # mean 7/3; squared deviations 16/9 + 1/9 + 25/9 = 42/9 over n - 1 = 2: variance 7/3
    assert stats["n"] == 3
    assert stats["mean"] == pytest.approx(7 / 3, rel=1e-12)
    assert stats["std"] == pytest.approx(math.sqrt(7 / 3), rel=1e-12)
    half_width = T_975_2 * math.sqrt(7 / 3) / math.sqrt(3)  # 4.30265 * sqrt(7) / 3 = 3.79458
    assert stats["ci_low"] == pytest.approx(7 / 3 - half_width, rel=1e-9)
    assert stats["ci_high"] == pytest.approx(7 / 3 + half_width, rel=1e-9)
    assert (stats["ci_low"], stats["ci_high"]) == pytest.approx((-1.461250, 6.127916), abs=1e-6)


def test_one_value_has_no_spread_and_none_no_mean():
    assert summarise([5.0]) == {
        "n": 1,
        "mean": 5.0,
        "std": None,
        "ci_low": None,
        "ci_high": None,
    }
    assert summarise([]) == {"n": 0, "mean": None, "std": None, "ci_low": None, "ci_high": None}


def test_groups_leave_out_null_and_nan_values_and_come_in_key_order():
    rows = [
        {"lr": 0.2, "seed": 0, "fid": 3.0},
        {"lr": 0.1, "seed": 0, "fid": 9.0},
        {"lr": 0.2, "seed": 1, "fid": None},  # a failed trial
        {"lr": 0.2, "seed": 2, "fid": math.nan},
        {"lr": 0.2, "seed": 3, "fid": 5.0},
        {"lr": None, "seed": 0, "fid": None},
    ]
    groups = group_stats(rows, ["lr"], "fid")
    assert [g["lr"] for g in groups] == [0.1, 0.2, None]
    low, high = groups[1]["ci_low"], groups[1]["ci_high"]
    assert groups[1]["n"] == 2 and groups[1]["mean"] == 4.0
    assert groups[1]["std"] == pytest.approx(math.sqrt(2))
    # half-width t_{0.975,1} * sqrt(2) / sqrt(2) = t_{0.975,1}
    assert (low, high) == pytest.approx((4.0 - T_975_1, 4.0 + T_975_1), rel=1e-9)
    assert groups[0] == {
        "lr": 0.1,
        "n": 1,
        "mean": 9.0,
        "std": None,
        "ci_low": None,
        "ci_high": None,
    }
    assert groups[2]["n"] == 0 and groups[2]["mean"] is None
    by_two = group_stats(rows, ["lr", "seed"], "fid")
    assert len(by_two) == 6 and [g["n"] for g in by_two] == [1, 1, 0, 0, 1, 0]
