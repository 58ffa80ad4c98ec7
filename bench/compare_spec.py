"""Speculative vs plain decoding on SmolLM2, side by side with llama-cpp-python's prompt lookup.

    python bench/compare_spec.py [--threads 2] [--max-tokens 128] [--repeats 3]

Configurations (same prompt ids, greedy, same run):
  fastspec plain (Q4_1)              fastspec draft="ngram" (Q4_1 target), chains and token trees
  fastspec plain (F16 target)        fastspec draft=own Q4_0 copy (quantized self-draft, F16 target)
  llama.cpp plain (Q4_1)             llama.cpp LlamaPromptLookupDecoding(num_pred_tokens=10) (Q4_1)
Tasks: an input-grounded code rewrite, answering with quotes from a given passage, and an
open-ended chat question. Reported: end-to-end tok/s (generated tokens / wall time, prefill
included, the only measure both engines share), fastspec's decode-only tok/s, acceptance rate,
tokens per target pass, and whether greedy output equals plain (fastspec) output.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import fastspec  # noqa: E402

CODE = '''def parse_config(path):
    with open(path) as f:
        lines = f.readlines()
    result = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, value = line.split("=", 1)
        result[key.strip()] = value.strip()
    return result
'''
PASSAGE = ("The lighthouse at Point Reyes was built in 1870. Its first-order Fresnel lens, made in France, "
           "has 1,032 pieces of glass. The keepers had to climb 308 steps to reach the light each night. "
           "Fog is common here: the headland is one of the foggiest places on the Pacific coast, with more "
           "than 200 foggy days in some years. The light was automated in 1975.")
TASKS = {
    "code rewrite": "Rewrite this Python function with type hints and a docstring:\n\n" + CODE,
    "quote passage": "Passage:\n" + PASSAGE + "\n\nAnswer with exact quotes from the passage: when was the "
                     "lighthouse built, how many pieces of glass does the lens have, and how many steps are there?",
    "open chat": "What are three good habits for staying healthy? Explain each briefly.",
}


def f16_and_q4_0(src: str) -> tuple:
    cache = fastspec.models.cache_dir()
    out = []
    for typ in ("f16", "q4_0"):
        dst = cache / f"SmolLM2-135M-Instruct.{typ.upper()}.gguf"
        if not dst.exists():
            subprocess.run([sys.executable, "-m", "fastspec", "convert", src, str(dst), "--type", typ], check=True)
        out.append(str(dst))
    return tuple(out)


def run_fastspec(eng, ids, max_tokens, repeats):
    walls, res = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = eng.generate(ids, max_tokens=max_tokens)
        walls.append(time.perf_counter() - t0)
    st = res.stats
    return dict(e2e=len(res.tokens) / statistics.median(walls), decode=st["tokens_per_s"],
                acc=st["acceptance_rate"], tpp=st["tokens_per_pass"], tokens=res.tokens)


def run_llamacpp(path, ids, max_tokens, repeats, threads, lookup):
    import llama_cpp
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    kw = dict(draft_model=LlamaPromptLookupDecoding(num_pred_tokens=10), logits_all=True) if lookup else {}
    llm = llama_cpp.Llama(path, n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False, **kw)
    walls, n = [], 0
    for _ in range(repeats):
        llm.reset()
        t0 = time.perf_counter()
        out = llm.create_completion(ids, max_tokens=max_tokens, temperature=0.0, top_k=1)
        walls.append(time.perf_counter() - t0)
        n = out["usage"]["completion_tokens"]
    return dict(e2e=n / statistics.median(walls))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-llamacpp", action="store_true")
    ap.add_argument("--tree-nodes", type=int, default=24, help="node budget of the n-gram tree configuration")
    a = ap.parse_args()
    q41 = fastspec.models.path("smollm2-135m-instruct")
    f16, q40 = f16_and_q4_0(q41)
    engines = {
        "fastspec plain Q4_1": fastspec.Engine(q41, threads=a.threads),
        "fastspec ngram Q4_1": fastspec.Engine(q41, draft="ngram", threads=a.threads),
        f"fastspec ngram tree{a.tree_nodes} Q4_1": fastspec.Engine(q41, draft="ngram", tree_nodes=a.tree_nodes,
                                                               threads=a.threads),
        "fastspec plain F16": fastspec.Engine(f16, threads=a.threads),
        "fastspec self-draft F16<-Q4_0": fastspec.Engine(f16, draft=q40, threads=a.threads),
    }
    print(f"threads={a.threads}, max_tokens={a.max_tokens}, greedy, median of {a.repeats}; "
          f"e2e = generated tokens / wall time incl. prefill\n")
    print("| task | configuration | e2e tok/s | decode tok/s | acceptance | tokens/pass | same as plain |")
    print("|---|---|---:|---:|---:|---:|---|")
    for task, text in TASKS.items():
        ids = engines["fastspec plain Q4_1"].tokenizer.encode_chat([{"role": "user", "content": text}])
        base = {}
        for name, eng in engines.items():
            r = run_fastspec(eng, ids, a.max_tokens, a.repeats)
            plain_key = "Q4_1" if "Q4_1" in name else "F16"
            if "plain" in name:
                base[plain_key] = r["tokens"]
            same = "yes" if r["tokens"] == base.get(plain_key) else "NO"
            acc = f"{r['acc']:.2f}" if "plain" not in name else "-"
            print(f"| {task} | {name} | {r['e2e']:.1f} | {r['decode']:.1f} | {acc} | {r['tpp']:.2f} | {same} |")
        if not a.no_llamacpp:
            for lookup in (False, True):
                r = run_llamacpp(q41, ids, a.max_tokens, a.repeats, a.threads, lookup)
                name = "llama.cpp prompt-lookup Q4_1" if lookup else "llama.cpp plain Q4_1"
                print(f"| {task} | {name} | {r['e2e']:.1f} | - | - | - | - |")


if __name__ == "__main__":
    main()
