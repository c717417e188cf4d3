"""Checks in this process: autocast dtypes and the fp16 loss scaler, CUDA memory released after
a trial, a state_dict saved on CUDA loaded on the CPU."""

from __future__ import annotations

import gc
import io
from typing import Any

from .harness import CheckFailed, Context


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
