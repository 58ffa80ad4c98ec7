"""The CUDA W4A16 kernel for AWQ int4 weights (cuda/kernels/w4a16.cu): its test binary
tests/cuda/test_w4a16.cu (GEMM vs A @ dequant(Wq) for M in {1, 2, 4, 8, 16, 17}, batch invariance)
compiles wherever nvcc does (here: no GPU), and runs where a GPU is present."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NVCC = shutil.which("nvcc")


def _build(tmp_path, arch="sm_90"):
    exe = tmp_path / "test_w4a16"
    cmd = [NVCC, "-std=c++17", "-O2", "--fmad=false", f"-arch={arch}", "-I", os.path.join(ROOT, "cuda"),
           "-o", str(exe), os.path.join(ROOT, "tests", "cuda", "test_w4a16.cu"),
           os.path.join(ROOT, "cuda", "kernels", "w4a16.cu")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"nvcc failed:\n{r.stderr[-4000:]}"
    return exe


@pytest.mark.slow
@pytest.mark.skipif(NVCC is None, reason="nvcc not installed")
def test_w4a16_compiles_for_hopper_and_orin(tmp_path):
    _build(tmp_path, "sm_90")
    r = subprocess.run([NVCC, "-std=c++17", "--fmad=false", "-arch=sm_87", "-I", os.path.join(ROOT, "cuda"), "-c",
                        os.path.join(ROOT, "cuda", "kernels", "w4a16.cu"), "-o", str(tmp_path / "w87.o")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]


@pytest.mark.cuda
@pytest.mark.skipif(NVCC is None, reason="nvcc not installed")
def test_w4a16_on_the_gpu(tmp_path):
    exe = _build(tmp_path)
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600)
    if r.returncode == 77:
        pytest.skip("no CUDA device")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "all correct" in r.stdout
