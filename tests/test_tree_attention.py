"""Tree attention (AttentionArgs::parent): a token tree's verify pass, where each row attends to the
cache below the tree and to its own ancestors. The exact property trees rest on: every node's
output is bit-equal to decoding its path alone (a causal pass over the cache + the path laid out
contiguously), on every CPU path, for both KV types, windows and softcaps, at chunk boundaries,
in both attention task modes (split-K for T <= 32, per-query for larger T) and any thread count.
"""
import numpy as np
import pytest

from fastspec import _core

from test_attention import GEMMA3, SMOLLM2, attention, bits, make


@pytest.fixture(autouse=True)
def restore_cpu_path():
    yield
    _core._set_cpu_path(_core.cpu_paths()[-1])


def random_tree(rng, T, roots=1, chain_bias=0.5):
    """parent[T]: row 0 and (roots - 1) other rows are roots (-1); the rest hang off an earlier row,
    often the previous one (long paths) and otherwise any earlier row (branching)."""
    parent = [-1]
    root_rows = set(rng.choice(np.arange(1, T), size=min(roots - 1, T - 1), replace=False)) if T > 1 else set()
    for t in range(1, T):
        if t in root_rows:
            parent.append(-1)
        elif rng.random() < chain_bias:
            parent.append(t - 1)
        else:
            parent.append(int(rng.integers(0, t)))
    return parent


def depths(parent):
    d = []
    for p in parent:
        d.append(0 if p < 0 else d[p] + 1)
    return d


def ancestors(parent, t):
    path = []
    while t >= 0:
        path.append(t)
        t = parent[t]
    return path[::-1]


def tree_case(shape, base, parent, seed):
    """q [T], k/v [base + T] (rows of the tree at slots base + t), pos = base + depth."""
    T = len(parent)
    q, k, v = make(shape, base + T, T, seed=seed, q_scale=2.0)
    pos = np.array([base + d for d in depths(parent)], dtype=np.int32)
    return q, k, v, pos


def path_alone(q, k, v, parent, base, t, scale, window, softcap, kv_type, threads):
    path = ancestors(parent, t)
    rows = np.concatenate([np.arange(base), base + np.array(path)])
    kp, vp = k[rows].copy(), v[rows].copy()
    return attention(q[t:t + 1], kp, vp, np.array([base + len(path) - 1], dtype=np.int32), scale, window,
                     softcap, kv_type, threads)[0]


CASES = [  # (shape, window, softcap)
    (SMOLLM2, 0, 0.0),
    (GEMMA3, 512, 0.0),  # Gemma 3's local layers
    (GEMMA3, 0, 50.0),
    ((10, 2, 48), 300, 0.0),
    ((6, 3, 20), 0, 0.0),  # head_dim with an 8-element and a scalar tail
]


@pytest.mark.parametrize("kv_type", ["F32", "F16"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[0])) + f"-w{c[1]}-c{c[2]:g}")
def test_node_equals_its_path_alone(case, kv_type):
    shape, window, softcap = case
    rng = np.random.default_rng(1)
    scale = 1.0 / np.sqrt(shape[2])
    for base in (0, 1, 250, 256, 700):
        for T, roots in ((1, 1), (5, 1), (17, 2), (40, 3)):
            parent = random_tree(rng, T, roots)
            q, k, v, pos = tree_case(shape, base, parent, seed=base + T)
            out = attention(q, k, v, pos, scale, window, softcap, kv_type, threads=2, parent=parent)
            for t in range(T):
                alone = path_alone(q, k, v, parent, base, t, scale, window, softcap, kv_type, 2)
                assert np.array_equal(bits(out[t]), bits(alone)), (base, T, t, parent)


@pytest.mark.parametrize("path", _core.cpu_paths())
def test_paths_threads_and_chain(path):
    """Every CPU path gives the scalar path's bits for a tree, at any thread count, and a tree that
    is a chain gives exactly the causal pass."""
    shape = SMOLLM2
    rng = np.random.default_rng(2)
    parent = random_tree(rng, 24, 2, chain_bias=0.3)
    q, k, v, pos = tree_case(shape, 260, parent, seed=3)
    _core._set_cpu_path("scalar")
    want = attention(q, k, v, pos, 0.125, 0, 0.0, "F16", threads=1, parent=parent)
    _core._set_cpu_path(path)
    for threads in (1, 2, 3):
        got = attention(q, k, v, pos, 0.125, 0, 0.0, "F16", threads=threads, parent=parent)
        assert np.array_equal(bits(got), bits(want)), threads
    chain = list(range(-1, 15))
    qc, kc, vc, posc = tree_case(shape, 250, chain, seed=4)
    assert np.array_equal(posc, np.arange(250, 266))
    assert np.array_equal(bits(attention(qc, kc, vc, posc, 0.125, 0, 0.0, "F16", 2, parent=chain)),
                          bits(attention(qc, kc, vc, posc, 0.125, 0, 0.0, "F16", 2)))


def test_bad_trees():
    q, k, v, pos = tree_case(SMOLLM2, 10, [-1, 0, 0], seed=5)
    attention(q, k, v, pos, 0.1, parent=[-1, 0, 0])
    with pytest.raises(RuntimeError, match="parent"):
        attention(q, k, v, pos, 0.1, parent=[0, 0, 0])  # row 0 must be a root
    with pytest.raises(RuntimeError, match="parent"):
        attention(q, k, v, pos, 0.1, parent=[-1, 2, 0])  # parents come first
    with pytest.raises(RuntimeError, match="position"):
        attention(q, k, v, pos + np.array([0, 0, 1], dtype=np.int32), 0.1, parent=[-1, 0, 0])
    T = 65
    q, k, v, pos = tree_case(SMOLLM2, 0, list(range(-1, T - 1)), seed=6)
    with pytest.raises(RuntimeError, match="at most 64"):
        attention(q, k, v, pos, 0.1, parent=list(range(-1, T - 1)))
