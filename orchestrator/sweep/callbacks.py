"""Tune callbacks run in the driver: one records results into the run's tables, one prints
a live progress line. Both keep no handles, so Tune can pickle them with the experiment."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from pathlib import Path
from typing import Any

from ray import tune

from orchestrator.errors import error_line
from orchestrator.progress import StatusLine
from orchestrator.sweep.space import family_config, variant_of
from orchestrator.tables import Table
from trainables.families import family_class

# What Tune adds to every result that is bookkeeping rather than a measurement.
_TUNE_FIELDS = {
    "timestamp",
    "checkpoint_dir_name",
    "done",
    "training_iteration",
    "trial_id",
    "date",
    "time_this_iter_s",
    "pid",
    "hostname",
    "node_ip",
    "time_since_restore",
    "iterations_since_restore",
    "config",
    "experiment_tag",
    "should_checkpoint",
}
# Where the trial ran (orchestrator.sweep.tuner._placement): Ray's node id and the GPU share
# it held.
PLACEMENT_FIELDS = ("node_id", "gpus")


def _trial_error_text(trial: Any) -> str:
    """Tune writes the error next to the trial before callbacks run; read it from there."""
    try:
        if trial.error_file and Path(trial.error_file).is_file():
            return Path(trial.error_file).read_text()
        return str(trial.get_error() or "")
    except Exception:  # noqa: BLE001 - an unreadable error file must not stop the sweep
        return ""


class TableRecorder(tune.Callback):
    """Appends a row to ``epochs`` per reported result and to ``trials`` per status change.

    Checkpoint paths are Tune's paths on its storage filesystem; ``storage_prefix`` (e.g.
    ``s3://``) makes them URIs when that filesystem is an object store."""

    def __init__(
        self,
        tables_root: str,
        run: str,
        metric: str,
        mode: str,
        max_epochs: int,
        dataset: str,
        fingerprint: str,
        storage_prefix: str = "",
    ) -> None:
        self.tables_root, self.run = tables_root, run
        self.metric, self.mode, self.max_epochs = metric, mode, max_epochs
        self.dataset, self.fingerprint = dataset, fingerprint
        self.storage_prefix = storage_prefix

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._append_trial(trial, "RUNNING")

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        row = epoch_row(trial.trial_id, result, self.storage_prefix + trial.path)
        Table(self.tables_root, "epochs").append([row])

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._append_trial(trial, "TERMINATED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._append_trial(trial, "ERROR", error=error_line(_trial_error_text(trial)))

    def _append_trial(self, trial: Any, status: str, error: str | None = None) -> None:
        latest = trial.checkpoint
        # A starting trial has no epochs yet: skip reading the epochs table for it.
        best = {} if status == "RUNNING" else self.best_epochs().get(trial.trial_id, {})
        row = self.trial_row(
            trial.trial_id,
            status,
            trial.last_result or {},
            best,
            self.storage_prefix + latest.path if latest else None,
            trial.config,
            error,
        )
        Table(self.tables_root, "trials").append([row])

    def best_epochs(self) -> dict[str, dict[str, Any]]:
        """Each trial's epochs-table row with the best metric (Tune keeps its checkpoint),
        from one read of the table."""
        better = (lambda a, b: a < b) if self.mode == "min" else (lambda a, b: a > b)
        best: dict[str, dict[str, Any]] = {}
        for row in Table(self.tables_root, "epochs").read().to_pylist():
            value = _finite_or_none(row.get(self.metric))
            current = best.get(row["trial_id"])
            if value is not None and (current is None or better(value, current[self.metric])):
                best[row["trial_id"]] = row
        return best

    def trial_row(
        self,
        trial_id: str,
        status: str,
        last: dict[str, Any],
        best: dict[str, Any],
        last_checkpoint: str | None,
        config: dict[str, Any],
        error: str | None = None,
    ) -> dict[str, Any]:
        """The trials-table row: identity, outcome, best/last metrics, checkpoints, config.

        ``best`` is the trial's best epochs-table row ({} if none); ``checkpoint`` is that
        epoch's checkpoint (what evaluation should load), ``last_checkpoint`` the newest one
        (what a resumed trial continues from).
        """
        epochs = int(last.get("training_iteration", 0) or 0)
        family, hyperparameters = family_config(config)
        variant = variant_of(config)
        row: dict[str, Any] = {
            "trial_id": trial_id,
            "run": self.run,
            "family": family,
            **({"variant": variant} if variant is not None else {}),
            "status": status,
            "stopped_early": status == "TERMINATED" and epochs < self.max_epochs,
            "error": error,
            "epochs": epochs,
            f"best_{self.metric}": _finite_or_none(best.get(self.metric)),
            "best_epoch": best.get("epoch"),
            f"last_{self.metric}": _finite_or_none(last.get(self.metric)),
            "checkpoint": best.get("checkpoint") or last_checkpoint,
            "last_checkpoint": last_checkpoint,
            "wall_s": float(last.get("time_total_s", 0.0) or 0.0),
            **{name: last.get(name) for name in PLACEMENT_FIELDS},
            "dataset": self.dataset,
            "dataset_fingerprint": self.fingerprint,
        }
        for name, value in last.items():
            if (
                name not in _TUNE_FIELDS
                and name not in (self.metric, "epoch", *PLACEMENT_FIELDS)
                and _is_number(value)
                and not name.startswith("best_")
            ):
                row[f"last_{name}"] = float(value)
        # Every knob of the trial's family, defaults included; a config the family rejects is
        # recorded as given (that trial errored).
        with contextlib.suppress(ValueError):
            hyperparameters = family_class(family).resolve(hyperparameters)
        row.update({f"config/{k}": v for k, v in sorted(hyperparameters.items())})
        return row


def epoch_row(trial_id: str, result: dict[str, Any], trial_path: str | None) -> dict[str, Any]:
    """The epochs-table row of one reported result: every numeric metric and its checkpoint."""
    row: dict[str, Any] = {"trial_id": trial_id, "epoch": int(result.get("training_iteration", 0))}
    folder = result.get("checkpoint_dir_name")
    row["checkpoint"] = f"{trial_path}/{folder}" if trial_path and isinstance(folder, str) else None
    for name, value in result.items():
        if name not in _TUNE_FIELDS and name != "epoch" and _is_number(value):
            row[name] = float(value)
    for label in ("node_id", "exploited_from"):  # PBT: "<donor trial>@<its epoch>"
        if isinstance(result.get(label), str):
            row[label] = result[label]
    return row


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite_or_none(value: Any) -> float | None:
    return float(value) if _is_number(value) and math.isfinite(value) else None


def _resources_text(trial: Any) -> str:
    """``1 CPU, 1 GPU``: what one trial asks Ray for."""
    wanted = trial.placement_group_factory.required_resources
    return ", ".join(f"{amount:g} {name}" for name, amount in sorted(wanted.items()) if amount)


class ProgressLine(tune.Callback):
    """``[name] trials 3/8 · running 2 · done 1 · failed 0 · best fid 41.2 · 1:05 · ETA ~2:10``,
    with ``· waiting for 1 CPU, 1 GPU per trial`` while trials wait and none runs
    (see :class:`~orchestrator.progress.StatusLine`)."""

    def __init__(self, name: str, total: int, epochs: int, metric: str, mode: str) -> None:
        self.name, self.total, self.epochs = name, total, epochs
        self.metric, self.mode = metric, mode
        self._line = StatusLine(pipe_final=False)

    def setup(self, **info) -> None:
        self._line.started = time.monotonic()

    def on_step_end(self, iteration, trials, **info) -> None:
        self._show(trials, final=False)

    def on_experiment_end(self, trials, **info) -> None:
        self._show(trials, final=True)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        where = f" (trace: {trial.error_file})" if trial.error_file else ""
        line = error_line(_trial_error_text(trial))
        sys.stderr.write(
            ("\n" if sys.stderr.isatty() else "")
            + f"[{self.name}] trial {trial.trial_id} failed: {line}{where}\n"
        )

    def _show(self, trials: list[Any], final: bool) -> None:
        counts = {"RUNNING": 0, "TERMINATED": 0, "ERROR": 0}
        for trial in trials:
            counts[trial.status] = counts.get(trial.status, 0) + 1
        values = [t.metric_analysis.get(self.metric, {}).get(self.mode) for t in trials]
        values = [v for v in values if _finite_or_none(v) is not None]
        best = (min if self.mode == "min" else max)(values) if values else None
        finished = counts["TERMINATED"] + counts["ERROR"]
        text = (
            f"[{self.name}] trials {finished}/{self.total} · running {counts['RUNNING']} · "
            f"done {counts['TERMINATED']} · failed {counts['ERROR']} · best {self.metric} "
            f"{'-' if best is None else f'{best:.4g}'}"
        )
        pending = [t for t in trials if t.status == "PENDING"]
        if pending and not counts["RUNNING"] and not final:  # no node can take one yet
            text += f" · waiting for {_resources_text(pending[0])} per trial"
        self._line.show(text, done=finished, remaining=self.total - finished, final=final)
