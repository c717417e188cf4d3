"""Learning curves: every family at its defaults, FID after every epoch, in one grid sweep.

What it runs: one ``ganorch sweep run`` (the installed console script, so the sweep goes through
the spec check, Ray Tune and the tables exactly as a user's does) of a grid over the families,
each at its defaults; ``wgan`` is run twice, with ``constraint: clip`` and ``gp``. No scheduler
stops a trial early. Afterwards the epochs table is read back with ``ganorch results show``.

What it prints: the domain FID after every epoch (one column per family) and each family's
median seconds per epoch (training and scoring). What it writes to ``--out``: ``curves.png``
(FID against epoch, log scale, one line per family), ``samples-<family>.png`` (the 8 x 8 grid
the last epoch logged to TensorBoard) and ``table.md`` (the printed table). It reports, it does
not assert.

Run it from the repository root (15 epochs x 9 trials: about 25 minutes on 2 idle cores)::

    .venv/bin/python benchmarks/learning_curves.py [--epochs 15] [--families all]
        [--dataset mnist5k] [--concurrent 2] [--out docs/learning-curves/mnist5k]

Runs go to ``--runs-dir`` (default: a temporary folder, removed afterwards unless ``--keep``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

RUN_NAME = "learning-curves"
WGAN_CONSTRAINTS = ("clip", "gp")


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def ganorch(*args: str) -> str:
    """Run the ganorch console script installed beside this Python; its stdout."""
    command = [str(Path(sys.executable).parent / "ganorch"), *args]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ganorch {' '.join(args)} failed:\n{done.stderr.strip()}")
    return done.stdout


def all_families() -> list[str]:
    from trainables.families import FAMILIES

    return sorted(FAMILIES)


def spec_for(families: list[str], dataset: str, epochs: int, concurrent: int) -> dict:
    """A grid over the families at their defaults (wgan under both constraints)."""
    space = {"wgan.constraint": list(WGAN_CONSTRAINTS)} if "wgan" in families else {}
    return {
        "name": RUN_NAME,
        "dataset": {"name": dataset},
        "family": families[0] if len(families) == 1 else families,
        "epochs": epochs,
        "metric": {"name": "fid", "mode": "min"},
        "search": {"algorithm": "grid", "samples": 1, "max_concurrent": concurrent},
        "scheduler": {"name": "none"},
        "resources": {"cpu": 1, "gpu": 0},
        "space": space,
    }


def run_sweep(spec: dict, runs_dir: Path) -> None:
    spec_file = runs_dir / "learning-curves.yaml"
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    command = [
        str(Path(sys.executable).parent / "ganorch"),
        "sweep",
        "run",
        str(spec_file),
        "--runs-dir",
        str(runs_dir),
    ]
    if subprocess.run(command, stdout=sys.stderr).returncode != 0:
        raise SystemExit("the sweep failed; see its output above")


def table_rows(runs_dir: Path, table: str) -> list[dict]:
    return json.loads(
        ganorch(
            "results",
            "show",
            RUN_NAME,
            "--table",
            table,
            "--format",
            "json",
            "--runs-dir",
            str(runs_dir),
        )
    )


def trial_labels(trials: list[dict]) -> dict[str, str]:
    """trial_id -> the family's name, with wgan's constraint (``wgan-clip``, ``wgan-gp``)."""
    labels = {}
    for row in trials:
        label = row["family"]
        if label == "wgan":
            label = f"wgan-{row['config/constraint']}"
        labels[row["trial_id"]] = label
    return dict(sorted(labels.items(), key=lambda item: item[1]))


def curves(epochs: list[dict], labels: dict[str, str]) -> dict[str, dict[int, dict]]:
    """label -> epoch -> that epoch's row."""
    by_label: dict[str, dict[int, dict]] = {label: {} for label in labels.values()}
    for row in epochs:
        if row["trial_id"] in labels:
            by_label[labels[row["trial_id"]]][int(row["epoch"])] = row
    return by_label


def format_table(by_label: dict[str, dict[int, dict]], epochs: int) -> str:
    """Markdown: FID per epoch (rows) and family (columns), then median seconds per epoch."""
    names = list(by_label)
    lines = ["| epoch | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for epoch in range(1, epochs + 1):
        cells = [by_label[n].get(epoch, {}).get("fid") for n in names]
        lines.append(
            f"| {epoch} | " + " | ".join("-" if v is None else f"{v:.0f}" for v in cells) + " |"
        )
    seconds = []
    for name in names:
        values = [row["epoch_s"] for row in by_label[name].values() if row.get("epoch_s")]
        seconds.append(f"{statistics.median(values):.1f}" if values else "-")
    lines.append("| s/epoch | " + " | ".join(seconds) + " |")
    return "\n".join(lines)


def write_figure(by_label: dict[str, dict[int, dict]], dataset: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, rows in by_label.items():
        points = sorted(
            (epoch, row["fid"]) for epoch, row in rows.items() if row.get("fid") is not None
        )
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", markersize=3, label=name)
    axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel("domain FID (LeNet judge)")
    axes.set_title(f"{dataset}: every family at its defaults")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def last_sample_grid(event_folder: Path) -> bytes | None:
    """The PNG of the last ``samples`` image a trial logged to TensorBoard, if any."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(event_folder), size_guidance={"images": 0})
    events.Reload()
    if "samples" not in events.Tags().get("images", []):
        return None
    return events.Images("samples")[-1].encoded_image_string


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15, help="epochs per family (default 15)")
    parser.add_argument(
        "--families", default="all", help="comma-separated families, or 'all' (default)"
    )
    parser.add_argument("--dataset", default="mnist5k", help="dataset name (default mnist5k)")
    parser.add_argument(
        "--concurrent", type=int, default=2, help="trials at a time, one CPU each (default 2)"
    )
    parser.add_argument(
        "--out",
        help="folder for the figure, grids and table (default docs/learning-curves/<dataset>)",
    )
    parser.add_argument("--runs-dir", help="folder for the run (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary run folder")
    args = parser.parse_args()
    known = all_families()
    families = known if args.families == "all" else args.families.split(",")
    unknown = sorted(set(families) - set(known))
    if unknown:
        parser.error(f"unknown families {', '.join(unknown)} (known: {', '.join(known)})")
    if args.epochs < 1 or args.concurrent < 1:
        parser.error("--epochs and --concurrent must be >= 1")
    out = Path(args.out or f"docs/learning-curves/{args.dataset}")
    out.mkdir(parents=True, exist_ok=True)
    runs_dir = Path(args.runs_dir or tempfile.mkdtemp(prefix="ganorch-curves-"))
    runs_dir.mkdir(parents=True, exist_ok=True)
    try:
        progress(
            f"sweep of {', '.join(families)} on {args.dataset}, {args.epochs} epochs, "
            f"runs in {runs_dir}"
        )
        run_sweep(spec_for(families, args.dataset, args.epochs, args.concurrent), runs_dir)
        labels = trial_labels(table_rows(runs_dir, "trials"))
        by_label = curves(table_rows(runs_dir, "epochs"), labels)
        table = format_table(by_label, args.epochs)
        write_figure(by_label, args.dataset, out / "curves.png")
        for trial_id, label in labels.items():
            grid = last_sample_grid(runs_dir / RUN_NAME / "tb" / trial_id)
            if grid is not None:
                (out / f"samples-{label}.png").write_bytes(grid)
    finally:
        if not (args.keep or args.runs_dir):
            shutil.rmtree(runs_dir, ignore_errors=True)
    (out / "table.md").write_text(
        f"Domain FID after each epoch on {args.dataset}, every family at its defaults\n\n{table}\n"
    )
    print(f"domain FID after each epoch on {args.dataset} (families at their defaults)")
    print(table)
    print(f"figure, sample grids and table in {out}")


if __name__ == "__main__":
    main()
