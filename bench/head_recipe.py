"""Training-recipe experiments for EAGLE heads on an existing distill work dir (no new data):
each variant trains a fresh head for the same wall-clock budget on the same conversations and
reports top-1 on the held-out answers (every 20th prompt), per drafting step. Needs the `train` extra.

    python bench/head_recipe.py --target ~/.cache/fastspec/SmolLM2-135M-Instruct.Q4_1.gguf \
        --work ~/.cache/fastspec/distill/smollm2-s9 --seconds 480 \
        --variant 'base={"lr": 0.001}' --variant 'lr3={"lr": 0.003}' --variant 'ce1={"lr": 0.001, "ce_weight": 1.0}'

A variant is NAME=JSON of train.train keyword arguments, plus "states": the work dir's data then
must hold EAGLE-3 states (distill --features eagle3) and the head reads them. Variants run one
after another (each gets the whole machine); seeds are fixed, so only the recipe differs.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch

from fastspec import _core
from fastspec.distill import _output_rows, data, new_eagle_head, train


def run(target: str, work: str, seconds: float, name: str, kw: dict, threads: int) -> str:
    torch.set_num_threads(threads)
    mf = _core.ModelFile(target)
    cfg = mf.config
    states = bool(kw.pop("states", False))
    convs, held = data.split_heldout(data.load(work), 20)
    if states and "feat_in" not in convs[0]:
        raise SystemExit(f"{work}: its data holds no EAGLE-3 states")
    n_feat = convs[0]["feat_in"].shape[1] // cfg.n_embd if states else 1
    vpath = os.path.join(work, "eagle", "vocab.json")
    vocab_ids = json.load(open(vpath)) if os.path.exists(vpath) else data.vocab_subset(work, cfg.vocab_size, 8192)
    torch.manual_seed(0)
    head = new_eagle_head(cfg, torch.from_numpy(_output_rows(mf, vocab_ids)), convs, n_feat=n_feat)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        res = train.train(head, convs, kind="eagle", vocab_ids=vocab_ids, vocab_size=cfg.vocab_size, seconds=seconds,
                          steps=3, ckpt=os.path.join(tmp, "ckpt.pt"), heldout=held, progress=lambda s: None, **kw)
    return (f"| {name} | {json.dumps(kw)}{' + states' if states else ''} | {res['steps']} | "
            f"{' / '.join(f'{a:.3f}' for a in res['heldout_acc'])} | {time.time() - t0:.0f} s |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--work", required=True, help="a distill work dir (its data/ shards)")
    ap.add_argument("--seconds", type=float, default=480, help="training budget per variant")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variant", action="append", required=True, help="NAME=JSON (repeatable)")
    a = ap.parse_args()
    print("| variant | recipe | steps | held-out top-1 (steps 1 / 2 / 3) | wall |")
    print("|---|---|---:|---|---:|")
    for v in a.variant:
        name, js = v.split("=", 1)
        print(run(os.path.expanduser(a.target), os.path.expanduser(a.work), a.seconds, name, json.loads(js), a.threads),
              flush=True)


if __name__ == "__main__":
    main()
