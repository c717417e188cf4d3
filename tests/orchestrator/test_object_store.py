"""A runs-dir in an object store: a sweep onto a moto S3 server on loopback through the installed
console script, read back with plain pyarrow, TensorBoard's reader and `ganorch results show`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from orchestrator.runs import RunDir, local_copy, local_folder

from ..conftest import GANORCH, run_cli, served_tensorboard_runs, write_spec

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


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
    fs = pafs.S3FileSystem(
        access_key="testing",
        secret_key="testing",
        scheme="http",
        endpoint_override=f"{host}:{port}",
        allow_bucket_creation=True,
    )
    fs.create_dir("bucket")
    yield Store(fs, f"endpoint_override={host}:{port}&scheme=http")
    server.stop()


def cli(store: Store, *args: str) -> subprocess.CompletedProcess:
    result = run_cli(*args, env=store.env)
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.mark.parametrize(
    ("runs_dir", "says"),
    [
        (
            "s3://absent/runs?{options}",
            "error: runs-dir s3://absent/runs: bucket 'absent' does not exist",
        ),
        (
            "s3://bucket/runs?endpoint_override=127.0.0.1:1&scheme=http",
            "error: runs-dir s3://bucket/runs: When getting information for bucket 'bucket'",
        ),
        ("nope://bucket/runs", "error: runs-dir nope://bucket/runs: Unrecognized filesystem type"),
    ],
)
def test_a_bad_object_store_runs_dir_is_one_line(store, runs_dir, says):
    result = cli(
        store, "results", "show", "r", "--runs-dir", runs_dir.format(options=store.options)
    )
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
    """Three one-epoch trials onto the bucket, one of which fails (two discriminator steps of
    its batch need more than the training set, which only the trial finds out); the spec, the
    runs-dir and the CLI's output."""
    spec = write_spec(
        tmp_path_factory.mktemp("s3") / "spec.yaml",
        name="s3run",
        search={"algorithm": "grid", "max_concurrent": 2},
        space={"batch_size": [100, 200, 3000]},
        fixed={"base_channels": 8, "n_z": 16, "fid_samples": 200, "d_steps": 2},
    )
    runs_dir = store.runs_dir("team/runs")
    result = cli(store, "sweep", "run", str(spec), "--runs-dir", runs_dir, "--address", ray_address)
    assert result.returncode == 0, result.stderr
    return spec, runs_dir, result


@pytest.mark.slow
def test_a_sweep_onto_s3_is_read_back_and_resumed(store, swept, tmp_path, ray_address):
    spec, runs_dir, first = swept
    assert "tables: s3://bucket/team/runs/s3run/tables" in first.stderr
    assert "endpoint_override" not in first.stderr  # options may hold secrets: never shown
    assert "3 trials, 2 finished, 1 failed" in first.stderr
    assert not any(spec.parent.glob("**/tables"))  # nothing went to the local disk

    rows = pq.read_table(f"{ROOT}/tables/trials", filesystem=store.fs).to_pylist()
    [failed] = [t for t in rows if t["status"] == "ERROR"]
    assert "batch_size 3000 x 2 exceeds the 4000 training images" in failed["error"]
    trials = [t for t in rows if t["status"] == "TERMINATED"]
    assert len(trials) == 2
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
    # A folder per trial, the failed one's holding only its HPARAMS session (its status).
    # The module's other tests may have logged eval/ and augment/ into the same run's tb/.
    folders = {
        p.name: p for p in local.iterdir() if p.is_dir() and p.name not in ("eval", "augment")
    }
    assert sorted(folders) == sorted(t["trial_id"] for t in rows)
    assert len(list(local.glob("*.hparams"))) == 1  # the HPARAMS experiment, in the bucket too
    assert all(len(list(folder.glob("*.hparams"))) == 1 for folder in folders.values())
    for folder in (folders[t["trial_id"]] for t in trials):
        events = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0})
        events.Reload()
        assert [s.step for s in events.Scalars("fid")] == [1]
        assert [g.step for g in events.Images("samples")] == [1]

    shown = cli(store, "results", "show", "s3run", "--runs-dir", runs_dir, "--sort", "fid")
    assert shown.returncode == 0, shown.stderr
    assert {line.split()[0] for line in shown.stdout.splitlines()[2:]} == {
        t["trial_id"] for t in rows
    }

    again = cli(store, "sweep", "run", str(spec), "--runs-dir", runs_dir, "--address", ray_address)
    assert again.returncode == 0, again.stderr
    assert "resuming run 's3run' from s3://bucket/team/runs/s3run/tune/s3run" in again.stderr
    after = pq.read_table(f"{ROOT}/tables/trials", filesystem=store.fs).to_pylist()
    assert sorted(t["trial_id"] for t in after) == sorted(t["trial_id"] for t in rows)

    other = tmp_path / "other.yaml"  # the same spec but for its epochs
    other.write_text(spec.read_text().replace("epochs: 1", "epochs: 2"))
    refused = cli(store, "sweep", "run", str(other), "--runs-dir", runs_dir)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "error: run 's3run' exists with a different spec (epochs: 1 there, 2 here; "
        "s3://bucket/team/runs/s3run/spec.yaml); pass --restart to start it over or --name "
        "for a new run"
    )

    served = served_tensorboard_runs("s3run", "--runs-dir", runs_dir, env=store.env)
    assert {t["trial_id"] for t in trials} <= set(served)


@pytest.mark.slow
def test_eval_and_grid_load_checkpoints_from_the_bucket(store, swept, ray_address):
    _, runs_dir, _ = swept
    scored = cli(
        store,
        "eval",
        "run",
        "s3run",
        "--top",
        "1",
        "--metrics",
        "fid",
        "--n",
        "50",
        "--actors",
        "1",
        "--runs-dir",
        runs_dir,
        "--address",
        ray_address,
    )
    assert scored.returncode == 0, scored.stderr
    rows = pq.read_table(f"{ROOT}/tables/eval", filesystem=store.fs).to_pylist()
    generators = {r["generator"] for r in rows if r["metric"] == "fid"}
    assert len(generators) == 2 and "reference" in generators
    assert all(r["error"] is None for r in rows)
    pngs = store.fs.get_file_info(pafs.FileSelector(f"{ROOT}/artifacts/eval", recursive=True))
    assert {"samples.png", "interpolation.png"} <= {p.base_name for p in pngs}

    grid = cli(
        store,
        "grid",
        "augment",
        "s3run",
        "--generator",
        "best",
        "--strategies",
        "mix",
        "--real",
        "0,20",
        "--generated",
        "0,20",
        "--unit",
        "count",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--actors",
        "1",
        "--runs-dir",
        runs_dir,
        "--address",
        ray_address,
    )
    assert grid.returncode == 0, grid.stderr
    cells = pq.read_table(f"{ROOT}/tables/augment", filesystem=store.fs).to_pylist()
    assert len(cells) == 3 and all(c["checkpoint"].startswith(f"s3://{ROOT}/") for c in cells)
    assert "figures: s3://bucket/team/runs/s3run/artifacts/augment (" in grid.stderr
    tb = store.fs.get_file_info(pafs.FileSelector(f"{ROOT}/tb/augment", recursive=True))
    assert any(info.base_name.startswith("events.out.tfevents") for info in tb)


def test_a_run_folder_in_a_bucket_reads_writes_and_copies(store, monkeypatch):
    for name, value in CREDENTIALS.items():  # unsigned uploads reach moto still chunk-encoded
        monkeypatch.setenv(name, value)
    run = RunDir.of(store.runs_dir("unit"), "r")
    assert run.remote and run.path("tables") == "bucket/unit/r/tables"
    assert run.location("tables") == f"s3://bucket/unit/r/tables?{store.options}"
    assert run.shown(run.path("tb")) == "s3://bucket/unit/r/tb"
    assert run.resolvable("s3://bucket/unit/r/ck") == f"s3://bucket/unit/r/ck?{store.options}"
    assert run.read_text("spec.yaml") is None
    run.write_text("spec.yaml", "name: r\n")
    assert run.existing().read_text("spec.yaml") == "name: r\n"

    with local_folder(run.location("artifacts", "x")) as folder:
        (folder / "a.png").write_bytes(b"png")
    assert store.fs.open_input_stream("bucket/unit/r/artifacts/x/a.png").read() == b"png"
    copy = Path(local_copy(run.location("artifacts")))
    assert (copy / "x" / "a.png").read_bytes() == b"png"
    with pytest.raises(FileNotFoundError, match="no folder at s3://bucket/unit/r/absent$"):
        local_copy(run.location("absent"))
    with local_folder(run.location("artifacts", "x")) as folder:
        (folder / "b.png").write_bytes(b"png")
    assert not (copy / "x" / "b.png").exists()  # a checkpoint is fetched once...
    assert (run.download(run.path("artifacts")) / "x" / "b.png").is_file()  # tb is refreshed

    run.remove("artifacts")
    run.remove("spec.yaml")
    assert store.fs.get_file_info("bucket/unit/r/artifacts").type == pafs.FileType.NotFound
    assert run.read_text("spec.yaml") is None


@pytest.mark.slow
def test_a_killed_sweep_resumes_from_the_bucket(store, tmp_path, ray_address):
    spec = write_spec(
        tmp_path / "s.yaml",
        name="killed",
        epochs=2,
        search={"algorithm": "random", "samples": 2, "max_concurrent": 1, "seed": 1},
    )
    runs_dir, root = store.runs_dir("resume"), "bucket/resume/killed"
    driver = subprocess.Popen(
        [str(GANORCH), "sweep", "run", str(spec), "--runs-dir", runs_dir, "--address", ray_address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=store.env,
        start_new_session=True,
    )
    trials = f"{root}/tables/trials"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None:
        found = store.fs.get_file_info(pafs.FileSelector(trials, allow_not_found=True))
        parts = [f.path for f in found if f.base_name.startswith("part-")]
        if any(
            row["status"] == "TERMINATED"
            for path in parts
            for row in pq.read_table(path, filesystem=store.fs).to_pylist()
        ):
            break
        time.sleep(0.5)
    assert driver.poll() is None, "the sweep ended before it could be interrupted"
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()

    result = cli(store, "sweep", "run", str(spec), "--runs-dir", runs_dir, "--address", ray_address)
    assert result.returncode == 0, result.stderr
    assert "resuming run 'killed'" in result.stderr
    stored = pq.read_table(trials, filesystem=store.fs).to_pylist()
    assert len(stored) == 2 and {r["status"] for r in stored} == {"TERMINATED"}
    epochs = pq.read_table(f"{root}/tables/epochs", filesystem=store.fs).to_pylist()
    assert sorted((r["trial_id"], r["epoch"]) for r in epochs) == sorted(
        (t["trial_id"], e) for t in stored for e in (1, 2)
    )
    # The study went on where the killed driver left it and is in the bucket: two finished
    # trials whose intermediate values are the epochs table's FIDs.
    import optuna

    with store.fs.open_input_stream(f"{root}/optuna.db") as source:
        (tmp_path / "optuna.db").write_bytes(source.read())
    study = optuna.load_study(study_name="killed", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.intermediate_values[2] for t in finished) == sorted(
        r["fid"] for r in epochs if r["epoch"] == 2
    )
    local = tmp_path / "tb"
    pafs.copy_files(f"{root}/tb", str(local), source_filesystem=store.fs)
    for trial in stored:  # a resumed trial's second event file continues the first
        events = EventAccumulator(str(local / trial["trial_id"]), size_guidance={"scalars": 0})
        events.Reload()
        assert [s.step for s in events.Scalars("fid")] == [1, 2]


def test_an_unreadable_fragment_in_a_bucket_is_named_and_set_aside(store, monkeypatch):
    from orchestrator.errors import UserError
    from orchestrator.tables import Table

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    table = Table(RunDir.of(store.runs_dir("unit"), "cut").tables, "trials")
    table.append([{"trial_id": "a"}])
    bad = table.append([{"trial_id": "b"}])
    data = store.fs.open_input_stream(bad).read()
    with store.fs.open_output_stream(bad) as stream:
        stream.write(data[:50])
    with pytest.raises(UserError, match=f"^trials table: fragment s3://{bad} cannot be read"):
        table.read()
    warnings: list[str] = []
    (moved,) = table.set_aside_unreadable(warnings.append)
    assert moved == "bucket/unit/cut/tables/trials/_quarantine/" + bad.rsplit("/", 1)[1]
    assert store.fs.open_input_stream(moved).read() == data[:50]
    assert warnings[0].startswith(f"warning: trials table: fragment s3://{bad} cannot be read")
    assert table.read().column("trial_id").to_pylist() == ["a"]


def test_a_run_in_a_bucket_is_locked_by_a_lock_object(store, monkeypatch):
    from orchestrator.errors import UserError
    from orchestrator.locks import LOCK_FILE, run_locked

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    run = RunDir.of(store.runs_dir("unit"), "locked")
    with run_locked(run, "eval run", print):
        assert '"command": "ganorch eval run"' in run.read_text(LOCK_FILE)
        refused = pytest.raises(UserError, match="^run 'locked' is in use by ganorch eval run")
        with refused, run_locked(run, "grid augment", print):
            pass
        run.write_text("spec.yaml", "name: locked\n")
    assert run.read_text(LOCK_FILE) is None and run.read_text("spec.yaml") == "name: locked\n"
