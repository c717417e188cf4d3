"""DCGAN (Radford et al.) with configurable depth, width, normalisation and losses."""

from __future__ import annotations

from typing import Any

import torch

from trainables.families.base import ADVERSARIAL_PARAMS, CONV_PARAMS, AdversarialFamily, register
from trainables.families.layers import conv_discriminator, conv_generator, dcgan_init


@register
class DCGAN(AdversarialFamily):
    name = "dcgan"
    params = {**CONV_PARAMS, **ADVERSARIAL_PARAMS}

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
        self.build_optimisers()
