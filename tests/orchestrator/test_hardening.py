"""Hostile and mistaken use: a crafted checkpoint, a local Ray reachable from the network, bad
spec files, trial shapes the cluster cannot hold, a bad TensorBoard port, a KID interval from one
estimate. Bad input is one `error:` line, exit code 2, nothing run and nothing created; commands
run through the installed console script (spec errors, which end before any work, in process)."""

from __future__ import annotations

import ipaddress
import math
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.trainables.test_checkpoint_safety import write_malicious_checkpoint

from ..conftest import GANORCH, run_cli, run_in_process, write_spec


def assert_one_line_error(result, *fragments: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_grid_augment_refuses_a_checkpoint_that_would_run_code(tmp_path):
    marker = tmp_path / "ran"
    folder = write_malicious_checkpoint(tmp_path / "checkpoint", marker)
    result = run_cli(
        "grid",
        "augment",
        "g",
        "--generator",
        str(folder),
        "--dataset",
        "mnist5k",
        "--runs-dir",
        str(tmp_path / "runs"),
    )
    line = assert_one_line_error(result, str(folder / "state.pt"), "refused")
    assert "weights_only" not in line
    assert not marker.exists()


@pytest.mark.slow
def test_the_embedded_ray_of_a_sweep_listens_on_loopback_only(tmp_path):
    """A sweep without --address starts its own Ray: while it runs, every listening socket of
    the ganorch process and its descendants (GCS, raylet, agents, trial workers) is bound to
    127.0.0.0/8 or ::1, read from /proc/net/tcp and tcp6."""
    spec = write_spec(tmp_path / "spec.yaml", search={"algorithm": "random", "samples": 1})
    env = {key: value for key, value in os.environ.items() if key != "GANORCH_ADDRESS"}
    sweep = subprocess.Popen(
        [str(GANORCH), "sweep", "run", str(spec), "--runs-dir", str(tmp_path / "runs")],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    listening: dict[tuple[str, int], str] = {}  # (address, port) -> process name
    try:
        while sweep.poll() is None:
            sockets = socket_owners(process_tree(sweep.pid))
            for address, port, inode in listening_sockets():
                if inode in sockets:
                    listening[(address, port)] = sockets[inode]
            time.sleep(0.5)
        _, stderr = sweep.communicate(timeout=60)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    assert sweep.returncode == 0, stderr
    names = " ".join(listening.values())
    assert "gcs_server" in names and "raylet" in names and "ray::" in names, listening
    exposed = {key: name for key, name in listening.items() if not is_loopback(key[0])}
    assert not exposed, f"listening beyond loopback: {exposed}"


def process_tree(root: int) -> set[int]:
    """``root`` and every live descendant, by the parent pid in /proc/<pid>/stat."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # a process that just ended
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, grown = {root}, True
    while grown:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grown = bool(children)
    return tree


def socket_owners(pids: set[int]) -> dict[str, str]:
    """Socket inode -> the name (first word of the command line) of a process holding it."""
    owners = {}
    for pid in pids:
        try:
            name = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owners[target[len("socket:[") : -1]] = name
        except OSError:
            continue  # the process ended while being read
    return owners


def listening_sockets() -> list[tuple[str, int, str]]:
    """(address, port, inode) of every TCP socket in LISTEN state (IPv4 and IPv6)."""
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.append((str(ipaddress.ip_address(raw)), int(port, 16), fields[9]))
    return found


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1, a dual-stack socket
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def bad_spec(case: str, folder: Path) -> bytes:
    def spec(**fields) -> bytes:
        return write_spec(folder / f"{case}.yaml", **fields).read_bytes()

    return {
        "binary": lambda: bytes(range(256)) * 8,
        "deep": lambda: ("name: " + "[" * 5000 + "]" * 5000 + "\n").encode(),
        "nan-bound": lambda: spec(space={"beta1": {"uniform": [float("nan"), 0.5]}}),
        "inf-reduction": lambda: spec(scheduler={"name": "asha", "reduction_factor": float("inf")}),
        "nan-fixed": lambda: spec(fixed={"beta1": float("nan"), "base_channels": 8}),
        "inf-cpu": lambda: spec(resources={"cpu": float("inf")}),
        "duplicate-key": lambda: spec() + b"epochs: 3\n",
    }[case]()


EXPECTED = {
    "binary": "not a text file",
    "deep": "nests too deeply",
    "nan-bound": "space.beta1: bound nan: expected a finite number",
    "inf-reduction": "scheduler.reduction_factor: expected a finite number",
    "nan-fixed": "fixed.beta1: expected a finite number",
    "inf-cpu": "resources.cpu: expected a finite number",
    "duplicate-key": "key 'epochs' appears twice in one mapping (line",
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_a_bad_spec_file_is_one_line_for_check_and_run_and_creates_nothing(tmp_path, case):
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(bad_spec(case, tmp_path))
    runs = tmp_path / "runs"
    for command in ("check", "run"):
        extra = ("--runs-dir", str(runs)) if command == "run" else ()
        result = run_in_process("sweep", command, str(spec), *extra)
        assert_one_line_error(result, f"error: {spec}: ", EXPECTED[case])
    assert not runs.exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read spec: No such file or directory"),
        ("- 1\n", "must hold a mapping of spec keys"),
        ("name: [unclosed\n", "not valid YAML at line 2"),
    ],
    ids=["missing", "list", "broken"],
)
def test_an_unreadable_spec_is_named_once_by_every_check(tmp_path, content, expected):
    spec = tmp_path / "spec.yaml"
    if content is not None:
        spec.write_text(content)
    for command in (("sweep", "check"), ("grid", "check")):
        line = assert_one_line_error(run_in_process(*command, str(spec)), expected)
        assert line == f"error: {spec}: {expected}"


def test_a_grid_spec_with_a_duplicate_key_is_refused_before_anything_starts(tmp_path):
    spec = tmp_path / "grid.yaml"
    spec.write_text("run: g\ngenerator: best\nseeds: 1\nseeds: 2\n")
    result = run_cli("grid", "augment", "--spec", str(spec), "--runs-dir", str(tmp_path / "r"))
    assert_one_line_error(result, f"error: {spec}: key 'seeds' appears twice")
    assert not (tmp_path / "r").exists()


def test_a_batch_size_above_the_training_split_is_refused_before_anything_starts(tmp_path):
    spec = write_spec(
        tmp_path / "spec.yaml",
        space={"batch_size": [100, 5000]},
        fixed={"base_channels": 8, "n_z": 16, "fid_samples": 200},
    )
    result = run_cli("sweep", "run", str(spec), "--runs-dir", str(tmp_path / "runs"))
    assert_one_line_error(
        result, f"error: {spec}: space.batch_size: 5000 exceeds the 4000 training images of mnist5k"
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_gpu_trial_on_a_ray_without_gpus_is_refused_before_anything_starts(tmp_path):
    """ganorch's own Ray on this (CPU-only) machine can never hold a GPU trial; Tune would
    wait for one forever."""
    spec = write_spec(tmp_path / "spec.yaml", resources={"cpu": 1, "gpu": 1})
    env = {key: value for key, value in os.environ.items() if key != "GANORCH_ADDRESS"}
    result = run_cli("sweep", "run", str(spec), "--runs-dir", str(tmp_path / "runs"), env=env)
    assert_one_line_error(
        result,
        f"error: {spec}: resources.gpu: 1 per trial, but no node of "
        "this machine's Ray has that many GPUs (at most 0)",
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_trials_that_wait_for_resources_say_what_they_wait_for(tmp_path, ray_address):
    """A cluster whose CPUs are all taken (here by an actor) can hold a trial later, so the
    sweep starts and its progress line says what the trials wait for until they run."""
    import ray

    @ray.remote(num_cpus=2)
    class Holder:
        def ready(self) -> bool:
            return True

    holder = Holder.remote()
    ray.get(holder.ready.remote())
    spec = write_spec(tmp_path / "spec.yaml", search={"algorithm": "random", "samples": 1})
    sweep = subprocess.Popen(
        [
            str(GANORCH),
            "sweep",
            "run",
            str(spec),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--address",
            ray_address,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(sweep.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 600
        while not any("waiting for 1 CPU per trial" in line for line in lines):
            assert sweep.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.5)
        ray.kill(holder)
        sweep.wait(timeout=600)
    finally:
        ray.kill(holder)
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    reader.join(timeout=60)
    assert sweep.returncode == 0, "".join(lines)
    assert "1 trials, 1 finished, 0 failed" in "".join(lines)


def test_tensorboard_refuses_a_port_out_of_range_or_in_use(tmp_path):
    (tmp_path / "runs" / "r" / "tb").mkdir(parents=True)
    serve = ("tensorboard", "r", "--runs-dir", str(tmp_path / "runs"))
    assert_one_line_error(run_cli(*serve, "--port", "99999", timeout=60), "--port", "65535")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_cli(*serve, "--port", port, timeout=60)
    assert_one_line_error(result, f"--port {port}: cannot listen on 127.0.0.1:{port}")


def test_kid_from_a_single_estimate_has_no_interval():
    """n below KID's subset size on both sides: every subset is the whole of both sets, one
    estimate, so eval's row carries no interval (not a zero-width one); with more real images
    than n the subsets differ and the interval is a real one around the value."""
    from orchestrator.evaluate.context import MeasureContext
    from orchestrator.evaluate.measures import METRICS
    from orchestrator.evaluate.report import value_rows

    rng = np.random.default_rng(0)
    features = {n: rng.standard_normal((n, 16)) for n in (60, 200)}
    generated = rng.standard_normal((60, 16)) + 0.3
    for n_real, interval in ((60, False), (200, True)):
        context = MeasureContext()
        real_images = np.zeros((n_real, 1, 8, 8), np.uint8)
        generated_images = np.zeros((60, 1, 8, 8), np.uint8)
        context.remember_features(real_images, features[n_real])
        context.remember_features(generated_images, generated)
        values = METRICS["kid"].compute(real_images, generated_images, context)
        row = next(r for r in value_rows(values, 60, "f") if r["metric"] == "kid_mean")
        if interval:
            assert row["ci_low"] < row["value"] < row["ci_high"], row
        else:
            assert row["ci_low"] is None and row["ci_high"] is None, row
            assert math.isnan(values["kid_std"])


def test_results_show_refuses_a_run_name_outside_the_runs_dir(tmp_path):
    """A run folder beside the runs-dir, with a real trials table, stays unread."""
    from orchestrator.tables import Table

    Table(str(tmp_path / "other" / "tables"), "trials").append([{"trial_id": "t1"}])
    result = run_cli("results", "show", "../other", "--runs-dir", str(tmp_path / "runs"))
    assert_one_line_error(result, "error: run name '../other': use letters, digits")


def test_results_show_names_a_truncated_fragment_in_one_line(tmp_path):
    from orchestrator.tables import Table

    table = Table(str(tmp_path / "runs" / "r" / "tables"), "trials")
    table.append([{"trial_id": "t1", "status": "TERMINATED"}])
    fragment = Path(table.append([{"trial_id": "t2", "status": "TERMINATED"}]))
    fragment.write_bytes(fragment.read_bytes()[:40])
    result = run_cli("results", "show", "r", "--runs-dir", str(tmp_path / "runs"))
    assert_one_line_error(
        result, f"error: trials table: fragment {fragment} cannot be read", "`ganorch sweep run`"
    )


def test_eval_on_a_run_another_command_writes_to_is_one_line(tmp_path):
    """The holder is this test's process: alive, on this host."""
    from orchestrator.locks import run_locked
    from orchestrator.runs import RunDir

    runs = tmp_path / "runs"
    with run_locked(RunDir.of(str(runs), "r"), "sweep run", print):
        result = run_cli(
            "eval",
            "run",
            "r",
            "--dataset",
            "mnist5k",
            "--source",
            "a=x.npz",
            "--runs-dir",
            str(runs),
        )
    assert_one_line_error(
        result, "error: run 'r' is in use by ganorch sweep run", f"pid {os.getpid()}"
    )
    assert not runs.exists()
