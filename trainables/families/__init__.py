"""GAN/VAE families, one module each, registered by name."""

from trainables.families import (
    acgan,  # noqa: F401  (registers itself)
    began,  # noqa: F401  (registers itself)
    cdcgan,  # noqa: F401  (registers itself)
    cgan,  # noqa: F401  (registers itself)
    dcgan,  # noqa: F401  (registers itself)
    vae,  # noqa: F401  (registers vae and cvae)
    wgan,  # noqa: F401  (registers itself)
)
from trainables.families.base import FAMILIES, Family, TrainingDiverged, family_class

__all__ = ["FAMILIES", "Family", "TrainingDiverged", "family_class"]
