"""Dense conditional GAN (Mirza & Osindero; report 002's "classical CGAN"): MLP G and D.

G maps [z, one_hot(y)] through ``hidden_layers`` fully connected layers of ``hidden_units``
units to the image; D maps [flattened image, one_hot(y)] through as many layers of as many
units to one logit. The hidden widths are two integers rather than a list so that a spec can
search them (``hidden_layers: 2, hidden_units: 256`` means 256-256 in both G and D).
Batch-norm (optional) follows every hidden layer of G; D has none, as in the original's
maxout D: with it, this dense D told real from generated batches apart by their statistics
and overpowered G (on mnist5k, label accuracy stayed at chance, 0.10, for 4,000 steps and the
samples turned to noise; without it, 0.76 after 3,500 steps; docs/decisions.md). Losses,
label smoothing, ``d_steps`` and classifier feedback are those of the other adversarial
families.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from trainables.families.base import (
    ADVERSARIAL_PARAMS,
    CONDITIONAL_PARAMS,
    CONV_PARAMS,
    ConditionalAdversarialFamily,
    register,
)
from trainables.families.layers import (
    LabelConcat,
    dcgan_init,
    dense_discriminator,
    dense_generator,
    seeded,
)
from trainables.params import COMMON_PARAMS, Param


@register
class CGAN(ConditionalAdversarialFamily):
    name = "cgan"
    params = {
        "hidden_layers": Param(
            int, 3, "hidden fully connected layers in G and in D", low=1, high=8
        ),
        "hidden_units": Param(int, 256, "units per hidden layer (G and D)", low=1, high=8192),
        "batchnorm": Param(bool, True, "batch-norm after every hidden layer of G (D has none)"),
        **{key: CONV_PARAMS[key] for key in ("n_z", "activation", "maxout_pieces")},
        # An MLP pair needs more, larger steps than the conv families in a 15-epoch budget:
        # at batch 64 and lr 2e-4 it ended mnist5k's 15 epochs at FID 251 with speckled
        # backgrounds; at these, 27 over 3 seeds (docs/decisions.md, "Families").
        "batch_size": replace(COMMON_PARAMS["batch_size"], default=16),
        "lr": replace(COMMON_PARAMS["lr"], default=5e-4),
        **ADVERSARIAL_PARAMS,
        **CONDITIONAL_PARAMS,
    }

    def __init__(self, config: dict[str, Any], image_shape, num_classes, device) -> None:
        super().__init__(config, image_shape, num_classes, device)
        c = self.config
        layers, units = c["hidden_layers"], c["hidden_units"]
        with seeded(c["seed"]):
            self.generator = LabelConcat(
                dense_generator(
                    c["n_z"] + num_classes,
                    image_shape,
                    layers,
                    units,
                    c["batchnorm"],
                    c["activation"],
                    c["maxout_pieces"],
                ),
                num_classes,
            ).to(device)
            self.discriminator = LabelConcat(
                dense_discriminator(
                    math.prod(image_shape) + num_classes,
                    layers,
                    units,
                    False,
                    c["activation"],
                    pieces=c["maxout_pieces"],
                ),
                num_classes,
            ).to(device)
            self.generator.apply(dcgan_init)
            self.discriminator.apply(dcgan_init)
        self.build_optimisers()
