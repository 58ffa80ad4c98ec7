"""`fastspec perplexity MODEL TEXT_FILE [--context 512]`: perplexity of a text under a model, by the engine.

    import fastspec
    ppl = fastspec.perplexity("smollm2-135m-instruct", open("eval.txt").read(), context=512)

Windows: the text is tokenized whole without special tokens (no BOS) and cut into consecutive,
non-overlapping windows of `context` tokens (the last one may be shorter; one under 2 tokens is
dropped). Each window is run from an empty KV cache (`Engine.logits`), and every token of it but
the first is scored by the logits of the position before it: a window of n tokens scores n - 1.
Perplexity = exp(total negative log-likelihood / tokens scored), log-softmax in float64.
`max_windows` limits the windows (the first ones) for quick runs.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Callable, List, Optional

import numpy as np


@dataclass
class PerplexityResult:
    perplexity: float
    nll: float          # total negative log-likelihood, nats
    tokens: int         # tokens scored
    windows: int


def _window_nll(logits: np.ndarray, ids: List[int]) -> float:
    """sum over t >= 1 of -log softmax(logits[t-1])[ids[t]], in float64."""
    z = logits[:-1].astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))
    tgt = z[np.arange(len(ids) - 1), np.asarray(ids[1:])]
    return float((lse - tgt).sum())


def _progress_line(i: int, n: int, ppl: float) -> None:
    sys.stderr.write(f"\rperplexity: window {i}/{n}  running ppl {ppl:.4f}" + ("\n" if i == n else ""))
    sys.stderr.flush()


def perplexity_windows(model, text: str, context: int = 512, *, max_windows: Optional[int] = None,
                       threads: Optional[int] = None, precision: Optional[str] = None,
                       progress: Optional[Callable[[int, int, float], None]] = None) -> PerplexityResult:
    """The details behind perplexity(): model is a path, a known name or a fastspec.Engine."""
    from .engine import Engine

    if context < 2:
        raise ValueError(f"context {context}: must be at least 2 tokens")
    eng = model if isinstance(model, Engine) else Engine(model, context=context, threads=threads,
                                                         precision=precision)
    if context > eng.context:
        raise ValueError(f"context {context} exceeds the engine's context {eng.context}")
    ids = eng.tokenize(text, add_special=False)
    wins = [ids[i:i + context] for i in range(0, len(ids), context)]
    wins = [w for w in wins if len(w) >= 2]
    if max_windows is not None:
        wins = wins[:max_windows]
    if not wins:
        raise ValueError(f"text of {len(ids)} tokens: nothing to score (need at least 2 tokens)")
    nll, n = 0.0, 0
    for i, w in enumerate(wins, 1):
        nll += _window_nll(eng.logits(w), w)
        n += len(w) - 1
        if progress is not None:
            progress(i, len(wins), math.exp(nll / n))
    return PerplexityResult(math.exp(nll / n), nll, n, len(wins))


def perplexity(model, text: str, context: int = 512, **kwargs) -> float:
    """Perplexity of `text` under `model` (path, known name or Engine); see the module docstring."""
    return perplexity_windows(model, text, context, **kwargs).perplexity
