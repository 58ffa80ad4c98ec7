"""CPU attention over the KV cache (attention_cpu) and the F16 KV cache store.

Checked against a float64 numpy reference (softmax attention with GQA, sliding window, softcap);
the F16 cache against the reference over the f16-rounded K/V. Bit-exact properties: every CPU path
gives the same bits as the scalar one, a query's output does not depend on the other queries of
the call (batch invariance, across the decode/verify and the prefill task modes), nor on the
thread count or where the workspace comes from.
"""
import numpy as np
import pytest

from fastspec import _core

# max |out - reference| / max |v| per cache type (the reference is float64 over the cached K/V),
# times max(1, q_scale / 8): a score's float32 rounding error grows with its size
TOL = {"F32": 2e-6, "F16": 2e-6}

CHUNK = 256  # kAttnChunk (attention.h): split-K boundaries at multiples of this
SPLIT_MAX_T = 32  # kAttnSplitMaxT: larger T uses the (query, kv head) task mode

# (n_heads, n_kv_heads, head_dim)
SMOLLM2 = (9, 3, 64)
GEMMA3 = (4, 1, 256)
SHAPES = [SMOLLM2, GEMMA3, (2, 2, 32), (10, 2, 48), (6, 3, 20), (5, 1, 8), (3, 1, 1)]


@pytest.fixture(autouse=True)
def restore_cpu_path():
    yield
    _core._set_cpu_path(_core.cpu_paths()[-1])


def make(shape, n_pos, T, seed=0, q_scale=1.0):
    n_heads, n_kv, hd = shape
    rng = np.random.default_rng(seed)
    q = (rng.standard_normal((T, n_heads, hd)) * q_scale).astype(np.float32)
    k = rng.standard_normal((n_pos, n_kv, hd)).astype(np.float32)
    v = rng.standard_normal((n_pos, n_kv, hd)).astype(np.float32)
    return q, k, v


def reference(q, k, v, pos, scale, window=0, softcap=0.0):
    """float64 softmax attention: query t sees keys [max(0, pos - window + 1), pos] of its kv head."""
    T, n_heads, hd = q.shape
    g = n_heads // k.shape[1]
    out = np.zeros((T, n_heads, hd))
    for t in range(T):
        first = max(0, pos[t] - window + 1) if window > 0 else 0
        kk = k[first:pos[t] + 1].astype(np.float64)  # [n, n_kv, hd]
        vv = v[first:pos[t] + 1].astype(np.float64)
        for h in range(n_heads):
            s = kk[:, h // g] @ q[t, h].astype(np.float64) * scale
            if softcap > 0:
                s = softcap * np.tanh(s / softcap)
            p = np.exp(s - s.max())
            out[t, h] = (p / p.sum()) @ vv[:, h // g]
    return out


def attention(q, k, v, pos, scale, window=0, softcap=0.0, kv_type="F32", threads=1, **kw):
    return _core._attention(q, k, v, np.asarray(pos, np.int32), scale, window, softcap, kv_type, threads, **kw)


def bits(x):
    return np.ascontiguousarray(x).view(np.uint32)


def f16_round(x):
    return x.astype(np.float16).astype(np.float32)


# ---- F16 store --------------------------------------------------------------------------------


def f16_cases():
    """Every finite half, the midpoints between neighbours (ties) and one f32 ulp either side,
    overflow and underflow edges, and both signs."""
    h = np.arange(0x7c00, dtype=np.uint16).view(np.float16).astype(np.float32)  # 0 .. 65504
    nxt = np.append(h[1:], np.float32(65536.0))  # 65536: the "next" after the largest half
    mid = ((h.astype(np.float64) + nxt) / 2).astype(np.float32)  # exact in f32 (12 significant bits)
    x = np.concatenate([h, mid, np.nextafter(mid, np.float32(0)), np.nextafter(mid, np.float32(np.inf)),
                        np.array([1e-30, 2.0**-126, 1e-45, 2.0**-25, 2.0**-24, 65520.0, 1e5, 3e38, np.inf],
                                 np.float32)])
    return np.concatenate([x, -x])


@pytest.mark.parametrize("path", _core.cpu_paths())
def test_f16_store_matches_numpy(path):
    _core._set_cpu_path(path)
    x = f16_cases()
    rng = np.random.default_rng(1)
    r = rng.integers(0, 2**32, size=1 << 20, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = np.concatenate([x, r[~np.isnan(r)]])
    with np.errstate(over="ignore"):
        want = x.astype(np.float16).view(np.uint16)
    got = _core._kv_store_f16(x)
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, [(float(x[i]), hex(int(got[i])), hex(int(want[i]))) for i in bad[:8]]


def test_f16_store_nan_and_paths_agree():
    """NaNs come back quieted with their upper payload bits (vcvtps2ph), on every path the same
    bits, signalling NaNs included; the odd-length tail too."""
    rng = np.random.default_rng(2)
    u = np.concatenate([rng.integers(0, 2**32, size=(1 << 16) + 5, dtype=np.uint64).astype(np.uint32),
                        np.array([0x7f800001, 0xff800001, 0x7fc00000, 0x7fbfffff, 0x7fffffff, 0x7f802000],
                                 np.uint32)])
    x = u.view(np.float32)
    results = {}
    for path in _core.cpu_paths():
        _core._set_cpu_path(path)
        results[path] = _core._kv_store_f16(x)
    for path, r in results.items():
        assert np.array_equal(r, results["scalar"]), path
    nan = np.isnan(x)
    want = ((u[nan] >> 16) & 0x8000) | 0x7e00 | ((u[nan] >> 13) & 0x3ff)
    assert np.array_equal(results["scalar"][nan], want.astype(np.uint16))
    for n in (0, 1, 7, 9, 17):
        y = rng.standard_normal(n).astype(np.float32)
        assert np.array_equal(_core._kv_store_f16(y), y.astype(np.float16).view(np.uint16))


# ---- accuracy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kv_type", ["F32", "F16"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("window,softcap,q_scale", [(0, 0.0, 1.0), (300, 0.0, 1.0), (0, 30.0, 12.0), (5, 0.0, 4.0),
                                                    (0, 0.0, 40.0)])  # the last: weights far below e^-80
def test_matches_reference(shape, kv_type, window, softcap, q_scale):
    n_pos = 700
    pos = [0, 1, 255, 256, 257, 511, 512, 699]
    q, k, v = make(shape, n_pos, len(pos), seed=3, q_scale=q_scale)
    scale = 1.0 / np.sqrt(shape[2])
    out = attention(q, k, v, pos, scale, window, softcap, kv_type, threads=2)
    if kv_type == "F16":
        k, v = f16_round(k), f16_round(v)
    ref = reference(q, k, v, pos, scale, window, softcap)
    err = np.abs(out - ref).max() / np.abs(v).max()
    assert err <= TOL[kv_type] * max(1.0, q_scale / 8), err


def test_long_context_reference():
    """Decode at ~3000 positions (12 chunks), both model shapes, F16."""
    for shape, window in ((SMOLLM2, 0), (GEMMA3, 512), (GEMMA3, 0)):
        q, k, v = make(shape, 3001, 2, seed=4)
        pos = [2999, 3000]
        out = attention(q, k, v, pos, 1.0 / np.sqrt(shape[2]), window, 0.0, "F16", threads=2)
        ref = reference(q, f16_round(k), f16_round(v), pos, 1.0 / np.sqrt(shape[2]), window)
        assert np.abs(out - ref).max() / np.abs(v).max() <= TOL["F16"]


def test_one_key_is_exact_v():
    """pos 0 (or window 1): the softmax of one key is 1, out = v exactly."""
    q, k, v = make(SMOLLM2, 10, 2, seed=5)
    out = attention(q, k, v, [0, 9], 0.125, window=1)
    g = 3
    for h in range(9):
        assert np.array_equal(out[0, h], v[0, h // g])
        assert np.array_equal(out[1, h], v[9, h // g])


# ---- bit-exact properties -----------------------------------------------------------------------


@pytest.mark.parametrize("kv_type", ["F32", "F16"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_paths_bit_equal(shape, kv_type):
    n_pos = 1100
    pos = [3, 255, 256, 700, 1023, 1024, 1099]
    q, k, v = make(shape, n_pos, len(pos), seed=6, q_scale=3.0)
    outs = {}
    for path in _core.cpu_paths():
        _core._set_cpu_path(path)
        outs[path] = attention(q, k, v, pos, 0.3, 0, 20.0, kv_type, threads=2)
        outs[path + "/window"] = attention(q, k, v, pos, 0.3, 400, 0.0, kv_type, threads=2)
    for name, o in outs.items():
        ref = outs["scalar/window" if name.endswith("/window") else "scalar"]
        assert np.array_equal(bits(o), bits(ref)), name


@pytest.mark.parametrize("kv_type", ["F32", "F16"])
@pytest.mark.parametrize("shape,window", [(SMOLLM2, 0), (GEMMA3, 512), (GEMMA3, 0), ((10, 2, 48), 300)],
                         ids=["smollm2", "gemma3-local", "gemma3-global", "10x2x48-w300"])
def test_batch_invariance(shape, window, kv_type):
    """A verify pass at P, P+1, ...: each query's output equals the same query run alone."""
    n_pos = 3100
    scale = 1.0 / np.sqrt(shape[2])
    for T in (1, 2, 5, 17, SPLIT_MAX_T + 8):
        for P in (0, CHUNK - 3, 4 * CHUNK - T // 2, 3100 - T):
            q, k, v = make(shape, n_pos, T, seed=7 + T + P)
            pos = np.arange(P, P + T, dtype=np.int32)
            both = attention(q, k, v, pos, scale, window, 0.0, kv_type, threads=2)
            for t in range(T):
                alone = attention(q[t:t + 1], k, v, pos[t:t + 1], scale, window, 0.0, kv_type, threads=2)
                assert np.array_equal(bits(both[t]), bits(alone[0])), (T, P, t)


@pytest.mark.parametrize("path", _core.cpu_paths())
def test_batch_invariance_any_order(path):
    """Queries in any order and at unrelated positions, prefill-sized T (the other task mode)
    included, on every path."""
    _core._set_cpu_path(path)
    shape = SMOLLM2
    rng = np.random.default_rng(8)
    n_pos = 2100
    pos = rng.integers(0, n_pos, size=48).astype(np.int32)
    q, k, v = make(shape, n_pos, len(pos), seed=9)
    for kv_type in ("F32", "F16"):
        full = attention(q, k, v, pos, 0.125, 0, 0.0, kv_type, threads=2)
        for T in (1, 3, 17, 48):
            part = attention(q[:T][::-1].copy(), k, v, pos[:T][::-1].copy(), 0.125, 0, 0.0, kv_type, threads=2)
            assert np.array_equal(bits(part[::-1]), bits(full[:T])), (kv_type, T)


@pytest.mark.parametrize("kv_type", ["F32", "F16"])
def test_threads_and_scratch_bit_equal(kv_type):
    for shape in (SMOLLM2, GEMMA3):
        for T in (1, 17, 40):
            q, k, v = make(shape, 3000, T, seed=10 + T)
            pos = np.arange(3000 - T, 3000, dtype=np.int32)
            base = attention(q, k, v, pos, 0.1, 0, 0.0, kv_type, threads=1)
            for threads in (2, 3):
                assert np.array_equal(bits(base), bits(attention(q, k, v, pos, 0.1, 0, 0.0, kv_type, threads)))
            assert np.array_equal(bits(base), bits(attention(q, k, v, pos, 0.1, 0, 0.0, kv_type, 2,
                                                             use_scratch=False)))


def test_bad_arguments():
    q, k, v = make(SMOLLM2, 10, 1)
    with pytest.raises(ValueError):
        attention(q, k, v, [0], 0.1, kv_type="Q8_0")
    with pytest.raises(ValueError):
        attention(q, k, v, [10], 0.1)
    with pytest.raises(ValueError):
        attention(q[:, :8], k, v, [0], 0.1)  # 8 heads over 3 kv heads
