"""AutoAWQ "GEMM" int4 layout, numpy only: packing, unpacking, round-to-nearest quantization.

For a linear layer W [out, in] (N = out, K = in) with groups of `group` inputs:
    qweight int32 [K, N/8]        qzeros int32 [K/group, N/8]        scales f16 [K/group, N]
    W^T[k, n] = (q[k, n] - z[k // group, n]) * s[k // group, n]
Eight 4-bit values share one int32; value n = 8*c + AWQ_ORDER[i] sits in nibble i (bits 4i..4i+3) of
column c, AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7] (AutoAWQ's WQLinear_GEMM.from_linear; its
unpack_awq + reverse_awq_order undo it). The quantization grid is AutoAWQ's
pseudo_quantize_tensor with zero_point: per (group, output) s = (max - min) / 15,
z = clamp(-round(min / s), 0, 15), q = clamp(round(w / s) + z, 0, 15) -- with s rounded to f16
before q and z are computed, so that the stored scales give back exactly the grid used.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)
AWQ_REVERSE_ORDER = (0, 4, 1, 5, 2, 6, 3, 7)
BITS = 4
MAX_Q = 15
SCALE_MIN = 1e-5  # AutoAWQ clamps (max - min) at 1e-5 before dividing by 15


def pack(values: np.ndarray) -> np.ndarray:
    """[rows, n] integers 0..15 (n a multiple of 8) -> int32 [rows, n/8] in AWQ nibble order."""
    v = np.asarray(values)
    rows, n = v.shape
    if n % 8:
        raise ValueError(f"pack: {n} columns is not a multiple of 8")
    if v.size and (v.min() < 0 or v.max() > MAX_Q):
        raise ValueError(f"pack: values must be 0..15, got {v.min()}..{v.max()}")
    blocks = v.astype(np.uint32).reshape(rows, n // 8, 8)[:, :, list(AWQ_ORDER)]  # nibble i <- AWQ_ORDER[i]
    shifts = np.arange(0, 32, 4, dtype=np.uint32)
    return np.bitwise_or.reduce(blocks << shifts, axis=2).astype(np.uint32).view(np.int32)


def unpack(packed: np.ndarray) -> np.ndarray:
    """int32 [rows, n/8] -> uint8 [rows, n] (inverse of pack)."""
    p = np.ascontiguousarray(packed).view(np.uint32)
    nib = (p[:, :, None] >> np.arange(0, 32, 4, dtype=np.uint32)) & np.uint32(15)  # [rows, n/8, 8]
    return nib[:, :, list(AWQ_REVERSE_ORDER)].reshape(p.shape[0], -1).astype(np.uint8)


def check_shape(name: str, out_f: int, in_f: int, group: int) -> None:
    """ValueError naming the tensor when [out, in] cannot be stored with this group size."""
    if in_f % group:
        divisors = [g for g in (128, 64, 32) if in_f % g == 0]
        hint = f"; group sizes that divide it: {', '.join(map(str, divisors))}" if divisors else ""
        raise ValueError(f"tensor {name!r} [{out_f}, {in_f}]: in_features {in_f} is not a multiple of "
                         f"group_size {group}{hint}")
    if out_f % 8:
        raise ValueError(f"tensor {name!r} [{out_f}, {in_f}]: out_features {out_f} is not a multiple of 8 "
                         "(AWQ GEMM packs 8 outputs per int32)")


def quantize_rtn(w: np.ndarray, group: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W [out, in] float -> (q uint8 [in, out], z uint8 [in/group, out], s f16 [in/group, out])."""
    out_f, in_f = w.shape
    check_shape("w", out_f, in_f, group)
    g = np.asarray(w, dtype=np.float32).reshape(out_f, in_f // group, group)  # [out, G, group]
    hi, lo = g.max(axis=2), g.min(axis=2)
    s = (np.maximum(hi - lo, SCALE_MIN) / MAX_Q).astype(np.float16)
    s32 = s.astype(np.float32)
    z = np.clip(-np.round(lo / s32), 0, MAX_Q)
    q = np.clip(np.round(g / s32[:, :, None]) + z[:, :, None], 0, MAX_Q)
    return (q.reshape(out_f, in_f).T.astype(np.uint8), z.T.astype(np.uint8), np.ascontiguousarray(s.T))


def dequantize(q: np.ndarray, z: np.ndarray, s: np.ndarray, group: int) -> np.ndarray:
    """(q [in, out], z [in/group, out], s [in/group, out]) -> W [out, in] float32."""
    zz = np.repeat(z.astype(np.float32), group, axis=0)
    ss = np.repeat(s.astype(np.float32), group, axis=0)
    return ((q.astype(np.float32) - zz) * ss).T


def pack_linear(w: np.ndarray, group: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W [out, in] -> (qweight int32 [in, out/8], qzeros int32 [in/group, out/8], scales f16 [in/group, out])."""
    q, z, s = quantize_rtn(w, group)
    return pack(q), pack(z), s


def unpack_linear(qweight: np.ndarray, qzeros: np.ndarray, scales: np.ndarray, group: int) -> np.ndarray:
    """The stored parts -> W [out, in] float32."""
    return dequantize(unpack(qweight), unpack(qzeros), scales, group)
