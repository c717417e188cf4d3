"""Grouped statistics of one metric (``ganorch results show --group-by``).

Rows with equal values in every key column form a group. Of a group's metric values, those
that are null or not finite (a failed trial's) are left out; the others, x_1..x_n, give

    n        the number of values kept
    mean     sum(x) / n
    std      the sample standard deviation, sqrt(sum((x - mean)^2) / (n - 1))
    ci_low,  mean -/+ t_{0.975, n-1} * std / sqrt(n): the 95% Student-t interval for the mean
    ci_high  of a normal population whose variance is estimated from the same n values

A group with n = 1 has no std and no interval (None: one value says nothing about spread), and
one whose values were all left out (n = 0) has no mean either.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

STAT_COLUMNS = ("n", "mean", "std", "ci_low", "ci_high")
CONFIDENCE = 0.95


def summarise(values: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """n, mean, std and the Student-t interval of ``values`` (all finite), as the module
    docstring defines them."""
    n = len(values)
    stats: dict[str, Any] = dict.fromkeys(STAT_COLUMNS)
    stats["n"] = n
    if n:
        stats["mean"] = statistics.fmean(values)
    if n >= 2:
        # The t quantile through scipy.special (what scipy.stats.t.ppf calls), imported here:
        # scipy.stats costs every other table ~2 s of start-up, scipy.special ~0.7 s.
        from scipy.special import stdtrit

        std = statistics.stdev(values)
        half_width = float(stdtrit(n - 1, (1 + confidence) / 2)) * std / math.sqrt(n)
        stats.update(std=std, ci_low=stats["mean"] - half_width, ci_high=stats["mean"] + half_width)
    return stats


def group_stats(
    rows: Iterable[Mapping[str, Any]], keys: Sequence[str], metric: str
) -> list[dict[str, Any]]:
    """One row per distinct value of ``keys`` in ``rows``: the key values, then
    :func:`summarise` of the group's ``metric`` values; in the keys' order (None last)."""
    groups: dict[tuple[Any, ...], list[float]] = {}
    for row in rows:
        values = groups.setdefault(tuple(row[key] for key in keys), [])
        value = row[metric]
        if value is not None and math.isfinite(value):
            values.append(float(value))
    ordered = sorted(groups.items(), key=lambda item: [(v is None, v) for v in item[0]])
    return [{**dict(zip(keys, key, strict=True)), **summarise(values)} for key, values in ordered]
