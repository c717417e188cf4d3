"""The `ganorch` command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.errors import UserError
from orchestrator.evaluate import commands as evaluate
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
app.add_typer(evaluate.top_level)  # ganorch metrics
app.add_typer(sweep_app, name="sweep")
results_app = typer.Typer(no_args_is_help=True, help="Read a run's result tables.")
app.add_typer(results_app, name="results")
app.add_typer(evaluate.app, name="eval")


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
    from orchestrator.results.show import show

    try:
        typer.echo(show(name, table=table, sort=sort, descending=desc, top=top, fmt=fmt,
                        runs_dir=runs_dir, pivot=pivot))
    except UserError as exc:
        fail(str(exc))


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
    from orchestrator.augment.spec import load_augment_spec
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
        from orchestrator.augment.grid import run_augment

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
