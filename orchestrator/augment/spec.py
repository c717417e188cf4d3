"""What a `ganorch grid augment` call asks for: a strict spec file, command-line options, or both.

Spec file keys (all optional but ``run`` and ``generator``; the command line overrides them)::

    run: cgan-mnist              # the sweep run the generator comes from; results go there
    generator: best              # best | a trial id of the run | a checkpoint folder
    dataset: {name: mnist5k}     # only for a run without spec.yaml (a generator given by path)
    strategies: [mix, filter, finetune, source]
    real: [0, 1, 10, 20, 50, 100]       # subset sizes of the real training split
    generated: [0, 1, 10, 20, 50, 100]  # numbers of generated images
    unit: percent                # percent (of the real training split) | count (images)
    seeds: 3                     # seeds 0..seeds-1
    epochs: 30
    batch_size: 64
    lr: 0.001                    # Adam
    description: ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from evaluators.augmentation import STRATEGIES
from orchestrator.errors import SpecError
from orchestrator.spec_checks import (
    as_choice,
    as_dataset,
    as_integer,
    as_name,
    as_number,
    as_string,
    no_unknown_keys,
    read_spec_file,
)

UNITS = ("percent", "count")
REPORT_SIZES = (0, 1, 10, 20, 50, 100)  # percent of the real training split, on each axis


@dataclass(frozen=True)
class AugmentSpec:
    run: str
    generator: str
    strategies: tuple[str, ...] = STRATEGIES
    real: tuple[float, ...] = REPORT_SIZES
    generated: tuple[float, ...] = REPORT_SIZES
    unit: str = "percent"
    seeds: int = 3
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    dataset: dict[str, Any] | None = None
    description: str = ""

    def sizes(self, axis: str, n_train: int) -> tuple[int, ...]:
        """The distinct image counts of ``axis`` (real | generated), ascending; percent sizes
        are of ``n_train`` (the real training split), rounded to whole images."""
        values = self.real if axis == "real" else self.generated
        if self.unit == "percent":
            counts = {round(v / 100 * n_train) for v in values}
        else:
            counts = {int(v) for v in values}
        if axis == "real" and max(counts) > n_train:
            raise SpecError(
                "real", f"{max(counts)} real images asked for, the training split holds {n_train}"
            )
        return tuple(sorted(counts))


def load_augment_spec(path: str | Path | None, overrides: Mapping[str, Any]) -> AugmentSpec:
    """The spec file at ``path`` (if any) with ``overrides`` (options given on the command
    line, None meaning not given) on top, validated; SpecError names the first bad key."""
    raw = read_spec_file(path) if path is not None else {}
    raw.update({key: value for key, value in overrides.items() if value is not None})
    return parse_augment_spec(raw)


def parse_augment_spec(raw: Mapping[str, Any]) -> AugmentSpec:
    no_unknown_keys("", raw, {f.name for f in fields(AugmentSpec)})
    for key in ("run", "generator"):
        if key not in raw:
            raise SpecError(key, "required (the sweep run and which of its generators)")
    values: dict[str, Any] = {
        "run": as_name("run", raw["run"]),
        "generator": as_string("generator", raw["generator"]),
    }
    if "strategies" in raw:
        values["strategies"] = _strategies(raw["strategies"])
    if "unit" in raw:
        values["unit"] = as_choice("unit", raw["unit"], UNITS)
    unit = values.get("unit", "percent")
    for axis in ("real", "generated"):
        if axis in raw:
            values[axis] = _sizes(axis, raw[axis], unit)
    for key in ("seeds", "epochs", "batch_size"):
        if key in raw:
            values[key] = as_integer(key, raw[key], low=1)
    if "lr" in raw:
        values["lr"] = as_number("lr", raw["lr"], above=0)
    if "dataset" in raw:
        values["dataset"] = as_dataset(raw["dataset"])
    if "description" in raw:
        values["description"] = as_string("description", raw["description"])
    spec = AugmentSpec(**values)
    if "finetune" in spec.strategies and spec.epochs < 2:
        raise SpecError("epochs", "finetune needs at least 2 (half on generated, half on real)")
    if spec.real == (0,) and spec.generated == (0,):
        raise SpecError("real", "the grid holds only the meaningless 0 real / 0 generated cell")
    return spec


def _strategies(value: Any) -> tuple[str, ...]:
    names = value if isinstance(value, list) else [value]
    for name in names:
        if name not in STRATEGIES:
            raise SpecError(
                "strategies", f"unknown strategy {name!r} (choose from {', '.join(STRATEGIES)})"
            )
    if not names or len(set(names)) != len(names):
        raise SpecError("strategies", f"expected distinct strategies, got {value!r}")
    return tuple(names)


def _sizes(axis: str, value: Any, unit: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise SpecError(axis, f"expected a non-empty list of sizes, got {value!r}")
    sizes = tuple(as_number(axis, v, low=0) for v in value)
    if unit == "count" and any(v != int(v) for v in sizes):
        raise SpecError(axis, f"counts must be whole numbers, got {value!r}")
    if unit == "percent" and axis == "real" and max(sizes) > 100:
        raise SpecError(axis, f"at most 100 percent of the real training split, got {max(sizes):g}")
    return sizes
