"""Encode speed of the C++ tokenizer (fastspec._core.CppTokenizer) vs the Python tokenizer
(fastspec.Tokenizer: Hugging Face `tokenizers`), on the same texts, same ids (checked).

    python bench/tokenizer_speed.py [MODEL ...] [--repeats 5]

Texts: fastspec/data/calibration.txt (~98 KB of English prose) and Python's inspect.py (~130 KB of
code). Wall clock around one encode(text) call; best of --repeats (the HF tokenizer's word cache is
warm after the first). Also the load time of each tokenizer from the GGUF.
"""
from __future__ import annotations

import argparse
import inspect
import os
import time

import fastspec
from fastspec import _core
from fastspec.tokenizer import Tokenizer


def best(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*", default=["smollm2-135m-instruct", "gemma3-270m"])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    data = os.path.join(os.path.dirname(fastspec.__file__), "data", "calibration.txt")
    texts = {}
    for name, path in (("calibration.txt", data), ("inspect.py", inspect.__file__)):
        with open(path, encoding="utf-8") as f:
            texts[name] = f.read()
    for model in args.models:
        path = model if os.path.exists(model) else str(fastspec.models.path(model, quiet=True))
        t_cpp, cpp = best(lambda: _core.CppTokenizer(path), 1)
        t_py, py = best(lambda: Tokenizer.from_model(path), 1)
        print(f"{os.path.basename(path)}: load C++ {t_cpp * 1e3:.0f} ms, Python/HF {t_py * 1e3:.0f} ms")
        for name, text in texts.items():
            tc, ids = best(lambda: cpp.encode(text), args.repeats)
            tp, ref = best(lambda: py.encode(text), args.repeats)
            same = "same ids" if ids == ref else "IDS DIFFER"
            print(f"  {name} ({len(text)} chars, {len(ids)} tokens, {same}): C++ {len(ids) / tc / 1e6:.2f} M tok/s, "
                  f"HF {len(ref) / tp / 1e6:.2f} M tok/s ({tp / tc:.1f}x)")


if __name__ == "__main__":
    main()
