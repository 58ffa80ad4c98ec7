"""Perplexity of SmolLM2 exported F16 vs its AWQ and RTN int4 quantizations (bench/RESULTS.md).

    apt-get install dict-devil                     # the held-out text (see below)
    python bench/perplexity_awq.py [--group 64] [--max-windows 40] [--precision f32] [--work DIR]

Steps: `fastspec export` of the packaged GGUF to F16, `fastspec quantize --method awq` and
`--method rtn` of that export (calibration: the packaged Jargon File excerpt), then
`fastspec.perplexity` of each over the held-out text, non-overlapping windows of --context tokens
(the first --max-windows of them). Prints a markdown table.

Held-out text: Ambrose Bierce, "The Devil's Dictionary" (1911, public domain), as Debian's
dict-devil package ships it (/usr/share/dictd/devil.dict.dz, gzip); the dictd header lines before
the PREFACE are dropped. It is not the calibration text. --text FILE uses another file.
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys
import time

import fastspec

DEVIL = "/usr/share/dictd/devil.dict.dz"


def held_out_text(path):
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read()
    if not os.path.exists(DEVIL):
        sys.exit(f"{DEVIL} not found: apt-get install dict-devil (or pass --text FILE)")
    with gzip.open(DEVIL, "rt", encoding="utf-8", errors="replace") as f:
        text = f.read()
    i = text.find("PREFACE")
    return text[i:] if i >= 0 else text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--group", type=int, default=64, help="AWQ group size (SmolLM2's 576 needs 64 or 32)")
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--max-windows", type=int, default=40)
    ap.add_argument("--precision", default="f32", choices=["f32", "q8"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--text", default=None)
    ap.add_argument("--work", default=os.path.join(os.path.expanduser("~"), ".cache", "fastspec", "bench-awq"))
    args = ap.parse_args(argv)

    text = held_out_text(args.text)
    base = os.path.join(args.work, args.model)
    paths = {"F16 (export)": base + "-f16", f"AWQ g{args.group}": base + f"-awq-g{args.group}",
             f"RTN g{args.group}": base + f"-rtn-g{args.group}"}
    times = {}
    f16 = paths["F16 (export)"]
    if not os.path.exists(os.path.join(f16, "model.safetensors")):
        fastspec.export(args.model, f16, dtype="f16", progress=None)
    for label, method in ((f"AWQ g{args.group}", "awq"), (f"RTN g{args.group}", "rtn")):
        if not os.path.exists(os.path.join(paths[label], "model.safetensors")):
            r = fastspec.quantize(f16, paths[label], method, group=args.group, threads=args.threads)
            times[label] = r.seconds
    rows = []
    for label, p in paths.items():
        t0 = time.perf_counter()
        r = fastspec.perplexity_eval.perplexity_windows(p, text, args.context, max_windows=args.max_windows,
                                                        threads=args.threads, precision=args.precision)
        rows.append((label, r, time.perf_counter() - t0))
        print(f"{label}: ppl {r.perplexity:.4f} ({r.tokens} tokens, {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    ref = rows[0][1].perplexity
    print(f"\n| model | perplexity | vs F16 | quantize time |\n|---|---|---|---|")
    for label, r, _ in rows:
        gap = "" if label.startswith("F16") else f"+{(r.perplexity / ref - 1) * 100:.2f}%"
        qt = f"{times[label]:.0f} s" if label in times else ""
        print(f"| {label} | {r.perplexity:.4f} | {gap} | {qt} |")
    print(f"\n{rows[0][1].tokens} tokens scored in {rows[0][1].windows} windows of {args.context}, "
          f"precision {args.precision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
