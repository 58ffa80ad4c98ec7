"""fastspec-bench (the C++ benchmark binary): it is built and installed, parses its arguments, runs
plain and speculative decoding and reports greedy identity. No timing is asserted here."""
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import tiny_models as tm

pytest.importorskip("gguf")


def _find_bench() -> str:
    """The dev build's binary (FASTSPEC_CORE_DIR), else the installed one next to `fastspec`."""
    cands = []
    if os.environ.get("FASTSPEC_CORE_DIR"):
        cands.append(Path(os.environ["FASTSPEC_CORE_DIR"]) / "fastspec-bench")
    cands += [Path(sysconfig.get_path("scripts")) / "fastspec-bench", Path(sys.executable).parent / "fastspec-bench"]
    for c in cands:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which("fastspec-bench")
    if found:
        return found
    pytest.fail("fastspec-bench not found (looked in " + ", ".join(map(str, cands)) + " and PATH); "
                "pip install . puts it in the environment's bin/, cmake/dev-build.sh in its build folder")


@pytest.fixture(scope="module")
def bench():
    return _find_bench()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    cfg = tm.tiny_config("llama")
    tm.write_gguf(d / "t.gguf", cfg, tm.random_weights(cfg, seed=5), qtype="Q8_0")
    return d / "t.gguf"


def _run(bench, *args):
    return subprocess.run([bench, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_help(bench):
    r = _run(bench, "--help")
    assert r.returncode == 0
    for opt in ("--target", "--draft", "--k ", "--threads", "--n-gen", "--prompt-len", "--prompt-ids",
                "--repeats", "--temperature", "--seed"):
        assert opt in r.stdout, opt


@pytest.mark.parametrize("draft,k", [("ngram", 0), ("ngram", 3), ("none", 0)])
def test_plain_and_speculative_rows_greedy_identical(bench, tiny, draft, k):
    r = _run(bench, "--target", tiny, "--draft", draft, "--k", k, "--threads", 1, "--n-gen", 12,
             "--prompt-len", 40, "--repeats", 2)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header = next(line for line in lines if line.startswith("mode"))
    for col in ("decode/s", "speedup", "accept", "tok/pass", "draft_s", "verify_s", "sample_s"):
        assert col in header
    assert any(line.startswith("plain ") for line in lines) and any(line.startswith("spec ") for line in lines)
    assert "greedy output: identical (12 tokens, all 2 runs of each mode)" in r.stdout
    assert "prompt   40 ids (synthetic)" in r.stdout


def test_model_draft_from_convert_and_prompt_ids_file(bench, tiny, tmp_path):
    from fastspec.convert import convert

    draft = tmp_path / "d.q4_0.gguf"
    convert(tiny, draft, "q4_0", progress=None)
    ids = tmp_path / "ids.txt"
    ids.write_text("5 17 99 5 17 99\n5 17\t99 200\n")
    r = _run(bench, "--target", tiny, "--draft", draft, "--k", 2, "--threads", 1, "--n-gen", 10,
             "--prompt-ids", ids, "--repeats", 1)
    assert r.returncode == 0, r.stderr
    assert "prompt   10 ids" in r.stdout and "greedy output: identical (10 tokens, all 1 runs of each mode)" in r.stdout
    assert "accepted by draft position:" in r.stdout


def test_sampled_run(bench, tiny):
    r = _run(bench, "--target", tiny, "--draft", "ngram", "--threads", 1, "--n-gen", 8, "--prompt-len", 16,
             "--repeats", 1, "--temperature", 0.8, "--seed", 3)
    assert r.returncode == 0, r.stderr
    assert "temperature 0.8" in r.stdout and "greedy output" not in r.stdout


def test_errors_name_the_argument(bench, tiny, tmp_path):
    cases = [
        ((), 2, "--target is required"),
        (("--target", tiny, "--k", "-1"), 2, "--k: expected an integer >= 0, got '-1'"),
        (("--target", tiny, "--n-gen"), 2, "--n-gen: missing value"),
        (("--target", tiny, "--frobnicate", "1"), 2, "unknown option '--frobnicate'"),
        (("--target", tiny, "--temperature", "hot"), 2, "--temperature: expected a number, got 'hot'"),
        (("--target", tmp_path / "missing.gguf"), 1, "--target: "),
        (("--target", tiny, "--draft", tmp_path / "nodraft.gguf"), 1, "--draft: "),
        (("--target", tiny, "--prompt-ids", tmp_path / "none.txt"), 2, "--prompt-ids: cannot open"),
    ]
    bad = tmp_path / "bad_ids.txt"
    bad.write_text("1 2 400")
    cases.append((("--target", tiny, "--prompt-ids", bad), 2, "bad_ids.txt: id 3 is 400, outside the vocabulary of 320"))
    for args, rc, msg in cases:
        r = _run(bench, *args)
        assert r.returncode == rc and msg in r.stderr, (args, r.returncode, r.stderr)
    assert "missing.gguf" in _run(bench, "--target", tmp_path / "missing.gguf").stderr


@pytest.mark.parametrize("precision,kv_type", [("q8", "f16"), ("f32", "f32")])
@pytest.mark.parametrize("threads", [1, 2])
def test_hot_path_allocates_nothing(bench, tiny, precision, kv_type, threads):
    """After warm-up, plain decoding steps and greedy n-gram speculative steps (draft, verify pass,
    accept, rollback) make no heap allocation: every operator new in the binary is counted."""
    r = _run(bench, "--target", tiny, "--draft", "ngram", "--check-allocs", 24, "--prompt-len", 48,
             "--threads", threads, "--precision", precision, "--kv-type", kv_type)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "plain 0, spec (ngram) 0" in r.stdout, r.stdout


def test_membw_mode(bench):
    r = _run(bench, "--membw", 16, "--threads", 1)
    assert r.returncode == 0, r.stderr
    assert "threads 1:" in r.stdout and "GB/s" in r.stdout
