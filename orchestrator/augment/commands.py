"""`ganorch grid augment`: the grid from a spec file, options, or both."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.errors import UserError
from orchestrator.options import Address, RunsDir, fail, say

app = typer.Typer(
    no_args_is_help=True,
    help="Grids of independent jobs over a run's generators, sharded over Ray actors.",
)


def _list_option(option: str, text: str | None, number: bool = False) -> list | None:
    """``"a,b"`` -> ["a", "b"] (numbers with ``number``); None stays None."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not number:
        return items
    try:
        return [float(item) if "." in item or "e" in item.lower() else int(item) for item in items]
    except ValueError:
        raise UserError(f"{option}: expected comma-separated numbers, got {text!r}") from None


def _grid_spec(spec: Path | None, given: dict[str, Any]) -> Any:
    """The grid spec file with the options given on top; a bad value is named by its option
    (or by the file and key, when it comes from the file)."""
    from orchestrator.augment.spec import load_augment_spec
    from orchestrator.errors import SpecError

    try:
        return load_augment_spec(spec, given)
    except SpecError as exc:
        key = exc.key.split(".")[0]
        if spec is not None and given.get(key) is None:
            raise UserError(f"{spec}: {exc}") from None
        option = {"run": "NAME"}.get(key, f"--{key.replace('_', '-')}")
        raise UserError(f"{option}{str(exc)[len(key) :]}" if key else str(exc)) from None


@app.command(
    "augment",
    epilog="NAME is the sweep run the generator comes from: its "
    "spec.yaml names the dataset and the results go to its tables/augment and "
    "artifacts/augment. With --generator PATH, NAME may be any run name (it is "
    "created), and --dataset names the dataset when the run has no spec.yaml.",
)
def grid_augment(
    name: Annotated[
        str | None,
        typer.Argument(
            help="Run holding the generator; results go there (or the spec file's run)."
        ),
    ] = None,
    generator: Annotated[
        str | None, typer.Option(help="best | a trial id of the run | a checkpoint folder.")
    ] = None,
    strategies: Annotated[
        str | None,
        typer.Option(help="Comma-separated: mix, filter, finetune, source [default: all four]."),
    ] = None,
    real: Annotated[
        str | None, typer.Option(help="Real subset sizes [default: 0,1,10,20,50,100].")
    ] = None,
    generated: Annotated[
        str | None, typer.Option(help="Generated subset sizes [default: 0,1,10,20,50,100].")
    ] = None,
    unit: Annotated[
        str | None,
        typer.Option(
            help="percent (of the real training split) | count (images) [default: percent]."
        ),
    ] = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds per cell [default: 3].")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs per cell [default: 30].")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="LeNet batch size [default: 64].")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Dataset name, for a run without spec.yaml (e.g. mnist5k).")
    ] = None,
    spec: Annotated[
        Path | None, typer.Option(help="Grid spec (YAML); options given here override its keys.")
    ] = None,
    actors: Annotated[
        int | None,
        typer.Option(min=1, help="Actors (default: one per GPU, else one per CPU of the cluster)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Retrain every cell, finished or not.")
    ] = False,
    runs_dir: RunsDir = None,
    address: Address = None,
) -> None:
    """Retrain a LeNet on real + generated digits over a grid of subset sizes (the report's
    data-augmentation study); a rerun skips finished cells."""
    given = {
        "run": name,
        "generator": generator,
        "unit": unit,
        "seeds": seeds,
        "epochs": epochs,
        "batch_size": batch_size,
        "dataset": {"name": dataset} if dataset else None,
    }
    try:
        given |= {
            "strategies": _list_option("--strategies", strategies),
            "real": _list_option("--real", real, number=True),
            "generated": _list_option("--generated", generated, number=True),
        }
        parsed = _grid_spec(spec, given)
        from orchestrator.augment.grid import run_augment

        outcome = run_augment(
            parsed, runs_dir, actors=actors, address=address, force=force, say=say
        )
    except UserError as exc:
        fail(str(exc))
    _summarise(outcome)


@app.command("check")
def grid_check(spec: Annotated[Path, typer.Argument(help="Grid spec (YAML).")]) -> None:
    """Validate a grid spec without running anything."""
    try:
        parsed = _grid_spec(spec, {})
    except UserError as exc:
        fail(str(exc))
    cells = len(parsed.strategies) * len(parsed.real) * len(parsed.generated) * parsed.seeds
    typer.echo(
        f"{spec}: ok (run {parsed.run!r}, generator {parsed.generator}, "
        f"{', '.join(parsed.strategies)} over {len(parsed.real)} real x "
        f"{len(parsed.generated)} generated sizes ({parsed.unit}), {parsed.seeds} seeds: "
        f"at most {cells} cells)"
    )


def _summarise(outcome: Any) -> None:
    """What the grid did, where its figures are and how to see the pivot."""
    report, run = outcome.report, outcome.run
    baseline = outcome.baseline()
    say(
        f"grid {run.name!r}: {report.total} cells, {report.done} trained now, "
        f"{report.skipped} already done, {len(report.failures)} failed"
        + (f"; all-real baseline accuracy {baseline:.2%}" if baseline is not None else "")
    )
    for shard, error in list(report.failures.items())[:5]:
        say(f"  failed {shard}: {error}")
    if outcome.figures:
        folder = run.shown(outcome.figures[0].parent.as_posix())
        say(
            f"figures: {folder} ({len(outcome.figures)} PNGs; also in "
            f"TensorBoard: ganorch tensorboard {run.name})"
        )
    say(f"pivot: ganorch results show {run.name} --table augment --pivot")
