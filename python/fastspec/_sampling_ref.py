"""The processed next-token distribution, as a spec in numpy: the one Python reference.

    greedy(logits) -> int                  argmax; ties go to the lowest token id
    processed_probs(logits, temperature, top_k=0, top_p=1.0) -> float64 [vocab], sums to 1

The formula (p and q of DESIGN.md: the plain sampler and the speculative acceptance test both
use it):
  1. temperature <= 0: one-hot at greedy(logits); top_k and top_p are ignored.
  2. w_i = exp(z_i - max_j z_j) with z = logits * (1 / temperature)          (unnormalized)
  3. sorted order: ids by descending w, ties by ascending id.
  4. top_k: if 0 < top_k < vocab, keep the first top_k ids of the sorted order.   (<= 0: off)
  5. top_p: if top_p < 1, of those keep the shortest prefix whose mass reaches top_p of theirs:
     the first m with  w_(1) + ... + w_(m) >= top_p * (w_(1) + ... + w_(n)),  so at least one id.
                                                                                    (>= 1: off)
  6. probs_i = w_i / (sum of w over the kept ids) on the kept ids; exactly 0 elsewhere.

The arithmetic is that of cpp/src/spec/sampler.cpp -- float64 throughout, sums left to right
(the top-p prefix sums in sorted order, the normaliser over the kept ids ascending) -- so the C++
sampler's float32 probabilities are these rounded to float32 (within an ulp: numpy's exp and the C
library's may differ in the last bit) when temperature and top_p are given as the float32 values
the engine stores (`as_float32`). tests/test_spec_sampler.py checks that against
_core.processed_distribution; fastspec.audit and the distribution tests take their exact
distributions from here.
"""
import numpy as np


def as_float32(x):
    """x rounded to float32, as SamplingOptions stores temperature and top_p."""
    return float(np.float32(x))


def greedy(logits):
    return int(np.argmax(np.asarray(logits)))  # np.argmax returns the first (lowest) maximal id


def processed_probs(logits, temperature=1.0, top_k=0, top_p=1.0):
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    V = len(z)
    out = np.zeros(V, dtype=np.float64)
    if temperature <= 0:
        out[greedy(z)] = 1.0
        return out
    z = z * (1.0 / temperature)
    w = np.exp(z - z.max())
    keep = np.arange(V)
    if 0 < top_k < V or top_p < 1.0:
        order = np.lexsort((np.arange(V), -w))  # descending w, ties by ascending id
        n = top_k if 0 < top_k < V else V
        if top_p < 1.0:
            cum = np.cumsum(w[order[:n]])        # sequential, like the C++ loop
            n = int(np.argmax(cum >= top_p * cum[-1])) + 1
        keep = np.sort(order[:n])
    kept = np.cumsum(w[keep])[-1]
    out[keep] = w[keep] / kept
    return out
