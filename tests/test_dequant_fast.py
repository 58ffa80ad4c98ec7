"""The matmul's vectorized row dequantizers are bit-exact with the reference dequantizer."""
import numpy as np
import pytest

from fastspec import _core

BLOCK = {"F16": (32, 64), "BF16": (32, 64), "Q8_0": (32, 34), "Q4_0": (32, 18), "Q4_1": (32, 20), "Q5_0": (32, 22), "Q4_K": (256, 144),
         "Q6_K": (256, 210)}


@pytest.mark.parametrize("qtype", sorted(BLOCK))
def test_fast_row_equals_reference(qtype):
    bs, bb = BLOCK[qtype]
    rng = np.random.default_rng(0)
    n_blocks = 37
    raw = rng.integers(0, 256, size=n_blocks * bb, dtype=np.uint8)
    # sane f16 scales at the start of each block (K-quants keep theirs elsewhere; random is fine)
    blocks = raw.reshape(n_blocks, bb)
    if qtype == "F16":  # finite values (a signalling NaN would come back quieted)
        raw = rng.standard_normal(n_blocks * 32).astype(np.float16).view(np.uint8)
    elif qtype == "BF16":
        raw = (rng.standard_normal(n_blocks * 32).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
    elif bs == 32:
        blocks[:, 0:2] = np.frombuffer(rng.uniform(-0.1, 0.1, n_blocks).astype(np.float16).tobytes(),
                                       np.uint8).reshape(n_blocks, 2)
    ref = _core._dequantize_row(qtype, raw.tobytes(), n_blocks * bs, False)
    fast = _core._dequantize_row(qtype, raw.tobytes(), n_blocks * bs, True)
    assert np.array_equal(ref.view(np.uint32), fast.view(np.uint32))
