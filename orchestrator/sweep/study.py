"""The Optuna study behind a sweep (search ``optuna`` or ``random``), kept in the run folder as
SQLite (``runs/<name>/optuna.db``, study named after the run) so that Optuna's own tools open it
after the sweep: ``optuna.load_study(study_name=NAME, storage="sqlite:///runs/NAME/optuna.db")``
or ``optuna-dashboard sqlite:///runs/NAME/optuna.db``.

Tune's OptunaSearch writes every trial there (its parameters, each epoch's metric as an
intermediate value, the final value or FAIL/PRUNED) and pickles the storage's URL with its own
state, so a resumed sweep reopens the same file and continues the same study. SQLite needs a
local file: an object-store run keeps the study in ``GANORCH_CACHE/studies/`` while the sweep
runs, copied to the bucket after (also when the sweep fails or is interrupted) and fetched from
it before a resume on a machine without that copy (a driver killed outright leaves the bucket's
copy one sweep behind; the machine's own copy is then the newer one, and is kept).
"""

from __future__ import annotations

import hashlib
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyarrow import fs as pafs
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search.optuna import OptunaSearch

from orchestrator.runs import RunDir, cache_dir

STUDY_FILE = "optuna.db"


def study_url(path: Path) -> str:
    """SQLAlchemy's URL of a SQLite file (absolute, so a resume from another directory works)."""
    return f"sqlite:///{path.resolve()}"


@contextmanager
def study_file(run: RunDir, fresh: bool) -> Iterator[Path]:
    """The local path of the run's study file for the duration of a sweep.

    ``fresh``: a new sweep (not a resume), so an earlier study of that name is deleted first
    rather than continued. For an object-store run the file is fetched from the bucket before
    and put back after.
    """
    if not run.remote:
        local = Path(run.path(STUDY_FILE))
        if fresh:
            local.unlink(missing_ok=True)
        yield local
        return
    key = hashlib.sha256(run.shown().encode()).hexdigest()[:16]
    local = cache_dir() / "studies" / key / STUDY_FILE
    local.parent.mkdir(parents=True, exist_ok=True)
    remote = run.path(STUDY_FILE)
    if fresh:
        local.unlink(missing_ok=True)
        run.remove(STUDY_FILE)
    elif not local.is_file() and run.fs.get_file_info(remote).type == pafs.FileType.File:
        # A local copy is this machine's last sweep of the run: at least as new as the
        # bucket's (which a killed driver never updated), so it is kept.
        with run.fs.open_input_stream(remote) as source, open(local, "wb") as target:
            shutil.copyfileobj(source, target)
    try:
        yield local
    finally:
        if local.is_file():
            with open(local, "rb") as source, run.fs.open_output_stream(remote) as target:
                shutil.copyfileobj(source, target)


def optuna_storage(path: Path):
    """Optuna's RDB storage on the SQLite file ``path`` (created on first use)."""
    import optuna

    return optuna.storages.RDBStorage(study_url(path))


class RecordingOptunaSearch(OptunaSearch):
    """Tune's OptunaSearch, except that a trial's last result is also one of its intermediate
    values: Tune hands the result that ends a trial early (ASHA's stop) to ``on_trial_complete``
    only, so the study would lack each stopped trial's last epoch."""

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        trial = self._ot_trials.get(trial_id)
        step = (result or {}).get(TRAINING_ITERATION)
        value = (result or {}).get(self.metric)
        if trial is not None and step is not None and value is not None:
            with warnings.catch_warnings():  # a step already reported is ignored, with a warning
                warnings.simplefilter("ignore")
                trial.report(value, step)
        super().on_trial_complete(trial_id, result, error)
