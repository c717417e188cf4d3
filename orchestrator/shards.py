"""Work cut into shards and run on a pool of long-lived Ray actors, one table fragment per shard.

``ganorch eval`` and ``ganorch grid augment`` come down to many independent pieces of work (a
generator x metric x seed, an augmentation cell) whose results are table rows. Shards whose rows
the table holds already are skipped. Each worker builds the job once, ``factory(**shared)`` with
``shared`` put in the object store once (arriving zero-copy, read-only), then runs one shard at a
time, ``job.run(task, *inputs) -> list[row dict]``; a finished shard's rows are appended as one
fragment at once. A worker whose process dies (killed, out of memory, node lost) is replaced and
its shard handed to another; a shard that raises is recorded with its error, the others go on.
A shard that fails after an earlier attempt finished (``force``, or a retry) keeps that
attempt's rows, written again with the failure in ``redo_error``: a result is never replaced
by its absence.

A shard without a key is an *intermediate*: its ``run`` returns any object (features of one
chunk of samples, say), which stays in the object store and is passed, in ``needs`` order, as
``inputs`` to the shards that need it; it writes no rows. Intermediates run only for shards that
still have to run, before them, and are let go once those have finished.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import (
    ActorDiedError,
    ObjectLostError,
    OutOfMemoryError,
    RayActorError,
    RayTaskError,
)

from orchestrator.errors import UserError, error_line
from orchestrator.progress import StatusLine
from orchestrator.schedule import Schedule, Shard
from orchestrator.tables import Table

SHARD_COLUMN = "shard"
ERROR_COLUMN = "error"
# The failure of a later attempt, on the rows of the last attempt that finished (kept).
REDO_ERROR_COLUMN = "redo_error"
# A shard whose worker died this many times is recorded as failed rather than retried forever.
MAX_ATTEMPTS = 3


@dataclass
class ShardReport:
    """What a :func:`run_shards` call did, shown as it goes on a :class:`StatusLine`:
    ``[name] shards 12/40 · failed 1 · 0:41 · ETA ~1:20`` (``noun`` instead of shards)."""

    name: str
    noun: str
    total: int
    skipped: int = 0
    done: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # shard id -> error line
    worker_deaths: int = 0
    seconds: float = 0.0
    line: StatusLine = field(default_factory=StatusLine, repr=False, compare=False)

    def show(self, final: bool = False) -> None:
        finished = self.skipped + self.done + len(self.failures)
        text = (
            f"[{self.name}] {self.noun} {finished}/{self.total} · failed "
            f"{len(self.failures)}"
            + (f" · skipped {self.skipped} (already done)" if self.skipped else "")
            + (f" · worker restarts {self.worker_deaths}" if self.worker_deaths else "")
        )
        self.line.show(
            text, done=self.done + len(self.failures), remaining=self.total - finished, final=final
        )


class ShardWorker:
    """The actor: builds the job once, then runs shards one at a time."""

    def __init__(self, factory: Callable[..., Any], **shared: Any) -> None:
        self.job = factory(**shared)  # top-level ObjectRef arguments arrive resolved

    def run(self, task: Any, *inputs: Any) -> tuple[Any, float, str, float]:
        """The shard's rows (an intermediate's result), seconds, the node it ran on and the
        GPU share this worker holds."""
        started = time.perf_counter()
        rows = self.job.run(task, *inputs)  # ObjectRef inputs arrive resolved
        context = ray.get_runtime_context()
        gpus = float(context.get_assigned_resources().get("GPU", 0.0))
        return rows, time.perf_counter() - started, context.get_node_id(), gpus

    def pid(self) -> int:
        return os.getpid()


def shard_outcomes(data) -> dict[str, str | None]:
    """Shard id -> the error of its latest attempt (None: it finished), from a table's rows in
    write order. Rows of one shard may have different keys (a long-format shard writes one row
    per value, its error row only the shard's key), so the last row of a shard decides."""
    if data.num_rows == 0 or SHARD_COLUMN not in data.column_names:
        return {}
    errors = _column(data, ERROR_COLUMN)
    redo = _column(data, REDO_ERROR_COLUMN)
    outcomes = (error or redo_error for error, redo_error in zip(errors, redo, strict=True))
    return dict(zip(data.column(SHARD_COLUMN).to_pylist(), outcomes, strict=True))


def finished_shards(table: Table) -> set[str]:
    """Ids of the shards whose latest attempt in ``table`` finished (failed ones run again)."""
    return _finished(table.read())


def _finished(data) -> set[str]:
    return {shard for shard, error in shard_outcomes(data).items() if not error}


def _kept_rows(data) -> dict[str, list[dict[str, Any]]]:
    """Shard id -> the rows of its last attempt that finished (those a failure keeps)."""
    if data.num_rows == 0 or SHARD_COLUMN not in data.column_names:
        return {}
    kept: dict[str, list[dict[str, Any]]] = {}
    for row in data.to_pylist():
        if row.get(ERROR_COLUMN) is None:
            kept.setdefault(row[SHARD_COLUMN], []).append(row)
    return kept


def _column(data, name: str) -> list[Any]:
    return data.column(name).to_pylist() if name in data.column_names else [None] * data.num_rows


def default_actors() -> int:
    """One worker per GPU when the cluster has GPUs, else one per CPU."""
    resources = ray.cluster_resources()
    return max(1, int(resources.get("GPU", 0)) or int(resources.get("CPU", 1)))


def gpu_share(actors: int, gpus: float) -> float:
    """Each worker's GPU share: a whole GPU while there are as many GPUs as workers, else an
    equal fraction that packs the workers evenly on the whole GPUs (2 workers on 1 GPU: 0.5
    each; 3 on 2: 0.5); none without GPUs."""
    whole = math.floor(gpus)
    if whole < 1:
        return 0.0
    return 1.0 / math.ceil(actors / whole)


def run_shards(
    name: str,
    shards: Iterable[Shard],
    factory: Callable[..., Any],
    shared: Mapping[str, Any],
    table: Table,
    *,
    actors: int | None = None,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float | None = None,
    force: bool = False,
    noun: str = "shards",
) -> ShardReport:
    """Run every shard not already finished in ``table`` on a pool of Ray actors.

    Ray must already be connected. Shards start in the order given (put long ones first, so
    the pool ends evenly), each once the intermediates it needs have results. Each finished
    shard's rows (with ``shard``, the shard's key columns, ``node_id`` and ``gpus`` (the
    worker's GPU share) added, and ``wall_s`` when the job did not set it) are appended to
    ``table`` as one fragment. Workers get a whole GPU each where the cluster has as many GPUs
    as workers, else an equal share (:func:`gpu_share`), unless ``gpus_per_actor`` says
    otherwise. ``force`` runs every shard again (the new rows supersede the old ones; a shard
    that fails keeps its old rows, with the failure in ``redo_error``).
    ``noun`` names the shards in the progress line (``cells`` for an augmentation grid).
    """
    started = time.monotonic()
    shards = list(shards)
    data = table.read()
    schedule = Schedule(shards, set() if force else _finished(data))
    report = ShardReport(name, noun, total=len(shards), skipped=len(shards) - schedule.size)
    if not schedule.size:
        report.show(final=True)
        return report
    size = min(actors or default_actors(), schedule.size)
    if gpus_per_actor is None:
        gpus_per_actor = gpu_share(size, ray.cluster_resources().get("GPU", 0))
    pool = WorkerPool(
        schedule,
        table,
        report,
        kept=_kept_rows(data),
        factory=factory,
        shared=shared,
        size=size,
        cpus=cpus_per_actor,
        gpus=gpus_per_actor,
    )
    pool.run()
    report.seconds = time.monotonic() - started
    report.show(final=True)
    return report


class WorkerPool:
    """The Ray actors that run a :class:`Schedule`'s shards, one at a time each, appending
    finished shards' rows and failures to ``table`` and counting them in ``report``.

    A worker gets shards once it has started, so a replacement that the cluster cannot place
    (its node is gone and the rest are full) holds no shard back. A worker that dies is
    replaced and its shard handed out again, up to :data:`MAX_ATTEMPTS` times; workers that
    keep dying without a shard finishing in between end the run with a :class:`UserError`.
    """

    def __init__(
        self,
        schedule: Schedule,
        table: Table,
        report: ShardReport,
        *,
        kept: Mapping[str, list[dict[str, Any]]],
        factory: Callable[..., Any],
        shared: Mapping[str, Any],
        size: int,
        cpus: float,
        gpus: float,
    ) -> None:
        """``size`` workers will each build ``factory(**shared)`` once; ``shared`` is put in
        the object store here, once for all of them. ``kept``: each shard's rows of its last
        attempt that finished, which a failure now keeps."""
        self.name, self.schedule, self.table = report.name, schedule, table
        self.kept = kept
        self.report, self.size = report, size
        self.worker_class = ray.remote(ShardWorker).options(
            num_cpus=cpus, num_gpus=gpus, max_restarts=0, scheduling_strategy="SPREAD"
        )
        self.job = {"factory": factory, **{k: ray.put(v) for k, v in shared.items()}}
        self.starting: dict[ray.ObjectRef, Any] = {}  # its pid() reference -> worker
        self.idle: list[Any] = []
        self.running: dict[ray.ObjectRef, tuple[Any, Shard, int]] = {}
        self.deaths_without_progress = 0

    def run(self) -> None:
        """Start the workers, run every shard of the schedule, stop the workers."""
        for _ in range(self.size):
            self._start_worker()
        while self.schedule.unfinished:
            self._hand_out()
            if not self.running and not self.starting:  # nothing runs, nothing may start: a bug
                raise RuntimeError(f"{self.name}: shards wait for intermediates that never ran")
            ready, _ = ray.wait([*self.running, *self.starting], num_returns=1, timeout=1.0)
            self.report.show()
            for ref in ready:
                if ref in self.starting:
                    self._started(ref)
                else:
                    self._finished(ref)
        self._stop_all()

    def _hand_out(self) -> None:
        while self.idle and (item := self.schedule.take()) is not None:
            shard, attempt, inputs = item
            worker = self.idle.pop()
            self.running[worker.run.remote(shard.task, *inputs)] = (worker, shard, attempt)

    def _started(self, ref: ray.ObjectRef) -> None:
        worker = self.starting.pop(ref)
        try:
            ray.get(ref)
        except RayActorError as exc:
            if isinstance(exc, ActorDiedError) and exc.actor_init_failed:
                self._stop_all()
                raise UserError(
                    f"{self.name}: workers cannot start: {error_line(str(exc))}"
                ) from None
            self._worker_died(exc)
            self._start_worker()
        else:
            self.idle.append(worker)

    def _finished(self, ref: ray.ObjectRef) -> None:
        worker, shard, attempt = self.running.pop(ref)
        try:
            outcome = ray.get(ref)
        except (RayActorError, OutOfMemoryError, ObjectLostError) as exc:
            # ObjectLostError: the result died with its node before the driver fetched it
            self._worker_died(exc)
            if attempt + 1 < MAX_ATTEMPTS:
                self.schedule.retry(shard, attempt + 1)
            else:
                self._fail(shard, f"worker died {MAX_ATTEMPTS} times: {error_line(str(exc))}")
            ray.kill(worker)  # dead already, or alive with its result gone
            self._start_worker()
            return
        except RayTaskError as exc:
            self._fail(shard, _describe(exc.cause or exc))
        else:
            self.deaths_without_progress = 0
            self._record(shard, *outcome)
            self.report.done += 1
        self.idle.append(worker)

    def _record(self, shard: Shard, result: Any, seconds: float, node: str, gpus: float) -> None:
        if shard.intermediate:
            # Put by the driver, so the copy the shards read lives on the driver's node and
            # outlives the worker node that computed it.
            self.schedule.done(shard, ray.put(result))
        else:
            base = {SHARD_COLUMN: shard.id, **shard.key, ERROR_COLUMN: None}
            base |= {"wall_s": seconds, "node_id": node, "gpus": gpus}
            self.table.append([{**base, **row} for row in result] or [base])
            self.schedule.done(shard)

    def _fail(self, shard: Shard, error: str) -> None:
        for failed, why in [(shard, error), *self.schedule.fail(shard, error)]:
            self.report.failures[failed.id] = why
            if failed.intermediate:
                continue
            if failed.id in self.kept:  # the failure goes beside the result, not over it
                self.table.append([{**row, REDO_ERROR_COLUMN: why} for row in self.kept[failed.id]])
                self.report.failures[failed.id] = f"{why} (its earlier result kept)"
            else:
                self.table.append([{SHARD_COLUMN: failed.id, **failed.key, ERROR_COLUMN: why}])

    def _worker_died(self, exc: Exception) -> None:
        self.report.worker_deaths += 1
        self.deaths_without_progress += 1
        if self.deaths_without_progress > 2 * self.size + MAX_ATTEMPTS:
            self._stop_all()
            raise UserError(
                f"{self.name}: workers keep dying ({self.report.worker_deaths} so "
                f"far): {error_line(str(exc))}"
            ) from None

    def _start_worker(self) -> None:
        worker = self.worker_class.remote(**self.job)
        self.starting[worker.pid.remote()] = worker

    def _stop_all(self) -> None:
        busy = [worker for worker, _, _ in self.running.values()]
        for worker in self.idle + list(self.starting.values()) + busy:
            ray.kill(worker)


def _describe(error: BaseException) -> str:
    """One line: the message of bad input, the type and message of anything else."""
    text = error_line(str(error))
    return text if isinstance(error, UserError) else f"{type(error).__name__}: {text}"
