"""Search-space dimensions from a spec, and their translation to Optuna and Tune."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int  # inclusive


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float


@dataclass(frozen=True)
class LogUniform:
    low: float
    high: float


Dimension = Choice | IntRange | Uniform | LogUniform


def to_yaml(dimension: Dimension) -> Any:
    """The spec notation of a dimension (for the resolved spec.yaml)."""
    match dimension:
        case Choice(values):
            return list(values)
        case IntRange(low, high):
            return {"int": [low, high]}
        case Uniform(low, high):
            return {"uniform": [low, high]}
        case LogUniform(low, high):
            return {"loguniform": [low, high]}


@dataclass(frozen=True)
class DefineByRun:
    """An Optuna define-by-run space: suggests every dimension, returns the fixed values.

    A class rather than a closure so Tune can pickle it with the searcher's state.
    """

    space: Mapping[str, Dimension]
    fixed: Mapping[str, Any]

    def __call__(self, trial: Any) -> dict[str, Any]:
        for name, dimension in self.space.items():
            match dimension:
                case Choice(values):
                    trial.suggest_categorical(name, list(values))
                case IntRange(low, high):
                    trial.suggest_int(name, low, high)
                case Uniform(low, high):
                    trial.suggest_float(name, low, high)
                case LogUniform(low, high):
                    trial.suggest_float(name, low, high, log=True)
        return dict(self.fixed)


def grid_values(dimension: Dimension) -> list[Any]:
    """Every value a grid search visits for one dimension (continuous ones have none)."""
    match dimension:
        case Choice(values):
            return list(values)
        case IntRange(low, high):
            return list(range(low, high + 1))
    raise ValueError("continuous dimensions cannot be enumerated")


def grid_size(space: Mapping[str, Dimension]) -> int:
    """Points in the full grid over ``space`` (1 for an empty space)."""
    return math.prod(len(grid_values(d)) for d in space.values())
