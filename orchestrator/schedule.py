"""Shards and the order they run in: a :class:`Shard` is one piece of work, a
:class:`Schedule` says which shards still have to run and which may start now (see
:mod:`orchestrator.shards` for the pool of workers that runs them)."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ray


@dataclass(frozen=True)
class Shard:
    """One piece of work: ``id`` names it in the table, ``key`` holds its key columns (written
    into its rows, so an error row still says what failed; None for an intermediate shard),
    ``task`` is what the job runs, ``needs`` the ids of the intermediates whose results it
    receives."""

    id: str
    key: Mapping[str, Any] | None
    task: Any
    needs: tuple[str, ...] = ()

    @property
    def intermediate(self) -> bool:
        return self.key is None


class Schedule:
    """Which shards run and when: every unfinished shard with a key, and the intermediates
    they need (transitively); a shard may start once each of its ``needs`` has a result.
    Results are held as object references and let go once nothing still needs them."""

    def __init__(self, shards: list[Shard], finished: set[str]) -> None:
        by_id = {shard.id: shard for shard in shards}
        wanted = {s.id for s in shards if not s.intermediate and s.id not in finished}
        stack = [need for s in shards if s.id in wanted for need in s.needs]
        while stack:
            need = stack.pop()
            if need not in by_id:
                raise ValueError(f"a shard needs {need!r}, which is not among the shards")
            if not by_id[need].intermediate:
                raise ValueError(f"shards can only need intermediates, and {need!r} has a key")
            if need not in wanted:
                wanted.add(need)
                stack.extend(by_id[need].needs)
        self.shards = [s for s in shards if s.id in wanted]  # in the caller's order
        self.size = len(self.shards)
        self.unfinished = {s.id for s in self.shards}
        self.results: dict[str, ray.ObjectRef] = {}
        self._users = Counter(need for s in self.shards for need in s.needs)
        self._attempts = {s.id: 0 for s in self.shards}
        self._waiting = [s for s in self.shards if s.needs]
        self._ready = deque(s for s in self.shards if not s.needs)

    def take(self) -> tuple[Shard, int, list[ray.ObjectRef]] | None:
        """The next shard that may start, its attempt number and its inputs; None if none."""
        if not self._ready:
            return None
        shard = self._ready.popleft()
        return shard, self._attempts[shard.id], [self.results[n] for n in shard.needs]

    def done(self, shard: Shard, result: ray.ObjectRef | None = None) -> None:
        self.unfinished.discard(shard.id)
        if shard.intermediate:
            self.results[shard.id] = result
            self._release()
        for need in shard.needs:
            self._users[need] -= 1
            if self._users[need] == 0:
                self.results.pop(need, None)  # the object store may free it now

    def retry(self, shard: Shard, attempt: int) -> None:
        self._attempts[shard.id] = attempt
        self._ready.appendleft(shard)

    def fail(self, shard: Shard, error: str) -> list[tuple[Shard, str]]:
        """``shard`` failed for good: the shards that needed it (transitively) cannot run;
        returns them with the reason, all now finished."""
        self.unfinished.discard(shard.id)
        lost, failed_ids = [], {shard.id}
        for waiting in list(self._waiting):  # in order: a dependent follows what it needs
            if failed_ids & set(waiting.needs):
                self._waiting.remove(waiting)
                self.unfinished.discard(waiting.id)
                failed_ids.add(waiting.id)
                lost.append((waiting, f"needs {shard.id}, which failed: {error}"))
        return lost

    def _release(self) -> None:
        for shard in list(self._waiting):
            if all(need in self.results for need in shard.needs):
                self._waiting.remove(shard)
                self._ready.append(shard)
