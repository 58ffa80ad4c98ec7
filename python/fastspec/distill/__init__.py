"""`fastspec distill`: self-distillation of a draft head (EAGLE or Medusa) for a target model.

    fastspec distill TARGET --out HEAD.gguf [--kind eagle|medusa] [--minutes N] [--prompts FILE] [--vocab N]
                     [--features last|eagle3]

1. data (data.py): our engine answers the prompt set (greedy first, then sampled sweeps while the
   data budget lasts); one forward pass per conversation records E (hidden state 0), F (the final
   norm's output; --features eagle3: also hidden states 2 and n_layers / 2, EAGLE-3's low and
   mid) and the target's argmax at every position.
2. vocabulary (FR-Spec): the head's output layer is the target's own rows for the N most frequent
   tokens of that data (default min(V, 8192); 16384 beyond a 100k vocabulary), EOS/BOS always in.
3. training (train.py, PyTorch, the `train` extra): the head's math is heads.py (= the C++ heads).
4. the GGUF (head_gguf.py), tied to the target by its sha256 and vocabulary hash.
Everything lands in a work dir (default ~/.cache/fastspec/distill/<sha12>/): a second run with the
same target resumes where the first stopped (data shards, training checkpoint), and the data is
shared by both kinds. The core never imports this (it needs torch).
"""
from __future__ import annotations

import json
import os
import time
from typing import Callable, Optional

import numpy as np

from .. import _core, models
from . import data as _data

KINDS = ("eagle", "medusa")
FEATURES = ("last", "eagle3")


def feature_layers(features: str, n_layers: int) -> list:
    """The target states a head reads (Features numbering): 'last' the final norm's output;
    'eagle3' a low / mid / high triple (EAGLE-3), 2, n_layers // 2 and the final norm's output."""
    if features == "last":
        return [n_layers]
    if features == "eagle3":
        return sorted({min(2, n_layers), n_layers // 2, n_layers})
    raise ValueError(f"features must be one of {FEATURES} (got {features!r})")


def default_vocab(vocab_size: int) -> int:
    return min(vocab_size, 16384 if vocab_size > 100_000 else 8192)


def _output_rows(mf, ids) -> np.ndarray:
    """The target's output-layer rows for ids, float32 [len(ids), d]."""
    names = {t[0] for t in mf.tensor_infos()}
    for n in ("output.weight", "lm_head.weight", "token_embd.weight", "model.embed_tokens.weight"):
        if n in names:
            return np.ascontiguousarray(mf.dequantize(n)[np.asarray(ids)], np.float32)
    raise _core.ModelError(f"{mf.path}: no output layer (output.weight / lm_head.weight / token_embd.weight)")


def new_eagle_head(cfg, w_sub, convs, n_feat: int = 1):
    """A fresh EAGLE head for the target config `cfg` over the output rows w_sub [V_sub, d], its
    output norm set to the RMS of the recorded features (g starts at the scale it predicts)."""
    import torch

    from . import heads

    shape = heads.EagleShape(d=cfg.n_embd, n_heads=cfg.n_heads, n_kv=cfg.n_kv_heads, head_dim=cfg.head_dim,
                             ff=cfg.n_ff, v_sub=int(w_sub.shape[0]), eps=float(cfg.norm_eps),
                             theta=float(cfg.rope_theta))
    head = heads.EagleHead(shape, w_sub, n_feat=n_feat)
    rms = np.sqrt(np.mean(np.concatenate([c["feat"][:256].astype(np.float32) for c in convs[:64]]) ** 2, 0))
    with torch.no_grad():
        head.out_norm.copy_(torch.from_numpy(rms.astype(np.float32)))
    return head


def distill(target: str, out: str, *, kind: str = "eagle", minutes: float = 50.0, prompts: Optional[str] = None,
            vocab: Optional[int] = None, threads: Optional[int] = None, dtype: str = "q8_0",
            work_dir: Optional[str] = None, max_new: int = 256, medusa_heads: int = 4, steps: int = 3,
            data_fraction: float = 0.45, batch: int = 16, lr: float = 3e-3, heldout_every: int = 20,
            features: str = "last", progress: Callable[[str], None] = print) -> dict:
    """Distills a head into `out`; returns a summary dict (seconds, tokens, sizes, accuracy).
    minutes: the whole budget (data + training, counting the data time of earlier runs in the same
    work dir); steps: EAGLE drafting steps trained unrolled; heldout_every: every N-th prompt's
    conversations are held out of training to measure accuracy (0: train on all); features: the
    target states an EAGLE head reads (feature_layers(); fixed by a work dir's first data run,
    Medusa heads always read the last)."""
    import torch

    from . import head_gguf, heads, train as _train

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} (got {kind!r})")
    if minutes <= 0:
        raise ValueError(f"minutes must be > 0 (got {minutes})")
    t_start = time.monotonic()
    target = models.path(target)
    from ..engine import Engine, _is_draft_head
    if _is_draft_head(target):
        raise _core.ModelError(f"{target}: is a draft head; distill a head from a model")
    sha, _vh = _core.target_tie(target)
    work = work_dir or os.path.join(str(models.cache_dir()), "distill", sha[:12])
    meta_path = os.path.join(work, "meta.json")
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {"target_sha256": sha, "data_seconds": 0.0}
    if meta.get("target_sha256") != sha:
        raise ValueError(f"{work}: holds data of another target (sha256 {meta.get('target_sha256')}, this is {sha}); "
                         "pass another --work-dir")
    if threads:
        torch.set_num_threads(int(threads))
    mf = _core.ModelFile(target)
    cfg = mf.config
    feature_layer = int(cfg.n_layers)
    layers = feature_layers(features, feature_layer)
    recorded = meta.setdefault("feature_layers", layers if not _data.shards(work) else [feature_layer])
    if kind == "eagle" and recorded != layers:
        raise ValueError(f"{work}: its data records target states {recorded}, --features {features} needs {layers}; "
                         "pass another --work-dir")
    head_layers = layers if kind == "eagle" else [feature_layer]
    sub_dir = os.path.join(work, kind if len(head_layers) == 1 else f"{kind}-{features}")  # checkpoints, vocabulary
    os.makedirs(sub_dir, exist_ok=True)
    budget = minutes * 60.0
    progress(f"distill {kind} head for {os.path.basename(target)} (sha256 {sha[:12]}), work dir {work}, "
             f"budget {minutes:g} min")

    # 1. data
    data_budget = max(0.0, data_fraction * budget - meta["data_seconds"])
    eng = Engine(target, threads=threads, context=2048, prefix_cache_mb=0)
    t0 = time.monotonic()
    prompt_texts = _data.read_prompts(prompts)
    _data.build(eng, prompt_texts, work, feature_layers=recorded, max_new=max_new,
                seconds=data_budget, batch=batch, progress=progress)
    run_data_s = time.monotonic() - t0
    meta["data_seconds"] += run_data_s
    _data.write_json(meta_path, meta)
    eos = sorted(eng.tokenizer.eos_ids) + ([eng.tokenizer.bos_id] if eng.tokenizer.bos_id is not None else [])
    convs = _data.load(work, _data.prompt_list(eng, prompt_texts, max_new))
    del eng
    n_tokens = sum(len(c["ids"]) for c in convs)
    convs, held = _data.split_heldout(convs, heldout_every) if heldout_every else (convs, [])
    progress(f"data: {len(convs) + len(held)} conversations, {n_tokens} tokens ({meta['data_seconds']:.0f} s); "
             f"{len(held)} held out (every {heldout_every}th prompt) to measure accuracy on answers")

    # 2. vocabulary subset (fixed at the first run of this kind: a resumed head keeps its rows)
    vpath = os.path.join(sub_dir, "vocab.json")
    if os.path.exists(vpath):
        vocab_ids = json.load(open(vpath))
    else:
        vocab_ids = _data.vocab_subset(work, cfg.vocab_size, vocab or default_vocab(cfg.vocab_size), eos)
        _data.write_json(vpath, vocab_ids)
    w_sub = torch.from_numpy(_output_rows(mf, vocab_ids))

    # 3. training
    if kind == "eagle":
        head = new_eagle_head(cfg, w_sub, convs, n_feat=len(head_layers))
        n_steps = steps
    else:
        head = heads.MedusaHead(cfg.n_embd, medusa_heads, w_sub)
        n_steps = medusa_heads
    spent = meta["data_seconds"] + (time.monotonic() - t_start - run_data_s)  # all runs' data + this run's rest
    train_budget = max(1.0, budget - spent - 5.0)
    tpb = 4096 if kind == "eagle" else 2048
    res = _train.train(head, convs, kind=kind, vocab_ids=vocab_ids, vocab_size=cfg.vocab_size,
                       seconds=train_budget, steps=n_steps, ckpt=os.path.join(sub_dir, "train.pt"),
                       tokens_per_batch=tpb, lr=lr, heldout=held, progress=progress)

    # 4. the GGUF
    if kind == "eagle":
        s = head.shape
        keys = {"block_count": 1, "embedding_length": s.d, "feed_forward_length": s.ff, "attention.head_count": s.n_heads,
                "attention.head_count_kv": s.n_kv, "attention.key_length": s.head_dim,
                "attention.value_length": s.head_dim, "context_length": int(cfg.context_length),
                "vocab_size": len(vocab_ids), "rope.freq_base": float(s.theta),
                "attention.layer_norm_rms_epsilon": float(s.eps)}
    else:
        keys = {"embedding_length": cfg.n_embd, "vocab_size": len(vocab_ids), "head_count": medusa_heads,
                "context_length": int(cfg.context_length)}
    head_gguf.write(out, kind=kind, target=target, tensors=heads.named_matrices(head), vocab_ids=vocab_ids,
                    feature_layer=feature_layer, feature_layers=head_layers, dtype=dtype, arch_keys=keys,
                    train=dict(tokens=res["tokens"], steps=res["steps"], seconds=res["seconds"], loss=res["loss"]))
    summary = dict(out=str(out), kind=kind, seconds=time.monotonic() - t_start, data_seconds=meta["data_seconds"],
                   train_seconds=res["seconds"], data_tokens=n_tokens, train_tokens=res["tokens"],
                   steps=res["steps"], loss=res["loss"], acc_by_step=res["acc_by_step"],
                   heldout_acc=res["heldout_acc"], vocab=len(vocab_ids), bytes=os.path.getsize(out))
    acc = res["heldout_acc"] or res["acc_by_step"]
    progress(f"wrote {out} ({summary['bytes'] / 1e6:.1f} MB, {len(vocab_ids)} output rows); "
             f"top-1 on answers by step ({'held-out' if res['heldout_acc'] else 'training'}) "
             f"{' '.join(f'{a:.2f}' for a in acc)}; this run {summary['seconds'] / 60:.1f} min, "
             f"data {meta['data_seconds'] / 60:.1f} min in all")
    return summary
