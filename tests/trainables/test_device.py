"""Device and precision selection: the CPU paths run here; CUDA paths only where CUDA exists."""

from __future__ import annotations

import pytest
import torch

from orchestrator.errors import SpecError
from orchestrator.sweep.spec import parse_spec
from trainables.device import amp_dtype, loss_scaler, mixed_precision, release, select_device
from trainables.families import family_class

CPU = torch.device("cpu")


def test_no_gpu_share_or_no_cuda_means_the_cpu():
    assert select_device(0.0) == CPU
    assert select_device(0.5) == (torch.device("cuda", 0) if torch.cuda.is_available() else CPU)


@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_the_cpu_ignores_mixed_precision(amp):
    assert amp_dtype(CPU, amp) is None and loss_scaler(CPU, amp) is None
    layer = torch.nn.Linear(3, 2)
    with mixed_precision(CPU, amp):
        assert layer(torch.ones(1, 3)).dtype == torch.float32
    release(CPU)  # nothing to release, and no CUDA call on a CPU trial


def test_cuda_precision_dtypes_and_unknown_modes():
    cuda = torch.device("cuda", 0)
    assert amp_dtype(cuda, "bf16") is torch.bfloat16
    assert amp_dtype(cuda, "fp16") is torch.float16
    assert amp_dtype(cuda, "off") is None
    with pytest.raises(ValueError, match="amp must be one of off, bf16, fp16"):
        amp_dtype(CPU, "fp8")


@pytest.mark.parametrize("family", ["dcgan", "began"])
def test_a_loss_scaler_gives_the_same_update_as_plain_steps(family):
    """Scaling by a power of two and unscaling before the step changes no bit of the update."""
    config = {"base_channels": 8, "n_z": 16, "seed": 1}
    plain, scaled = (family_class(family)(config, (1, 28, 28), 10, CPU) for _ in range(2))
    scaled.loss_scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    real = [torch.rand(8, 1, 28, 28) * 2 - 1]
    labels = [torch.zeros(8, dtype=torch.long)]
    for model in (plain, scaled):
        model.train_step(real, labels)
    # The generator's gradients were unscaled before its step (Adam alone would hide a 2**10).
    for mine, theirs in zip(
        plain.generator.parameters(), scaled.generator.parameters(), strict=True
    ):
        assert torch.allclose(mine.grad, theirs.grad, rtol=1e-5, atol=1e-8)
    for name, module in plain.modules().items():
        if isinstance(module, torch.nn.Module):
            other = dict(scaled.modules())[name].state_dict()
            for key, value in module.state_dict().items():
                assert torch.allclose(value.float(), other[key].float(), atol=1e-6), (name, key)


def test_spec_gpu_shares_are_fractions_of_one_gpu_or_whole_gpus():
    base = {"name": "a", "dataset": {"name": "mnist5k"}, "family": "dcgan", "epochs": 1}
    for gpu in (0, 0.25, 0.5, 1, 2):
        assert parse_spec({**base, "resources": {"gpu": gpu}}).resources.gpu == gpu
    with pytest.raises(SpecError, match="resources.gpu: above 1 must be a whole number"):
        parse_spec({**base, "resources": {"gpu": 1.5}})


def test_spec_amp_is_checked_and_off_by_default():
    base = {"name": "a", "dataset": {"name": "mnist5k"}, "family": "dcgan", "epochs": 1}
    assert parse_spec(base).amp == "off" and "amp" not in parse_spec(base).to_dict()
    assert parse_spec({**base, "amp": "bf16"}).to_dict()["amp"] == "bf16"
    with pytest.raises(SpecError, match="amp"):
        parse_spec({**base, "amp": "fp8"})
