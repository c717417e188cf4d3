"""The shared base of every family: build from a config, step on batches, sample, checkpoint."""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from trainables.families.layers import ACTIVATIONS
from trainables.params import (
    COMMON_PARAMS,
    CONDITIONAL_METRICS,
    LOOP_METRICS,
    Param,
    resolve_config,
)

FAMILIES: dict[str, type[Family]] = {}

# Knobs shared by families, declared once here and spread into each family's ``params``.
# A convolutional generator/discriminator pair (trainables.families.layers.conv_*).
CONV_PARAMS: dict[str, Param] = {
    "g_layers": Param(int, 3, "generator conv layers", low=2, high=6),
    "d_layers": Param(int, 3, "discriminator conv layers", low=2, high=6),
    "base_channels": Param(int, 64, "channels at the image resolution", low=1, high=1024),
    "batchnorm": Param(bool, True, "batch-norm in G and (all but the first layer of) D"),
    "n_z": Param(int, 100, "latent size", low=1, high=4096),
    "upsample": Param(str, "transposed", "G upsampling", choices=("transposed", "nearest")),
    "activation": Param(str, "dcgan", "hidden activation", choices=ACTIVATIONS),
    "maxout_pieces": Param(int, 2, "pieces per maxout unit", low=2, high=8),
}
# The GAN objective of a discriminator trained with binary cross-entropy (AdversarialFamily).
ADVERSARIAL_PARAMS: dict[str, Param] = {
    "gen_loss": Param(str, "nonsaturating", "G loss", choices=("nonsaturating", "minimax")),
    "real_label": Param(
        float, 1.0, "one-sided label smoothing target", low=0.5, high=1.0, mutable=True
    ),
    "d_steps": Param(
        int, 1, "discriminator steps per generator step", low=1, high=20, mutable=True
    ),
}
# Families with ``conditional = True``.
CONDITIONAL_PARAMS: dict[str, Param] = {
    "classifier_feedback": Param(
        float,
        0.0,
        "alpha: alpha * CE(judge(G(z, y)), y) is added to G's loss (0 = off)",
        low=0.0,
        high=100.0,
        mutable=True,
    ),
}


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the trial stops with this message."""


def register(cls: type[Family]) -> type[Family]:
    """Class decorator: make a family available by its ``name``."""
    FAMILIES[cls.name] = cls
    return cls


def family_class(name: str) -> type[Family]:
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r} (known: {', '.join(sorted(FAMILIES))})")
    return FAMILIES[name]


_NO_JUDGE = (
    "classifier_feedback > 0 needs the dataset's judge classifier: call "
    "attach_judge(model) with a trained LeNet, or set classifier_feedback to 0"
)


def discriminator_source_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float
) -> torch.Tensor:
    """BCE of real logits against ``real_label`` (one-sided smoothing) plus fake logits against 0:
    the negated source log-likelihood L_S that D maximises."""
    target = torch.full_like(real_logits, real_label)
    return F.binary_cross_entropy_with_logits(
        real_logits, target
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def generator_source_loss(fake_logits: torch.Tensor, gen_loss: str) -> torch.Tensor:
    """G's source loss: 'nonsaturating' minimises -log D(G(z)); 'minimax' minimises
    log(1 - D(G(z))) = -softplus(logit)."""
    if gen_loss == "nonsaturating":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    return -F.softplus(fake_logits).mean()


class Family(ABC):
    """A generative model family.

    Subclasses declare ``name`` and ``params`` (their own knobs; the common ones are added),
    build their networks in ``__init__`` and implement ``train_step`` and ``sample``. Images
    enter and leave as floats in [-1, 1].
    """

    name: ClassVar[str]
    params: ClassVar[dict[str, Param]]
    conditional: ClassVar[bool] = False
    losses: ClassVar[tuple[str, ...]] = ("d_loss", "g_loss")  # what train_step returns
    extra_metrics: ClassVar[tuple[str, ...]] = ()  # per-epoch values beyond the losses
    # The attribute holding the network that maps latents to images: what ``g_ema`` averages.
    generator_name: ClassVar[str] = "generator"

    @classmethod
    def reported_metrics(cls) -> tuple[str, ...]:
        """Every metric name a trial of this family reports (what a spec may optimise)."""
        conditional = CONDITIONAL_METRICS if cls.conditional else ()
        return LOOP_METRICS + cls.losses + cls.extra_metrics + conditional

    def __init__(
        self,
        config: Mapping[str, Any],
        image_shape: tuple[int, int, int],
        num_classes: int,
        device: torch.device,
    ) -> None:
        self.config = self.resolve(config, image_shape)
        self.image_shape = image_shape
        self.num_classes = num_classes
        self.device = device
        # Training latents come from the family's own generator, not torch's global one, so
        # trials sharing a process do not disturb each other and a resume continues the stream.
        self.rng = torch.Generator().manual_seed(self.config["seed"])
        self.judge: nn.Module | None = None
        # fp16 mixed precision scales losses so small gradients survive (see trainables.device).
        self.loss_scaler: torch.amp.GradScaler | None = None
        # The moving average of the generator's weights (g_ema > 0), built at the first update.
        self.average: nn.Module | None = None
        self.average_updates = 0

    def optimise(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """One update of ``optimizer``'s parameters from ``loss``, through the loss scaler
        when one is set."""
        optimizer.zero_grad(set_to_none=True)
        if self.loss_scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.loss_scaler.scale(loss).backward()
        self.loss_scaler.step(optimizer)
        self.loss_scaler.update()

    def attach_judge(self, model: nn.Module | None) -> None:
        """Hand the family the dataset's (trained, frozen) judge classifier, or None.

        The trainable calls this right after building the family. The judge is not part of
        the family's state: it is never trained here and never checkpointed. A family whose
        ``classifier_feedback`` is on refuses None.
        """
        if model is not None:
            model.eval().requires_grad_(False)
        elif self.config.get("classifier_feedback", 0.0) > 0:
            raise ValueError(_NO_JUDGE)
        self.judge = model

    def classifier_feedback_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``alpha * CE(judge(images), labels)`` for generated ``images`` in [-1, 1] (the judge
        reads [0, 1]); a zero tensor when ``classifier_feedback`` (alpha) is 0."""
        alpha = self.config.get("classifier_feedback", 0.0)
        if alpha == 0:
            return images.new_zeros(())
        if self.judge is None:
            raise ValueError(_NO_JUDGE)
        return alpha * F.cross_entropy(self.judge(images.add(1).div(2)), labels)

    @classmethod
    def all_params(cls) -> dict[str, Param]:
        return {**COMMON_PARAMS, **cls.params}

    @classmethod
    def mutable_params(cls) -> tuple[str, ...]:
        """Knobs that may change between epochs of one trial (PBT's mutations)."""
        return tuple(name for name, param in cls.all_params().items() if param.mutable)

    @classmethod
    def resolve(
        cls, config: Mapping[str, Any], image_shape: tuple[int, int, int] | None = None
    ) -> dict[str, Any]:
        """The defaults overlaid with ``config``, each knob checked; ValueError if refused.

        Families with rules across knobs, or about the images (when ``image_shape`` is given),
        extend this. The spec check runs it on every grid point, the sweep again with the
        dataset's shape, and the trials table records its result as the trial's config.
        """
        return resolve_config(cls.all_params(), config)

    @property
    @abstractmethod
    def latent_dim(self) -> int: ...

    @property
    def real_batches_per_step(self) -> int:
        """Real batches one ``train_step`` consumes (e.g. one per discriminator step)."""
        return 1

    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Latent codes z ~ N(0, I) (from the family's generator unless one is given);
        families with another prior override this."""
        return torch.randn(n, self.latent_dim, generator=generator or self.rng).to(self.device)

    @abstractmethod
    def train_step(self, real: list[torch.Tensor], labels: list[torch.Tensor]) -> dict[str, float]:
        """One optimisation step on real batches in [-1, 1]; returns the step's losses."""

    @abstractmethod
    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] for latent codes ``z`` (and labels, for conditional families)."""

    @abstractmethod
    def modules(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        """Everything with state: networks and optimisers, by name (for checkpoints)."""

    def update_average(self) -> None:
        """After each ``train_step`` when ``g_ema`` > 0: move the averaged generator towards the
        trained one, ``average += r_n (trained - average)`` at the n-th update with
        ``r_n = max(1 - g_ema, 10 / (9 + n))``. The first update copies; early on the average
        spans about the last tenth of the steps, not back to the random start, and later the
        last ~1 / (1 - g_ema). Buffers (batch-norm statistics) are copied as they are."""
        decay = self.config["g_ema"]
        if decay == 0:
            return
        trained = getattr(self, self.generator_name)
        self.average_updates += 1
        if self.average is None:
            self.average = copy.deepcopy(trained).train(False).requires_grad_(False)
            return
        rate = max(1 - decay, 10 / (9 + self.average_updates))
        with torch.no_grad():
            for mean, weight in zip(self.average.parameters(), trained.parameters(), strict=True):
                mean.lerp_(weight, rate)
            for mine, theirs in zip(self.average.buffers(), trained.buffers(), strict=True):
                mine.copy_(theirs)

    @torch.no_grad()
    def draw(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] to show and score: :meth:`sample` through the averaged generator
        once there is one (``g_ema`` > 0), else through the trained one. Training calls
        :meth:`sample` itself."""
        if self.average is None:
            return self.sample(z, labels)
        trained = getattr(self, self.generator_name)
        setattr(self, self.generator_name, self.average)
        try:
            return self.sample(z, labels)
        finally:
            setattr(self, self.generator_name, trained)

    def state_dict(self) -> dict[str, Any]:
        state = {name: module.state_dict() for name, module in self.modules().items()}
        if self.average is not None:
            state["g_average"] = self.average.state_dict()
            state["g_average_updates"] = self.average_updates
        return {**state, "latent_rng": self.rng.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name, module in self.modules().items():
            module.load_state_dict(state[name])
        if "latent_rng" in state:
            self.rng.set_state(state["latent_rng"])
        self.average, self.average_updates = None, 0
        if "g_average" in state:
            trained = getattr(self, self.generator_name)
            self.average = copy.deepcopy(trained).train(False).requires_grad_(False)
            self.average.load_state_dict(state["g_average"])
            self.average_updates = int(state["g_average_updates"])

    def apply_optimiser_config(self) -> None:
        """Write ``lr`` and ``beta1`` of the config into every optimiser: after loading a
        checkpoint written under other values (a PBT exploit), the config's are in force.
        The other mutable knobs are read from the config at every step."""
        for module in self.modules().values():
            if not isinstance(module, torch.optim.Optimizer):
                continue
            for group in module.param_groups:
                group["lr"] = self.config["lr"]
                if "betas" in group:
                    group["betas"] = (self.config["beta1"], group["betas"][1])

    def train(self, mode: bool = True) -> None:
        for module in self.modules().values():
            if isinstance(module, nn.Module):
                module.train(mode)

    @staticmethod
    def check_finite(losses: Mapping[str, float]) -> None:
        bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
        if bad:
            shown = ", ".join(f"{k}={v}" for k, v in bad.items())
            raise TrainingDiverged(f"training diverged: {shown}")


class AdversarialFamily(Family):
    """A generator and a discriminator trained against each other with Adam (``lr``, ``beta1``).

    One ``train_step`` makes ``d_steps`` discriminator steps (one per real batch) and then one
    generator step. Subclasses build ``generator``/``discriminator`` and call
    :meth:`build_optimisers`; conditional ones override :meth:`sample` and :meth:`discriminate`
    to pass labels (fake labels are drawn uniformly from the family's RNG), and any family may
    override the two loss hooks. Needs ``n_z`` and :data:`ADVERSARIAL_PARAMS` in its params.
    """

    generator: nn.Module
    discriminator: nn.Module

    def build_optimisers(self) -> None:
        betas = (self.config["beta1"], 0.999)
        lr = self.config["lr"]
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas)

    @property
    def latent_dim(self) -> int:
        return self.config["n_z"]

    @property
    def real_batches_per_step(self) -> int:
        return self.config["d_steps"]

    def modules(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        return {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "opt_g": self.opt_g,
            "opt_d": self.opt_d,
        }

    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z)

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """D's logits for ``images`` (with their labels, for conditional families)."""
        return self.discriminator(images)

    def fake_labels(self, n: int) -> torch.Tensor | None:
        """Labels to generate with: uniform over the classes for conditional families."""
        if not self.conditional:
            return None
        return torch.randint(self.num_classes, (n,), generator=self.rng).to(self.device)

    def discriminator_loss(
        self,
        real: torch.Tensor,
        real_labels: torch.Tensor,
        fake: torch.Tensor,
        fake_labels: torch.Tensor | None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """D's loss on a real and a (detached) fake batch, and per-step metrics to average."""
        real_logits = self.discriminate(real, real_labels)
        fake_logits = self.discriminate(fake, fake_labels)
        return discriminator_source_loss(real_logits, fake_logits, self.config["real_label"]), {}

    def generator_loss(self, fake: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """G's loss on its own samples: the source loss, plus the judge's classifier feedback
        for conditional families."""
        loss = generator_source_loss(self.discriminate(fake, labels), self.config["gen_loss"])
        if labels is not None:
            loss = loss + self.classifier_feedback_loss(fake, labels)
        return loss

    def train_step(self, real: list[torch.Tensor], labels: list[torch.Tensor]) -> dict[str, float]:
        d_losses, stats = [], {}
        for batch, batch_labels in zip(real, labels, strict=True):
            loss, step_stats = self._discriminator_step(batch, batch_labels)
            d_losses.append(loss)
            for name, value in step_stats.items():
                stats[name] = stats.get(name, 0.0) + value / len(real)
        n = len(real[-1])
        z = self.latent(n)
        fake_labels = self.fake_labels(n)
        g_loss = self.generator_loss(self.sample(z, fake_labels), fake_labels)
        self.optimise(self.opt_g, g_loss)
        losses = {"d_loss": sum(d_losses) / len(d_losses), "g_loss": g_loss.item(), **stats}
        self.check_finite(losses)
        return losses

    def _discriminator_step(
        self, real: torch.Tensor, labels: torch.Tensor
    ) -> tuple[float, dict[str, float]]:
        with torch.no_grad():
            z = self.latent(len(real))
            fake_labels = self.fake_labels(len(real))
            fake = self.sample(z, fake_labels)
        loss, stats = self.discriminator_loss(real, labels, fake, fake_labels)
        self.optimise(self.opt_d, loss)
        return loss.item(), stats


class ConditionalAdversarialFamily(AdversarialFamily):
    """An adversarial pair whose ``generator`` is called as G(z, y) and ``discriminator`` as
    D(x, y); fake labels are drawn uniformly over the classes from the family's RNG, and G's
    loss includes the judge's classifier feedback (``classifier_feedback`` in params)."""

    conditional = True

    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            raise ValueError(f"{self.name} is conditional: sample needs labels")
        return self.generator(z, labels)

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.discriminator(images, labels)
