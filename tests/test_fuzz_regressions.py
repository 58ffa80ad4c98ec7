"""Findings of the fuzz campaigns (tests/fuzz), each kept as the input that found it (or its
minimal form) and the behaviour fixed: refused with FormatError/ModelError, never a crash."""
import json
import struct
import time

import pytest

import fastspec
from gguf_bytes import ARRAY, STRING, build, gguf_string, kv

# fuzz_gguf (UBSan): a tensor with a zero innermost dim and huge outer dims passed the element-count
# check (the product is 0) but TensorInfo::n_elements() multiplied the outer dims first: signed overflow.
GGUF_ZERO_DIM_OVERFLOW = bytes.fromhex(
    "474755460300000002000000000000000200000000000000140000000000000067656e6572616c2e61726368697465"
    "63747572650800000005000000000000006c6c616d5a1500000000000000746f6b656e697a65722e67676d6c2e746f"
    "6b656e730900000008000000020000000000000001000000000000006101000000000000006201000000000000006101"
    "000000020000000000000001000000000000000000000001000000000000006204000000020000ffffffff0000000000"
    "00000000010000002000000000000031").ljust(264, b"\0")  # the fuzzer's 264 bytes end in zeros


def test_gguf_zero_dim_with_overflowing_dims(tmp_path):
    assert len(GGUF_ZERO_DIM_OVERFLOW) == 264
    p = tmp_path / "crash.gguf"
    p.write_bytes(GGUF_ZERO_DIM_OVERFLOW)
    with pytest.raises(fastspec.FormatError, match=r"crash.gguf: tensor 'b': dims overflow the element count"):
        fastspec.inspect(str(p))


def test_safetensors_zero_dim_with_overflowing_dims(tmp_path):
    """The safetensors twin: [2^40, 2^40, 0] used to be accepted as empty."""
    h = json.dumps({"w": {"dtype": "F32", "shape": [1 << 40, 1 << 40, 0], "data_offsets": [0, 0]}}).encode()
    p = tmp_path / "model.safetensors"
    p.write_bytes(struct.pack("<Q", len(h)) + h)
    with pytest.raises(fastspec.FormatError, match=r"tensor 'w': shape \[1099511627776, 1099511627776, 0\] has more"):
        fastspec.inspect(str(p))


def _tokenizer_gguf(tmp_path, tokens, merges):
    strs = lambda xs: struct.pack("<IQ", STRING, len(xs)) + b"".join(gguf_string(x) for x in xs)  # noqa: E731
    p = tmp_path / "tok.gguf"
    p.write_bytes(build([kv(b"tokenizer.ggml.model", STRING, gguf_string(b"gpt2")),
                         kv(b"tokenizer.ggml.tokens", ARRAY, strs(tokens)),
                         kv(b"tokenizer.ggml.merges", ARRAY, strs(merges))]))
    return p


def test_tokenizer_token_not_utf8(tmp_path):
    """fuzz_tokenizer: a token that is not UTF-8 reaches Python as bytes; load_gguf crashed with
    AttributeError ('bytes' object has no attribute 'encode')."""
    p = _tokenizer_gguf(tmp_path, [b"a", b"b\xff", b"ab"], [b"a b"])
    with pytest.raises(fastspec.ModelError, match=r"metadata 'tokenizer.ggml.tokens' must be an array of strings; "
                                                  r"an element is not valid UTF-8"):
        fastspec.Tokenizer.from_gguf(str(p))


def test_tokenizer_merge_outside_vocabulary(tmp_path):
    """fuzz_tokenizer: a merge naming a token outside the vocabulary made tokenizers raise a bare
    Exception ('Error while initializing BPE: Token `...` out of vocabulary')."""
    p = _tokenizer_gguf(tmp_path, [b"a", b"b", b"ab"], [b"a b", b"ab c"])
    with pytest.raises(fastspec.ModelError, match=r"do not form a BPE tokenizer: .*out of vocabulary"):
        fastspec.Tokenizer.from_gguf(str(p))


@pytest.mark.parametrize("key,value,want", [
    (b"tokenizer.ggml.bos_token_id", kv(b"tokenizer.ggml.bos_token_id", STRING, gguf_string(b"1")),
     r"'tokenizer.ggml.bos_token_id' must be a integer, got a str"),
    (b"tokenizer.ggml.model", kv(b"tokenizer.ggml.model", ARRAY, struct.pack("<IQ", 4, 0)),
     r"'tokenizer.ggml.model' must be a string, got a list"),
])
def test_tokenizer_key_of_wrong_kind(tmp_path, key, value, want):
    toks = struct.pack("<IQ", STRING, 2) + gguf_string(b"a") + gguf_string(b"b")
    p = tmp_path / "tok.gguf"
    p.write_bytes(build([kv(b"tokenizer.ggml.tokens", ARRAY, toks), value]))
    with pytest.raises(fastspec.ModelError, match=want):
        fastspec.Tokenizer.from_gguf(str(p))


def test_safetensors_many_metadata_keys_not_quadratic(tmp_path):
    """Found reviewing the harness: each __metadata__ key was looked up linearly among the previous
    ones, so a 2 MB header with 150k keys took minutes. Now a set: well under a second."""
    n = 150_000
    header = {"__metadata__": {f"k{i}": "v" for i in range(n)}}
    h = json.dumps(header).encode()
    p = tmp_path / "model.safetensors"
    p.write_bytes(struct.pack("<Q", len(h)) + h)
    t0 = time.perf_counter()
    md = fastspec.inspect(str(p)).metadata
    assert time.perf_counter() - t0 < 5.0
    assert len(md) == n and md["safetensors.k149999"] == "v"


def test_tokenizer_bos_text_outside_template_syntax(tmp_path):
    """fuzz_tokenizer: a BOS token spelled '<s:' made tokenizers' TemplateProcessing raise ValueError
    ('Cannot build Piece from string "<s::0"') out of Tokenizer.from_gguf."""
    strs = lambda xs: struct.pack("<IQ", STRING, len(xs)) + b"".join(gguf_string(x) for x in xs)  # noqa: E731
    p = tmp_path / "tok.gguf"
    p.write_bytes(build([kv(b"tokenizer.ggml.model", STRING, gguf_string(b"gpt2")),
                         kv(b"tokenizer.ggml.tokens", ARRAY, strs([b"<s:", b"a", b"b", b"ab"])),
                         kv(b"tokenizer.ggml.merges", ARRAY, strs([b"a b"])),
                         kv(b"tokenizer.ggml.bos_token_id", 4, struct.pack("<I", 0)),
                         kv(b"tokenizer.ggml.add_bos_token", 7, b"\x01")]))
    with pytest.raises(fastspec.ModelError, match=r"the BOS/EOS token '<s:' cannot be added"):
        fastspec.Tokenizer.from_gguf(str(p))
