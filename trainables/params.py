"""Hyperparameter schemas: what each family accepts, with types, bounds and defaults.

The spec validator checks `space` and `fixed` against these before anything starts, and the
trainable fills in defaults from them, so a knob is declared exactly once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its type, default and the values it may take."""

    kind: type  # int, float, bool or str
    default: Any
    help: str
    low: float | None = None  # inclusive bounds for int/float
    high: float | None = None
    choices: tuple[Any, ...] | None = None  # allowed values for str (and optionally int)
    rule: Callable[[Any], str | None] | None = None  # a further check: the reason, or None
    # May change between epochs without rebuilding the networks (what PBT may mutate): the
    # family reads it from its config at every step, or writes it into its optimisers.
    mutable: bool = False

    def check(self, value: Any) -> str | None:
        """None when ``value`` is allowed, else a short reason naming the allowed values."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not _is_kind(value, self.kind):
            return f"expected {self.kind.__name__}, got {value!r}"
        if self.kind is float and not math.isfinite(value):  # NaN passes every bound check
            return f"expected a finite number, got {value!r}"
        if self.choices is not None and value not in self.choices:
            return f"expected one of {', '.join(map(str, self.choices))}, got {value!r}"
        if self.low is not None and value < self.low:
            return f"must be >= {self.low}, got {value!r}"
        if self.high is not None and value > self.high:
            return f"must be <= {self.high}, got {value!r}"
        return self.rule(value) if self.rule is not None else None


def _is_kind(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, float)
    return isinstance(value, kind)


# Knobs every family has: the optimiser step, the batch, the seed, the FID sample count and the
# weight average that samples are drawn from.
COMMON_PARAMS: dict[str, Param] = {
    "lr": Param(float, 2e-4, "Adam learning rate", low=1e-7, high=1.0, mutable=True),
    "beta1": Param(float, 0.5, "Adam beta1", low=0.0, high=0.999, mutable=True),
    "batch_size": Param(int, 64, "images per step", low=1, high=65536),
    "seed": Param(int, 0, "seed of weights, batches and latents", low=0),
    "fid_samples": Param(int, 1000, "generated samples scored by FID each epoch", low=2),
    "g_ema": Param(
        float,
        0.0,
        "decay of a moving average of G's weights that draws every sample, grid and FID "
        "(0: G's trained weights)",
        low=0.0,
        high=0.9999,
    ),
}


def resolve_config(params: Mapping[str, Param], config: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with ``config``; unknown keys and bad values raise ValueError."""
    unknown = sorted(set(config) - set(params))
    if unknown:
        raise ValueError(f"unknown hyperparameter {unknown[0]!r}")
    resolved = {name: param.default for name, param in params.items()}
    for name, value in config.items():
        reason = params[name].check(value)
        if reason:
            raise ValueError(f"{name}: {reason}")
        resolved[name] = float(value) if params[name].kind is float else value
    return resolved


# Metrics the trainable loop reports for every family, beside each family's own losses.
LOOP_METRICS: tuple[str, ...] = ("fid", "best_fid", "images_per_s", "epoch_s")
# ... and for conditional families, scored by the judge on samples against their labels.
CONDITIONAL_METRICS: tuple[str, ...] = ("label_accuracy", "inception_score")
