"""`results plot`: a metric by epoch per group, drawn from the real Parquet tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from orchestrator.errors import UserError
from orchestrator.results.plot import plot_curves

from .test_show import runs  # noqa: F401  (the run with trials, epochs and eval tables)


def test_plot_writes_one_png_per_metric_and_grouping_into_artifacts(runs):  # noqa: F811
    path = Path(plot_curves("study", "variant", "label_accuracy", runs))
    assert path == Path(runs) / "study" / "artifacts" / "curves" / "label_accuracy-by-variant.png"
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 400 and image.height > 300
    default = Path(plot_curves("study", "real_label,seed", runs_dir=runs))
    assert default.name == "label_accuracy-by-real_label-seed.png"  # the spec's metric


@pytest.mark.parametrize(
    ("group_by", "metric", "words"),
    [
        ("epoch", None, "epoch is the plot's x axis"),
        ("nope", None, "--group-by: no column 'nope'"),
        ("variant", "nope", "--metric: no column 'nope'"),
    ],
)
def test_bad_plots_are_one_line_errors(runs, group_by, metric, words):  # noqa: F811
    with pytest.raises(UserError, match=words):
        plot_curves("study", group_by, metric, runs)
