"""`fastspec quantize IN_DIR OUT_DIR --method awq|rtn [--calib FILE] [--group 128]`: int4 AutoAWQ checkpoints.

    import fastspec
    fastspec.export("smollm2-135m-instruct", "smollm2-hf")                     # GGUF -> HF folder
    r = fastspec.quantize("smollm2-hf", "smollm2-awq", method="awq", group=64)  # 576 = 9 x 64
    fastspec.Engine("smollm2-awq")

IN_DIR is a Hugging Face checkpoint folder (F32/F16/BF16, llama family for awq). OUT_DIR gets an
AutoAWQ "GEMM" checkpoint: every decoder linear (q/k/v/o/gate/up/down) as `qweight` int32 [in, out/8],
`qzeros` int32 [in/group, out/8], f16 `scales` [in/group, out] (awq_pack.py), every other tensor
F16, config.json with quantization_config {quant_method: awq, bits: 4, group_size, zero_point: true,
version: gemm}, and the tokenizer files copied.

- method "rtn": round-to-nearest, asymmetric, per (group, output) -- numpy only, no calibration.
- method "awq": layer by layer over calibration windows (calibration.py; default the packaged text):
  the float model's activations enter each layer (as AutoAWQ does), per-input-channel scales are
  searched for q/k/v (judged on the attention output), v->o (only without grouped-query attention),
  gate/up (judged on the MLP output) and down (awq_search.py); the scales are folded into the
  preceding RMSNorm / v_proj / up_proj rows, then per-group clipping is searched for every linear
  but q and k, then each is quantized on the RTN grid. `search_tokens` tokens (whole windows) judge
  the scale candidates, 512 strided tokens the clipping. torch is needed (`pip install fastspec[quantize]`).
The result's `errors` maps "layer.group" -> (RTN error, AWQ error): mean squared output error of that
group's module on the search tokens with only that group quantized.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

from . import awq_pack
from .hf_names import LINEARS
from .safetensors_write import SafetensorsWriter

METHODS = ("awq", "rtn")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja",
                   "special_tokens_map.json", "tokenizer.model")


@dataclass
class QuantizeResult:
    out_dir: str
    method: str
    group: int
    seconds: float
    errors: Dict[str, Tuple[float, float]] = field(default_factory=dict)


class _Progress:
    """One line on stderr, redrawn per layer (a new line per layer when stderr is not a terminal)."""

    def __init__(self, n: int, label: str, enabled: bool):
        self.n, self.label, self.enabled, self.t0 = n, label, enabled, time.perf_counter()
        self.tty = enabled and sys.stderr.isatty()

    def update(self, i: int, note: str = "") -> None:
        if not self.enabled:
            return
        el = time.perf_counter() - self.t0
        left = el / i * (self.n - i) if i else 0.0
        fill = int(24 * i / self.n)
        line = (f"{self.label} [{'#' * fill}{'.' * (24 - fill)}] {i}/{self.n} layers  {el:5.0f}s elapsed  "
                f"~{left:4.0f}s left  {note}")
        sys.stderr.write(("\r" + line) if self.tty else (line + "\n"))
        if self.tty and i == self.n:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _plan(info, cfg, group: int):
    """(linear prefixes per layer, other tensor names) after checking every shape against group."""
    layers, linear_names = [], set()
    for l in range(cfg.n_layers):
        prefixes = []
        for lin in LINEARS:
            p = f"model.layers.{l}.{lin}"
            t = info.tensors.get(p + ".weight")
            if t is None:
                raise ValueError(f"{info.path}: missing tensor '{p}.weight'")
            if t.type not in ("F32", "F16", "BF16"):
                raise ValueError(f"{info.path}: tensor '{p}.weight' is {t.type}; quantize reads F32/F16/BF16 checkpoints")
            awq_pack.check_shape(p + ".weight", t.shape[0], t.shape[1], group)
            prefixes.append(p)
            linear_names.add(p + ".weight")
        layers.append(prefixes)
    others = [n for n in info.tensors if n not in linear_names]
    return layers, others


def _specs(info, layers, others, group: int):
    specs = [(n, info.tensors[n].shape, "F16") for n in others]
    for prefixes in layers:
        for p in prefixes:
            out_f, in_f = info.tensors[p + ".weight"].shape
            specs += [(p + ".qweight", (in_f, out_f // 8), "I32"), (p + ".qzeros", (in_f // group, out_f // 8), "I32"),
                      (p + ".scales", (in_f // group, out_f), "F16")]
    return specs


def _order(others, layers):
    """Write order: non-layer tensors first, then each layer's (norms and biases, then linears)."""
    top = [n for n in others if not n.startswith("model.layers.")]
    per_layer = [[n for n in others if n.startswith(f"model.layers.{l}.")] for l in range(len(layers))]
    return top, per_layer


def quantize(in_dir: "str | os.PathLike[str]", out_dir: "str | os.PathLike[str]", method: str = "awq", *,
             calib: Optional[str] = None, group: int = 128, n_samples: int = 32, seqlen: int = 512,
             search_tokens: int = 2048, n_grid: int = 20, clip: bool = True, threads: Optional[int] = None,
             progress: bool = True) -> QuantizeResult:
    """Quantize the checkpoint folder in_dir into out_dir (see the module docstring).

    Everything that can be checked is checked before any work: the method, the group size against
    every linear's in/out features, the architecture (awq: llama family), the calibration text's
    length (n_samples windows of seqlen tokens), and that torch is importable (awq).
    """
    from .inspect import inspect

    t_start = time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (choose from {', '.join(METHODS)})")
    if group < 8 or group % 8:
        raise ValueError(f"group size {group}: must be a positive multiple of 8 (AutoAWQ uses 128)")
    src = os.fspath(in_dir)
    if not os.path.isdir(src) or not os.path.isfile(os.path.join(src, "config.json")):
        raise ValueError(f"{src}: not a Hugging Face checkpoint folder with config.json (make one from a GGUF "
                         "with `fastspec export`)")
    info = inspect(src)
    cfg = info.config
    if any(t.type == "AWQ_INT4" for t in info.tensors.values()):
        raise ValueError(f"{src}: already an AWQ checkpoint")
    if cfg.family not in ("llama", "gemma3"):
        raise ValueError(f"{src}: architecture {cfg.architecture!r} is not supported by quantize "
                         "(llama, mistral, qwen2; gemma3 with --method rtn)")
    layers, others = _plan(info, cfg, group)
    tok_windows = None
    if method == "awq":
        from . import calibration
        from .tokenizer import Tokenizer

        try:
            import torch  # noqa: F401
        except ImportError:
            raise ImportError("fastspec quantize --method awq needs PyTorch: pip install 'fastspec[quantize]'") from None
        from .quant_layer import check_supported

        check_supported(cfg, src)
        text = calibration.read_text(calib)
        tok_windows = calibration.windows(Tokenizer.from_dir(src), text, n_samples, seqlen,
                                          calib or "the packaged calibration text")
    with open(os.path.join(src, "config.json"), encoding="utf-8") as f:
        config = json.load(f)

    dst = os.fspath(out_dir)
    if os.path.abspath(dst) == os.path.abspath(src):
        raise ValueError(f"{dst}: output folder is the input folder")
    os.makedirs(dst, exist_ok=True)
    top, per_layer = _order(others, layers)
    specs = {n: (s, d) for n, s, d in _specs(info, layers, others, group)}
    order = list(top)
    for l, prefixes in enumerate(layers):
        order += per_layer[l] + [p + sfx for p in prefixes for sfx in (".qweight", ".qzeros", ".scales")]
    writer = SafetensorsWriter(os.path.join(dst, "model.safetensors"), [(n, *specs[n]) for n in order],
                               metadata={"format": "pt"})
    errors: Dict[str, Tuple[float, float]] = {}
    bar = _Progress(len(layers), f"quantize {method} g{group}", progress)
    try:
        for n in top:
            writer.write(n, info.tensor(n))
        if method == "rtn":
            for l, prefixes in enumerate(layers):
                for n in per_layer[l]:
                    writer.write(n, info.tensor(n))
                for p in prefixes:
                    qw, qz, sc = awq_pack.pack_linear(info.tensor(p + ".weight"), group)
                    writer.write(p + ".qweight", qw)
                    writer.write(p + ".qzeros", qz)
                    writer.write(p + ".scales", sc)
                bar.update(l + 1)
        else:
            from .awq_layer import quantize_layers

            for l, stored, errs in quantize_layers(info, cfg, tok_windows, group, search_tokens=search_tokens,
                                                   n_grid=n_grid, clip=clip, threads=threads):
                for n in per_layer[l]:
                    writer.write(n, stored[n])
                for p in layers[l]:
                    qw, qz, sc = awq_pack.pack_linear(stored[p + ".weight"], group)
                    writer.write(p + ".qweight", qw)
                    writer.write(p + ".qzeros", qz)
                    writer.write(p + ".scales", sc)
                errors.update({f"{l}.{g}": e for g, e in errs.items()})
                worst = max(a / r for r, a in errs.values() if r > 0) if errs else 0.0
                bar.update(l + 1, f"awq/rtn error <= {worst:.2f}")
        writer.close()
    except BaseException:
        writer.abort()
        raise
    config["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": group, "zero_point": True,
                                     "version": "gemm", "modules_to_not_convert": None}
    config["torch_dtype"] = "float16"
    with open(os.path.join(dst, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    for name in TOKENIZER_FILES:
        p = os.path.join(src, name)
        if os.path.isfile(p):
            shutil.copyfile(p, os.path.join(dst, name))
    return QuantizeResult(dst, method, group, time.perf_counter() - t_start, errors)
