"""Classifier two-sample test (C2ST, Lopez-Paz & Oquab 2016) on images or on feature vectors.

A classifier learns to tell real from generated samples; under H0 (one distribution) no classifier
beats chance on held-out data, so its test accuracy is Binomial(n_test, 1/2) / n_test.

Labels: class 0 = generated, class 1 = real (the convention of the interpretability report).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.stats import binom
from torch import nn
from torch.nn import functional as F

from evaluators.images import as_float_images

GENERATED_LABEL = 0
REAL_LABEL = 1
MIN_PER_SET = 8  # below this a split would hold one or two samples per class


@dataclass(frozen=True)
class _Fit:
    """How the classifier is fitted and tested: the test and validation shares of each set,
    at most ``max_epochs`` epochs stopping after ``patience`` without gain, minibatches, Adam's
    learning rate, the device it trains on."""

    test_fraction: float
    val_fraction: float
    max_epochs: int
    patience: int
    batch_size: int
    lr: float
    device: str | torch.device


class C2STClassifier(nn.Module):
    """DCGAN-discriminator-style C2ST classifier: f: [0, 1]^(C x H x W) -> R^2 (logits).

    Layers: Conv2d(kernel 3, stride 2, padding 1) + LeakyReLU(0.2), repeated; the first has
    ``width`` output channels and each next one doubles them. Each conv maps a side s to
    ceil(s / 2); there are as many as it takes to bring max(H, W) to <= 4 (at least one), e.g.
    two for 16x16, three for 28x28 or 32x32. Then Flatten and Linear(channels * h * w, 2). No
    batch norm or dropout, so train and eval modes compute the same function.

    in_channels: C of the input images. image_size: side of square images, or (H, W).
    width: output channels of the first conv (default 32).
    """

    def __init__(self, in_channels: int, image_size: int | tuple[int, int], width: int = 32):
        super().__init__()
        height, width_px = (image_size, image_size) if isinstance(image_size, int) else image_size
        if min(in_channels, height, width_px, width) < 1:
            raise ValueError(
                f"need positive in_channels, image size and width, got {in_channels}, "
                f"{image_size}, {width}"
            )
        layers: list[nn.Module] = []
        channels_in, channels_out = in_channels, width
        while True:
            layers += [
                nn.Conv2d(channels_in, channels_out, kernel_size=3, stride=2, padding=1),
                nn.LeakyReLU(0.2),
            ]
            height, width_px = (height + 1) // 2, (width_px + 1) // 2
            channels_in, channels_out = channels_out, channels_out * 2
            if max(height, width_px) <= 4:
                break
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels_in * height * width_px, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class _FeatureClassifier(nn.Module):
    """Standardise with training-split statistics, then an MLP (or logistic regression)."""

    def __init__(self, train_inputs: torch.Tensor, hidden: int):
        super().__init__()
        mean, std = train_inputs.mean(0), train_inputs.std(0)
        # Constant features carry no information; dividing by 1 keeps them finite.
        self.register_buffer("mean", mean)
        self.register_buffer("std", torch.where(std > 1e-8, std, torch.ones_like(std)))
        dim = train_inputs.shape[1]
        if hidden > 0:
            self.net = nn.Sequential(
                nn.Linear(dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 2)
            )
        else:
            self.net = nn.Linear(dim, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


@dataclass(frozen=True)
class C2STResult:
    """Held-out results of a classifier two-sample test (class 0 = generated, class 1 = real).

    accuracy: share of the n_test held-out samples classified correctly (half real, half
    generated, so it equals (accuracy_real + accuracy_generated) / 2). accuracy_real /
    accuracy_generated: recall of class 1 / class 0 on the test split. p_value: one-sided exact
    binomial P(X >= correct | n_test, 1/2). epochs: epochs actually trained (early stopping
    included); best_epoch: the epoch whose weights were kept; validation_accuracy: its
    validation accuracy. n_per_set: samples used from each set (min of the two sizes). model: the
    trained classifier (best weights, eval mode, on the training device); test_inputs /
    test_labels: the test split on CPU, e.g. for :func:`evaluators.smoothgrad.smoothgrad`.
    """

    accuracy: float
    accuracy_real: float
    accuracy_generated: float
    p_value: float
    n_test: int
    epochs: int
    best_epoch: int
    validation_accuracy: float
    n_per_set: int
    model: nn.Module = field(repr=False, compare=False)
    test_inputs: torch.Tensor = field(repr=False, compare=False)
    test_labels: torch.Tensor = field(repr=False, compare=False)


def binomial_p_value(correct: int, n: int) -> float:
    """One-sided exact p-value of ``correct`` successes out of ``n`` under H0: p = 1/2.

    P(X >= correct) for X ~ Binomial(n, 1/2) = sum_{i >= correct} C(n, i) / 2^n, computed as
    ``scipy.stats.binom.sf(correct - 1, n, 0.5)``. 0 <= correct <= n.
    """
    if not 0 <= correct <= n:
        raise ValueError(f"need 0 <= correct <= n, got correct={correct}, n={n}")
    return float(binom.sf(correct - 1, n, 0.5))


def c2st(
    real: np.ndarray | torch.Tensor,
    generated: np.ndarray | torch.Tensor,
    *,
    seed: int = 0,
    test_fraction: float = 0.25,
    val_fraction: float = 0.25,
    max_epochs: int = 20,
    patience: int = 3,
    batch_size: int = 64,
    lr: float = 2e-4,
    width: int = 32,
    device: str | torch.device = "cpu",
) -> C2STResult:
    """Classifier two-sample test on images with a :class:`C2STClassifier`.

    real, generated: images (N, C, H, W) (or (N, H, W) grey) of the same C, H, W, float on
    [0, 1] or uint8 on 0..255 (divided by 255). Labels: generated = class 0, real = class 1.

    Procedure (all randomness from ``seed``; global torch/numpy RNG states are not touched):
    1. Balance: keep n = min(N_real, N_generated) samples of each set, a seeded random subset.
    2. Split each class the same way (stratified): round(test_fraction * n) test,
       round(val_fraction * n) validation (each at least 1), the rest training; pool the classes.
    3. Train from a seeded initialisation with cross-entropy and Adam(lr, betas=(0.5, 0.999)),
       minibatches of ``batch_size`` reshuffled every epoch, at most ``max_epochs`` epochs.
    4. Early stopping on validation accuracy: after each epoch, an epoch improves on the best so
       far if its validation accuracy is higher, or equal with a lower validation cross-entropy
       (the tie-break keeps early plateaus at 1/2 from stopping a classifier that is still
       learning); keep the best epoch's weights and stop after ``patience`` epochs without
       improvement.
    5. With the best weights report test accuracy overall and per class, and the exact p-value
       P(X >= correct | n_test, 1/2) (see :func:`binomial_p_value`).

    width: channels of the classifier's first conv (doubling per layer). device: where the
    classifier trains; the data stays on CPU and moves over one batch at a time.

    Raises ValueError with fewer than 8 samples in either set, mismatched shapes, or fractions
    that leave no training samples.
    """
    real_images, generated_images = as_float_images(real), as_float_images(generated)
    if real_images.shape[1:] != generated_images.shape[1:]:
        raise ValueError(
            f"real and generated images differ in shape: {tuple(real_images.shape[1:])} vs "
            f"{tuple(generated_images.shape[1:])}"
        )
    channels, height, width_px = real_images.shape[1:]
    fit = _Fit(test_fraction, val_fraction, max_epochs, patience, batch_size, lr, device)
    return _two_sample_test(
        real_images,
        generated_images,
        lambda _: C2STClassifier(channels, (height, width_px), width=width),
        seed,
        fit,
    )


def c2st_features(
    real_features: np.ndarray | torch.Tensor,
    generated_features: np.ndarray | torch.Tensor,
    *,
    seed: int = 0,
    hidden: int = 64,
    test_fraction: float = 0.25,
    val_fraction: float = 0.25,
    max_epochs: int = 20,
    patience: int = 3,
    batch_size: int = 64,
    lr: float = 1e-3,
    device: str | torch.device = "cpu",
) -> C2STResult:
    """Classifier two-sample test on feature vectors (e.g. LeNet judge features, (N, 84)).

    real_features, generated_features: finite float arrays (N_real, D) and (N_generated, D),
    any scale. Classifier: standardisation with the training split's per-feature mean and std,
    then Linear(D, hidden) + LeakyReLU(0.2) + Linear(hidden, 2); ``hidden=0`` gives logistic
    regression, Linear(D, 2). The default lr is 1e-3 rather than 2e-4 because this small
    network on standardised inputs converges within a few epochs at that rate.

    Balancing, stratified splits, training, early stopping, labels (generated = 0, real = 1) and
    the p-value are exactly those of :func:`c2st`.
    """
    real_t = _feature_tensor(real_features, "real_features")
    generated_t = _feature_tensor(generated_features, "generated_features")
    if real_t.shape[1] != generated_t.shape[1]:
        raise ValueError(f"feature dimensions differ: {real_t.shape[1]} vs {generated_t.shape[1]}")
    if hidden < 0:
        raise ValueError(f"hidden must be >= 0, got {hidden}")
    fit = _Fit(test_fraction, val_fraction, max_epochs, patience, batch_size, lr, device)
    return _two_sample_test(
        real_t,
        generated_t,
        lambda train_inputs: _FeatureClassifier(train_inputs, hidden),
        seed,
        fit,
    )


def _feature_tensor(features: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    if isinstance(features, np.ndarray) and not features.flags.writeable:
        features = features.copy()
    tensor = torch.as_tensor(features).detach().cpu().float()
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be (N, D), got shape {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return tensor


def _two_sample_test(
    real: torch.Tensor,
    generated: torch.Tensor,
    make_model: Callable[[torch.Tensor], nn.Module],
    seed: int,
    fit: _Fit,
) -> C2STResult:
    """The shared procedure of :func:`c2st`; ``make_model`` gets the training inputs."""
    test_fraction, val_fraction, batch_size = fit.test_fraction, fit.val_fraction, fit.batch_size
    n_real, n_generated = len(real), len(generated)
    if min(n_real, n_generated) < MIN_PER_SET:
        raise ValueError(
            f"C2ST needs at least {MIN_PER_SET} samples per set, got {n_real} real and "
            f"{n_generated} generated"
        )
    if not (test_fraction > 0 and val_fraction > 0 and test_fraction + val_fraction < 1):
        raise ValueError(
            "need test_fraction > 0, val_fraction > 0 and test_fraction + val_fraction < 1, got "
            f"{test_fraction} and {val_fraction}"
        )
    if fit.max_epochs < 1 or fit.patience < 1 or batch_size < 1:
        raise ValueError("max_epochs, patience and batch_size must be >= 1")

    n = min(n_real, n_generated)
    n_test = max(1, round(test_fraction * n))
    n_val = max(1, round(val_fraction * n))
    if n - n_test - n_val < 1:
        raise ValueError(f"{n} samples per set leave no training samples after the splits")
    rng = torch.Generator().manual_seed(seed)
    # A random permutation both subsamples the larger set and shuffles before the split.
    real = real[torch.randperm(n_real, generator=rng)[:n]]
    generated = generated[torch.randperm(n_generated, generator=rng)[:n]]

    def split(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = torch.cat([real[start:stop], generated[start:stop]])
        labels = torch.cat(
            [
                torch.full((stop - start,), REAL_LABEL),
                torch.full((stop - start,), GENERATED_LABEL),
            ]
        )
        return inputs, labels

    test_x, test_y = split(0, n_test)
    val_x, val_y = split(n_test, n_test + n_val)
    train_x, train_y = split(n_test + n_val, n)

    with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
        torch.manual_seed(seed)
        model = make_model(train_x).to(fit.device)
    best_accuracy, best_epoch, epochs = _train_early_stopped(
        model, (train_x, train_y), (val_x, val_y), rng, fit
    )

    correct = _predict(model, test_x, batch_size, fit.device)[1] == test_y
    k = int(correct.sum())
    return C2STResult(
        accuracy=k / len(test_y),
        accuracy_real=float(correct[test_y == REAL_LABEL].double().mean()),
        accuracy_generated=float(correct[test_y == GENERATED_LABEL].double().mean()),
        p_value=binomial_p_value(k, len(test_y)),
        n_test=len(test_y),
        epochs=epochs,
        best_epoch=best_epoch,
        validation_accuracy=best_accuracy,
        n_per_set=n,
        model=model,
        test_inputs=test_x,
        test_labels=test_y,
    )


def _train_early_stopped(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    validation: tuple[torch.Tensor, torch.Tensor],
    rng: torch.Generator,
    fit: _Fit,
) -> tuple[float, int, int]:
    """Steps 3 and 4 of :func:`c2st`: train ``model`` on ``train`` (inputs, labels) with
    minibatches drawn from ``rng`` and stop early on ``validation``; ``model`` ends with the
    best epoch's weights, in eval mode. Returns (its validation accuracy, the best epoch, the
    epochs run)."""
    train_x, train_y = train
    batch_size, device = fit.batch_size, fit.device
    optimiser = torch.optim.Adam(model.parameters(), lr=fit.lr, betas=(0.5, 0.999))
    best_accuracy, best_loss, best_epoch, best_state = -1.0, float("inf"), 0, None
    epochs_without_gain, epoch = 0, 0
    for epoch in range(1, fit.max_epochs + 1):
        model.train()
        order = torch.randperm(len(train_x), generator=rng)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            loss = F.cross_entropy(model(train_x[batch].to(device)), train_y[batch].to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        accuracy, loss = _evaluate(model, *validation, batch_size, device)
        # Accuracy is coarse (it often sits at 1/2 for the first epochs while the classifier is
        # still learning), so equal accuracy with lower validation loss also counts as progress.
        if accuracy > best_accuracy or (accuracy == best_accuracy and loss < best_loss):
            best_accuracy, best_loss, best_epoch, epochs_without_gain = accuracy, loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            epochs_without_gain += 1
            if epochs_without_gain >= fit.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return best_accuracy, best_epoch, epoch


@torch.no_grad()
def _predict(
    model: nn.Module, inputs: torch.Tensor, batch_size: int, device: str | torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (float32) and predicted classes (their argmax) on CPU, evaluated in batches."""
    model.eval()
    logits = torch.cat(
        [
            model(inputs[start : start + batch_size].to(device)).float().cpu()
            for start in range(0, len(inputs), batch_size)
        ]
    )
    return logits, logits.argmax(1)


def _evaluate(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    device: str | torch.device,
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` on a split."""
    logits, predicted = _predict(model, inputs, batch_size, device)
    return float((predicted == labels).float().mean()), float(F.cross_entropy(logits, labels))
