"""The `fastspec` command line.

    fastspec run [--model NAME_OR_PATH] "prompt"         stream a reply (chat template when the model has one)
    fastspec info PATH_OR_NAME [--tensors] [--metadata]   summary of a model file
    fastspec models [--fetch NAME]                        known models and the cache
    fastspec convert IN.gguf OUT.gguf --type q4_0         re-store a GGUF model as f16/q8_0/q4_0
    fastspec audit MODEL --draft D [--prompts N] [--samples N]   check that speculation is lossless
    fastspec export MODEL OUT_DIR [--dtype f16|bf16|f32]  a GGUF model -> Hugging Face checkpoint folder
    fastspec quantize IN_DIR OUT_DIR --method awq|rtn [--calib FILE] [--group 128]   int4 AutoAWQ checkpoint
    fastspec perplexity MODEL TEXT_FILE [--context 512]   perplexity of a text (non-overlapping windows)
    fastspec serve --model M [--draft D] [--port 8000] [--parallel 16]   OpenAI-compatible HTTP server
    fastspec distill MODEL --out HEAD.gguf [--kind eagle|medusa] [--minutes 50]   train a draft head
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

    eng = Engine(args.model, draft=args.draft, k=args.k, tree_nodes=args.tree_nodes, threads=args.threads,
                 context=args.context, trace=args.trace, lookup_min=args.lookup_min)
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


def _cmd_audit(args) -> int:
    from .audit import run_audit

    res = run_audit(args.model, args.draft, k=args.k, prompts=args.prompts, samples=args.samples,
                    max_tokens=args.max_tokens, temperature=args.temperature, top_k=args.top_k,
                    top_p=args.top_p, alpha=args.alpha, seed=args.seed, threads=args.threads,
                    context=args.context, tree_nodes=args.tree_nodes, lookup_min=args.lookup_min)
    return 0 if res.passed else 1


def _cmd_export(args) -> int:
    from .export_hf import export

    sizes = export(args.model, args.out_dir, dtype=args.dtype)
    print(f"wrote {args.out_dir} ({len(sizes)} tensors, {sum(sizes.values()) / 1e6:.1f} MB, {args.dtype})",
          file=sys.stderr)
    return 0


def _cmd_quantize(args) -> int:
    from .quantizer import quantize

    r = quantize(args.in_dir, args.out_dir, args.method, calib=args.calib, group=args.group,
                 n_samples=args.samples, seqlen=args.seqlen, search_tokens=args.search_tokens,
                 clip=not args.no_clip, threads=args.threads)
    msg = f"wrote {r.out_dir} ({r.method}, group {r.group}, {r.seconds:.0f} s)"
    if r.errors:
        rtn = sum(e[0] for e in r.errors.values())
        awq = sum(e[1] for e in r.errors.values())
        msg += f"; layer output error on the calibration tokens: AWQ {awq / rtn:.3f} x RTN's"
    print(msg, file=sys.stderr)
    return 0


def _cmd_perplexity(args) -> int:
    from .perplexity_eval import _progress_line, perplexity_windows

    with open(args.text_file, encoding="utf-8") as f:
        text = f.read()
    r = perplexity_windows(args.model, text, args.context, max_windows=args.max_windows, threads=args.threads,
                           precision=args.precision, progress=_progress_line if not args.quiet else None)
    print(f"{r.perplexity:.4f}")
    print(f"[{r.tokens} tokens scored in {r.windows} windows of {args.context}]", file=sys.stderr)
    return 0


def _cmd_serve(args) -> int:
    try:
        from .server import serve
    except ImportError as e:
        raise ImportError(f"{e}: `fastspec serve` needs the server extra: pip install 'fastspec[server]'") from None
    return serve(args.model, host=args.host, port=args.port, log_format=args.log_format, draft=args.draft,
                 k=args.k, parallel=args.parallel, context=args.context, threads=args.threads,
                 max_queue=args.max_queue, prefix_cache_mb=args.prefix_cache_mb,
                 spec_backoff=not args.no_spec_backoff, tree_nodes=args.tree_nodes, lookup_min=args.lookup_min)


def _cmd_distill(args) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ImportError("`fastspec distill` trains with PyTorch: pip install 'fastspec[train]'") from None
    from .distill import distill

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    distill(args.target, args.out, kind=args.kind, minutes=args.minutes, prompts=args.prompts, vocab=args.vocab,
            threads=args.threads, dtype=args.dtype, work_dir=args.work_dir, max_new=args.max_new,
            medusa_heads=args.medusa_heads, steps=args.steps, lr=args.lr, features=args.features, progress=progress)
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
    pr.add_argument("--draft", default=None,
                    help="speculative decoding: 'ngram', a draft model (path or name) or a head from `fastspec distill`")
    pr.add_argument("--k", type=int, default=None, help="draft tokens per step (default: adaptive)")
    pr.add_argument("--tree-nodes", type=int, default=0,
                    help="with --draft ngram or a head: token trees of up to this many nodes (default 0: chains)")
    pr.add_argument("--lookup-min", type=int, default=0,
                    help="with a draft model or head: prompt lookup drafts first where the last N+ tokens "
                         "occurred earlier in the context (default 0: off)")
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
    pa = sub.add_parser("audit", help="check that speculation leaves the output unchanged (PASS/FAIL)")
    pa.add_argument("model", help="target: path or known name")
    pa.add_argument("--draft", required=True, help='"ngram" or a draft model path/name')
    pa.add_argument("--k", type=int, default=None, help="fixed draft length (default: adaptive)")
    pa.add_argument("--tree-nodes", type=int, default=0, help="token trees of up to this many nodes (default 0: chains)")
    pa.add_argument("--lookup-min", type=int, default=0,
                    help="with a draft model or head: prompt lookup first where the last N+ tokens occurred earlier")
    pa.add_argument("--prompts", type=int, default=4, help="built-in prompts for the greedy check (default 4, at most 8)")
    pa.add_argument("--samples", type=int, default=1000, help="sampled runs for the chi-square check (default 1000)")
    pa.add_argument("--max-tokens", "-n", type=int, default=64, help="greedy tokens per prompt (default 64)")
    pa.add_argument("--temperature", "-t", type=float, default=1.0, help="for the sampled check (default 1.0)")
    pa.add_argument("--top-k", type=int, default=0)
    pa.add_argument("--top-p", type=float, default=1.0)
    pa.add_argument("--alpha", type=float, default=1e-3, help="p-value below which the sampled check fails")
    pa.add_argument("--seed", type=int, default=0, help="first seed of the sampled runs")
    pa.add_argument("--threads", type=int, default=None)
    pa.add_argument("--context", type=int, default=2048)
    pa.set_defaults(func=_cmd_audit)
    pe = sub.add_parser("export", help="write a GGUF model as a Hugging Face checkpoint folder")
    pe.add_argument("model", help="GGUF file or known model name")
    pe.add_argument("out_dir", help="folder to write (config.json, model.safetensors, tokenizer files)")
    pe.add_argument("--dtype", default="f16", choices=["f16", "bf16", "f32"], help="tensor type (default f16)")
    pe.set_defaults(func=_cmd_export)
    pq = sub.add_parser("quantize", help="int4 AutoAWQ (GEMM) checkpoint from a Hugging Face checkpoint")
    pq.add_argument("in_dir", help="Hugging Face checkpoint folder (F32/F16/BF16; see `fastspec export`)")
    pq.add_argument("out_dir", help="folder to write")
    pq.add_argument("--method", required=True, choices=["awq", "rtn"],
                    help="awq: activation-aware scale + clip search; rtn: round to nearest (the baseline)")
    pq.add_argument("--calib", default=None, help="calibration text file (default: the packaged Jargon File excerpt)")
    pq.add_argument("--group", type=int, default=128, help="inputs per scale/zero group (default 128)")
    pq.add_argument("--samples", type=int, default=32, help="calibration windows (default 32)")
    pq.add_argument("--seqlen", type=int, default=512, help="tokens per calibration window (default 512)")
    pq.add_argument("--search-tokens", type=int, default=2048, help="tokens judging each scale candidate (default 2048)")
    pq.add_argument("--no-clip", action="store_true", help="skip the clipping search")
    pq.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    pq.set_defaults(func=_cmd_quantize)
    pp = sub.add_parser("perplexity", help="perplexity of a text file under a model (prints it on stdout)")
    pp.add_argument("model", help="path or known name (GGUF, safetensors, AWQ checkpoint)")
    pp.add_argument("text_file", help="UTF-8 text")
    pp.add_argument("--context", type=int, default=512, help="tokens per window (default 512)")
    pp.add_argument("--max-windows", type=int, default=None, help="score only the first N windows")
    pp.add_argument("--precision", default=None, choices=["q8", "f32"], help="engine precision (default: q8)")
    pp.add_argument("--threads", type=int, default=None)
    pp.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    pp.set_defaults(func=_cmd_perplexity)
    ps = sub.add_parser("serve", help="OpenAI-compatible HTTP server (continuous batching; fastspec[server] extra)")
    ps.add_argument("--model", "-m", default=DEFAULT_MODEL, help=f"path or known name (default {DEFAULT_MODEL})")
    ps.add_argument("--draft", default=None,
                    help="speculative decoding: 'ngram', a draft model (path or name) or a head from `fastspec distill`")
    ps.add_argument("--k", type=int, default=None, help="draft tokens per step (default: adaptive)")
    ps.add_argument("--tree-nodes", type=int, default=0,
                    help="with --draft ngram or a head: token trees of up to this many nodes (default 0: chains)")
    ps.add_argument("--lookup-min", type=int, default=0,
                    help="with a draft model or head: prompt lookup drafts first where the last N+ tokens "
                         "occurred earlier in the context (default 0: off)")
    ps.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ps.add_argument("--port", type=int, default=8000, help="default 8000")
    ps.add_argument("--parallel", type=int, default=16, help="sequences decoding at once (default 16)")
    ps.add_argument("--context", type=int, default=4096, help="positions per sequence (default 4096)")
    ps.add_argument("--threads", type=int, default=None, help="default: physical cores")
    ps.add_argument("--max-queue", type=int, default=64,
                    help="requests waiting for a slot beyond which the server answers 503 (default 64)")
    ps.add_argument("--prefix-cache-mb", type=int, default=256, help="prefix-cache K/V memory (default 256; 0 = off)")
    ps.add_argument("--no-spec-backoff", action="store_true", help="keep greedy requests' full draft lengths under load "
                    "(sampled requests always keep theirs: a seed's text must not depend on the load)")
    ps.add_argument("--log-format", default="text", choices=["text", "json"], help="request log lines (default text)")
    ps.set_defaults(func=_cmd_serve)
    pd = sub.add_parser("distill", help="train a draft head (EAGLE or Medusa) for a model on this machine "
                                         "(fastspec[train] extra)")
    pd.add_argument("target", help="the model the head drafts for (path or known name)")
    pd.add_argument("--out", required=True, help="the head GGUF to write")
    pd.add_argument("--kind", default="eagle", choices=["eagle", "medusa"], help="default eagle")
    pd.add_argument("--minutes", type=float, default=50.0, help="whole budget, data + training (default 50)")
    pd.add_argument("--prompts", default=None,
                    help="training prompts, one per line (default: the set shipped in fastspec/data)")
    pd.add_argument("--vocab", type=int, default=None,
                    help="output rows kept (FR-Spec; default min(V, 8192), 16384 beyond 100k tokens)")
    pd.add_argument("--threads", type=int, default=None, help="default: all cores")
    pd.add_argument("--dtype", default="q8_0", choices=["q8_0", "f16", "f32"], help="matrices (default q8_0)")
    pd.add_argument("--work-dir", default=None,
                    help="data and checkpoints, resumed when present (default ~/.cache/fastspec/distill/<sha12>)")
    pd.add_argument("--max-new", type=int, default=256, help="answer tokens per prompt (default 256)")
    pd.add_argument("--medusa-heads", type=int, default=4, help="Medusa heads (default 4)")
    pd.add_argument("--steps", type=int, default=3, help="EAGLE drafting steps trained unrolled (default 3)")
    pd.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (AdamW; default 3e-3)")
    pd.add_argument("--features", default="last", choices=["last", "eagle3"],
                    help="target states an EAGLE head reads: the last (default) or EAGLE-3's low/mid/high triple")
    pd.set_defaults(func=_cmd_distill)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from . import FormatError, ModelError

    try:
        return args.func(args)
    except (FormatError, ModelError, ValueError, FileNotFoundError, RuntimeError, ImportError) as e:
        print(f"fastspec: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
