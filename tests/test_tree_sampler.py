"""Token-tree acceptance (spec/tree.h), the exact and distributional tiers.

Exact: fastspec._core.tree_accept against a numpy copy of the rule with the randomness passed in
(greedy and sampled, one-hot and dense q, random trees), and on chains against rejection_sample.
Distributional: the first committed token of a tree step has the target's distribution p_root
(chi-square over many draws, siblings drawn i.i.d. from a dense q so that q matters), and the same
test rejects two deliberately broken variants of the rule: the residual not updated after a
rejected sibling, and q ignored in the acceptance test.
"""
import numpy as np
import pytest

from fastspec import _core
from fastspec.audit import chi2_sf

from test_spec_sampler import np_draw, np_processed, opts


# ---- the numpy copy ------------------------------------------------------------------------------

def np_tree_accept(p_logits, q_probs, tokens, parent, temperature, top_k, top_p, u, rule="correct"):
    """(path, next, kind). rule: "correct" | "no_residual_update" | "q_ignored" (broken variants)."""
    n = len(tokens)
    path, cur = [], -1
    while True:
        row = p_logits[cur + 1]
        children = [c for c in range(cur + 1, n) if parent[c] == cur]
        if temperature == 0:
            best = int(np.argmax(row))
            hit = [c for c in children if tokens[c] == best]
            if hit:
                cur = hit[0]
                path.append(cur)
                continue
            return path, best, "recovered" if children else "bonus"
        p = np_processed(row, temperature, top_k, top_p)
        R, mass, residual, accepted = p.copy(), 1.0, False, None
        for c in children:
            x = tokens[c]
            qc = 1.0 if rule == "q_ignored" else q_probs[c][x]
            if u[c] * qc * mass < R[x]:
                accepted = c
                break
            if rule == "no_residual_update" and residual:
                continue  # later siblings tested against the first residual
            nxt = np.maximum(0.0, R / mass - q_probs[c])
            residual = True
            if nxt.sum() > 0:
                R, mass = nxt, float(np.cumsum(nxt)[-1])
        if accepted is not None:
            cur = accepted
            path.append(cur)
            continue
        if not children:
            return path, np_draw(p, u[n]), "bonus"
        return path, np_draw(R, u[n]), "recovered"


def random_tree(rng, n):
    return [-1] + [int(rng.integers(-1, i)) for i in range(1, n)]


def one_hot_q(tokens, V):
    q = np.zeros((len(tokens), V), np.float32)
    q[np.arange(len(tokens)), tokens] = 1.0
    return q


SAMPLINGS = [(0.0, 0, 1.0), (1.0, 0, 1.0), (0.7, 0, 1.0), (1.0, 5, 1.0), (1.0, 0, 0.8)]


@pytest.mark.parametrize("sampling", SAMPLINGS, ids=lambda s: f"T{s[0]}-k{s[1]}-p{s[2]}")
@pytest.mark.parametrize("dense_q", [False, True], ids=["one-hot-q", "dense-q"])
def test_matches_numpy_copy(sampling, dense_q):
    T, top_k, top_p = sampling
    rng = np.random.default_rng(0)
    V = 12
    kinds = set()
    for trial in range(300):
        n = int(rng.integers(0, 14))
        parent = random_tree(rng, n) if n else []
        p_logits = (rng.standard_normal((n + 1, V)) * 2).astype(np.float32)
        if dense_q:
            q = rng.dirichlet(np.ones(V) * 0.5, size=n).astype(np.float32)
            tokens = [int(rng.choice(V, p=q[i] / q[i].sum())) for i in range(n)]
        else:
            # drafts that often are the target's favourites, so paths get long
            tokens = [int(np.argmax(p_logits[parent[i] + 1])) if rng.random() < 0.6 else int(rng.integers(V))
                      for i in range(n)]
            q = one_hot_q(tokens, V)
        u = rng.random(n + 1)
        got = _core.tree_accept(p_logits, q.reshape(n, V), np.array(tokens, np.int32),
                                np.array(parent, np.int32), opts(T, top_k, top_p), u)
        want = np_tree_accept(p_logits, q.astype(np.float64), tokens, parent, T, top_k, top_p, u)
        assert (list(got[0]), got[1], got[2]) == (want[0], want[1], want[2]), (trial, parent, tokens)
        kinds.add((got[2], len(got[0]) > 0))
    assert len(kinds) >= 3  # recovered and bonus, with and without an accepted path


@pytest.mark.parametrize("sampling", SAMPLINGS, ids=lambda s: f"T{s[0]}-k{s[1]}-p{s[2]}")
def test_chain_is_the_rejection_sampler(sampling):
    rng = np.random.default_rng(1)
    V = 10
    for trial in range(300):
        k = int(rng.integers(0, 8))
        p_logits = (rng.standard_normal((k + 1, V)) * 2).astype(np.float32)
        q = rng.dirichlet(np.ones(V), size=k).astype(np.float32)
        draft = np.array([int(rng.choice(V, p=q[i] / q[i].sum())) for i in range(k)], np.int32)
        u = rng.random(k + 1)
        o = opts(*sampling)
        n_acc, nxt, kind = _core.rejection_sample(p_logits, q.reshape(k, V), draft, o, u)
        path, nxt2, kind2 = _core.tree_accept(p_logits, q.reshape(k, V), draft, np.arange(-1, k - 1, dtype=np.int32), o, u)
        assert (list(path), nxt2, kind2) == (list(range(n_acc)), nxt, kind), trial


def test_bad_tree_raises():
    p = np.zeros((3, 4), np.float32)
    q = one_hot_q([1, 2], 4)
    with pytest.raises(ValueError, match="parent"):
        _core.tree_accept(p, q, np.array([1, 2], np.int32), np.array([-1, 1], np.int32), opts(0.0), np.zeros(3))
    with pytest.raises(ValueError, match="shapes"):
        _core.tree_accept(p, q, np.array([1, 2], np.int32), np.array([-1], np.int32), opts(0.0), np.zeros(3))


# ---- distributional tier -------------------------------------------------------------------------

V_D = 6
ALPHA = 1e-3


def first_token_counts(sample_fn, n, rng):
    counts = np.zeros(V_D)
    for _ in range(n):
        counts[sample_fn(rng)] += 1
    return counts


def chi_square_p(counts, probs):
    keep = probs > 0
    assert counts[~keep].sum() == 0  # never a token outside the support
    exp = probs[keep] * counts.sum()
    stat = float(((counts[keep] - exp) ** 2 / exp).sum())
    return chi2_sf(stat, int(keep.sum()) - 1)


@pytest.mark.parametrize("sampling", [(1.0, 0, 1.0), (0.7, 0, 1.0), (1.0, 4, 1.0), (1.0, 0, 0.8)],
                         ids=["T1.0", "T0.7", "T1.0-topk4", "T1.0-topp0.8"])
def test_first_token_has_the_target_distribution(sampling):
    """Root with 3 children drawn i.i.d. from a dense q (each with a child of its own): the first
    committed token is distributed as p_root; the broken rules fail the same test."""
    T, top_k, top_p = sampling
    rng0 = np.random.default_rng(5)
    p_logits = (rng0.standard_normal((7, V_D)) * 1.5).astype(np.float32)
    q_root = np.array([0.45, 0.3, 0.1, 0.1, 0.04, 0.01])  # far from p: rejections and residuals
    q_child = rng0.dirichlet(np.ones(V_D), size=3)
    parent = [-1, -1, -1, 0, 1, 2]
    p_root = np_processed(p_logits[0], T, top_k, top_p)
    o = opts(T, top_k, top_p)

    def draw(rng, rule=None):
        tokens = [int(rng.choice(V_D, p=q_root)) for _ in range(3)]
        tokens += [int(rng.choice(V_D, p=q_child[i])) for i in range(3)]
        q = np.vstack([q_root] * 3 + list(q_child))
        u = rng.random(7)
        if rule is None:
            path, nxt, _ = _core.tree_accept(p_logits, q.astype(np.float32), np.array(tokens, np.int32),
                                             np.array(parent, np.int32), o, u)
        else:
            path, nxt, _ = np_tree_accept(p_logits, q, tokens, parent, T, top_k, top_p, u, rule)
        return tokens[path[0]] if len(path) else nxt

    n = 30000
    ok = chi_square_p(first_token_counts(draw, n, np.random.default_rng(6)), p_root)
    assert ok >= ALPHA, ok
    ref = chi_square_p(first_token_counts(lambda r: draw(r, "correct"), n, np.random.default_rng(7)), p_root)
    assert ref >= ALPHA, ref
    for rule in ("no_residual_update", "q_ignored"):
        bad = chi_square_p(first_token_counts(lambda r: draw(r, rule), n, np.random.default_rng(7)), p_root)
        assert bad < ALPHA, (rule, bad)
