"""benchmarks/gpu.py's CPU parts (the GPU rows run where CUDA is): its table has the CPU row with a
training step free of host syncs, and a rerun and a killed-and-resumed run with the same weights."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import REPO


def _row(table: str, device: str, amp: str) -> dict[str, str]:
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    for line in lines[1:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[:2] == [device, amp]:
            return dict(zip(header, cells, strict=True))
    raise AssertionError(f"no {device} {amp} row in:\n{table}")


@pytest.mark.slow
def test_the_gpu_benchmark_measures_the_cpu_and_says_where_cuda_is_absent(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/gpu.py"), "--quick", "--runs-root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    cpu = _row(result.stdout, "cpu", "off")
    assert float(cpu["epoch s"]) > 0 and float(cpu["graphs/s"]) > 0 and cpu["x CPU"] == "1.0"
    assert cpu["syncs/step: step"] == "0"  # forward, loss, backward, optimizer: nothing read back
    assert float(cpu["PyG"]) > 0  # GATv2Conv's self-loop removal, counted apart
    assert cpu["rerun"] == "identical" and cpu["resume"] == "identical"
    if torch.cuda.is_available():
        assert _row(result.stdout, "cuda", "fp32")["resume"] != "-"
    else:
        assert "CUDA: absent" in result.stdout
