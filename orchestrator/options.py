"""What every command group's Typer commands share: the --runs-dir and --address options, and
how a command reports progress (stderr) and bad input (one line, exit 2)."""

from __future__ import annotations

from typing import Annotated

import typer

RunsDir = Annotated[
    str | None,
    typer.Option("--runs-dir", help="Folder holding the runs [env GANORCH_RUNS, default ./runs]."),
]
Address = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="Ray cluster to join (auto, host:6379, ray://host:10001) "
        "[env GANORCH_ADDRESS; default: start a local Ray].",
    ),
]


def fail(message: str) -> None:
    """One line on stderr, exit code 2: how every bad input ends."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def say(message: str) -> None:
    typer.echo(message, err=True)
