"""GGUF tensor types and metadata value types, read back through fastspec.inspect.

Tensors: every GGUF type fastspec dequantizes is written with gguf.GGUFWriter (1-D, 2-D, 3-D
shapes, seeded random data) and read back; `info.tensor(name)` must equal
`gguf.quants.dequantize` of the stored bytes bit for bit (compared as uint32, so NaN payloads
and signed zeros count too). gguf-py can only quantize the legacy types; K-quant fixtures are
random raw blocks whose f16 scales are finite and moderate.

Metadata: one key per GGUF value type (and arrays, arrays of strings, nested arrays) must read
back as the value written.
"""
import zlib

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V
from gguf.constants import GGML_QUANT_SIZES

import fastspec

ARCH = "fastspec-test"


def write_gguf(path, tensors=(), kv=()):
    """tensors: (name, array, raw_dtype or None); kv: (key, value, GGUFValueType, sub_type)."""
    w = gguf.GGUFWriter(str(path), ARCH)
    for key, value, vtype, sub_type in kv:
        w.add_key_value(key, value, vtype, sub_type=sub_type)
    for name, arr, raw_dtype in tensors:
        w.add_tensor(name, arr, raw_dtype=raw_dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---- tensors ----------------------------------------------------------------------------------

# Byte offsets of the f16 scales (d, dmin) inside a K-quant block; all other bytes are random.
K_QUANT_SCALE_OFFSETS = {Q.Q4_K: (0, 2), Q.Q5_K: (0, 2), Q.Q6_K: (208,)}
QUANTIZABLE = (Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1)
TYPES = (Q.F32,) + QUANTIZABLE + tuple(K_QUANT_SCALE_OFFSETS)


def shapes_for(qtype):
    """numpy-order shapes whose row length is a multiple of the block size."""
    bs = max(GGML_QUANT_SIZES[qtype][0], 32)
    return [(2 * bs,), (3, 3 * bs), (2, 3, bs), (1, 4, 2 * bs)]


def random_k_blocks(rng, qtype, shape):
    """Raw bytes [..., row_blocks * type_size] of random blocks with sane f16 scales."""
    bs, ts = GGML_QUANT_SIZES[qtype]
    n_blocks = int(np.prod(shape)) // bs
    blocks = rng.integers(0, 256, size=(n_blocks, ts), dtype=np.uint8)
    for off in K_QUANT_SCALE_OFFSETS[qtype]:
        scale = rng.uniform(-0.25, 0.25, size=n_blocks).astype(np.float16)
        blocks[:, off:off + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
    return blocks.reshape(*shape[:-1], shape[-1] // bs * ts)


def make_tensor(rng, qtype, shape):
    """(array to hand GGUFWriter, raw_dtype for it, stored bytes as uint8 [..., row_bytes])."""
    if qtype == Q.F32:
        arr = rng.standard_normal(shape).astype(np.float32)
        return arr, None, arr.view(np.uint8)
    if qtype in K_QUANT_SCALE_OFFSETS:
        raw = random_k_blocks(rng, qtype, shape)
        return raw, qtype, raw
    data = (rng.standard_normal(shape) * rng.uniform(0.01, 3.0)).astype(np.float32)
    q = gguf.quants.quantize(data, qtype)
    if qtype == Q.F16:  # gguf-py gives float16 for F16 and uint8 bytes for the rest
        return q, None, q.view(np.uint8)
    return q, qtype, q


def special_tensor(rng, qtype):
    """Every f16 / bf16 bit pattern (subnormals, +-0, inf, nan payloads); random f32 bits.
    Returns (array for GGUFWriter, raw_dtype, stored bytes, shape)."""
    if qtype == Q.F32:
        bits = rng.integers(0, 2**32, size=(64, 256), dtype=np.uint32)
        bits[0, :6] = [0x00000001, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00001, 0x7F800001]
        return bits.view(np.float32), None, bits.view(np.uint8), (64, 256)
    raw = np.arange(65536, dtype=np.uint16).reshape(256, 256).view(np.uint8)
    if qtype == Q.F16:
        return raw.view(np.float16), None, raw, (256, 256)
    return raw, Q.BF16, raw, (256, 256)


def reference(raw, qtype, shape):
    """gguf-py's dequantization of the stored bytes, float32 [shape]."""
    return np.asarray(gguf.quants.dequantize(raw, qtype), dtype=np.float32).reshape(shape)


@pytest.mark.parametrize("qtype", TYPES, ids=lambda t: t.name)
def test_tensor_type_dequantizes_bit_exact(tmp_path, qtype):
    rng = np.random.default_rng(zlib.crc32(qtype.name.encode()))
    cases = {}  # name -> (shape, stored bytes)
    writes = []
    for i, shape in enumerate(shapes_for(qtype)):
        arr, raw_dtype, raw = make_tensor(rng, qtype, shape)
        cases[f"t{i}.weight"] = (shape, raw)
        writes.append((f"t{i}.weight", arr, raw_dtype))
    if qtype in (Q.F32, Q.F16, Q.BF16):
        arr, raw_dtype, raw, shape = special_tensor(rng, qtype)
        cases["special"] = (shape, raw)
        writes.append(("special", arr, raw_dtype))
    path = tmp_path / f"{qtype.name}.gguf"
    write_gguf(path, tensors=writes)
    file_bytes = path.read_bytes()

    info = fastspec.inspect(str(path))
    assert set(info.tensors) == set(cases)
    for name, (shape, raw) in cases.items():
        t = info.tensors[name]
        assert t.type == qtype.name, name
        assert tuple(t.shape) == shape, name
        assert t.nbytes == raw.nbytes, name
        assert file_bytes[t.offset:t.offset + t.nbytes] == raw.tobytes(), name
        assert np.array_equal(np.asarray(info.raw(name)).ravel(), raw.ravel()), name

        got = info.tensor(name)
        want = reference(raw, qtype, shape)
        assert isinstance(got, np.ndarray) and got.dtype == np.float32, name
        assert got.shape == shape, name
        mismatch = got.view(np.uint32) != want.view(np.uint32)
        assert not mismatch.any(), (
            f"{name} {qtype.name}: {int(mismatch.sum())} of {got.size} values differ, first at "
            f"{np.argwhere(mismatch)[0].tolist()}: got {got[mismatch][0]!r} want {want[mismatch][0]!r}")


@pytest.mark.parametrize("qtype", (Q.Q2_K, Q.Q3_K), ids=lambda t: t.name)
def test_unsupported_type_is_format_error(tmp_path, qtype):
    bs, ts = GGML_QUANT_SIZES[qtype]
    raw = np.random.default_rng(7).integers(0, 256, size=(2, ts), dtype=np.uint8)
    path = tmp_path / "unsupported.gguf"
    write_gguf(path, tensors=[("w", raw, qtype)])
    info = fastspec.inspect(str(path))
    assert info.tensors["w"].type == qtype.name
    assert tuple(info.tensors["w"].shape) == (2, bs)
    with pytest.raises(fastspec.FormatError, match=qtype.name):
        info.tensor("w")


# ---- metadata ---------------------------------------------------------------------------------

METADATA = [  # key, value, value type, array element type
    ("t.uint8", 250, V.UINT8, None),
    ("t.int8", -100, V.INT8, None),
    ("t.uint16", 65000, V.UINT16, None),
    ("t.int16", -32000, V.INT16, None),
    ("t.uint32", 4_000_000_000, V.UINT32, None),
    ("t.int32", -2_000_000_000, V.INT32, None),
    ("t.float32", 0.1, V.FLOAT32, None),
    ("t.float32_neg", -3.5e-20, V.FLOAT32, None),
    ("t.bool_true", True, V.BOOL, None),
    ("t.bool_false", False, V.BOOL, None),
    ("t.string", "héllo wörld ✓ \"quoted\"\n", V.STRING, None),
    ("t.uint64", 2**63 + 12345, V.UINT64, None),
    ("t.int64", -(2**62) - 7, V.INT64, None),
    ("t.float64", 0.1, V.FLOAT64, None),
    ("t.array_int32", [1, -2, 3, 2**31 - 1], V.ARRAY, V.INT32),
    ("t.array_uint8", [0, 7, 255], V.ARRAY, V.UINT8),
    ("t.array_uint64", [0, 2**64 - 1], V.ARRAY, V.UINT64),
    ("t.array_float32", [0.5, 0.1, -2.0], V.ARRAY, V.FLOAT32),
    ("t.array_float64", [0.1, 1e300], V.ARRAY, V.FLOAT64),
    ("t.array_bool", [True, False, True], V.ARRAY, V.BOOL),
    ("t.array_string", ["a", "", "hello world", "ü"], V.ARRAY, V.STRING),
    ("t.array_nested", [[1, 2], [3], [-4, 5, 6]], V.ARRAY, V.ARRAY),
    ("t.array_nested_string", [["a", "b"], ["c"]], V.ARRAY, V.ARRAY),
]
FLOAT32_KEYS = {"t.float32", "t.float32_neg", "t.array_float32"}


def plain(value):
    """A metadata value as plain Python (lists for arrays, whatever container the binding uses)."""
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, (bytes, bytearray)):
        return list(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def same(got, want, as_float32):
    """Equal, with matching bool-ness; float32 values compare after rounding to float32."""
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(
            same(g, w, as_float32) for g, w in zip(got, want))
    if isinstance(want, bool) or isinstance(got, bool):
        return isinstance(got, bool) and isinstance(want, bool) and got == want
    if isinstance(want, float):
        return isinstance(got, (int, float)) and (
            np.float32(got) == np.float32(want) if as_float32 else float(got) == want)
    return type(got) is type(want) and got == want


@pytest.fixture(scope="module")
def metadata_info(tmp_path_factory):
    path = tmp_path_factory.mktemp("meta") / "meta.gguf"
    write_gguf(path, tensors=[("w", np.zeros(32, dtype=np.float32), None)], kv=METADATA)
    return fastspec.inspect(str(path))


@pytest.mark.parametrize("key,value,vtype,sub_type", METADATA, ids=[m[0] for m in METADATA])
def test_metadata_value_round_trips(metadata_info, key, value, vtype, sub_type):
    assert key in metadata_info.metadata
    got = plain(metadata_info.metadata[key])
    assert same(got, value, key in FLOAT32_KEYS), f"{key}: got {got!r}, wrote {value!r}"


def test_metadata_architecture_written_by_writer(metadata_info):
    assert metadata_info.metadata["general.architecture"] == ARCH
