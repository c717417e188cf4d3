"""One writer per run folder: ``<run>/run.lock`` names the command holding the run, its host
and pid, while `sweep run`, `eval run` or `grid augment` writes there.

Locally the file is created exclusively (``O_EXCL``), so of two commands started at once one
wins. An object store has no create-if-absent in pyarrow: there the lock object is written
after a check and read back, which leaves a window of one round trip in which two writers
may both believe they hold it (the second read-back then refuses one of them in most cases).
A lock whose holder ran on this host and is gone (its pid dead, or reused by a process that
started later) is stale and taken over with a warning; one from another host is honoured
until someone deletes it. Folders the lock had to create are removed with it when the
command left them empty (a command refused before writing anything leaves nothing behind).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow.fs as pafs

from orchestrator.errors import UserError
from orchestrator.runs import RunDir

LOCK_FILE = "run.lock"


@contextmanager
def run_locked(run: RunDir, command: str, warn: Callable[[str], None]) -> Iterator[None]:
    """Hold ``run``'s lock while the block writes to it; a UserError naming the holder when
    another live command holds it."""
    mine = _holder(command)
    created = _missing_folders(run)
    try:
        _acquire(run, mine, warn)
    except UserError:
        _remove_if_empty(run, created)
        raise
    try:
        yield
    finally:
        if _read(run) == mine:  # never delete a lock another command took over
            run.remove(LOCK_FILE)
        _remove_if_empty(run, created)


def _missing_folders(run: RunDir) -> list[str]:
    """The run folder and those above it that do not exist yet, innermost first."""
    missing, path = [], run.root
    while path != path.parent and run.fs.get_file_info(path.as_posix()).type == (
        pafs.FileType.NotFound
    ):
        missing.append(path.as_posix())
        path = path.parent
    return missing


def _remove_if_empty(run: RunDir, folders: list[str]) -> None:
    for folder in folders:
        if run.fs.get_file_info(folder).type == pafs.FileType.NotFound:
            continue
        if run.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
            return  # the command wrote something: keep it all
        run.fs.delete_dir(folder)


def _holder(command: str) -> dict[str, Any]:
    return {
        "command": f"ganorch {command}",
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "process_start": _process_start(os.getpid()),
        "since": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "token": uuid.uuid4().hex,
    }


def _acquire(run: RunDir, mine: dict[str, Any], warn: Callable[[str], None]) -> None:
    for _ in range(3):  # a stale lock is removed, then the create is tried again
        if _create(run, mine):
            return
        held = _read(run)
        if held is None:  # released between our create and our read
            continue
        if not _stale(held):
            raise UserError(
                f"run {run.name!r} is in use by {held.get('command', 'another command')} "
                f"(pid {held.get('pid')} on {held.get('host')}, since {held.get('since')}); "
                f"wait for it to finish, or delete {run.shown(run.path(LOCK_FILE))} if that "
                "process is gone"
            )
        warn(
            f"warning: run {run.name!r}: taking over the lock of {held.get('command')} "
            f"(pid {held.get('pid')} on this host, since {held.get('since')}), which has ended"
        )
        run.remove(LOCK_FILE)
    raise UserError(f"run {run.name!r}: cannot take its lock {run.shown(run.path(LOCK_FILE))}")


def _create(run: RunDir, mine: dict[str, Any]) -> bool:
    """Write the lock if there is none; True when it is ours."""
    text = json.dumps(mine)
    run.fs.create_dir(run.path(), recursive=True)
    if not run.remote:
        try:
            descriptor = os.open(run.path(LOCK_FILE), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w") as stream:
            stream.write(text)
        return True
    if run.fs.get_file_info(run.path(LOCK_FILE)).type != pafs.FileType.NotFound:
        return False
    run.write_text(LOCK_FILE, text)
    return _read(run) == mine


def _read(run: RunDir) -> dict[str, Any] | None:
    """The lock's holder, None when there is no lock (a lock being written reads as {})."""
    try:
        text = run.read_text(LOCK_FILE)
    except FileNotFoundError:
        return None
    if text is None:
        return None
    try:
        held = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return held if isinstance(held, dict) else {}


def _stale(held: dict[str, Any]) -> bool:
    """The holder ran on this host and its process is gone."""
    if held.get("host") != socket.gethostname() or not isinstance(held.get("pid"), int):
        return False
    pid = held["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    started = _process_start(pid)
    return started is not None and held.get("process_start") not in (None, started)


def _process_start(pid: int) -> str | None:
    """When the process started (clock ticks since boot, from /proc), so that a pid reused
    by a later process is not taken for the holder; None where /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None
