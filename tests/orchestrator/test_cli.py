"""The console script's exit (Python's exit work runs, then the process ends with the app's
code), its help text and its version."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest
import typer
from typer.testing import CliRunner

import orchestrator.cli as cli

from ..conftest import run_cli

# A hook registered before the app runs (as Ray registers its shutdown) and a thread the app
# leaves running must both finish although the process ends with os._exit.
SCRIPT = """
import atexit, sys, threading, time
import orchestrator.cli as cli
atexit.register(lambda: print("exit hook ran", flush=True))
def late():
    time.sleep(0.3)
    print("non-daemon thread finished", flush=True)
inner = cli.app
def app():  # the app leaves a thread running, as a command's writer thread might
    try:
        inner()
    finally:
        threading.Thread(target=late).start()
cli.app = app
sys.argv = ["ganorch", *sys.argv[1:]]
cli.main()
"""


@pytest.mark.parametrize(
    ("args", "code"),
    [(["--help"], 0), (["results", "show"], 2), (["--no-such-option"], 2)],
)
def test_main_runs_exit_hooks_and_threads_then_exits_with_the_apps_code(args, code):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == code, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-2:] == ["non-daemon thread finished", "exit hook ran"]
    if code == 2:
        assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1


def _commands(command, path: tuple[str, ...] = ()):
    """Every command and group of the app with its words after `ganorch`, the app's own first."""
    yield path, command
    if isinstance(command, typer.core.TyperGroup):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


# What the README says of each option: its environment variable and default, as --help must show.
SHARED_OPTIONS = {"--runs-dir": ["GANORCH_RUNS", "./runs"], "--address": ["GANORCH_ADDRESS"]}
DEFAULTS = {
    ("grid", "augment"): {
        "--strategies": ["mix, filter, finetune, source", "default: all four"],
        "--real": ["default: 0,1,10,20,50,100"],
        "--generated": ["default: 0,1,10,20,50,100"],
        "--unit": ["default: percent"],
        "--seeds": ["default: 3"],
        "--epochs": ["default: 30"],
        "--batch-size": ["default: 64"],
        "--actors": ["one per GPU, else one per CPU"],
    },
    ("eval", "run"): {"--n": ["default: 1000"], "--chunk": ["default: 10000"]},
}


def test_every_commands_help_shows_the_defaults_and_environment_variables_the_readme_names():
    root = typer.main.get_command(cli.app)
    runner = CliRunner()
    checked = set()
    for path, command in _commands(root):
        result = runner.invoke(cli.app, [*path, "--help"], prog_name="ganorch")
        assert result.exit_code == 0, result.output
        shown = " ".join(result.output.split())  # wrapped lines joined again
        ctx = command.context_class(command, info_name=path[-1] if path else "ganorch")
        for option in command.params:
            expected = {**SHARED_OPTIONS, **DEFAULTS.get(path, {})}.get(option.opts[0])
            if expected is None:
                continue
            record = " ".join(option.get_help_record(ctx)[1].split())
            assert record in shown, (path, option.opts[0], shown)
            for fragment in expected:  # in this option's own help, not merely somewhere
                assert fragment in record, (path, option.opts[0], record)
            checked.add((path, option.opts[0]))
    assert {(("sweep", "run"), "--runs-dir"), (("eval", "run"), "--address")} <= checked
    assert {(("grid", "augment"), option) for option in DEFAULTS[("grid", "augment")]} <= checked
    assert {(("eval", "run"), option) for option in DEFAULTS[("eval", "run")]} <= checked


@pytest.mark.parametrize("group", [[], ["sweep"], ["eval"], ["results"], ["grid"]])
def test_a_group_without_a_command_prints_its_help_once(group, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.app(group, prog_name="ganorch")
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.count("Usage: ganorch") == 1, out
    assert "Commands:" in out


def test_version_is_the_installed_packages():
    result = run_cli("--version", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"ganorch {version('ganorch')}\n"
