"""Search-space dimensions from a spec, and their translation to Optuna and Tune."""

from __future__ import annotations

import itertools
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


def applies_to(key: str, family: str) -> bool:
    """Whether a space/fixed key is used by ``family``: plain keys by all, ``f.key`` by f."""
    return "." not in key or key.split(".", 1)[0] == family


@dataclass(frozen=True)
class DefineByRun:
    """An Optuna define-by-run space: draws the family first (when there are several), then
    only the dimensions that family uses, so TPE spends no trials on keys that do nothing.

    A class rather than a closure so Tune can pickle it with the searcher's state.
    """

    space: Mapping[str, Dimension]
    fixed: Mapping[str, Any]
    families: tuple[str, ...]

    def __call__(self, trial: Any) -> dict[str, Any]:
        family = self.families[0]
        if len(self.families) > 1:
            family = trial.suggest_categorical("family", list(self.families))
        for name, dimension in self.space.items():
            if not applies_to(name, family):
                continue
            match dimension:
                case Choice(values):
                    trial.suggest_categorical(name, list(values))
                case IntRange(low, high):
                    trial.suggest_int(name, low, high)
                case Uniform(low, high):
                    trial.suggest_float(name, low, high)
                case LogUniform(low, high):
                    trial.suggest_float(name, low, high, log=True)
        fixed = {k: v for k, v in self.fixed.items() if applies_to(k, family)}
        return {"family": family, **fixed}


def grid_values(dimension: Dimension) -> list[Any]:
    """Every value a grid search visits for one dimension (continuous ones have none)."""
    match dimension:
        case Choice(values):
            return list(values)
        case IntRange(low, high):
            return list(range(low, high + 1))
    raise ValueError("continuous dimensions cannot be enumerated")


def grid_points(
    space: Mapping[str, Dimension],
    fixed: Mapping[str, Any],
    families: tuple[str, ...],
    variants: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Every configuration of a grid search: per family and variant, the product of its
    dimensions. A variant's values override ``fixed``; its name is kept as ``variant``. A
    variant that names a family, or whose keys all belong to one, runs with that family only."""
    arms = variants or {None: {}}
    points = []
    for family in families:
        names = [k for k in space if applies_to(k, family)]
        for variant, values in arms.items():
            overrides = {k: v for k, v in values.items() if k != "family"}
            if values.get("family", family) != family or (
                overrides and not any(applies_to(k, family) for k in overrides)
            ):
                continue
            base = {
                "family": family,
                **({} if variant is None else {"variant": variant}),
                **{k: v for k, v in {**fixed, **overrides}.items() if applies_to(k, family)},
            }
            for combination in itertools.product(*(grid_values(space[k]) for k in names)):
                points.append({**base, **dict(zip(names, combination, strict=True))})
    return points


def family_config(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A trial's family and its hyperparameters with family prefixes resolved.

    ``{"family": "wgan", "lr": 1e-4, "wgan.n_critic": 5, "began.gamma": 0.5}`` becomes
    ``("wgan", {"lr": 1e-4, "n_critic": 5})``; a grid trial's ``point`` is unpacked first and
    its ``variant`` name (see :func:`variant_of`) is not a hyperparameter.
    """
    config = dict(config.get("point", config))
    family = config.pop("family")
    config.pop("variant", None)
    resolved = {}
    for key, value in config.items():
        if applies_to(key, family):
            resolved[key.split(".", 1)[-1]] = value
    return family, resolved


def variant_of(config: Mapping[str, Any]) -> str | None:
    """The name of the spec variant a grid trial runs, or None outside variants."""
    return config.get("point", config).get("variant")
