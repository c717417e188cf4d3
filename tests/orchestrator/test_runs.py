"""Run folders: plain paths and file:// URIs (object stores: test_object_store.py)."""

from __future__ import annotations

import pytest

from orchestrator.errors import UserError
from orchestrator.runs import RunDir


def test_a_file_uri_names_the_same_folder_as_its_path(tmp_path):
    plain = RunDir.of(str(tmp_path), "r")
    assert RunDir.of(tmp_path.as_uri(), "r") == plain
    assert RunDir.of(f"file://localhost{tmp_path}", "r") == plain
    assert plain.root == tmp_path / "r" and plain.tables == str(tmp_path / "r" / "tables")


def test_a_file_uri_naming_another_host_is_refused():
    with pytest.raises(UserError, match="runs-dir 'file://host/runs': a file:// URI names"):
        RunDir.of("file://host/runs", "r")


def test_a_local_run_reads_and_writes_its_files(tmp_path):
    run = RunDir.of(str(tmp_path), "r")
    assert run.read_text("spec.yaml") is None and not run.remote
    run.write_text("spec.yaml", "name: r\n")
    assert (tmp_path / "r" / "spec.yaml").read_text() == "name: r\n"
    assert run.existing() is run and run.download(run.path("tb")) == tmp_path / "r" / "tb"
    run.remove("spec.yaml")
    assert not (tmp_path / "r" / "spec.yaml").exists()


@pytest.mark.parametrize(
    "name", ["../escape", "..", ".", "a/b", "/abs", "", ".hidden", "-x", "a\\b", "x" * 101]
)
def test_a_run_name_that_could_leave_the_runs_dir_is_refused(tmp_path, name):
    with pytest.raises(UserError, match=r"^run name .*: use letters, digits"):
        RunDir.of(str(tmp_path / "runs"), name)
    assert not (tmp_path / "runs").exists()


def test_every_command_path_that_takes_a_run_name_checks_it(tmp_path):
    """eval (sources only, so no sweep is needed), results show and a --source label are
    refused before anything is read or written outside the runs-dir."""
    from orchestrator.evaluate.driver import EvalRequest, run_eval
    from orchestrator.results.show import show

    runs = str(tmp_path / "runs")
    with pytest.raises(UserError, match="^run name '../escape': "):
        run_eval(EvalRequest("../escape", dataset="mnist5k", sources=("a=x",), runs_dir=runs))
    with pytest.raises(UserError, match="^run name '../other': "):
        show("../other", runs_dir=runs)
    with pytest.raises(UserError, match="^--source label '../up': use letters, digits"):
        run_eval(EvalRequest("ok", dataset="mnist5k", sources=("../up=x",), runs_dir=runs))
    assert list(tmp_path.iterdir()) == []
