"""Helpers shared by the generative-family tests (dcgan, cdcgan, cgan, acgan, wgan, vae)."""

from __future__ import annotations

import torch
from torch import nn

CPU = torch.device("cpu")
CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def image_batch(n=8, shape=(1, 28, 28), seed=0) -> torch.Tensor:
    """A seeded batch of n images with values in [-1, 1)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=g) * 2 - 1


def labelled_batch(n=10, shape=(1, 28, 28), seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded image batch with labels cycling through the 10 classes."""
    return image_batch(n, shape, seed), torch.arange(n) % 10


def unlabelled_step(model, real: torch.Tensor, times: int = 1) -> list[dict[str, float]]:
    """Run `times` training steps on `real` with all-zero labels; return each step's stats."""
    k = model.real_batches_per_step
    return [
        model.train_step([real] * k, [torch.zeros(len(real), dtype=torch.long)] * k)
        for _ in range(times)
    ]


def labelled_step(model, real: torch.Tensor, labels: torch.Tensor, times: int = 1):
    """Run `times` training steps on `real` with `labels`; return each step's stats."""
    k = model.real_batches_per_step
    return [model.train_step([real] * k, [labels] * k) for _ in range(times)]


def count(module: nn.Module, kinds) -> int:
    """How many submodules of `module` are instances of `kinds`."""
    return sum(isinstance(m, kinds) for m in module.modules())


def convs(module: nn.Module) -> list[nn.Module]:
    """The conv and transposed-conv layers of `module`, in order."""
    return [m for m in module.modules() if isinstance(m, CONVS)]


def snapshot(*modules: nn.Module) -> list[torch.Tensor]:
    """Detached copies of every parameter of `modules`."""
    return [p.detach().clone() for m in modules for p in m.parameters()]


def changed(before: list[torch.Tensor], *modules: nn.Module) -> int:
    """How many parameters of `modules` differ from the `before` snapshot."""
    after = [p for m in modules for p in m.parameters()]
    return sum(not torch.equal(b, p) for b, p in zip(before, after, strict=True))
