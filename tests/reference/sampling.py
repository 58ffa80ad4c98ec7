"""The processed next-token distribution, as a spec (numpy, float64).

    greedy(logits)                 argmax; ties go to the lowest token id.
    processed_probs(logits, temperature, top_k, top_p) -> probs [vocab], float64, sums to 1:
      1. temperature <= 0: one-hot at greedy(logits) (top_k / top_p are ignored).
      2. p = softmax(logits / temperature)               (computed in float64, max subtracted)
      3. sort ids by descending p, ties by ascending id  (the "sorted order" below)
      4. top_k: if 0 < top_k < vocab, keep the first top_k ids of the sorted order;
         renormalize.                                    (top_k <= 0 means off)
      5. top_p: if top_p < 1, keep the shortest prefix of the sorted order whose cumulative
         (renormalized) mass is >= top_p -- at least one id; renormalize. (top_p >= 1 means off)
    Everything outside the kept set has probability exactly 0.
This is the distribution both the plain sampler and the speculative acceptance test must use
(p and q in DESIGN.md).
"""
import numpy as np


def greedy(logits):
    return int(np.argmax(np.asarray(logits)))  # np.argmax returns the first (lowest) maximal id


def processed_probs(logits, temperature=1.0, top_k=0, top_p=1.0):
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    out = np.zeros_like(z)
    if temperature <= 0:
        out[greedy(z)] = 1.0
        return out
    z = z / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")                  # descending p, ties by ascending id
    if 0 < top_k < len(p):
        order = order[:top_k]
    kept = p[order] / p[order].sum()
    if top_p < 1.0:
        n = int(np.searchsorted(np.cumsum(kept), top_p, side="left")) + 1
        order, kept = order[:n], kept[:n]
    out[order] = kept / kept.sum()
    return out
