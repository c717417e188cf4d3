"""The metric registry shared by ``ganorch metrics`` (and ``ganorch eval``): name -> measure.

Every entry of :data:`METRICS` is called as ``METRICS[name](real, generated, context)`` with two
uint8 image arrays (N, C, H, W) of one shape and returns a flat ``{value name: float}`` dict.
``real`` is the reference set (``A`` on the command line), ``generated`` the set being scored
(``B``). Features and class probabilities come from :class:`MeasureContext`, which loads the
LeNet judge or the FID InceptionV3 only when a metric asks for them and caches features per
array. The evaluator modules are imported inside the entries, so a metric whose module is
missing fails with a one-line :class:`UserError` instead of breaking the others.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orchestrator.errors import UserError

EXTRACTORS = ("lenet", "inception")


@dataclass
class MeasureContext:
    """What metrics share within one call: the feature extractor, the judge, seed and device.

    ``judge`` is a zero-argument callable returning the LeNet :class:`~evaluators.judges.Judge`
    (it may raise :class:`UserError` to say why there is none); it is called at most once and
    only by metrics that need LeNet features or predictions; ``judge_name`` names its dataset
    in ``notes``. ``inception_weights`` is a path or None for torch hub's checkpoint cache (see
    ``evaluators.judges.inception``). ``device``: where models run; None picks CUDA when
    available. Features are cached per array object (the cache holds the array), so arrays
    must not be modified in place between calls; :meth:`clear_cache` releases them.
    """

    extractor: str = "lenet"
    judge: Callable[[], Any] | None = None
    judge_name: str | None = None
    inception_weights: str | None = None
    seed: int = 0
    device: str | None = None
    labels: np.ndarray | None = None
    train: np.ndarray | None = None
    notes: dict[str, str] = field(default_factory=dict)
    _models: dict[str, Any] = field(default_factory=dict, repr=False)
    _cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.extractor not in EXTRACTORS:
            raise UserError(f"--extractor: unknown extractor {self.extractor!r} "
                            f"(choose {' or '.join(EXTRACTORS)})")

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
            if self.judge is None:
                raise UserError("this metric needs a LeNet judge; name its dataset with "
                                "--judge DATASET")
            judge = self.judge()
            self._models["judge"] = judge
            self._models["lenet"] = judge.build(self.torch_device())
            name = self.judge_name or judge.fingerprint
            self.notes["extractor"] = (f"LeNet judge of {name} (test accuracy "
                                       f"{judge.test_accuracy:.1%})")
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

    def clear_cache(self) -> None:
        """Forget cached features (and release the arrays they were computed from)."""
        self._cache.clear()

    def _cached(self, what: str, images: np.ndarray,
                compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
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
            raise UserError(f"the LeNet judge takes {_shape(expected)} images, these are "
                            f"{_shape(images.shape[1:])}; use --judge with a dataset of that "
                            "shape or --extractor inception")
        return model


def _shape(shape) -> str:
    return "x".join(str(int(side)) for side in shape)


@dataclass(frozen=True)
class Metric:
    """One registry entry: ``compute(real, generated, context) -> {name: value}``.

    ``min_real`` / ``min_generated``: fewest images each set must hold (checked first, so too
    few samples give a clear error rather than a NaN). ``uses`` says what the metric reads
    ("features", "pixels" or "probabilities") for the help text and for callers that want to
    know whether an extractor matters.
    """

    compute: Callable[[np.ndarray, np.ndarray, MeasureContext], dict[str, float]]
    summary: str
    uses: str
    min_real: int = 1
    min_generated: int = 1

    def __call__(self, real: np.ndarray, generated: np.ndarray,
                 context: MeasureContext) -> dict[str, float]:
        for which, images, needed in (("A (real)", real, self.min_real),
                                      ("B (generated)", generated, self.min_generated)):
            if len(images) < needed:
                raise UserError(f"{self.summary.split(':')[0]} needs at least {needed} images "
                                f"in {which}, got {len(images)}")
        try:
            return self.compute(real, generated, context)
        except ImportError as exc:
            raise UserError(f"this metric's module is not available: {exc}") from None
        except ValueError as exc:  # evaluators report bad input (too few samples...) this way
            raise UserError(" ".join(str(exc).split())) from None


def _fid(real: np.ndarray, generated: np.ndarray, context: MeasureContext) -> dict[str, float]:
    from evaluators.fid import fid_from_features

    return {"fid": fid_from_features(context.features(real), context.features(generated))}


def _kid(real: np.ndarray, generated: np.ndarray, context: MeasureContext) -> dict[str, float]:
    from evaluators.kid import kid

    result = kid(context.features(real), context.features(generated), seed=context.seed)
    return {"kid_mean": float(result.mean), "kid_std": float(result.std)}


def _inception_score(real: np.ndarray, generated: np.ndarray,
                     context: MeasureContext) -> dict[str, float]:
    from evaluators.classifier_scores import inception_score

    # IS splits rows into contiguous blocks; a seeded shuffle keeps class-sorted inputs (a
    # folder named by class, conditional samples label by label) from collapsing the score.
    probabilities = context.probabilities(generated)
    order = np.random.default_rng(context.seed).permutation(len(probabilities))
    mean, std = inception_score(probabilities[order])
    return {"is_mean": float(mean), "is_std": float(std)}


def _c2st_values(result: Any) -> dict[str, float]:
    return {
        "c2st_accuracy": float(result.accuracy),
        "c2st_accuracy_real": float(result.accuracy_real),
        "c2st_accuracy_generated": float(result.accuracy_generated),
        "c2st_p_value": float(result.p_value),
        "c2st_n_test": int(result.n_test),
    }


def _c2st(real: np.ndarray, generated: np.ndarray, context: MeasureContext) -> dict[str, float]:
    from evaluators.c2st import c2st

    return _c2st_values(c2st(real, generated, seed=context.seed, device=context.torch_device()))


def _c2st_features(real: np.ndarray, generated: np.ndarray,
                   context: MeasureContext) -> dict[str, float]:
    from evaluators.c2st import c2st_features

    return _c2st_values(c2st_features(context.features(real), context.features(generated),
                                      seed=context.seed, device=context.torch_device()))


def _sharpness(real: np.ndarray, generated: np.ndarray,
               context: MeasureContext) -> dict[str, float]:
    from evaluators.pixel_stats import sharpness

    values = {}
    for role, images in (("real", real), ("generated", generated)):
        result = sharpness(images)
        values[f"sharpness_{role}"] = float(result.mean)
        values[f"sharpness_{role}_std"] = float(result.std)
    return values


def _color_kl(real: np.ndarray, generated: np.ndarray,
              context: MeasureContext) -> dict[str, float]:
    from evaluators.pixel_stats import color_kl

    return {f"color_kl_{channel}": float(value)
            for channel, value in color_kl(real, generated).items()}


def _label_accuracy(real: np.ndarray, generated: np.ndarray,
                    context: MeasureContext) -> dict[str, float]:
    from evaluators.classifier_scores import label_accuracy

    if context.labels is None:
        raise UserError("label_accuracy needs the conditioning labels of B (a conditional "
                        "generator or a labelled split)")
    return {"label_accuracy": label_accuracy(context.probabilities(generated), context.labels)}


def _nearest_neighbours(real: np.ndarray, generated: np.ndarray,
                        context: MeasureContext) -> dict[str, float]:
    from evaluators.neighbours import nearest_neighbours

    if context.train is None:
        raise UserError("nn needs the training split of A's dataset (A must be a dataset)")
    report = nearest_neighbours(generated, context.train, real, device=context.torch_device())
    return {"nn_duplicate_rate": report.duplicate_rate,
            "nn_memorisation_ratio": report.memorisation_ratio,
            "nn_median_generated_to_train": report.median_generated_to_train}


def _image_quality(real: np.ndarray, generated: np.ndarray,
                   context: MeasureContext) -> dict[str, float]:
    """Each generated image against its nearest (pixel L2) real image: mean and standard error
    over the generated images of l1, GMSM, YIQ chroma distance and GMSD."""
    import torch

    from evaluators import image_quality
    from evaluators.neighbours import nearest_neighbours
    from evaluators.sheets import as_float_images

    nearest = nearest_neighbours(generated, real, real, k=1, device=context.torch_device())
    distorted = as_float_images(generated)
    reference = as_float_images(real)[torch.as_tensor(nearest.nearest_train[:, 0])]
    if reference.shape[1] == 1:  # the chroma distance takes RGB; grey has zero chroma
        reference, distorted = reference.expand(-1, 3, -1, -1), distorted.expand(-1, 3, -1, -1)
    values = {}
    for name, distance in (("l1", image_quality.l1), ("gmsm", image_quality.gmsm_distance),
                           ("chroma", image_quality.chroma_distance),
                           ("gmsd", image_quality.gmsd)):
        per_image = distance(reference, distorted, reduction="none").double().numpy()
        values[f"iqa_{name}"] = float(per_image.mean())
        values[f"iqa_{name}_sem"] = float(per_image.std() / np.sqrt(len(per_image)))
    return values


#: Metric name -> entry. ``orchestrator.cli`` names them in its help text without importing
#: this module (a test keeps the two in step).
METRICS: dict[str, Metric] = {
    "fid": Metric(_fid, "fid: Frechet distance between the feature distributions of A and B",
                  "features", 2, 2),
    "kid": Metric(_kid, "kid: kernel inception distance (unbiased MMD^2, cubic kernel), "
                  "mean and std over subsets", "features", 2, 2),
    "is": Metric(_inception_score, "is: Inception Score of B (10 splits) from the extractor's "
                 "softmax", "probabilities", 1, 10),
    "c2st": Metric(_c2st, "c2st: classifier two-sample test on pixels; A = real, B = "
                   "generated", "pixels", 8, 8),
    "c2st_features": Metric(_c2st_features, "c2st_features: classifier two-sample test on "
                            "extractor features", "features", 8, 8),
    "sharpness": Metric(_sharpness, "sharpness: mean gradient magnitude (0..255 grey) of each "
                        "set", "pixels"),
    "color_kl": Metric(_color_kl, "color_kl: KL(A || B) of 25-bin R, G, B and grey histograms",
                       "pixels"),
    "label_accuracy": Metric(_label_accuracy, "label_accuracy: share of B the judge "
                             "classifies as its conditioning label", "probabilities"),
    "nn": Metric(_nearest_neighbours, "nn: pixel nearest neighbours: duplicate rate within B, "
                 "memorisation ratio to the training split (A = test split)", "pixels", 2, 2),
    "iqa": Metric(_image_quality, "iqa: l1, GMSM, chroma and GMSD of each B image against its "
                  "nearest A image (mean and standard error)", "pixels", 1, 2),
}


def judge_of(data: Any) -> Any:
    """The LeNet judge of a loaded dataset: trained once per fingerprint, cached under
    ``GANORCH_CACHE/judges`` (the cache ``ganorch sweep run`` uses)."""
    from evaluators.judges import load_or_train_judge
    from orchestrator.runs import cache_dir

    return load_or_train_judge(cache_dir() / "judges", data.fingerprint, data.train_images,
                               data.train_labels, data.test_images, data.test_labels,
                               data.num_classes)


def lenet_judge(dataset_name: str | None,
                reference: Any | None) -> tuple[Callable[[], Any], str | None]:
    """(judge provider, name) for :class:`MeasureContext`: the judge of the dataset named by
    ``--judge`` if given, else of ``reference`` (the dataset A or B came from). The provider
    trains or loads the judge only when called, and raises :class:`UserError` when neither is
    known."""
    from orchestrator.image_sets import load_reference_dataset

    def provide() -> Any:
        if dataset_name is not None:
            return judge_of(load_reference_dataset(dataset_name))
        if reference is None:
            raise UserError("the lenet extractor needs a judge, and neither A nor B is a "
                            "dataset: name one with --judge DATASET (e.g. --judge mnist5k) "
                            "or use --extractor inception")
        return judge_of(reference)

    return provide, dataset_name or getattr(reference, "name", None)


def render_values(values: dict[str, float], fmt: str) -> str:
    """``table``: one ``name value`` line per value (names padded); ``json``: one object,
    non-finite values as null."""
    if fmt == "json":
        return json.dumps({name: value if math.isfinite(value) else None
                           for name, value in values.items()}, indent=2)
    width = max(map(len, values), default=0)
    return "\n".join(f"{name:<{width}}  {_number(value)}" for name, value in values.items())


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6g}"
