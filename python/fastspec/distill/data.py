"""Distillation data: the target answers prompts (our engine, continuous batching), then one
forward pass per conversation records what a head trains on. Stored in the work dir as shards
(resumable: a shard written is never redone).

Per conversation of n tokens c_0..c_{n-1} (prompt + answer), shard arrays (rows concatenated):
    ids   [n]     int32   the tokens
    emb   [n, d]  float16 hidden state 0 at each position: E(c_t) (the embedding the core's embed() gives)
    feat  [n, d]  float16 hidden state `feature_layer` at t: F_t (the final norm's output by default)
    states [n, (m-1) d] float16 (EAGLE-3 data only) the lower states of `feature_layers` at t, low
                  to high; load() gives each conversation feat_in = [states | feat] [n, m d]
    label [n]     int32   argmax of the target's logits at t: the target's next token after c_0..c_t
    offsets [m+1] int64   conversation j holds rows offsets[j]..offsets[j+1]
    plen  [m]     int32   conversation j's prompt length (rows before it are prompt, after it answer)
    pi    [m]     int32   the index of conversation j's prompt in the prompt list
(Shards written before plen/pi existed get them back in load() from the prompt list.)
No torch here: numpy and the core only.
"""
from __future__ import annotations

import glob
import json
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence

import numpy as np

from .. import _core

DEFAULT_PROMPTS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "distill_prompts.txt")


def read_prompts(path: Optional[str] = None) -> List[str]:
    """One prompt per line; '#' lines are comments; a literal \\n is a newline, \\\\ a backslash."""
    path = path or DEFAULT_PROMPTS
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            out.append(line.replace("\\\\", "\0").replace("\\n", "\n").replace("\0", "\\"))
    if not out:
        raise ValueError(f"{path}: holds no prompts")
    return out


def prompt_ids(engine, prompt: str) -> List[int]:
    """The chat-formatted prompt ids (plain text for a model without a chat template)."""
    tok = engine.tokenizer
    if tok.chat_template:
        return tok.encode_chat([{"role": "user", "content": prompt}])
    return engine.tokenize(prompt)


def prompt_list(engine, prompts: Sequence[str], max_new: int) -> List[List[int]]:
    """The ids build() answers: each chat-formatted prompt, its tail where it would not leave
    max_new + 1 positions of the engine's context."""
    n_ctx = engine._core.context
    return [prompt_ids(engine, p)[-max(1, n_ctx - max_new - 1):] for p in prompts]


@dataclass
class Pass:
    """One sweep over the prompts: greedy (temperature 0) or sampled with a seed."""

    index: int
    temperature: float
    seed: int


def passes() -> Iterator[Pass]:
    """Pass 0 is greedy (what greedy decoding will see); later passes sample at T 0.8 (variety)."""
    yield Pass(0, 0.0, 0)
    i = 1
    while True:
        yield Pass(i, 0.8, 1000 + i)
        i += 1


def generate(engine, prompts: Sequence[List[int]], p: Pass, max_new: int, batch: int,
             deadline: Optional[float] = None) -> List[List[int]]:
    """Answers for prompt ids (prompt + answer ids each), `batch` sessions per target pass. Sessions
    not finished by the deadline are cut there (their tokens so far are kept); those never started
    are left out, so the result is always the answers of a prefix of `prompts`, in order."""
    eos = sorted(engine.tokenizer.eos_ids)
    out: List[Optional[List[int]]] = [None] * len(prompts)
    pending = list(range(len(prompts)))
    live = []  # (index, session, generated)
    while pending or live:
        while pending and len(live) < batch:
            j = pending.pop(0)
            s = _core.SamplingOptions()
            s.temperature, s.max_tokens = p.temperature, max_new
            s.seed = (p.seed * 1_000_003 + j) & (2**64 - 1)
            live.append((j, engine._core.start(list(prompts[j]), s, eos, use_draft=False), []))
        engine._core.step_batch([x[1] for x in live])
        late = deadline is not None and time.monotonic() > deadline
        keep = []
        for j, sess, gen in live:
            gen.extend(sess.committed)
            if sess.finished or late:
                out[j] = list(prompts[j]) + gen
            else:
                keep.append((j, sess, gen))
        live = keep
        if late:
            for j in pending:
                out[j] = None
            break
    return [o for o in out if o is not None]


def record(engine, convs: Sequence[List[int]], feature_layers: Sequence[int], plen: Sequence[int] = (),
           pi: Sequence[int] = ()) -> dict:
    """Shard arrays (module docstring) of conversations, one forward pass each; feature_layers:
    the states a head reads, ascending (the last is `feat`; any lower ones are `states`)."""
    d = engine._core.config.n_embd
    fl = [int(x) for x in feature_layers]
    ids, emb, feat, states, label, offsets = [], [], [], [], [], [0]
    for c in convs:
        ctx = engine._core.new_context()
        rows_e, rows_f, rows_s, rows_l = [], [], [], []
        for a in range(0, len(c), 512):  # chunks bound the logits buffer (Gemma: 262144 per row)
            logits, f = ctx.forward_features(c[a:a + 512], [0] + fl)
            rows_e.append(f[:, 0].astype(np.float16))
            rows_f.append(f[:, -1].astype(np.float16))
            rows_s.append(f[:, 1:-1].reshape(len(f), -1).astype(np.float16))
            rows_l.append(np.argmax(logits, axis=1).astype(np.int32))
        ids.append(np.asarray(c, np.int32))
        emb.append(np.concatenate(rows_e))
        feat.append(np.concatenate(rows_f))
        states.append(np.concatenate(rows_s))
        label.append(np.concatenate(rows_l))
        offsets.append(offsets[-1] + len(c))
    out = dict(ids=np.concatenate(ids), emb=np.concatenate(emb).reshape(-1, d),
               feat=np.concatenate(feat).reshape(-1, d), label=np.concatenate(label),
               offsets=np.asarray(offsets, np.int64), plen=np.asarray(plen, np.int32).reshape(-1),
               pi=np.asarray(pi, np.int32).reshape(-1))
    if len(fl) > 1:
        out["states"] = np.concatenate(states).reshape(-1, (len(fl) - 1) * d)
    return out


def shard_path(work: str, pass_index: int, first: int) -> str:
    return os.path.join(work, "data", f"p{pass_index:03d}-{first:05d}.npz")


def build(engine, prompts: List[str], work: str, *, feature_layers: Sequence[int], max_new: int, seconds: float,
          batch: int = 8, shard_prompts: int = 16, min_passes: int = 1,
          progress: Callable[[str], None] = print) -> None:
    """Fills work/data with shards until `seconds` have been spent in this call (at least
    `min_passes` full sweeps; shards already there count as done)."""
    os.makedirs(os.path.join(work, "data"), exist_ok=True)
    t0 = time.monotonic()
    deadline = t0 + seconds
    ids = prompt_list(engine, prompts, max_new)
    done_tokens = 0
    for p in passes():
        for first in range(0, len(ids), shard_prompts):
            path = shard_path(work, p.index, first)
            if os.path.exists(path):
                continue
            over = time.monotonic() > deadline
            if over and p.index >= min_passes:
                return
            convs = generate(engine, ids[first:first + shard_prompts], p, max_new, batch,
                             None if p.index < min_passes else deadline)
            if not convs:
                return
            arrays = record(engine, convs, feature_layers, plen=[len(x) for x in ids[first:first + len(convs)]],
                            pi=range(first, first + len(convs)))
            np.savez(path + ".tmp.npz", **arrays)
            os.replace(path + ".tmp.npz", path)
            done_tokens += len(arrays["ids"])
            el = time.monotonic() - t0
            frac = min(1.0, el / seconds) if p.index >= min_passes else (first + len(convs)) / len(ids)
            progress(f"data: pass {p.index} prompts {first + len(convs)}/{len(ids)}  "
                     f"{total_tokens(work)} tokens  {done_tokens / max(el, 1e-9):.0f} tok/s  "
                     f"{progress_bar(frac)}  ETA {fmt_seconds(max(0.0, seconds - el) if p.index >= min_passes else el / max(frac, 1e-9) - el)}")


def shards(work: str) -> List[str]:
    return sorted(glob.glob(os.path.join(work, "data", "p*-*.npz")))


def total_tokens(work: str) -> int:
    n = 0
    for s in shards(work):
        with np.load(s) as z:
            n += int(z["offsets"][-1])
    return n


def load(work: str, prompts: Optional[Sequence[List[int]]] = None) -> List[dict]:
    """Every conversation as a dict of its arrays (ids, emb, feat, label; feat_in where the shard
    holds EAGLE-3 states) and ints plen, pi. A shard
    without plen/pi (older) gets them from `prompts` (the prompt ids in order; conversation k of
    shard p<pass>-<first> answered prompt first + k) where its ids start with that prompt; else
    plen 0 (all rows count as answer) and pi -1."""
    convs = []
    for s in shards(work):
        first = int(os.path.basename(s).split("-")[1].split(".")[0])
        with np.load(s) as z:
            arr = {k: z[k] for k in ("ids", "emb", "feat", "label")}
            if "states" in z.files:
                arr["feat_in"] = np.concatenate([z["states"], arr["feat"]], 1)
            off = z["offsets"]
            plen = z["plen"] if "plen" in z.files else None
            pi = z["pi"] if "pi" in z.files else None
        for k, (a, b) in enumerate(zip(off[:-1], off[1:])):
            c = {key: v[a:b] for key, v in arr.items()}
            if plen is not None:
                c["plen"], c["pi"] = int(plen[k]), int(pi[k])
            else:
                p = prompts[first + k] if prompts is not None and first + k < len(prompts) else None
                ok = p is not None and len(p) <= len(c["ids"]) and np.array_equal(c["ids"][:len(p)], p)
                c["plen"], c["pi"] = (len(p), first + k) if ok else (0, -1)
            convs.append(c)
    return convs


def split_heldout(convs: Sequence[dict], every: int = 20) -> tuple:
    """(train, held-out): the conversations of every `every`-th prompt (pi % every == every - 1, all
    passes) are held out, so the held-out accuracy is on prompts the head never saw."""
    out = lambda c: c.get("pi", -1) >= 0 and c["pi"] % every == every - 1  # noqa: E731
    return [c for c in convs if not out(c)], [c for c in convs if out(c)]


def vocab_subset(work: str, vocab_size: int, n: int, keep: Sequence[int] = ()) -> List[int]:
    """FR-Spec: the n most frequent tokens of the recorded conversations (labels and ids), always
    with `keep` (EOS, specials); ties and the remainder by id. Ascending ids."""
    n = min(n, vocab_size)
    counts = np.zeros(vocab_size, np.int64)
    for s in shards(work):
        with np.load(s) as z:
            counts += np.bincount(z["ids"], minlength=vocab_size)[:vocab_size]
            counts += np.bincount(z["label"], minlength=vocab_size)[:vocab_size]
    chosen = set(int(k) for k in keep if 0 <= k < vocab_size)
    order = np.lexsort((np.arange(vocab_size), -counts))  # by count descending, then id
    for i in order:
        if len(chosen) >= n:
            break
        chosen.add(int(i))
    return sorted(chosen)


def write_json(path: str, obj) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(path + ".tmp", path)


def progress_bar(frac: float, width: int = 20) -> str:
    k = int(round(frac * width))
    return "[" + "#" * k + "." * (width - k) + f"] {100 * frac:3.0f}%"


def fmt_seconds(s: float) -> str:
    s = int(s)
    return f"{s // 60}m{s % 60:02d}s"
