"""Checks of ``ganorch eval run`` and ``ganorch grid augment`` on the packed sweep."""

from __future__ import annotations

from pathlib import Path

from .harness import CheckFailed, Context, finite, gpu_note, read_table, succeeded
from .sweeps import PACKED


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
