"""The LeNet judge of a dataset, for every command that needs one: a sweep's trials measure
domain FID with it, ``ganorch eval`` and ``ganorch grid augment`` featurise and label samples
with it, ``ganorch metrics`` uses the one of the dataset named by ``--judge`` or A or B."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.errors import UserError


def judge_of(data: Any) -> Any:
    """The LeNet judge of a loaded dataset: trained once per fingerprint, cached under
    ``GANORCH_CACHE/judges`` (the cache ``ganorch sweep run`` uses)."""
    from evaluators.judges import load_or_train_judge
    from orchestrator.runs import cache_dir

    return load_or_train_judge(
        cache_dir() / "judges",
        data.fingerprint,
        data.train_images,
        data.train_labels,
        data.test_images,
        data.test_labels,
        data.num_classes,
    )


def lenet_judge(
    dataset_name: str | None, reference: Any | None
) -> tuple[Callable[[], Any], str | None]:
    """(judge loader, name) for :class:`~orchestrator.evaluate.context.MeasureContext`: the
    judge of the dataset named by ``--judge`` if given, else of ``reference`` (the dataset A or
    B came from). The loader trains or loads the judge only when called, and raises
    :class:`UserError` when neither is known."""
    from orchestrator.image_sets import load_reference_dataset

    def load() -> Any:
        if dataset_name is not None:
            return judge_of(load_reference_dataset(dataset_name))
        if reference is None:
            raise UserError(
                "the lenet extractor needs a judge, and neither A nor B is a "
                "dataset: name one with --judge DATASET (e.g. --judge mnist5k) "
                "or use --extractor inception"
            )
        return judge_of(reference)

    return load, dataset_name or getattr(reference, "name", None)
