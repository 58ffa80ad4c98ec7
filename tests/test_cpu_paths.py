"""Runtime CPU dispatch, end to end: every kernel path this CPU supports (scalar, avx2, avx_vnni,
avx512_vnni; `_core.cpu_paths()`) gives bit-identical logits for whole forward passes (prefill,
decode, verify-sized passes), in both precisions and both KV-cache types, on tiny llama and gemma3
models of every weight type the integer kernels cover. So a wheel's output does not depend on the
machine it runs on, and FASTSPEC_ISA only changes speed."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tiny_models as tm
from fastspec import _core

pytest.importorskip("gguf")

IDS = [3, 17, 99, 250, 7, 41, 8, 8, 120, 61, 5, 300, 2, 77, 140, 9, 33]


@pytest.fixture(autouse=True)
def restore_path():
    best = _core.cpu_path()
    yield
    _core._set_cpu_path(best)


def _logits(path, precision, kv_type):
    o = _core.EngineOptions()
    o.threads, o.context = 2, 64
    o.precision, o.kv_type = precision, kv_type
    ctx = _core.Engine(str(path), o).new_context()
    # a prefill, a decode step and a verify-sized pass on a warm cache
    return np.concatenate([ctx.forward(IDS[:9]), ctx.forward(IDS[9:10]), ctx.forward(IDS[10:])])


@pytest.mark.parametrize("arch,qtype", [("llama", "Q4_0"), ("llama", "Q4_1"), ("llama", "Q5_0"), ("llama", "Q5_1"),
                                        ("llama", "Q8_0"), ("gemma3", "Q8_0"), ("llama", "Q4_K"), ("gemma3", "Q6_K"),
                                        ("llama", "F16")])
@pytest.mark.parametrize("precision,kv_type", [("q8", "f16"), ("f32", "f32")])
def test_every_path_gives_the_same_bits(tmp_path, arch, qtype, precision, kv_type):
    path = tmp_path / "m.gguf"
    tm.write_kernel_model(path, arch, qtype)
    paths = _core.cpu_paths()
    assert paths[0] == "scalar"
    want = None
    for p in paths:
        _core._set_cpu_path(p)
        got = _logits(path, precision, kv_type)
        if want is None:
            want = got
        else:
            assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), f"{p} differs from scalar"


def test_forcing_a_path_by_environment():
    code = "from fastspec import _core; print(_core.cpu_path())"
    env = dict(os.environ, FASTSPEC_ISA="scalar")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "scalar", out.stderr
    env["FASTSPEC_ISA"] = "no_such_path"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "FASTSPEC_ISA='no_such_path'" in out.stderr


def test_forcing_an_unsupported_path_is_an_error():
    with pytest.raises(ValueError, match="unknown CPU path"):
        _core._set_cpu_path("avx1024")
    if "avx512_vnni" not in _core.cpu_paths():
        with pytest.raises(ValueError, match="not supported"):
            _core._set_cpu_path("avx512_vnni")


def test_context_and_session_keep_their_engine_alive(tmp_path):
    """Regression: a Context / Session outliving its (unreferenced) Engine used to crash."""
    import gc
    cfg = tm.tiny_config("llama")
    path = tmp_path / "m.gguf"
    tm.write_gguf(path, cfg, tm.random_weights(cfg, seed=1), qtype="Q8_0")
    o = _core.EngineOptions()
    o.context = 32
    ctx = _core.Engine(str(path), o).new_context()
    sess = _core.Engine(str(path), o).start([1, 2, 3], _core.SamplingOptions(), [])
    gc.collect()
    assert ctx.forward([1, 2, 3]).shape == (3, cfg["vocab_size"])
    assert len(sess.step()) == 1


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo") or os.uname().machine != "x86_64", reason="x86-64 Linux only")
def test_detected_paths_agree_with_proc_cpuinfo():
    """The core's cpuid/xgetbv detection (isa.cpp) against the kernel's view of the same CPU."""
    flags = set()
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    need = {"avx2": {"avx2", "fma", "f16c"}, "avx_vnni": {"avx2", "fma", "f16c", "avx_vnni"},
            "avx512_vnni": {"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"}}
    expected = ["scalar"] + [p for p in ("avx2", "avx_vnni", "avx512_vnni") if need[p] <= flags]
    assert _core.cpu_paths() == expected
