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
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gpu_checks.evaluation import check_eval, check_grid
from gpu_checks.harness import CPU, GPU, Context, Outcome, Report, ganorch_command
from gpu_checks.in_process import check_amp, check_memory_release, check_state_dict_devices
from gpu_checks.sweeps import (
    BF16,
    FP16,
    check_amp_parity,
    check_amp_sweep,
    check_checkpoints_on_cpu,
    check_fid_falling,
    check_losses,
    check_packed,
)
from gpu_checks.throughput import check_throughput, throughput_table

NO_CUDA = 3
CPU_DRY_RUN = 4
DRY_RUN_ENV = "GANORCH_GPU_CHECK_ON_CPU"


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


def machine_facts(dry_run: bool) -> dict[str, Any]:
    """What the check ran on: the GPU's name (or the dry run's), versions, the command."""
    import torch

    return {
        "device": "CPU (dry run)" if dry_run else torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_devices": torch.cuda.device_count() if not dry_run else 0,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "ganorch": " ".join(ganorch_command()),
    }


def check_in_workspace(report: Report, dry_run: bool, keep: bool) -> None:
    """Every check, with its commands' runs and cache in a temporary folder."""
    with workspace(keep) as work:
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "GANORCH_RUNS": str(work / "runs"),
            "GANORCH_CACHE": os.environ.get("GANORCH_CACHE") or str(work / "cache"),
        }
        env.pop("GANORCH_ADDRESS", None)  # a private local Ray for every command
        if keep:
            report.say(f"gpu-check: working in {work}")
        run_checks(Context(CPU if dry_run else GPU, not dry_run, work, env, report))


def summarise(report: Report, dry_run: bool, seconds: float) -> int:
    """Print every check's line again, the throughput table and the counts; the failures."""
    passed = sum(o.passed for o in report.outcomes)
    failed = len(report.outcomes) - passed
    device = "CPU DRY RUN" if dry_run else report.facts["device"]
    report.say("")
    report.say(f"==== gpu-check summary ({device}, {seconds:.0f} s) ====")
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
    return failed


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
    report = Report()
    started = time.perf_counter()
    if dry_run:
        report.say(
            "gpu-check: CPU DRY RUN (resources.gpu 0, tiny sizes): this checks the "
            "script, not CUDA, and exits 4"
        )
    report.facts.update(machine_facts(dry_run))
    report.say("gpu-check: " + ", ".join(f"{k} {v}" for k, v in report.facts.items()))
    check_in_workspace(report, dry_run, args.keep)
    seconds = time.perf_counter() - started
    failed = summarise(report, dry_run, seconds)
    if args.out:
        write_out(report, args.out, dry_run, seconds)
    if dry_run:
        return CPU_DRY_RUN
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
