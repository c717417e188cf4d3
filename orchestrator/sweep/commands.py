"""`ganorch sweep check | params | run`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.errors import UserError
from orchestrator.options import Address, RunsDir, fail, say

app = typer.Typer(no_args_is_help=True, help="Ray Tune searches over GAN families.")


@app.command("check")
def sweep_check(spec: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")]) -> None:
    """Validate a spec without running anything."""
    from orchestrator.sweep.spec import load_spec

    try:
        parsed = load_spec(spec)
    except UserError as exc:
        fail(f"{spec}: {exc}")
    typer.echo(
        f"{spec}: ok ({parsed.num_trials} trials of {', '.join(parsed.family)}, "
        f"{parsed.epochs} epochs, {parsed.search.algorithm} search)"
    )


@app.command("params")
def sweep_params(family: Annotated[str, typer.Argument(help="Family name, e.g. dcgan.")]) -> None:
    """List a family's hyperparameters: type, default, allowed values; [mutable] marks those
    PBT may change between epochs."""
    from trainables.families import FAMILIES

    if family not in FAMILIES:
        fail(f"unknown family {family!r} (known: {', '.join(sorted(FAMILIES))})")
    params = sorted(FAMILIES[family].all_params().items())
    width = max(len(name) for name, _ in params)
    for name, param in params:
        allowed = (
            "one of " + ", ".join(map(str, param.choices))
            if param.choices
            else f"[{param.low:g}, {'inf' if param.high is None else f'{param.high:g}'}]"
            if param.low is not None
            else ""
        )
        typer.echo(
            f"{name:<{width}} {param.kind.__name__:<6} default {param.default!s:<14} "
            f"{allowed:<34} {param.help}{' [mutable]' if param.mutable else ''}"
        )


@app.command("run")
def sweep_run(
    spec: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")],
    name: Annotated[str | None, typer.Option(help="Run name (default: the spec's name).")] = None,
    samples: Annotated[int | None, typer.Option(min=1, help="Override search.samples.")] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            min=1, help="Override epochs (a scheduler grace period above it is cut to it)."
        ),
    ] = None,
    runs_dir: RunsDir = None,
    address: Address = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Discard an earlier run of this name and start fresh.")
    ] = False,
) -> None:
    """Run a sweep; running it again resumes an interrupted run. The run folder keeps the
    spec as run (overrides applied), so a rerun resumes only with the same overrides."""
    from orchestrator.cluster import probe
    from orchestrator.runs import RunDir

    try:
        probe(address)  # before the heavy imports: an unreachable cluster fails in seconds
        from orchestrator.sweep.spec import load_spec

        parsed = load_spec(spec, name=name, samples=samples, epochs=epochs)
        run = RunDir.of(runs_dir, parsed.name)
        from orchestrator.sweep.tuner import run_sweep

        outcome = run_sweep(parsed, run, address=address, restart=restart, say=say)
    except UserError as exc:
        fail(f"{spec}: {exc}" if "spec" in type(exc).__name__.lower() else str(exc))
    best = "-" if outcome.best_value is None else f"{outcome.best_value:.4g}"
    say(
        f"run {parsed.name!r}: {outcome.trials} trials, {outcome.finished} finished, "
        f"{outcome.failed} failed; best {parsed.metric.name} {best} ({outcome.best_trial})"
    )
    say(f"tables: {run.shown(run.path('tables'))}   TensorBoard: ganorch tensorboard {parsed.name}")
