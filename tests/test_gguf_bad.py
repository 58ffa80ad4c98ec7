"""Malformed GGUF files: each raises fastspec.FormatError naming the file and the problem."""
import struct

import pytest

import fastspec
from gguf_bytes import (ARRAY, BOOL, STRING, U32, U64, build, f32_tensor_file, gguf_string, kv,
                        tensor_info)

ARCH = kv(b"general.architecture", STRING, gguf_string(b"llama"))
F32_8 = struct.pack("<8f", *range(8))


def _write(tmp_path, blob, name="bad.gguf"):
    p = tmp_path / name
    p.write_bytes(blob)
    return p


def _bad_files():
    big = 1 << 60
    yield "empty", b"", r"too short for the GGUF magic"
    yield "wrong_magic", b"GGUX" + f32_tensor_file()[4:], r"not a GGUF file \(bad magic\)"
    yield "version_1", build([ARCH], version=1), r"unsupported GGUF version 1"
    yield "version_4", build([ARCH], version=4), r"unsupported GGUF version 4"
    yield "big_endian", build([ARCH], version=0x03000000), r"big-endian"
    yield "truncated_header", f32_tensor_file()[:40], r"metadata key: string length 20 runs past the end of the file"
    yield "truncated_data", f32_tensor_file()[:-4], r"tensor 'w' data .* runs past the end of the file"
    yield "tensor_past_eof", build([ARCH], [tensor_info(b"w", [8], 0, 64)], F32_8), \
        r"tensor 'w' data \[64, \+32\) runs past the end"
    yield "overlap", build([ARCH], [tensor_info(b"a", [8], 0, 0), tensor_info(b"b", [8], 0, 0)], F32_8), \
        r"tensors 'a' and 'b' overlap"
    yield "absurd_tensor_count", build([ARCH], n_tensors=big), r"tensor count 1152921504606846976 is impossible"
    yield "absurd_kv_count", build([ARCH], n_kv=big), r"metadata count 1152921504606846976 is impossible"
    yield "absurd_string", build([kv(b"general.name", STRING, gguf_string(b"x", length=big))]), \
        r"metadata '?general.name'?: string length 1152921504606846976 runs past the end"
    yield "absurd_key_string", build([gguf_string(b"k", length=big)]), \
        r"metadata key: string length 1152921504606846976 runs past the end"
    yield "absurd_array", build([kv(b"arr", ARRAY, struct.pack("<IQ", U32, big))]), \
        r"metadata 'arr': array of 1152921504606846976 elements cannot fit"
    yield "unknown_value_type", build([kv(b"k", 99, b"\0" * 8)]), r"metadata 'k': unknown value type 99"
    yield "unknown_array_type", build([kv(b"k", ARRAY, struct.pack("<IQ", 42, 1))]), \
        r"metadata 'k': unknown array element type 42"
    yield "bad_bool", build([kv(b"flag", BOOL, b"\x07")]), r"metadata 'flag': bool value 7 is not 0 or 1"
    yield "duplicate_key", build([ARCH, ARCH]), r"duplicate metadata key 'general.architecture'"
    yield "unknown_tensor_type", build([ARCH], [tensor_info(b"w", [8], 99, 0)], F32_8), \
        r"tensor 'w': unknown tensor type 99"
    yield "dims_overflow", build([ARCH], [tensor_info(b"w", [1 << 40, 1 << 40], 0, 0)], F32_8), \
        r"tensor 'w': dims overflow"
    yield "dim_too_large", build([ARCH], [tensor_info(b"w", [1 << 63], 0, 0)], F32_8), r"tensor 'w': dims overflow"
    yield "zero_dims", build([ARCH], [tensor_info(b"w", [], 0, 0)], F32_8), r"tensor 'w': 0 dims"
    yield "five_dims", build([ARCH], [tensor_info(b"w", [1, 1, 1, 1, 8], 0, 0)], F32_8), r"tensor 'w': 5 dims"
    yield "misaligned", build([ARCH], [tensor_info(b"w", [4], 0, 4)], F32_8), \
        r"tensor 'w': data offset 4 is not aligned to 32"
    yield "bad_block_row", build([ARCH], [tensor_info(b"w", [16], 2, 0)], b"\0" * 64), \
        r"tensor 'w': row length 16 is not a multiple of the Q4_0 block size 32"
    yield "duplicate_tensor", build([ARCH], [tensor_info(b"w", [4], 0, 0), tensor_info(b"w", [4], 0, 32)],
                                    F32_8 + F32_8), r"duplicate tensor name 'w'"
    yield "bad_alignment", build([kv(b"general.alignment", U32, struct.pack("<I", 3))]), \
        r"general.alignment must be a power-of-two"
    yield "alignment_wrong_type", build([kv(b"general.alignment", STRING, gguf_string(b"32"))]), \
        r"general.alignment must be a power-of-two"
    yield "arch_not_string", build([kv(b"general.architecture", U64, struct.pack("<Q", 1))]), \
        r"'general.architecture' must be a string"


CASES = list(_bad_files())


@pytest.mark.parametrize("blob,pattern", [(b, p) for _, b, p in CASES], ids=[c[0] for c in CASES])
def test_bad_gguf_raises_format_error(tmp_path, blob, pattern):
    path = _write(tmp_path, blob)
    with pytest.raises(fastspec.FormatError, match=pattern) as exc:
        fastspec.inspect(path)
    assert str(path) in str(exc.value), "the message must name the file"
    assert isinstance(exc.value, ValueError)


def test_valid_builder_file_loads(tmp_path):
    """The builder the bad cases start from makes a valid file (so each case tests one flaw)."""
    info = fastspec.inspect(_write(tmp_path, f32_tensor_file()))
    assert info.tensor("w").tolist() == list(range(8))


def test_nested_array_depth_limit(tmp_path):
    payload = b""
    for _ in range(40):  # 40 levels of array-of-array, innermost empty
        payload = struct.pack("<IQ", ARRAY, 1) + payload if payload else struct.pack("<IQ", U32, 0)
    with pytest.raises(fastspec.FormatError, match=r"metadata 'deep': arrays nested too deeply"):
        fastspec.inspect(_write(tmp_path, build([kv(b"deep", ARRAY, payload)])))


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.gguf"):
        fastspec.inspect(tmp_path / "nope.gguf")


def test_unknown_file_kind(tmp_path):
    p = _write(tmp_path, b"hello world", name="model.bin")
    with pytest.raises(fastspec.FormatError, match=r"model.bin: unrecognized model file"):
        fastspec.inspect(p)


def test_undequantizable_type_raises_on_read_not_on_open(tmp_path):
    # Q2_K is a known ggml type fastspec stores but does not dequantize.
    p = _write(tmp_path, build([ARCH], [tensor_info(b"w", [256], 10, 0)], b"\0" * 96))
    info = fastspec.inspect(p)
    assert info.tensors["w"].type == "Q2_K"
    with pytest.raises(fastspec.FormatError, match=r"tensor 'w': cannot dequantize type Q2_K"):
        info.tensor("w")


def test_every_truncation_raises(tmp_path):
    blob = f32_tensor_file()
    for cut in range(len(blob)):
        path = _write(tmp_path, blob[:cut], name=f"cut{cut}.gguf")
        with pytest.raises(fastspec.FormatError, match=r"cut\d+\.gguf: .*(truncated|impossible|runs past|too short)"):
            fastspec.inspect(path)
