"""Which generators a command means: trials of a run picked by id or rank, or a checkpoint path.

``ganorch eval`` scores the best checkpoints of a run's trials and ``ganorch grid augment``
retrains on samples from one of them; both name them the same way and get back
:class:`TrialGenerator` records pointing at a checkpoint folder that
:func:`trainables.checkpoints.load_generator` can rebuild on any worker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from orchestrator.errors import UserError
from orchestrator.runs import RunDir
from orchestrator.tables import Table

# Metrics where larger is better; every other metric ranks smallest first.
MAXIMISED = frozenset({"label_accuracy", "inception_score", "is_mean", "d_class_acc"})


@dataclass(frozen=True)
class TrialGenerator:
    """A trained generator: its label in result tables and the checkpoint to load."""

    label: str  # the trial id, or the path's name for a checkpoint given directly
    checkpoint: str
    family: str | None = None
    score: float | None = None  # the metric it was picked by


def _trials(run: RunDir) -> list[dict]:
    rows = Table(run.tables, "trials").read().to_pylist()
    if not rows:
        raise UserError(f"run {run.name!r} has no trials yet")
    return rows


def pick_trials(
    run: RunDir,
    *,
    ids: list[str] | None = None,
    top: int | None = None,
    by: str = "fid",
    maximise: bool | None = None,
) -> list[TrialGenerator]:
    """Trials of ``run`` by id (in the order given), or the ``top`` best by ``best_<by>``
    (largest first when ``maximise``, which defaults to ``by`` being in :data:`MAXIMISED`);
    only trials with a checkpoint."""
    rows = _trials(run)
    if ids:
        by_id = {row["trial_id"]: row for row in rows}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise UserError(
                f"run {run.name!r} has no trial {unknown[0]!r} (trials: {', '.join(sorted(by_id))})"
            )
        picked = [by_id[i] for i in ids]
    else:
        column = f"best_{by}"
        if not any(column in row for row in rows):
            known = sorted(
                c.removeprefix("best_")
                for c in rows[0]
                if c.startswith("best_") and c != "best_epoch"
            )
            raise UserError(
                f"--by: run {run.name!r} has no {column} column "
                f"(rank by one of: {', '.join(known)})"
            )
        scored = [r for r in rows if _finite(r.get(column)) and r.get("checkpoint")]
        largest_first = by in MAXIMISED if maximise is None else maximise
        scored.sort(key=lambda r: r[column], reverse=largest_first)
        picked = scored[:top] if top else scored
    missing = [r["trial_id"] for r in picked if not r.get("checkpoint")]
    if missing:
        raise UserError(f"trial {missing[0]!r} of run {run.name!r} has no checkpoint")
    if not picked:
        raise UserError(f"run {run.name!r} has no finished trial with a checkpoint")
    return [
        TrialGenerator(r["trial_id"], r["checkpoint"], r.get("family"), r.get(f"best_{by}"))
        for r in picked
    ]


def resolve_generator(run: RunDir | None, reference: str) -> TrialGenerator:
    """``best`` (the run's best trial by its spec's metric), a trial id of ``run``, or a
    checkpoint folder / ``state.pt`` path."""
    path = Path(reference)
    if path.exists():
        folder = path.parent if path.is_file() else path
        return TrialGenerator(folder.name, str(folder))
    if run is None:
        raise UserError(f"{reference!r} is not a checkpoint path (name a run to pick a trial)")
    if reference == "best":
        metric, mode = spec_metric(run)
        return pick_trials(run, top=1, by=metric, maximise=mode == "max")[0]
    return pick_trials(run, ids=[reference])[0]


def spec_metric(run: RunDir) -> tuple[str, str]:
    """The metric name and mode the run's sweep optimised (fid/min if unreadable)."""
    try:
        metric = yaml.safe_load(run.read_text("spec.yaml") or "")["metric"]
        return metric["name"], metric["mode"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return "fid", "min"


def _finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
