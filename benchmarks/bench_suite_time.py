"""The test suite's wall time at two commits, measured back to back on this machine.

A suite's wall time on 2 shared cores moves by a third from one hour to the next (the same
commit took 701 s and 995 s of one day), so a target such as "no slower than before" is checked
side by side: both commits are cloned into a temporary folder, each gets its own ``make
install`` (untimed), and then each runs ``make test`` (the README's test command), one after
the other, ``--rounds`` times in alternating order. Printed per run: the commit, pytest's
summary line and its wall time; then each commit's median and the ratio ``head / base``
(below 1: the head's suite is faster on the same machine at the same hour).

It reports, it does not assert. Run it from the repository root (two suites and two installs:
about 40 minutes on 2 idle cores; nothing else should run meanwhile)::

    .venv/bin/python benchmarks/bench_suite_time.py [--base REV] [--head HEAD] [--rounds 1]
        [--logs DIR]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"^=*\s*(\d+ (?:passed|failed).*?) in ([\d.]+)s", re.MULTILINE)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def clone(rev: str, into: Path) -> str:
    """A clone of this repository at ``rev``, installed; its short commit."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(into)], check=True)
    subprocess.run(["git", "-C", str(into), "checkout", "-q", rev], check=True)
    subprocess.run(["make", "install"], cwd=into, check=True, capture_output=True)
    short = ["git", "-C", str(into), "rev-parse", "--short", "HEAD"]
    return subprocess.run(short, check=True, capture_output=True, text=True).stdout.strip()


def run_suite(tree: Path, log: Path | None) -> tuple[str, float, float]:
    """``make test`` in ``tree``: pytest's summary, its seconds, and the command's wall (its
    output, with the 20 slowest tests, saved to ``log``). A failing test is reported in the
    summary, not raised: the time still counts."""
    start = time.monotonic()
    done = subprocess.run(["make", "test"], cwd=tree, capture_output=True, text=True)
    wall = time.monotonic() - start
    if log is not None:
        log.write_text(done.stdout + done.stderr)
    found = SUMMARY.findall(done.stdout)
    if not found:
        tail = (done.stdout + done.stderr)[-2000:]
        raise SystemExit(f"make test failed in {tree} (exit {done.returncode}):\n{tail}")
    summary, seconds = found[-1]
    return summary, float(seconds), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="bb1381d", help="the earlier commit (default bb1381d)")
    parser.add_argument("--head", default="HEAD", help="the later commit (default HEAD)")
    parser.add_argument("--rounds", type=int, default=1, help="suites per commit (default 1)")
    parser.add_argument("--logs", type=Path, help="folder for each run's make test output")
    args = parser.parse_args()
    if args.logs is not None:
        args.logs.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="ganorch-suite-") as tmp:
        trees = {}
        for role, rev in (("base", args.base), ("head", args.head)):
            progress(f"cloning and installing {role} {rev} ...")
            path = Path(tmp) / role
            trees[role] = (clone(rev, path), path)
        seconds: dict[str, list[float]] = {"base": [], "head": []}
        for round_ in range(args.rounds):
            order = ("base", "head") if round_ % 2 == 0 else ("head", "base")
            for role in order:
                commit, path = trees[role]
                progress(f"round {round_ + 1}/{args.rounds}: make test at {role} {commit} ...")
                log = args.logs / f"{role}-{commit}-{round_ + 1}.log" if args.logs else None
                summary, pytest_s, wall = run_suite(path, log)
                seconds[role].append(pytest_s)
                print(f"{role} {commit}: {summary} in {pytest_s:.0f} s (make test {wall:.0f} s)")
        base, head = (statistics.median(seconds[role]) for role in ("base", "head"))
        print(f"median suite: base {base:.0f} s, head {head:.0f} s")
        print(f"ratio head / base = {head / base:.2f}")


if __name__ == "__main__":
    main()
