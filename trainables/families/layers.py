"""Convolutional generator and discriminator stacks whose depth is a hyperparameter.

Depth and output size are independent: the stack upsamples (or downsamples) by 2 as often as
the image size allows (down to a 3x3..7x7 stem) and fills the remaining layers with
size-preserving 3x3 convolutions, so ``g_layers`` of 2..6 all give 28x28, 32x32 or 64x64.

Also here: fully connected stacks (dense GANs) and the label-conditioning wrappers shared by
the conditional families (one-hot code concatenated to a flat input; one-hot planes
concatenated to an image or passed through their own input convolution).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

ACTIVATIONS = ("dcgan", "relu", "leakyrelu", "elu", "maxout")


class Maxout(nn.Module):
    """Maximum over ``pieces`` groups of channels: (N, C*pieces, ...) -> (N, C, ...)."""

    def __init__(self, pieces: int) -> None:
        super().__init__()
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        return x.view(n, c // self.pieces, self.pieces, *x.shape[2:]).amax(dim=2)


def activation(name: str, role: str, pieces: int = 2) -> tuple[nn.Module, int]:
    """The activation module for ``role`` ('g' or 'd') and the channel factor it needs.

    'dcgan' is the DCGAN paper's pair: ReLU in G, LeakyReLU(0.2) in D.
    """
    if name == "maxout":
        return Maxout(pieces), pieces
    if name == "relu" or (name == "dcgan" and role == "g"):
        return nn.ReLU(), 1
    if name == "leakyrelu" or name == "dcgan":
        return nn.LeakyReLU(0.2), 1
    if name == "elu":
        return nn.ELU(), 1
    raise ValueError(f"unknown activation {name!r}")


def doublings(size: int, layers: int, min_stem: int = 3) -> int:
    """How many of ``layers - 1`` layers can halve ``size`` exactly, keeping the stem >=
    ``min_stem``."""
    count = 0
    while (
        count < layers - 1 and size % 2 ** (count + 1) == 0 and size // 2 ** (count + 1) >= min_stem
    ):
        count += 1
    return count


def _block(
    conv: Callable[[int], nn.Module],
    out_channels: int,
    batchnorm: bool,
    act: str,
    role: str,
    pieces: int,
) -> nn.Sequential:
    module, factor = activation(act, role, pieces)
    layers: list[nn.Module] = [conv(out_channels * factor)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(out_channels * factor))
    layers.append(module)
    return nn.Sequential(*layers)


def conv_generator(
    in_features: int,
    out_shape: tuple[int, int, int],
    layers: int,
    base_channels: int,
    batchnorm: bool,
    upsample: str,
    act: str,
    pieces: int = 2,
) -> nn.Sequential:
    """z (N, in_features) -> images (N, C, H, W) in [-1, 1] through ``layers`` conv layers.

    Layer 1 is the transpose of an unpadded unit-stride convolution from 1x1 to the stem size
    (as in DCGAN); then size-preserving 3x3 layers; then doublings; the last layer emits C
    channels through tanh. Channels halve towards the output, from at most 8 * base_channels.
    """
    channels_out, size, _ = out_shape
    ups = doublings(size, layers)
    stem = size // 2**ups
    widths = [
        min(base_channels * 2 ** (layers - 2 - j), base_channels * 8) for j in range(layers - 1)
    ]

    def up(cin: int) -> Callable[[int], nn.Module]:
        if upsample == "nearest":
            return lambda cout: nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1)
            )
        return lambda cout: nn.ConvTranspose2d(cin, cout, 4, 2, 1)

    stack: list[nn.Module] = [
        nn.Unflatten(1, (in_features, 1, 1)),
        _block(
            lambda cout: nn.ConvTranspose2d(in_features, cout, stem, 1, 0),
            widths[0],
            batchnorm,
            act,
            "g",
            pieces,
        ),
    ]
    same = layers - 1 - ups
    for j in range(1, layers - 1):
        cin = widths[j - 1]
        conv = (lambda cout, cin=cin: nn.Conv2d(cin, cout, 3, 1, 1)) if j - 1 < same else up(cin)
        stack.append(_block(conv, widths[j], batchnorm, act, "g", pieces))
    last = up(widths[-1]) if ups else (lambda cout: nn.Conv2d(widths[-1], cout, 3, 1, 1))
    stack += [last(channels_out), nn.Tanh()]
    return nn.Sequential(*stack)


def conv_discriminator(
    in_shape: tuple[int, int, int],
    layers: int,
    base_channels: int,
    batchnorm: bool,
    act: str,
    out_features: int = 1,
    pieces: int = 2,
    side_channels: int = 0,
) -> nn.Sequential:
    """images (N, C, H, W) -> (N, out_features) logits through ``layers`` conv layers.

    Stride-2 4x4 convolutions halve the size as often as the generator doubles it, then
    size-preserving 3x3 layers, then a convolution over the whole remaining map. No batch-norm
    on the first layer (DCGAN). ``side_channels`` widens the second layer's input for maps
    concatenated to the first layer's output (e.g. a label convolution's, from
    :func:`discriminator_input_layer`); the stack is then run in two parts, as
    :class:`LabelledDiscriminator` does.
    """
    channels_in, size, _ = in_shape
    downs = doublings(size, layers)
    widths = [min(base_channels * 2**j, base_channels * 8) for j in range(layers - 1)]
    stack: list[nn.Module] = []
    cin = channels_in
    for j in range(layers - 1):
        if j < downs:
            conv = lambda cout, cin=cin: nn.Conv2d(cin, cout, 4, 2, 1)  # noqa: E731
        else:
            conv = lambda cout, cin=cin: nn.Conv2d(cin, cout, 3, 1, 1)  # noqa: E731
        stack.append(_block(conv, widths[j], batchnorm and j > 0, act, "d", pieces))
        cin = widths[j] + (side_channels if j == 0 else 0)
    final = size // 2**downs
    stack += [nn.Conv2d(cin, out_features, final, 1, 0), nn.Flatten()]
    return nn.Sequential(*stack)


def discriminator_input_layer(
    in_channels: int,
    size: int,
    layers: int,
    base_channels: int,
    act: str,
    pieces: int = 2,
) -> nn.Sequential:
    """A layer with the geometry of :func:`conv_discriminator`'s first one (same kernel, stride,
    output size and ``base_channels`` width, no batch-norm) reading ``in_channels`` maps of
    ``size`` x ``size``: a second input path, such as a label convolution."""
    if doublings(size, layers) > 0:
        conv = lambda cout: nn.Conv2d(in_channels, cout, 4, 2, 1)  # noqa: E731
    else:
        conv = lambda cout: nn.Conv2d(in_channels, cout, 3, 1, 1)  # noqa: E731
    return _block(conv, base_channels, False, act, "d", pieces)


def _dense_block(
    in_features: int, out_features: int, batchnorm: bool, act: str, role: str, pieces: int
) -> nn.Sequential:
    module, factor = activation(act, role, pieces)
    layers: list[nn.Module] = [nn.Linear(in_features, out_features * factor)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(out_features * factor))
    layers.append(module)
    return nn.Sequential(*layers)


def dense_generator(
    in_features: int,
    out_shape: tuple[int, int, int],
    layers: int,
    units: int,
    batchnorm: bool,
    act: str,
    pieces: int = 2,
) -> nn.Sequential:
    """(N, in_features) -> images (N, C, H, W) in [-1, 1]: ``layers`` hidden fully connected
    layers of ``units`` units (each with optional batch-norm and the activation), then a
    linear layer to C*H*W pixels and tanh."""
    stack: list[nn.Module] = []
    width = in_features
    for _ in range(layers):
        stack.append(_dense_block(width, units, batchnorm, act, "g", pieces))
        width = units
    pixels = out_shape[0] * out_shape[1] * out_shape[2]
    stack += [nn.Linear(width, pixels), nn.Tanh(), nn.Unflatten(1, tuple(out_shape))]
    return nn.Sequential(*stack)


def dense_discriminator(
    in_features: int,
    layers: int,
    units: int,
    batchnorm: bool,
    act: str,
    out_features: int = 1,
    pieces: int = 2,
) -> nn.Sequential:
    """(N, ...) flattened to (N, in_features) -> (N, out_features) logits: ``layers`` hidden
    fully connected layers of ``units`` units with the activation, batch-norm (when on) on all
    but the first (as in the convolutional D), then a linear output."""
    stack: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for j in range(layers):
        stack.append(_dense_block(width, units, batchnorm and j > 0, act, "d", pieces))
        width = units
    stack.append(nn.Linear(width, out_features))
    return nn.Sequential(*stack)


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Integer labels (N,) -> float one-hot rows (N, num_classes)."""
    return nn.functional.one_hot(labels.long(), num_classes).float()


def label_planes(labels: torch.Tensor, num_classes: int, height: int, width: int) -> torch.Tensor:
    """Integer labels (N,) -> constant one-hot feature planes (N, num_classes, height, width)."""
    return one_hot(labels, num_classes)[:, :, None, None].expand(-1, -1, height, width)


class LabelConcat(nn.Module):
    """``net([x flattened, one_hot(y)])``: the label's one-hot code concatenated to a flat input
    (a latent for a generator; a flattened image for a dense discriminator). The label therefore
    enters through the first layer's last ``num_classes`` input weights."""

    def __init__(self, net: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.net = net
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x.flatten(1), one_hot(labels, self.num_classes)], dim=1))


class LabelledDiscriminator(nn.Module):
    """A convolutional D(x, y) that sees the label as constant one-hot planes of the image size.

    Without ``label_layer`` the planes are concatenated to the image channels (``net`` reads
    C + num_classes channels). With it, the planes pass through ``label_layer`` (see
    :func:`discriminator_input_layer`) and its output is concatenated to the output of ``net``'s
    first layer (``net`` built with ``side_channels``) before the rest of ``net``.
    """

    def __init__(
        self, net: nn.Sequential, num_classes: int, label_layer: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.net = net
        self.num_classes = num_classes
        self.label_layer = label_layer

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        planes = label_planes(labels, self.num_classes, *images.shape[2:])
        if self.label_layer is None:
            return self.net(torch.cat([images, planes], dim=1))
        first = torch.cat([self.net[0](images), self.label_layer(planes)], dim=1)
        return self.net[1:](first)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Build networks with seeded weights, leaving torch's global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def generator_from(
    config: Mapping[str, Any], out_shape: tuple[int, int, int], in_features: int | None = None
) -> nn.Sequential:
    """:func:`conv_generator` with the shared conv knobs of a resolved family config."""
    c = config
    return conv_generator(
        c["n_z"] if in_features is None else in_features,
        out_shape,
        c["g_layers"],
        c["base_channels"],
        c["batchnorm"],
        c["upsample"],
        c["activation"],
        c["maxout_pieces"],
    )


def discriminator_from(
    config: Mapping[str, Any],
    in_shape: tuple[int, int, int],
    out_features: int = 1,
    side_channels: int = 0,
) -> nn.Sequential:
    """:func:`conv_discriminator` with the shared conv knobs of a resolved family config."""
    c = config
    return conv_discriminator(
        in_shape,
        c["d_layers"],
        c["base_channels"],
        c["batchnorm"],
        c["activation"],
        out_features=out_features,
        pieces=c["maxout_pieces"],
        side_channels=side_channels,
    )


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: conv and linear weights ~ N(0, 0.02), zero biases, batch-norm
    scales ~ N(1, 0.02)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
