"""Writing safetensors files with numpy only (no torch, no `safetensors` package), one tensor at a time.

    w = SafetensorsWriter(path, [("a", (2, 3), "F16"), ("b", (4,), "I32")], metadata={"format": "pt"})
    w.write("a", arr_a); w.write("b", arr_b); w.close()

The header (names, dtypes, shapes, offsets) is written first, so every tensor must be declared up
front and then written in the declared order; at most one tensor is held by the caller at a time.
Tensors are stored in declaration order, each right after the previous one (the format aligns
nothing; the header is padded with spaces to a multiple of 8 bytes). F32 data is converted to the
declared F16/BF16 here (BF16: round to nearest even, as torch does). The file appears atomically
(written next to `path`, renamed by close()).
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

DTYPES: Dict[str, np.dtype] = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
                               "I32": np.dtype("<i4"), "I64": np.dtype("<i8"), "U8": np.dtype("u1")}


def to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """float32 -> uint16 bfloat16 bit patterns, round to nearest even (NaN kept a quiet NaN)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    r = ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():
        r[nan] = 0x7FC0
    return r


def encode(arr: np.ndarray, dtype: str, name: str = "") -> np.ndarray:
    """arr converted to the stored representation of `dtype` (a contiguous little-endian array)."""
    if dtype == "BF16":
        if arr.dtype == np.uint16:
            return np.ascontiguousarray(arr)
        return to_bf16_bits(arr)
    if dtype == "F16" and arr.dtype != np.float16:
        a32 = np.asarray(arr, dtype=np.float32)
        big = np.abs(a32[np.isfinite(a32)]).max(initial=0.0)
        if big > 65504.0:
            raise ValueError(f"tensor {name!r}: value {big:g} overflows F16 (max 65504); store it as BF16 or F32")
        return np.ascontiguousarray(a32.astype(np.float16))
    return np.ascontiguousarray(arr, dtype=DTYPES[dtype])


class SafetensorsWriter:
    def __init__(self, path: "str | os.PathLike[str]", specs: Sequence[Tuple[str, Tuple[int, ...], str]],
                 metadata: Optional[Dict[str, str]] = None):
        self.path = os.fspath(path)
        header: dict = {"__metadata__": dict(metadata or {})} if metadata else {}
        self._order: List[Tuple[str, Tuple[int, ...], str]] = []
        off = 0
        for name, shape, dtype in specs:
            if dtype not in DTYPES:
                raise ValueError(f"tensor {name!r}: dtype {dtype!r} (supported: {', '.join(DTYPES)})")
            if name in header:
                raise ValueError(f"tensor {name!r} declared twice")
            n = int(np.prod(shape, dtype=np.int64)) * DTYPES[dtype].itemsize
            header[name] = {"dtype": dtype, "shape": [int(s) for s in shape], "data_offsets": [off, off + n]}
            self._order.append((name, tuple(int(s) for s in shape), dtype))
            off += n
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        d = os.path.dirname(os.path.abspath(self.path))
        fd, self._tmp = tempfile.mkstemp(prefix=os.path.basename(self.path) + ".", suffix=".part", dir=d)
        self._f = os.fdopen(fd, "wb")
        self._f.write(struct.pack("<Q", len(h)) + h)
        self._next = 0

    def write(self, name: str, arr: np.ndarray) -> None:
        if self._next >= len(self._order):
            raise ValueError(f"tensor {name!r}: all {len(self._order)} declared tensors are written")
        want, shape, dtype = self._order[self._next]
        if name != want:
            raise ValueError(f"tensor {name!r} written out of order (next is {want!r})")
        if tuple(arr.shape) != shape:
            raise ValueError(f"tensor {name!r}: shape {list(arr.shape)}, declared {list(shape)}")
        self._f.write(encode(arr, dtype, name).tobytes())
        self._next += 1

    def close(self) -> None:
        try:
            if self._next != len(self._order):
                raise ValueError(f"{self.path}: {len(self._order) - self._next} declared tensors not written "
                                 f"(next {self._order[self._next][0]!r})")
            self._f.close()
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self._tmp, 0o666 & ~umask)  # mkstemp made it 0600
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if not self._f.closed:
            self._f.close()
        if os.path.exists(self._tmp):
            os.unlink(self._tmp)

    def __enter__(self) -> "SafetensorsWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def save(path: "str | os.PathLike[str]", tensors: Dict[str, Tuple[np.ndarray, str]],
         metadata: Optional[Dict[str, str]] = None) -> None:
    """{name: (array, dtype)} -> one safetensors file, in the dict's order."""
    with SafetensorsWriter(path, [(n, a.shape, dt) for n, (a, dt) in tensors.items()], metadata) as w:
        for n, (a, dt) in tensors.items():
            w.write(n, a)
