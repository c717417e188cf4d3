"""Experiment specs: strict YAML -> ExperimentSpec, every problem reported as one line.

Unknown keys, wrong types and empty ranges are errors (the message names the key and value),
so nothing starts on a spec that would fail an hour into a sweep.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import SpecError
from orchestrator.spec_checks import (
    as_choice,
    as_dataset,
    as_integer,
    as_mapping,
    as_name,
    as_number,
    as_string,
    no_unknown_keys,
    read_spec_file,
)
from orchestrator.sweep.knobs import knob_dimension, knob_param, knob_value, knob_variants
from orchestrator.sweep.space import (
    Dimension,
    LogUniform,
    Uniform,
    family_config,
    grid_points,
    to_yaml,
)
from trainables.device import AMP_MODES
from trainables.families import FAMILIES, family_class

ALGORITHMS = ("optuna", "random", "grid")
SCHEDULERS = ("asha", "pbt", "none")
# The keys each scheduler takes besides its name (an unknown or another's key is an error).
SCHEDULER_KEYS = {
    "asha": ("grace_period", "reduction_factor"),
    "pbt": (
        "perturbation_interval",
        "quantile_fraction",
        "resample_probability",
        "mutations",
        "seed",
    ),
    "none": (),
}


@dataclass(frozen=True)
class MetricSpec:
    name: str = "fid"
    mode: str = "min"


@dataclass(frozen=True)
class SearchSpec:
    algorithm: str = "optuna"
    samples: int = 1
    max_concurrent: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class SchedulerSpec:
    name: str = "asha"
    grace_period: int = 1  # asha
    reduction_factor: float = 3.0
    perturbation_interval: int = 2  # pbt: epochs between exploit/explore steps
    quantile_fraction: float = 0.25  # the bottom share copies the top share
    resample_probability: float = 0.25  # a mutated value is redrawn, else scaled by 0.8/1.2
    mutations: dict[str, Dimension] = field(default_factory=dict)  # knob -> where it may go
    seed: int = 0  # PBT's random choices and its initial configs

    def to_dict(self) -> dict[str, Any]:
        """The keys of this scheduler only, mutations in the spec notation."""
        raw = {"name": self.name}
        for key in SCHEDULER_KEYS[self.name]:
            raw[key] = getattr(self, key)
        if "mutations" in raw:
            raw["mutations"] = {k: to_yaml(d) for k, d in self.mutations.items()}
        return raw


@dataclass(frozen=True)
class ResourceSpec:
    cpu: float = 1.0
    gpu: float | str = "auto"  # "auto": 1 where the cluster has GPUs, else 0 (resolved_gpu)


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    dataset: dict[str, Any]
    family: tuple[str, ...]  # one or more families; a list in the YAML is searched over
    epochs: int
    metric: MetricSpec = field(default_factory=MetricSpec)
    search: SearchSpec = field(default_factory=SearchSpec)
    scheduler: SchedulerSpec = field(default_factory=SchedulerSpec)
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    space: dict[str, Dimension] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)  # arms of a grid search
    description: str = ""
    amp: str = "off"  # mixed precision where a trial has a GPU: off, bf16, fp16
    max_failures: int = 0  # restarts of a failed trial from its last checkpoint (lost nodes)

    @property
    def num_trials(self) -> int:
        if self.search.algorithm == "grid":
            return len(self.grid_points()) * self.search.samples
        return self.search.samples

    def grid_points(self) -> list[dict[str, Any]]:
        return grid_points(self.space, self.fixed, self.family, self.variants)

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec, defaults filled in, in the notation it was written in."""
        raw = asdict(self)
        raw["family"] = self.family[0] if len(self.family) == 1 else list(self.family)
        raw["space"] = {name: to_yaml(dim) for name, dim in self.space.items()}
        raw["scheduler"] = self.scheduler.to_dict()
        for key in ("description", "variants"):
            if not raw[key]:
                del raw[key]
        for key in ("amp", "max_failures"):  # spec.yaml of earlier runs stays the same
            if raw[key] == ExperimentSpec.__dataclass_fields__[key].default:
                del raw[key]
        return raw

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def load_spec(
    path: str | Path,
    *,
    name: str | None = None,
    samples: int | None = None,
    epochs: int | None = None,
) -> ExperimentSpec:
    """Read and validate a spec file; the overrides replace its name, search.samples and
    epochs (a smoke run: samples 1, epochs 1). A grace period or perturbation interval longer
    than the overridden epochs is shortened to them: no scheduler waits longer than a trial
    runs."""
    raw = read_spec_file(path)
    if name:
        raw["name"] = name
    if samples is not None:
        _section_of(raw, "search")["samples"] = as_integer("search.samples", samples, low=1)
    if epochs is not None:
        raw["epochs"] = as_integer("epochs", epochs, low=1)
        scheduler = _section_of(raw, "scheduler")
        for key in ("grace_period", "perturbation_interval"):
            value = scheduler.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > epochs:
                scheduler[key] = epochs
    return parse_spec(raw)


def _section_of(raw: dict[str, Any], key: str) -> dict[str, Any]:
    """The mapping under ``key``, created when absent, so an override can set one value."""
    section = raw.setdefault(key, {})
    if section is None:
        section = raw[key] = {}
    if not isinstance(section, dict):
        raise SpecError(key, f"expected a mapping, got {section!r}")
    return section


def parse_spec(raw: Mapping[str, Any]) -> ExperimentSpec:
    """Validate a spec mapping; the first problem raises SpecError naming its key."""
    no_unknown_keys("", raw, {f for f in ExperimentSpec.__dataclass_fields__})
    for key in ("name", "dataset", "family", "epochs"):
        if key not in raw:
            raise SpecError(key, "required key is missing")
    name = as_name("name", raw["name"])
    families = _families(raw["family"])
    sections = _sections(raw, families)
    space = as_mapping("space", raw.get("space", {}))
    fixed = as_mapping("fixed", raw.get("fixed", {}))
    for key in sorted(set(space) & set(fixed)):
        raise SpecError(f"space.{key}", "is also in fixed; give it in one place")
    spec = ExperimentSpec(
        name=name,
        dataset=as_dataset(raw["dataset"]),
        family=families,
        epochs=as_integer("epochs", raw["epochs"], low=1),
        **sections,
        space={
            k: knob_dimension(f"space.{k}", v, knob_param(f"space.{k}", k, families))
            for k, v in space.items()
        },
        fixed={
            k: knob_value(f"fixed.{k}", v, knob_param(f"fixed.{k}", k, families))
            for k, v in fixed.items()
        },
        variants=knob_variants(raw.get("variants", {}), families, space),
        description=as_string("description", raw.get("description", "")),
        amp=as_choice("amp", raw.get("amp", "off"), AMP_MODES),
        max_failures=as_integer("max_failures", raw.get("max_failures", 0), low=0),
    )
    _check_across_keys(spec)
    return spec


def _sections(raw: Mapping[str, Any], families: tuple[str, ...]) -> dict[str, Any]:
    """The metric, search, scheduler and resources sections, defaults filled in."""
    return {
        "metric": _section(
            "metric",
            raw.get("metric", {}),
            MetricSpec,
            {
                "name": lambda k, v: as_choice(k, v, _metric_names(families)),
                "mode": lambda k, v: as_choice(k, v, ("min", "max")),
            },
        ),
        "search": _section(
            "search",
            raw.get("search", {}),
            SearchSpec,
            {
                "algorithm": lambda k, v: as_choice(k, v, ALGORITHMS),
                "samples": lambda k, v: as_integer(k, v, low=1),
                "max_concurrent": lambda k, v: None if v is None else as_integer(k, v, low=1),
                "seed": lambda k, v: as_integer(k, v, low=0),
            },
        ),
        "scheduler": _scheduler(raw.get("scheduler", {}), families),
        "resources": _section(
            "resources",
            raw.get("resources", {}),
            ResourceSpec,
            {
                "cpu": lambda k, v: as_number(k, v, above=0.0),
                "gpu": _gpu_share,
            },
        ),
    }


def _scheduler(raw: Any, families: tuple[str, ...]) -> SchedulerSpec:
    """The scheduler section: its name, then only that scheduler's keys."""
    raw = as_mapping("scheduler", raw)
    name = as_choice("scheduler.name", raw.get("name", SchedulerSpec.name), SCHEDULERS)
    no_unknown_keys("scheduler", raw, {"name", *SCHEDULER_KEYS[name]})
    checks = {
        "grace_period": lambda k, v: as_integer(k, v, low=1),
        "reduction_factor": lambda k, v: as_number(k, v, above=1.0),
        "perturbation_interval": lambda k, v: as_integer(k, v, low=1),
        "quantile_fraction": lambda k, v: _fraction(k, v, high=0.5),
        "resample_probability": lambda k, v: _fraction(k, v, high=1.0, zero=True),
        "mutations": lambda k, v: _mutations(k, v, families),
        "seed": lambda k, v: as_integer(k, v, low=0),
    }
    values = {key: checks[key](f"scheduler.{key}", v) for key, v in raw.items() if key != "name"}
    if name == "pbt" and not values.get("mutations"):
        raise SpecError("scheduler.mutations", "pbt needs at least one knob to mutate")
    return SchedulerSpec(name=name, **values)


def _fraction(path: str, value: Any, high: float, zero: bool = False) -> float:
    number = as_number(path, value, low=0.0)
    if number > high or (number == 0 and not zero):
        bounds = f"[0, {high:g}]" if zero else f"(0, {high:g}]"
        raise SpecError(path, f"expected a number in {bounds}, got {value!r}")
    return number


def _mutations(path: str, raw: Any, families: tuple[str, ...]) -> dict[str, Dimension]:
    """Knob -> its distribution, for knobs every family may change between epochs."""
    mutations = {}
    for key, value in as_mapping(path, raw).items():
        where = f"{path}.{key}"
        param = knob_param(where, key, families)
        for family in families:
            mutable = family_class(family).mutable_params()
            if key.split(".", 1)[-1] not in mutable:
                raise SpecError(
                    where,
                    f"{family} cannot change {key} between epochs without rebuilding its "
                    f"networks (mutable: {', '.join(mutable)})",
                )
        mutations[key] = knob_dimension(where, value, param)
    return mutations


def _check_across_keys(spec: ExperimentSpec) -> None:
    """The rules that tie keys together: a grid search over discrete dimensions whose points
    its families accept, whole GPUs above one, a grace period within the epochs."""
    if spec.variants and spec.search.algorithm != "grid":
        raise SpecError("variants", "need search.algorithm: grid (every variant runs)")
    if spec.search.algorithm == "grid":
        for key, dimension in spec.space.items():
            if isinstance(dimension, Uniform | LogUniform):
                raise SpecError(
                    f"space.{key}",
                    "grid search needs a list or an int range, not a continuous range",
                )
        check_grid_points(spec)
    gpu = spec.resources.gpu
    if isinstance(gpu, float) and gpu > 1 and not gpu.is_integer():
        # Ray packs fractions of one GPU; a trial never spans part of a second one.
        raise SpecError("resources.gpu", f"above 1 must be a whole number, got {gpu:g}")
    if spec.scheduler.name == "pbt":
        _check_pbt(spec)
    if spec.scheduler.name == "asha" and spec.scheduler.grace_period > spec.epochs:
        raise SpecError(
            "scheduler.grace_period",
            f"{spec.scheduler.grace_period} exceeds epochs ({spec.epochs})",
        )


def _check_pbt(spec: ExperimentSpec) -> None:
    if spec.search.algorithm != "random":
        raise SpecError(
            "search.algorithm",
            f"pbt explores by itself (initial configs drawn at random from space, then "
            f"mutated): use random, not {spec.search.algorithm}",
        )
    if len(spec.family) > 1:
        raise SpecError("family", "pbt runs one family (an exploit copies a trial's networks)")
    interval = spec.scheduler.perturbation_interval
    if interval > spec.epochs:
        raise SpecError(
            "scheduler.perturbation_interval", f"{interval} exceeds epochs ({spec.epochs})"
        )


def check_grid_points(
    spec: ExperimentSpec, image_shape: tuple[int, int, int] | None = None
) -> None:
    """Every point of a grid search must be a config its family accepts: the rules across
    knobs (e.g. BEGAN's weights), and about the images when their shape is known."""
    if spec.search.algorithm != "grid":
        return
    for point in spec.grid_points():
        family, config = family_config(point)
        try:
            family_class(family).resolve(config, image_shape)
        except ValueError as exc:
            shown = ", ".join(
                ([f"variant {point['variant']}"] if "variant" in point else [])
                + [f"{k}={point[k]}" for k in spec.space if k in point]
            )
            where = f"{family} grid point {shown}" if shown else family
            raise SpecError("space" if shown else "fixed", f"{where}: {exc}") from None


def _families(value: Any) -> tuple[str, ...]:
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(n, str) for n in names):
        raise SpecError("family", f"expected a family name or a list of them, got {value!r}")
    for name in names:
        if name not in FAMILIES:
            known = ", ".join(sorted(FAMILIES))
            raise SpecError("family", f"unknown family {name!r} (known: {known})")
    if len(set(names)) != len(names):
        raise SpecError("family", f"lists a family twice: {value!r}")
    return tuple(names)


def _metric_names(families: tuple[str, ...]) -> tuple[str, ...]:
    """Metrics every listed family reports (a sweep compares trials on one metric)."""
    first, *rest = (family_class(f).reported_metrics() for f in families)
    return tuple(m for m in first if all(m in other for other in rest))


def _gpu_share(path: str, value: Any) -> float | str:
    if isinstance(value, str):
        if value != "auto":
            raise SpecError(path, f"expected a number or auto, got {value!r}")
        return value
    return as_number(path, value, low=0.0)


def _section(path: str, raw: Any, cls: type, checks: dict[str, Any]) -> Any:
    raw = as_mapping(path, raw)
    no_unknown_keys(path, raw, set(checks))
    return cls(**{key: checks[key](f"{path}.{key}", value) for key, value in raw.items()})


__all__ = ["ExperimentSpec", "check_grid_points", "load_spec", "parse_spec"]
