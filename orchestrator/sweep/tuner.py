"""`ganorch sweep run`: a Ray Tune search over a family's hyperparameters, recorded in tables."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
from ray import tune

from evaluators.judges import Judge
from orchestrator.cluster import check_trial_fits, connect, given_address, gpu_share, probe
from orchestrator.errors import SpecError, error_line
from orchestrator.image_sets import dataset_errors
from orchestrator.judges import judge_of
from orchestrator.locks import run_locked
from orchestrator.runs import RunDir
from orchestrator.sweep.callbacks import ProgressLine, TableRecorder, epoch_row
from orchestrator.sweep.hparams import write_hparams
from orchestrator.sweep.run_folder import check_tables_match_tune, prepare_folder
from orchestrator.sweep.space import DefineByRun, IntRange, family_config
from orchestrator.sweep.spec import ExperimentSpec, check_grid_points
from orchestrator.sweep.study import RecordingOptunaSearch, optuna_storage, study_file
from orchestrator.tables import Table
from trainables.datasets import ImageData, load_dataset
from trainables.families import family_class
from trainables.trainable import TrialSettings, run_trial


@dataclass(frozen=True)
class SweepOutcome:
    trials: int
    finished: int
    failed: int
    best_trial: str | None
    best_value: float | None


def prepare_dataset(spec: ExperimentSpec) -> tuple[ImageData, Judge]:
    """Load the spec's dataset once and its LeNet judge (trained once per fingerprint); grid
    points the family refuses for these images (e.g. a colour weight on grey images) and a
    batch_size above the training split are refused before the judge is trained."""
    with dataset_errors():
        data = load_dataset(spec.dataset)
    check_grid_points(spec, data.shape)
    check_batch_size(spec, len(data.train_images))
    return data, judge_of(data)


def check_batch_size(spec: ExperimentSpec, train_images: int) -> None:
    """Refuse a sweep whose largest possible ``batch_size`` exceeds the training split: such a
    trial has no full batch to train on and would fail at its first epoch."""
    for family in spec.family:
        largest, key = family_class(family).all_params()["batch_size"].default, "batch_size"
        for name in ("batch_size", f"{family}.batch_size"):
            if name in spec.fixed:
                largest, key = spec.fixed[name], f"fixed.{name}"
            elif name in spec.space:
                dimension = spec.space[name]
                largest, key = (
                    (dimension.high if isinstance(dimension, IntRange) else max(dimension.values)),
                    f"space.{name}",
                )
        if largest > train_images:
            raise SpecError(
                key,
                f"{largest} exceeds the {train_images} training images of "
                f"{spec.dataset['name']}; use at most {train_images}",
            )


def run_sweep(
    spec: ExperimentSpec,
    run: RunDir,
    *,
    address: str | None = None,
    restart: bool = False,
    say: Callable[[str], None] = print,
) -> SweepOutcome:
    """Run (or resume) the sweep of ``spec`` in ``run``; tables are complete when it returns.
    The run is locked meanwhile (one writer at a time)."""
    with run_locked(run, "sweep run", say):
        return _sweep(spec, run, address=address, restart=restart, say=say)


def _sweep(
    spec: ExperimentSpec,
    run: RunDir,
    *,
    address: str | None,
    restart: bool,
    say: Callable[[str], None],
) -> SweepOutcome:
    probe(address)  # an unreachable cluster fails before the dataset and judge are prepared
    data, judge = prepare_dataset(spec)
    connect(address)
    as_written, spec = spec, _with_gpu_share(spec)
    check_trial_fits(spec.resources.cpu, spec.resources.gpu, embedded=not given_address(address))
    resolution = _resolution(as_written, spec)
    resuming = prepare_folder(as_written, run, restart, resolved=resolution)
    if resolution:
        say(resolution)
    for name in ("trials", "epochs"):  # _reconcile rewrites their rows from Tune's results
        Table(run.tables, name).set_aside_unreadable(say)
    check_tables_match_tune(run, resuming)
    say(
        f"dataset {spec.dataset['name']}: {len(data.train_images)} train / "
        f"{len(data.test_images)} test images {data.shape}, fingerprint {data.fingerprint}; "
        f"LeNet judge test accuracy {judge.test_accuracy:.1%}"
    )
    trainable = _trainable(spec, run, data, judge)
    # The searcher of a resumed sweep reopens the study file its pickled state names.
    with study_file(run, fresh=not resuming) as study_path:
        if resuming:
            say(f"resuming run {run.name!r} from {run.shown(run.experiment)}")
            tuner = tune.Tuner.restore(
                run.experiment,
                trainable=trainable,
                resume_unfinished=True,
                resume_errored=False,
                storage_filesystem=run.fs,
            )
        else:
            say(
                f"starting run {run.name!r}: {spec.num_trials} trials of "
                f"{', '.join(spec.family)}, {spec.epochs} epochs, {spec.search.algorithm} "
                f"search, scheduler {spec.scheduler.name}, in {run.shown()}"
            )
            tuner = _new_tuner(spec, run, data, trainable, study_path)
        grid = tuner.fit()
    _reconcile(spec, run, data, grid)
    # A driver killed before Tune saved its state leaves rows of trials that Tune then forgot
    # (and ran again under a new id): only the trials of Tune's experiment stay.
    known = pa.array(
        [
            t.trial_id
            for t in tune.ExperimentAnalysis(run.experiment, storage_filesystem=run.fs).trials
        ]
    )
    for name in ("trials", "epochs"):
        Table(run.tables, name).compact(keep=lambda table: _of_trials(table, known))
    write_hparams(as_written, run)
    return _outcome(spec, run)


def _run_one_trial(
    config: dict[str, Any],
    data: ImageData,
    judge: Judge,
    settings: TrialSettings,
    tb_root: str,
    tb_store: pafs.FileSystem | None,
) -> None:
    """What Ray runs per trial: resolve the family, name the TensorBoard folder, hand over.

    With the run in an object store (``tb_store``), the trial writes its event files into a
    local temporary folder that the trainable copies to ``<tb_root>/<trial_id>`` every epoch.
    """
    family, hyperparameters = family_config(config)
    trial_id = tune.get_context().get_trial_id()
    folder = f"{tb_root}/{trial_id}"
    settings = replace(settings, family=family, placement=_placement(), trial_id=trial_id)
    if tb_store is None:
        run_trial(hyperparameters, data, judge, replace(settings, log_dir=folder))
        return
    with tempfile.TemporaryDirectory(prefix="ganorch-tb-") as local:
        run_trial(
            hyperparameters,
            data,
            judge,
            replace(settings, log_dir=local, log_copy=(tb_store, folder)),
        )


def _placement() -> dict[str, str | float]:
    """Where Ray runs this trial: its node and the GPU share it holds (recorded per trial)."""
    import ray

    context = ray.get_runtime_context()
    return {
        "node_id": context.get_node_id(),
        "gpus": float(context.get_assigned_resources().get("GPU", 0.0)),
    }


def _with_gpu_share(spec: ExperimentSpec) -> ExperimentSpec:
    """The spec with ``resources.gpu: auto`` replaced by what it means on this cluster."""
    share = gpu_share(spec.resources.gpu)
    return replace(spec, resources=replace(spec.resources, gpu=share))


def _resolution(as_written: ExperimentSpec, resolved: ExperimentSpec) -> str | None:
    """``resources.gpu: auto -> G per trial (...)``: said, and kept in spec.yaml as a comment."""
    if as_written.resources.gpu != "auto":
        return None
    share = resolved.resources.gpu
    where = "the cluster has GPUs" if share else "no GPU on the cluster"
    return f"resources.gpu: auto -> {share:g} per trial ({where})"


def _of_trials(table: pa.Table, trial_ids: pa.Array) -> pa.Array:
    if "trial_id" not in table.column_names:
        return pa.array([True] * table.num_rows)
    return pc.is_in(table.column("trial_id"), value_set=trial_ids)


def _trainable(spec: ExperimentSpec, run: RunDir, data: ImageData, judge: Judge):
    settings = TrialSettings(
        family=spec.family[0],
        epochs=spec.epochs,
        gpus=spec.resources.gpu,
        amp=spec.amp,
        num_threads=max(1, math.floor(spec.resources.cpu)),
        report_config=tuple(key.split(".", 1)[-1] for key in spec.scheduler.mutations),
    )
    with_data = tune.with_parameters(
        _run_one_trial,
        data=data,
        judge=judge,
        settings=settings,
        tb_root=run.path("tb"),
        tb_store=run.fs if run.remote else None,
    )
    return tune.with_resources(with_data, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})


def _new_tuner(
    spec: ExperimentSpec, run: RunDir, data: ImageData, trainable, study_path: Path
) -> tune.Tuner:
    metric, mode = spec.metric.name, spec.metric.mode
    param_space: dict[str, Any] = {}
    search_alg = scheduler = None
    if spec.scheduler.name == "pbt":
        from orchestrator.sweep.pbt import pbt_param_space, pbt_scheduler

        param_space = pbt_param_space(spec)
        scheduler, search_alg = pbt_scheduler(spec)
    elif spec.search.algorithm == "grid":
        # Explicit points, so a key prefixed for one family never multiplies another's trials.
        points = spec.grid_points()
        param_space = {"point": tune.grid_search(points)}
    else:
        import optuna

        sampler = (
            optuna.samplers.TPESampler(seed=spec.search.seed)
            if spec.search.algorithm == "optuna"
            else optuna.samplers.RandomSampler(seed=spec.search.seed)
        )
        space = DefineByRun(spec.space, spec.fixed, spec.family)
        search_alg = RecordingOptunaSearch(
            space=space,
            metric=metric,
            mode=mode,
            sampler=sampler,
            study_name=run.name,
            storage=optuna_storage(study_path),
        )
    if spec.scheduler.name == "asha":
        from ray.tune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            max_t=spec.epochs,
            grace_period=spec.scheduler.grace_period,
            reduction_factor=spec.scheduler.reduction_factor,
        )
    recorder = _recorder(spec, run, data)
    progress = ProgressLine(run.name, spec.num_trials, spec.epochs, metric, mode)
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=metric,
            mode=mode,
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=spec.search.samples,
            max_concurrent_trials=spec.search.max_concurrent,
            # A finished trial's worker takes the next trial of the same resources: no new
            # process, no second torch import. Trials share nothing through it (every RNG is
            # an explicit, seeded generator; threads and the device are set per trial).
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=run.name,
            storage_path=run.storage,
            storage_filesystem=run.fs,
            verbose=0,
            callbacks=[recorder, progress],
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=tune.CheckpointConfig(
                # PBT continues a trial from another's latest checkpoint: all are kept
                num_to_keep=None if spec.scheduler.name == "pbt" else 1,
                checkpoint_score_attribute=metric,
                checkpoint_score_order=mode,
            ),
        ),
    )


def _recorder(spec: ExperimentSpec, run: RunDir, data: ImageData) -> TableRecorder:
    """Tables name checkpoints as ``run.shown`` does: a local path or an object-store URI."""
    prefix = run.shown("")
    return TableRecorder(
        run.tables,
        run.name,
        spec.metric.name,
        spec.metric.mode,
        spec.epochs,
        spec.dataset["name"],
        data.fingerprint,
        storage_prefix=prefix,
    )


def _reconcile(spec: ExperimentSpec, run: RunDir, data: ImageData, grid: Any) -> None:
    """Write whatever the callbacks could not (e.g. a driver killed between a result and its
    row): the final row of every trial, and every epoch Tune kept that the table lacks."""
    recorder = _recorder(spec, run, data)
    epochs = Table(run.tables, "epochs")
    have = epochs.existing_keys()
    trials = Table(run.tables, "trials").read()
    status = (
        dict(
            zip(
                trials.column("trial_id").to_pylist(),
                trials.column("status").to_pylist(),
                strict=True,
            )
        )
        if trials.num_rows
        else {}
    )
    finished = []
    for result in grid:
        frame = result.metrics_dataframe
        records = [] if frame is None else frame.to_dict("records")
        trial_id = result.metrics.get("trial_id") or (records[-1]["trial_id"] if records else None)
        if trial_id is None:
            continue
        epochs.append(
            [
                epoch_row(trial_id, r, run.shown(result.path))
                for r in records
                if (trial_id, int(r.get("training_iteration", 0))) not in have
            ]
        )
        final = "ERROR" if result.error else "TERMINATED"
        if status.get(trial_id) != final:
            finished.append((trial_id, final, result))
    best = recorder.best_epochs() if finished else {}  # one read, after the epochs are in
    Table(run.tables, "trials").append(
        [
            recorder.trial_row(
                trial_id,
                final,
                result.metrics or {},
                best.get(trial_id, {}),
                run.shown(result.checkpoint.path) if result.checkpoint else None,
                result.config or {},
                error_line(str(result.error)) if result.error else None,
            )
            for trial_id, final, result in finished
        ]
    )


def _outcome(spec: ExperimentSpec, run: RunDir) -> SweepOutcome:
    trials = Table(run.tables, "trials").read().to_pylist()
    best_column = f"best_{spec.metric.name}"
    scored = [t for t in trials if t.get(best_column) is not None]
    pick = min if spec.metric.mode == "min" else max
    best = pick(scored, key=lambda t: t[best_column]) if scored else None
    return SweepOutcome(
        trials=len(trials),
        finished=sum(t["status"] == "TERMINATED" for t in trials),
        failed=sum(t["status"] == "ERROR" for t in trials),
        best_trial=best["trial_id"] if best else None,
        best_value=best[best_column] if best else None,
    )
