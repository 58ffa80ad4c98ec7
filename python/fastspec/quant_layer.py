"""One llama-family decoder layer in PyTorch, for the quantizer (`fastspec quantize`) only.

Hugging Face layout (rotate-half Q/K rows), float32, batched over calibration sequences that all
start at position 0:
    h1 = rms(x) * ln1;  x2 = x + Wo attn(rope(Wq h1 + bq), rope(Wk h1 + bk), Wv h1 + bv)
    h2 = rms(x2) * ln2; x' = x2 + Wd (silu(Wg h2) * Wu h2)
Supported: model_type llama, mistral (without sliding window), qwen2; rope unscaled, linear or
llama3. torch is imported by the quantizer only, never by `import fastspec`.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import torch
import torch.nn.functional as F

SUPPORTED_FAMILY = "llama"


def check_supported(cfg, where: str) -> None:
    """ValueError before any work when the quantizer cannot run this architecture."""
    if cfg.family != SUPPORTED_FAMILY:
        raise ValueError(f"{where}: quantize supports the llama family (llama, mistral, qwen2), not "
                         f"architecture {cfg.architecture!r}")
    if cfg.sliding_window:
        raise ValueError(f"{where}: sliding-window attention ({cfg.sliding_window}) is not supported by quantize")
    kind = cfg.rope_scaling["type"]
    if kind not in ("", "linear", "llama3"):
        raise ValueError(f"{where}: rope scaling {kind!r} is not supported by quantize (none, linear, llama3 are)")
    if cfg.rope_dim != cfg.head_dim:
        raise ValueError(f"{where}: partial rotary embeddings are not supported by quantize")


def inv_freq(cfg) -> torch.Tensor:
    """[rope_dim/2] inverse frequencies (HF's default / linear / llama3 formulas)."""
    d = cfg.rope_dim
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    rs = cfg.rope_scaling
    if rs["type"] == "linear":
        inv = inv / rs["factor"]
    elif rs["type"] == "llama3":
        f, lo, hi, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_context"]
        wl = 2 * math.pi / inv
        smooth = (old / wl - lo) / (hi - lo)
        inv = torch.where(wl > old / lo, inv / f, torch.where(wl < old / hi, inv, (1 - smooth) * inv / f + smooth * inv))
    return inv.float()


class Rope:
    def __init__(self, cfg, seqlen: int):
        ang = torch.arange(seqlen, dtype=torch.float32)[:, None] * inv_freq(cfg)[None, :]  # [T, D/2]
        emb = torch.cat([ang, ang], -1)
        self.cos, self.sin = emb.cos(), emb.sin()  # [T, D]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # x [B, H, T, D]
        x1, x2 = x.chunk(2, dim=-1)
        T = x.shape[2]
        return x * self.cos[:T] + torch.cat([-x2, x1], -1) * self.sin[:T]


def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def linear(x: torch.Tensor, w: torch.Tensor, b: Optional[torch.Tensor] = None) -> torch.Tensor:
    return F.linear(x, w, b)


class Layer:
    """Weights of one decoder layer: HF short names ("self_attn.q_proj.weight", ...) -> float32 tensors."""

    def __init__(self, w: Dict[str, torch.Tensor], cfg):
        self.w, self.cfg = w, cfg

    def bias(self, lin: str) -> Optional[torch.Tensor]:
        return self.w.get(lin + ".bias")

    def attn_core(self, h1: torch.Tensor, rope: Rope, wq=None, wk=None, wv=None) -> torch.Tensor:
        """Attention before o_proj: [B, T, n_heads*hd]. wq/wk/wv override the layer's weights."""
        c, w = self.cfg, self.w
        B, T, _ = h1.shape
        q = linear(h1, w["self_attn.q_proj.weight"] if wq is None else wq, self.bias("self_attn.q_proj"))
        k = linear(h1, w["self_attn.k_proj.weight"] if wk is None else wk, self.bias("self_attn.k_proj"))
        v = linear(h1, w["self_attn.v_proj.weight"] if wv is None else wv, self.bias("self_attn.v_proj"))
        q = q.view(B, T, c.n_heads, c.head_dim).transpose(1, 2)
        k = k.view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)
        v = v.view(B, T, c.n_kv_heads, c.head_dim).transpose(1, 2)
        q, k = rope(q), rope(k)
        rep = c.n_heads // c.n_kv_heads
        if rep > 1:
            k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [B, H, T, hd]
        return a.transpose(1, 2).reshape(B, T, c.n_heads * c.head_dim)

    def o_proj(self, core: torch.Tensor, wo=None) -> torch.Tensor:
        return linear(core, self.w["self_attn.o_proj.weight"] if wo is None else wo, self.bias("self_attn.o_proj"))

    def act(self, h2: torch.Tensor, wg=None, wu=None) -> torch.Tensor:
        g = linear(h2, self.w["mlp.gate_proj.weight"] if wg is None else wg)
        u = linear(h2, self.w["mlp.up_proj.weight"] if wu is None else wu)
        return F.silu(g) * u

    def down(self, a: torch.Tensor, wd=None) -> torch.Tensor:
        return linear(a, self.w["mlp.down_proj.weight"] if wd is None else wd)

    def forward(self, x: torch.Tensor, rope: Rope) -> Dict[str, torch.Tensor]:
        """The layer's output "out" and the inputs of its linears: "h1" (q/k/v), "core" (o_proj),
        "h2" (gate/up), "act" (down); all [B, T, *]."""
        eps = self.cfg.norm_eps
        h1 = rms_norm(x, self.w["input_layernorm.weight"], eps)
        core = self.attn_core(h1, rope)
        x2 = x + self.o_proj(core)
        h2 = rms_norm(x2, self.w["post_attention_layernorm.weight"], eps)
        a = self.act(h2)
        return {"h1": h1, "core": core, "h2": h2, "act": a, "out": x2 + self.down(a)}
