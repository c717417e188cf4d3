"""The eval plan: which shards, chunked how, started in which order."""

from __future__ import annotations

import pytest

from orchestrator.errors import UserError
from orchestrator.evaluate.plan import EvalGenerator, EvalSettings, plan_shards


def test_plan_asks_label_accuracy_only_of_conditional_generators():
    generators = [
        EvalGenerator("a", "trial", "/ck", conditional=False),
        EvalGenerator("b", "trial", "/ck", conditional=True),
    ]
    shards = plan_shards(
        generators, ["fid", "label_accuracy", "sharpness"], 2, EvalSettings(n=10), figures=True
    )
    keys = {
        (s.key["generator"], s.key["metric"], s.key["extractor"], s.key["seed"]) for s in shards
    }
    assert ("a", "label_accuracy", "lenet", 0) not in keys
    assert {
        ("b", "label_accuracy", "lenet", 1),
        ("a", "sharpness", "pixels", 1),
        ("a", "fid", "lenet", 0),
        ("a", "figures", "pixels", 0),
    } <= keys
    assert len(shards) == len({s.id for s in shards}) == 2 * 2 + 3 * 2 + 2


def test_plan_cuts_feature_extraction_into_chunks_and_starts_slow_shards_first():
    generators = [
        EvalGenerator("t", "trial", "/ck", conditional=True),
        EvalGenerator("s", "source", available=1200),
        EvalGenerator("small", "source", available=400),
    ]
    shards = plan_shards(
        generators,
        ["fid", "label_accuracy", "c2st", "is"],
        1,
        EvalSettings(n=2000, chunk=500, extractor="inception"),
        figures=False,
    )
    chunks = [s for s in shards if s.intermediate]
    assert shards[: len(chunks)] == chunks  # chunks first: the measures wait for them
    spans = {(c.task.generator.label, c.task.extractor): [] for c in chunks}
    for c in chunks:
        spans[c.task.generator.label, c.task.extractor].append((c.task.start, c.task.stop))
    whole = [(0, 500), (500, 1000), (1000, 1500), (1500, 2000)]
    # label_accuracy always asks the LeNet judge, so the trial has chunks of both extractors;
    # inception's serve fid (features) and is (probabilities) at once.
    assert spans == {
        ("t", "inception"): whole,
        ("t", "lenet"): whole,
        ("s", "inception"): [(0, 500), (500, 1000), (1000, 1200)],
    }
    assert all(
        c.task.features and c.task.probabilities for c in chunks if c.task.extractor == "inception"
    )
    assert not any(c.task.features for c in chunks if c.task.extractor == "lenet")
    by_key = {(s.key["generator"], s.key["metric"]): s for s in shards if not s.intermediate}
    assert by_key["t", "label_accuracy"].needs == tuple(
        f"t|chunk{a}-{b}|lenet|0|n2000" for a, b in whole
    )
    assert (
        by_key["t", "fid"].needs
        == by_key["t", "is"].needs
        == tuple(f"t|chunk{a}-{b}|inception|0|n2000" for a, b in whole)
    )
    assert by_key["t", "c2st"].needs == by_key["small", "fid"].needs == ()  # pixels; one chunk
    assert [s.key["metric"] for s in shards if not s.intermediate][:3] == ["c2st"] * 3
    with pytest.raises(UserError, match="--chunk: expected a multiple of 500, got 700"):
        plan_shards(generators, ["fid"], 1, EvalSettings(n=2000, chunk=700))
