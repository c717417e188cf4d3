"""AC-GAN (Odena et al.; report 004): D predicts the source (real/fake) and the class.

G is the conditional DCGAN generator (one-hot label concatenated to z); D is the DCGAN
discriminator with ``1 + num_classes`` outputs (a source logit, then class logits) and does
not see the label. With the report's log-likelihoods

    L_S = E[log P(S=real | x_real)] + E[log P(S=fake | x_fake)]
    L_C = E[log P(C=c | x_real)] + E[log P(C=c | x_fake)]

D maximises L_S + L_C: it minimises the source BCE (real target ``real_label``, the one-sided
smoothing) plus the class cross-entropy on the real and the (detached) fake batch, reported as
``d_loss``. G maximises L_C - L_S: it minimises its source loss (``gen_loss``: non-saturating
-log D(G(z)) or minimax log(1 - D(G(z)))) plus the class cross-entropy of its samples against
their labels, reported as ``g_loss`` (plus classifier feedback when on). ``d_class_acc`` is
D's class accuracy on the real batches (epoch mean).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from trainables.families.base import (
    ADVERSARIAL_PARAMS,
    CONDITIONAL_PARAMS,
    CONV_PARAMS,
    ConditionalAdversarialFamily,
    discriminator_source_loss,
    generator_source_loss,
    register,
)
from trainables.families.layers import (
    LabelConcat,
    dcgan_init,
    discriminator_from,
    generator_from,
    seeded,
)


@register
class ACGAN(ConditionalAdversarialFamily):
    name = "acgan"
    params = {**CONV_PARAMS, **ADVERSARIAL_PARAMS, **CONDITIONAL_PARAMS}
    extra_metrics = ("d_class_acc",)

    def __init__(self, config: dict[str, Any], image_shape, num_classes, device) -> None:
        super().__init__(config, image_shape, num_classes, device)
        c = self.config
        with seeded(c["seed"]):
            self.generator = LabelConcat(
                generator_from(c, image_shape, c["n_z"] + num_classes), num_classes
            ).to(device)
            self.discriminator = discriminator_from(
                c, image_shape, out_features=1 + num_classes
            ).to(device)
            self.generator.apply(dcgan_init)
            self.discriminator.apply(dcgan_init)
        self.build_optimisers()

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """(N, 1 + num_classes): the source logit, then the class logits (labels unused)."""
        return self.discriminator(images)

    def discriminator_loss(self, real, real_labels, fake, fake_labels):
        real_out, fake_out = self.discriminator(real), self.discriminator(fake)
        source = discriminator_source_loss(
            real_out[:, :1], fake_out[:, :1], self.config["real_label"]
        )
        real_classes = real_out[:, 1:]
        classes = F.cross_entropy(real_classes, real_labels) + F.cross_entropy(
            fake_out[:, 1:], fake_labels
        )
        accuracy = (real_classes.argmax(dim=1) == real_labels).float().mean().item()
        return source + classes, {"d_class_acc": accuracy}

    def generator_loss(self, fake: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        out = self.discriminator(fake)
        loss = generator_source_loss(out[:, :1], self.config["gen_loss"]) + F.cross_entropy(
            out[:, 1:], labels
        )
        return loss + self.classifier_feedback_loss(fake, labels)
