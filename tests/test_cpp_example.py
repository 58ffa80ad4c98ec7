"""The embeddable C++ library: the core built as a C++ project (cmake/install.cmake), installed
into a temporary prefix (headers, libfastspec.so / .a, the CMake package), and examples/cpp built
against it with find_package(fastspec), linked shared and static. The example app streams a reply
on both real models; its prompt ids (C++ tokenizer + its chat format) equal the Python
tokenizer's for the same text, and its greedy reply equals the Python engine's on those ids."""
import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "cpp-lib"
MESSAGE = "Name three rivers in Europe and say where they flow."
N_TOKENS = 24

pytestmark = pytest.mark.slow


def _run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    """The library built once into build/cpp-lib (a file lock for parallel workers) and installed
    into a fresh prefix."""
    if not shutil.which("cmake"):
        pytest.skip("no cmake")
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD.parent / "cpp-lib.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (BUILD / "build.ninja").exists():
            _run(["cmake", "-S", ROOT, "-B", BUILD, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release", "-DFASTSPEC_CUDA=OFF",
                  "-DFASTSPEC_CPP_LIBRARY=ON"])
        _run(["cmake", "--build", BUILD, "-j2"])
    p = tmp_path_factory.mktemp("prefix")
    _run(["cmake", "--install", BUILD, "--prefix", p])
    return p


def test_installed_layout(prefix):
    inc = prefix / "include" / "fastspec"
    for h in ("engine.h", "tokenizer.h", "options.h", "status.h", "model_file.h"):
        assert (inc / h).is_file(), h
    lib = prefix / "lib"
    assert (lib / "libfastspec.a").is_file() and (lib / "libfastspec.so").exists()
    assert (lib / "cmake" / "fastspec" / "fastspecConfig.cmake").is_file()
    assert (lib / "cmake" / "fastspec" / "fastspecConfigVersion.cmake").is_file()
    assert (prefix / "bin" / "fastspec-bench").is_file()
    # the public headers stand alone: no include of the core's private tree (cpp/src)
    for h in inc.glob("*.h"):
        for line in h.read_text().splitlines():
            if line.startswith("#include \""):
                assert line.startswith("#include \"fastspec/"), f"{h.name}: {line}"


@pytest.fixture(scope="module", params=["shared", "static"])
def chat_app(request, prefix, tmp_path_factory):
    b = tmp_path_factory.mktemp(f"example-{request.param}")
    _run(["cmake", "-S", ROOT / "examples" / "cpp", "-B", b, "-G", "Ninja", f"-DCMAKE_PREFIX_PATH={prefix}",
          f"-DFASTSPEC_STATIC={'ON' if request.param == 'static' else 'OFF'}"])
    _run(["cmake", "--build", b])
    exe = b / "fastspec-chat"
    libs = _run(["ldd", exe]).stdout
    assert ("libfastspec.so" in libs) == (request.param == "shared"), libs
    return exe


def _chatml(msg):  # examples/cpp/chat_format.cpp, Format::chatml
    return f"<|im_start|>user\n{msg}<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.real_model
@pytest.mark.parametrize("model", ["smollm2", "gemma3"])
def test_example_streams_the_python_engines_reply(chat_app, model, smollm2_path, gemma3_path):
    import fastspec
    path = smollm2_path if model == "smollm2" else gemma3_path
    r = _run([chat_app, path, MESSAGE, "--max-tokens", N_TOKENS, "--threads", 2, "--print-ids"])
    line = next(ln for ln in r.stderr.splitlines() if ln.startswith("prompt ids"))
    fmt, ids = line.split("(")[1].split(")")[0], [int(t) for t in line.split(":")[1].split()]
    assert fmt == ("chatml" if model == "smollm2" else "raw")  # Gemma 3 270M is a base model: no template
    tok = fastspec.Tokenizer.from_model(path)
    assert ids == tok.encode(_chatml(MESSAGE) if fmt == "chatml" else MESSAGE)
    want = fastspec.Engine(path, threads=2).generate(ids, max_tokens=N_TOKENS)
    assert r.stdout.rstrip("\n") == want.text.rstrip("\n"), (r.stdout, want.text)
    assert "tokens" in r.stderr and "first token" in r.stderr


def test_example_rejects_bad_input(chat_app, tmp_path):
    r = subprocess.run([str(chat_app), str(tmp_path / "missing.gguf"), "hi"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "missing.gguf" in r.stderr
    r = subprocess.run([str(chat_app), "only-one-arg"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "usage:" in r.stderr
