"""What the measures of one call share: the feature extractor (the LeNet judge or the FID
InceptionV3, loaded only when a measure asks for features), features and class probabilities
cached per array, the seed, the device, and the conditioning labels and training split some
measures read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orchestrator.errors import UserError

EXTRACTORS = ("lenet", "inception")


def check_extractor(name: str) -> str:
    if name not in EXTRACTORS:
        raise UserError(
            f"--extractor: unknown extractor {name!r} (choose {' or '.join(EXTRACTORS)})"
        )
    return name


@dataclass
class MeasureContext:
    """What metrics share within one call: the feature extractor, the judge, seed and device.

    ``load_judge`` is a zero-argument callable returning the LeNet
    :class:`~evaluators.judges.Judge` (it may raise :class:`UserError` to say why there is
    none); it is called at most once and only by metrics that need LeNet features or
    predictions; ``judge_name`` names its dataset in ``notes``. ``inception_weights`` is a path
    or None for torch hub's checkpoint cache (see ``evaluators.judges.inception``). ``device``:
    where models run; None picks CUDA when available. Features are cached per array object (the
    cache holds the array), so arrays must not be modified in place between calls;
    :meth:`forget` releases one.
    """

    extractor: str = "lenet"
    load_judge: Callable[[], Any] | None = None
    judge_name: str | None = None
    inception_weights: str | None = None
    seed: int = 0
    k: int = 3  # prdc's precision/recall neighbourhood (ganorch metrics --k)
    device: str | None = None
    labels: np.ndarray | None = None
    train: np.ndarray | None = None
    notes: dict[str, str] = field(default_factory=dict)
    _models: dict[str, Any] = field(default_factory=dict, repr=False)
    _cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        check_extractor(self.extractor)

    def torch_device(self) -> str:
        """``device``, or CUDA when it is None and available, else the CPU (torch is imported
        only here, so bad input is reported before paying for it)."""
        if self.device is None:
            import torch

            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def lenet(self):
        """The judge's LeNet on ``device`` (loaded once)."""
        if "lenet" not in self._models:
            if self.load_judge is None:
                raise UserError(
                    "this metric needs a LeNet judge; name its dataset with --judge DATASET"
                )
            judge = self.load_judge()
            self._models["judge"] = judge
            self._models["lenet"] = judge.build(self.torch_device())
            name = self.judge_name or judge.fingerprint
            self.notes["extractor"] = (
                f"LeNet judge of {name} (test accuracy {judge.test_accuracy:.1%})"
            )
        return self._models["lenet"]

    def inception(self):
        """The FID InceptionV3 on ``device`` (loaded once)."""
        if "inception" not in self._models:
            from evaluators.judges.inception import inception_weights_path, load_fid_inception

            try:
                path = inception_weights_path(self.inception_weights)
                self._models["inception"] = load_fid_inception(path, device=self.torch_device())
            except (FileNotFoundError, ValueError) as exc:
                raise UserError(str(exc)) from None
            self.notes["extractor"] = f"inception pool3 ({path})"
        return self._models["inception"]

    def weights_hash(self) -> str:
        """SHA-256 (hex) identifying the extractor's weights, for statistics files: of the
        Inception weights file, or of the LeNet judge's parameters (key, shape and bytes of each
        tensor in order), loading the extractor if it is not loaded yet."""
        if "weights_hash" not in self._models:
            if self.extractor == "inception":
                from evaluators.judges.inception import inception_weights_path
                from orchestrator.stats_files import file_sha256

                try:
                    path = inception_weights_path(self.inception_weights)
                except FileNotFoundError as exc:
                    raise UserError(str(exc)) from None
                self._models["weights_hash"] = file_sha256(path)
            else:
                self._models["weights_hash"] = _state_hash(self.lenet().state_dict())
        return self._models["weights_hash"]

    def features(self, images: np.ndarray) -> np.ndarray:
        """(N, D) float64 features of ``images`` from the chosen extractor (cached per array)."""
        return self._cached("features", images, self._compute_features)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, K) float64 class probabilities: the judge's softmax (K = its classes) or
        Inception's 1008-way softmax of pool3 @ fc.weight (no bias, as in the TF IS code)."""
        return self._cached("probabilities", images, self._compute_probabilities)

    def remember_features(self, images: np.ndarray, features: np.ndarray) -> None:
        """Use ``features`` (computed earlier, e.g. read from a disk cache) for ``images``."""
        self._cache[("features", id(images))] = (images, features)

    def remember_probabilities(self, images: np.ndarray, probabilities: np.ndarray) -> None:
        """Use ``probabilities`` (computed earlier, e.g. chunk by chunk) for ``images``."""
        self._cache[("probabilities", id(images))] = (images, probabilities)

    def forget(self, images: np.ndarray) -> None:
        """Drop what is cached for ``images`` (and with it the cache's hold on the array)."""
        for what in ("features", "probabilities"):
            self._cache.pop((what, id(images)), None)

    def _cached(
        self, what: str, images: np.ndarray, compute: Callable[[np.ndarray], np.ndarray]
    ) -> np.ndarray:
        # Keyed by the array object; the entry holds the array itself so its id cannot be
        # reused by another array while the entry exists.
        key = (what, id(images))
        entry = self._cache.get(key)
        if entry is None or entry[0] is not images:
            entry = self._cache[key] = (images, compute(images))
        return entry[1]

    def _compute_features(self, images: np.ndarray) -> np.ndarray:
        if self.extractor == "lenet":
            model = self._judge_for(images)  # first: a missing judge is reported before imports
            from evaluators.judges.lenet import judge_features

            return judge_features(model, images)
        from evaluators.judges.inception import inception_features

        return inception_features(self.inception(), images)

    def _compute_probabilities(self, images: np.ndarray) -> np.ndarray:
        if self.extractor == "lenet":
            model = self._judge_for(images)
            from evaluators.judges.lenet import judge_predictions

            return judge_predictions(model, images)
        from evaluators.judges.inception import class_probabilities

        return class_probabilities(self.inception(), self.features(images))

    def _judge_for(self, images: np.ndarray):
        model = self.lenet()
        judge = self._models["judge"]
        expected = (judge.in_channels, judge.image_size, judge.image_size)
        if tuple(images.shape[1:]) != expected:
            from orchestrator.image_sets import shape_text

            raise UserError(
                f"the LeNet judge takes {shape_text(expected)} images, these are "
                f"{shape_text(images.shape[1:])}; use --judge with a dataset of "
                "that shape or --extractor inception"
            )
        return model


def _state_hash(state: dict[str, Any]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for key, tensor in state.items():
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{key}{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
