"""The matmul's vectorized row dequantizers (dequant_fast.cpp) are bit-exact with the reference
dequantizer (dequant.cpp) and with gguf's numpy dequantizer, an independent implementation.

Only the types that have a fast path are compared fast-vs-reference: for the others
_dequantize_row(fast=True) falls back to the reference itself and the comparison could not fail.
The set comes from the dispatch (_core._dequant_fast_types()), so a type that loses its fast path
drops out of it, and the test insists the set is not empty where the CPU has AVX2."""
import numpy as np
import pytest

from fastspec import _core

gguf = pytest.importorskip("gguf")
from gguf.quants import dequantize  # noqa: E402

# (elements, bytes) per block
BLOCK = {"F16": (1, 2), "BF16": (1, 2), "Q8_0": (32, 34), "Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22),
         "Q5_1": (32, 24), "Q4_K": (256, 144), "Q6_K": (256, 210)}
HAS_AVX2 = "avx2" in _core.cpu_paths()
FAST = _core._dequant_fast_types()


def _random_row(qtype, n, rng):
    """Stored bytes of an n-element row: random quants with sane f16 scales, finite F16/BF16."""
    if qtype == "F16":  # finite values (a signalling NaN would come back quieted)
        return rng.standard_normal(n).astype(np.float16).view(np.uint8)
    if qtype == "BF16":
        return (rng.standard_normal(n).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
    bs, bb = BLOCK[qtype]
    blocks = rng.integers(0, 256, size=(n // bs, bb), dtype=np.uint8)
    scales = rng.uniform(-0.1, 0.1, size=(n // bs, 2)).astype(np.float16).view(np.uint8)
    if bs == 32:  # d (and m) lead each block
        blocks[:, 0:2] = scales[:, 0:2]
        if qtype in ("Q4_1", "Q5_1"):
            blocks[:, 2:4] = scales[:, 2:4]
    elif qtype == "Q4_K":  # d, dmin lead
        blocks[:, 0:4] = scales
    else:  # Q6_K: d trails
        blocks[:, -2:] = scales[:, 0:2]
    return blocks.reshape(-1)


def test_fast_set_is_the_dispatch():
    """AVX2 CPUs have fast paths (the list is not vacuously empty); the scalar path has none."""
    if not HAS_AVX2:
        pytest.skip("no AVX2 on this CPU: the matmul has no vectorized dequantizer to check")
    assert _core.cpu_path() != "scalar"
    assert {"Q8_0", "Q4_0", "Q4_1", "BF16"} <= set(FAST), FAST
    active = _core.cpu_path()
    try:
        _core._set_cpu_path("scalar")
        assert _core._dequant_fast_types() == []
    finally:
        _core._set_cpu_path(active)


@pytest.mark.parametrize("qtype", FAST)
def test_fast_row_equals_reference_and_gguf(qtype):
    assert qtype in BLOCK, f"{qtype} has a fast path but no block layout in this test"
    n = 37 * 256  # 37 K-blocks, 296 32-blocks
    raw = _random_row(qtype, n, np.random.default_rng(0))
    ref = _core._dequantize_row(qtype, raw.tobytes(), n, False)
    fast = _core._dequantize_row(qtype, raw.tobytes(), n, True)
    want = dequantize(raw, gguf.GGMLQuantizationType[qtype]).reshape(-1).astype(np.float32)
    assert np.array_equal(fast.view(np.uint32), ref.view(np.uint32))
    assert np.array_equal(fast.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("qtype", sorted(BLOCK))
def test_reference_row_equals_gguf(qtype):
    """The reference dequantizer, for every type (fast path or not), against gguf's numpy one."""
    n = 5 * 256
    raw = _random_row(qtype, n, np.random.default_rng(1))
    ref = _core._dequantize_row(qtype, raw.tobytes(), n, False)
    want = dequantize(raw, gguf.GGMLQuantizationType[qtype]).reshape(-1).astype(np.float32)
    np.testing.assert_array_equal(ref, want)
