"""A runs-dir in an object store: a sweep onto a moto S3 server on loopback through the installed
console script, read back with plain pyarrow, TensorBoard's reader and `ganorch results show`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ..conftest import GANORCH, run_cli, write_spec

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


@dataclass(frozen=True)
class Store:
    fs: pafs.FileSystem  # what the test reads back with
    options: str  # the query string that points pyarrow at the server

    @property
    def env(self) -> dict[str, str]:
        """The CLI's environment, read when it starts (Ray's session settings included), and
        the credentials a user would export."""
        return {**os.environ, **CREDENTIALS}

    def runs_dir(self, prefix: str, bucket: str = "bucket") -> str:
        return f"s3://{bucket}/{prefix}?{self.options}"


@pytest.fixture(scope="module")
def store():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    fs = pafs.S3FileSystem(access_key="testing", secret_key="testing", scheme="http",
                           endpoint_override=f"{host}:{port}", allow_bucket_creation=True)
    fs.create_dir("bucket")
    yield Store(fs, f"endpoint_override={host}:{port}&scheme=http")
    server.stop()


def cli(store: Store, *args: str) -> subprocess.CompletedProcess:
    result = run_cli(*args, env=store.env)
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.mark.parametrize(("runs_dir", "says"), [
    ("s3://absent/runs?{options}", "error: runs-dir s3://absent/runs: bucket 'absent' does not "
                                   "exist"),
    ("s3://bucket/runs?endpoint_override=127.0.0.1:1&scheme=http",
     "error: runs-dir s3://bucket/runs: When getting information for bucket 'bucket'"),
    ("nope://bucket/runs", "error: runs-dir nope://bucket/runs: Unrecognized filesystem type"),
])
def test_a_bad_object_store_runs_dir_is_one_line(store, runs_dir, says):
    result = cli(store, "results", "show", "r", "--runs-dir",
                 runs_dir.format(options=store.options))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(says), lines


def test_an_unknown_run_in_a_bucket_is_named_without_the_options(store):
    result = cli(store, "results", "show", "absent", "--runs-dir", store.runs_dir("runs"))
    assert result.returncode == 2
    assert result.stderr.strip() == "error: no run named 'absent' under s3://bucket/runs"


ROOT = "bucket/team/runs/s3run"  # the run's folder in the bucket


@pytest.fixture(scope="module")
def swept(store, tmp_path_factory, ray_address):
    """One two-trial, one-epoch sweep onto the bucket; the runs-dir and the CLI's output."""
    spec = write_spec(tmp_path_factory.mktemp("s3") / "spec.yaml", name="s3run")
    runs_dir = store.runs_dir("team/runs")
    result = cli(store, "sweep", "run", str(spec), "--runs-dir", runs_dir,
                 "--address", ray_address)
    assert result.returncode == 0, result.stderr
    return spec, runs_dir, result


@pytest.mark.slow
def test_a_sweep_onto_s3_is_read_back_and_resumed(store, swept, tmp_path, ray_address):
    spec, runs_dir, first = swept
    assert "tables: s3://bucket/team/runs/s3run/tables" in first.stderr
    assert "endpoint_override" not in first.stderr  # options may hold secrets: never shown
    assert not any(spec.parent.glob("**/tables"))  # nothing went to the local disk

    trials = pq.read_table(f"{ROOT}/tables/trials", filesystem=store.fs).to_pylist()
    assert len(trials) == 2 and {t["status"] for t in trials} == {"TERMINATED"}
    epochs = pq.read_table(f"{ROOT}/tables/epochs", filesystem=store.fs).to_pylist()
    assert sorted(e["trial_id"] for e in epochs) == sorted(t["trial_id"] for t in trials)
    for trial in trials:  # checkpoints are URIs of Tune's storage in the bucket
        assert trial["checkpoint"].startswith(f"s3://{ROOT}/tune/s3run/")
        state = trial["checkpoint"].removeprefix("s3://") + "/state.pt"
        assert store.fs.get_file_info(state).type == pafs.FileType.File
    spec_text = store.fs.open_input_stream(f"{ROOT}/spec.yaml").read().decode()
    assert "name: s3run" in spec_text

    local = tmp_path / "tb"
    pafs.copy_files(f"{ROOT}/tb", str(local), source_filesystem=store.fs)
    assert sorted(p.name for p in local.iterdir()) == sorted(t["trial_id"] for t in trials)
    for folder in local.iterdir():
        events = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0})
        events.Reload()
        assert [s.step for s in events.Scalars("fid")] == [1]
        assert [g.step for g in events.Images("samples")] == [1]

    shown = cli(store, "results", "show", "s3run", "--runs-dir", runs_dir, "--sort", "fid")
    assert shown.returncode == 0, shown.stderr
    assert {line.split()[0] for line in shown.stdout.splitlines()[2:]} == {
        t["trial_id"] for t in trials}

    again = cli(store, "sweep", "run", str(spec), "--runs-dir", runs_dir,
                "--address", ray_address)
    assert again.returncode == 0, again.stderr
    assert "resuming run 's3run' from s3://bucket/team/runs/s3run/tune/s3run" in again.stderr
    after = pq.read_table(f"{ROOT}/tables/trials", filesystem=store.fs).to_pylist()
    assert sorted(t["trial_id"] for t in after) == sorted(t["trial_id"] for t in trials)

    served = _tensorboard_runs(store, "s3run", runs_dir)
    assert {t["trial_id"] for t in trials} <= set(served)


@pytest.mark.slow
def test_eval_and_grid_load_checkpoints_from_the_bucket(store, swept, ray_address):
    _, runs_dir, _ = swept
    scored = cli(store, "eval", "run", "s3run", "--top", "1", "--metrics", "fid", "--n", "50",
                 "--actors", "1", "--runs-dir", runs_dir, "--address", ray_address)
    assert scored.returncode == 0, scored.stderr
    rows = pq.read_table(f"{ROOT}/tables/eval", filesystem=store.fs).to_pylist()
    generators = {r["generator"] for r in rows if r["metric"] == "fid"}
    assert len(generators) == 2 and "reference" in generators
    assert all(r["error"] is None for r in rows)
    pngs = store.fs.get_file_info(pafs.FileSelector(f"{ROOT}/artifacts/eval", recursive=True))
    assert {"samples.png", "interpolation.png"} <= {p.base_name for p in pngs}

    grid = cli(store, "grid", "augment", "s3run", "--generator", "best", "--strategies", "mix",
               "--real", "0,20", "--generated", "0,20", "--unit", "count", "--seeds", "1",
               "--epochs", "1", "--actors", "1", "--runs-dir", runs_dir,
               "--address", ray_address)
    assert grid.returncode == 0, grid.stderr
    cells = pq.read_table(f"{ROOT}/tables/augment", filesystem=store.fs).to_pylist()
    assert len(cells) == 3 and all(c["checkpoint"].startswith(f"s3://{ROOT}/") for c in cells)
    assert "figures: s3://bucket/team/runs/s3run/artifacts/augment (" in grid.stderr
    tb = store.fs.get_file_info(pafs.FileSelector(f"{ROOT}/tb/augment", recursive=True))
    assert any(info.base_name.startswith("events.out.tfevents") for info in tb)


def _tensorboard_runs(store: Store, name: str, runs_dir: str) -> dict:
    """The runs `ganorch tensorboard` serves (its copy of the bucket's tb folder)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(GANORCH), "tensorboard", name, "--runs-dir", runs_dir, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        env=store.env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=2) as r:
                    runs = json.loads(r.read())
                if runs:
                    return runs
            except OSError:
                pass
            time.sleep(0.5)
        return {}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
