"""The `ganorch` command line: the command groups' sub-apps, assembled.

Each group keeps its commands beside its logic (``orchestrator/<group>/commands.py``); this
module only adds them to one app whose usage errors are one line, exit 2.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from importlib.metadata import version
from typing import Annotated

import typer

from orchestrator.augment import commands as augment
from orchestrator.evaluate import commands as evaluate
from orchestrator.results import commands as results
from orchestrator.sweep import commands as sweep

# Typer may vendor Click; its usage-error base class is the one BadParameter derives from.
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class OneLineErrors(typer.Typer):
    """A Typer app whose usage errors (unknown option, bad value) are one line, exit 2."""

    def __call__(self, *args, **kwargs):
        try:
            code = super().__call__(*args, standalone_mode=False, **kwargs)
        except _UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # its message is the help text
                typer.echo(exc.format_message())
                sys.exit(0)
            typer.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(2)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


app = OneLineErrors(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help text: Rich markup would read "[env GANORCH_RUNS, default ./runs]" and every
    # other bracketed default as a style tag and drop it.
    rich_markup_mode=None,
    help="Ray-distributed experiment orchestrator for GAN research.",
)


def _show_version(asked: bool) -> None:
    if asked:
        typer.echo(f"ganorch {version('ganorch')}")
        raise typer.Exit(0)


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    pass  # the app's options only: its help text is the app's


app.add_typer(evaluate.top_level)  # ganorch metrics
app.add_typer(results.top_level)  # ganorch tensorboard
app.add_typer(sweep.app, name="sweep")
app.add_typer(results.app, name="results")
app.add_typer(evaluate.app, name="eval")
app.add_typer(augment.app, name="grid")


def main() -> None:
    """The console script: run the app, do Python's exit work, then skip native teardown.

    Arrow's thread pools can abort the process while C++ statics are destroyed at interpreter
    exit ("terminate called without an active exception", SIGABRT), turning a finished command
    into exit -6 now and then. So the exit work Python would do runs here (waiting for non-daemon
    threads, atexit hooks such as Ray's shutdown, flushing output) and the process then ends with
    ``os._exit``, which never reaches that teardown.
    """
    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exc.code
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
