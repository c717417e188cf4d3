"""DCGAN (Radford et al.) with configurable depth, width, normalisation and losses."""

from __future__ import annotations

from typing import Any

from trainables.families.base import ADVERSARIAL_PARAMS, CONV_PARAMS, AdversarialFamily, register
from trainables.families.layers import dcgan_init, discriminator_from, generator_from, seeded


@register
class DCGAN(AdversarialFamily):
    name = "dcgan"
    params = {**CONV_PARAMS, **ADVERSARIAL_PARAMS}

    def __init__(self, config: dict[str, Any], image_shape, num_classes, device) -> None:
        super().__init__(config, image_shape, num_classes, device)
        c = self.config
        with seeded(c["seed"]):
            self.generator = generator_from(c, image_shape).to(device)
            self.discriminator = discriminator_from(c, image_shape).to(device)
            self.generator.apply(dcgan_init)
            self.discriminator.apply(dcgan_init)
        self.build_optimisers()
