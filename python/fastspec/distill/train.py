"""Training a head on recorded conversations (data.py) within a time budget, resumable.

Per conversation of n tokens, rows j = 0..n-2 (shifted arrays, length n-1):
    e[j] = E(c_{j+1})   f[j] = F_j   f_next[j] = F_{j+1}   y[j] = target's argmax at j+1 (the token c_{j+2} it wants)
EAGLE step s (s = 0..steps-1) row j reads e[j+s] and predicts y[j+s], regressing g onto f_next[j+s];
Medusa head i at row j predicts y[j+i]. A row is valid while its index j+s <= n-2.
Loss (EAGLE): sum_s 0.8^s (SmoothL1(g, f_next) + 0.1 CE(logits, y)); (Medusa): sum_i 0.8^i CE.
Labels outside the vocabulary subset are ignored. Learning rate: AdamW, linear warm-up then
cosine in elapsed time over the budget (a resumed run continues the same schedule).
"""
from __future__ import annotations

import math
import os
import random
import time
from typing import Callable, Dict, List, Sequence

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


def _pack(convs: Sequence[dict], idx: List[int], extra: int, sub_index: np.ndarray, max_rows: int):
    """Padded tensors of a batch, T = the longest n-1 (at most max_rows), L = T + extra:
    e, f_next [B, L, d], f [B, T, d], y [B, L] (IGNORE where invalid or outside the subset),
    valid [B, L] (index < the conversation's n-1)."""
    rows = [min(len(convs[i]["ids"]) - 1, max_rows) for i in idx]
    T = max(1, max(rows))
    L = T + extra
    d = convs[idx[0]]["feat"].shape[1]
    e = np.zeros((len(idx), L, d), np.float32)
    fn = np.zeros((len(idx), L, d), np.float32)
    f = np.zeros((len(idx), T, d), np.float32)
    y = np.full((len(idx), L), IGNORE, np.int64)
    valid = np.zeros((len(idx), L), bool)
    for b, (i, r) in enumerate(zip(idx, rows)):
        c = convs[i]
        e[b, :r] = c["emb"][1:1 + r]
        fn[b, :r] = c["feat"][1:1 + r]
        f[b, :r] = c["feat"][:r]
        y[b, :r] = sub_index[c["label"][1:1 + r]]
        valid[b, :r] = True
    return tuple(torch.from_numpy(x) for x in (e, f, fn, y, valid))


def eagle_loss(head: EagleHead, e, f, fn, y, valid, steps: int, noise: float = 0.0):
    """(loss, per-step top-1 accuracy on valid rows, valid rows of step 0)."""
    T = f.shape[1]
    if noise > 0:
        f = f + noise * torch.randn_like(f)
    outs = head.unroll(e, f, steps)
    total, acc = 0.0, []
    for s, (logits, g) in enumerate(outs):
        ys = y[:, s:s + T]
        labelled = ys != IGNORE
        rows = valid[:, s:s + T]
        reg = F_.smooth_l1_loss(g[rows], fn[:, s:s + T][rows]) if rows.any() else g.sum() * 0
        ce = F_.cross_entropy(logits.reshape(-1, logits.shape[-1]), ys.reshape(-1), ignore_index=IGNORE) \
            if labelled.any() else logits.sum() * 0
        total = total + (0.8 ** s) * (reg + 0.1 * ce)
        with torch.no_grad():
            acc.append(((logits.argmax(-1) == ys) & labelled).sum().item() / max(1, labelled.sum().item()))
    return total, acc, int((y[:, :T] != IGNORE).sum())


def medusa_loss(head: MedusaHead, f, y, k: int):
    T = f.shape[1]
    logits = head(f)  # [B, T, K, V]
    total, acc = 0.0, []
    for i in range(k):
        yi = y[:, i:i + T]
        valid = yi != IGNORE
        li = logits[:, :, i]
        ce = F_.cross_entropy(li.reshape(-1, li.shape[-1]), yi.reshape(-1), ignore_index=IGNORE) \
            if valid.any() else li.sum() * 0
        total = total + (0.8 ** i) * ce
        with torch.no_grad():
            acc.append(((li.argmax(-1) == yi) & valid).sum().item() / max(1, valid.sum().item()))
    return total, acc, int((y[:, :T] != IGNORE).sum())


def train(head, convs: Sequence[dict], *, kind: str, vocab_ids: Sequence[int], vocab_size: int, seconds: float,
          steps: int, ckpt: str, lr: float = 1e-3, tokens_per_batch: int = 4096, max_rows: int = 1024,
          seed: int = 0, progress: Callable[[str], None] = print) -> Dict[str, float]:
    """Trains head in place for `seconds` (elapsed time summed over resumed runs); checkpoints
    to ckpt every minute and at the end. Returns {tokens, steps, seconds, loss, acc_by_step}."""
    torch.set_flush_denormal(True)  # softmax gradients are full of denormals: 10x slower matmuls without
    sub_index = np.full(vocab_size, IGNORE, np.int64)
    sub_index[np.asarray(vocab_ids)] = np.arange(len(vocab_ids))
    params = [p for p in head.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, betas=(0.9, 0.95))
    state = dict(elapsed=0.0, steps=0, tokens=0, epoch=0, loss=float("nan"))
    if os.path.exists(ckpt):
        c = torch.load(ckpt, weights_only=False)
        head.load_state_dict(c["head"])
        opt.load_state_dict(c["opt"])
        state.update(c["state"])
        progress(f"train: resumed at step {state['steps']} ({state['elapsed']:.0f} s done)")
    extra = steps - 1  # EAGLE: the unrolled steps; Medusa: heads 1..K-1 look further ahead
    feat_rms = float(np.sqrt(np.mean([np.mean(c["feat"][:64].astype(np.float32) ** 2) for c in convs[:64]])))
    rng = random.Random(seed + state["epoch"])
    t_last_ckpt = time.monotonic()
    ema_loss, acc_ema = None, None
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
            e, f, fn, y, valid = _pack(convs, idx, extra, sub_index, max_rows)
            if kind == "eagle":
                loss, acc, n = eagle_loss(head, e, f, fn, y, valid, steps, noise=0.02 * feat_rms)
            else:
                loss, acc, n = medusa_loss(head, f, y, steps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            state["steps"] += 1
            state["tokens"] += n
            state["elapsed"] += time.monotonic() - t0
            lv = float(loss.detach())
            ema_loss = lv if ema_loss is None else 0.95 * ema_loss + 0.05 * lv
            acc_ema = acc if acc_ema is None else [0.95 * a + 0.05 * b for a, b in zip(acc_ema, acc)]
            state["loss"], state["acc"] = ema_loss, acc_ema
            if state["steps"] % 10 == 0 or state["elapsed"] >= seconds:
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
    head.eval()
    return dict(tokens=state["tokens"], steps=state["steps"], seconds=state["elapsed"], loss=state["loss"],
                acc_by_step=state.get("acc", []))

