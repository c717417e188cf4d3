"""Bad or hostile input through the installed console script: one `error:` line, exit code 2,
nothing run and nothing created."""

from __future__ import annotations

from tests.trainables.test_checkpoint_safety import write_malicious_checkpoint

from ..conftest import run_cli


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
