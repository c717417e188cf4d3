"""`ganorch sweep run` end to end through the installed console script on a real local Ray."""

from __future__ import annotations

import json
import math
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

from orchestrator.tables import Table
from trainables.families import family_class

from ... import browser
from ...conftest import run_cli, served_tensorboard_runs, write_spec

pytestmark = pytest.mark.slow


def sweep(spec: Path, runs: Path, address: str, *extra: str) -> subprocess.CompletedProcess:
    result = run_cli(
        "sweep", "run", str(spec), "--runs-dir", str(runs), "--address", address, *extra
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def hparams_of(tb: Path) -> tuple[Any, dict[str, tuple[Any, Any]]]:
    """The experiment summary at ``tb`` and (session start, session end) per trial folder."""
    runs = EventMultiplexer()
    runs.AddRunsFromDirectory(str(tb))
    runs.Reload()
    experiment, sessions = None, {}
    for name, tags in runs.PluginRunToTagToContent(metadata.PLUGIN_NAME).items():
        data = {tag: plugin_data_pb2.HParamsPluginData.FromString(c) for tag, c in tags.items()}
        if name == ".":
            experiment = data[metadata.EXPERIMENT_TAG].experiment
        else:
            sessions[name] = (
                data[metadata.SESSION_START_INFO_TAG].session_start_info,
                data[metadata.SESSION_END_INFO_TAG].session_end_info,
            )
    return experiment, sessions


E2E_SPACE = {"lr": {"loguniform": [2e-4, 2e-3]}, "g_layers": {"int": [2, 3]}}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, ray_address):
    """One real two-trial, two-epoch sweep shared by the read-back tests below."""
    tmp = tmp_path_factory.mktemp("sweep")
    spec = write_spec(tmp / "spec.yaml", name="e2e", epochs=2, space=E2E_SPACE)
    result = sweep(spec, tmp / "runs", ray_address)
    assert result.returncode == 0, result.stderr
    return tmp / "runs" / "e2e", result


def test_trials_table_has_every_trial_with_finite_fid(finished_run):
    run, result = finished_run
    trials = pq.read_table(run / "tables" / "trials")  # plain pyarrow, no ganorch reader
    rows = trials.to_pylist()
    assert len(rows) == 2 and {r["status"] for r in rows} == {"TERMINATED"}
    assert all(r["epochs"] == 2 and 0 < r["best_fid"] < 1e4 for r in rows)
    assert trials.schema.field("config/lr").type == "double"
    assert trials.schema.field("config/g_layers").type == "int64"
    assert trials.schema.metadata[b"ganorch.schema_version"] == b"1"
    epochs = pq.read_table(run / "tables" / "epochs").to_pylist()
    for row in rows:
        best = min((e for e in epochs if e["trial_id"] == row["trial_id"]), key=lambda e: e["fid"])
        assert (row["best_fid"], row["best_epoch"]) == (best["fid"], best["epoch"])
        assert row["checkpoint"] == best["checkpoint"]  # the best epoch's, kept by Tune
        assert (Path(row["checkpoint"]) / "state.pt").is_file()
        assert (Path(row["last_checkpoint"]) / "state.pt").is_file()
    assert "2 trials, 2 finished, 0 failed" in result.stderr
    assert "[e2e] trials 2/2" in result.stderr  # the progress line
    # resources.gpu is auto (the spec gives none): 0 on this GPU-less Ray, said and recorded,
    # while spec.yaml keeps "auto" so a resume on a cluster with GPUs is the same spec.
    assert "resources.gpu: auto -> 0 per trial (no GPU on the cluster)" in result.stderr
    written = (run / "spec.yaml").read_text()
    assert written.endswith("# resources.gpu: auto -> 0 per trial (no GPU on the cluster)\n")
    assert yaml.safe_load(written)["resources"] == {"cpu": 1.0, "gpu": "auto"}
    assert {r["gpus"] for r in rows} == {0.0}


def test_epochs_table_has_one_row_per_trial_epoch(finished_run):
    run, _ = finished_run
    epochs = pq.read_table(run / "tables" / "epochs").to_pylist()
    assert Counter((r["trial_id"], r["epoch"]) for r in epochs).most_common(1)[0][1] == 1
    assert sorted(r["epoch"] for r in epochs) == [1, 1, 2, 2]
    for row in epochs:
        for metric in ("g_loss", "d_loss", "fid", "best_fid", "images_per_s", "epoch_s"):
            assert isinstance(row[metric], float), metric
        assert row["images_per_s"] > 0


def test_tensorboard_holds_scalars_and_sample_grids(finished_run):
    run, _ = finished_run
    trial_dirs = sorted(p for p in (run / "tb").iterdir() if p.is_dir())
    assert len(trial_dirs) == 2
    for folder in trial_dirs:
        events = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0})
        events.Reload()
        assert {"fid", "g_loss", "d_loss", "images_per_s"} <= set(events.Tags()["scalars"])
        assert [s.step for s in events.Scalars("fid")] == [1, 2]
        grids = events.Images("samples")
        assert [g.step for g in grids] == [1, 2]
        assert (grids[0].width, grids[0].height) == (8 * 28 + 9 * 2,) * 2  # 8x8, padding 2


def test_tensorboard_has_the_hparams_of_every_trial(finished_run):
    """The HPARAMS tab's data, read back with TensorBoard's own reader: the searched knobs
    with the spec's domains, the metrics, and one session per trial with its table values."""
    run, _ = finished_run
    experiment, sessions = hparams_of(run / "tb")
    infos = {info.name: info for info in experiment.hparam_infos}
    lr, layers = infos["lr"].domain_interval, infos["g_layers"].domain_interval
    assert (lr.min_value, lr.max_value) == (2e-4, 2e-3)
    assert (layers.min_value, layers.max_value) == (2, 3)
    assert [v.number_value for v in infos["base_channels"].domain_discrete.values] == [8]
    assert [v.string_value for v in infos["family"].domain_discrete.values] == ["dcgan"]
    metrics = [m.name.tag for m in experiment.metric_infos]
    assert metrics[0] == "best_fid" and {"fid", "d_loss", "g_loss"} <= set(metrics)
    trials = Table(str(run / "tables"), "trials").read().to_pylist()
    assert sessions.keys() == {t["trial_id"] for t in trials}
    for trial in trials:
        start, end = sessions[trial["trial_id"]]
        assert start.hparams["lr"].number_value == trial["config/lr"]
        assert start.hparams["g_layers"].number_value == trial["config/g_layers"]
        assert end.status == api_pb2.STATUS_SUCCESS


def test_report_page_shows_every_section_and_loads_every_image(finished_run, tmp_path):
    run, _ = finished_run
    result = run_cli("report", "e2e", "--runs-dir", str(run.parent))
    assert result.returncode == 0, result.stderr
    page = run / "report" / "index.html"
    assert result.stdout.strip() == f"wrote {page}"
    text = page.read_text()
    for heading in (
        "Spec",
        "Trials",
        "fid by epoch",
        "best_fid against each searched",
        "TensorBoard",
    ):
        assert f"<h2>{heading}" in text, heading
    assert "Hyperparameter importance" not in text  # two trials are too few for a ranking
    trials = Table(str(run / "tables"), "trials").read().to_pylist()
    sources = re.findall(r'<img src="([^"]+)"', text)
    assert {"curves.png", "hyperparameters.png"} <= set(sources)
    assert {f"samples-{t['trial_id']}.png" for t in trials} <= set(sources)
    for source in sources:  # beside the page, nothing fetched from elsewhere
        assert (page.parent / source).is_file() and "://" not in source
    if browser.chromium() is None:
        pytest.skip(f"headless Chromium not installed: {browser.INSTALL_HINT}")
    loaded, rows = browser.evaluate_on_page(
        page,
        "[[...document.images].map(i => i.complete && i.naturalWidth),"
        " document.querySelectorAll('#trials tbody tr').length]",
        screenshot=tmp_path / "report.png",
    )
    assert len(loaded) == len(sources) and all(width > 0 for width in loaded), loaded
    assert rows == len(trials)
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_best_checkpoint_restores_the_generator(finished_run):
    from trainables.families import family_class

    run, _ = finished_run
    row = Table(str(run / "tables"), "trials").read().to_pylist()[0]
    state = torch.load(Path(row["checkpoint"]) / "state.pt", weights_only=True)
    model = family_class(state["family"])(
        state["config"], state["image_shape"], state["num_classes"], torch.device("cpu")
    )
    model.load_state_dict(state["model"])
    model.train(False)
    images = model.sample(model.latent(4))
    assert images.shape == (4, 1, 28, 28) and images.abs().max() <= 1


def test_results_show_formats(finished_run):
    run, _ = finished_run
    runs = str(run.parent)
    table = run_cli("results", "show", "e2e", "--runs-dir", runs, "--sort", "fid")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:5] == ["trial_id", "status", "stopped_early", "epochs", "best_fid"]
    assert "checkpoint" not in lines[0]  # paths stay in csv/json, out of the terminal view
    fids = [float(line.split()[4]) for line in lines[2:]]
    assert fids == sorted(fids) and len(fids) == 2
    as_json = json.loads(
        run_cli(
            "results", "show", "e2e", "--runs-dir", runs, "--format", "json", "--top", "1"
        ).stdout
    )
    assert len(as_json) == 1 and "config/lr" in as_json[0]
    csv = run_cli(
        "results", "show", "e2e", "--runs-dir", runs, "--table", "epochs", "--format", "csv"
    ).stdout.splitlines()
    assert csv[0].startswith("trial_id,epoch") and len(csv) == 5
    bad = run_cli("results", "show", "e2e", "--runs-dir", runs, "--sort", "nope")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --sort: no column 'nope'")


def test_results_show_group_by_gives_the_t_interval(finished_run):
    run, _ = finished_run
    runs = str(run.parent)
    fids = [r["best_fid"] for r in Table(str(run / "tables"), "trials").read().to_pylist()]
    shown = run_cli(
        "results", "show", "e2e", "--runs-dir", runs, "--group-by", "status", "--format", "json"
    )
    assert shown.returncode == 0, shown.stderr
    [group] = json.loads(shown.stdout)
    mean, std = sum(fids) / 2, abs(fids[0] - fids[1]) / math.sqrt(2)
    half_width = math.tan(math.pi * 0.475) * std / math.sqrt(2)  # t_{0.975,1}: Cauchy quantile
    assert group == {
        "status": "TERMINATED",
        "n": 2,
        "mean": pytest.approx(mean),
        "std": pytest.approx(std),
        "ci_low": pytest.approx(mean - half_width),
        "ci_high": pytest.approx(mean + half_width),
    }
    bad = run_cli("results", "show", "e2e", "--runs-dir", runs, "--group-by", "nope")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith(
        "error: --group-by: no column 'nope' in the trials table (columns: trial_id, "
    )


def test_rerunning_a_finished_run_changes_nothing(finished_run, ray_address):
    """Not even when its (compacted) table fragments were cut short meanwhile: the rerun
    moves them aside and writes their rows back from Tune's results."""
    run, _ = finished_run
    trials, epochs = (Table(str(run / "tables"), name) for name in ("trials", "epochs"))
    before = trials.read().to_pylist()
    epoch_rows = sorted(epochs.read().to_pylist(), key=lambda r: (r["trial_id"], r["epoch"]))
    fragments = [Path(table.fragments()[0]) for table in (trials, epochs)]
    for fragment in fragments:
        fragment.write_bytes(fragment.read_bytes()[:100])
    again = sweep(run.parent.parent / "spec.yaml", run.parent, ray_address)
    assert again.returncode == 0, again.stderr
    assert "resuming run 'e2e'" in again.stderr
    for name, fragment in zip(("trials", "epochs"), fragments, strict=True):
        assert f"warning: {name} table: fragment {fragment} cannot be read" in again.stderr
        assert (fragment.parent / "_quarantine" / fragment.name).is_file()
    by_trial = {r["trial_id"]: r for r in before}
    assert {r["trial_id"]: r for r in trials.read().to_pylist()} == by_trial
    rewritten = sorted(epochs.read().to_pylist(), key=lambda r: (r["trial_id"], r["epoch"]))
    assert [(r["trial_id"], r["epoch"], r["checkpoint"]) for r in rewritten] == [
        (r["trial_id"], r["epoch"], r["checkpoint"]) for r in epoch_rows
    ]
    assert [r["fid"] for r in rewritten] == pytest.approx([r["fid"] for r in epoch_rows])


def study_of(run: Path):
    import optuna

    return optuna.load_study(study_name=run.name, storage=f"sqlite:///{run / 'optuna.db'}")


def test_the_optuna_study_is_kept_in_the_run_folder(finished_run):
    """optuna.load_study opens runs/<name>/optuna.db: every trial with the parameters Tune ran,
    each epoch's FID as an intermediate value, and the last as its value."""
    import optuna

    run, _ = finished_run
    study = study_of(run)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    trials = pq.read_table(run / "tables" / "trials").to_pylist()
    epochs = pq.read_table(run / "tables" / "epochs").to_pylist()
    assert len(study.trials) == len(trials) == 2
    for stored in study.trials:
        assert stored.state == optuna.trial.TrialState.COMPLETE
        (row,) = [
            r
            for r in trials
            if (r["config/lr"], r["config/g_layers"])
            == (stored.params["lr"], stored.params["g_layers"])
        ]
        curve = {e["epoch"]: e["fid"] for e in epochs if e["trial_id"] == row["trial_id"]}
        assert stored.intermediate_values == curve
        assert stored.value == curve[2]


def test_asha_stops_a_trial_below_the_rung_and_the_study_keeps_its_last_epoch(
    tmp_path, ray_address
):
    """Three trials one at a time, lr 1e-3 or 1e-7 (which barely moves the generator): with the
    seeded sampler the third is a 1e-7 trial whose epoch-1 FID is worse than the rung's cutoff
    set by the two before it, so ASHA stops it after one epoch. The study still holds that
    epoch (Tune hands a stopping result to on_trial_complete only)."""
    import optuna

    spec = write_spec(
        tmp_path / "asha.yaml",
        name="asha",
        epochs=2,
        search={"algorithm": "optuna", "samples": 3, "max_concurrent": 1, "seed": 0},
        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2},
        space={"lr": [1.0e-3, 1.0e-7]},
    )
    result = sweep(spec, tmp_path / "runs", ray_address)
    assert result.returncode == 0, result.stderr
    run = tmp_path / "runs" / "asha"
    trials = pq.read_table(run / "tables" / "trials").to_pylist()
    stopped = [t for t in trials if t["stopped_early"]]
    assert stopped and all(t["epochs"] == 1 and t["config/lr"] == 1e-7 for t in stopped)
    assert all(t["epochs"] == 2 for t in trials if not t["stopped_early"])
    assert not any(t["stopped_early"] for t in trials if t["config/lr"] == 1e-3)
    epochs = pq.read_table(run / "tables" / "epochs").to_pylist()
    curves = sorted(
        tuple(e["fid"] for e in sorted(epochs, key=lambda e: e["epoch"]) if e["trial_id"] == t)
        for t in {t["trial_id"] for t in trials}
    )
    study = study_of(run)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert sorted(tuple(t.intermediate_values.values()) for t in study.trials) == curves
    assert sorted(t.value for t in study.trials) == sorted(curve[-1] for curve in curves)


def test_trials_that_tune_no_longer_knows_are_refused_with_restart_offered(finished_run, tmp_path):
    """A finished trial in the tables that the experiment lacks (another sweep's), and trials
    with no experiment at all (tune/ deleted): both refused before anything runs."""
    from orchestrator.errors import UserError
    from orchestrator.runs import RunDir
    from orchestrator.sweep.run_folder import check_tables_match_tune

    run, _ = finished_run
    tables = Table(str(run / "tables"), "trials")
    check_tables_match_tune(RunDir.of(str(run.parent), "e2e"), resuming=True)
    ghost = Path(tables.append([{"trial_id": "ghost01", "status": "TERMINATED"}]))
    try:
        with pytest.raises(UserError) as refused:
            check_tables_match_tune(RunDir.of(str(run.parent), "e2e"), resuming=True)
    finally:
        ghost.unlink()
    assert str(refused.value) == (
        "run 'e2e' holds 1 finished trials in its tables (ghost01) that its Tune experiment "
        f"{run / 'tune' / 'e2e'} does not know; pass --restart to start the run over "
        "(discarding them)"
    )
    Table(str(tmp_path / "lost" / "tables"), "trials").append([{"trial_id": "t1"}])
    with pytest.raises(UserError, match=r"^run 'lost' holds 1 trials in its tables but no Tune"):
        check_tables_match_tune(RunDir.of(str(tmp_path), "lost"), resuming=False)


def test_a_different_spec_under_the_same_name_is_refused(finished_run, ray_address, tmp_path):
    run, _ = finished_run
    other = write_spec(tmp_path / "other.yaml", name="e2e", epochs=3, space=E2E_SPACE)
    result = sweep(other, run.parent, ray_address)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: run 'e2e' exists with a different spec (epochs: 2 there, 3 here; "
        f"{run / 'spec.yaml'}); pass --restart to start it over or --name for a new run"
    ]


def test_overrides_are_part_of_the_run_they_start_and_restart_starts_it_over(tmp_path, ray_address):
    """A smoke run (--samples 1 --epochs 1) of a spec whose grace period exceeds one epoch:
    the run folder records the spec as run, so the same command resumes it and the spec
    without the overrides is refused under the same name."""
    spec = write_spec(
        tmp_path / "s.yaml", name="smoke", epochs=3, scheduler={"name": "asha", "grace_period": 2}
    )
    runs = tmp_path / "runs"
    result = sweep(spec, runs, ray_address, "--samples", "1", "--epochs", "1")
    assert result.returncode == 0, result.stderr
    assert "1 trials of dcgan, 1 epochs" in result.stderr
    epochs = pq.read_table(runs / "smoke" / "tables" / "epochs").to_pylist()
    assert [r["epoch"] for r in epochs] == [1]
    stored = yaml.safe_load((runs / "smoke" / "spec.yaml").read_text())
    assert (stored["epochs"], stored["search"]["samples"], stored["scheduler"]["grace_period"]) == (
        1,
        1,
        1,
    )
    again = sweep(spec, runs, ray_address, "--samples", "1", "--epochs", "1")
    assert again.returncode == 0 and "resuming run 'smoke'" in again.stderr
    assert [t.state.name for t in study_of(runs / "smoke").trials] == ["COMPLETE"]  # continued
    full = sweep(spec, runs, ray_address)
    assert full.returncode == 2
    assert full.stderr.startswith(
        "error: run 'smoke' exists with a different spec (epochs: 1 there, 3 here; "
        "search.samples: 1 there, 2 here; scheduler.grace_period: 1 there, 2 here; "
    )
    # --restart discards the run (trials, tables, TensorBoard) and starts this spec instead.
    trials = Table(str(runs / "smoke" / "tables"), "trials")
    first = set(trials.read().column("trial_id").to_pylist())
    restarted = sweep(spec, runs, ray_address, "--samples", "2", "--epochs", "1", "--restart")
    assert restarted.returncode == 0, restarted.stderr
    assert "starting run 'smoke'" in restarted.stderr
    rows = trials.read().to_pylist()
    assert len(rows) == 2 and not first & {r["trial_id"] for r in rows}
    # The restarted run's study holds its own two trials, not the smoke run's one.
    assert len(study_of(runs / "smoke").trials) == 2
    assert sorted(p.name for p in (runs / "smoke" / "tb").iterdir() if p.is_dir()) == sorted(
        r["trial_id"] for r in rows
    )


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path, ray_address):
    # batch_size alone fits the training split (a larger one is refused before the start);
    # two discriminator steps of it do not, which only the trial finds out.
    spec = write_spec(
        tmp_path / "s.yaml",
        name="fails",
        search={"algorithm": "grid", "max_concurrent": 1},
        space={"d_steps": [1, 2]},
        fixed={"base_channels": 8, "n_z": 16, "fid_samples": 200, "batch_size": 3000},
    )
    result = sweep(spec, tmp_path / "runs", ray_address)
    assert result.returncode == 0, result.stderr
    assert "2 trials, 1 finished, 1 failed" in result.stderr
    rows = {
        r["config/d_steps"]: r
        for r in Table(str(tmp_path / "runs" / "fails" / "tables"), "trials").read().to_pylist()
    }
    assert rows[1]["status"] == "TERMINATED" and rows[1]["error"] is None
    assert rows[2]["status"] == "ERROR"
    assert "batch_size 3000 x 2 exceeds the 4000 training images" in rows[2]["error"]
    assert "\n" not in rows[2]["error"]
    _, sessions = hparams_of(tmp_path / "runs" / "fails" / "tb")  # the failed trial too
    assert sessions[rows[2]["trial_id"]][1].status == api_pb2.STATUS_FAILURE
    assert sessions[rows[1]["trial_id"]][1].status == api_pb2.STATUS_SUCCESS


def test_tensorboard_command_serves_the_run_on_loopback(finished_run):
    run, _ = finished_run
    runs = served_tensorboard_runs("e2e", "--runs-dir", str(run.parent))
    trial_dirs = {p.name for p in (run / "tb").iterdir() if p.is_dir()}
    assert trial_dirs and trial_dirs | {"."} == set(runs)  # "." holds the HPARAMS experiment


def test_tensorboard_for_an_unknown_run_exits_2(tmp_path):
    result = run_cli("tensorboard", "absent", "--runs-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: no run named 'absent' under {tmp_path}"


ALL_FAMILIES = ["dcgan", "cdcgan", "cgan", "acgan", "wgan", "began", "vae", "cvae"]
CONDITIONAL = ["acgan", "cdcgan", "cgan"]


def test_one_sweep_over_every_family_with_prefixed_keys(tmp_path, ray_address):
    """One grid point per family, one tiny epoch each: every trial finishes and the epochs
    table holds each family's own losses and metrics, finite; the conditional families, with
    classifier feedback on, report the judge's label accuracy and Inception Score."""
    conv = [f for f in ALL_FAMILIES if f != "cgan"]  # the dense CGAN has no base_channels
    spec = write_spec(
        tmp_path / "s.yaml",
        name="mixed",
        family=ALL_FAMILIES,
        search={"algorithm": "grid"},
        resources={"cpu": 1},
        space={"wgan.n_critic": [2], "vae.kl_weight": [0.5], "began.betas": ["1-1-0"]},
        fixed={
            "n_z": 16,
            "batch_size": 100,
            "fid_samples": 200,
            "cgan.hidden_units": 64,
            "began.base_channels": 4,
            "cdcgan.label_input": "conv",
            **{f"{f}.base_channels": 8 for f in conv if f != "began"},
            # the trainable attaches the judge, and conditional families feed it back to G
            **{f"{f}.classifier_feedback": 0.5 for f in CONDITIONAL},
        },
    )
    result = sweep(spec, tmp_path / "runs", ray_address)
    assert result.returncode == 0, result.stderr
    tables = str(tmp_path / "runs" / "mixed" / "tables")
    rows = {r["family"]: r for r in pq.read_table(f"{tables}/trials").to_pylist()}
    assert sorted(rows) == sorted(ALL_FAMILIES)
    assert all(r["status"] == "TERMINATED" and r["best_fid"] > 0 for r in rows.values())
    assert rows["wgan"]["config/n_critic"] == 2 and rows["dcgan"]["config/n_critic"] is None
    assert rows["vae"]["config/kl_weight"] == 0.5 and rows["wgan"]["config/kl_weight"] is None
    # the trials table records the weights the betas string set, not the knobs' defaults
    began = rows["began"]
    assert (
        began["config/betas"],
        began["config/beta_l1"],
        began["config/beta_gmsm"],
        began["config/beta_chrom"],
    ) == ("1-1-0", 1.0, 1.0, 0.0)
    epochs = {r["trial_id"]: r for r in pq.read_table(f"{tables}/epochs").to_pylist()}
    for family, row in rows.items():
        cls = family_class(family)
        epoch = epochs[row["trial_id"]]
        expected = set(cls.reported_metrics()) - {"chrom_real", "chrom_fake"}
        for metric in expected:
            assert isinstance(epoch[metric], float) and math.isfinite(epoch[metric]), (
                family,
                metric,
            )
    for family in CONDITIONAL:
        epoch = epochs[rows[family]["trial_id"]]
        assert 0 <= epoch["label_accuracy"] <= 1 and 1 <= epoch["inception_score"] <= 10
        assert rows[family]["config/classifier_feedback"] == 0.5
    assert 0 <= epochs[rows["acgan"]["trial_id"]]["d_class_acc"] <= 1
    assert epochs[rows["vae"]["trial_id"]]["kl"] > 0
    assert 0 <= epochs[began["trial_id"]]["k_t"] <= 1
    # grey digits have no chrominance: BEGAN reports it as NaN rather than a fake 0
    assert math.isnan(epochs[began["trial_id"]]["chrom_real"])
