"""One writer per run folder: the lock names its holder, stale locks of this host are taken
over, and a refused command leaves nothing behind (a bucket's lock: test_object_store.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest

from orchestrator.errors import UserError
from orchestrator.locks import LOCK_FILE, run_locked
from orchestrator.runs import RunDir


def test_a_second_writer_is_refused_with_the_holder_named(tmp_path):
    run = RunDir.of(str(tmp_path), "r")
    with run_locked(run, "sweep run", print):
        held = json.loads((tmp_path / "r" / LOCK_FILE).read_text())
        assert (held["host"], held["pid"]) == (socket.gethostname(), os.getpid())
        with pytest.raises(UserError) as refused, run_locked(run, "eval run", print):
            pytest.fail("a second writer got the lock")
        assert str(refused.value).startswith(
            f"run 'r' is in use by ganorch sweep run (pid {os.getpid()} on "
            f"{socket.gethostname()}, since "
        )
        assert str(refused.value).endswith(
            f"delete {tmp_path / 'r' / LOCK_FILE} if that process is gone"
        )
        assert (tmp_path / "r" / LOCK_FILE).exists()  # the refused one left it alone
    assert not (tmp_path / "r").exists()  # released; the block wrote nothing


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("holder", ["dead pid", "reused pid"])
def test_a_stale_lock_of_this_host_is_taken_over_with_a_warning(tmp_path, holder):
    run = RunDir.of(str(tmp_path), "r")
    (tmp_path / "r").mkdir()
    pid, start = (_dead_pid(), None) if holder == "dead pid" else (os.getpid(), "1")
    stale = {"command": "ganorch eval run", "host": socket.gethostname(), "pid": pid}
    (tmp_path / "r" / LOCK_FILE).write_text(json.dumps({**stale, "process_start": start}))
    warnings: list[str] = []
    with run_locked(run, "sweep run", warnings.append):
        (tmp_path / "r" / "tables").mkdir()
        assert (
            json.loads((tmp_path / "r" / LOCK_FILE).read_text())["command"] == "ganorch sweep run"
        )
    assert len(warnings) == 1 and "taking over the lock of ganorch eval run" in warnings[0]
    assert not (tmp_path / "r" / LOCK_FILE).exists() and (tmp_path / "r" / "tables").is_dir()


def test_a_lock_from_another_host_is_honoured(tmp_path):
    run = RunDir.of(str(tmp_path), "r")
    (tmp_path / "r").mkdir()
    other = {"command": "ganorch grid augment", "host": "elsewhere", "pid": _dead_pid()}
    (tmp_path / "r" / LOCK_FILE).write_text(json.dumps(other))
    refused = pytest.raises(UserError, match="in use by ganorch grid augment .* on elsewhere")
    with refused, run_locked(run, "sweep run", print):
        pass
    assert json.loads((tmp_path / "r" / LOCK_FILE).read_text()) == other
