"""GAN/VAE families, one module each, registered by name."""

from trainables.families import dcgan  # noqa: F401  (registers itself)
from trainables.families.base import FAMILIES, Family, TrainingDiverged, family_class

__all__ = ["FAMILIES", "Family", "TrainingDiverged", "family_class"]
