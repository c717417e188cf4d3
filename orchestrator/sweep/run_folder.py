"""The run folder before a sweep starts or resumes: its spec.yaml agrees with the spec, and
its tables hold no trials that Tune's experiment folder does not know."""

from __future__ import annotations

from typing import Any

import yaml
from ray import tune

from orchestrator.errors import UserError
from orchestrator.runs import RunDir
from orchestrator.sweep.spec import ExperimentSpec
from orchestrator.tables import Table


def prepare_folder(
    spec: ExperimentSpec, run: RunDir, restart: bool, resolved: str | None = None
) -> bool:
    """Write spec.yaml (the spec as written, ``resolved`` as a trailing comment: what ``auto``
    meant on this cluster, which a resume on another one may change); True when an earlier
    run of the same spec should be resumed."""
    if restart:
        for part in ("tune", "tables", "tb", "spec.yaml"):  # optuna.db: see study_file
            run.remove(part)
    text = run.read_text("spec.yaml")
    if text is not None:
        previous = yaml.safe_load(text)
        if previous != spec.to_dict():
            changed = "; ".join(_differences(previous, spec.to_dict()))
            raise UserError(
                f"run {run.name!r} exists with a different spec ({changed}; "
                f"{run.shown(run.path('spec.yaml'))}); pass --restart to start it "
                "over or --name for a new run"
            )
    run.write_text("spec.yaml", spec.to_yaml() + (f"# {resolved}\n" if resolved else ""))
    return tune.Tuner.can_restore(run.experiment, storage_filesystem=run.fs)


def check_tables_match_tune(run: RunDir, resuming: bool) -> None:
    """Refuse to add a Tune experiment's trials to tables that hold another's: trials in the
    tables but no experiment to resume (its tune/ folder deleted), or finished trials the
    experiment does not know. (A trial that only started may be unknown: Tune saves its state
    after each checkpoint, and a driver killed before that loses the trial, which Tune then
    runs again.)"""
    table = Table(run.tables, "trials")
    rows = table.read().to_pylist() if table.fragments() else []
    if not rows:
        return
    restart = "pass --restart to start the run over (discarding them)"
    if not resuming:
        raise UserError(
            f"run {run.name!r} holds {len(rows)} trials in its tables but no Tune experiment "
            f"to resume them from ({run.shown(run.experiment)} is missing); {restart}"
        )
    known = {
        trial.trial_id
        for trial in tune.ExperimentAnalysis(run.experiment, storage_filesystem=run.fs).trials
    }
    missing = sorted(
        r["trial_id"]
        for r in rows
        if r["trial_id"] not in known and r.get("status") in ("TERMINATED", "ERROR")
    )
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise UserError(
            f"run {run.name!r} holds {len(missing)} finished trials in its tables ({shown}) "
            f"that its Tune experiment {run.shown(run.experiment)} does not know; {restart}"
        )


def _differences(before: Any, now: Any, key: str = "") -> list[str]:
    """``key: before there, now here`` for each value that differs, nested keys dotted (so
    a refusal says e.g. that the earlier run was an ``--epochs 1`` smoke run)."""
    if isinstance(before, dict) and isinstance(now, dict):
        return [
            line
            for k in dict.fromkeys([*before, *now])
            for line in _differences(
                before.get(k, _UNSET), now.get(k, _UNSET), f"{key}.{k}" if key else k
            )
        ]
    if before == now:
        return []
    return [f"{key}: {before!r} there, {now!r} here"]


class _Unset:
    def __repr__(self) -> str:
        return "unset"


_UNSET = _Unset()
