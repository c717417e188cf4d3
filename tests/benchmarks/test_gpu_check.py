"""`make gpu-check` on a machine without CUDA: one line, exit status 3, nothing passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the check would run")
def test_without_cuda_it_says_so_in_one_line_and_exits_3():
    env = {key: value for key, value in os.environ.items() if key != "GANORCH_GPU_CHECK_ON_CPU"}
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    output = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 3, output
    assert len(output) == 1, output
    assert "no CUDA device" in output[0] and "nothing was checked" in output[0]
    assert "PASS" not in output[0]
