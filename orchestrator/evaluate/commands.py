"""`ganorch eval run` (every measure on many generators, sharded over Ray actors) and
`ganorch metrics` (one measure on two image sets, in this process)."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.errors import UserError
from orchestrator.evaluate.measures import DEFAULT_METRICS, METRICS
from orchestrator.options import Address, RunsDir, fail, say

# What `ganorch metrics` offers: two image sets carry no conditioning labels.
_IMAGE_SET_METRICS = [name for name, metric in METRICS.items() if not metric.needs_labels]
_METRIC_NAMES = ", ".join(_IMAGE_SET_METRICS)

app = typer.Typer(no_args_is_help=True, help="Score generators on every measure.")
# Commands of this group that sit at the top level of `ganorch`.
top_level = typer.Typer()


@app.command(
    "run",
    epilog="Rows go to the run's eval table (long format: one row per "
    "value); a rerun skips finished shards. Exit 1 when some shard failed.",
)
def eval_run(
    name: Annotated[str, typer.Argument(help="Run name (a sweep's, or a new one for sources).")],
    top: Annotated[int | None, typer.Option(min=1, help="The K best trials.")] = None,
    by: Annotated[str, typer.Option(help="Metric --top ranks by (best_<by> column).")] = "fid",
    trials: Annotated[str | None, typer.Option(help="Trial ids, comma-separated.")] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(help="LABEL=PATH: external samples (folder or .npz); repeatable."),
    ] = None,
    metrics: Annotated[str, typer.Option(help="Comma-separated measures.")] = (
        ",".join(DEFAULT_METRICS)
    ),
    n: Annotated[int, typer.Option("--n", min=2, help="Samples per generator and seed.")] = 1000,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds 0..S-1 per measure.")] = 1,
    extractor: Annotated[str, typer.Option(help="lenet | inception")] = "lenet",
    inception_weights: Annotated[
        str | None, typer.Option("--inception-weights", help="File of the FID Inception weights.")
    ] = None,
    chunk: Annotated[
        int,
        typer.Option(
            help=(
                "Above this many samples a generator's features are extracted in chunks of it, "
                "spread over the actors (a multiple of 500)."
            )
        ),
    ] = 10_000,
    dataset: Annotated[
        str | None, typer.Option(help="Real data by name (default: the run's spec dataset).")
    ] = None,
    actors: Annotated[
        int | None, typer.Option(min=1, help="Ray actors (default: one per GPU, else per CPU).")
    ] = None,
    figures: Annotated[bool, typer.Option(help="Sheets per generator.")] = True,
    force: Annotated[bool, typer.Option("--force", help="Redo finished shards.")] = False,
    runs_dir: RunsDir = None,
    address: Address = None,
) -> None:
    """Score trials' best checkpoints, external samples and the real reference on every
    measure, sharded over Ray actors."""
    from orchestrator.evaluate.driver import EvalRequest, run_eval

    request = EvalRequest(
        name,
        top=top,
        by=by,
        trials=trials,
        sources=tuple(source or ()),
        metrics=metrics,
        n=n,
        seeds=seeds,
        extractor=extractor,
        inception_weights=inception_weights,
        chunk=chunk,
        dataset=dataset,
        actors=actors,
        figures=figures,
        force=force,
        runs_dir=runs_dir,
        address=address,
    )
    try:
        report, pivot = run_eval(request, say=say)
    except UserError as exc:
        fail(str(exc))
    typer.echo(pivot)
    for shard, error in report.failures.items():
        say(f"failed: {shard}: {error}")
    if report.failures:
        say(f"{len(report.failures)} of {report.total} shards failed; rerun to retry them")
        raise typer.Exit(1)


@top_level.command(
    "metrics",
    epilog="A and B are each a folder of images, an .npz file with "
    "an 'images' array, or a dataset name with an optional split (mnist5k:test, "
    "patches:train; default test). A is the reference ('real') set, B the one "
    "scored. 'ganorch metrics stats A -o stats.npz' writes A's feature mean and "
    "covariance (pytorch-fid's mu/sigma keys); fid takes such a file, or one from "
    "pytorch-fid --save-stats, on either side.",
)
def metrics(
    metric: Annotated[str, typer.Argument(help=f"One of: {_METRIC_NAMES}; or stats.")],
    a: Annotated[
        str,
        typer.Argument(help="Reference ('real') images: folder, .npz or DATASET[:train|:test]."),
    ],
    b: Annotated[
        str | None,
        typer.Argument(help="Images to score ('generated'), same forms as A (none for stats)."),
    ] = None,
    extractor: Annotated[
        str,
        typer.Option(
            help="Features for fid, kid, is, confidence, c2st_features: lenet (the dataset's "
            "judge) | inception (FID InceptionV3 pool3)."
        ),
    ] = "lenet",
    inception_weights: Annotated[
        str | None,
        typer.Option(
            "--inception-weights",
            help="File of the FID Inception weights "
            "(default: torch hub's checkpoints folder); never downloaded.",
        ),
    ] = None,
    judge: Annotated[
        str | None,
        typer.Option(help="Dataset whose LeNet judge to use (default: A's or B's dataset)."),
    ] = None,
    n: Annotated[
        int | None,
        typer.Option("--n", min=1, help="Use at most N images of each set (seeded random subset)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for --n subsets, KID subsets, C2ST.")] = 0,
    k: Annotated[
        int,
        typer.Option(
            "--k",
            min=1,
            help="prdc: the k of precision and recall's k-NN balls (density and "
            "coverage keep k = 5).",
        ),
    ] = 3,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="stats: the .npz statistics file to write."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Score image set B against image set A with one metric, or (stats) write A's feature
    statistics to a file that fid takes on either side in place of images."""
    import time

    from orchestrator.evaluate import statistics
    from orchestrator.evaluate.context import MeasureContext
    from orchestrator.evaluate.metric import render_values
    from orchestrator.image_sets import load_image_set, match_shapes, subsample
    from orchestrator.judges import lenet_judge

    started = time.perf_counter()
    try:
        if metric in METRICS and METRICS[metric].needs_labels:
            raise UserError(
                f"{metric} needs the conditioning labels of B, which image sets do not carry "
                "(ganorch eval run scores it on a conditional run's trials)"
            )
        if metric not in (*_IMAGE_SET_METRICS, "stats"):
            raise UserError(f"unknown metric {metric!r} (choose one of {_METRIC_NAMES}, stats)")
        if fmt not in ("table", "json"):
            raise UserError(f"--format: unknown format {fmt!r} (choose table or json)")
        context = MeasureContext(
            extractor=extractor, inception_weights=inception_weights, seed=seed, k=k
        )
        if metric == "stats":
            if b is not None:
                raise UserError("stats takes one image set: ganorch metrics stats SET -o FILE")
            written, image_set = statistics.write_set_statistics(a, output, context, n, seed, judge)
            typer.echo(render_values(statistics.statistics_summary(written), fmt))
            say(
                f"stats: {image_set.describe()} -> {output}; {context.notes['extractor']}; "
                f"{time.perf_counter() - started:.1f} s"
            )
            return
        if output is not None:
            raise UserError("-o/--output is for stats (ganorch metrics stats SET -o FILE)")
        if b is None:
            raise UserError(f"{metric} scores B against A: ganorch metrics {metric} A B")
        stored = [source for source in (a, b) if statistics.is_statistics_file(source)]
        if stored and metric != "fid":
            raise UserError(
                f"{stored[0]}: a statistics file (mu, sigma) serves fid only, not {metric}"
            )
        if stored:
            values, side_a, side_b = statistics.fid_with_statistics(a, b, context, n, seed, judge)
            typer.echo(render_values(values, fmt))
            used = f"; {context.notes['extractor']}" if "extractor" in context.notes else ""
            say(
                f"fid: A {side_a.describe()}, B {side_b.describe()}{used}; "
                f"{time.perf_counter() - started:.1f} s"
            )
            return
        set_a, set_b = (subsample(load_image_set(source), n, seed) for source in (a, b))
        set_a, set_b = match_shapes(set_a, set_b)
        reference = next((s.dataset for s in (set_a, set_b) if s.dataset is not None), None)
        context.load_judge, context.judge_name = lenet_judge(judge, reference)
        if set_a.dataset is not None:  # nn measures memorisation against A's training split
            context.train = set_a.dataset.train_images
        values = METRICS[metric](set_a.images, set_b.images, context)
    except UserError as exc:
        fail(str(exc))
    typer.echo(render_values(values, fmt))
    used = f"; {context.notes['extractor']}" if "extractor" in context.notes else ""
    say(
        f"{metric}: A {set_a.describe()}, B {set_b.describe()}{used}; "
        f"{time.perf_counter() - started:.1f} s"
    )
