"""The draft heads in PyTorch, the same math as the C++ heads (cpp/src/model/eagle_head.h,
medusa_head.h) so that a head trained here drafts the same tokens there; `load_head(path)`
reads a head GGUF back into these modules (tests compare both sides). Needs the `train` extra.

EAGLE, head row t (rotary position t, causal):
    x_t = W_fc [E(c_{t+1}); F_t] + b_fc;  y_t = llama decoder layer(x_t);  g_t = rms(y_t) * w_out
    logits_t = W_sub g_t  (predicts c_{t+2}; g_t ~ F_{t+1})
Drafting step s >= 1 feeds the head its own g instead of F: row (s, j) at position j + s reads
E(c_{j+s+1}) and g_{s-1, j}, and attends to the true rows 0..j and to rows (1..s, j) -- what the
C++ drafter's cache holds at that step. `EagleHead.unroll` trains all steps at once.
EAGLE-3 (n_feat > 1): the true rows read F_t = W_feat [s_low; ...; s_high] of the target's states
at t instead of one state; drafted rows still read g.
Medusa: h_i = F_t + silu(W_i F_t + b_i), logits_i = W_sub h_i predicts c_{t+2+i}.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np
import torch
import torch.nn.functional as F_


@dataclass
class EagleShape:
    d: int          # n_embd (the target's)
    n_heads: int
    n_kv: int
    head_dim: int
    ff: int
    v_sub: int
    eps: float = 1e-5
    theta: float = 10000.0


def _mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b, back in float32: under bf16 autocast (training) only the products are bf16; norms,
    softmax and the residual stream stay float32, as in the C++ heads."""
    return torch.matmul(a, b).float()


def _rms(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def _rope(x: torch.Tensor, pos: torch.Tensor, theta: float) -> torch.Tensor:
    """x [B, T, h, hd], pos [T] (rotate-half pairs: i with i + hd/2)."""
    hd = x.shape[-1]
    inv = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = (pos.to(torch.float64)[:, None] * inv[None, :]).to(x.dtype)  # [T, hd/2]
    c, s = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)


class EagleHead(torch.nn.Module):
    def __init__(self, shape: EagleShape, w_sub: torch.Tensor, n_feat: int = 1):
        super().__init__()
        s = self.shape = shape
        self.n_feat = n_feat
        d, q, kv = s.d, s.n_heads * s.head_dim, s.n_kv * s.head_dim
        lin = lambda o, i: torch.nn.Parameter(torch.randn(o, i) / math.sqrt(i))  # noqa: E731
        self.fc_w = torch.nn.Parameter(torch.cat([torch.randn(d, d) * 0.1 / math.sqrt(d), torch.eye(d)], 1))
        self.fc_b = torch.nn.Parameter(torch.zeros(d))
        self.attn_norm = torch.nn.Parameter(torch.ones(d))
        self.ffn_norm = torch.nn.Parameter(torch.ones(d))
        self.out_norm = torch.nn.Parameter(torch.ones(d))
        self.wq, self.wk, self.wv = lin(q, d), lin(kv, d), lin(kv, d)
        self.wo = torch.nn.Parameter(torch.randn(d, q) * 0.1 / math.sqrt(q))
        self.w_gate, self.w_up = lin(s.ff, d), lin(s.ff, d)
        self.w_down = torch.nn.Parameter(torch.randn(d, s.ff) * 0.1 / math.sqrt(s.ff))
        self.register_buffer("w_sub", w_sub.float())  # [V_sub, d] the target's rows, frozen
        if n_feat > 1:  # EAGLE-3: F_t = W_feat [low; mid; high] (starts as the last, high, state)
            self.feat_w = torch.nn.Parameter(torch.cat([torch.zeros(d, (n_feat - 1) * d), torch.eye(d)], 1))

    def reduce(self, feat):
        """The target's recorded states of a row [B, T, n_feat * d] -> F_t [B, T, d]."""
        return feat if self.n_feat == 1 else _mm(feat, self.feat_w.T)

    # one decoder layer over rows x [B, T, d] at positions pos; attention to keys of `past` rows
    # (k, v [B, Tk, h_kv, hd], additive mask [T, Tk]) and to each row's own `diag` keys
    def _layer(self, x, pos, ctx_kv, ctx_mask, diag: List[Tuple[torch.Tensor, torch.Tensor]]):
        s = self.shape
        B, T, _ = x.shape
        h = _rms(x, self.attn_norm, s.eps)
        q = _rope(_mm(h, self.wq.T).view(B, T, s.n_heads, s.head_dim), pos, s.theta)
        k = _rope(_mm(h, self.wk.T).view(B, T, s.n_kv, s.head_dim), pos, s.theta)
        v = _mm(h, self.wv.T).view(B, T, s.n_kv, s.head_dim)
        g = s.n_heads // s.n_kv
        rep = lambda t: t.repeat_interleave(g, dim=2)  # noqa: E731  [B, *, h, hd]
        scale = 1.0 / math.sqrt(s.head_dim)
        qh = q.transpose(1, 2)  # [B, h, T, hd]
        kc, vc = (k, v) if ctx_kv is None else ctx_kv  # step 0: the true rows, causal over themselves
        sc = _mm(qh, rep(kc).transpose(1, 2).transpose(-1, -2)) * scale + ctx_mask  # [B, h, T, Tk]
        own = [(k, v)] if ctx_kv is not None else []
        dk = [rep(a).transpose(1, 2) for a, _ in diag + own]  # each [B, h, T, hd]
        dv = [rep(b).transpose(1, 2) for _, b in diag + own]
        if dk:
            sd = torch.stack([(qh * a).sum(-1) for a in dk], -1) * scale  # [B, h, T, n_diag]
            p = torch.softmax(torch.cat([sc, sd], -1), -1)
            o = _mm(p[..., : sc.shape[-1]], rep(vc).transpose(1, 2))
            o = o + (p[..., sc.shape[-1]:].unsqueeze(-1) * torch.stack(dv, -2)).sum(-2)
        else:
            o = _mm(torch.softmax(sc, -1), rep(vc).transpose(1, 2))
        x = x + _mm(o.transpose(1, 2).reshape(B, T, -1), self.wo.T)
        h2 = _rms(x, self.ffn_norm, s.eps)
        y = x + _mm(F_.silu(_mm(h2, self.w_gate.T)) * _mm(h2, self.w_up.T), self.w_down.T)
        return _rms(y, self.out_norm, s.eps), (k, v)

    def fuse(self, emb, feat):
        return _mm(torch.cat([emb, feat], -1), self.fc_w.T) + self.fc_b

    def forward(self, emb, feat):
        """emb, feat [B, T, d] (E(c_{t+1}), F_t) -> (logits [B, T, V_sub], g [B, T, d]), causal rows."""
        T = emb.shape[1]
        mask = torch.full((T, T), float("-inf")).triu(1)
        g, _ = self._layer(self.fuse(emb, self.reduce(feat)), torch.arange(T), None, mask, [])
        return _mm(g, self.w_sub.T), g

    def unroll(self, emb, feat, steps: int):
        """Training: emb [B, T+steps-1, d] holds E(c_1)..; feat [B, T, d] holds F_0..F_{T-1}.
        Returns per step s (0..steps-1) (logits [B, T, V_sub], g [B, T, d]) of rows (s, j)."""
        T = feat.shape[1]
        mask = torch.full((T, T), float("-inf")).triu(1)
        pos = torch.arange(T)
        g, kv0 = self._layer(self.fuse(emb[:, :T], self.reduce(feat)), pos, None, mask, [])
        out = [(_mm(g, self.w_sub.T), g)]
        diag = []
        for s in range(1, steps):
            g, kvs = self._layer(self.fuse(emb[:, s:s + T], g), pos + s, kv0, mask, diag)
            diag.append(kvs)
            out.append((_mm(g, self.w_sub.T), g))
        return out


class MedusaHead(torch.nn.Module):
    def __init__(self, d: int, k: int, w_sub: torch.Tensor):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(k, d, d))  # zero: each head starts as the identity
        self.b = torch.nn.Parameter(torch.zeros(k, d))
        self.register_buffer("w_sub", w_sub.float())

    def forward(self, feat):
        """feat [B, T, d] -> logits [B, T, K, V_sub]."""
        u = torch.einsum("btd,ked->btke", feat, self.w) + self.b
        return _mm(feat.unsqueeze(2) + F_.silu(u), self.w_sub.T)


# ---- reading a head GGUF back ---------------------------------------------------------------------

def _tensors(path: str):
    import gguf
    from gguf.quants import dequantize
    r = gguf.GGUFReader(path)
    out = {}
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type) if t.tensor_type not in (0, 1) else np.asarray(t.data, np.float32)
        shape = [int(x) for x in reversed(t.shape)]
        out[t.name] = torch.from_numpy(np.array(a, np.float32).reshape(shape))
    fields = {}
    for k, f in r.fields.items():
        fields[k] = f.contents() if hasattr(f, "contents") else None
    return out, fields


def load_head(path: str):
    """The head GGUF at path as EagleHead or MedusaHead (float32, eval mode)."""
    w, m = _tensors(str(path))
    arch = m["general.architecture"]
    if arch == "fastspec-eagle":
        a = arch
        s = EagleShape(d=int(m[f"{a}.embedding_length"]), n_heads=int(m[f"{a}.attention.head_count"]),
                       n_kv=int(m[f"{a}.attention.head_count_kv"]), head_dim=int(m[f"{a}.attention.key_length"]),
                       ff=int(m[f"{a}.feed_forward_length"]), v_sub=int(m[f"{a}.vocab_size"]),
                       eps=float(m[f"{a}.attention.layer_norm_rms_epsilon"]), theta=float(m[f"{a}.rope.freq_base"]))
        fl = m.get("fastspec.head.feature_layers")
        h = EagleHead(s, w["token_embd.weight"], n_feat=len(fl) if fl else 1)
        names = {"fc_w": "fastspec_eagle.fc.weight", "fc_b": "fastspec_eagle.fc.bias",
                 "attn_norm": "blk.0.attn_norm.weight", "ffn_norm": "blk.0.ffn_norm.weight",
                 "out_norm": "output_norm.weight", "wq": "blk.0.attn_q.weight", "wk": "blk.0.attn_k.weight",
                 "wv": "blk.0.attn_v.weight", "wo": "blk.0.attn_output.weight", "w_gate": "blk.0.ffn_gate.weight",
                 "w_up": "blk.0.ffn_up.weight", "w_down": "blk.0.ffn_down.weight"}
        with torch.no_grad():
            for attr, name in names.items():
                getattr(h, attr).copy_(w[name])
            if h.n_feat > 1:
                h.feat_w.copy_(w["fastspec_eagle.feat.weight"])
    elif arch == "fastspec-medusa":
        k = int(m["fastspec-medusa.head_count"])
        d = int(m["fastspec-medusa.embedding_length"])
        h = MedusaHead(d, k, w["token_embd.weight"])
        with torch.no_grad():
            for i in range(k):
                h.w[i].copy_(w[f"fastspec_medusa.{i}.weight"])
                h.b[i].copy_(w[f"fastspec_medusa.{i}.bias"])
    else:
        raise ValueError(f"{path}: general.architecture is {arch!r}, not a fastspec draft head")
    h.meta = {k: v for k, v in m.items() if k.startswith("fastspec.head.")}
    return h.eval()


def named_matrices(h) -> dict:
    """GGUF tensor name -> float32 numpy array of a head (the layout load_head reads)."""
    t = lambda x: x.detach().float().contiguous().numpy()  # noqa: E731
    if isinstance(h, EagleHead):
        extra = {"fastspec_eagle.feat.weight": t(h.feat_w)} if h.n_feat > 1 else {}
        return {**extra, "token_embd.weight": t(h.w_sub), "output_norm.weight": t(h.out_norm),
                "blk.0.attn_norm.weight": t(h.attn_norm), "blk.0.ffn_norm.weight": t(h.ffn_norm),
                "blk.0.attn_q.weight": t(h.wq), "blk.0.attn_k.weight": t(h.wk), "blk.0.attn_v.weight": t(h.wv),
                "blk.0.attn_output.weight": t(h.wo), "blk.0.ffn_gate.weight": t(h.w_gate),
                "blk.0.ffn_up.weight": t(h.w_up), "blk.0.ffn_down.weight": t(h.w_down),
                "fastspec_eagle.fc.weight": t(h.fc_w), "fastspec_eagle.fc.bias": t(h.fc_b)}
    out = {"token_embd.weight": t(h.w_sub)}
    for i in range(h.w.shape[0]):
        out[f"fastspec_medusa.{i}.weight"] = t(h.w[i])
        out[f"fastspec_medusa.{i}.bias"] = t(h.b[i])
    return out

