"""The `ganorch` command line: the command groups' sub-apps, assembled.

Each group keeps its commands beside its logic (``orchestrator/<group>/commands.py``); this
module only adds them to one app whose usage errors are one line, exit 2.
"""

from __future__ import annotations

import sys

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
            if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:
                typer.echo(exc.ctx.get_help())
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
    help="Ray-distributed experiment orchestrator for GAN research.",
)
app.add_typer(evaluate.top_level)  # ganorch metrics
app.add_typer(results.top_level)  # ganorch tensorboard
app.add_typer(sweep.app, name="sweep")
app.add_typer(results.app, name="results")
app.add_typer(evaluate.app, name="eval")
app.add_typer(augment.app, name="grid")


if __name__ == "__main__":
    app()
