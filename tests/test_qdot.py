"""The 8-bit-activation integer dots (cpp/src/backend/cpu/qdot.h) and their activation quantizers.

- every CPU path is BIT-equal to the scalar reference, for every type, row length and T (the
  `_qdot` hook chunks T by kQDotMaxRows = 64, so T = 64 and 100 cross that boundary);
- batch invariance: a row's result does not depend on the other rows of the call;
- accuracy against an independent reference (gguf's numpy dequantizer, float64 matmul), and an
  exact check of the integer math against a numpy model of the activation quantization;
- the quantizers (`_quantize_act`) against the same numpy model, padding included.
"""
import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from fastspec import _core  # noqa: E402

PATHS = _core.cpu_paths()  # 'scalar' first
assert PATHS[0] == "scalar"

TYPES_32 = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]
TYPES_K = ["Q4_K", "Q5_K", "Q6_K"]
TYPES = TYPES_32 + TYPES_K
BLOCK_BYTES = {"Q4_0": 18, "Q4_1": 20, "Q5_0": 22, "Q5_1": 24, "Q8_0": 34, "Q4_K": 144, "Q5_K": 176, "Q6_K": 210}

# Row lengths: 32-block types: 576, 640, 32 = 18, 20, 1 blocks (n / 32 not a multiple of 8: a padded
# last group), 256, 1536 = 8, 48 blocks; K-quants need n % 256 == 0 (256: one block; 2048: one full
# group of 8 blocks).
N_32 = [576, 640, 32, 256, 1536]
N_K = [256, 512, 2048, 2560]  # 2560: 10 blocks (a partial group of 8)
T_LIST = list(range(1, 18)) + [64, 100]
ROWS = 4

# Tolerance table: max |y - x @ W.T| / max |x @ W.T| (y from the scalar path; the reference in
# float64 from gguf's dequantizer; x plain standard-normal rows). The error is the activation
# quantization (8 bits per 32 or 256 values: ~0.5% rms per dot). Measured on these fixed-seed
# fixtures (worst over the row lengths and fixtures): Q4_0 0.9%, Q4_1 0.9%, Q5_0 0.7%, Q5_1 1.0%,
# Q8_0 1.1%, Q4_K 1.0%, Q5_K 1.2%, Q6_K 1.0%; real Gemma 3 rows: Q4_K 0.7%, Q6_K 0.7%.
# Bounds: 2.5e-2 (about 2x margin over the worst).
ACC_TOL = {name: 2.5e-2 for name in ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"]}
# y vs (dequantized activation codes) @ W.T in float64: only float32 rounding of the per-block
# products and of the 8-accumulator sum remains (measured < 1e-6).
EXACT_TOL = 1e-5


def qtype(name):
    return getattr(gguf.GGMLQuantizationType, name)


def fmt_of(name):
    return "q8k" if name in TYPES_K else "q8"


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def assert_bits_equal(a, b, msg=""):
    a, b = bits(a), bits(b)
    if not np.array_equal(a, b):
        idx = np.argwhere(a != b)[:5]
        raise AssertionError(f"{msg}: {np.count_nonzero(a != b)} values differ, first at {idx.tolist()}")


# ---- fixtures -----------------------------------------------------------------------------------

def f16_bytes(v):
    return np.asarray(v, dtype=np.float16).view(np.uint8)


def weights_32(name, rows, n, seed, raw=False):
    """Stored rows of a 32-block type: gguf-quantized normal weights, or (raw) random bytes with
    sane f16 scales (codes over their full range, Q8_0 including -128)."""
    rng = np.random.default_rng(seed)
    if not raw:
        w = rng.standard_normal((rows, n)).astype(np.float32) * 0.05
        return np.ascontiguousarray(gguf.quants.quantize(w, qtype(name)))
    nb, bb = n // 32, BLOCK_BYTES[name]
    b = rng.integers(0, 256, (rows, nb, bb), dtype=np.uint8)
    b[:, :, 0:2] = f16_bytes(rng.uniform(0.001, 0.01, (rows, nb, 1)))
    if name in ("Q4_1", "Q5_1"):
        b[:, :, 2:4] = f16_bytes(rng.uniform(-0.05, 0.05, (rows, nb, 1)))
    return np.ascontiguousarray(b.reshape(rows, nb * bb))


def weights_k(name, rows, n, seed, fill=None):
    """Stored rows of a K-quant: random bytes for codes and scales, f16 d (and dmin) drawn from
    uniform(0.001, 0.01) at their byte offsets. fill=byte: every byte but the f16 scales is that
    value (extreme codes / scales)."""
    rng = np.random.default_rng(seed)
    nb, bb = n // 256, BLOCK_BYTES[name]
    if fill is None:
        b = rng.integers(0, 256, (rows, nb, bb), dtype=np.uint8)
    else:
        b = np.full((rows, nb, bb), fill, dtype=np.uint8)
    if name == "Q6_K":
        b[:, :, 208:210] = f16_bytes(rng.uniform(0.001, 0.01, (rows, nb, 1)))
    else:
        b[:, :, 0:4] = f16_bytes(rng.uniform(0.001, 0.01, (rows, nb, 2)))
    return np.ascontiguousarray(b.reshape(rows, nb * bb))


def weights(name, rows, n, seed):
    return weights_k(name, rows, n, seed) if name in TYPES_K else weights_32(name, rows, n, seed, raw=seed % 2 == 1)


def activations(T, n, seed, outliers=True):
    """Normal rows; unless outliers=False also a few outliers (as real activations have), one
    all-zero row and one constant row (the accuracy tests use plain normal rows: outliers coarsen
    the quantization step, and the special rows would dominate max |ref|)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, n)).astype(np.float32)
    if not outliers:
        return x
    x[rng.random((T, n)) < 0.01] *= 20.0
    if T >= 3:
        x[1] = 0.0
        x[2] = 0.75
    return x


def dequant(name, w):
    rows = w.shape[0]
    return gguf.quants.dequantize(w, qtype(name)).astype(np.float64).reshape(rows, -1)


# ---- numpy model of the activation quantization -------------------------------------------------

def model_quant(x, fmt):
    """(codes, scales, sums) as qdot.h specifies: per block d = amax / 127, q = rint(x * (127 / amax))
    (float32 arithmetic, rint half-to-even like nearbyint); Q8 rows padded to 8-block groups with
    zeros; sums per 32-block (Q8) or per 16 (Q8K)."""
    x = np.asarray(x, dtype=np.float32)
    T, n = x.shape
    blk = 32 if fmt == "q8" else 256
    nb = n // blk
    xb = x.reshape(T, nb, blk)
    amax = np.abs(xb).max(axis=2)
    with np.errstate(divide="ignore"):
        inv = np.where(amax > 0, np.float32(127.0) / amax, np.float32(0.0)).astype(np.float32)
    q = np.rint(xb * inv[:, :, None]).astype(np.int8)
    d = (amax / np.float32(127.0)).astype(np.float32)
    if fmt == "q8":
        groups = (nb + 7) // 8
        qp = np.zeros((T, groups * 256), np.int8)
        qp[:, :n] = q.reshape(T, n)
        dp = np.zeros((T, groups * 8), np.float32)
        dp[:, :nb] = d
        sp = np.zeros((T, groups * 8), np.int32)
        sp[:, :nb] = q.astype(np.int32).sum(axis=2)
        return qp, dp, sp
    s = q.reshape(T, n // 16, 16).astype(np.int32).sum(axis=2)
    return q.reshape(T, n), d, s


def model_act_f64(x, fmt):
    """The activations as the kernels see them: d[b] * q[i], in float64."""
    q, d, _ = model_quant(x, fmt)
    T, n = x.shape
    blk = 32 if fmt == "q8" else 256
    return q[:, :n].astype(np.float64) * np.repeat(d[:, : n // blk].astype(np.float64), blk, axis=1)


def rel_err(y, ref):
    scale = np.abs(ref).max()
    return float(np.abs(np.asarray(y, np.float64) - ref).max() / (scale if scale > 0 else 1.0))


# ---- every path bit-equal to scalar, for every T ------------------------------------------------

@pytest.mark.parametrize("path", PATHS[1:] or ["scalar"])
@pytest.mark.parametrize("name", TYPES)
def test_paths_bit_equal_scalar(name, path):
    ns = N_K if name in TYPES_K else N_32
    for ni, n in enumerate(ns):
        w = weights(name, ROWS, n, seed=100 + ni)
        x = activations(max(T_LIST), n, seed=200 + ni)
        for T in T_LIST:
            xt = x[:T]
            y0 = _core._qdot(name, w, xt, "scalar")
            assert y0.shape == (T, ROWS)
            assert np.isfinite(y0).all()
            y = _core._qdot(name, w, xt, path)
            assert_bits_equal(y, y0, f"{name} {path} n={n} T={T}")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", TYPES)
def test_batch_invariance(name, path):
    """Row t of a T-row call equals the single-row call (T = 17: one chunk; 100: two chunks of the hook)."""
    n = 512 if name in TYPES_K else 640
    w = weights(name, ROWS, n, seed=7)
    x = activations(100, n, seed=8)
    for T in (17, 100):
        y = _core._qdot(name, w, x[:T], path)
        for t in range(T):
            assert_bits_equal(y[t], _core._qdot(name, w, x[t : t + 1], path)[0], f"{name} {path} T={T} row {t}")


# ---- accuracy -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", TYPES)
def test_accuracy_vs_gguf_dequant(name):
    ns = N_K if name in TYPES_K else N_32
    for ni, n in enumerate(ns):
        for seed in (0, 1):  # 32-block types: seed 1 is the random-bytes fixture
            w = weights(name, 8, n, seed=300 + 2 * ni + seed) if name in TYPES_K else weights_32(
                name, 8, n, seed=300 + ni, raw=seed == 1)
            W = dequant(name, w)
            x = activations(6, n, seed=400 + ni, outliers=False)
            y = _core._qdot(name, w, x, "scalar")
            ref = x.astype(np.float64) @ W.T
            e = rel_err(y, ref)
            assert e < ACC_TOL[name], f"{name} n={n} seed={seed}: relative error {e:.3g} >= {ACC_TOL[name]}"
            # the integer math exactly: same activation codes, float64 everywhere else
            ex = rel_err(y, model_act_f64(x, fmt_of(name)) @ W.T)
            assert ex < EXACT_TOL, f"{name} n={n} seed={seed}: {ex:.3g} vs the exact model"


@pytest.mark.parametrize("name", TYPES_K)
def test_k_extreme_codes(name):
    """All-max codes / extreme scales with full-scale activations: the int16 / int32 ranges of the
    SIMD paths (maddubs pair sums, packs of dpbusd sums) and the exact model agree."""
    n = 2048
    # Q6_K: 0xff = code 63 with scale -1; 0x80 = codes 0 / 32 mixed with scale -128; 0x00 = code 0 (-32), scale 0
    fills = [0xFF, 0x80, 0x00, 0x7F, 0x3F]
    x = np.stack([np.full(n, 1.0, np.float32), np.tile(np.float32([1, -1]), n // 2),
                  np.full(n, -3.0, np.float32), activations(1, n, seed=5)[0]])
    for f in fills:
        w = weights_k(name, 2, n, seed=f, fill=f)
        W = dequant(name, w)
        y0 = _core._qdot(name, w, x, "scalar")
        ex = rel_err(y0, model_act_f64(x, "q8k") @ W.T)
        assert ex < EXACT_TOL, f"{name} fill={f:#x}: {ex:.3g} vs the exact model"
        for path in PATHS[1:]:
            assert_bits_equal(_core._qdot(name, w, x, path), y0, f"{name} fill={f:#x} {path}")


# ---- the 16-row panel layout of the 32-element types (qpack.h) ----------------------------------

@pytest.mark.parametrize("name", TYPES)
def test_qpack_roundtrip(name):
    """Rows dequantized from the panels equal gguf's dequantizer (37 rows: two full panels and a
    partial one); the 32-element types also unpack back to their stored bytes."""
    fixtures = [weights_k(name, 37, 512, seed=11)] if name in TYPES_K else [
        weights_32(name, 37, 640, seed=11, raw=raw) for raw in (False, True)]
    for i, w in enumerate(fixtures):
        back, deq = _core._qpack_roundtrip(name, w)
        if name in TYPES_32:
            assert np.array_equal(back, w), f"{name} fixture {i}: unpacked rows differ from the stored rows"
        else:
            assert back is None
        assert_bits_equal(deq, dequant(name, w).astype(np.float32), f"{name} fixture {i} dequant from panels")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", TYPES)
def test_panel_position_invariance(name, path):
    """A weight row's result does not depend on its panel neighbours or its place in the panel:
    37 rows at once equal each row alone (a panel of one row and 15 zero rows)."""
    n = 512 if name in TYPES_K else 576
    w = weights_k(name, 37, n, seed=12) if name in TYPES_K else weights_32(name, 37, n, seed=12, raw=True)
    x = activations(5, n, seed=13)
    y = _core._qdot(name, w, x, path)
    for r in (0, 7, 15, 16, 31, 36):
        assert_bits_equal(y[:, r], _core._qdot(name, w[r : r + 1], x, path)[:, 0], f"{name} {path} row {r}")


# ---- activation quantizers ------------------------------------------------------------------------

def quant_inputs(n, seed):
    x = activations(6, n, seed)
    # exact ties: amax 127 -> id = 1, so x * id = k + 0.5 rounds half to even
    x[3, :] = np.resize(np.float32([127.0, 2.5, 3.5, -2.5, -3.5, 0.5, -0.5, 1.5]), n)
    x[4, :] = np.float32(1e-30) * np.resize(np.float32([1, -3, 7, 2]), n)  # tiny values (127 / amax still finite)
    x[5, :] = -1e30  # huge, all the same sign
    return x


@pytest.mark.parametrize("fmt", ["q8", "q8k"])
def test_quantize_act(fmt):
    ns = N_32 if fmt == "q8" else N_K
    for ni, n in enumerate(ns):
        x = quant_inputs(n, seed=500 + ni)
        mq, md, ms = model_quant(x, fmt)
        q0, d0, s0 = _core._quantize_act(fmt, x, "scalar")
        assert q0.dtype == np.int8 and d0.dtype == np.float32 and s0.dtype == np.int32
        assert q0.shape == mq.shape and d0.shape == md.shape and s0.shape == ms.shape, (fmt, n)
        np.testing.assert_array_equal(q0, mq, err_msg=f"{fmt} n={n} codes")
        assert_bits_equal(d0, md, f"{fmt} n={n} scales")
        np.testing.assert_array_equal(s0, ms, err_msg=f"{fmt} n={n} sums")
        if fmt == "q8":
            groups = (n // 32 + 7) // 8
            assert q0.shape[1] == groups * 256 and d0.shape[1] == groups * 8 == s0.shape[1]
            assert not q0[:, n:].any() and not d0[:, n // 32 :].any() and not s0[:, n // 32 :].any()
        else:
            assert q0.shape[1] == n and d0.shape[1] == n // 256 and s0.shape[1] == n // 16
        for path in PATHS[1:]:
            q, d, s = _core._quantize_act(fmt, x, path)
            np.testing.assert_array_equal(q, q0, err_msg=f"{fmt} n={n} {path} codes")
            assert_bits_equal(d, d0, f"{fmt} n={n} {path} scales")
            np.testing.assert_array_equal(s, s0, err_msg=f"{fmt} n={n} {path} sums")


def test_quantize_ties_half_even():
    x = np.zeros((1, 256), np.float32)
    x[0, :8] = [127.0, 2.5, 3.5, -2.5, -3.5, 0.5, -0.5, 1.5]
    for path in PATHS:
        for fmt in ("q8", "q8k"):
            q, d, _ = _core._quantize_act(fmt, x, path)
            assert q[0, :8].tolist() == [127, 2, 4, -2, -4, 0, 0, 2], (path, fmt)
            assert d[0, 0] == np.float32(1.0)


# ---- real Gemma 3 rows ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gemma3_rows(gemma3_path):
    import fastspec

    info = fastspec.inspect(gemma3_path)
    out = {}
    for name, spec in info.tensors.items():
        if spec.type in TYPES_K and spec.type not in out and len(spec.shape) == 2:
            rows, n = spec.shape
            raw = np.asarray(info.raw(name)).reshape(rows, -1)
            assert raw.shape[1] == n // 256 * BLOCK_BYTES[spec.type]
            pick = np.linspace(0, rows - 1, 6).astype(int)
            out[spec.type] = (name, np.ascontiguousarray(raw[pick]))
    return out


@pytest.mark.real_model
@pytest.mark.parametrize("name", TYPES_K)
def test_real_gemma3_rows(gemma3_rows, name):
    if name not in gemma3_rows:
        pytest.skip(f"no {name} tensor in the Gemma 3 file")
    tensor, w = gemma3_rows[name]
    n = w.shape[1] // BLOCK_BYTES[name] * 256
    W = dequant(name, w)
    x = activations(17, n, seed=9, outliers=False)
    y0 = _core._qdot(name, w, x, "scalar")
    e = rel_err(y0, x.astype(np.float64) @ W.T)
    assert e < ACC_TOL[name], f"{tensor}: relative error {e:.3g}"
    ex = rel_err(y0, model_act_f64(x, "q8k") @ W.T)
    assert ex < EXACT_TOL, f"{tensor}: {ex:.3g} vs the exact model"
    for path in PATHS[1:]:
        assert_bits_equal(_core._qdot(name, w, x, path), y0, f"{tensor} {path}")
        for t in (0, 5, 16):
            assert_bits_equal(_core._qdot(name, w, x[t : t + 1], path)[0], y0[t], f"{tensor} {path} row {t}")


@pytest.mark.parametrize("fmt", ["q8", "q8k"])
def test_quantize_tiny_block_is_zero_on_every_path(fmt):
    """A block whose largest |x| is below ~3.7e-37 (127/amax overflows) quantizes to all-zero codes
    on every path (regression: the SIMD paths wrote -128 everywhere, the scalar path was UB)."""
    x = np.zeros((1, 256), np.float32)
    x[0, :3] = [1e-38, -2e-38, 3e-39]
    for path in _core.cpu_paths():
        q, d, s = _core._quantize_act(fmt, x, path)
        assert not q.any() and not s.any(), path
