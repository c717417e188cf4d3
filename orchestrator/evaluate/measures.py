"""The metric registry behind ``ganorch metrics`` and ``ganorch eval``: one entry per measure.

Every entry of :data:`METRICS` is called as ``METRICS[name](real, generated, context)`` with two
uint8 image arrays (N, C, H, W) of one shape and returns a flat ``{value name: float}`` dict.
``real`` is the reference set (``A`` on the command line), ``generated`` the set being scored
(``B``). Features and class probabilities come from the
:class:`~orchestrator.evaluate.context.MeasureContext`. An entry also says what ``ganorch
eval`` needs to know of the measure: whether it is in the default set, its relative cost and
how the intervals of its values are computed; :data:`DEFAULT_METRICS`, :data:`SPREADS` and
:data:`BINOMIAL` are read off the entries, so a new measure is one function and one entry.
The evaluator modules (and numpy) are imported inside the entries: the command line reads
this registry for its help without paying for them, and a metric whose module is missing
fails with a one-line :class:`UserError` instead of breaking the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.errors import UserError
from orchestrator.evaluate.metric import Metric

if TYPE_CHECKING:
    import numpy as np

    from orchestrator.evaluate.context import MeasureContext


def _fid(real: np.ndarray, generated: np.ndarray, context: MeasureContext) -> dict[str, float]:
    from evaluators.fid import fid_from_features

    return {"fid": fid_from_features(context.features(real), context.features(generated))}


def _kid(real: np.ndarray, generated: np.ndarray, context: MeasureContext) -> dict[str, float]:
    from evaluators.kid import kid

    result = kid(context.features(real), context.features(generated), seed=context.seed)
    return {"kid_mean": float(result.mean), "kid_std": float(result.std)}


def _prdc(real: np.ndarray, generated: np.ndarray, context: MeasureContext) -> dict[str, float]:
    from evaluators.prdc import prdc

    result = prdc(
        context.features(real),
        context.features(generated),
        k_precision_recall=context.k,
        device=context.torch_device(),
    )
    return {
        "precision": result.precision,
        "recall": result.recall,
        "density": result.density,
        "coverage": result.coverage,
    }


def _fid_inf(real: np.ndarray, generated: np.ndarray, context: MeasureContext) -> dict[str, float]:
    from evaluators.fid import feature_statistics
    from evaluators.fid_inf import fid_inf

    mu, sigma = feature_statistics(context.features(real))
    fit = fid_inf(mu, sigma, context.features(generated), seed=context.seed)
    return {"fid_inf": fit.value, "fid_inf_slope": fit.slope, "fid_inf_r2": fit.r2}


def _is_inf(real: np.ndarray, generated: np.ndarray, context: MeasureContext) -> dict[str, float]:
    from evaluators.fid_inf import inception_score_inf

    fit = inception_score_inf(context.probabilities(generated), seed=context.seed)
    return {"is_inf": fit.value, "is_inf_slope": fit.slope, "is_inf_r2": fit.r2}


def _inception_score(
    real: np.ndarray, generated: np.ndarray, context: MeasureContext
) -> dict[str, float]:
    import numpy as np

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


def _c2st_features(
    real: np.ndarray, generated: np.ndarray, context: MeasureContext
) -> dict[str, float]:
    from evaluators.c2st import c2st_features

    return _c2st_values(
        c2st_features(
            context.features(real),
            context.features(generated),
            seed=context.seed,
            device=context.torch_device(),
        )
    )


def _sharpness(
    real: np.ndarray, generated: np.ndarray, context: MeasureContext
) -> dict[str, float]:
    from evaluators.pixel_stats import sharpness

    values = {}
    for role, images in (("real", real), ("generated", generated)):
        result = sharpness(images)
        values[f"sharpness_{role}"] = float(result.mean)
        values[f"sharpness_{role}_std"] = float(result.std)
    return values


def _color_kl(real: np.ndarray, generated: np.ndarray, context: MeasureContext) -> dict[str, float]:
    from evaluators.pixel_stats import color_kl

    return {
        f"color_kl_{channel}": float(value) for channel, value in color_kl(real, generated).items()
    }


def _confidence(
    real: np.ndarray, generated: np.ndarray, context: MeasureContext
) -> dict[str, float]:
    from evaluators.judge_embedding import confidence_summary

    values = {}
    for role, images in (("real", real), ("generated", generated)):
        mean, top = confidence_summary(context.probabilities(images))
        values[f"confidence_{role}"], values[f"confidence_top_{role}"] = mean, top
    return values


def _label_accuracy(
    real: np.ndarray, generated: np.ndarray, context: MeasureContext
) -> dict[str, float]:
    from evaluators.classifier_scores import label_accuracy

    if context.labels is None:
        raise UserError(
            "label_accuracy needs the conditioning labels of B (a conditional "
            "generator or a labelled split)"
        )
    return {"label_accuracy": label_accuracy(context.probabilities(generated), context.labels)}


def _nearest_neighbours(
    real: np.ndarray, generated: np.ndarray, context: MeasureContext
) -> dict[str, float]:
    from evaluators.neighbours import nearest_neighbours

    if context.train is None:
        raise UserError("nn needs the training split of A's dataset (A must be a dataset)")
    report = nearest_neighbours(generated, context.train, real, device=context.torch_device())
    return {
        "nn_duplicate_rate": report.duplicate_rate,
        "nn_memorisation_ratio": report.memorisation_ratio,
        "nn_median_generated_to_train": report.median_generated_to_train,
    }


def _image_quality(
    real: np.ndarray, generated: np.ndarray, context: MeasureContext
) -> dict[str, float]:
    """Each generated image against its nearest (pixel L2) real image: mean and standard error
    over the generated images of l1, GMSM, YIQ chroma distance and GMSD."""
    import numpy as np
    import torch

    from evaluators import image_quality
    from evaluators.images import as_float_images
    from evaluators.neighbours import nearest_neighbours

    nearest = nearest_neighbours(generated, real, real, k=1, device=context.torch_device())
    distorted = as_float_images(generated)
    reference = as_float_images(real)[torch.as_tensor(nearest.nearest_train[:, 0])]
    if reference.shape[1] == 1:  # the chroma distance takes RGB; grey has zero chroma
        reference, distorted = reference.expand(-1, 3, -1, -1), distorted.expand(-1, 3, -1, -1)
    values = {}
    for name, distance in (
        ("l1", image_quality.l1),
        ("gmsm", image_quality.gmsm_distance),
        ("chroma", image_quality.chroma_distance),
        ("gmsd", image_quality.gmsd),
    ):
        per_image = distance(reference, distorted, reduction="none").double().numpy()
        values[f"iqa_{name}"] = float(per_image.mean())
        values[f"iqa_{name}_sem"] = float(per_image.std() / np.sqrt(len(per_image)))
    return values


_C2ST_VALUES = (
    "c2st_accuracy",
    "c2st_accuracy_real",
    "c2st_accuracy_generated",
    "c2st_p_value",
    "c2st_n_test",
)
_IQA = ("l1", "gmsm", "chroma", "gmsd")

#: Metric name -> entry, in the order ``ganorch metrics`` lists them and pivots show them.
#: Costs only order the measures (c2st trains a network, nn and iqa search neighbours in
#: pixels, the feature measures share one extraction, the pixel statistics are a pass).
METRICS: dict[str, Metric] = {
    "fid": Metric(
        _fid,
        "fid: Frechet distance between the feature distributions of A and B",
        ("fid",),
        "features",
        min_real=2,
        min_generated=2,
        cost=6,
    ),
    "kid": Metric(
        _kid,
        "kid: kernel inception distance (unbiased MMD^2, cubic kernel), mean and std over subsets",
        ("kid_mean", "kid_std"),
        "features",
        min_real=2,
        min_generated=2,
        cost=8,
        spreads={"kid_mean": "kid_std"},
    ),
    "is": Metric(
        _inception_score,
        "is: Inception Score of B (10 splits) from the extractor's softmax",
        ("is_mean", "is_std"),
        "probabilities",
        min_generated=10,
        cost=5,
        spreads={"is_mean": "is_std"},
    ),
    "prdc": Metric(
        _prdc,
        "prdc: precision and recall (k=3 nearest-neighbour balls of A and of B; --k) and density "
        "and coverage (k=5 balls of A) of B's features",
        ("precision", "recall", "density", "coverage"),
        "features",
        min_real=6,
        min_generated=4,
        cost=10,
    ),
    "fid_inf": Metric(
        _fid_inf,
        "fid_inf: FID extrapolated to infinitely many B samples (fit FID_N = fid_inf + c/N "
        "over 15 subsets of B from N/5 to N)",
        ("fid_inf", "fid_inf_slope", "fid_inf_r2"),
        "features",
        min_real=2,
        min_generated=10,
        default=False,
        cost=12,
    ),
    "is_inf": Metric(
        _is_inf,
        "is_inf: Inception Score of B extrapolated to infinitely many samples (fit "
        "IS_N = is_inf + c/N over 15 subsets from N/5 to N)",
        ("is_inf", "is_inf_slope", "is_inf_r2"),
        "probabilities",
        min_generated=10,
        default=False,
        cost=6,
    ),
    "c2st": Metric(
        _c2st,
        "c2st: classifier two-sample test on pixels; A = real, B = generated",
        _C2ST_VALUES,
        "pixels",
        min_real=8,
        min_generated=8,
        cost=60,
        binomial={"c2st_accuracy": "c2st_n_test"},
    ),
    "c2st_features": Metric(
        _c2st_features,
        "c2st_features: classifier two-sample test on extractor features",
        _C2ST_VALUES,
        "features",
        min_real=8,
        min_generated=8,
        default=False,
        cost=50,
        binomial={"c2st_accuracy": "c2st_n_test"},
    ),
    "sharpness": Metric(
        _sharpness,
        "sharpness: mean gradient magnitude (0..255 grey) of each set",
        tuple(f"sharpness_{role}{std}" for role in ("real", "generated") for std in ("", "_std")),
        "pixels",
        cost=2,
    ),
    "color_kl": Metric(
        _color_kl,
        "color_kl: KL(A || B) of 25-bin R, G, B and grey histograms",
        tuple(f"color_kl_{c}" for c in ("r", "g", "b", "grey")),
        "pixels",
        cost=1,
    ),
    "confidence": Metric(
        _confidence,
        "confidence: the classifier's top-class probability on A and on B: mean, and share "
        "of images at 0.9 or above",
        tuple(f"confidence_{top}{role}" for top in ("", "top_") for role in ("real", "generated")),
        "probabilities",
        cost=3,
    ),
    "label_accuracy": Metric(
        _label_accuracy,
        "label_accuracy: share of B the judge classifies as its conditioning label",
        ("label_accuracy",),
        "probabilities",
        cost=4,
        binomial={"label_accuracy": None},
        extractor="lenet",
        needs_labels=True,
    ),
    "nn": Metric(
        _nearest_neighbours,
        "nn: pixel nearest neighbours: duplicate rate within B, "
        "memorisation ratio to the training split (A = test split)",
        ("nn_duplicate_rate", "nn_memorisation_ratio", "nn_median_generated_to_train"),
        "pixels",
        min_real=2,
        min_generated=2,
        cost=40,
    ),
    "iqa": Metric(
        _image_quality,
        "iqa: l1, GMSM, chroma and GMSD of each B image against its "
        "nearest A image (mean and standard error)",
        tuple(f"iqa_{d}{sem}" for d in _IQA for sem in ("", "_sem")),
        "pixels",
        min_generated=2,
        cost=30,
        spreads={f"iqa_{d}": f"iqa_{d}_sem" for d in _IQA},
    ),
}
#: What ``ganorch eval run`` measures unless ``--metrics`` says otherwise.
DEFAULT_METRICS = tuple(name for name, metric in METRICS.items() if metric.default)
#: Value name -> the value holding its spread, of every measure.
SPREADS = {value: spread for metric in METRICS.values() for value, spread in metric.spreads.items()}
#: Value name -> the value holding its number of trials (None: the samples), of every measure.
BINOMIAL = {value: count for metric in METRICS.values() for value, count in metric.binomial.items()}
