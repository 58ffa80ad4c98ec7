"""Pure-PyTorch reference forward for the llama family (llama, qwen2, mistral-style).

Independent of fastspec and of transformers: weights come in as a dict of Hugging Face names
([out, in] matrices, rotate-half Q/K layout), the config as the HF config.json dict.

    ref = RefLlama(weights, cfg)            # dtype=torch.float64 for a tighter ground truth
    a = ref.forward([1, 2, 3], start=0)     # prefill -> logits [3, vocab]
    b = ref.forward([4], start=3)           # one-token decode on the cached prefix
    c = ref.forward([5, 6, 7], start=4)     # several tokens on a warm cache
    ref.truncate(4)                         # roll the KV cache back to 4 positions

Model: RMSNorm; RoPE in rotate-half layout (default, "linear" or "llama3" scaling); grouped-query
attention with a causal mask; SwiGLU MLP; tied or separate output matrix; any linear may carry a
bias (qwen2 has q/k/v biases) -- a bias is used when its tensor is present.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F


# ---- shared pieces (also used by gemma3.py) ----------------------------------------------------

def to_tensors(weights, dtype):
    """dict of np.ndarray / torch.Tensor -> dict of torch tensors of `dtype`."""
    return {k: torch.as_tensor(np.asarray(v) if not torch.is_tensor(v) else v).to(dtype)
            for k, v in weights.items()}


def rope_params(cfg, kind="global"):
    """(theta, scaling dict or None) from a config in either the classic (rope_theta/rope_scaling)
    or the transformers-5 (rope_parameters, possibly nested per layer type) form.
    kind: "global" (full attention) or "local" (gemma3 sliding layers)."""
    rp = cfg.get("rope_parameters")
    if rp and ("full_attention" in rp or "sliding_attention" in rp):
        rp = rp["sliding_attention" if kind == "local" else "full_attention"]
    if rp:
        scaling = dict(rp) if rp.get("rope_type", rp.get("type", "default")) != "default" else None
        return float(rp["rope_theta"]), scaling
    if kind == "local":
        return float(cfg.get("rope_local_base_freq", 10000.0)), None
    scaling = cfg.get("rope_scaling")
    if scaling and scaling.get("rope_type", scaling.get("type")) in (None, "default"):
        scaling = None
    return float(cfg.get("rope_theta", 10000.0)), scaling


def rope_inv_freq(theta, head_dim, scaling, max_pos, dtype):
    """[head_dim/2] inverse frequencies, with HF's "linear" / "llama3" scaling formulas."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    kind = (scaling or {}).get("rope_type", (scaling or {}).get("type"))
    if kind == "linear":
        inv = inv / scaling["factor"]
    elif kind == "llama3":
        f, lo, hi = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling.get("original_max_position_embeddings", max_pos)
        wavelen = 2 * math.pi / inv
        smooth = (old / wavelen - lo) / (hi - lo)
        mid = (1 - smooth) * inv / f + smooth * inv
        inv = torch.where(wavelen > old / lo, inv / f, torch.where(wavelen < old / hi, inv, mid))
    elif kind is not None:
        raise NotImplementedError(f"rope scaling {kind!r}")
    return inv.to(dtype)


def rope(x, pos, inv_freq):
    """Rotate-half RoPE. x [H, T, D], pos [T] -> [H, T, D]."""
    ang = pos.to(inv_freq.dtype)[:, None] * inv_freq[None, :]          # [T, D/2]
    cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos.to(x.dtype) + torch.cat([-x2, x1], -1) * sin.to(x.dtype)


def rms_norm(x, w, eps):
    """x / sqrt(mean(x^2) + eps) * w over the last axis."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def attention(q, k, v, q_pos, k_pos, scale, window=None, softcap=None):
    """Causal GQA. q [H, T, D], k/v [Hkv, S, D]; query head h reads kv head h // (H/Hkv).
    window: keys with q_pos - k_pos >= window are masked (HF/llama.cpp sliding window)."""
    group = q.shape[0] // k.shape[0]
    k, v = k.repeat_interleave(group, 0), v.repeat_interleave(group, 0)
    s = (q @ k.transpose(1, 2)) * scale                               # [H, T, S]
    if softcap is not None:
        s = torch.tanh(s / softcap) * softcap
    allowed = k_pos[None, :] <= q_pos[:, None]
    if window is not None:
        allowed &= (q_pos[:, None] - k_pos[None, :]) < window
    s = s.masked_fill(~allowed, float("-inf"))
    return torch.softmax(s, dim=-1) @ v                               # [H, T, D]


class KVCache:
    """Per-layer K/V [Hkv, n, D] tensors, grown by append, rolled back by truncate."""

    def __init__(self, n_layers):
        self.k, self.v = [None] * n_layers, [None] * n_layers

    def __len__(self):
        return 0 if self.k[0] is None else self.k[0].shape[1]

    def append(self, layer, k, v):
        if self.k[layer] is not None:
            k, v = torch.cat([self.k[layer], k], 1), torch.cat([self.v[layer], v], 1)
        self.k[layer], self.v[layer] = k, v
        return k, v

    def truncate(self, n):
        if n < 0 or n > len(self):
            raise ValueError(f"truncate({n}) with {len(self)} cached positions")
        self.k = [None if t is None or n == 0 else t[:, :n] for t in self.k]
        self.v = [None if t is None or n == 0 else t[:, :n] for t in self.v]


class CachedModel:
    """forward(tokens, start) / truncate(n) bookkeeping shared by the reference models."""

    def forward(self, tokens, start=None):
        """Logits [len(tokens), vocab] for tokens at positions start.. (default: after the cache).
        start < cached length first truncates the cache to start; start > cached is an error."""
        n = len(self.cache)
        start = n if start is None else start
        if start > n:
            raise ValueError(f"start={start} but only {n} positions are cached")
        if start < n:
            self.cache.truncate(start)
        if len(tokens) == 0:
            raise ValueError("forward needs at least one token")
        with torch.no_grad():
            return self._forward(torch.as_tensor(list(tokens), dtype=torch.long), start)

    def truncate(self, n):
        self.cache.truncate(n)

    def reset(self):
        self.cache = KVCache(self.n_layers)

    @property
    def n_cached(self):
        return len(self.cache)


# ---- the model -----------------------------------------------------------------------------------

class RefLlama(CachedModel):
    def __init__(self, weights, cfg, dtype=torch.float32):
        self.cfg, self.dtype, self.w = cfg, dtype, to_tensors(weights, dtype)
        self.n_layers = cfg["num_hidden_layers"]
        self.n_head = cfg["num_attention_heads"]
        self.n_kv = cfg.get("num_key_value_heads") or self.n_head
        self.head_dim = cfg.get("head_dim") or cfg["hidden_size"] // self.n_head
        self.eps = cfg["rms_norm_eps"]
        theta, scaling = rope_params(cfg)
        self.inv_freq = rope_inv_freq(theta, self.head_dim, scaling,
                                      cfg.get("max_position_embeddings", 2048), dtype)
        tied = cfg.get("tie_word_embeddings", False)  # LlamaConfig's default is untied
        self.out = self.w["model.embed_tokens.weight" if tied else "lm_head.weight"]
        self.reset()

    def lin(self, x, name):
        """x @ W^T (+ b when the checkpoint has a bias for this projection)."""
        b = self.w.get(name + ".bias")
        return F.linear(x, self.w[name + ".weight"], b)

    def _forward(self, toks, start):
        w, hd, T = self.w, self.head_dim, len(toks)
        pos = torch.arange(start, start + T)
        x = w["model.embed_tokens.weight"][toks]                                    # [T, n_embd]
        for i in range(self.n_layers):
            p = f"model.layers.{i}."
            h = rms_norm(x, w[p + "input_layernorm.weight"], self.eps)
            q = self.lin(h, p + "self_attn.q_proj").view(T, self.n_head, hd).transpose(0, 1)
            k = self.lin(h, p + "self_attn.k_proj").view(T, self.n_kv, hd).transpose(0, 1)
            v = self.lin(h, p + "self_attn.v_proj").view(T, self.n_kv, hd).transpose(0, 1)
            q, k = rope(q, pos, self.inv_freq), rope(k, pos, self.inv_freq)
            k, v = self.cache.append(i, k, v)                                      # [Hkv, S, hd]
            a = attention(q, k, v, pos, torch.arange(k.shape[1]), hd ** -0.5)      # [H, T, hd]
            x = x + self.lin(a.transpose(0, 1).reshape(T, -1), p + "self_attn.o_proj")
            h = rms_norm(x, w[p + "post_attention_layernorm.weight"], self.eps)
            g = F.silu(self.lin(h, p + "mlp.gate_proj")) * self.lin(h, p + "mlp.up_proj")
            x = x + self.lin(g, p + "mlp.down_proj")
        return rms_norm(x, w["model.norm.weight"], self.eps) @ self.out.T          # [T, vocab]
