"""Strict spec values shared by the sweep spec and the grid spec: the YAML file, unknown keys,
names, typed values and dataset mappings, each problem a :class:`SpecError` naming its key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import SpecError
from trainables.datasets import DATASET_OPTIONS, REQUIRED_OPTIONS

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """The mapping a YAML spec file holds; SpecError when it is unreadable or not a mapping."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError("", f"cannot read spec {path}: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise SpecError("", f"{path} is not valid YAML{line}") from None
    if not isinstance(raw, dict):
        raise SpecError("", f"{path} must hold a mapping of spec keys")
    return raw


def no_unknown_keys(path: str, raw: Mapping[str, Any], allowed: set[str]) -> None:
    for key in raw:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise SpecError(where, f"unknown key (allowed: {', '.join(sorted(allowed))})")


def as_mapping(path: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(path, f"expected a mapping, got {value!r}")
    return value


def as_string(path: str, value: Any) -> str:
    if not isinstance(value, str) or not value and path != "description":
        raise SpecError(path, f"expected a non-empty string, got {value!r}")
    return value


def as_name(path: str, value: Any) -> str:
    """A run name: letters, digits, '.', '_' and '-', not starting with a punctuation mark."""
    name = as_string(path, value)
    if not NAME_PATTERN.match(name):
        raise SpecError(path, f"use letters, digits, '.', '_' and '-' only, got {name!r}")
    return name


def as_choice(path: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SpecError(path, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def as_integer(path: str, value: Any, low: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(path, f"expected an integer, got {value!r}")
    if low is not None and value < low:
        raise SpecError(path, f"must be >= {low}, got {value}")
    return value


def as_number(path: str, value: Any, low: float | None = None, above: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(path, f"expected a number, got {value!r}")
    if low is not None and value < low:
        raise SpecError(path, f"must be >= {low}, got {value}")
    if above is not None and value <= above:
        raise SpecError(path, f"must be > {above}, got {value}")
    return float(value)


def as_dataset(value: Any) -> dict[str, Any]:
    raw = as_mapping("dataset", value)
    name = raw.get("name")
    if name not in DATASET_OPTIONS:
        raise SpecError(
            "dataset.name",
            f"unknown dataset {name!r} (known: {', '.join(sorted(DATASET_OPTIONS))})",
        )
    options = DATASET_OPTIONS[name]
    no_unknown_keys("dataset", raw, {"name", *options})
    for key in sorted(REQUIRED_OPTIONS.get(name, ())):
        if key not in raw:
            raise SpecError(f"dataset.{key}", f"required for dataset {name!r}")
    for key, expected in options.items():
        if key in raw and (
            isinstance(raw[key], bool)
            and expected is not bool
            or not isinstance(raw[key], expected)
        ):
            raise SpecError(f"dataset.{key}", f"expected {_type_name(expected)}, got {raw[key]!r}")
    return dict(raw)


def _type_name(expected: type | tuple[type, ...]) -> str:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(kind.__name__ for kind in kinds)
