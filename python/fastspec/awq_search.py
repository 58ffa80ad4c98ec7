"""AWQ's searches in PyTorch (Lin et al., "AWQ: Activation-aware Weight Quantization", 2023; AutoAWQ).

- `fake_quant(w, group)`: W [out, in] -> its 4-bit round trip (the grid of awq_pack.quantize_rtn,
  scales rounded to f16), float32.
- `search_scale(x_mean, ws, run, ref, n_grid)`: per input channel scales s = x_mean^alpha,
  normalized by sqrt(max(s) * min(s)), alpha on the grid 0, 1/n_grid, ..., 1; each candidate
  quantizes every W of the group as Q(W diag(s)) diag(s)^-1 and runs the module; the alpha with
  the smallest mean squared output error wins. alpha = 0 is s = 1, plain round-to-nearest (unless
  `s_outs` rows are scaled), so the chosen scales never do worse than RTN on the search tokens.
- `search_clip(w, x, group, n_grid, max_shrink)`: per (output, group) the clipping range
  max|w| * (1 - i/n_grid), i < max_shrink * n_grid, that minimizes the error of the group's partial
  dot products x_g . w_g over sampled tokens (i = 0 is no clipping).
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import torch

MAX_Q = 15.0


def fake_quant(w: torch.Tensor, group: int) -> torch.Tensor:
    out_f, in_f = w.shape
    g = w.reshape(out_f, in_f // group, group)
    hi, lo = g.amax(dim=2, keepdim=True), g.amin(dim=2, keepdim=True)
    s = ((hi - lo).clamp(min=1e-5) / MAX_Q).half().float()
    z = (-torch.round(lo / s)).clamp(0, MAX_Q)
    q = (torch.round(g / s) + z).clamp(0, MAX_Q)
    return ((q - z) * s).reshape(out_f, in_f)


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).float().pow(2).mean())


def quant_scaled(w: torch.Tensor, s_in: torch.Tensor, s_out: Optional[torch.Tensor], group: int) -> torch.Tensor:
    """The effective weight of W stored as diag(1/s_out) W diag(s_in) and quantized:
    diag(s_out) Q(stored) diag(1/s_in)."""
    if s_out is None:
        return fake_quant(w * s_in[None, :], group) / s_in[None, :]
    return fake_quant(w / s_out[:, None] * s_in[None, :], group) * s_out[:, None] / s_in[None, :]


def search_scale(x_mean: torch.Tensor, ws: Sequence[torch.Tensor], group: int,
                 run: Callable[[List[torch.Tensor]], torch.Tensor], ref: torch.Tensor,
                 n_grid: int = 20, s_outs: Optional[Sequence[Optional[torch.Tensor]]] = None
                 ) -> Tuple[torch.Tensor, float, float]:
    """-> (best scales [in], best error, error at s = 1). run(quantized ws) -> the module output.
    s_outs: per weight, row scales already decided (a later group's scale folded into its rows)."""
    s_outs = list(s_outs) if s_outs is not None else [None] * len(ws)
    best_s, best_err, rtn_err = torch.ones_like(x_mean), float("inf"), float("nan")
    for i in range(n_grid + 1):
        alpha = i / n_grid
        s = x_mean.pow(alpha).clamp(min=1e-4)
        s = s / (s.max() * s.min()).sqrt()
        if alpha == 0:
            s = torch.ones_like(x_mean)
        if not torch.isfinite(s).all():
            continue
        qs = [quant_scaled(w, s, so, group) for w, so in zip(ws, s_outs)]
        err = mse(run(qs), ref)
        if alpha == 0:
            rtn_err = err
        if err < best_err:
            best_err, best_s = err, s
    return best_s, best_err, rtn_err


def search_clip(w: torch.Tensor, x: torch.Tensor, group: int, n_grid: int = 20, max_shrink: float = 0.5,
                out_batch: int = 512) -> torch.Tensor:
    """-> max_val [out, in/group]: clamp each group of w to [-max_val, max_val] before quantizing.
    w [out, in]; x [n_tok, in] (the layer's inputs, in w's basis)."""
    out_f, in_f = w.shape
    G = in_f // group
    xg = x.reshape(-1, G, group).transpose(0, 1)              # [G, T, group]
    best_all = []
    for o0 in range(0, out_f, out_batch):
        wb = w[o0:o0 + out_batch]                             # [O, in]
        wg = wb.reshape(-1, G, group)                         # [O, G, group]
        ref = torch.bmm(xg, wg.permute(1, 2, 0))              # [G, T, O]
        org_max = wg.abs().amax(dim=2)                        # [O, G]
        best = org_max.clone()
        best_err = torch.full_like(org_max, float("inf"))
        for i in range(int(max_shrink * n_grid)):
            mv = org_max * (1 - i / n_grid)
            cw = torch.maximum(torch.minimum(wg, mv[:, :, None]), -mv[:, :, None])
            qw = fake_quant(cw.reshape(wb.shape), group).reshape(wg.shape)
            err = (torch.bmm(xg, qw.permute(1, 2, 0)) - ref).pow(2).mean(dim=1).T  # [O, G]
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best = torch.where(better, mv, best)
        best_all.append(best)
    return torch.cat(best_all, 0)


def apply_clip(w: torch.Tensor, max_val: torch.Tensor, group: int) -> torch.Tensor:
    out_f, in_f = w.shape
    wg = w.reshape(out_f, in_f // group, group)
    return torch.maximum(torch.minimum(wg, max_val[:, :, None]), -max_val[:, :, None]).reshape(out_f, in_f)
