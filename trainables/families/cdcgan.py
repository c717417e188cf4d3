"""Conditional DCGAN (report 002's CDCGAN): the DCGAN pair with the class label fed to both.

G reads the one-hot label concatenated to z. D reads the label as constant one-hot feature
planes of the image size, either concatenated to the image channels (``label_input: concat``,
the report's baseline) or passed through their own input convolution whose output is
concatenated to the image's first-layer output (``label_input: conv``, the report's "new
concat"). Depth, width, activations, losses, label smoothing and ``d_steps`` are DCGAN's; the
report's baseline is ``g_layers: 3, d_layers: 3``, its "extended" model 5 and 5.
"""

from __future__ import annotations

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
    LabelledDiscriminator,
    dcgan_init,
    discriminator_from,
    discriminator_input_layer,
    generator_from,
    seeded,
)
from trainables.params import Param


@register
class CDCGAN(ConditionalAdversarialFamily):
    name = "cdcgan"
    params = {
        **CONV_PARAMS,
        **ADVERSARIAL_PARAMS,
        "label_input": Param(
            str,
            "concat",
            "how D reads the label: one-hot planes concatenated to the image "
            "(concat) or through their own input conv, concatenated to the image's first-layer "
            "output (conv)",
            choices=("concat", "conv"),
        ),
        **CONDITIONAL_PARAMS,
    }

    def __init__(self, config: dict[str, Any], image_shape, num_classes, device) -> None:
        super().__init__(config, image_shape, num_classes, device)
        c = self.config
        channels, size, width = image_shape
        with seeded(c["seed"]):
            self.generator = LabelConcat(
                generator_from(c, image_shape, c["n_z"] + num_classes), num_classes
            ).to(device)
            if c["label_input"] == "concat":
                net = discriminator_from(c, (channels + num_classes, size, width))
                label_layer = None
            else:
                net = discriminator_from(c, image_shape, side_channels=c["base_channels"])
                label_layer = discriminator_input_layer(
                    num_classes,
                    size,
                    c["d_layers"],
                    c["base_channels"],
                    c["activation"],
                    c["maxout_pieces"],
                )
            self.discriminator = LabelledDiscriminator(net, num_classes, label_layer).to(device)
            self.generator.apply(dcgan_init)
            self.discriminator.apply(dcgan_init)
        self.build_optimisers()
