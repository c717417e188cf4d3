"""Joining a cluster: an address nobody answers on is one error line, exit 2, in seconds."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orchestrator.cluster import probe
from orchestrator.errors import UserError
from tests.conftest import run_cli, write_spec


@contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port that is bound but never listened on, for as long as the test runs: a
    connection is refused, and no other process can take the port in the meantime (as it
    could one found free and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def sweep_run(tmp_path: Path, *options: str, env: dict | None = None):
    """`ganorch sweep run` of a small spec into ``tmp_path``, with ``options``."""
    spec = write_spec(tmp_path / "spec.yaml")
    runs = str(tmp_path / "runs")
    return run_cli("sweep", "run", str(spec), "--runs-dir", runs, *options, timeout=60, env=env)


@pytest.mark.parametrize("form", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}"])
def test_sweep_with_an_unreachable_address_is_one_line_exit_2(tmp_path, form):
    with refusing_port() as port:
        address = form.format(port=port)
        result = sweep_run(tmp_path, "--address", address)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"error: cannot reach Ray at {address}: nothing answers on "
        f"{address.split('://')[-1]} (Connection refused)"
    ]
    assert "Traceback" not in result.stdout + result.stderr


def test_ganorch_address_is_the_default(tmp_path):
    with refusing_port() as port:
        address = f"127.0.0.1:{port}"
        result = sweep_run(tmp_path, env={**os.environ, "GANORCH_ADDRESS": address})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: cannot reach Ray at {address}: nothing answers on {address} (Connection refused)"
    )


def test_probe_accepts_a_listening_address_and_rejects_malformed_ones():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        probe(f"127.0.0.1:{server.getsockname()[1]}")
    with pytest.raises(UserError, match="expected auto, host:port or ray://host:port"):
        probe("127.0.0.1")
