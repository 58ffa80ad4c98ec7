"""The `fastspec` command line.

    fastspec info PATH_OR_NAME [--tensors] [--metadata]   summary of a model file
    fastspec models [--fetch NAME]                        known models and the cache
"""
from __future__ import annotations

import argparse
import collections
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fastspec", description="fastspec: speculative-decoding inference engine")
    sub = p.add_subparsers(dest="command", required=True)
    pi = sub.add_parser("info", help="summarize a model file (GGUF or safetensors)")
    pi.add_argument("model", help="path, or a known model name (see `fastspec models`)")
    pi.add_argument("--tensors", action="store_true", help="list every tensor")
    pi.add_argument("--metadata", action="store_true", help="print every metadata key")
    pi.set_defaults(func=_cmd_info)
    pm = sub.add_parser("models", help="list known models, or fetch one into the cache")
    pm.add_argument("--fetch", metavar="NAME", help="fetch NAME and print its local path")
    pm.set_defaults(func=_cmd_models)
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
