"""Plain decoding and prefill speed: fastspec vs llama-cpp-python on the same GGUF, same machine,
same run, same token ids, same thread count. Prints a markdown table (medians of --repeats).

    python bench/compare_llamacpp.py [--model smollm2-135m-instruct] [--threads 2] [--n-gen 128]
                                     [--n-prompt 256] [--repeats 3]

Both engines decode greedily from the same prompt ids; the first generated tokens are compared
(a mismatch is reported, not hidden: llama.cpp quantizes activations, fastspec does not).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

import fastspec  # noqa: E402
from fastspec import _core  # noqa: E402

TEXT = ("The history of computing is a story of abstractions layered on abstractions. Early machines "
        "were programmed by rewiring; later, stored programs let the same hardware run many tasks. ")


def prompt_ids(llm, n: int):
    ids = llm.tokenize((TEXT * 40).encode(), add_bos=False)
    return ids[:n]


def bench_fastspec(path, ids, n_gen, threads, repeats):
    opts = _core.EngineOptions()
    opts.threads, opts.context = threads, len(ids) + n_gen + 8
    eng = _core.Engine(path, opts)
    s = _core.SamplingOptions()
    s.max_tokens = n_gen
    pre, dec, toks = [], [], None
    for _ in range(repeats):
        sess = eng.start(ids, s, [])
        out = []
        while not sess.finished:
            out += sess.step()
        st = sess.stats
        pre.append(len(ids) / st["prefill_s"])
        dec.append((st["tokens"] - 1) / st["decode_s"])
        toks = out
    return statistics.median(pre), statistics.median(dec), toks


def _last_logits(llm):
    """Logits of the last evaluated token (llama-cpp-python keeps no scores without logits_all)."""
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))


def bench_llamacpp(path, ids, n_gen, threads, repeats):
    import llama_cpp

    llm = llama_cpp.Llama(path, n_ctx=len(ids) + n_gen + 8, n_threads=threads, n_threads_batch=threads,
                          n_batch=512, verbose=False)
    pre, dec, toks = [], [], None
    for _ in range(repeats):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(ids)
        t1 = time.perf_counter()
        out = []
        tok = int(np.argmax(_last_logits(llm)))
        for _ in range(n_gen):
            out.append(tok)
            if len(out) == n_gen:
                break
            llm.eval([tok])
            tok = int(np.argmax(_last_logits(llm)))
        t2 = time.perf_counter()
        pre.append(len(ids) / (t1 - t0))
        dec.append((n_gen - 1) / (t2 - t1))
        toks = out
    return statistics.median(pre), statistics.median(dec), toks, llm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-gen", type=int, default=128)
    ap.add_argument("--n-prompt", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    path = fastspec.models.path(a.model)
    import llama_cpp

    tok_llm = llama_cpp.Llama(path, n_ctx=64, vocab_only=True, verbose=False)
    ids = prompt_ids(tok_llm, a.n_prompt)
    lp, ld, ltoks, _ = bench_llamacpp(path, ids, a.n_gen, a.threads, a.repeats)
    fp, fd, ftoks = bench_fastspec(path, ids, a.n_gen, a.threads, a.repeats)
    same = next((i for i, (x, y) in enumerate(zip(ftoks, ltoks)) if x != y), len(ftoks))
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, threads={a.threads}, model={os.path.basename(path)}, "
          f"prompt={len(ids)} tokens, generate={a.n_gen} tokens, median of {a.repeats}")
    print()
    print("| engine | prefill tok/s | decode tok/s |")
    print("|---|---:|---:|")
    print(f"| llama-cpp-python {llama_cpp.__version__} | {lp:.1f} | {ld:.1f} |")
    print(f"| fastspec {fastspec.__version__} | {fp:.1f} | {fd:.1f} |")
    print(f"| ratio fastspec / llama.cpp | {fp / lp:.2f} | {fd / ld:.2f} |")
    print()
    print(f"greedy tokens identical for the first {same} of {a.n_gen}")


if __name__ == "__main__":
    main()
