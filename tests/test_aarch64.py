"""The aarch64 build, cross-compiled here (Debian's g++-aarch64-linux-gnu, cmake/toolchains/
aarch64-linux-gnu.cmake) into build/aarch64 and run under qemu-aarch64 (qemu-user):
  - the NEON integer-dot kernels (neon, neon_dotprod) bit-exact with the scalar reference for every
    panel type and 1..17 rows (tests/cpp/test_qdot_paths.cpp), on a CPU without the dot-product
    extension (cortex-a53: only `neon` runs) and on ones with it (cortex-a76, as Jetson Orin's
    A78AE and the Raspberry Pi 5's A76; `max`);
  - whole forward passes of tiny models (prefill, decode step, verify-sized pass) give the same
    logits bits as this x86 build's engine on the same file, and the same greedy ids (plain and
    with n-gram speculation), on both NEON paths (tests/cpp/test_greedy_trace.cpp).
Skipped only when the cross toolchain or qemu is absent; under FASTSPEC_CI=1 (set by .ci/run, which
installs both) their absence fails instead, so that CI cannot pass with this run skipped."""
import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import tiny_models as tm
from fastspec import _core

pytest.importorskip("gguf")

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "aarch64"
SYSROOT = "/usr/aarch64-linux-gnu"
IDS = [3, 17, 99, 250, 7, 41, 8, 8, 120, 61, 5, 300, 2, 77, 140, 9, 33]  # split 9 | 1 | 7
SPLIT = (9, 10)
N_TOKENS = 12

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def a64_build():
    """build/aarch64 with the two test binaries, configured and built once (a file lock keeps
    parallel workers from racing; the second build is a no-op)."""
    missing = [t for t in ("aarch64-linux-gnu-g++", "qemu-aarch64") if not shutil.which(t)]
    if missing:
        why = f"{' and '.join(missing)} not found (apt-get install g++-aarch64-linux-gnu qemu-user)"
        if os.environ.get("FASTSPEC_CI", "") not in ("", "0"):
            pytest.fail(f"FASTSPEC_CI is set: {why}", pytrace=False)
        pytest.skip(why)
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD.parent / "aarch64.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (BUILD / "build.ninja").exists():
            subprocess.run(["cmake", "-S", str(ROOT), "-B", str(BUILD), "-G", "Ninja",
                            f"-DCMAKE_TOOLCHAIN_FILE={ROOT}/cmake/toolchains/aarch64-linux-gnu.cmake",
                            "-DCMAKE_BUILD_TYPE=Release", "-DFASTSPEC_CUDA=OFF", "-DFASTSPEC_TESTS=ON"],
                           check=True, capture_output=True, text=True)
        r = subprocess.run(["cmake", "--build", str(BUILD), "-j2", "--target", "fastspec-test-qdot_paths",
                            "fastspec-test-greedy_trace"], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return BUILD / "tests" / "cpp"


def _qemu(cpu, *args, isa=None, timeout=600):
    env = dict(os.environ)
    env.pop("FASTSPEC_ISA", None)
    if isa:
        env["FASTSPEC_ISA"] = isa
    return subprocess.run(["qemu-aarch64", "-cpu", cpu, "-L", SYSROOT, *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("cpu,paths", [("cortex-a53", ["neon"]), ("cortex-a76", ["neon", "neon_dotprod"]),
                                       ("max", ["neon", "neon_dotprod"])])
def test_neon_kernels_bit_exact_with_scalar(a64_build, cpu, paths):
    r = _qemu(cpu, a64_build / "fastspec-test-qdot_paths")
    assert r.returncode == 0, r.stdout + r.stderr[-4000:]
    assert f"best path: {paths[-1]}" in r.stdout
    for p in paths:
        assert f"{p}: 0 failures (9 types, 1..17 rows)" in r.stdout, r.stdout
    if "neon_dotprod" not in paths:
        assert "neon_dotprod:" not in r.stdout


def test_forcing_a_path_the_cpu_lacks_is_an_error(a64_build, tmp_path):
    r = _qemu("cortex-a53", a64_build / "fastspec-test-qdot_paths", "neon_dotprod")
    assert r.returncode == 2 and "not a supported CPU path here (best: neon)" in r.stderr
    cfg = tm.tiny_config("llama")
    path = tmp_path / "m.gguf"
    tm.write_gguf(path, cfg, tm.random_weights(cfg, seed=3), qtype="Q4_0")
    r = _qemu("cortex-a53", a64_build / "fastspec-test-greedy_trace", path, tmp_path / "l.bin", "q8", "f16", 2,
              *IDS, isa="avx2")
    assert r.returncode != 0 and "FASTSPEC_ISA='avx2': this CPU does not support it (best here: neon)" in r.stderr


def _x86(path, precision, kv_type):
    o = _core.EngineOptions()
    o.threads, o.context = 2, 64
    o.precision, o.kv_type = precision, kv_type
    eng = _core.Engine(str(path), o)
    ctx = eng.new_context()
    logits = np.concatenate([ctx.forward(IDS[:SPLIT[0]]), ctx.forward(IDS[SPLIT[0]:SPLIT[1]]),
                             ctx.forward(IDS[SPLIT[1]:])])
    s = _core.SamplingOptions()
    s.max_tokens = N_TOKENS
    sess = eng.start(IDS, s, [])
    ids = []
    while not sess.finished:
        ids += list(sess.step())
    return logits, ids


@pytest.mark.parametrize("arch,qtype", [("llama", "Q4_0"), ("llama", "Q5_1"), ("gemma3", "Q8_0"),
                                        ("llama", "Q4_K"), ("gemma3", "Q6_K"), ("llama", "F16")])
@pytest.mark.parametrize("precision,kv_type", [("q8", "f16"), ("f32", "f32")])
def test_tiny_model_same_bits_as_x86(a64_build, tmp_path, arch, qtype, precision, kv_type):
    path = tmp_path / "m.gguf"
    tm.write_kernel_model(path, arch, qtype)
    want_logits, want_ids = _x86(path, precision, kv_type)
    for cpu, isa in [("cortex-a53", "neon"), ("cortex-a76", "neon_dotprod")]:
        out = tmp_path / f"logits-{isa}.bin"
        r = _qemu(cpu, a64_build / "fastspec-test-greedy_trace", path, out, precision, kv_type, N_TOKENS, *IDS,
                  "--", *SPLIT, isa=isa)
        assert r.returncode == 0, r.stdout + r.stderr[-4000:]
        got = np.fromfile(out, dtype=np.float32).reshape(want_logits.shape)
        assert np.array_equal(got.view(np.uint32), want_logits.view(np.uint32)), \
            f"{isa}: logits differ from x86, max |diff| {np.abs(got - want_logits).max():.3g}"
        ids = [int(t) for t in r.stdout.split("ids:")[1].split()]
        assert ids == want_ids, f"{isa}: greedy ids {ids} != x86 {want_ids}"
