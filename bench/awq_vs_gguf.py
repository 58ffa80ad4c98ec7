"""AWQ int4 checkpoint vs a GGUF of the same model: prefill and decode speed, side by side.

    python bench/awq_vs_gguf.py --awq DIR --gguf FILE [--threads 1,2] [--repeats 3]

Both models are loaded with fastspec's defaults (precision "q8": the AWQ weights run on the integer
kernels' panels, cpp/src/backend/cpu/qpack.h) and driven through `_core.Engine` /
`Context.forward`, wall clock around each call, the two models alternating per repeat; medians.
Prefill: 256 prompt ids (logits of the last row); decode: 128 greedy tokens from position 256.
The files' sizes are reported too. A third row per thread count loads the AWQ checkpoint with
`output_q8=True` (its F16 lm_head quantized to Q8_0 at load; EngineOptions).

To make the inputs from the SmolLM2 GGUF (an RTN checkpoint has the AWQ layout; the AWQ search
only changes the values):

    fastspec export SmolLM2-135M-Instruct.Q4_1.gguf f16/
    fastspec quantize f16/ awq64/ --method rtn --group 64        # or --method awq
    fastspec convert SmolLM2-135M-Instruct.Q4_1.gguf q4_0.gguf --type q4_0
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def load(path: str, threads: int, output_q8: bool = False):
    from fastspec import _core
    o = _core.EngineOptions()
    o.threads, o.context, o.output_q8 = threads, 1024, output_q8
    eng = _core.Engine(path, o)
    return eng, eng.new_context()


def one_run(ctx, ids, n_gen: int):
    ctx.truncate(0)
    t0 = time.perf_counter()
    out = ctx.forward(ids, "last")
    prefill = len(ids) / (time.perf_counter() - t0)
    tok = int(np.argmax(out[-1]))
    t0 = time.perf_counter()
    for _ in range(n_gen):
        tok = int(np.argmax(ctx.forward([tok], "last")[-1]))
    return prefill, n_gen / (time.perf_counter() - t0)


def weight_bytes(path: str) -> int:
    files = [os.path.join(path, f) for f in os.listdir(path) if f.endswith(".safetensors")] if os.path.isdir(path) else [path]
    return sum(os.path.getsize(f) for f in files)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--awq", required=True, help="AutoAWQ GEMM checkpoint folder")
    ap.add_argument("--gguf", required=True, help="GGUF file of the same model")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-gen", type=int, default=128)
    a = ap.parse_args(argv)
    ids = list(range(1000, 1256))
    print(f"Command: `python bench/awq_vs_gguf.py --awq {a.awq} --gguf {a.gguf} --threads {a.threads} "
          f"--repeats {a.repeats}`\n")
    print(f"- files: AWQ {weight_bytes(a.awq) / 1e6:.1f} MB, GGUF {weight_bytes(a.gguf) / 1e6:.1f} MB\n")
    print("| threads | AWQ load option | prefill AWQ | prefill GGUF | ratio | decode AWQ | decode GGUF | ratio |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for threads in [int(t) for t in a.threads.split(",")]:
        models = {"awq": load(a.awq, threads), "awq_oq8": load(a.awq, threads, output_q8=True),
                  "gguf": load(a.gguf, threads)}
        for _, ctx in models.values():
            one_run(ctx, ids, 4)  # warm-up
        res = {k: ([], []) for k in models}
        for _ in range(a.repeats):
            for k, (_, ctx) in models.items():
                p, d = one_run(ctx, ids, a.n_gen)
                res[k][0].append(p)
                res[k][1].append(d)
        med = {k: (statistics.median(v[0]), statistics.median(v[1])) for k, v in res.items()}
        pg, dg = med["gguf"]
        for key, label in (("awq", "defaults"), ("awq_oq8", "output_q8=True")):
            pa, da = med[key]
            print(f"| {threads} | {label} | {pa:.1f} | {pg:.1f} | **{pa / pg:.2f}** | {da:.1f} | {dg:.1f} | **{da / dg:.2f}** |")


if __name__ == "__main__":
    main()
