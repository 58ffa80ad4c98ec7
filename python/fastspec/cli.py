"""The `fastspec` command line.

    fastspec run [--model NAME_OR_PATH] "prompt"         stream a reply (chat template when the model has one)
    fastspec info PATH_OR_NAME [--tensors] [--metadata]   summary of a model file
    fastspec models [--fetch NAME]                        known models and the cache
    fastspec convert IN.gguf OUT.gguf --type q4_0         re-store a GGUF model as f16/q8_0/q4_0
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
from typing import List, Optional

from . import models


def _fmt_value(v, limit: int = 80) -> str:
    if isinstance(v, list):
        head = ", ".join(_fmt_value(x, 20) for x in v[:4])
        return f"[{head}{', ...' if len(v) > 4 else ''}] ({len(v)} items)"
    s = repr(v)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _cmd_info(args) -> int:
    from . import inspect

    info = inspect(models.path(args.model))
    c = info.config
    total = sum(t.nbytes for t in info.tensors.values())
    print(f"file          {info.path}")
    print(f"format        {info.format}   ({len(info.tensors)} tensors, {total / 1e6:.1f} MB of tensor data)")
    name = info.metadata.get("general.name")
    if name:
        print(f"name          {name}")
    print(f"architecture  {c.architecture or '(none)'}   family: {c.family or 'unsupported'}")
    if c.n_layers:
        print(f"layers        {c.n_layers}   embedding {c.n_embd}   ffn {c.n_ff}")
        print(f"attention     {c.n_heads} heads, {c.n_kv_heads} kv heads, head dim {c.head_dim}")
        print(f"vocab         {c.vocab_size}   context {c.context_length}   tied embeddings: {c.tied_embeddings}")
        rs = c.rope_scaling
        scaling = f", scaling {rs['type']} x{rs['factor']}" if rs["type"] else ""
        print(f"rope          base {c.rope_theta:g}, dims {c.rope_dim}{scaling}   norm eps {c.norm_eps:g}")
        if c.sliding_window:
            print(f"sliding       window {c.sliding_window}, every {c.sliding_window_pattern}th layer global, "
                  f"local base {c.rope_local_theta:g}")
    types = collections.Counter(t.type for t in info.tensors.values())
    print("tensor types  " + ", ".join(f"{k} x{v}" for k, v in types.most_common()))
    tok = info.metadata.get("tokenizer.ggml.model")
    if tok:
        has_tmpl = "tokenizer.chat_template" in info.metadata
        print(f"tokenizer     {tok}   chat template: {'yes' if has_tmpl else 'no'}")
    if args.metadata:
        print("\nmetadata:")
        for k, v in info.metadata.items():
            print(f"  {k} = {_fmt_value(v)}")
    if args.tensors:
        print("\ntensors:")
        for t in info.tensors.values():
            print(f"  {t.name:<40} {t.type:<8} {str(list(t.shape)):<20} {t.nbytes:>12} B")
    return 0


def _cmd_models(args) -> int:
    if args.fetch:
        print(models.path(args.fetch))
        return 0
    print(f"cache: {models.cache_dir()}")
    for e in models.list_models():
        cached = (models.cache_dir() / e.filename).is_file()
        print(f"  {e.name:<24} {e.size / 1e6:6.0f} MB  {'cached ' if cached else 'not yet'}  {e.description}")
    return 0


def _cmd_convert(args) -> int:
    from .convert import convert

    counts = convert(args.input, args.output, args.type)
    summary = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))
    print(f"wrote {args.output} ({summary}, {os.path.getsize(args.output) / 1e6:.1f} MB)", file=sys.stderr)
    return 0


DEFAULT_MODEL = "smollm2-135m-instruct"


def _cmd_run(args) -> int:
    from .engine import Engine

    eng = Engine(args.model, draft=args.draft, k=args.k, threads=args.threads, context=args.context,
                 trace=args.trace)
    kw = dict(max_tokens=args.max_tokens, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
              seed=args.seed, stop=args.stop or None)
    if args.raw or not eng.tokenizer.chat_template:
        pieces = eng.stream(args.prompt, **kw)
    else:
        pieces = eng.chat([{"role": "user", "content": args.prompt}], stream=True, **kw)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    if args.stats:
        st = eng.last_stats
        print(f"[{st['tokens']} tokens, {st['tokens_per_s']:.1f} tok/s decode, "
              f"{st['prefill_tokens_per_s']:.1f} tok/s prefill ({st['prompt_tokens']} prompt tokens), "
              f"{st['target_passes']} target passes, {st['tokens_per_pass']:.2f} tokens/pass, "
              f"acceptance {st['acceptance_rate']:.2f}]", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fastspec", description="fastspec: speculative-decoding inference engine")
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("run", help="generate text (streams to stdout)")
    pr.add_argument("prompt")
    pr.add_argument("--model", "-m", default=DEFAULT_MODEL, help=f"path or known name (default {DEFAULT_MODEL})")
    pr.add_argument("--max-tokens", "-n", type=int, default=256)
    pr.add_argument("--temperature", "-t", type=float, default=0.0, help="0 = greedy (default)")
    pr.add_argument("--top-k", type=int, default=0)
    pr.add_argument("--top-p", type=float, default=1.0)
    pr.add_argument("--seed", type=int, default=None)
    pr.add_argument("--stop", action="append", help="stop string (repeatable)")
    pr.add_argument("--threads", type=int, default=None, help="default: physical cores")
    pr.add_argument("--context", type=int, default=4096)
    pr.add_argument("--raw", action="store_true", help="do not apply the chat template")
    pr.add_argument("--draft", default=None, help="speculative decoding: 'ngram' or a draft model (path or name)")
    pr.add_argument("--k", type=int, default=None, help="draft tokens per step (default: adaptive)")
    pr.add_argument("--trace", default=None, help="write a JSONL trace of every proposal and outcome")
    pr.add_argument("--stats", action="store_true", help="print speed and counts to stderr")
    pr.set_defaults(func=_cmd_run)
    pi = sub.add_parser("info", help="summarize a model file (GGUF or safetensors)")
    pi.add_argument("model", help="path, or a known model name (see `fastspec models`)")
    pi.add_argument("--tensors", action="store_true", help="list every tensor")
    pi.add_argument("--metadata", action="store_true", help="print every metadata key")
    pi.set_defaults(func=_cmd_info)
    pm = sub.add_parser("models", help="list known models, or fetch one into the cache")
    pm.add_argument("--fetch", metavar="NAME", help="fetch NAME and print its local path")
    pm.set_defaults(func=_cmd_models)
    from .convert import TYPES

    pc = sub.add_parser("convert", help="re-store a GGUF model with its weight matrices in another type")
    pc.add_argument("input", help="source GGUF file (any type the core dequantizes)")
    pc.add_argument("output", help="GGUF file to write")
    pc.add_argument("--type", required=True, choices=list(TYPES),
                    help="type of the 2-D weight matrices; norms and biases stay F32")
    pc.set_defaults(func=_cmd_convert)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from . import FormatError, ModelError

    try:
        return args.func(args)
    except (FormatError, ModelError, ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"fastspec: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
