"""Bounded fuzzing of the loaders: random truncations, byte flips and field overwrites of valid
GGUF and safetensors files. Each mutant either loads (and then every read works) or raises
FormatError / ModelError; anything else (another exception, a crash, a hang) fails the suite."""
import json
import struct

import numpy as np
import pytest

import fastspec

gguf = pytest.importorskip("gguf")

N_MUTANTS = 1500  # per format; ~3 s


def _valid_gguf(path):
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.add_embedding_length(32)
    w.add_head_count(4)
    w.add_array("tokenizer.ggml.tokens", ["a", "b", "cd"])
    w.add_array("nested", [[1, 2], [3]])
    w.add_string("general.name", "fuzz")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 64), dtype=np.float32)
    w.add_tensor("token_embd.weight", gguf.quants.quantize(x, gguf.GGMLQuantizationType.Q4_0),
                 raw_dtype=gguf.GGMLQuantizationType.Q4_0)
    w.add_tensor("blk.0.attn_norm.weight", x[0].astype(np.float16))
    w.add_tensor("output.weight", x)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


def _valid_safetensors(path):
    header = {"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "b": {"dtype": "F16", "shape": [4], "data_offsets": [24, 32]},
              "__metadata__": {"format": "pt"}}
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + bytes(range(32)))
    return path.read_bytes()


def _mutate(rng, blob: bytes) -> bytes:
    b = bytearray(blob)
    kind = rng.integers(4)
    if kind == 0:  # truncate
        return bytes(b[: rng.integers(len(b))])
    if kind == 1:  # flip a few bytes
        for _ in range(rng.integers(1, 8)):
            b[rng.integers(len(b))] = rng.integers(256)
        return bytes(b)
    if kind == 2:  # overwrite an 8-byte field with a large value (counts, lengths, dims)
        pos = int(rng.integers(0, max(1, len(b) - 8)))
        choices = [2**63 - 1, 2**60, 2**32, 2**64 - 1, int(rng.integers(0, 2**62))]
        val = choices[int(rng.integers(len(choices)))]
        b[pos:pos + 8] = struct.pack("<Q", val)
        return bytes(b)
    pos = int(rng.integers(len(b)))  # delete or duplicate a span
    n = int(rng.integers(1, 16))
    return bytes(b[:pos] + b[pos + n:]) if rng.integers(2) else bytes(b[:pos] + b[pos:pos + n] + b[pos:])


def _exercise(path):
    try:
        info = fastspec.inspect(path)
        _ = info.config.n_layers, dict(info.metadata)
        for name, spec in info.tensors.items():
            if spec.type in ("F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"):
                assert info.tensor(name).shape == spec.shape
            if spec.type != "AWQ_INT4":
                assert info.raw(name).nbytes == spec.nbytes
    except (fastspec.FormatError, fastspec.ModelError):
        pass


@pytest.mark.parametrize("fmt", ["gguf", "safetensors"])
def test_fuzz_loader(tmp_path, fmt):
    make = _valid_gguf if fmt == "gguf" else _valid_safetensors
    blob = make(tmp_path / f"valid.{fmt}")
    rng = np.random.default_rng(12345)
    path = tmp_path / f"mutant.{fmt}"
    for _ in range(N_MUTANTS):
        path.write_bytes(_mutate(rng, blob))
        _exercise(path)
