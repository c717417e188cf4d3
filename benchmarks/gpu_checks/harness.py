"""The gpu-check's harness: sizes of a run, checks and their report, ``ganorch`` commands in
subprocesses (output logged, GPU memory watched), and tables read back."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
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


def read_table(runs: Path, run: str, name: str) -> list[dict[str, Any]]:
    from orchestrator.tables import Table

    return Table(str(runs / run / "tables"), name).read().to_pylist()


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


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
