"""Boundary equilibrium GAN (BEGAN, Berthelot et al. 2017) whose autoencoder distance is the
beta-weighted image-quality mix of report 001 (Vertolli and Davies 2017).

Architecture (report 001, "Model architecture"; no batch-norm anywhere):

- discriminator: an autoencoder. Encoder: conv 3x3 (``base_channels`` n), then per scale two
  3x3 convs of (i + 1) n filters and, between scales, a 3x3 stride-2 conv that halves the map
  and raises the filters to (i + 2) n; a linear layer (no non-linearity) to h, N_h = ``n_z``.
  Decoder: linear h -> n maps of the smallest size, then per scale two 3x3 convs of n filters
  and, between scales, nearest-neighbour upsampling by 2; a 3x3 conv to the image channels.
- generator: the decoder's architecture with its own weights, reading z ~ U(-1, 1)^N_z.
- ELU after every conv but the last. G's last goes through tanh, so samples lie on [-1, 1]
  like every family's; the autoencoder's is linear, as in the papers: an l1 loss pushes
  reconstructions of the many pixels at -1 (MNIST's background) towards the bound forever,
  and behind a tanh that saturates the shared output layer until D reconstructs nothing.
- scales: the map halves while it stays even and at least 7 pixels: 64 -> 8 (three halvings,
  the report's "constant down-sampled size of 8 x 8"), 128 -> 8 (four), 32 -> 8, 28 -> 7.
- initialisation: Glorot-uniform weights and zero biases in every conv and linear layer (the
  BEGAN reference implementation's). PyTorch's default shrinks the signal at every one of the
  autoencoder's ~17 layers, so at the start it returned the same image for every input (spread
  over a batch of digits ~1e-5) and took ~1,000 steps to learn anything (docs/decisions.md).

Objective (report's Eq. 2), with L(v) = d(v, D(v)) averaged over the batch:

- ``d_loss = L(x) - k_t L(G(z))``, ``g_loss = L(G(z))``, from the same forward passes and
  applied simultaneously (D's gradient does not reach G, G's step differentiates through D's
  weights before D's step; one backward pass of L(G(z)) serves G and D's -k_t-weighted part),
  each network with its own Adam (``lr``, betas (``beta1``, 0.999));
- ``k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)``, k_0 = 0;
- ``lr`` halves every ``lr_decay_every`` steps and stops at ``lr_floor`` (a floor above ``lr``
  leaves ``lr`` constant). k_t and the step count are part of the checkpoint.

The distance (report's Eq. 6) is ``d = sum_j beta_j d_j / sum_j beta_j`` over d_j in {l1, gmsm,
chrom} of :mod:`evaluators.image_quality`, computed on images mapped to [0, 1]. The weights are
``beta_l1``/``beta_gmsm``/``beta_chrom``, or all three at once as the string ``betas``
("l1-gmsm-chrom", e.g. "1-1-0"), so a grid search can list the report's combinations; a weight
given both ways must agree. All weights 0 is refused, and so is ``beta_chrom > 0`` on images
without three channels (grey images carry no chrominance: the distance would be 0 and only
rescale the loss).

Per step (averaged over the epoch by the trainable): ``k_t`` (after the step's update),
``m_global = L(x) + |gamma L(x) - L(G(z))|`` (the convergence measure, Eq. 7), and for each
distance, weighted or not, its batch mean on real images (``l1_real``: x vs D(x)) and on
generated ones (``l1_fake``: G(z) vs D(G(z))); ``chrom_real``/``chrom_fake`` are NaN on grey
data, where chrominance is not defined.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from evaluators.image_quality import chroma_distance, gmsm_distance, l1
from trainables.families.base import CONV_PARAMS, Family, register
from trainables.families.layers import doublings, seeded
from trainables.params import COMMON_PARAMS, Param

DISTANCES = {"l1": l1, "gmsm": gmsm_distance, "chrom": chroma_distance}
WEIGHT_KNOBS = {"l1": "beta_l1", "gmsm": "beta_gmsm", "chrom": "beta_chrom"}
MIN_MAP = 7  # the encoder halves the map while it stays even and at least this wide


def parse_betas(text: str) -> dict[str, float]:
    """ "2-1-0" -> {"l1": 2.0, "gmsm": 1.0, "chrom": 0.0}: three non-negative numbers joined by
    '-' in the order l1, gmsm, chrom."""
    parts = text.split("-")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if len(values) != len(DISTANCES) or not all(math.isfinite(v) for v in values):
        raise ValueError(f"expected three weights l1-gmsm-chrom such as '1-1-0', got {text!r}")
    return dict(zip(DISTANCES, values, strict=True))


def _betas_rule(text: str) -> str | None:
    if not text:
        return None
    try:
        parse_betas(text)
    except ValueError as exc:
        return str(exc)
    return None


def distance_terms(
    reference: torch.Tensor, reconstruction: torch.Tensor, names, reduction: str = "mean"
) -> dict[str, torch.Tensor]:
    """The named distances (keys of :data:`DISTANCES`) between images on [0, 1]."""
    return {name: DISTANCES[name](reference, reconstruction, reduction=reduction) for name in names}


def mixed_distance(
    reference: torch.Tensor,
    reconstruction: torch.Tensor,
    betas: Mapping[str, float],
    reduction: str = "mean",
) -> torch.Tensor:
    """The report's Eq. 6: ``sum_d beta_d d(reference, reconstruction) / sum_d beta_d`` over
    d in {l1, gmsm, chrom} (:data:`DISTANCES`) for images on [0, 1]; per image with
    ``reduction="none"``, else the batch mean. Distances with beta 0 are not computed."""
    unknown = sorted(set(betas) - set(DISTANCES))
    if unknown or any(b < 0 for b in betas.values()) or sum(betas.values()) <= 0:
        raise ValueError(
            f"betas must be non-negative weights of {', '.join(DISTANCES)}, "
            f"not all 0; got {dict(betas)}"
        )
    used = {name: b for name, b in betas.items() if b > 0}
    terms = distance_terms(reference, reconstruction, used, reduction)
    return sum(b * terms[name] for name, b in used.items()) / sum(used.values())


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ELU())


def began_encoder(in_shape: tuple[int, int, int], width: int, hidden: int) -> nn.Sequential:
    """Images (N, C, H, W) -> h (N, hidden); see the module docstring."""
    channels, size, _ = in_shape
    scales = doublings(size, size, MIN_MAP)
    stack: list[nn.Module] = [_conv(channels, width)]
    cin = width
    for i in range(scales + 1):
        filters = width * (i + 1)
        stack += [_conv(cin, filters), _conv(filters, filters)]
        cin = filters
        if i < scales:
            stack.append(_conv(filters, width * (i + 2), stride=2))
            cin = width * (i + 2)
    smallest = size // 2**scales
    stack += [nn.Flatten(), nn.Linear(cin * smallest * smallest, hidden)]
    return nn.Sequential(*stack)


def began_decoder(
    hidden: int, out_shape: tuple[int, int, int], width: int, bounded: bool = True
) -> nn.Sequential:
    """h or z (N, hidden) -> images (N, C, H, W), through tanh onto [-1, 1] when ``bounded``
    (the generator), else unbounded (the autoencoder); see the module docstring."""
    channels, size, _ = out_shape
    scales = doublings(size, size, MIN_MAP)
    smallest = size // 2**scales
    stack: list[nn.Module] = [
        nn.Linear(hidden, width * smallest * smallest),
        nn.Unflatten(1, (width, smallest, smallest)),
    ]
    for i in range(scales + 1):
        stack += [_conv(width, width), _conv(width, width)]
        if i < scales:
            stack.append(nn.Upsample(scale_factor=2, mode="nearest"))
    stack.append(nn.Conv2d(width, channels, 3, 1, 1))
    return nn.Sequential(*stack, nn.Tanh()) if bounded else nn.Sequential(*stack)


def glorot_init(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases for every conv and linear layer (the BEGAN
    reference implementation's initialisation; see the module docstring)."""
    if isinstance(module, nn.Conv2d | nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


def _weight(name: str, default: float) -> Param:
    return Param(
        float, default, f"beta of the {name} distance in the autoencoder loss", low=0.0, high=1e3
    )


@register
class BEGAN(Family):
    name = "began"
    params = {
        "n_z": replace(
            CONV_PARAMS["n_z"],
            default=64,
            help="latent size N_z, also the autoencoder's hidden size N_h",
        ),
        # A laptop's scale (docs/decisions.md, "BEGAN"); the papers' n is 64 or 128.
        "base_channels": replace(
            CONV_PARAMS["base_channels"],
            default=16,
            help=("filters n: the encoder's scale i has (i + 1) n, the decoders n"),
        ),
        "batch_size": replace(
            COMMON_PARAMS["batch_size"], default=16, help="images per step (the report's 16)"
        ),
        # gamma, lambda_k and lr depart from the report's 0.5, 0.001 and 8e-5: at those, k_t
        # falls to 0 on digits and G never learns them; at these it draws digits (still
        # collapsing in part onto thin 1s) and the colour patches' crops (docs/decisions.md,
        # "BEGAN", items 6 and 9).
        "lr": replace(
            COMMON_PARAMS["lr"],
            default=3e-4,
            help="Adam learning rate of both networks, before decay (report: 8e-5; paper: 1e-4)",
        ),
        "gamma": Param(
            float,
            1.0,
            "equilibrium E[L(G(z))] = gamma E[L(x)] (report: 0.5, 0.7; papers: at most 1; "
            "lower collapses onto thin digits here, 1.2 diverged on colour patches)",
            low=0.0,
            high=2.0,
            mutable=True,
        ),
        "lambda_k": Param(
            float,
            0.1,
            "learning rate of k_t (papers: 0.001, far too slow for a few thousand steps)",
            low=0.0,
            high=1.0,
            mutable=True,
        ),
        "beta_l1": _weight("l1", 1.0),
        "beta_gmsm": _weight("GMSM", 0.0),
        "beta_chrom": _weight("chrominance", 0.0),
        "betas": Param(
            str,
            "",
            "the three betas at once, l1-gmsm-chrom, e.g. '1-1-0' "
            "(empty: use beta_l1, beta_gmsm, beta_chrom)",
            rule=_betas_rule,
        ),
        "lr_decay_every": Param(int, 100_000, "halve lr every this many steps", low=1),
        "lr_floor": Param(float, 2e-5, "lr never decays below this", low=0.0, high=1.0),
    }
    extra_metrics = (
        "k_t",
        "m_global",
        *(f"{name}_{kind}" for name in DISTANCES for kind in ("real", "fake")),
    )

    @classmethod
    def resolve(
        cls, config: Mapping[str, Any], image_shape: tuple[int, int, int] | None = None
    ) -> dict[str, Any]:
        resolved = super().resolve(config, image_shape)
        if resolved["betas"]:
            for name, value in parse_betas(resolved["betas"]).items():
                knob = WEIGHT_KNOBS[name]
                if knob in config and float(config[knob]) != value:
                    raise ValueError(
                        f"betas {resolved['betas']!r} sets {knob} to {value:g}, "
                        f"but {knob} is {config[knob]}: give each weight once"
                    )
                resolved[knob] = value
        if not any(resolved[knob] > 0 for knob in WEIGHT_KNOBS.values()):
            raise ValueError(
                "beta_l1, beta_gmsm and beta_chrom are all 0: give at least one "
                "distance a positive weight"
            )
        if image_shape is not None and image_shape[0] != 3 and resolved["beta_chrom"] > 0:
            raise ValueError(
                f"beta_chrom > 0 needs colour (3-channel) images, these have "
                f"{image_shape[0]}: grey images carry no chrominance"
            )
        return resolved

    def __init__(self, config: dict[str, Any], image_shape, num_classes, device) -> None:
        super().__init__(config, image_shape, num_classes, device)
        c = self.config
        with seeded(c["seed"]):
            self.generator = began_decoder(c["n_z"], image_shape, c["base_channels"]).to(device)
            self.discriminator = nn.Sequential(
                OrderedDict(
                    encoder=began_encoder(image_shape, c["base_channels"], c["n_z"]),
                    decoder=began_decoder(c["n_z"], image_shape, c["base_channels"], bounded=False),
                )
            ).to(device)
            self.generator.apply(glorot_init)
            self.discriminator.apply(glorot_init)
        adam = {"lr": c["lr"], "betas": (c["beta1"], 0.999)}
        self.opt_g = torch.optim.Adam(self.generator.parameters(), **adam)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), **adam)
        self.betas = {name: c[knob] for name, knob in WEIGHT_KNOBS.items()}
        self.colour = image_shape[0] == 3
        self.k = 0.0  # k_t
        self.steps = 0  # optimiser steps taken, for the learning-rate decay

    @property
    def latent_dim(self) -> int:
        return self.config["n_z"]

    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ U(-1, 1)^N_z."""
        u = torch.rand(n, self.latent_dim, generator=generator or self.rng)
        return (u * 2 - 1).to(self.device)

    def modules(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        return {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "opt_g": self.opt_g,
            "opt_d": self.opt_d,
        }

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "k_t": self.k, "steps": self.steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.k, self.steps = float(state["k_t"]), int(state["steps"])

    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z)

    def current_lr(self) -> float:
        """``lr / 2^(steps // lr_decay_every)``, not below ``min(lr, lr_floor)``."""
        c = self.config
        return max(
            c["lr"] * 0.5 ** (self.steps // c["lr_decay_every"]), min(c["lr"], c["lr_floor"])
        )

    def train_step(self, real: list[torch.Tensor], labels: list[torch.Tensor]) -> dict[str, float]:
        x = real[-1]
        n = len(x)
        fake = self.generator(self.latent(n))
        # Real and generated images through D separately (no batch-norm: the same as one
        # batch), so each half's graph is walked once below. Distances in float32: under fp16
        # the GMSM's squared gradients underflow to 0, where sqrt's gradient is infinite.
        originals = [(x + 1) / 2, (fake.float() + 1) / 2]
        reconstructions = [(self.discriminator(v).float() + 1) / 2 for v in (x, fake)]
        loss_real, loss_fake = (
            mixed_distance(v, r, self.betas)
            for v, r in zip(originals, reconstructions, strict=True)
        )

        lr = self.current_lr()
        for opt in (self.opt_d, self.opt_g):
            opt.zero_grad(set_to_none=True)
            for group in opt.param_groups:
                group["lr"] = lr
        # One backward pass of L(G(z)) gives G its whole gradient and D the part that
        # d_loss = L(x) - k_t L(G(z)) weights by -k_t; L(x) then adds D's own part. Under fp16
        # both losses go through the family's loss scaler (see Family.optimise).
        scaler = self.loss_scaler
        scaled = scaler.scale if scaler is not None else (lambda loss: loss)
        scaled(loss_fake).backward()
        for p in self.discriminator.parameters():
            if p.grad is not None:
                p.grad.mul_(-self.k)
        scaled(loss_real).backward()
        for opt in (self.opt_d, self.opt_g):
            scaler.step(opt) if scaler is not None else opt.step()
        if scaler is not None:
            scaler.update()

        l_real, l_fake = loss_real.item(), loss_fake.item()
        balance = self.config["gamma"] * l_real - l_fake
        losses = {
            "d_loss": l_real - self.k * l_fake,
            "g_loss": l_fake,
            "m_global": l_real + abs(balance),
        }
        self.check_finite(losses)
        self.k = min(max(self.k + self.config["lambda_k"] * balance, 0.0), 1.0)
        self.steps += 1
        return {
            **losses,
            "k_t": self.k,
            **self._distance_means(torch.cat(originals), torch.cat(reconstructions), n),
        }

    @torch.no_grad()
    def _distance_means(
        self, originals: torch.Tensor, reconstructions: torch.Tensor, n: int
    ) -> dict[str, float]:
        """Each distance's mean over the real (first ``n``) and the generated images."""
        names = [name for name in DISTANCES if name != "chrom" or self.colour]
        terms = distance_terms(originals.detach(), reconstructions.detach(), names, "none")
        means = {f"{name}_{kind}": float("nan") for name in DISTANCES for kind in ("real", "fake")}
        for name, values in terms.items():
            means[f"{name}_real"] = values[:n].mean().item()
            means[f"{name}_fake"] = values[n:].mean().item()
        return means
