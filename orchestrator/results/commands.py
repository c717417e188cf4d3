"""`ganorch results show` (a run's tables, sorted, trimmed, pivoted or grouped), `ganorch
results plot` (a metric by epoch per group), `ganorch results importance` (which searched
hyperparameters matter), `ganorch report` (one page showing the run) and `ganorch tensorboard`
(its event files served)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Annotated

import typer

from orchestrator.errors import UserError
from orchestrator.options import RunsDir, fail, say

app = typer.Typer(no_args_is_help=True, help="Read a run's result tables.")
# Commands of this group that sit at the top level of `ganorch`.
top_level = typer.Typer()


@app.command("show")
def results_show(
    name: Annotated[str, typer.Argument(help="Run name.")],
    table: Annotated[str, typer.Option(help="trials | epochs | eval | augment")] = "trials",
    pivot: Annotated[
        bool,
        typer.Option(
            "--pivot", help="Matrix view: generators x measures (eval), real x generated (augment)."
        ),
    ] = False,
    sort: Annotated[
        str | None, typer.Option(help="Column to sort by (fid means best_fid in the trials table).")
    ] = None,
    group_by: Annotated[
        str | None,
        typer.Option(
            help="One row per distinct value of these columns (KEY[,KEY]; lr means config/lr): "
            "n, mean, std and 95% Student-t interval of --metric, sorted by mean."
        ),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            help="Column --group-by summarises (default: best_<the run's metric> for trials, "
            "the run's metric for epochs, value for eval, test_accuracy for augment)."
        ),
    ] = None,
    desc: Annotated[bool, typer.Option("--desc", help="Sort descending.")] = False,
    top: Annotated[int | None, typer.Option(min=1, help="Show only the first N rows.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
    runs_dir: RunsDir = None,
) -> None:
    """Print one of a run's tables."""
    from orchestrator.results.show import show

    try:
        typer.echo(
            show(
                name,
                table=table,
                sort=sort,
                descending=desc,
                top=top,
                fmt=fmt,
                runs_dir=runs_dir,
                pivot=pivot,
                group_by=group_by,
                metric=metric,
            )
        )
    except UserError as exc:
        fail(str(exc))


@app.command("plot")
def results_plot(
    name: Annotated[str, typer.Argument(help="Run name.")],
    group_by: Annotated[
        str,
        typer.Option(
            help="One line per distinct value of these columns (KEY[,KEY]; e.g. variant, "
            "family,upsample, lr)."
        ),
    ],
    metric: Annotated[
        str | None, typer.Option(help="Epochs-table column to draw (default: the run's metric).")
    ] = None,
    runs_dir: RunsDir = None,
) -> None:
    """Draw a metric against the epoch, one line per group of trials with its 95% Student-t
    band, into the run's artifacts/curves/ folder."""
    from orchestrator.results.plot import plot_curves

    try:
        path = plot_curves(name, group_by, metric, runs_dir)
    except UserError as exc:
        fail(str(exc))
    typer.echo(f"wrote {path}")


@app.command("importance")
def results_importance(
    name: Annotated[str, typer.Argument(help="Run name.")],
    metric: Annotated[
        str | None,
        typer.Option(help="Trials-table column to explain (default: best_<the run's metric>)."),
    ] = None,
    evaluator: Annotated[str, typer.Option(help="fanova | ped-anova")] = "fanova",
    runs_dir: RunsDir = None,
) -> None:
    """Rank the searched hyperparameters by how much the metric depends on them (Optuna's
    importance evaluators on the finished trials); a bar chart goes to artifacts/."""
    from orchestrator.results.importance import draw, importance, render
    from orchestrator.runs import RunDir

    try:
        column, rows = importance(name, metric, evaluator, runs_dir)
        path = draw(RunDir.of(runs_dir, name), column, rows, evaluator)
    except UserError as exc:
        fail(str(exc))
    typer.echo(render(column, rows))
    say(f"wrote {path}")


@top_level.command("report")
def report(
    name: Annotated[str, typer.Argument(help="Run name.")],
    runs_dir: RunsDir = None,
) -> None:
    """Write one page showing the run (spec, summary, trials, curves, hyperparameters,
    importance, sample grids, eval and augment results) to its report/index.html."""
    from orchestrator.results.report import write_report

    try:
        page, local = write_report(name, runs_dir)
    except UserError as exc:
        fail(str(exc))
    typer.echo(f"wrote {page}")
    if "://" in str(page):
        say(f"a local copy: {local / 'index.html'}")


@top_level.command("tensorboard")
def tensorboard(
    name: Annotated[str, typer.Argument(help="Run name.")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 6006,
    host: Annotated[
        str, typer.Option(help="Interface to bind (loopback by default).")
    ] = "127.0.0.1",
    runs_dir: RunsDir = None,
) -> None:
    """Serve the run's TensorBoard logs (curves and sample grids of every trial)."""
    from orchestrator.runs import RunDir

    try:
        run = RunDir.of(runs_dir, name).existing()
        check_free_port(host, port)
        logdir = run.download(run.path("tb"))  # TensorBoard reads local files only
    except UserError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot copy {run.shown(run.path('tb'))}: {exc}")
    if run.remote:
        say(f"copied {run.shown(run.path('tb'))} to {logdir} (run the command again to refresh it)")
    say(f"TensorBoard for {name!r} on http://{host}:{port}  (logdir {logdir}; Ctrl-C stops)")
    command = [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        str(logdir),
        "--host",
        host,
        "--port",
        str(port),
    ]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    raise typer.Exit(subprocess.call(command))


def check_free_port(host: str, port: int) -> None:
    """UserError unless ``host:port`` can be listened on now (TensorBoard's own refusal is a
    paragraph and exit code 255)."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
            probe.bind((host, port))
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise UserError(f"--port {port}: cannot listen on {host}:{port} ({reason})") from None
