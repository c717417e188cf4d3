"""DCGAN (Radford et al.) with configurable depth, width, normalisation and losses."""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from trainables.families.base import Family, register
from trainables.families.layers import ACTIVATIONS, conv_discriminator, conv_generator, dcgan_init
from trainables.params import Param


@register
class DCGAN(Family):
    name = "dcgan"
    params = {
        "g_layers": Param(int, 3, "generator conv layers", low=2, high=6),
        "d_layers": Param(int, 3, "discriminator conv layers", low=2, high=6),
        "base_channels": Param(int, 64, "channels at the image resolution", low=1, high=1024),
        "batchnorm": Param(bool, True, "batch-norm in G and (all but the first layer of) D"),
        "n_z": Param(int, 100, "latent size", low=1, high=4096),
        "upsample": Param(str, "transposed", "G upsampling", choices=("transposed", "nearest")),
        "activation": Param(str, "dcgan", "hidden activation", choices=ACTIVATIONS),
        "maxout_pieces": Param(int, 2, "pieces per maxout unit", low=2, high=8),
        "gen_loss": Param(str, "nonsaturating", "G loss", choices=("nonsaturating", "minimax")),
        "real_label": Param(float, 1.0, "one-sided label smoothing target", low=0.5, high=1.0),
        "d_steps": Param(int, 1, "discriminator steps per generator step", low=1, high=20),
    }

    def __init__(self, config: dict[str, Any], image_shape, num_classes, device) -> None:
        super().__init__(config, image_shape, num_classes, device)
        c = self.config
        with torch.random.fork_rng(devices=[]):  # seeded weights, global RNG left untouched
            torch.manual_seed(c["seed"])
            self.generator = conv_generator(
                c["n_z"], image_shape, c["g_layers"], c["base_channels"], c["batchnorm"],
                c["upsample"], c["activation"], c["maxout_pieces"]).to(device)
            self.discriminator = conv_discriminator(
                image_shape, c["d_layers"], c["base_channels"], c["batchnorm"], c["activation"],
                pieces=c["maxout_pieces"]).to(device)
            self.generator.apply(dcgan_init)
            self.discriminator.apply(dcgan_init)
        betas = (c["beta1"], 0.999)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=c["lr"], betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=c["lr"], betas=betas)

    @property
    def latent_dim(self) -> int:
        return self.config["n_z"]

    @property
    def real_batches_per_step(self) -> int:
        return self.config["d_steps"]

    def modules(self):
        return {"generator": self.generator, "discriminator": self.discriminator,
                "opt_g": self.opt_g, "opt_d": self.opt_d}

    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z)

    def train_step(self, real: list[torch.Tensor], labels: list[torch.Tensor]) -> dict[str, float]:
        d_losses = [self._discriminator_step(batch) for batch in real]
        logits = self.discriminator(self.generator(self.latent(len(real[-1]))))
        if self.config["gen_loss"] == "nonsaturating":  # minimise -log D(G(z))
            g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        else:  # minimax: minimise log(1 - D(G(z))) = -softplus(logit)
            g_loss = -F.softplus(logits).mean()
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        losses = {"d_loss": sum(d_losses) / len(d_losses), "g_loss": g_loss.item()}
        self.check_finite(losses)
        return losses

    def _discriminator_step(self, real: torch.Tensor) -> float:
        with torch.no_grad():
            fake = self.generator(self.latent(len(real)))
        real_logits, fake_logits = self.discriminator(real), self.discriminator(fake)
        target = torch.full_like(real_logits, self.config["real_label"])
        loss = F.binary_cross_entropy_with_logits(real_logits, target) + \
            F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return loss.item()
