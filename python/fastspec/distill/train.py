"""Training a head on recorded conversations (data.py) within a time budget, resumable.

Per conversation of n tokens, rows j = 0..n-2 (shifted arrays, length n-1):
    e[j] = E(c_{j+1})   f[j] = F_j   f_next[j] = F_{j+1}   y[j] = target's argmax at j+1 (the token c_{j+2} it wants)
EAGLE step s (s = 0..steps-1) row j reads e[j+s] and predicts y[j+s], regressing g onto f_next[j+s];
Medusa head i at row j predicts y[j+i]. A row is valid while its index j+s <= n-2.
Row weights: a row whose predicted token is in the answer (j+2 >= the prompt's length) weighs 1,
a prompt row `prompt_weight` (drafting only ever happens in answers; prompt rows are easy and
would dominate the metric). Loss (EAGLE): sum_s 0.8^s (SmoothL1(g, f_next) + ce_weight CE(logits, y));
(Medusa): sum_i 0.8^i CE, each a weighted mean over rows. Labels outside the vocabulary subset
are ignored. Learning rate: AdamW, linear warm-up then cosine in elapsed time over the budget (a
resumed run continues the same schedule). Accuracy reported: top-1 on the answer rows of held-out
conversations (prompts never trained on), per step / head.
"""
from __future__ import annotations

import math
import os
import random
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F_

from .data import fmt_seconds, progress_bar
from .heads import EagleHead, MedusaHead

IGNORE = -100


def _batches(convs: Sequence[dict], tokens_per_batch: int, rng: random.Random) -> List[List[int]]:
    """Conversations grouped by length (little padding), batch order shuffled."""
    order = sorted(range(len(convs)), key=lambda i: len(convs[i]["ids"]))
    out, cur, longest = [], [], 0
    for i in order:
        n = len(convs[i]["ids"])
        if cur and max(longest, n) * (len(cur) + 1) > tokens_per_batch:
            out.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, n)
    if cur:
        out.append(cur)
    rng.shuffle(out)
    return out


def _pack(convs: Sequence[dict], idx: List[int], extra: int, sub_index: np.ndarray, max_rows: int,
          prompt_weight: float = 1.0, states: bool = False):
    """Padded tensors of a batch, T = the longest n-1 (at most max_rows), L = T + extra:
    e, f_next [B, L, d], f [B, T, d] (states: [B, T, n_feat d], the conversations' feat_in), y [B, L] (IGNORE where invalid or outside the subset),
    w [B, L] row weights (0 where invalid; prompt_weight where the predicted token c_{j+2} is in
    the prompt, 1 in the answer; a conversation without "plen" counts as all answer)."""
    rows = [min(len(convs[i]["ids"]) - 1, max_rows) for i in idx]
    T = max(1, max(rows))
    L = T + extra
    d = convs[idx[0]]["feat"].shape[1]
    src = "feat_in" if states else "feat"  # the head's input: F, or EAGLE-3's several states
    e = np.zeros((len(idx), L, d), np.float32)
    fn = np.zeros((len(idx), L, d), np.float32)
    f = np.zeros((len(idx), T, convs[idx[0]][src].shape[1]), np.float32)
    y = np.full((len(idx), L), IGNORE, np.int64)
    w = np.zeros((len(idx), L), np.float32)
    for b, (i, r) in enumerate(zip(idx, rows)):
        c = convs[i]
        e[b, :r] = c["emb"][1:1 + r]
        fn[b, :r] = c["feat"][1:1 + r]
        f[b, :r] = c[src][:r]
        y[b, :r] = sub_index[c["label"][1:1 + r]]
        w[b, :r] = 1.0
        w[b, :max(0, min(r, int(c.get("plen", 0)) - 2))] = prompt_weight
    return tuple(torch.from_numpy(x) for x in (e, f, fn, y, w))


def _states(head) -> bool:
    """Whether the head reads several target states per row (EAGLE-3), the conversations' feat_in."""
    return getattr(head, "n_feat", 1) > 1


def _wmean(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (x * w).sum() / w.sum().clamp_min(1e-6)


def _ce(logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor, hits: bool = True):
    """(weighted mean CE over labelled rows, hits [B, T] on rows with weight 1 (None unless
    `hits`: the argmax over the vocabulary costs a tenth of a step), those rows)."""
    lab = (y != IGNORE).float() * w
    ce = F_.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1).clamp_min(0), reduction="none")
    with torch.no_grad():
        rows = (y != IGNORE) & (w >= 1.0)
        hit = (logits.argmax(-1) == y) & rows if hits else None
    return _wmean(ce.view_as(lab), lab), hit, rows


def _count(hits, rows):
    """(top-1 hits, answer rows) as ints, or None when not measured."""
    return None if hits is None else (int(hits.sum().item()), int(rows.sum().item()))


def _rates(counts) -> List[float]:
    return [float("nan") if c is None else c[0] / max(1, c[1]) for c in counts]


def eagle_loss(head: EagleHead, e, f, fn, y, w, steps: int, noise: float = 0.0, ce_weight: float = 0.1,
               measure: bool = True):
    """(loss, per step (top-1 hits, answer rows) or None unless measure, labelled rows of step 0)."""
    T = f.shape[1]
    if noise > 0:
        f = f + noise * torch.randn_like(f)
    outs = head.unroll(e, f, steps)
    total, counts = 0.0, []
    for s, (logits, g) in enumerate(outs):
        ws = w[:, s:s + T]
        reg = _wmean(F_.smooth_l1_loss(g, fn[:, s:s + T], reduction="none").mean(-1), ws)
        ce, hits, rows = _ce(logits, y[:, s:s + T], ws, measure)
        total = total + (0.8 ** s) * (reg + ce_weight * ce)
        counts.append(_count(hits, rows))
    return total, counts, int((y[:, :T] != IGNORE).sum())


def medusa_loss(head: MedusaHead, f, y, w, k: int, measure: bool = True):
    T = f.shape[1]
    logits = head(f)  # [B, T, K, V]
    total, counts = 0.0, []
    for i in range(k):
        ce, hits, rows = _ce(logits[:, :, i], y[:, i:i + T], w[:, i:i + T], measure)
        total = total + (0.8 ** i) * ce
        counts.append(_count(hits, rows))
    return total, counts, int((y[:, :T] != IGNORE).sum())


@torch.no_grad()
def evaluate(head, convs: Sequence[dict], *, kind: str, steps: int, sub_index: np.ndarray,
             max_rows: int = 1024) -> List[float]:
    """Top-1 accuracy per step (EAGLE) / head (Medusa) on the answer rows of convs (weights 0 on
    prompt rows, so only answers count), one conversation at a time."""
    was = head.training
    head.eval()
    total = np.zeros((steps, 2))
    for i in range(len(convs)):
        e, f, fn, y, w = _pack(convs, [i], steps - 1, sub_index, max_rows, prompt_weight=0.0, states=_states(head))
        _, counts, _ = eagle_loss(head, e, f, fn, y, w, steps) if kind == "eagle" else medusa_loss(head, f, y, w, steps)
        total += np.asarray(counts, np.float64)
    head.train(was)
    return [float(h / max(1.0, r)) for h, r in total]


def bf16_fast() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX): autocast then runs the
    matmuls 4-5x faster than float32 (measured on a 2-vCPU Xeon with AMX: [12288, 576] x [576, 8192]
    0.10 vs 0.38 s);
    without, bf16 is emulated and slower."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln for ln in f if ln.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def train(head, convs: Sequence[dict], *, kind: str, vocab_ids: Sequence[int], vocab_size: int, seconds: float,
          steps: int, ckpt: str, lr: float = 1e-3, tokens_per_batch: int = 4096, max_rows: int = 1024,
          seed: int = 0, prompt_weight: float = 0.1, ce_weight: float = 0.1, weight_decay: float = 0.0,
          heldout: Sequence[dict] = (), bf16: Optional[bool] = None, progress: Callable[[str], None] = print) -> Dict[str, float]:
    """Trains head in place for `seconds` (elapsed time summed over resumed runs); checkpoints
    to ckpt every minute and at the end. Returns {tokens, steps, seconds, loss, acc_by_step
    (training EMA, answer rows), heldout_acc (answer rows of `heldout`, at the end; [] without)}.
    bf16: matmuls under bfloat16 autocast (weights, optimizer and losses stay float32); None: when
    the CPU has native bf16 (bf16_fast())."""
    use_bf16 = bf16_fast() if bf16 is None else bool(bf16)
    torch.set_flush_denormal(True)  # softmax gradients are full of denormals: 10x slower matmuls without
    sub_index = np.full(vocab_size, IGNORE, np.int64)
    sub_index[np.asarray(vocab_ids)] = np.arange(len(vocab_ids))
    params = [p for p in head.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.95))
    state = dict(elapsed=0.0, steps=0, tokens=0, epoch=0, loss=float("nan"))
    if os.path.exists(ckpt):
        c = torch.load(ckpt, weights_only=False)
        head.load_state_dict(c["head"])
        opt.load_state_dict(c["opt"])
        state.update(c["state"])
        progress(f"train: resumed at step {state['steps']} ({state['elapsed']:.0f} s done)")
    extra = steps - 1  # EAGLE: the unrolled steps; Medusa: heads 1..K-1 look further ahead
    feat_rms = float(np.sqrt(np.mean([np.mean(c["feat"][:64].astype(np.float32) ** 2) for c in convs[:64]])))
    if _states(head) and "feat_in" not in convs[0]:
        raise ValueError(f"the head reads {head.n_feat} target states per row but the data records one")
    rng = random.Random(seed + state["epoch"])
    t_last_ckpt = time.monotonic()
    ema_loss, acc_ema = state.get("loss"), state.get("acc")  # a resumed run continues its averages
    if ema_loss is not None and not math.isfinite(ema_loss):
        ema_loss = None
    warm = 30

    def save():
        torch.save(dict(head=head.state_dict(), opt=opt.state_dict(), state=state), ckpt + ".tmp")
        os.replace(ckpt + ".tmp", ckpt)

    head.train()
    while state["elapsed"] < seconds:
        for idx in _batches(convs, tokens_per_batch, rng):
            if state["elapsed"] >= seconds:
                break
            t0 = time.monotonic()
            frac = state["elapsed"] / seconds
            scale = min(1.0, (state["steps"] + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
            for g in opt.param_groups:
                g["lr"] = lr * scale
            e, f, fn, y, w = _pack(convs, idx, extra, sub_index, max_rows, prompt_weight, states=_states(head))
            measure = state["steps"] % 5 == 0
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
                if kind == "eagle":
                    loss, counts, n = eagle_loss(head, e, f, fn, y, w, steps, noise=0.02 * feat_rms,
                                                 ce_weight=ce_weight, measure=measure)
                else:
                    loss, counts, n = medusa_loss(head, f, y, w, steps, measure=measure)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            state["steps"] += 1
            state["tokens"] += n
            state["elapsed"] += time.monotonic() - t0
            lv = float(loss.detach())
            ema_loss = lv if ema_loss is None else 0.95 * ema_loss + 0.05 * lv
            if measure:  # every 5th step
                acc = _rates(counts)
                acc_ema = acc if acc_ema is None else [0.8 * a + 0.2 * b for a, b in zip(acc_ema, acc)]
            state["loss"], state["acc"] = ema_loss, acc_ema
            if acc_ema and (state["steps"] % 10 == 0 or state["elapsed"] >= seconds):
                left = max(0.0, seconds - state["elapsed"])
                progress(f"train: step {state['steps']}  loss {ema_loss:.3f}  top-1 by step "
                         f"{' '.join(f'{a:.2f}' for a in acc_ema)}  {progress_bar(min(1.0, state['elapsed'] / seconds))}  "
                         f"ETA {fmt_seconds(left)}")
            if time.monotonic() - t_last_ckpt > 60:
                save()
                t_last_ckpt = time.monotonic()
        else:
            state["epoch"] += 1
            rng = random.Random(seed + state["epoch"])
    save()
    held = evaluate(head, heldout, kind=kind, steps=steps, sub_index=sub_index, max_rows=max_rows) if heldout else []
    if held:
        progress(f"train: held-out answer rows ({len(heldout)} conversations) top-1 by step "
                 f"{' '.join(f'{a:.2f}' for a in held)}")
    head.eval()
    return dict(tokens=state["tokens"], steps=state["steps"], seconds=state["elapsed"], loss=state["loss"],
                acc_by_step=state.get("acc", []), heldout_acc=held)

