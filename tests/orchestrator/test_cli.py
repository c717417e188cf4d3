"""The console script's exit: Python's exit work runs, then the process ends with the app's code."""

from __future__ import annotations

import subprocess
import sys

import pytest

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
