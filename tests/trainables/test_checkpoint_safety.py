"""Checkpoints are read as tensors and plain values: a crafted ``state.pt`` never runs code, and
every family's real trial state still round-trips through that loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainables.checkpoints import load_generator
from trainables.families import FAMILIES, family_class
from trainables.trainable import STATE_FILE


class CreatesFile:
    """Unpickled, it calls ``open(path, "w")``: the file appears only if loading ran code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def write_malicious_checkpoint(folder: Path, marker: Path) -> Path:
    """A folder whose ``state.pt`` has every key of a real checkpoint and a payload as model."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": CreatesFile(marker),
            "family": "dcgan",
            "config": {"n_z": 16},
            "image_shape": (1, 28, 28),
            "num_classes": 10,
            "epoch": 1,
        },
        folder / STATE_FILE,
    )
    return folder


def test_the_generator_loader_refuses_a_checkpoint_that_would_run_code(tmp_path):
    marker = tmp_path / "ran"
    folder = write_malicious_checkpoint(tmp_path / "checkpoint", marker)
    with pytest.raises(ValueError) as error:
        load_generator(folder)
    message = str(error.value)
    assert str(folder / STATE_FILE) in message and "(io.open)" in message
    assert "\n" not in message and "weights_only" not in message
    assert not marker.exists()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_a_trial_state_of_every_family_round_trips_through_the_safe_loader(tmp_path, name):
    from evaluators.weights_file import load_weights
    from trainables.trainable import trial_state

    config = {"seed": 3}
    if "base_channels" in family_class(name).all_params():
        config |= {"base_channels": 8, "n_z": 16}
    model = family_class(name)(config, (1, 28, 28), 10, torch.device("cpu"))
    per_step = model.real_batches_per_step
    model.train_step(
        [torch.rand(8, 1, 28, 28) * 2 - 1 for _ in range(per_step)],
        [torch.randint(10, (8,)) for _ in range(per_step)],
    )
    batches = torch.Generator().manual_seed(5)
    torch.randperm(10, generator=batches)
    torch.save(trial_state(model, 2, float("inf"), batches), tmp_path / STATE_FILE)

    state = load_weights(tmp_path / STATE_FILE)
    assert (state["epoch"], state["best_fid"], state["family"]) == (2, float("inf"), name)
    assert torch.equal(state["rng"], batches.get_state())
    rebuilt = load_generator(tmp_path)
    rebuilt.load_state_dict(state["model"])  # the optimisers and counters too, as on resume
    assert same(rebuilt.state_dict(), model.state_dict())
    z = model.latent(4, torch.Generator().manual_seed(0))
    labels = torch.arange(4)
    model.train(False)
    torch.testing.assert_close(rebuilt.sample(z, labels), model.sample(z, labels), rtol=0, atol=0)


def same(a, b) -> bool:
    """Equal nested state: tensors bit for bit, containers item by item, the rest by ==."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return a == b
