"""`ganorch sweep params`: every knob of a family with its type, default and allowed values."""

from __future__ import annotations

import pytest

from trainables.families import FAMILIES

from ...conftest import run_in_process


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_params_lists_every_knob_with_its_default(family):
    result = run_in_process("sweep", "params", family)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()}
    params = FAMILIES[family].all_params()
    assert rows.keys() == params.keys()
    for name, param in params.items():
        kind, default = rows[name].split()[1:4:2]
        assert kind == param.kind.__name__, name
        if param.default != "":  # an empty default prints as blank
            assert default == str(param.default), name
        if param.choices:
            assert "one of " + ", ".join(map(str, param.choices)) in rows[name], name
        mutable = name in FAMILIES[family].mutable_params()
        assert rows[name].endswith("[mutable]") == mutable, name  # what PBT may change
    # One column each: every row's type starts where the others' does.
    assert len({line.index(f" {params[name].kind.__name__} ") for name, line in rows.items()}) == 1


def test_params_of_began_shows_its_range_and_where_it_departs_from_the_report():
    rows = {
        line.split()[0]: line
        for line in run_in_process("sweep", "params", "began").stdout.splitlines()
    }
    assert "[0, 2]" in rows["gamma"] and "report: 0.5, 0.7" in rows["gamma"]
    assert "report: 8e-5" in rows["lr"]


def test_params_of_an_unknown_family_is_one_line_and_exit_2():
    result = run_in_process("sweep", "params", "stylegan")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: unknown family 'stylegan' (known: " + ", ".join(sorted(FAMILIES)) + ")"
    ]
