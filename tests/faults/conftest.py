"""The fault tests' shared fixture."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def mnist5k_judge() -> None:
    """The dataset's judge trained (into the session's cache) before any round, so that no
    round spends its time training it and every kill lands in the command's own work."""
    from orchestrator.judges import judge_of
    from trainables.datasets import load_dataset

    judge_of(load_dataset({"name": "mnist5k"}))
