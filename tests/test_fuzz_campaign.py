"""Bounded coverage-guided fuzz campaigns, one per parser harness (tests/fuzz):

- libFuzzer + ASan + UBSan (clang, cmake/fuzz.cmake): fuzz_gguf, fuzz_safetensors (header, index
  JSON, shards, config.json), fuzz_json, fuzz_config_hf;
- atheris (PyPI): fuzz_tokenizer (tokenizer construction from GGUF metadata), fuzz_chat_template.

Each starts from seeds written from the tests' own files (tests/fuzz/make_seeds.py) and runs
FASTSPEC_FUZZ_SECONDS (default 45) with a per-input timeout and an RSS limit. Any crash, sanitizer
report, uncaught exception other than FormatError/ModelError (C++) or ChatTemplateError /
FormatError / ModelError (Python), timeout or RSS overrun fails the test, and the output names the
reproducer (libFuzzer writes it to the artifact folder shown). Skipped, saying why, only when
clang/libFuzzer or atheris is missing (CI: apt-get install clang libclang-rt-14-dev; pip atheris).
The C++ harnesses are built once into FASTSPEC_FUZZ_BUILD (default ~/.cache/fastspec/fuzz-build).
"""
import contextlib
import fcntl
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = os.path.join(ROOT, "tests", "fuzz")
SECONDS = int(os.environ.get("FASTSPEC_FUZZ_SECONDS", "45"))
# libFuzzer's random seed: fixed, so that a campaign's mutations are the same on every run and a CI
# finding reproduces (its speed still decides how far it gets); FASTSPEC_FUZZ_SEED explores others.
SEED = int(os.environ.get("FASTSPEC_FUZZ_SEED", "1"))
CACHE = os.environ.get("FASTSPEC_FUZZ_BUILD", os.path.expanduser("~/.cache/fastspec/fuzz-build"))

CPP = {"gguf": "gguf.dict", "safetensors": "json.dict", "json": "json.dict", "config_hf": "json.dict"}
PY = {"tokenizer": "gguf.dict", "chat_template": "jinja.dict"}

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def _locked(path):
    """An exclusive file lock, so the pytest-xdist workers build and seed once (closing the file
    releases it)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _libfuzzer_missing():
    cxx = shutil.which("clang++")
    if not cxx:
        return "clang++ not found (apt-get install clang libclang-rt-14-dev)"
    probe_dir = os.path.join(CACHE, "probe")
    os.makedirs(probe_dir, exist_ok=True)
    src = os.path.join(probe_dir, "probe.cpp")
    with open(src, "w") as f:
        f.write('#include <cstdint>\n#include <cstddef>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t)'
                ' { return 0; }\n')
    r = subprocess.run([cxx, "-fsanitize=fuzzer,address,undefined", src, "-o", os.path.join(probe_dir, "probe")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return f"clang++ cannot link libFuzzer (apt-get install libclang-rt-14-dev): {r.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="module")
def seeds():
    sys.path.insert(0, FUZZ)
    import make_seeds
    # keyed by the writers' sources, so a changed seed writer regenerates the corpora
    h = hashlib.sha1()
    for name in (os.path.join(FUZZ, "make_seeds.py"), os.path.join(ROOT, "tests", "tiny_models.py"),
                 os.path.join(ROOT, "tests", "gguf_bytes.py")):
        if os.path.exists(name):
            h.update(open(name, "rb").read())
    out = os.path.join(CACHE, "seeds-" + h.hexdigest()[:12])
    with _locked(os.path.join(CACHE, "seeds.lock")):
        if not os.path.exists(os.path.join(out, "complete")):
            shutil.rmtree(out, ignore_errors=True)
            make_seeds.write_corpora(out)
            open(os.path.join(out, "complete"), "w").close()
    return out


@pytest.fixture(scope="module")
def fuzz_build():
    with _locked(os.path.join(CACHE, "build.lock")):
        why = _libfuzzer_missing()
        if why:
            pytest.skip(why)
        # one build folder per source tree (CMake refuses a cache made for another source dir);
        # ninja rebuilds what changed
        bdir = os.path.join(CACHE, "build-" + hashlib.sha1(ROOT.encode()).hexdigest()[:12])
        cfg = ["cmake", "-S", ROOT, "-B", bdir, "-DCMAKE_CXX_COMPILER=clang++", "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
               "-DFASTSPEC_CUDA=OFF", "-DFASTSPEC_FUZZ=ON"]
        if shutil.which("ninja"):
            cfg += ["-G", "Ninja"] if not os.path.exists(os.path.join(bdir, "CMakeCache.txt")) else []
        r = subprocess.run(cfg, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        r = subprocess.run(["cmake", "--build", bdir, "--target", "fastspec_fuzz", "-j2"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    return bdir


def _campaign(cmd, corpus, seeds_dir, dict_name, artifacts, rss_mb):
    os.makedirs(corpus)
    os.makedirs(artifacts)
    args = cmd + [f"-seed={SEED}", f"-max_total_time={SECONDS}", "-timeout=10", f"-rss_limit_mb={rss_mb}", "-max_len=65536",
                  f"-dict={os.path.join(FUZZ, dict_name)}", f"-artifact_prefix={artifacts}/",
                  "-print_final_stats=1", corpus, seeds_dir]
    scratch = os.path.join(os.path.dirname(corpus), "scratch")  # the harnesses' files; pytest removes it
    os.makedirs(scratch)
    r = subprocess.run(args, capture_output=True, text=True, timeout=SECONDS + 300, cwd=ROOT,
                       env=dict(os.environ, FASTSPEC_FUZZ_SCRATCH=scratch))
    log = r.stdout + r.stderr
    found = os.listdir(artifacts)
    problems = [ln for ln in log.splitlines()
                if re.search(r"ERROR: libFuzzer|runtime error:|ERROR: AddressSanitizer|Uncaught Python exception|"
                             r"SUMMARY: ", ln)]
    # atheris prints an uncaught Python exception on stdout, libFuzzer's verdict on stderr: show both
    exc = r.stdout.find("=== Uncaught Python exception")
    where = r.stdout[exc:exc + 4000] + "\n...\n" if exc >= 0 else ""
    assert r.returncode == 0 and not found and not problems, \
        f"fuzz campaign (-seed={SEED}) found a problem (reproducers in {artifacts}: {found}):\n" + where + \
        r.stderr[-4000:] + "".join(f"\n{a}: {open(os.path.join(artifacts, a), 'rb').read()[:2048].hex()}" for a in found)
    runs = re.search(r"stat::number_of_executed_units: (\d+)", log) or re.search(r"Done (\d+) runs", log)
    assert runs and int(runs.group(1)) > 0, log[-3000:]
    cov = re.findall(r"cov: (\d+) ft: (\d+)", log)
    print(f"{os.path.basename(cmd[-1])}: {runs.group(1)} executions, cov/ft {cov[-1] if cov else '?'}, "
          f"corpus {len(os.listdir(corpus))} new units")
    return int(runs.group(1))


@pytest.mark.parametrize("name", sorted(CPP))
def test_libfuzzer_campaign(name, fuzz_build, seeds, tmp_path):
    _campaign([os.path.join(fuzz_build, f"fuzz_{name}")], str(tmp_path / "corpus"), os.path.join(seeds, name),
              CPP[name], str(tmp_path / "artifacts"), 2048)


@pytest.mark.parametrize("name", sorted(PY))
def test_atheris_campaign(name, seeds, tmp_path):
    if importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed (pip install atheris; it is in the test extra)")
    _campaign([sys.executable, os.path.join(FUZZ, f"fuzz_{name}.py")], str(tmp_path / "corpus"),
              os.path.join(seeds, name), PY[name], str(tmp_path / "artifacts"), 3072)
