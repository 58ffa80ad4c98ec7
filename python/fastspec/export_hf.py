"""`fastspec export MODEL OUT_DIR [--dtype f16|bf16|f32]`: a GGUF model -> a Hugging Face checkpoint folder.

    import fastspec
    fastspec.export("smollm2-135m-instruct", "smollm2-hf", dtype="f16")

OUT_DIR receives config.json (hf_config.py), model.safetensors (every tensor dequantized by the core
and stored in `dtype`), tokenizer.json + tokenizer_config.json (with the chat template) and
generation_config.json (export_tokenizer.py). transformers' from_pretrained and fastspec both load it.

What changes on the way (the inverse of llama.cpp's convert_hf_to_gguf.py):
- names: GGUF -> HF (hf_names.py);
- llama-architecture Q/K rows (and biases): llama.cpp permuted them per head into adjacent rotary
  pairs; they are un-permuted back to the rotate-half layout HF uses (`unpermute_qk`);
- Gemma RMSNorm weights: GGUF stores them with the +1 added; 1 is subtracted again.
Tensors are processed one at a time (memory stays near one float32 tensor).
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from . import models
from .hf_config import hf_config
from .hf_names import hf_name
from .safetensors_write import SafetensorsWriter

DTYPES = {"f16": "F16", "bf16": "BF16", "f32": "F32"}


def unpermute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """Adjacent-pair rotary rows (llama.cpp's LlamaModel.permute) -> rotate-half rows, per head.
    Works on [rows, cols] weights and [rows] biases."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _progress_line(i: int, n: int, name: str, shape, secs: float) -> None:
    print(f"[{i:>{len(str(n))}}/{n}] {name:<48} {str(list(shape)):<14} {secs:5.2f}s", file=sys.stderr, flush=True)


def export(model: "str | os.PathLike[str]", out_dir: "str | os.PathLike[str]", dtype: str = "f16",
           progress: Optional[Callable[..., None]] = _progress_line) -> Dict[str, int]:
    """Write GGUF `model` (a path or known name) as a Hugging Face checkpoint into out_dir.

    Returns {HF tensor name: bytes stored}. progress(i, n, name, shape, seconds) after each tensor
    (None: silent). Raises ValueError for a bad dtype, a non-GGUF input or an architecture/rope
    layout that has no exact HF form; fastspec.FormatError for a malformed file.
    """
    from .export_tokenizer import write_tokenizer
    from .inspect import inspect
    from .tokenizer import Tokenizer

    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r} (choose from {', '.join(DTYPES)})")
    st_dtype = DTYPES[dtype]
    src = models.path(model)
    info = inspect(src)
    if info.format != "gguf":
        raise ValueError(f"{src}: not a GGUF file (format {info.format}); it is already a Hugging Face checkpoint")
    cfg = info.config
    if cfg.family not in ("llama", "gemma3"):
        raise ValueError(f"{src}: architecture {cfg.architecture!r} cannot be exported (supported: llama, "
                         "smollm, mistral, qwen2, gemma3)")
    if cfg.rope_pairs_adjacent and cfg.rope_dim != cfg.head_dim:
        raise ValueError(f"{src}: partial rotary ({cfg.rope_dim} of {cfg.head_dim} dims) with permuted Q/K rows "
                         "is not supported by export")
    names = list(info.tensors)
    has_bias = any(n.endswith(".bias") for n in names)
    config = hf_config(cfg, info.metadata, st_dtype, src, has_bias=has_bias,
                       has_rope_freqs="rope_freqs.weight" in info.tensors)

    plan: List[Tuple[str, str, Tuple[int, ...]]] = []  # gguf name, hf name, shape
    for n in names:
        h = hf_name(n, cfg.family)
        if h is None:
            raise ValueError(f"{src}: tensor {n!r} {list(info.tensors[n].shape)} has no Hugging Face name "
                             f"for architecture {cfg.architecture!r}")
        if h == "lm_head.weight" and cfg.tied_embeddings:
            continue
        plan.append((n, h, info.tensors[n].shape))
    plan.sort(key=lambda p: p[1])

    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    sizes: Dict[str, int] = {}
    writer = SafetensorsWriter(os.path.join(out, "model.safetensors"), [(h, s, st_dtype) for _, h, s in plan],
                               metadata={"format": "pt"})
    try:
        for i, (g, h, shape) in enumerate(plan, 1):
            t0 = time.perf_counter()
            arr = info.tensor(g)
            if cfg.rope_pairs_adjacent and (".q_proj." in h or ".k_proj." in h):
                arr = unpermute_qk(arr, cfg.n_heads if ".q_proj." in h else cfg.n_kv_heads)
            if cfg.norm_weight_plus_one and h.endswith("norm.weight"):
                arr = arr - np.float32(1.0)
            writer.write(h, arr)
            sizes[h] = arr.size * (4 if st_dtype == "F32" else 2)
            del arr
            if progress is not None:
                progress(i, len(plan), h, shape, time.perf_counter() - t0)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    pad = info.metadata.get("tokenizer.ggml.padding_token_id")
    write_tokenizer(Tokenizer.from_gguf(src), out, model_max_length=cfg.context_length,
                    pad_id=pad if isinstance(pad, int) else None)
    return sizes
