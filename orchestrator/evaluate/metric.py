"""One entry of the metric registry (:data:`orchestrator.evaluate.measures.METRICS`): a measure's
function and what ``ganorch metrics`` and ``ganorch eval`` need to know of it, and how a
measure's values are printed."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator.errors import UserError

if TYPE_CHECKING:
    import numpy as np

    from orchestrator.evaluate.context import MeasureContext


@dataclass(frozen=True)
class Metric:
    """One registry entry: ``compute(real, generated, context) -> {name: value}``.

    ``summary``: the help text, ``"name: what it measures"``. ``values``: the value names
    ``compute`` may return. ``uses``: what the metric reads ("features", "pixels" or
    "probabilities"): whether an extractor matters, and whether its features can be gathered
    chunk by chunk. ``min_real`` / ``min_generated``: fewest images each set must hold (checked
    first, so too few samples give a clear error rather than a NaN). ``default``: part of
    ``ganorch eval run``'s default ``--metrics``. ``cost``: its relative cost, so the slowest
    shards start first. ``spreads``: value -> the value holding its spread (a standard
    deviation over subsets or a standard error), for the interval value +- 1.96 spread.
    ``binomial``: value -> the value holding its number of trials (None: the number of
    samples), for a Clopper-Pearson interval. ``extractor``: the extractor it always uses
    (None: the one asked for). ``needs_labels``: it scores B against B's conditioning labels,
    which only ``ganorch eval run``'s trials carry, so ``ganorch metrics`` does not offer it.
    """

    compute: Callable[[np.ndarray, np.ndarray, MeasureContext], dict[str, float]]
    summary: str
    values: tuple[str, ...]
    uses: str
    min_real: int = 1
    min_generated: int = 1
    default: bool = True
    cost: int = 1
    spreads: Mapping[str, str] = field(default_factory=dict)
    binomial: Mapping[str, str | None] = field(default_factory=dict)
    extractor: str | None = None
    needs_labels: bool = False

    def __post_init__(self) -> None:
        named = {
            *self.spreads,
            *self.spreads.values(),
            *self.binomial,
            *(n for n in self.binomial.values() if n is not None),
        }
        if not named <= set(self.values):
            raise ValueError(
                f"{self.summary.split(':')[0]}: intervals name values it does not "
                f"return: {sorted(named - set(self.values))}"
            )

    def __call__(
        self, real: np.ndarray, generated: np.ndarray, context: MeasureContext
    ) -> dict[str, float]:
        for which, images, needed in (
            ("A (real)", real, self.min_real),
            ("B (generated)", generated, self.min_generated),
        ):
            if len(images) < needed:
                raise UserError(
                    f"{self.summary.split(':')[0]} needs at least {needed} images "
                    f"in {which}, got {len(images)}"
                )
        try:
            values = self.compute(real, generated, context)
        except ImportError as exc:
            raise UserError(f"this metric's module is not available: {exc}") from None
        except ValueError as exc:  # evaluators report bad input (too few samples...) this way
            raise UserError(" ".join(str(exc).split())) from None
        if not set(values) <= set(self.values):  # the entry lists every name it returns
            raise RuntimeError(
                f"{self.summary.split(':')[0]} returned values its registry "
                f"entry does not name: {sorted(set(values) - set(self.values))}"
            )
        return values


def render_values(values: dict[str, float], fmt: str) -> str:
    """``table``: one ``name value`` line per value (names padded); ``json``: one object,
    non-finite values as null."""
    if fmt == "json":
        return json.dumps(
            {name: value if math.isfinite(value) else None for name, value in values.items()},
            indent=2,
        )
    width = max(map(len, values), default=0)
    return "\n".join(f"{name:<{width}}  {_number(value)}" for name, value in values.items())


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6g}"
