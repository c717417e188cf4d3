"""`make gpu-check`: every CUDA path of ganorch exercised in one script, with GPU throughput.

On a machine with CUDA it runs, in a temporary folder (runs, judge cache, Inception weights):

- three sweeps of ``resources: {gpu: 0.25}`` trials on mnist5k: four DCGAN trials (amp off)
  packed on one GPU at the same time (checked from the tables' ``gpus``/``node_id`` columns and
  from overlapping trial times), DCGAN and WGAN-GP under ``amp: bf16``, DCGAN, BEGAN and WGAN-GP
  under ``amp: fp16``; losses finite, FID falling, every checkpoint restorable on the CPU;
- ``ganorch eval run`` on the packed sweep with ``--extractor inception`` (randomly initialised
  weights written here: nothing is downloaded) and with lenet, all default measures, one actor
  per GPU;
- ``ganorch grid augment`` on 2 actors sharing the GPU;
- in this process: autocast dtypes and the fp16 loss scaler, CUDA memory released after a
  trial, a state_dict saved on CUDA loaded on the CPU, and throughput (images/s of DCGAN
  training at batch 64 and 256 with amp off and bf16, of Inception feature extraction at batch
  200) printed as a table with the GPU's name.

Each check prints ``PASS name: detail`` or ``FAIL name: detail`` (with the tail of the failed
command's output), then a summary; the exit status is 0 only when every check passed. On a
machine without CUDA it prints one line and exits with status 3: nothing was checked.

    .venv/bin/python benchmarks/gpu_check.py [--out DIR] [--keep]

``--out DIR`` writes ``gpu-check.log`` (everything, commands' output included) and
``gpu-check.json`` (checks, times, throughput) there. Judges and feature statistics are cached in
``GANORCH_CACHE`` where it is set, else in the temporary folder (the LeNet judge is trained once
per run then). ``GANORCH_GPU_CHECK_ON_CPU=1`` runs the same sequence on the CPU at tiny sizes
(resources.gpu 0), to debug the script where no GPU is at hand; such a run says so and exits
with status 4, never 0.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

NO_CUDA = 3
CPU_DRY_RUN = 4
DRY_RUN_ENV = "GANORCH_GPU_CHECK_ON_CPU"
ROOT = Path(__file__).resolve().parents[1]
OUTPUT_TAIL = 1500  # characters of a failed command's output in its FAIL line


@dataclass(frozen=True)
class Scale:
    """Sizes of one mode: small enough for minutes on one GPU (or a CPU dry run)."""

    gpu_share: float  # resources.gpu of every trial
    cpus: float  # resources.cpu of every trial
    epochs: int
    batch_size: int
    base_channels: int
    fid_samples: int
    eval_n: int
    grid_epochs: int
    grid_real: str
    grid_generated: str
    command_timeout_s: int  # one command's limit
    budget_s: int  # no command starts, or runs, past this many seconds of the whole check
    model_channels: int  # base_channels of the DCGANs built in this process
    train_steps: int  # timed DCGAN steps per throughput row (after a third as many warm-ups)
    train_batches: tuple[int, ...]
    inception_batch: int
    inception_batches: int


GPU = Scale(
    gpu_share=0.25,
    cpus=2.0,
    epochs=3,
    batch_size=32,
    base_channels=64,
    fid_samples=1000,
    eval_n=500,
    grid_epochs=2,
    grid_real="0,10,50",
    grid_generated="0,50",
    command_timeout_s=180,
    budget_s=450,
    model_channels=64,
    train_steps=30,
    train_batches=(64, 256),
    inception_batch=200,
    inception_batches=10,
)
CPU = Scale(
    gpu_share=0.0,
    cpus=0.5,
    epochs=2,
    batch_size=64,
    base_channels=8,
    fid_samples=200,
    eval_n=40,
    grid_epochs=1,
    grid_real="0,10",
    grid_generated="0,10",
    command_timeout_s=900,
    budget_s=7200,
    model_channels=4,
    train_steps=2,
    train_batches=(8, 16),
    inception_batch=2,
    inception_batches=1,
)


class CheckFailed(Exception):
    """A check's verdict: what was wrong (and the command output that shows it)."""


@dataclass
class Outcome:
    name: str
    passed: bool
    detail: str
    seconds: float


@dataclass
class Report:
    """Everything printed, kept for the summary and ``--out``."""

    log: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    throughput: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str = "", *, echo: bool = True) -> None:
        self.log.extend(text.splitlines() or [""])
        if echo:
            print(text, flush=True)

    def check(self, name: str, body: Callable[[], str]) -> bool:
        """Run one check; print its PASS/FAIL line with its time."""
        self.say(f"... {name}")
        started = time.perf_counter()
        try:
            detail, passed = body(), True
        except CheckFailed as exc:
            detail, passed = str(exc), False
        except Exception as exc:  # noqa: BLE001 - a crashing check is a failed check
            detail, passed = f"{type(exc).__name__}: {exc}", False
        seconds = time.perf_counter() - started
        self.outcomes.append(Outcome(name, passed, detail, seconds))
        self.say(f"{'PASS' if passed else 'FAIL'} {name}: {detail} [{seconds:.1f}s]")
        return passed


# ---------------------------------------------------------------------------------------------
# Commands in subprocesses


@dataclass
class Finished:
    returncode: int
    output: str
    seconds: float
    gpu_peak_mib: float | None


def ganorch_command() -> list[str]:
    """The installed console script beside this Python, else the CLI module."""
    script = Path(sys.executable).with_name("ganorch")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "orchestrator.cli"]


class GpuMemoryWatch:
    """Peak GPU memory in use (nvidia-smi, every 0.5 s) while a command runs; None without
    nvidia-smi. Evidence that work landed on the GPU, not a verdict."""

    def __init__(self, enabled: bool) -> None:
        self.tool = shutil.which("nvidia-smi") if enabled else None
        self.peak: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> GpuMemoryWatch:
        if self.tool:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.tool:
            self._thread.join(timeout=5)

    def _poll(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                out = subprocess.run(
                    [self.tool, "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                ).stdout
                used = max(float(v) for v in out.split())
                self.peak = used if self.peak is None else max(self.peak, used)
            self._stop.wait(0.5)


def run_command(
    report: Report, args: list[str], env: dict[str, str], timeout_s: int, gpu: bool
) -> Finished:
    """Run ``ganorch ARGS``; its progress lines are echoed, all its output is logged."""
    command = ganorch_command() + args
    report.say("    $ ganorch " + " ".join(args))
    started = time.perf_counter()
    lines: list[str] = []
    with GpuMemoryWatch(gpu) as watch:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )  # its Ray dies with it on a timeout

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                line = line.rstrip("\n")
                lines.append(line)
                shown = line.startswith("[") or line.startswith("error")
                report.say(f"    | {line}", echo=shown)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            returncode = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            returncode = 124
            lines.append(f"(killed after {timeout_s} s)")
        reader.join(timeout=10)
    return Finished(returncode, "\n".join(lines), time.perf_counter() - started, watch.peak)


def succeeded(finished: Finished, what: str) -> None:
    if finished.returncode != 0:
        raise CheckFailed(
            f"{what} exited {finished.returncode}: ...{finished.output[-OUTPUT_TAIL:]}"
        )


def gpu_note(finished: Finished) -> str:
    return (
        ""
        if finished.gpu_peak_mib is None
        else f"; nvidia-smi peak {finished.gpu_peak_mib:.0f} MiB in use"
    )


# ---------------------------------------------------------------------------------------------
# Tables


def read_table(runs: Path, run: str, name: str) -> list[dict[str, Any]]:
    from orchestrator.tables import Table

    return Table(str(runs / run / "tables"), name).read().to_pylist()


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def trial_intervals(runs: Path, run: str) -> dict[str, tuple[float, float]]:
    """Each trial's (start, end) wall-clock times from Tune's ``result.json`` lines: start is
    the first result's timestamp less the trial's time until then (set-up included)."""
    intervals = {}
    for results in (runs / run / "tune" / run).glob("*/result.json"):
        rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
        if rows:
            first, last = rows[0], rows[-1]
            intervals[first["trial_id"]] = (
                first["timestamp"] - first["time_total_s"],
                last["timestamp"],
            )
    return intervals


# ---------------------------------------------------------------------------------------------
# The sweeps


PACKED, BF16, FP16 = "gpu-packed", "gpu-bf16", "gpu-fp16"
# Per family: what differs from its defaults (WGAN-GP as in its paper, BEGAN's report batch).
FAMILY_FIXED: dict[str, dict[str, Any]] = {
    "dcgan": {"n_z": 64, "real_label": 0.9, "lr": 2.0e-4, "g_layers": 3},
    "wgan": {"constraint": "gp", "optimizer": "adam", "beta1": 0.0, "lr": 1.0e-4, "n_critic": 2},
    "began": {},  # its own lr: at 3e-4 fp16 overflowed to NaN in the first epoch on an H200
}


def sweep_spec(
    name: str, scale: Scale, families: list[str], amp: str, space: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A grid spec of one trial per family (times ``space``'s grid) on mnist5k."""
    fixed: dict[str, Any] = {}
    for family in families:
        knobs = {
            "batch_size": 16 if family == "began" else scale.batch_size,
            "base_channels": scale.base_channels,
            "fid_samples": scale.fid_samples,
            "lr": 5.0e-4,
            **FAMILY_FIXED[family],
        }
        knobs = {k: v for k, v in knobs.items() if k not in (space or {})}
        # Several families: every key is prefixed, so each family gets exactly its own.
        fixed.update({(k if len(families) == 1 else f"{family}.{k}"): v for k, v in knobs.items()})
    spec = {
        "name": name,
        "dataset": {"name": "mnist5k"},
        "family": families[0] if len(families) == 1 else families,
        "epochs": scale.epochs,
        "search": {"algorithm": "grid"},
        "scheduler": {"name": "none"},
        "resources": {"cpu": scale.cpus, "gpu": scale.gpu_share},
        "fixed": fixed,
    }
    if space:
        spec["space"] = space
    if amp != "off":
        spec["amp"] = amp
    return spec


@dataclass
class Context:
    scale: Scale
    gpu: bool
    work: Path
    env: dict[str, str]
    report: Report
    started: float = field(default_factory=time.perf_counter)

    @property
    def runs(self) -> Path:
        return self.work / "runs"

    def ganorch(self, args: list[str]) -> Finished:
        left = self.scale.budget_s - (time.perf_counter() - self.started)
        if left < 20:
            raise CheckFailed(f"not run: the check's {self.scale.budget_s} s are spent")
        return run_command(
            self.report,
            [*args, "--runs-dir", str(self.runs)],
            self.env,
            int(min(self.scale.command_timeout_s, left)),
            self.gpu,
        )

    def trials(self, run: str) -> list[dict[str, Any]]:
        return read_table(self.runs, run, "trials")


def run_sweep(ctx: Context, spec: dict[str, Any], expected_trials: int) -> str:
    import yaml

    path = ctx.work / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    finished = ctx.ganorch(["sweep", "run", str(path)])
    succeeded(finished, "sweep run")
    trials = ctx.trials(spec["name"])
    problems = [
        f"{t['trial_id']} {t['family']} {t['status']} after {t['epochs']} epochs: {t.get('error')}"
        for t in trials
        if t["status"] != "TERMINATED" or t["epochs"] != ctx.scale.epochs
    ]
    if len(trials) != expected_trials or problems:
        raise CheckFailed(
            f"{len(trials)} of {expected_trials} trials, {'; '.join(problems)}; "
            f"...{finished.output[-OUTPUT_TAIL:]}"
        )
    share = {t["gpus"] for t in trials}
    if share != {ctx.scale.gpu_share}:
        raise CheckFailed(f"trials hold GPU shares {sorted(share)}, not {ctx.scale.gpu_share}")
    families = ", ".join(sorted(t["family"] for t in trials))
    return (
        f"{len(trials)} trials ({families}) x {ctx.scale.epochs} epochs, amp "
        f"{spec.get('amp', 'off')}, gpus {ctx.scale.gpu_share:g} each, "
        f"{finished.seconds:.0f} s{gpu_note(finished)}"
    )


def check_packed(ctx: Context) -> str:
    spec = sweep_spec(
        PACKED, ctx.scale, ["dcgan"], "off", space={"lr": [2.0e-4, 5.0e-4], "g_layers": [2, 3]}
    )
    detail = run_sweep(ctx, spec, expected_trials=4)
    trials = ctx.trials(PACKED)
    nodes = {t["node_id"] for t in trials}
    if len(nodes) != 1 or None in nodes:
        raise CheckFailed(f"trials ran on nodes {sorted(map(str, nodes))}, not one node")
    intervals = trial_intervals(ctx.runs, PACKED)
    if set(intervals) != {t["trial_id"] for t in trials}:
        raise CheckFailed(f"result.json times for {sorted(intervals)} only")
    together = min(end for _, end in intervals.values()) - max(
        start for start, _ in intervals.values()
    )
    if together <= 0:
        spans = ", ".join(f"{k}: {s % 1000:.1f}-{e % 1000:.1f}" for k, (s, e) in intervals.items())
        raise CheckFailed(f"the 4 trials never ran all at once ({spans})")
    total = sum(gpus for gpus in (t["gpus"] for t in trials))
    return (
        f"{detail}; all 4 on node {next(iter(nodes))[:8]} holding {total:g} GPU together, "
        f"all 4 running at once for {together:.0f} s"
    )


def check_amp_sweep(ctx: Context, name: str, amp: str, families: list[str]) -> str:
    return run_sweep(ctx, sweep_spec(name, ctx.scale, families, amp), len(families))


def all_epochs(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    """Epoch rows of every sweep's trials, by '<run>/<family>/<trial_id>'."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for run in (PACKED, BF16, FP16):
        family = {t["trial_id"]: t["family"] for t in ctx.trials(run)}
        for row in read_table(ctx.runs, run, "epochs"):
            rows.setdefault(f"{run}/{family[row['trial_id']]}/{row['trial_id']}", []).append(row)
    for key in rows:
        rows[key].sort(key=lambda r: r["epoch"])
    return rows


def check_losses(ctx: Context) -> str:
    rows = all_epochs(ctx)
    bad = [
        f"{key} epoch {r['epoch']} {name}={r.get(name)}"
        for key, epochs in rows.items()
        for r in epochs
        for name in ("d_loss", "g_loss", "fid")
        if not finite(r.get(name))
    ]
    if bad or not rows:
        raise CheckFailed("; ".join(bad[:8]) or "no epoch rows")
    count = sum(len(e) for e in rows.values())
    return f"d_loss, g_loss, fid finite in all {count} epoch rows of {len(rows)} trials"


def check_fid_falling(ctx: Context) -> str:
    """FID of the last epoch below epoch 1's, for every trial but BEGAN (which starts slowly:
    docs/decisions.md, "BEGAN"); BEGAN's FIDs are shown."""
    shown, falling = [], []
    for key, epochs in all_epochs(ctx).items():
        first, last = epochs[0]["fid"], epochs[-1]["fid"]
        shown.append(
            f"{key.split('/')[0].removeprefix('gpu-')}/{key.split('/')[1]} {first:.1f}->{last:.1f}"
        )
        if "/began/" not in key:
            falling.append(last < first)
    if not all(falling):
        raise CheckFailed("FID did not fall: " + ", ".join(shown))
    return "epoch 1 -> last: " + ", ".join(shown) + " (began not required to fall)"


def check_amp_parity(ctx: Context) -> str:
    """The DCGAN of the bf16 and fp16 sweeps has the config of one packed (amp off) trial
    (lr 2e-4, g_layers 3): mixed precision must reach a last-epoch FID within 2x of it."""

    def last_fid(run: str) -> float:
        def knob(trial: dict[str, Any], key: str) -> Any:  # plain or family-prefixed column
            return trial.get(f"config/{key}", trial.get(f"config/dcgan.{key}"))

        rows = [
            t
            for t in ctx.trials(run)
            if t["family"] == "dcgan"
            and math.isclose(knob(t, "lr") or 0, 2.0e-4)
            and knob(t, "g_layers") == 3
        ]
        if len(rows) != 1:
            raise CheckFailed(f"{run}: {len(rows)} dcgan trials with lr 2e-4, g_layers 3")
        return rows[0]["last_fid"]

    off = last_fid(PACKED)
    fids = {amp: last_fid(run) for amp, run in (("bf16", BF16), ("fp16", FP16))}
    shown = f"last FID amp off {off:.1f}, " + ", ".join(f"{a} {f:.1f}" for a, f in fids.items())
    if not all(f < 2 * off for f in fids.values()):
        raise CheckFailed(f"mixed precision trains far worse: {shown}")
    return shown


def check_checkpoints_on_cpu(ctx: Context) -> str:
    import numpy as np
    import torch

    from trainables.checkpoints import draw_samples, load_generator

    loaded = []
    for run in (PACKED, BF16, FP16):
        for trial in ctx.trials(run):
            model = load_generator(trial["checkpoint"], gpus=0.0)
            devices = {
                p.device.type
                for m in model.modules().values()
                if isinstance(m, torch.nn.Module)
                for p in m.parameters()
            }
            images, _ = draw_samples(model, 16, seed=0)
            if devices != {"cpu"} or images.shape != (16, 1, 28, 28) or images.dtype != np.uint8:
                raise CheckFailed(
                    f"{run}/{trial['trial_id']}: on {devices}, samples "
                    f"{images.shape} {images.dtype}"
                )
            if images.std() == 0:
                raise CheckFailed(f"{run}/{trial['trial_id']}: blank samples")
            loaded.append(trial["family"])
    return (
        f"{len(loaded)} best checkpoints ({', '.join(sorted(set(loaded)))}) loaded with "
        "map_location cpu by trainables.checkpoints.load_generator, 16 samples drawn each"
    )


# ---------------------------------------------------------------------------------------------
# Evaluation and the augmentation grid


def write_inception_weights(folder: Path) -> Path:
    """A randomly initialised FID Inception state dict in the weights file's format."""
    import torch

    from evaluators.judges.inception import WEIGHTS_FILE, FIDInception

    torch.manual_seed(0)
    path = folder / WEIGHTS_FILE
    torch.save(FIDInception().state_dict(), path)
    return path


def check_eval(ctx: Context, extractor: str) -> str:
    args = [
        "eval",
        "run",
        PACKED,
        "--top",
        "2",
        "--n",
        str(ctx.scale.eval_n),
        "--extractor",
        extractor,
    ]
    if extractor == "inception":
        args += ["--inception-weights", str(write_inception_weights(ctx.work))]
    finished = ctx.ganorch(args)
    succeeded(finished, f"eval run --extractor {extractor}")
    rows = read_table(ctx.runs, PACKED, "eval")
    errors = [f"{r['shard']}: {r['error']}" for r in rows if r.get("error")]
    if errors:
        raise CheckFailed("; ".join(errors[:5]))
    mine = [r for r in rows if r["extractor"] == extractor]
    bad = [f"{r['generator']} {r['metric']}={r['value']}" for r in rows if not finite(r["value"])]
    if not mine or bad:
        raise CheckFailed(f"{len(mine)} {extractor} rows; not finite: {'; '.join(bad[:8])}")
    shares = {r.get("gpus") for r in rows}
    want = 1.0 if ctx.gpu else 0.0
    if shares != {want}:
        raise CheckFailed(f"eval actors held GPU shares {sorted(map(str, shares))}, not {want:g}")
    generators = sorted({r["generator"] for r in rows})
    metrics = sorted({r["metric"] for r in mine})
    return (
        f"{len(rows)} finite values ({len(mine)} from {extractor}: {', '.join(metrics)}) "
        f"for {', '.join(generators)}; 1 actor holding {want:g} GPU, "
        f"{finished.seconds:.0f} s{gpu_note(finished)}"
    )


def check_grid(ctx: Context) -> str:
    finished = ctx.ganorch(
        [
            "grid",
            "augment",
            PACKED,
            "--generator",
            "best",
            "--strategies",
            "mix,source",
            "--real",
            ctx.scale.grid_real,
            "--generated",
            ctx.scale.grid_generated,
            "--seeds",
            "1",
            "--epochs",
            str(ctx.scale.grid_epochs),
            "--actors",
            "2",
        ]
    )
    succeeded(finished, "grid augment")
    rows = read_table(ctx.runs, PACKED, "augment")
    sizes = len(ctx.scale.grid_real.split(",")) * len(ctx.scale.grid_generated.split(",")) - 1
    bad = [
        f"{r['shard']}: {r.get('error') or r.get('test_accuracy')}"
        for r in rows
        if r.get("error") or not 0.0 <= (r.get("test_accuracy") or -1.0) <= 1.0
    ]
    if len(rows) != 2 * sizes or bad:
        raise CheckFailed(f"{len(rows)} of {2 * sizes} cells; {'; '.join(bad[:5])}")
    import torch

    from orchestrator.shards import gpu_share

    shares = {r.get("gpus") for r in rows}
    want = gpu_share(2, torch.cuda.device_count()) if ctx.gpu else 0.0  # 0.5 on one GPU
    if shares != {want}:
        raise CheckFailed(f"grid actors held GPU shares {sorted(map(str, shares))}, not {want:g}")
    accuracy = [r["test_accuracy"] for r in rows]
    return (
        f"{len(rows)} cells (mix, source), test accuracy {min(accuracy):.3f}-"
        f"{max(accuracy):.3f}, 2 actors holding {want:g} GPU each, "
        f"{finished.seconds:.0f} s{gpu_note(finished)}"
    )


# ---------------------------------------------------------------------------------------------
# In this process: precision, memory, devices, throughput


def small_dcgan(device: Any, batch_size: int = 64, base_channels: int = 64):
    from trainables.families import family_class

    return family_class("dcgan")(
        {"batch_size": batch_size, "base_channels": base_channels, "n_z": 64},
        (1, 28, 28),
        10,
        device,
    )


def real_batch(n: int, device: Any):
    import torch

    generator = torch.Generator().manual_seed(n)
    return torch.rand(n, 1, 28, 28, generator=generator).mul(2).sub(1).to(device)


def zero_labels(n: int, device: Any):
    import torch

    return torch.zeros(n, dtype=torch.long, device=device)


def check_amp(ctx: Context) -> str:
    import torch

    from trainables.device import amp_dtype, loss_scaler, mixed_precision, select_device
    from trainables.families import family_class

    device = select_device(ctx.scale.gpu_share)
    conv = torch.nn.Conv2d(1, 4, 3).to(device)
    seen = {}
    for amp in ("off", "bf16", "fp16"):
        with mixed_precision(device, amp):
            seen[amp] = conv(real_batch(2, device)).dtype
        want = amp_dtype(device, amp) or torch.float32
        if seen[amp] != want:
            raise CheckFailed(f"amp {amp}: a conv under autocast gave {seen[amp]}, not {want}")
    steps = []
    for family, config in (
        ("dcgan", {"n_z": 64}),
        ("wgan", {"constraint": "gp", "optimizer": "adam", "n_critic": 1}),
        ("began", {}),
    ):
        model = family_class(family)(
            {**config, "base_channels": ctx.scale.model_channels, "batch_size": 16},
            (1, 28, 28),
            10,
            device,
        )
        model.loss_scaler = loss_scaler(device, "fp16")
        if ctx.gpu and not isinstance(model.loss_scaler, torch.amp.GradScaler):
            raise CheckFailed("no GradScaler for fp16 on CUDA")
        batches = [real_batch(16, device)] * model.real_batches_per_step
        labels = [zero_labels(16, device)] * len(batches)
        with mixed_precision(device, "fp16"):
            for _ in range(3):
                losses = model.train_step(batches, labels)  # raises when a loss is not finite
        scale = model.loss_scaler.get_scale() if model.loss_scaler else None
        steps.append(
            f"{family} d_loss {losses['d_loss']:.3g}"
            + (f" (scale {scale:g})" if scale is not None else "")
        )
    dtypes = ", ".join(f"{k}->{str(v).removeprefix('torch.')}" for k, v in seen.items())
    return f"on {device}: autocast {dtypes}; 3 fp16 steps each: {'; '.join(steps)}"


def check_memory_release(ctx: Context) -> str:
    import torch

    from trainables.device import release, select_device

    device = select_device(ctx.scale.gpu_share)
    if device.type != "cuda":
        release(device)
        return "CPU dry run: no CUDA memory to observe (release is a no-op on the CPU)"

    def one_trial() -> None:
        model = small_dcgan(device, batch_size=256, base_channels=ctx.scale.model_channels)
        for _ in range(3):
            model.train_step([real_batch(256, device)], [zero_labels(256, device)])

    gc.collect()  # what earlier checks left behind, so "before" is a clean start
    release(device)
    before = torch.cuda.memory_reserved(device)
    one_trial()  # its tensors go with its frame, as a trial's go with the trainable's
    held = torch.cuda.memory_reserved(device)
    release(device)
    after_allocated = torch.cuda.memory_allocated(device)
    after = torch.cuda.memory_reserved(device)
    mib = 2**20
    trial = held - before
    if held <= before or after > before + max(8 * mib, trial / 10):
        raise CheckFailed(
            f"reserved {before / mib:.0f} MiB before a trial, {held / mib:.0f} "
            f"during, {after / mib:.0f} after release()"
        )
    return (
        f"reserved {before / mib:.0f} MiB before, {held / mib:.0f} MiB after a DCGAN's "
        f"steps, {after / mib:.0f} MiB after trainables.device.release "
        f"(allocated {after_allocated / mib:.0f} MiB)"
    )


def check_state_dict_devices(ctx: Context) -> str:
    import torch

    from trainables.device import select_device
    from trainables.families import family_class

    device = select_device(ctx.scale.gpu_share)
    trained = small_dcgan(device, base_channels=ctx.scale.model_channels)
    trained.train_step([real_batch(64, device)], [zero_labels(64, device)])
    buffer = io.BytesIO()
    torch.save(trained.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, map_location="cpu", weights_only=True)
    on_cpu = family_class("dcgan")(trained.config, (1, 28, 28), 10, torch.device("cpu"))
    on_cpu.load_state_dict(state)
    z = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    trained.train(False)
    on_cpu.train(False)
    with torch.no_grad():
        here = on_cpu.sample(z)
        there = trained.sample(z.to(device)).cpu()
    gap = (here - there).abs().max().item()
    if here.device.type != "cpu" or gap > 2e-2:  # TF32 convolutions on CUDA round differently
        raise CheckFailed(f"samples on {here.device} differ by {gap:.3g} from {device}'s")
    return (
        f"DCGAN state_dict saved on {device} loaded on cpu (weights_only, map_location cpu); "
        f"samples agree within {gap:.1e}"
    )


def timed(device: Any, warm_up: Callable[[], None], step: Callable[[], None], steps: int) -> float:
    """Seconds for ``steps`` calls of ``step`` after as many warm-up calls."""
    import torch

    for _ in range(max(1, steps // 3)):
        warm_up()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


def check_throughput(ctx: Context) -> str:
    import torch

    from evaluators.judges.inception import FIDInception
    from trainables.device import loss_scaler, mixed_precision, select_device

    device = select_device(ctx.scale.gpu_share)
    scale, rows = ctx.scale, ctx.report.throughput
    for batch in scale.train_batches:
        for amp in ("off", "bf16"):
            model = small_dcgan(device, batch_size=batch, base_channels=scale.model_channels)
            model.loss_scaler = loss_scaler(device, amp)
            real = [real_batch(batch, device)]
            labels = [zero_labels(batch, device)]

            def step(model=model, real=real, labels=labels, amp=amp) -> None:
                with mixed_precision(device, amp):
                    model.train_step(real, labels)

            seconds = timed(device, step, step, scale.train_steps)
            rows.append(
                {
                    "work": "dcgan training step (G + D)",
                    "batch": batch,
                    "amp": amp,
                    "images_per_s": scale.train_steps * batch / seconds,
                }
            )
            del model, real
    inception = FIDInception().to(device).eval()
    images = torch.randint(0, 256, (scale.inception_batch, 1, 28, 28), dtype=torch.uint8)

    @torch.no_grad()
    def extract() -> None:
        inception.features(images.to(device).float().div(255))

    seconds = timed(device, extract, extract, scale.inception_batches)
    rows.append(
        {
            "work": "inception pool3 features (28x28 grey -> 299)",
            "batch": scale.inception_batch,
            "amp": "off",
            "images_per_s": scale.inception_batches * scale.inception_batch / seconds,
        }
    )
    for line in throughput_table(ctx.report):
        ctx.report.say(line)
    if not all(finite(r["images_per_s"]) and r["images_per_s"] > 0 for r in rows):
        raise CheckFailed("a throughput is not a positive number")
    return f"{len(rows)} rows measured on {ctx.report.facts['device']}"


def throughput_table(report: Report) -> list[str]:
    lines = [
        f"throughput on {report.facts.get('device')} (images/s):",
        f"  {'work':<46} {'batch':>5} {'amp':>5} {'images/s':>10}",
    ]
    for row in report.throughput:
        rate = row["images_per_s"]
        shown = f"{rate:,.0f}" if rate >= 10 else f"{rate:.2f}"
        lines.append(f"  {row['work']:<46} {row['batch']:>5} {row['amp']:>5} {shown:>10}")
    return lines


# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="ganorch-gpu-check-"))
    try:
        yield folder
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def run_checks(ctx: Context) -> None:
    report = ctx.report
    packed = report.check("sweep-packed-gpu", lambda: check_packed(ctx))
    report.check("sweep-amp-bf16", lambda: check_amp_sweep(ctx, BF16, "bf16", ["dcgan", "wgan"]))
    report.check(
        "sweep-amp-fp16", lambda: check_amp_sweep(ctx, FP16, "fp16", ["dcgan", "began", "wgan"])
    )
    report.check("losses-finite", lambda: check_losses(ctx))
    report.check("fid-falling", lambda: check_fid_falling(ctx))
    report.check("amp-parity", lambda: check_amp_parity(ctx))
    report.check("checkpoints-on-cpu", lambda: check_checkpoints_on_cpu(ctx))
    if packed:  # eval and the grid read the packed sweep's checkpoints
        report.check("eval-inception", lambda: check_eval(ctx, "inception"))
        report.check("eval-lenet", lambda: check_eval(ctx, "lenet"))
        report.check("grid-augment-2-actors", lambda: check_grid(ctx))
    else:
        for name in ("eval-inception", "eval-lenet", "grid-augment-2-actors"):
            report.outcomes.append(Outcome(name, False, "not run: the packed sweep failed", 0.0))
            report.say(f"FAIL {name}: not run: the packed sweep failed")
    report.check("amp-dtypes-and-loss-scaler", lambda: check_amp(ctx))
    report.check("memory-released", lambda: check_memory_release(ctx))
    report.check("state-dict-cuda-to-cpu", lambda: check_state_dict_devices(ctx))
    report.check("throughput", lambda: check_throughput(ctx))


def write_out(report: Report, folder: Path, dry_run: bool, seconds: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gpu-check.log").write_text("\n".join(report.log) + "\n")
    summary = {
        "cpu_dry_run": dry_run,
        "seconds": seconds,
        **report.facts,
        "checks": [asdict(o) for o in report.outcomes],
        "throughput": report.throughput,
    }
    (folder / "gpu-check.json").write_text(json.dumps(summary, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write gpu-check.log and gpu-check.json here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary runs folder")
    parser.add_argument("--dry-run-on-cpu", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    dry_run = args.dry_run_on_cpu or os.environ.get(DRY_RUN_ENV, "") not in ("", "0")

    import torch

    if not dry_run and not torch.cuda.is_available():
        print(
            "gpu-check: no CUDA device found (torch.cuda.is_available() is False); "
            "nothing was checked",
            flush=True,
        )
        return NO_CUDA
    scale = CPU if dry_run else GPU
    report = Report()
    started = time.perf_counter()
    if dry_run:
        report.say(
            "gpu-check: CPU DRY RUN (resources.gpu 0, tiny sizes): this checks the "
            "script, not CUDA, and exits 4"
        )
        device = "CPU (dry run)"
    else:
        device = torch.cuda.get_device_name(0)
    report.facts.update(
        {
            "device": device,
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cuda_devices": torch.cuda.device_count() if not dry_run else 0,
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "ganorch": " ".join(ganorch_command()),
        }
    )
    report.say("gpu-check: " + ", ".join(f"{k} {v}" for k, v in report.facts.items()))

    with workspace(args.keep) as work:
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "GANORCH_RUNS": str(work / "runs"),
            "GANORCH_CACHE": os.environ.get("GANORCH_CACHE") or str(work / "cache"),
        }
        env.pop("GANORCH_ADDRESS", None)  # a private local Ray for every command
        if args.keep:
            report.say(f"gpu-check: working in {work}")
        run_checks(Context(scale, not dry_run, work, env, report))

    seconds = time.perf_counter() - started
    passed = sum(o.passed for o in report.outcomes)
    failed = len(report.outcomes) - passed
    report.say("")
    report.say(
        f"==== gpu-check summary ({'CPU DRY RUN' if dry_run else device}, {seconds:.0f} s) ===="
    )
    for outcome in report.outcomes:
        report.say(
            f"{'PASS' if outcome.passed else 'FAIL'} {outcome.name}: {outcome.detail} "
            f"[{outcome.seconds:.1f}s]"
        )
    for line in throughput_table(report):
        report.say(line)
    report.say(f"{passed} passed, {failed} failed")
    if dry_run:
        report.say("gpu-check: CPU DRY RUN: nothing about CUDA was checked (exit 4)")
    if args.out:
        write_out(report, args.out, dry_run, seconds)
    if dry_run:
        return CPU_DRY_RUN
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
