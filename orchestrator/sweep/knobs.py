"""Spec keys resolved to the hyperparameters of the listed families, and their values checked.

A plain key (``lr``) must mean the same knob in every listed family; ``family.key`` sets it for
one family only. Variants are named sets of such values that a grid search runs side by side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.errors import SpecError
from orchestrator.spec_checks import as_mapping, as_name
from orchestrator.sweep.space import Choice, Dimension, IntRange, LogUniform, Uniform
from trainables.families import family_class
from trainables.params import Param


def knob_param(path: str, key: str, families: tuple[str, ...]) -> Param:
    """The hyperparameter a space/fixed key names: ``key`` for every listed family, or
    ``family.key`` for one of them (sampled only when that family is drawn)."""
    if "." in key:
        family, name = key.split(".", 1)
        if family not in families:
            raise SpecError(path, f"family {family!r} is not in this spec's family list")
        params = family_class(family).all_params()
        if name not in params:
            raise SpecError(
                path,
                f"not a hyperparameter of family {family!r} (known: {', '.join(sorted(params))})",
            )
        return params[name]
    having = [f for f in families if key in family_class(f).all_params()]
    if not having:
        params = family_class(families[0]).all_params()
        known = f" (known: {', '.join(sorted(params))})" if len(families) == 1 else ""
        raise SpecError(
            path, f"not a hyperparameter of family {' or '.join(map(repr, families))}{known}"
        )
    if len(having) < len(families):
        hint = ", ".join(f"{f}.{key}" for f in having)
        missing = ", ".join(f for f in families if f not in having)
        raise SpecError(
            path, f"family {missing} has no {key!r}; write {hint} to set it only where it exists"
        )
    kinds = {family_class(f).all_params()[key].kind for f in families}
    if len(kinds) > 1:
        raise SpecError(path, "means different types in different families; prefix it")
    # Bounds and choices are checked against every family's declaration of the knob.
    return Strictest(tuple(family_class(f).all_params()[key] for f in families))


def knob_value(path: str, value: Any, param: Param) -> Any:
    reason = param.check(value)
    if reason:
        raise SpecError(path, reason)
    return float(value) if param.kind is float else value


def knob_dimension(path: str, value: Any, param: Param) -> Dimension:
    if isinstance(value, list):
        if not value:
            raise SpecError(path, "empty list of choices")
        return Choice(tuple(knob_value(path, v, param) for v in value))
    if not isinstance(value, dict) or len(value) != 1:
        raise SpecError(
            path,
            "expected a list of choices or one of "
            f"{{int|uniform|loguniform: [low, high]}}, got {value!r}",
        )
    ((kind, bounds),) = value.items()
    if kind not in ("int", "uniform", "loguniform"):
        raise SpecError(path, f"unknown range kind {kind!r} (use int, uniform or loguniform)")
    if (
        not isinstance(bounds, list)
        or len(bounds) != 2
        or any(isinstance(b, bool) or not isinstance(b, int | float) for b in bounds)
    ):
        raise SpecError(path, f"{kind} needs [low, high], got {bounds!r}")
    low, high = bounds
    if low >= high:
        raise SpecError(path, f"empty range [{low}, {high}]")
    if kind == "int":
        if param.kind is not int or not all(isinstance(b, int) for b in bounds):
            raise SpecError(
                path,
                f"int range needs an integer hyperparameter and integer bounds, got {bounds!r}",
            )
        dimension: Dimension = IntRange(low, high)
    else:
        if param.kind is not float:
            raise SpecError(path, f"{kind} range needs a float hyperparameter")
        if kind == "loguniform" and low <= 0:
            raise SpecError(path, f"loguniform needs low > 0, got {low}")
        dimension = (
            Uniform(float(low), float(high))
            if kind == "uniform"
            else LogUniform(float(low), float(high))
        )
    for bound in (low, high):
        reason = param.check(float(bound) if param.kind is float else bound)
        if reason:
            raise SpecError(path, f"bound {bound}: {reason}")
    return dimension


class Strictest(Param):
    """A knob shared by several families: a value must pass every family's check."""

    def __init__(self, params: tuple[Param, ...]) -> None:
        first = params[0]
        super().__init__(first.kind, first.default, first.help)
        object.__setattr__(self, "params", params)

    def check(self, value: Any) -> str | None:
        return next((r for r in (p.check(value) for p in self.params) if r), None)


def knob_variants(
    raw: Any, families: tuple[str, ...], space: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """``variants: {name: {key: value, ...}}``: the arms of a controlled comparison. A variant
    may name its ``family`` (one of the spec's), and its keys then belong to that family; the
    other keys are checked as ``fixed`` keys are, and may not also be searched in ``space``."""
    variants = {}
    for name, values in as_mapping("variants", raw).items():
        path = f"variants.{as_name('variants', name)}"
        values = dict(as_mapping(path, values))
        own = families
        if "family" in values:
            family = values["family"]
            if family not in families:
                raise SpecError(f"{path}.family", f"{family!r} is not in this spec's family list")
            own = (family,)
        for key, value in values.items():
            if key == "family":
                continue
            if key in space:
                raise SpecError(f"{path}.{key}", "is also searched in space; give it in one place")
            values[key] = knob_value(f"{path}.{key}", value, knob_param(f"{path}.{key}", key, own))
        variants[name] = values
    return variants
