"""The `ganorch` command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.errors import UserError
from orchestrator.options import Address, RunsDir, fail, say
from orchestrator.sweep.commands import app as sweep_app

# Typer may vendor Click; its usage-error base class is the one BadParameter derives from.
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class OneLineErrors(typer.Typer):
    """A Typer app whose usage errors (unknown option, bad value) are one line, exit 2."""

    def __call__(self, *args, **kwargs):
        try:
            code = super().__call__(*args, standalone_mode=False, **kwargs)
        except _UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:
                typer.echo(exc.ctx.get_help())
                sys.exit(0)
            typer.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(2)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


app = OneLineErrors(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                    help="Ray-distributed experiment orchestrator for GAN research.")
app.add_typer(sweep_app, name="sweep")
results_app = typer.Typer(no_args_is_help=True, help="Read a run's result tables.")
app.add_typer(results_app, name="results")


@results_app.command("show")
def results_show(
    name: Annotated[str, typer.Argument(help="Run name.")],
    table: Annotated[str, typer.Option(help="trials | epochs | eval | augment")] = "trials",
    pivot: Annotated[bool, typer.Option(
        "--pivot", help="Matrix view: generators x measures (eval), real x generated (augment).")]
    = False,
    sort: Annotated[str | None, typer.Option(
        help="Column to sort by (fid means best_fid in the trials table).")] = None,
    desc: Annotated[bool, typer.Option("--desc", help="Sort descending.")] = False,
    top: Annotated[int | None, typer.Option(min=1, help="Show only the first N rows.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
    runs_dir: RunsDir = None,
) -> None:
    """Print one of a run's tables."""
    from orchestrator.results import show

    try:
        typer.echo(show(name, table=table, sort=sort, descending=desc, top=top, fmt=fmt,
                        runs_dir=runs_dir, pivot=pivot))
    except UserError as exc:
        fail(str(exc))


_METRIC_NAMES = ("fid, kid, is, c2st, c2st_features, sharpness, color_kl, label_accuracy, nn, "
                 "iqa")


@app.command("metrics", epilog="A and B are each a folder of images, an .npz file with an "
             "'images' array, or a dataset name with an optional split (mnist5k:test, "
             "patches:train; default test). A is the reference ('real') set, B the one scored.")
def metrics(
    metric: Annotated[str, typer.Argument(help=f"One of: {_METRIC_NAMES}.")],
    a: Annotated[str, typer.Argument(help="Reference ('real') images: folder, .npz or "
                                          "DATASET[:train|:test].")],
    b: Annotated[str, typer.Argument(help="Images to score ('generated'), same forms as A.")],
    extractor: Annotated[str, typer.Option(
        help="Features for fid, kid, is, c2st_features: lenet (the dataset's judge) | "
             "inception (FID InceptionV3 pool3).")] = "lenet",
    inception_weights: Annotated[str | None, typer.Option(
        "--inception-weights", help="File of the FID Inception weights "
        "(default: torch hub's checkpoints folder); never downloaded.")] = None,
    judge: Annotated[str | None, typer.Option(
        help="Dataset whose LeNet judge to use (default: A's or B's dataset).")] = None,
    n: Annotated[int | None, typer.Option(
        "--n", min=1, help="Use at most N images of each set (seeded random subset).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for --n subsets, KID subsets, C2ST.")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Score image set B against image set A with one metric."""
    import time

    from orchestrator.evaluate.measures import METRICS, MeasureContext, lenet_judge, render_values
    from orchestrator.image_sets import load_image_set, match_shapes, subsample

    started = time.perf_counter()
    try:
        if metric not in METRICS:
            raise UserError(f"unknown metric {metric!r} (choose one of {', '.join(METRICS)})")
        if fmt not in ("table", "json"):
            raise UserError(f"--format: unknown format {fmt!r} (choose table or json)")
        context = MeasureContext(extractor=extractor, inception_weights=inception_weights,
                                 seed=seed)
        set_a, set_b = (subsample(load_image_set(source), n, seed) for source in (a, b))
        set_a, set_b = match_shapes(set_a, set_b)
        reference = next((s.dataset for s in (set_a, set_b) if s.dataset is not None), None)
        context.judge, context.judge_name = lenet_judge(judge, reference)
        if set_a.dataset is not None:  # nn measures memorisation against A's training split
            context.train = set_a.dataset.train_images
        values = METRICS[metric](set_a.images, set_b.images, context)
    except UserError as exc:
        fail(str(exc))
    typer.echo(render_values(values, fmt))
    used = f"; {context.notes['extractor']}" if "extractor" in context.notes else ""
    say(f"{metric}: A {set_a.describe()}, B {set_b.describe()}{used}; "
        f"{time.perf_counter() - started:.1f} s")


@app.command("tensorboard")
def tensorboard(
    name: Annotated[str, typer.Argument(help="Run name.")],
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 6006,
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")]
    = "127.0.0.1",
    runs_dir: RunsDir = None,
) -> None:
    """Serve the run's TensorBoard logs (curves and sample grids of every trial)."""
    from orchestrator.runs import RunDir

    try:
        run = RunDir.of(runs_dir, name).existing()
        logdir = run.download(run.path("tb"))  # TensorBoard reads local files only
    except UserError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot copy {run.shown(run.path('tb'))}: {exc}")
    if run.remote:
        say(f"copied {run.shown(run.path('tb'))} to {logdir} (run the command again to "
            "refresh it)")
    say(f"TensorBoard for {name!r} on http://{host}:{port}  (logdir {logdir}; Ctrl-C stops)")
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
               "--host", host, "--port", str(port)]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    raise typer.Exit(subprocess.call(command))


eval_app = typer.Typer(no_args_is_help=True, help="Score generators on every measure.")
app.add_typer(eval_app, name="eval")


@eval_app.command("run", epilog="Rows go to the run's eval table (long format: one row per "
                  "value); a rerun skips finished shards. Exit 1 when some shard failed.")
def eval_run(
    name: Annotated[str, typer.Argument(help="Run name (a sweep's, or a new one for sources).")],
    top: Annotated[int | None, typer.Option(min=1, help="The K best trials.")] = None,
    by: Annotated[str, typer.Option(help="Metric --top ranks by (best_<by> column).")] = "fid",
    trials: Annotated[str | None, typer.Option(help="Trial ids, comma-separated.")] = None,
    source: Annotated[list[str] | None, typer.Option(
        help="LABEL=PATH: external samples (folder or .npz); repeatable.")] = None,
    metrics: Annotated[str, typer.Option(help="Comma-separated measures.")] = (
        "fid,kid,is,label_accuracy,c2st,sharpness,color_kl,nn,iqa"),
    n: Annotated[int, typer.Option("--n", min=2, help="Samples per generator and seed.")] = 1000,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds 0..S-1 per measure.")] = 1,
    extractor: Annotated[str, typer.Option(help="lenet | inception")] = "lenet",
    inception_weights: Annotated[str | None, typer.Option(
        "--inception-weights", help="File of the FID Inception weights.")] = None,
    chunk: Annotated[int, typer.Option(help=(
        "Above this many samples a generator's features are extracted in chunks of it, "
        "spread over the actors (a multiple of 500)."))] = 10_000,
    dataset: Annotated[str | None, typer.Option(
        help="Real data by name (default: the run's spec dataset).")] = None,
    actors: Annotated[int | None, typer.Option(
        min=1, help="Ray actors (default: one per GPU, else per CPU).")] = None,
    figures: Annotated[bool, typer.Option(help="Sheets per generator.")] = True,
    force: Annotated[bool, typer.Option("--force", help="Redo finished shards.")] = False,
    runs_dir: RunsDir = None,
    address: Address = None,
) -> None:
    """Score trials' best checkpoints, external samples and the real reference on every
    measure, sharded over Ray actors."""
    from orchestrator.evaluate.driver import run_eval

    try:
        report, pivot = run_eval(
            name, top=top, by=by, trials=trials, sources=source or [], metrics=metrics, n=n,
            seeds=seeds, extractor=extractor, inception_weights=inception_weights,
            chunk=chunk, dataset=dataset, actors=actors, figures=figures, force=force,
            runs_dir=runs_dir, address=address, say=say)
    except UserError as exc:
        fail(str(exc))
    typer.echo(pivot)
    for shard, error in report.failures.items():
        say(f"failed: {shard}: {error}")
    if report.failures:
        say(f"{len(report.failures)} of {report.total} shards failed; rerun to retry them")
        raise typer.Exit(1)


# --- ganorch grid ---------------------------------------------------------------------------------

grid_app = typer.Typer(no_args_is_help=True, help="Grids of independent jobs over a run's "
                       "generators, sharded over Ray actors.")
app.add_typer(grid_app, name="grid")


def _list_option(option: str, text: str | None, number: bool = False) -> list | None:
    """``"a,b"`` -> ["a", "b"] (numbers with ``number``); None stays None."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not number:
        return items
    try:
        return [float(item) if "." in item or "e" in item.lower() else int(item)
                for item in items]
    except ValueError:
        raise UserError(f"{option}: expected comma-separated numbers, got {text!r}") from None


@grid_app.command("augment", epilog="NAME is the sweep run the generator comes from: its "
                  "spec.yaml names the dataset and the results go to its tables/augment and "
                  "artifacts/augment. With --generator PATH, NAME may be any run name (it is "
                  "created), and --dataset names the dataset when the run has no spec.yaml.")
def grid_augment(
    name: Annotated[str | None, typer.Argument(
        help="Run holding the generator; results go there (or the spec file's run).")] = None,
    generator: Annotated[str | None, typer.Option(
        help="best | a trial id of the run | a checkpoint folder.")] = None,
    strategies: Annotated[str | None, typer.Option(
        help="Comma-separated: mix, filter, finetune, source [default: all four].")] = None,
    real: Annotated[str | None, typer.Option(
        help="Real subset sizes [default: 0,1,10,20,50,100].")] = None,
    generated: Annotated[str | None, typer.Option(
        help="Generated subset sizes [default: 0,1,10,20,50,100].")] = None,
    unit: Annotated[str | None, typer.Option(
        help="percent (of the real training split) | count (images) [default: percent].")]
    = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds per cell [default: 3].")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs per cell [default: 30].")] = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", help="LeNet batch size [default: 64].")] = None,
    dataset: Annotated[str | None, typer.Option(
        help="Dataset name, for a run without spec.yaml (e.g. mnist5k).")] = None,
    spec: Annotated[Path | None, typer.Option(
        help="Grid spec (YAML); options given here override its keys.")] = None,
    actors: Annotated[int | None, typer.Option(
        min=1, help="Actors (default: one per GPU, else one per CPU of the cluster).")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Retrain every cell, finished or not.")] = False,
    runs_dir: RunsDir = None,
    address: Address = None,
) -> None:
    """Retrain a LeNet on real + generated digits over a grid of subset sizes (the report's
    data-augmentation study); a rerun skips finished cells."""
    from orchestrator.augment_spec import load_augment_spec
    from orchestrator.errors import SpecError

    given = {"run": name, "generator": generator, "unit": unit, "seeds": seeds,
             "epochs": epochs, "batch_size": batch_size,
             "dataset": {"name": dataset} if dataset else None}
    try:
        given |= {"strategies": _list_option("--strategies", strategies),
                  "real": _list_option("--real", real, number=True),
                  "generated": _list_option("--generated", generated, number=True)}
        try:
            parsed = load_augment_spec(spec, given)
        except SpecError as exc:
            key = exc.key.split(".")[0]
            if spec is not None and given.get(key) is None:
                raise UserError(f"{spec}: {exc}") from None
            option = {"run": "NAME"}.get(key, f"--{key.replace('_', '-')}")
            raise UserError(f"{option}{str(exc)[len(key):]}" if key else str(exc)) from None
        from orchestrator.augment import run_augment

        outcome = run_augment(parsed, runs_dir, actors=actors, address=address, force=force,
                              say=say)
    except UserError as exc:
        fail(str(exc))
    report, run = outcome.report, outcome.run
    baseline = outcome.baseline()
    say(f"grid {run.name!r}: {report.total} cells, {report.done} trained now, "
        f"{report.skipped} already done, {len(report.failures)} failed"
        + (f"; all-real baseline accuracy {baseline:.2%}" if baseline is not None else ""))
    for shard, error in list(report.failures.items())[:5]:
        say(f"  failed {shard}: {error}")
    if outcome.figures:
        folder = run.shown(outcome.figures[0].parent.as_posix())
        say(f"figures: {folder} ({len(outcome.figures)} PNGs; also in "
            f"TensorBoard: ganorch tensorboard {run.name})")
    say(f"pivot: ganorch results show {run.name} --table augment --pivot")


if __name__ == "__main__":
    app()
