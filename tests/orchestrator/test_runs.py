"""Run folders: plain paths, file:// URIs, and a clear refusal for object stores."""

from __future__ import annotations

import pytest

from orchestrator.errors import UserError
from orchestrator.runs import RunDir


def test_a_file_uri_names_the_same_folder_as_its_path(tmp_path):
    plain = RunDir.of(str(tmp_path), "r")
    assert RunDir.of(tmp_path.as_uri(), "r") == plain
    assert RunDir.of(f"file://localhost{tmp_path}", "r") == plain
    assert plain.root == tmp_path / "r" and plain.tables == str(tmp_path / "r" / "tables")


@pytest.mark.parametrize("uri", ["s3://bucket/runs", "gs://bucket/runs", "file://host/runs"])
def test_other_uris_are_refused_with_the_way_out(uri):
    with pytest.raises(UserError, match="runs-dir") as error:
        RunDir.of(uri, "r")
    assert ("mount the bucket" in str(error.value)) == (not uri.startswith("file"))
