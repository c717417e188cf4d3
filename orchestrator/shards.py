"""Work cut into shards and run on a pool of long-lived Ray actors, one table fragment per shard.

``ganorch eval`` and ``ganorch grid augment`` both come down to many independent pieces of work
(a generator x metric x seed, an augmentation cell) whose results are table rows. This module
runs them: it skips shards whose rows are already in the table, starts ``actors`` workers that
each build the job once (judges, extractors) from data put in the object store once, hands out
one shard at a time, and appends each finished shard's rows as one fragment as soon as it
returns. A worker whose process dies (killed, out of memory, node lost) is replaced and its shard
handed to another worker; a shard that raises is recorded with its error and the others go on.

A job is any picklable factory ``factory(**shared) -> job`` whose result has
``run(task) -> list[row dict]``; ``shared`` values are put in the object store once and arrive
in every worker as (zero-copy, read-only) objects.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import ActorDiedError, OutOfMemoryError, RayActorError, RayTaskError

from orchestrator.callbacks import error_line
from orchestrator.display import clock
from orchestrator.errors import UserError
from orchestrator.tables import Table

SHARD_COLUMN = "shard"
ERROR_COLUMN = "error"
# A shard whose worker died this many times is recorded as failed rather than retried forever.
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Shard:
    """One piece of work: ``id`` names it in the table, ``key`` holds its key columns (written
    into its rows, so an error row still says what failed), ``task`` is what the job runs."""

    id: str
    key: Mapping[str, Any]
    task: Any


@dataclass
class ShardReport:
    """What a :func:`run_shards` call did."""

    total: int
    skipped: int = 0
    done: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # shard id -> error line
    worker_deaths: int = 0
    nodes: set[str] = field(default_factory=set)  # node ids that finished at least one shard
    seconds: float = 0.0


class ShardWorker:
    """The actor: builds the job once, then runs shards one at a time."""

    def __init__(self, factory: Callable[..., Any], **shared: Any) -> None:
        self.job = factory(**shared)  # top-level ObjectRef arguments arrive resolved

    def run(self, task: Any) -> tuple[list[dict[str, Any]], float, str]:
        started = time.perf_counter()
        rows = self.job.run(task)
        return rows, time.perf_counter() - started, ray.get_runtime_context().get_node_id()

    def pid(self) -> int:
        return os.getpid()


def shard_outcomes(data) -> dict[str, str | None]:
    """Shard id -> the error of its latest attempt (None: it finished), from a table's rows in
    write order. Rows of one shard may have different keys (a long-format shard writes one row
    per value, its error row only the shard's key), so the last row of a shard decides."""
    if data.num_rows == 0 or SHARD_COLUMN not in data.column_names:
        return {}
    errors = (data.column(ERROR_COLUMN).to_pylist() if ERROR_COLUMN in data.column_names
              else [None] * data.num_rows)
    return dict(zip(data.column(SHARD_COLUMN).to_pylist(), errors, strict=True))


def finished_shards(table: Table) -> set[str]:
    """Ids of the shards whose latest attempt in ``table`` finished (failed ones run again)."""
    return {shard for shard, error in shard_outcomes(table.read()).items() if not error}


def default_actors() -> int:
    """One worker per GPU when the cluster has GPUs, else one per CPU."""
    resources = ray.cluster_resources()
    return max(1, int(resources.get("GPU", 0)) or int(resources.get("CPU", 1)))


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

    Ray must already be connected. Each finished shard's rows (with ``shard`` and the shard's
    key columns added, and ``wall_s`` when the job did not set it) are appended to ``table`` as
    one fragment. ``force`` runs every shard again (the new rows supersede the old ones).
    ``noun`` names the shards in the progress line (``cells`` for an augmentation grid).
    """
    started = time.monotonic()
    shards = list(shards)
    skip = set() if force else finished_shards(table)
    todo = deque((shard, 0) for shard in shards if shard.id not in skip)
    report = ShardReport(total=len(shards), skipped=len(shards) - len(todo))
    progress = ShardProgress(name, report, noun)
    if not todo:
        progress.show(final=True)
        return report

    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
    size = min(actors or default_actors(), len(todo))
    worker_class = ray.remote(ShardWorker).options(
        num_cpus=cpus_per_actor, num_gpus=gpus_per_actor, max_restarts=0,
        scheduling_strategy="SPREAD")
    shared_refs = {key: ray.put(value) for key, value in shared.items()}  # once, for all workers

    def new_worker():
        return worker_class.remote(factory, **shared_refs)

    idle = [new_worker() for _ in range(size)]
    running: dict[ray.ObjectRef, tuple[Any, Shard, int]] = {}
    deaths_without_progress = 0
    while todo or running:
        while todo and idle:
            shard, attempt = todo.popleft()
            worker = idle.pop()
            running[worker.run.remote(shard.task)] = (worker, shard, attempt)
        ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
        progress.show()
        for ref in ready:
            worker, shard, attempt = running.pop(ref)
            try:
                rows, seconds, node = ray.get(ref)
            except (RayActorError, OutOfMemoryError) as exc:
                if isinstance(exc, ActorDiedError) and exc.actor_init_failed:
                    _stop_workers(idle + [w for w, _, _ in running.values()])
                    raise UserError(f"{name}: workers cannot start: "
                                    f"{error_line(str(exc))}") from None
                report.worker_deaths += 1
                deaths_without_progress += 1
                if deaths_without_progress > 2 * size + MAX_ATTEMPTS:
                    _stop_workers(idle + [w for w, _, _ in running.values()])
                    raise UserError(f"{name}: workers keep dying ({report.worker_deaths} "
                                    f"so far): {error_line(str(exc))}") from None
                if attempt + 1 < MAX_ATTEMPTS:
                    todo.appendleft((shard, attempt + 1))
                else:
                    _record_failure(table, shard, f"worker died {MAX_ATTEMPTS} times: "
                                    f"{error_line(str(exc))}", report)
                idle.append(new_worker())
                continue
            except RayTaskError as exc:
                _record_failure(table, shard, _describe(exc.cause or exc), report)
            else:
                deaths_without_progress = 0
                base = {SHARD_COLUMN: shard.id, **shard.key, ERROR_COLUMN: None, "wall_s": seconds}
                table.append([{**base, **row} for row in rows] or [base])
                report.done += 1
                report.nodes.add(node)
            idle.append(worker)
    _stop_workers(idle)
    report.seconds = time.monotonic() - started
    progress.show(final=True)
    return report


def _record_failure(table: Table, shard: Shard, error: str, report: ShardReport) -> None:
    table.append([{SHARD_COLUMN: shard.id, **shard.key, ERROR_COLUMN: error}])
    report.failures[shard.id] = error


def _describe(error: BaseException) -> str:
    """One line: the message of bad input, the type and message of anything else."""
    text = error_line(str(error))
    return text if isinstance(error, UserError) else f"{type(error).__name__}: {text}"


def _stop_workers(workers: list[Any]) -> None:
    for worker in workers:
        ray.kill(worker)


class ShardProgress:
    """``[name] shards 12/40 · running 2 · failed 1 · 0:41 · ETA ~1:20`` on stderr.

    Rewritten in place on a terminal; on a pipe, a line whenever the counts change.
    """

    def __init__(self, name: str, report: ShardReport, noun: str = "shards") -> None:
        self.name, self.report, self.noun = name, report, noun
        self._started = time.monotonic()
        self._last_text = ""
        self._last_print = 0.0

    def show(self, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last_print < 1.0:
            return
        r = self.report
        finished = r.skipped + r.done + len(r.failures)
        text = (f"[{self.name}] {self.noun} {finished}/{r.total} · failed {len(r.failures)}"
                + (f" · skipped {r.skipped} (already done)" if r.skipped else "")
                + (f" · worker restarts {r.worker_deaths}" if r.worker_deaths else ""))
        elapsed = now - self._started
        ran = r.done + len(r.failures)
        eta = ""
        if not final and ran > 0 and finished < r.total:
            eta = f" · ETA ~{clock(elapsed / ran * (r.total - finished))}"
        line = f"{text} · {clock(elapsed)}{eta}"
        if sys.stderr.isatty():
            sys.stderr.write("\r\033[K" + line + ("\n" if final else ""))
        elif text != self._last_text or final:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self._last_text, self._last_print = text, now
