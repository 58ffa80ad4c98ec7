"""AWQ over a whole model, one decoder layer at a time (the driver is quantize.py).

For layer l, with the float model's activations x entering it:
  1. run the float layer once: the inputs of its linears (h1, core, h2, act) and its output, which
     is the next layer's input;
  2. search scales (awq_search.search_scale), each group judged on its module with only that group
     quantized: s_down on down_proj(act), s_gu on the MLP(h2), s_vo on o_proj(core) when v and o
     have matching shapes (no grouped-query attention), s_qkv on self_attn(h1) (o_proj float) --
     in that order, so that gate/up's search sees up's rows already divided by s_down, and q/k/v's
     sees v's rows divided by s_vo;
  3. fold them: stored W = diag(1/s_out) W diag(s_in) (s_out: v rows by s_vo, up rows by s_down),
     ln1 /= s_qkv, ln2 /= s_gu, v bias /= s_vo;
  4. clipping (awq_search.search_clip) for v, o, gate, up, down on the stored weights with the
     stored-basis inputs x / s_in, kept for a group only when it lowers that group's module error;
  5. measure each group's output error with only that group quantized, AWQ (effective weights
     diag(s_out) Q(stored) diag(1/s_in)) and RTN (Q(W)), on the search tokens.
Yields (l, {HF name: float32 ndarray to store}, {group: (rtn error, awq error)}); quantize.py packs.
"""
from __future__ import annotations

from typing import Dict, Iterator, Optional, Tuple

import numpy as np


def quantize_layers(info, cfg, ids: np.ndarray, group: int, *, search_tokens: int = 2048, n_grid: int = 20,
                    clip: bool = True, clip_tokens: int = 512, threads: Optional[int] = None
                    ) -> Iterator[Tuple[int, Dict[str, np.ndarray], Dict[str, Tuple[float, float]]]]:
    import torch

    from .awq_search import apply_clip, fake_quant, mse, search_clip, search_scale
    from .quant_layer import Layer, Rope

    if threads:
        torch.set_num_threads(threads)
    B, T = ids.shape
    n_search = max(1, min(B, search_tokens // T))
    rope = Rope(cfg, T)
    emb = torch.from_numpy(info.tensor("model.embed_tokens.weight"))
    x = emb[torch.from_numpy(ids)]                              # [B, T, d]
    del emb

    def flat(a):
        return a.reshape(-1, a.shape[-1])

    def x_mean(a):
        return flat(a).abs().mean(0)

    with torch.no_grad():
        for l in range(cfg.n_layers):
            pre = f"model.layers.{l}."
            names = [n for n in info.tensors if n.startswith(pre)]
            w = {n[len(pre):]: torch.from_numpy(info.tensor(n)) for n in names}
            L = Layer(w, cfg)
            f = L.forward(x, rope)
            xs = x[:n_search]
            fs = {k: v[:n_search] for k, v in f.items()}
            W = {lin: w[lin + ".weight"] for lin in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                      "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
                                                      "mlp.down_proj")}
            q_, k_, v_, o_ = "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"
            g_, u_, d_ = "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"

            # references on the search windows
            ref_attn = L.o_proj(fs["core"])
            ref_mlp = L.down(fs["act"])
            run_qkv = lambda qs: L.o_proj(L.attn_core(fs["h1"], rope, *qs))  # noqa: E731
            run_o = lambda qs: L.o_proj(fs["core"], qs[0])  # noqa: E731
            run_gu = lambda qs: L.down(L.act(fs["h2"], *qs))  # noqa: E731
            run_d = lambda qs: L.down(fs["act"], qs[0])  # noqa: E731

            # 2. scale searches, later groups first: a group's search sees the row scales that the
            #    next group folds into its weights (down -> up rows, o -> v rows)
            n_out = {lin: W[lin].shape[0] for lin in W}
            s_d, _, rtn_d = search_scale(x_mean(f["act"]), [W[d_]], group, run_d, ref_mlp, n_grid)
            s_gu, _, rtn_gu = search_scale(x_mean(f["h2"]), [W[g_], W[u_]], group, run_gu, ref_mlp, n_grid,
                                           s_outs=[None, s_d])
            vo = W[v_].shape == W[o_].shape
            if vo:
                s_vo, _, rtn_o = search_scale(x_mean(f["core"]), [W[o_]], group, run_o, ref_attn, n_grid)
            else:
                s_vo = torch.ones(W[o_].shape[1])
                rtn_o = mse(run_o([fake_quant(W[o_], group)]), ref_attn)
            s_qkv, _, rtn_qkv = search_scale(x_mean(f["h1"]), [W[q_], W[k_], W[v_]], group, run_qkv, ref_attn,
                                             n_grid, s_outs=[None, None, s_vo if vo else None])
            if vo:  # s = 1 in the searches above is not RTN once rows are scaled: measure RTN itself
                rtn_qkv = mse(run_qkv([fake_quant(W[lin], group) for lin in (q_, k_, v_)]), ref_attn)
            rtn_gu = mse(run_gu([fake_quant(W[g_], group), fake_quant(W[u_], group)]), ref_mlp)

            # 3. fold: s_in / s_out per linear
            s_in = {q_: s_qkv, k_: s_qkv, v_: s_qkv, o_: s_vo, g_: s_gu, u_: s_gu, d_: s_d}
            s_out = {lin: torch.ones(n_out[lin]) for lin in W}
            s_out[u_] = s_d
            if vo:
                s_out[v_] = s_vo
            stored = {lin: W[lin] / s_out[lin][:, None] * s_in[lin][None, :] for lin in W}
            inputs = {q_: "h1", k_: "h1", v_: "h1", o_: "core", g_: "h2", u_: "h2", d_: "act"}

            def effective(lin):
                return fake_quant(stored[lin], group) * s_out[lin][:, None] / s_in[lin][None, :]

            groups = {"qkv": ((q_, k_, v_), run_qkv, ref_attn), "o": ((o_,), run_o, ref_attn),
                      "gate_up": ((g_, u_), run_gu, ref_mlp), "down": ((d_,), run_d, ref_mlp)}

            def group_error(gname):
                lins, run, ref = groups[gname]
                return mse(run([effective(lin) for lin in lins]), ref)

            # 4. clipping on the stored weights with stored-basis inputs; kept per group only when
            #    it lowers the group's module error (the clip search judges partial dot products)
            if clip:
                for gname in ("o", "gate_up", "down", "qkv"):
                    lins = [lin for lin in groups[gname][0] if lin in (v_, o_, g_, u_, d_)]
                    before = {lin: stored[lin] for lin in lins}
                    err0 = group_error(gname)
                    for lin in lins:
                        xin = flat(f[inputs[lin]])
                        step = max(1, xin.shape[0] // clip_tokens)
                        xin = xin[::step] / s_in[lin][None, :]
                        stored[lin] = apply_clip(stored[lin], search_clip(stored[lin], xin, group, n_grid), group)
                    if group_error(gname) > err0:
                        stored.update(before)

            # 5. errors with only one group quantized (effective weights in the original basis)
            rtn = {"qkv": rtn_qkv, "o": rtn_o, "gate_up": rtn_gu, "down": rtn_d}
            errs = {gname: (rtn[gname], group_error(gname)) for gname in groups}

            out = {pre + lin + ".weight": stored[lin].numpy() for lin in W}
            for n, t in w.items():
                if n.endswith("_proj.weight"):
                    continue
                t = t.clone()
                if n == "input_layernorm.weight":
                    t = t / s_qkv
                elif n == "post_attention_layernorm.weight":
                    t = t / s_gu
                elif n == v_ + ".bias":
                    t = t / s_out[v_]
                elif n == u_ + ".bias":
                    t = t / s_out[u_]
                out[pre + n] = t.numpy()
            x = f["out"]
            del f, fs, w, L
            yield l, out, errs
