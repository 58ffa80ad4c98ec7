"""Malformed safetensors checkpoints: each raises fastspec.FormatError naming the file and the
problem (never a crash or a giant allocation). Files are built byte by byte here."""
import json
import re
import struct

import numpy as np
import pytest

import fastspec

F32_8 = struct.pack("<8f", *range(8))  # 32 data bytes


def st_bytes(header, data=F32_8, length=None):
    """u64 header length | header (dict -> JSON, or raw bytes) | data."""
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def entry(dtype="F32", shape=(8,), offsets=(0, 32)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def _bad_files():
    """(id, file bytes, message regex after '<file>: ')."""
    yield "empty", b"", r"file is 0 bytes, too short for a safetensors header \(needs at least 8\)"
    yield "short", b"\x05\0\0", r"file is 3 bytes, too short"
    yield "absurd_header_len", st_bytes({}, length=1 << 60), \
        r"header length 1152921504606846976 is absurd \(limit 100000000 bytes\)"
    yield "header_past_eof", st_bytes({"w": entry()}, length=1000), \
        r"header length 1000 runs past the end of the file \(\d+ bytes\)"
    yield "header_not_object", st_bytes(b"[1, 2]"), r"header is not a JSON object"
    yield "entry_not_object", st_bytes({"w": [1]}), r"tensor 'w': header entry is not a JSON object"
    yield "metadata_not_object", st_bytes({"__metadata__": "x"}), r"__metadata__ is not a JSON object"
    yield "missing_dtype", st_bytes({"w": {"shape": [8], "data_offsets": [0, 32]}}), r"tensor 'w': missing dtype"
    yield "dtype_not_string", st_bytes({"w": entry(dtype=4)}), r"tensor 'w': dtype must be a string"
    yield "unknown_dtype", st_bytes({"w": entry(dtype="F8_E4M3")}), r"tensor 'w': unknown dtype 'F8_E4M3'"
    yield "long_unknown_dtype", st_bytes({"w": entry(dtype="é" * 1000)}), \
        r"tensor 'w': unknown dtype '" + "é" * 32 + r"\.\.\.'$"
    yield "missing_shape", st_bytes({"w": {"dtype": "F32", "data_offsets": [0, 32]}}), r"tensor 'w': missing shape"
    yield "shape_not_array", st_bytes({"w": {**entry(), "shape": 8}}), r"tensor 'w': shape must be an array"
    yield "negative_dim", st_bytes({"w": entry(shape=(-8,))}), r"tensor 'w': shape must be an array of non-negative"
    yield "float_dim", st_bytes({"w": entry(shape=(8.0,))}), r"tensor 'w': shape must be an array of non-negative"
    yield "dims_overflow", st_bytes({"w": entry(shape=(1 << 40, 1 << 40))}), \
        r"tensor 'w': shape \[1099511627776, 1099511627776\] has more elements than fit int64"
    yield "dim_past_int64", st_bytes({"w": entry(shape=(1 << 63,))}), \
        r"tensor 'w': shape dimension 9223372036854775808 overflows int64"
    yield "bytes_overflow", st_bytes({"w": entry(shape=(1 << 62,))}), \
        r"tensor 'w': shape \[4611686018427387904\] of F32 needs more bytes than fit int64"
    yield "missing_offsets", st_bytes({"w": {"dtype": "F32", "shape": [8]}}), r"tensor 'w': missing data_offsets"
    yield "offsets_one_value", st_bytes({"w": entry(offsets=(0,))}), \
        r"tensor 'w': data_offsets must be an array \[begin, end\] of two non-negative integers"
    yield "negative_offset", st_bytes({"w": entry(offsets=(-4, 28))}), r"tensor 'w': data_offsets must be"
    yield "offsets_past_end", st_bytes({"w": entry(offsets=(0, 64))}), \
        r"tensor 'w': data_offsets \[0, 64\] run past the end of the data \(32 bytes\)"
    yield "offsets_huge", st_bytes({"w": entry(offsets=(0, (1 << 64) - 1))}), \
        r"tensor 'w': data_offsets \[0, 18446744073709551615\] run past the end of the data"
    yield "end_before_begin", st_bytes({"w": entry(offsets=(32, 0))}), r"tensor 'w': data_offsets end 0 < begin 32"
    yield "nbytes_mismatch", st_bytes({"w": entry(shape=(2, 3))}), \
        r"tensor 'w': data_offsets \[0, 32\] hold 32 bytes but shape \[2, 3\] of F32 needs 24 bytes"
    yield "overlap", st_bytes({"a": entry(shape=(4,), offsets=(0, 16)), "b": entry(shape=(4,), offsets=(8, 24))}), \
        r"tensor 'b' \[8, 24\) overlaps tensor 'a' \[0, 16\)"
    yield "contained_overlap", st_bytes({"a": entry(shape=(8,), offsets=(0, 32)),
                                         "b": entry(shape=(1,), offsets=(28, 32))}), \
        r"tensor 'b' \[28, 32\) overlaps tensor 'a' \[0, 32\)"


def _bad_json():
    """Malformed JSON headers: (id, header bytes, reason regex). The file's what is '<file> header'."""
    yield "truncated", b'{"w": {"dtype": "F32"', r"at byte 21: unexpected end of input in object"
    yield "trailing_garbage", b'{} x', r"at byte 3: unexpected data after the JSON value"
    yield "trailing_comma", b'{"a": 1,}', r"at byte 8: expected a string key in object, got '}'"
    yield "single_quotes", b"{'a': 1}", r"at byte 1: expected a string key in object, got '''"
    yield "bad_escape", b'{"a\\x": 1}', r"at byte 4: invalid escape '\\x' in string"
    yield "bad_escape_binary", b'{"a\\\xc0": 1}', r"at byte 4: invalid escape: backslash followed by byte 0xc0 in string"
    yield "lone_high_surrogate", b'{"\\ud800": 1}', r"at byte 2: high surrogate not followed by a \\u low surrogate"
    yield "lone_low_surrogate", b'{"\\udc00": 1}', r"at byte 2: lone low surrogate in \\u escape"
    yield "bad_hex", b'{"\\u12G4": 1}', r"at byte 4: invalid hex digit 'G' in \\u escape"
    yield "control_char", b'{"a\nb": 1}', r"at byte 3: unescaped control character byte 0x0a"
    yield "invalid_utf8", b'{"a\xff": 1}', r"at byte 3: invalid UTF-8 lead byte 0xff in string"
    yield "overlong_utf8", b'{"\xc0\xaf": 1}', r"at byte 2: invalid UTF-8 lead byte 0xc0 in string"
    yield "utf8_surrogate", b'{"\xed\xa0\x80": 1}', r"at byte 2: invalid UTF-8 sequence \(overlong, surrogate"
    yield "leading_zero", b'{"a": 01}', r"at byte 6: leading zero in number"
    yield "bare_minus", b'{"a": -}', r"at byte 7: expected a digit in number"
    yield "bad_fraction", b'{"a": 1.}', r"at byte 8: expected a digit after the decimal point"
    yield "bad_exponent", b'{"a": 1e}', r"at byte 8: expected a digit in the exponent"
    yield "nan_literal", b'{"a": NaN}', r"at byte 6: unexpected 'N', expected a value"
    yield "bad_literal", b'{"a": tru}', r"at byte 6: invalid literal \(expected 'true'\)"
    yield "missing_colon", b'{"a" 1}', r"at byte 5: expected ':' after object key"
    yield "missing_comma", b'[1 2]', r"at byte 3: expected ',' or '\]' in array, got '2'"
    yield "duplicate_key", b'{"w": 1, "w": 2}', r"at byte 0: duplicate key \"w\" in object"
    yield "duplicate_long_key", b'[{"' + b"k" * 500 + b'": 1, "' + b"k" * 500 + b'": 2}]', \
        r"at byte 1: duplicate key \"" + "k" * 64 + r"\.\.\.\" in object"
    yield "too_deep", b"[" * 300 + b"]" * 300, r"at byte 256: nesting deeper than 256"
    yield "deep_unclosed", b"[" * 100000, r"at byte 256: nesting deeper than 256"
    yield "empty_header", b"", r"at byte 0: unexpected end of input, expected a value"
    yield "nul_byte", b'{"a": 1}\0', r"at byte 8: unexpected data after the JSON value"


def _check(path, message, named=None):
    """inspect(path) raises FormatError "<named or path>: <message>"."""
    with pytest.raises(fastspec.FormatError, match=re.escape(str(named or path)) + ": " + message):
        fastspec.inspect(path)


BAD = list(_bad_files())


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_file(tmp_path, case):
    _, blob, message = case
    p = tmp_path / "bad.safetensors"
    p.write_bytes(blob)
    _check(p, message)


BAD_JSON = list(_bad_json())


@pytest.mark.parametrize("case", BAD_JSON, ids=[c[0] for c in BAD_JSON])
def test_bad_json_header(tmp_path, case):
    _, header, reason = case
    p = tmp_path / "bad.safetensors"
    p.write_bytes(st_bytes(header))
    with pytest.raises(fastspec.FormatError, match=re.escape(str(p)) + " header: malformed JSON " + reason):
        fastspec.inspect(p)


def test_format_error_is_value_error():
    assert issubclass(fastspec.FormatError, ValueError)


# ---- sharded checkpoints and config.json ---------------------------------------------------------

def _sharded(tmp_path, weight_map, shards):
    for name, blob in shards.items():
        (tmp_path / name).write_bytes(blob)
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return index


def _bad_sharded():
    """(id, weight_map, shards, message regex after '<index>: ' (or the shard it names))."""
    one = {"s1.safetensors": st_bytes({"a": entry()})}
    yield "missing_shard", {"a": "s1.safetensors", "b": "s2.safetensors"}, one, \
        r"shard 's2.safetensors' \(holding tensor 'b'\) is missing: .*s2.safetensors"
    yield "tensor_not_in_shard", {"a": "s1.safetensors", "zzz": "s1.safetensors"}, one, \
        r"weight_map puts tensor 'zzz' in .*s1.safetensors, but that file does not hold it"
    yield "wrong_shard", {"a": "s2.safetensors"}, {**one, "s2.safetensors": st_bytes({"b": entry()})}, \
        r"weight_map puts tensor 'a' in .*s2.safetensors, but that file does not hold it"
    yield "value_not_string", {"a": 3}, one, r"weight_map entry for tensor 'a' is not a file name"
    yield "empty_weight_map", {}, one, r"\"weight_map\" names no tensors"
    yield "duplicate_across_shards", {"a": "s1.safetensors", "b": "s2.safetensors"}, \
        {**one, "s2.safetensors": st_bytes({"a": entry(), "b": entry(shape=(0,), offsets=(0, 0))})}, \
        r"tensor 'a' is also in .*s1.safetensors"


BAD_SHARDED = list(_bad_sharded())


@pytest.mark.parametrize("case", BAD_SHARDED, ids=[c[0] for c in BAD_SHARDED])
def test_bad_sharded(tmp_path, case):
    _, weight_map, shards, message = case
    index = _sharded(tmp_path, weight_map, shards)
    named = tmp_path / "s2.safetensors" if case[0] == "duplicate_across_shards" else index
    _check(index, message, named=named)
    _check(tmp_path, message, named=named)  # the directory finds the index


@pytest.mark.parametrize("text,message", [
    ('{"other": 1}', r"not a safetensors index \(no \"weight_map\" object\)"),
    ('{"weight_map": [1]}', r"\"weight_map\" is not a JSON object"),
    ('{"weight_map": {', r"malformed JSON at byte 16: unexpected end of input in object"),
])
def test_bad_index(tmp_path, text, message):
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(text)
    _check(index, message)


def _bad_configs():
    """(id, config.json text, message regex after '<config.json>: ')."""
    yield "malformed", '{"model_type": "llama",}', r"malformed JSON at byte 23: expected a string key"
    yield "not_object", "[]", r"config.json is not a JSON object"
    yield "hidden_size_string", '{"model_type": "llama", "hidden_size": "576"}', \
        r"field 'hidden_size' must be a non-negative integer, got a string \"576\""
    yield "negative_layers", '{"model_type": "qwen2", "num_hidden_layers": -1}', \
        r"field 'num_hidden_layers' must be a non-negative integer, got an integer -1"
    yield "fractional_heads", '{"model_type": "mistral", "num_attention_heads": 4.5}', \
        r"field 'num_attention_heads' must be a non-negative integer, got a float"
    yield "eps_string", '{"model_type": "llama", "rms_norm_eps": "1e-5"}', r"field 'rms_norm_eps' must be a number"
    yield "tie_int", '{"model_type": "llama", "tie_word_embeddings": 1}', \
        r"field 'tie_word_embeddings' must be true or false, got an integer 1"
    yield "rope_scaling_list", '{"model_type": "llama", "rope_scaling": [8]}', \
        r"field 'rope_scaling' must be an object, got an array"
    yield "rope_factor_string", '{"model_type": "llama", "rope_scaling": {"rope_type": "linear", "factor": "8"}}', \
        r"field 'rope_scaling.factor' must be a number"
    yield "nested_gemma", '{"model_type": "gemma3", "text_config": {"num_hidden_layers": true}}', \
        r"field 'text_config.num_hidden_layers' must be a non-negative integer, got a bool"
    yield "text_config_string", '{"model_type": "gemma3", "text_config": "x"}', \
        r"field 'text_config' must be an object"
    yield "kv_heads_not_divisor", '{"model_type": "llama", "num_attention_heads": 9, "num_key_value_heads": 2}', \
        r"field 'num_key_value_heads' \(2\) must divide num_attention_heads \(9\)"
    yield "awq_group_string", '{"model_type": "llama", "quantization_config": {"quant_method": "awq", ' \
                              '"group_size": "128"}}', r"field 'quantization_config.group_size' must be an integer"
    yield "awq_group_zero", '{"model_type": "llama", "quantization_config": {"quant_method": "awq", ' \
                            '"group_size": 0}}', r"field 'quantization_config.group_size' must be positive or -1, got 0"


BAD_CONFIGS = list(_bad_configs())


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config(tmp_path, case):
    _, text, message = case
    (tmp_path / "model.safetensors").write_bytes(st_bytes({"w": entry()}))
    (tmp_path / "config.json").write_text(text)
    _check(tmp_path, message, named=tmp_path / "config.json")
    _check(tmp_path / "config.json", message)  # naming config.json opens its directory


def test_directory_without_checkpoint(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path)) + ": no such file: model.safetensors"):
        fastspec.inspect(tmp_path)


def test_directory_with_ambiguous_files(tmp_path):
    for name in ("a.safetensors", "b.safetensors"):
        (tmp_path / name).write_bytes(st_bytes({"w": entry()}))
    _check(tmp_path, r"directory holds 2 .safetensors files and 0 index files")


def test_hostile_header_does_not_allocate_wildly(tmp_path):
    # A 100 MB header of "[0,0,0,...]" would need ~6 GB of parsed values; the value limit stops
    # the parser after 2M values (a few MB into the header).
    n = 3_000_000
    header = b"[" + b"0," * (n - 1) + b"0]"
    p = tmp_path / "big.safetensors"
    p.write_bytes(st_bytes(header, data=b""))
    with pytest.raises(fastspec.FormatError, match=r"big.safetensors header: malformed JSON at byte 4194303: "
                                                   r"too many values \(limit 2097152\)"):
        fastspec.inspect(p)
