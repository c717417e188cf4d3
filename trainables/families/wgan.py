"""Wasserstein GAN: a critic without sigmoid, ``n_critic`` critic steps per generator step, and a
Lipschitz constraint by weight clipping (Arjovsky et al., 2017) or gradient penalty (WGAN-GP,
Gulrajani et al., 2017).

Losses (minimised):

- critic: ``d_loss = E[D(G(z))] - E[D(x)]`` (``+ gp_weight * E[(||grad_x^ D(x^)||_2 - 1)^2]``
  under ``constraint: gp``, with x^ uniform on the segment between a real and a fake image);
- generator: ``g_loss = -E[D(G(z))]``;
- reported beside them: ``wasserstein = E[D(x)] - E[D(G(z))]``, the critic's estimate of the
  Wasserstein-1 distance (up to the Lipschitz constant), which is ``-d_loss`` under clipping.
  ``d_loss`` and ``wasserstein`` are means over the step's ``n_critic`` critic updates.

Choices:

- ``optimizer`` is explicit and defaults to ``rmsprop`` (the WGAN paper's, at the given ``lr``);
  ``adam`` uses ``betas=(beta1, 0.9)`` (the WGAN-GP paper's beta2). The papers' settings are
  ``lr: 5.0e-5`` with clipping + RMSprop and ``lr: 1.0e-4, beta1: 0.0, optimizer: adam`` with
  the penalty; specs set them, the common ``lr``/``beta1`` defaults are not overridden here.
- Batch-norm makes a critic output depend on the rest of the batch, which breaks the per-sample
  gradient penalty. Under ``constraint: gp`` the critic's batch-norm layers are therefore
  replaced by layer norm (``GroupNorm(1, C)``: per-sample statistics over C, H, W, with the
  same affine scale and shift), the WGAN-GP paper's recommended drop-in; ``batchnorm: false``
  leaves the critic unnormalised. The generator always follows ``batchnorm``. Under clipping
  the critic keeps batch-norm as in the WGAN paper, and clipping applies to every critic
  parameter (batch-norm scales and shifts included; running statistics are buffers).
- ``clip`` is ignored under ``gp`` and ``gp_weight`` under ``clip`` (so one grid can sweep
  ``constraint`` with both fixed).

The convolutional knobs are the shared ``CONV_PARAMS`` of ``base`` (DCGAN's), so the GAN families
mean the same by ``g_layers`` etc. and a spec may set them unprefixed for all of them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from trainables.families.base import CONV_PARAMS, Family, register
from trainables.families.layers import dcgan_init, discriminator_from, generator_from, seeded
from trainables.params import Param

ADAM_BETA2 = 0.9  # WGAN-GP


def gradient_penalty(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty ``mean_i (||grad_x D(x_i)||_2 - 1)^2`` at ``x_i = e_i real_i +
    (1 - e_i) fake_i``, ``e_i ~ U[0, 1]`` per sample (drawn from ``generator``).

    The graph is kept (``create_graph``) so the penalty's gradient reaches the critic weights.
    """
    e = torch.rand(len(real), *([1] * (real.dim() - 1)), generator=generator).to(real.device)
    mixed = (e * real + (1 - e) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).float().sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def _layer_norm_for_batch_norm(module: nn.Module) -> None:
    """Replace every BatchNorm2d below ``module`` by a per-sample layer norm in place."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.GroupNorm(1, child.num_features))
        else:
            _layer_norm_for_batch_norm(child)


@register
class WGAN(Family):
    name = "wgan"
    params = {
        **CONV_PARAMS,
        "batchnorm": replace(
            CONV_PARAMS["batchnorm"],
            help=(
                "batch-norm in G and (all but the first layer of) the critic; under gp the "
                "critic gets layer norm instead"
            ),
        ),
        "n_critic": Param(int, 5, "critic steps per generator step", low=1, high=100, mutable=True),
        "constraint": Param(
            str,
            "clip",
            "critic Lipschitz constraint: weight clipping or gradient penalty",
            choices=("clip", "gp"),
        ),
        "clip": Param(
            float,
            0.01,
            "clip every critic parameter to [-clip, clip] after each "
            "critic step (constraint: clip)",
            low=1e-6,
            high=10.0,
            mutable=True,
        ),
        "gp_weight": Param(
            float,
            10.0,
            "gradient penalty weight lambda (constraint: gp)",
            low=0.0,
            high=1e4,
            mutable=True,
        ),
        "optimizer": Param(
            str,
            "rmsprop",
            "optimiser of both networks (adam: betas (beta1, 0.9))",
            choices=("rmsprop", "adam"),
        ),
    }
    extra_metrics = ("wasserstein",)

    def __init__(self, config: dict[str, Any], image_shape, num_classes, device) -> None:
        super().__init__(config, image_shape, num_classes, device)
        c = self.config
        with seeded(c["seed"]):
            self.generator = generator_from(c, image_shape).to(device)
            self.critic = discriminator_from(c, image_shape)
            if c["constraint"] == "gp":
                _layer_norm_for_batch_norm(self.critic)
            self.critic.to(device)
            self.generator.apply(dcgan_init)
            self.critic.apply(dcgan_init)  # GroupNorm keeps its (1, 0) affine initialisation
        self.opt_g = self._optimizer(self.generator)
        self.opt_d = self._optimizer(self.critic)

    def _optimizer(self, module: nn.Module) -> torch.optim.Optimizer:
        c = self.config
        if c["optimizer"] == "adam":
            return torch.optim.Adam(module.parameters(), lr=c["lr"], betas=(c["beta1"], ADAM_BETA2))
        return torch.optim.RMSprop(module.parameters(), lr=c["lr"])

    @property
    def latent_dim(self) -> int:
        return self.config["n_z"]

    @property
    def real_batches_per_step(self) -> int:
        return self.config["n_critic"]

    def modules(self):
        return {
            "generator": self.generator,
            "critic": self.critic,
            "opt_g": self.opt_g,
            "opt_d": self.opt_d,
        }

    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z)

    def train_step(self, real: list[torch.Tensor], labels: list[torch.Tensor]) -> dict[str, float]:
        critic_losses, estimates = zip(*(self._critic_step(batch) for batch in real), strict=True)
        self.critic.requires_grad_(False)  # G's step needs gradients through D, not into it
        try:
            g_loss = -self.critic(self.generator(self.latent(len(real[-1])))).float().mean()
            self.optimise(self.opt_g, g_loss)
        finally:
            self.critic.requires_grad_(True)
        losses = {
            "d_loss": sum(critic_losses) / len(critic_losses),
            "g_loss": g_loss.item(),
            "wasserstein": sum(estimates) / len(estimates),
        }
        self.check_finite(losses)
        return losses

    def _critic_step(self, real: torch.Tensor) -> tuple[float, float]:
        """One critic update; returns its loss and its Wasserstein estimate."""
        with torch.no_grad():
            fake = self.generator(self.latent(len(real)))
        # float32: under mixed precision the critic's outputs are bf16/fp16, and a difference
        # of two large means in 8 (bf16) mantissa bits would be mostly rounding.
        estimate = self.critic(real).float().mean() - self.critic(fake).float().mean()
        loss = -estimate
        if self.config["constraint"] == "gp":
            loss = loss + self.config["gp_weight"] * gradient_penalty(
                self.critic, real, fake, self.rng
            )
        self.optimise(self.opt_d, loss)
        if self.config["constraint"] == "clip":
            bound = self.config["clip"]
            with torch.no_grad():
                for p in self.critic.parameters():
                    p.clamp_(-bound, bound)
        return loss.item(), estimate.item()
