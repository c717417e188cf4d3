"""Throughput in this process: images/s of DCGAN training steps and Inception features."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .harness import CheckFailed, Context, Report, finite
from .in_process import real_batch, small_dcgan, zero_labels


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
