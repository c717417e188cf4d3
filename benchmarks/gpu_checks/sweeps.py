"""Checks that run three sweeps through the CLI and judge their tables and checkpoints."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .harness import (
    OUTPUT_TAIL,
    CheckFailed,
    Context,
    Scale,
    finite,
    gpu_note,
    read_table,
    succeeded,
)

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
