"""Shared fixtures: one real local Ray for the session, a session-wide judge cache, and a
runner for the installed `ganorch` console script."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

GANORCH = Path(sys.executable).with_name("ganorch")


@pytest.fixture(scope="session", autouse=True)
def judge_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Judges are trained once per test session, not once per test."""
    cache = tmp_path_factory.mktemp("ganorch-cache")
    os.environ["GANORCH_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's torch work on one thread, restoring the previous count afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def ray_address() -> str:
    """A real local Ray (2 CPUs, no dashboard, loopback only); CLI tests join it with
    --address."""
    import ray

    from orchestrator.cluster import quiet, start_local

    quiet()
    # A new local Ray: never join a cluster another process left in /tmp/ray (e.g. a
    # multi-node test's).
    start_local(num_cpus=2, logging_level=logging.ERROR, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def run_cli(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run the installed console script and capture its output as text."""
    return subprocess.run(
        [str(GANORCH), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        **kwargs,
    )


def run_in_process(*args: str) -> subprocess.CompletedProcess:
    """Run ``ganorch ARGS`` inside this test process, the way the console script's entry point
    does (the same app, its one-line error handling and exit codes), capturing output as text.

    For error paths that end before any Ray or torch work: it saves the few seconds a new
    interpreter spends importing the project. The installed console script stays covered by
    the tests that run it with :func:`run_cli`."""
    import contextlib
    import io

    from orchestrator.cli import app

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            app(args=list(args), prog_name="ganorch")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return subprocess.CompletedProcess(["ganorch", *args], code, out.getvalue(), err.getvalue())


def served_tensorboard_runs(*args: str, env: dict | None = None, attempts: int = 3) -> dict:
    """Start ``ganorch tensorboard ARGS --port P`` on a free loopback port and return its
    ``/data/runs`` once that lists a run (``{}`` if it never does within a minute).

    The port is found free and released before the server binds it, so another process may
    take it in between; the command then exits at once (exit 2, port taken) and we try
    another port rather than fail on that luck."""
    import json
    import signal
    import socket
    import time
    import urllib.request

    for _ in range(attempts):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen(
            [str(GANORCH), "tensorboard", *args, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and server.poll() is None:
                try:
                    url = f"http://127.0.0.1:{port}/data/runs"
                    with urllib.request.urlopen(url, timeout=2) as response:
                        runs = json.loads(response.read())
                    if runs:
                        return runs
                except OSError:
                    pass
                time.sleep(0.5)
            if server.poll() != 2:  # not refused for its port: no retry would help
                return {}
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    return {}


def write_spec(path: Path, **fields) -> Path:
    """A small, fast DCGAN spec on mnist5k with ``fields`` overriding its keys."""
    import yaml

    spec = {
        "name": "t",
        "dataset": {"name": "mnist5k"},
        "family": "dcgan",
        "epochs": 1,
        "search": {"algorithm": "optuna", "samples": 2, "max_concurrent": 1, "seed": 0},
        "scheduler": {"name": "none"},
        "resources": {"cpu": 1},
        "space": {"lr": {"loguniform": [2.0e-4, 2.0e-3]}},
        "fixed": {"base_channels": 8, "n_z": 16, "batch_size": 100, "fid_samples": 200},
    }
    spec.update(fields)
    path.write_text(yaml.safe_dump(spec))
    return path


def shard_workers_below(ancestor: int) -> list[int]:
    """Pids of ``ray::ShardWorker`` processes (eval and grid actors) descended from
    ``ancestor``: this session's Ray, not another one on the machine."""
    parents, titles = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            titles[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = []
    for pid, title in titles.items():
        if not title.startswith(b"ray::ShardWorker"):
            continue
        up = pid
        while up in parents and up not in (0, 1, ancestor):
            up = parents[up]
        if up == ancestor:
            found.append(pid)
    return found
