"""Strict spec values shared by the sweep spec and the grid spec: the YAML file, unknown keys,
names, typed values and dataset mappings, each problem a :class:`SpecError` naming its key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import SpecError, UserError
from orchestrator.runs import NAME_RULE, check_name
from trainables.datasets import DATASET_OPTIONS, REQUIRED_OPTIONS


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """The mapping a YAML spec file holds; SpecError when it is unreadable or not a mapping.
    The messages leave the path out: every command puts it in front of them."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError("", f"cannot read spec: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SpecError("", "not a text file (UTF-8 YAML expected)") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: plain data only
    except _DuplicateKey as exc:
        raise SpecError(
            "", f"key {exc.key!r} appears twice in one mapping (line {exc.line}); give it once"
        ) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise SpecError("", f"not valid YAML{line}") from None
    except RecursionError:
        raise SpecError("", "nests too deeply to be a spec") from None
    if not isinstance(raw, dict):
        raise SpecError("", "must hold a mapping of spec keys")
    if _depth(raw) > MAX_DEPTH:
        raise SpecError("", f"nests more than {MAX_DEPTH} levels deep; no spec key does")
    return raw


MAX_DEPTH = 8  # a spec's deepest value (space.<knob>.<kind>: [low, high]) is 4 levels down


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key, self.line = key, line


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
            except TypeError:  # an unhashable key: the base class says so
                continue
            if repeated:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _depth(value: Any) -> int:
    """How many containers deep ``value`` nests, counted without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                children = item.values() if isinstance(item, dict) else item
                pending.extend((child, level + 1) for child in children)
    return deepest


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
    """A run name, checked as every run name is (:func:`orchestrator.runs.check_name`)."""
    name = as_string(path, value)
    try:
        return check_name(name)
    except UserError:
        raise SpecError(path, f"{NAME_RULE}, got {name!r}") from None


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
    if not math.isfinite(value):
        raise SpecError(path, f"expected a finite number, got {value}")
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
