"""The shared base of every family: build from a config, step on batches, sample, checkpoint."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from trainables.params import (
    COMMON_PARAMS,
    CONDITIONAL_METRICS,
    LOOP_METRICS,
    Param,
    resolve_config,
)

FAMILIES: dict[str, type[Family]] = {}


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the trial stops with this message."""


def register(cls: type[Family]) -> type[Family]:
    """Class decorator: make a family available by its ``name``."""
    FAMILIES[cls.name] = cls
    return cls


def family_class(name: str) -> type[Family]:
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r} (known: {', '.join(sorted(FAMILIES))})")
    return FAMILIES[name]


class Family(ABC):
    """A generative model family.

    Subclasses declare ``name`` and ``params`` (their own knobs; the common ones are added),
    build their networks in ``__init__`` and implement ``train_step`` and ``sample``. Images
    enter and leave as floats in [-1, 1].
    """

    name: ClassVar[str]
    params: ClassVar[dict[str, Param]]
    conditional: ClassVar[bool] = False
    losses: ClassVar[tuple[str, ...]] = ("d_loss", "g_loss")  # what train_step returns
    extra_metrics: ClassVar[tuple[str, ...]] = ()  # per-epoch values beyond the losses

    @classmethod
    def reported_metrics(cls) -> tuple[str, ...]:
        """Every metric name a trial of this family reports (what a spec may optimise)."""
        conditional = CONDITIONAL_METRICS if cls.conditional else ()
        return LOOP_METRICS + cls.losses + cls.extra_metrics + conditional

    def __init__(
        self,
        config: Mapping[str, Any],
        image_shape: tuple[int, int, int],
        num_classes: int,
        device: torch.device,
    ) -> None:
        self.config = resolve_config(self.all_params(), config)
        self.image_shape = image_shape
        self.num_classes = num_classes
        self.device = device
        # Training latents come from the family's own generator, not torch's global one, so
        # trials sharing a process do not disturb each other and a resume continues the stream.
        self.rng = torch.Generator().manual_seed(self.config["seed"])

    @classmethod
    def all_params(cls) -> dict[str, Param]:
        return {**COMMON_PARAMS, **cls.params}

    @property
    @abstractmethod
    def latent_dim(self) -> int: ...

    @property
    def real_batches_per_step(self) -> int:
        """Real batches one ``train_step`` consumes (e.g. one per discriminator step)."""
        return 1

    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Latent codes z ~ N(0, I) (from the family's generator unless one is given);
        families with another prior override this."""
        return torch.randn(n, self.latent_dim, generator=generator or self.rng).to(self.device)

    @abstractmethod
    def train_step(self, real: list[torch.Tensor], labels: list[torch.Tensor]) -> dict[str, float]:
        """One optimisation step on real batches in [-1, 1]; returns the step's losses."""

    @abstractmethod
    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] for latent codes ``z`` (and labels, for conditional families)."""

    @abstractmethod
    def modules(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        """Everything with state: networks and optimisers, by name (for checkpoints)."""

    def state_dict(self) -> dict[str, Any]:
        state = {name: module.state_dict() for name, module in self.modules().items()}
        return {**state, "latent_rng": self.rng.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name, module in self.modules().items():
            module.load_state_dict(state[name])
        if "latent_rng" in state:
            self.rng.set_state(state["latent_rng"])

    def train(self, mode: bool = True) -> None:
        for module in self.modules().values():
            if isinstance(module, nn.Module):
                module.train(mode)

    @staticmethod
    def check_finite(losses: Mapping[str, float]) -> None:
        bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
        if bad:
            shown = ", ".join(f"{k}={v}" for k, v in bad.items())
            raise TrainingDiverged(f"training diverged: {shown}")
