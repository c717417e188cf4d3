"""The Tune trainable: train a family epoch by epoch, score it, report, checkpoint, log.

Only ``ray.tune.report`` and ``ray.tune.get_checkpoint`` (and the Checkpoint they carry) are
used from Ray; everything the orchestrator knows (trial folder, threads, GPU share) arrives in
:class:`TrialSettings`.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.fs as pafs
import torch
from ray import tune
from torch.utils.tensorboard import SummaryWriter

from evaluators.classifier_scores import inception_score, label_accuracy
from evaluators.fid import feature_statistics, frechet_distance
from evaluators.judges import Judge, judge_features
from evaluators.judges.lenet import judge_predictions
from evaluators.sheets import image_grid
from evaluators.weights_file import load_weights
from trainables.datasets import ImageData
from trainables.device import loss_scaler, mixed_precision, release, select_device
from trainables.families import Family, family_class

STATE_FILE = "state.pt"
GRID_SEED = 1234  # the fixed latent batch behind every trial's sample grid
FID_SEED = 4321  # the fixed latents FID is computed on, so epochs are comparable
GENERATE_BATCH = 500  # latents drawn (and samples made) per batch by generate()


@dataclass(frozen=True)
class TrialSettings:
    """What the orchestrator tells a trial besides its hyperparameters."""

    family: str
    epochs: int
    log_dir: str | None = None
    # A filesystem and folder that log_dir is copied to after every epoch: the run's folder in
    # an object store, which SummaryWriter cannot write to.
    log_copy: tuple[pafs.FileSystem, str] | None = None
    num_threads: int = 1
    gpus: float = 0.0
    amp: str = "off"  # mixed precision on CUDA: off, bf16 or fp16 (trainables.device)
    placement: dict[str, str | float] = field(default_factory=dict)  # reported every epoch
    trial_id: str = ""  # written into checkpoints: a checkpoint of another trial is an exploit
    # Knobs whose value in force is reported every epoch as ``config/<knob>`` (PBT mutates them).
    report_config: tuple[str, ...] = ()


def run_trial(
    config: dict[str, Any], data: ImageData, judge: Judge, settings: TrialSettings
) -> None:
    """Train ``settings.family`` on ``data`` for ``settings.epochs`` epochs under Tune."""
    torch.set_num_threads(settings.num_threads)
    device = select_device(settings.gpus)
    try:
        _train(config, data, judge, settings, device)
    finally:
        release(device)  # the trial's tensors went with _train's frame


def _train(
    config: dict[str, Any],
    data: ImageData,
    judge: Judge,
    settings: TrialSettings,
    device: torch.device,
) -> None:
    model = family_class(settings.family)(config, data.shape, data.num_classes, device)
    model.loss_scaler = loss_scaler(device, settings.amp)
    judge_net = judge.build(device)
    model.attach_judge(judge_net)  # frozen; conditional families may feed its loss back to G
    seed = model.config["seed"]
    reference = feature_statistics(judge_features(judge_net, data.test_images))
    train_images = torch.tensor(data.train_images, device=device).float().div_(127.5).sub_(1.0)
    train_labels = torch.tensor(data.train_labels, device=device)  # shared arrays are read-only

    start_epoch, best_fid, rng_state, exploited_from = 0, float("inf"), None, None
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as folder:
            # CPU first: the RNG states must stay CPU byte tensors (weights move on load)
            state = load_weights(Path(folder) / STATE_FILE, map_location="cpu")
        model.load_state_dict(state["model"])
        # A PBT exploit hands over another trial's checkpoint with a mutated config: the
        # donor's weights, optimiser moments and batch order, under this trial's values.
        model.apply_optimiser_config()
        start_epoch, best_fid, rng_state = state["epoch"], state["best_fid"], state["rng"]
        donor = state.get("trial_id")
        if donor and donor != settings.trial_id:
            exploited_from = f"{donor}@{start_epoch}"

    batches = torch.Generator().manual_seed(seed)
    if rng_state is not None:
        batches.set_state(rng_state)
    writer = None
    if settings.log_dir:  # purge_step drops events a killed run wrote past its checkpoint
        writer = SummaryWriter(settings.log_dir, purge_step=start_epoch + 1)
    grid_z = model.latent(64, torch.Generator().manual_seed(GRID_SEED))
    grid_labels = torch.arange(64, device=device) % data.num_classes

    try:
        for epoch in range(start_epoch + 1, settings.epochs + 1):
            started = time.perf_counter()
            with mixed_precision(device, settings.amp):  # FID and samples stay in float32
                losses, images_seen = _train_epoch(model, train_images, train_labels, batches)
            train_seconds = time.perf_counter() - started
            samples = generate(model, model.config["fid_samples"], FID_SEED, data.num_classes)
            fid = _domain_fid(samples, judge_net, reference)
            best_fid = min(best_fid, fid)
            scores = (
                conditional_metrics(judge_net, samples, data.num_classes)
                if model.conditional
                else {}
            )
            metrics = {
                **losses,
                "fid": fid,
                "best_fid": best_fid,
                **scores,
                "epoch": epoch,
                "images_per_s": images_seen / train_seconds,
                "epoch_s": time.perf_counter() - started,
                **{f"config/{knob}": model.config[knob] for knob in settings.report_config},
            }
            if exploited_from and epoch == start_epoch + 1:
                metrics["exploited_from"] = exploited_from
            if writer:
                _log_epoch(writer, epoch, metrics, model, grid_z, grid_labels)
                if settings.log_copy:  # before the report, after which Tune may stop the trial
                    store, folder = settings.log_copy
                    pafs.copy_files(settings.log_dir, folder, destination_filesystem=store)
            with tempfile.TemporaryDirectory() as folder:
                state = trial_state(model, epoch, best_fid, batches, settings.trial_id)
                torch.save(state, os.path.join(folder, STATE_FILE))
                tune.report(
                    {**metrics, **settings.placement},
                    checkpoint=tune.Checkpoint.from_directory(folder),
                )
    finally:  # also when Tune stops the trial early: a reused worker keeps no open writer
        if writer:
            writer.close()


def trial_state(
    model: Family, epoch: int, best_fid: float, batches: torch.Generator, trial_id: str = ""
) -> dict[str, Any]:
    """What a checkpoint's ``state.pt`` holds: tensors and plain Python values only, so that
    resuming and :mod:`trainables.checkpoints` read it with ``load_weights`` (no unpickling of
    objects)."""
    return {
        "model": model.state_dict(),
        "epoch": int(epoch),
        "best_fid": float(best_fid),
        "rng": batches.get_state(),
        "config": dict(model.config),
        "family": model.name,
        "image_shape": tuple(int(size) for size in model.image_shape),
        "num_classes": int(model.num_classes),
        "trial_id": trial_id,
    }


def _train_epoch(
    model: Family, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
) -> tuple[dict[str, float], int]:
    """One pass over the shuffled training set in full batches; mean losses and images used."""
    model.train(True)
    batch, per_step = model.config["batch_size"], model.real_batches_per_step
    order = torch.randperm(len(images), generator=generator).to(images.device)
    steps = len(images) // (batch * per_step)
    if steps == 0:
        raise ValueError(
            f"batch_size {batch} x {per_step} exceeds the {len(images)} training images"
        )
    totals: dict[str, float] = {}
    for step in range(steps):
        chunk = order[step * batch * per_step : (step + 1) * batch * per_step].view(per_step, batch)
        losses = model.train_step([images[i] for i in chunk], [labels[i] for i in chunk])
        model.update_average()
        for name, value in losses.items():
            totals[name] = totals.get(name, 0.0) + value
    return {name: total / steps for name, total in totals.items()}, steps * batch * per_step


@torch.no_grad()
def generate(
    model: Family, n: int, seed: int, num_classes: int, batch: int = GENERATE_BATCH, start: int = 0
) -> torch.Tensor:
    """Samples ``start..n-1`` of ``n`` as floats in [0, 1] from fixed latents (labels cycle
    through classes). A ``start`` that is a multiple of ``batch`` gives exactly those rows of
    the whole draw: the latents of the batches before it are drawn and dropped, not run."""
    if start % batch or not 0 <= start <= n:
        raise ValueError(f"start must be a multiple of {batch} in [0, {n}], got {start}")
    model.train(False)
    latents = torch.Generator().manual_seed(seed)
    chunks = []
    for first in range(0, n, batch):
        size = min(batch, n - first)
        z = model.latent(size, latents)
        if first < start:
            continue
        labels = torch.arange(first, first + size, device=model.device) % num_classes
        chunks.append(model.draw(z, labels).add(1).div(2).clamp(0, 1))
    if not chunks:
        return torch.empty(0, *model.image_shape, device=model.device)
    return torch.cat(chunks)


def generated_labels(n: int, num_classes: int) -> np.ndarray:
    """The conditioning labels of ``generate(model, n, ...)``'s samples, in order."""
    return np.arange(n) % num_classes


def _domain_fid(samples: torch.Tensor, judge_net, reference) -> float:
    generated = feature_statistics(judge_features(judge_net, samples))
    if not np.all(np.isfinite(generated[0])):
        return float("nan")
    return frechet_distance(*reference, *generated)


def conditional_metrics(judge_net, samples: torch.Tensor, num_classes: int) -> dict[str, float]:
    """``label_accuracy`` and ``inception_score`` of a conditional family's samples.

    ``samples`` are :func:`generate`'s output (in [0, 1], labels cycling through the classes,
    see :func:`generated_labels`). label_accuracy: the judge's argmax against the conditioning
    labels. inception_score: the mean over 10 splits of exp(E KL(p(y|x) || p(y))) from the
    judge's softmax (contiguous splits are class-balanced because the labels cycle). NaN for
    both when the judge's outputs are not finite (a diverged generator).
    """
    probabilities = judge_predictions(judge_net, samples)
    if not np.all(np.isfinite(probabilities)):
        return {"label_accuracy": float("nan"), "inception_score": float("nan")}
    labels = generated_labels(len(samples), num_classes)
    return {
        "label_accuracy": label_accuracy(probabilities, labels),
        "inception_score": inception_score(probabilities, splits=10)[0],
    }


@torch.no_grad()
def _log_epoch(
    writer: SummaryWriter,
    epoch: int,
    metrics: dict[str, float],
    model: Family,
    grid_z: torch.Tensor,
    grid_labels: torch.Tensor,
) -> None:
    for name, value in metrics.items():
        if name != "epoch" and not isinstance(value, str):  # exploited_from is a label
            writer.add_scalar(name, value, epoch)
    model.train(False)
    images = model.draw(grid_z, grid_labels).add(1).div(2).clamp(0, 1).cpu()
    grid = image_grid(images, nrow=8, padding=2, pad_value=0.0)
    writer.add_image("samples", grid, epoch, dataformats="HWC")
    writer.flush()
