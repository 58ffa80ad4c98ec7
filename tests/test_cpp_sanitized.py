"""The sanitizer build (cmake/sanitize.cmake, FASTSPEC_SANITIZE=address,undefined): the core, the
Python extension and the C++ test binaries (tests/cpp/) built with ASan + UBSan into build/sanitize,
then
  - the C++ test binaries run clean on tiny models of each architecture, with LeakSanitizer on
    (1,000 sessions of every lifetime, several threads on one engine);
  - a subset of the Python suite (loaders, tokenizer glue, engine on tiny models, threads,
    speculative loop, samplers) runs clean with that extension (ASan runtime preloaded; leak
    checking off there, since CPython itself does not free everything at exit).
Any sanitizer report aborts the process (-fno-sanitize-recover, halt_on_error), failing the test.
Skipped only when g++ has no ASan runtime."""
import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("gguf")

import tiny_models as tm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "sanitize"
SANITIZERS = "address,undefined"
PY_SUBSET = ["tests/test_gguf_loader.py", "tests/test_gguf_bad.py", "tests/test_safetensors.py",
             "tests/test_safetensors_bad.py", "tests/test_fuzz.py", "tests/test_tokenizer.py",
             "tests/test_engine.py", "tests/test_threads.py", "tests/test_spec_engine.py",
             "tests/test_sampler.py", "tests/test_spec_sampler.py", "tests/test_tree_attention.py",
             "tests/test_tree_engine.py"]

pytestmark = pytest.mark.slow


def _runtime(name):
    out = subprocess.run(["g++", f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return out if os.path.isabs(out) and os.path.exists(out) else None


def _san_env(leaks):
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = f"detect_leaks={int(leaks)}:abort_on_error=0:halt_on_error=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    env["LSAN_OPTIONS"] = "report_objects=1"
    return env


@pytest.fixture(scope="session")
def san_build():
    """build/sanitize, configured and built once (a file lock keeps parallel workers from racing;
    ninja makes the second worker's build a no-op)."""
    if not _runtime("libasan.so"):
        pytest.skip("g++ has no AddressSanitizer runtime (libasan)")
    import pybind11

    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD.parent / "sanitize.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (BUILD / "build.ninja").exists():
            subprocess.run(["cmake", "-S", str(ROOT), "-B", str(BUILD), "-G", "Ninja",
                            "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DFASTSPEC_CUDA=OFF", "-DFASTSPEC_TESTS=ON",
                            "-DFASTSPEC_PYTHON=ON", f"-DFASTSPEC_SANITIZE={SANITIZERS}",
                            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
                            f"-DPython_EXECUTABLE={sys.executable}"],
                           check=True, capture_output=True)
        r = subprocess.run(["cmake", "--build", str(BUILD), "-j", str(os.cpu_count() or 2)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return BUILD


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Tiny random GGUFs: llama in Q8_0 (GQA, tied), gemma3 in Q4_0, llama in Q4_K (K-quants)."""
    d = tmp_path_factory.mktemp("san_models")
    paths = {}
    for name, arch, qtype in [("llama_q8_0", "llama", "Q8_0"), ("gemma3_q4_0", "gemma3", "Q4_0"),
                              ("llama_q4_k", "llama", "Q4_K")]:
        cfg = tm.tiny_config(arch, vocab=400, hidden=256 if qtype == "Q4_K" else 64, intermediate=512 if qtype == "Q4_K" else None)
        paths[name] = str(d / f"{name}.gguf")
        tm.write_gguf(paths[name], cfg, tm.random_weights(cfg, seed=2), qtype=qtype)
    return paths


def _check_instrumented(binary):
    libs = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    assert "libasan" in libs and "libubsan" in libs, f"{binary} is not linked with the sanitizers:\n{libs}"


def _run(cmd, env, timeout=600):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    report = (r.stdout[-6000:] + "\n" + r.stderr[-12000:])
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{report}"
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, report
    return r


@pytest.mark.parametrize("isa", ["best", "scalar"])
@pytest.mark.parametrize("model", ["llama_q8_0", "gemma3_q4_0", "llama_q4_k"])
def test_engine_lifecycle_binary(san_build, tiny_models, model, isa):
    """The best SIMD path this CPU has, and the portable scalar reference (FASTSPEC_ISA)."""
    exe = san_build / "tests" / "cpp" / "fastspec-test-engine_lifecycle"
    _check_instrumented(exe)
    env = _san_env(leaks=True)
    if isa != "best":
        env["FASTSPEC_ISA"] = isa
    r = _run([str(exe), tiny_models[model], "1000"], env)
    assert "0 failures (1000 sessions)" in r.stdout


def test_sampling_binary(san_build):
    exe = san_build / "tests" / "cpp" / "fastspec-test-sampling"
    _check_instrumented(exe)
    assert "0 failures" in _run([str(exe)], _san_env(leaks=True)).stdout


def test_controller_binary(san_build):
    """The draft-length controller on synthetic timings (tests/cpp/test_controller.cpp): losing
    tree shapes probed ever more rarely, trees slower than plain never chosen, greedy costs carried
    to the next session, sampled ones not."""
    exe = san_build / "tests" / "cpp" / "fastspec-test-controller"
    _check_instrumented(exe)
    assert "controller: 0 failures" in _run([str(exe)], _san_env(leaks=True)).stdout


@pytest.mark.parametrize("model", ["llama_q8_0", "gemma3_q4_0"])
def test_scheduler_threads_binary(san_build, tiny_models, model):
    """16 client threads on one scheduler: submit, stream, cancel, close in flight (tests/cpp/
    test_scheduler_threads.cpp), LeakSanitizer on."""
    exe = san_build / "tests" / "cpp" / "fastspec-test-scheduler_threads"
    _check_instrumented(exe)
    r = _run([str(exe), tiny_models[model], "3"], _san_env(leaks=True))
    assert "0 failures (3 rounds of 16 clients)" in r.stdout


TSAN = ROOT / "build" / "tsan"


@pytest.fixture(scope="session")
def tsan_build():
    """build/tsan: the threaded C++ test binaries with ThreadSanitizer (FASTSPEC_SANITIZE=thread)."""
    if not _runtime("libtsan.so"):
        pytest.skip("g++ has no ThreadSanitizer runtime (libtsan)")
    TSAN.mkdir(parents=True, exist_ok=True)
    with open(TSAN.parent / "tsan.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (TSAN / "build.ninja").exists():
            subprocess.run(["cmake", "-S", str(ROOT), "-B", str(TSAN), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                            "-DFASTSPEC_CUDA=OFF", "-DFASTSPEC_TESTS=ON", "-DFASTSPEC_SANITIZE=thread",
                            "-DFASTSPEC_CPP_LIBRARY=OFF"], check=True, capture_output=True)
        r = subprocess.run(["cmake", "--build", str(TSAN), "-j", str(os.cpu_count() or 2), "--target",
                            "fastspec-test-scheduler_threads", "fastspec-test-engine_lifecycle"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return TSAN


@pytest.mark.parametrize("binary,args,expect", [
    ("fastspec-test-scheduler_threads", ["2"], "0 failures (2 rounds of 16 clients)"),
    ("fastspec-test-engine_lifecycle", ["200"], "0 failures (200 sessions)")])
def test_threads_under_thread_sanitizer(tsan_build, tiny_models, binary, args, expect):
    """Data races in the thread pool, the engine's compute lock and the scheduler fail the run."""
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1")
    r = subprocess.run([str(tsan_build / "tests" / "cpp" / binary), tiny_models["llama_q8_0"], *args], env=env,
                       capture_output=True, text=True, timeout=900, cwd=ROOT)
    report = r.stdout[-4000:] + "\n" + r.stderr[-8000:]
    assert r.returncode == 0 and "ThreadSanitizer" not in r.stderr, report
    assert expect in r.stdout, report


def test_qdot_paths_binary(san_build):
    """Every SIMD integer-dot path of this CPU against the scalar reference (tests/cpp/
    test_qdot_paths.cpp; the same binary runs the NEON paths under qemu in test_aarch64.py)."""
    exe = san_build / "tests" / "cpp" / "fastspec-test-qdot_paths"
    _check_instrumented(exe)
    r = _run([str(exe)], _san_env(leaks=True))
    assert "avx2: 0 failures" in r.stdout or "best path: scalar" in r.stdout, r.stdout


def test_python_subset_under_sanitizers(san_build):
    ext = sorted(san_build.glob("_core*.so"))
    assert ext, f"no _core*.so in {san_build}"
    _check_instrumented(ext[0])
    env = _san_env(leaks=False)
    # The ASan runtime must come first; libstdc++ is preloaded too so ASan's __cxa_throw
    # interceptor finds the real one (python itself does not link libstdc++).
    env["LD_PRELOAD"] = " ".join(filter(None, [_runtime("libasan.so"), _runtime("libstdc++.so")]))
    env["FASTSPEC_CORE_DIR"] = str(san_build)
    probe = _run([sys.executable, "-c", "import fastspec._core as c; print(c.__file__)"], env)
    assert str(san_build) in probe.stdout, probe.stdout  # the instrumented extension is the one loaded
    r = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow and not real_model",
              *PY_SUBSET], env, timeout=1200)
    assert " passed" in r.stdout and " failed" not in r.stdout, r.stdout[-3000:]
