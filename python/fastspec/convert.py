"""`fastspec convert IN.gguf OUT.gguf --type f16|q8_0|q4_0`: re-store a GGUF model in another type.

    from fastspec.convert import convert
    convert("SmolLM2.Q4_1.gguf", "SmolLM2.Q4_0.gguf", "q4_0")   # a 4-bit draft for an F16 target

Every tensor is read dequantized to float32 by the core (`fastspec.inspect(IN).tensor(name)`) and
re-quantized with the `gguf` package's own quantizer (`gguf.quants.quantize`), one tensor at a
time: the tensor infos are written first, then each tensor's data, so at most one tensor is ever
held in float32. Which tensors change type:

- 2-D `*.weight` matrices (token_embd.weight included) -> the new type, when their row length is a
  multiple of the type's block size (32 for Q8_0/Q4_0); otherwise F32;
- everything else (norms, biases, rope_freqs, ...) -> F32.

Metadata is copied key by key, in order, with the exact GGUF value types (read with
`gguf.GGUFReader`), except `general.file_type` (set to llama.cpp's file-type id of the new type);
`general.alignment` is kept and honoured. A quantized output also gets
`general.quantization_version` when the source has none (as llama-quantize writes it). Q/K rows are
copied as stored (already in llama.cpp's rotary layout).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

# --type name -> (GGMLQuantizationType name, LlamaFileType name)
TYPES: Dict[str, Tuple[str, str]] = {
    "f16": ("F16", "MOSTLY_F16"),
    "q8_0": ("Q8_0", "MOSTLY_Q8_0"),
    "q4_0": ("Q4_0", "MOSTLY_Q4_0"),
}

FILE_TYPE_KEY = "general.file_type"
ALIGNMENT_KEY = "general.alignment"
QUANT_VERSION_KEY = "general.quantization_version"


def plan_type(name: str, shape: Tuple[int, ...], qtype_name: str) -> str:
    """The GGML type name a tensor is stored in after conversion to qtype_name."""
    import gguf

    block = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[qtype_name]][0]
    if name.endswith(".weight") and len(shape) == 2 and shape[1] % block == 0:
        return qtype_name
    return "F32"


def _nbytes(shape: Tuple[int, ...], type_name: str) -> int:
    import gguf

    block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[type_name]]
    n = int(np.prod(shape, dtype=np.int64))
    return n // block * size


def _copy_metadata(writer, path: str, metadata: dict, file_type: int, quantized: bool) -> None:
    """Every key of the source with its GGUF value type; file_type replaced, alignment honoured."""
    import gguf

    fields = gguf.GGUFReader(path).fields
    VT = gguf.GGUFValueType
    seen_file_type = False
    for key, value in metadata.items():
        if key == gguf.Keys.General.ARCHITECTURE:
            continue  # the writer's first key, set by its constructor
        if key not in fields:
            raise ValueError(f"{path}: metadata key {key!r} not found by gguf.GGUFReader")
        types = fields[key].types
        if key == ALIGNMENT_KEY:
            writer.add_custom_alignment(int(value))  # sets the writer's data alignment too
            continue
        if key == FILE_TYPE_KEY:
            value, seen_file_type = file_type, True
        if types[0] == VT.ARRAY:
            if len(types) > 2:
                raise ValueError(f"{path}: metadata key {key!r}: nested arrays are not supported")
            if len(value) == 0:
                raise ValueError(f"{path}: metadata key {key!r}: empty arrays cannot be written by gguf")
            writer.add_key_value(key, list(value), VT.ARRAY, sub_type=types[1])
        else:
            writer.add_key_value(key, value, types[0])
    if not seen_file_type:
        writer.add_uint32(FILE_TYPE_KEY, file_type)
    if quantized and QUANT_VERSION_KEY not in metadata:
        writer.add_uint32(QUANT_VERSION_KEY, gguf.GGML_QUANT_VERSION)


def _progress_line(i: int, n: int, name: str, src: str, dst: str, shape, secs: float) -> None:
    print(f"[{i:>{len(str(n))}}/{n}] {name:<40} {src:>5} -> {dst:<5} {str(list(shape)):<16} {secs:6.2f}s",
          file=sys.stderr, flush=True)


def convert(src: "str | os.PathLike[str]", dst: "str | os.PathLike[str]", type: str,
            progress: Optional[Callable[..., None]] = _progress_line) -> Dict[str, int]:
    """Convert GGUF src to dst with 2-D weights stored as `type` ("f16" | "q8_0" | "q4_0").

    Returns {GGML type name: tensor count} of the output. progress(i, n, name, src_type, dst_type,
    shape, seconds) is called after each tensor (None: silent). The output appears atomically
    (written next to dst, then renamed). Raises FileNotFoundError for a missing src, ValueError
    for a bad type, a non-GGUF src or dst == src, fastspec.FormatError for a malformed src.
    """
    import gguf
    from gguf.quants import quantize

    from .inspect import inspect

    src, dst = os.fspath(src), os.fspath(dst)
    if type not in TYPES:
        raise ValueError(f"unknown type {type!r} (choose from {', '.join(TYPES)})")
    if not os.path.exists(src):
        raise FileNotFoundError(f"{src}: no such file")
    if os.path.exists(dst) and os.path.samefile(src, dst):
        raise ValueError(f"{dst}: output is the input file")
    qname, ftname = TYPES[type]
    info = inspect(src)
    if info.format != "gguf":
        raise ValueError(f"{src}: not a GGUF file (format {info.format}); convert reads GGUF only")
    meta = info.metadata
    arch = meta.get(gguf.Keys.General.ARCHITECTURE)
    if not isinstance(arch, str):
        raise ValueError(f"{src}: no {gguf.Keys.General.ARCHITECTURE} key")

    plan: List[Tuple[str, Tuple[int, ...], str, str]] = []  # name, shape, source type, output type
    for name, spec in info.tensors.items():
        plan.append((name, spec.shape, spec.type, plan_type(name, spec.shape, qname)))

    out_dir = os.path.dirname(os.path.abspath(dst))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(dst) + ".", suffix=".part", dir=out_dir)
    os.close(fd)
    counts: Dict[str, int] = {}
    try:
        w = gguf.GGUFWriter(tmp, arch)
        _copy_metadata(w, src, meta, int(gguf.LlamaFileType[ftname]), quantized=qname != "F16")
        for name, shape, _, out_t in plan:
            qt = gguf.GGMLQuantizationType[out_t]
            dtype = np.float16 if out_t == "F16" else np.float32  # element shape either way
            w.add_tensor_info(name, shape, dtype, _nbytes(shape, out_t),
                              raw_dtype=None if out_t in ("F32", "F16") else qt)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        for i, (name, shape, src_t, out_t) in enumerate(plan, 1):
            t0 = time.perf_counter()
            arr = np.ascontiguousarray(info.tensor(name), dtype=np.float32)
            data = arr if out_t == "F32" else quantize(arr, gguf.GGMLQuantizationType[out_t])
            w.write_tensor_data(data)
            del arr, data
            counts[out_t] = counts.get(out_t, 0) + 1
            if progress is not None:
                progress(i, len(plan), name, src_t, out_t, shape, time.perf_counter() - t0)
        w.close()
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return counts
