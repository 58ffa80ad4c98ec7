"""GGUF loading: config from metadata, tensor views, memory mapping, the real SmolLM2/Gemma files."""
import os

import numpy as np
import psutil
import pytest

import fastspec

gguf = pytest.importorskip("gguf")


def _write_llama_like(path, arch="llama", *, n_layers=2, n_embd=64, n_heads=4, n_kv=2, vocab=32, extra=None,
                      output=True, qkv_bias=False):
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(n_layers)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(3 * n_embd)
    w.add_head_count(n_heads)
    w.add_head_count_kv(n_kv)
    w.add_context_length(256)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_vocab_size(vocab)
    for key, (kind, val) in (extra or {}).items():
        getattr(w, f"add_{kind}")(key, val)
    rng = np.random.default_rng(0)
    w.add_tensor("token_embd.weight", rng.standard_normal((vocab, n_embd), dtype=np.float32))
    if output:
        w.add_tensor("output.weight", rng.standard_normal((vocab, n_embd), dtype=np.float32))
    if qkv_bias:
        w.add_tensor("blk.0.attn_q.bias", rng.standard_normal((n_embd,), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_llama_config_from_metadata(tmp_path):
    info = fastspec.inspect(_write_llama_like(tmp_path / "m.gguf"))
    c = info.config
    assert (c.architecture, c.family) == ("llama", "llama")
    assert (c.n_layers, c.n_embd, c.n_heads, c.n_kv_heads, c.head_dim, c.n_ff) == (2, 64, 4, 2, 16, 192)
    assert (c.vocab_size, c.context_length, c.rope_dim) == (32, 256, 16)
    assert c.rope_theta == 500000.0
    assert c.norm_eps == pytest.approx(1e-6)
    assert not c.tied_embeddings and not c.qkv_bias
    assert c.rope_pairs_adjacent  # llama.cpp's converter permutes llama Q/K rows
    assert c.rope_scaling["type"] == ""


def test_qwen2_bias_tied_and_rope_layout(tmp_path):
    c = fastspec.inspect(_write_llama_like(tmp_path / "q.gguf", "qwen2", output=False, qkv_bias=True)).config
    assert (c.family, c.tied_embeddings, c.qkv_bias, c.rope_pairs_adjacent) == ("llama", True, True, False)


def test_rope_scaling_keys(tmp_path):
    extra = {"llama.rope.scaling.type": ("string", "linear"), "llama.rope.scaling.factor": ("float32", 4.0)}
    c = fastspec.inspect(_write_llama_like(tmp_path / "r.gguf", extra=extra)).config
    assert c.rope_scaling["type"] == "linear" and c.rope_scaling["factor"] == 4.0


def test_unknown_architecture_still_inspects(tmp_path):
    info = fastspec.inspect(_write_llama_like(tmp_path / "x.gguf", "mamba"))
    assert info.config.architecture == "mamba" and info.config.family == ""
    assert info.config.n_layers == 2  # the generic {arch}.* keys are still read


def test_tensor_views_and_offsets(tmp_path):
    path = _write_llama_like(tmp_path / "m.gguf")
    info = fastspec.inspect(path)
    spec = info.tensors["token_embd.weight"]
    assert spec.shape == (32, 64) and spec.type == "F32" and spec.nbytes == 32 * 64 * 4
    blob = path.read_bytes()
    assert info.raw("token_embd.weight").tobytes() == blob[spec.offset:spec.offset + spec.nbytes]
    assert not info.raw("token_embd.weight").flags.writeable
    reader = gguf.GGUFReader(str(path))
    ref = {t.name: np.asarray(t.data) for t in reader.tensors}
    np.testing.assert_array_equal(info.tensor("output.weight"), ref["output.weight"])
    with pytest.raises(fastspec.ModelError, match=r"m.gguf: no tensor named 'nope'"):
        info.tensor("nope")


def test_raw_view_outlives_model_info(tmp_path):
    info = fastspec.inspect(_write_llama_like(tmp_path / "m.gguf"))
    raw = info.raw("output.weight")
    expect = raw.copy()
    del info  # the view keeps the mapping alive
    np.testing.assert_array_equal(raw, expect)


# ---- real models ---------------------------------------------------------------------------------


@pytest.mark.real_model
def test_smollm2_config(smollm2_path):
    info = fastspec.inspect(smollm2_path)
    c = info.config
    assert (c.architecture, c.n_layers, c.n_embd, c.n_heads, c.n_kv_heads, c.vocab_size) == \
        ("llama", 30, 576, 9, 3, 49152)
    assert (c.head_dim, c.n_ff, c.context_length, c.rope_theta) == (64, 1536, 8192, 100000.0)
    assert c.tied_embeddings
    assert info.metadata["tokenizer.ggml.model"] == "gpt2"
    assert len(info.metadata["tokenizer.ggml.tokens"]) == 49152
    assert info.tensors["blk.0.attn_q.weight"].type == "Q4_1"
    assert info.tensors["token_embd.weight"].shape == (49152, 576)


@pytest.mark.real_model
def test_smollm2_matches_gguf_reader(smollm2_path):
    info = fastspec.inspect(smollm2_path)
    reader = gguf.GGUFReader(smollm2_path)
    for t in reader.tensors[:12]:
        ref = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type)
        got = info.tensor(t.name)
        assert got.shape == tuple(int(d) for d in reversed(t.shape))
        assert np.array_equal(got.reshape(-1).view(np.uint32), ref.reshape(-1).astype(np.float32).view(np.uint32)), t.name


@pytest.mark.real_model
def test_inspect_maps_instead_of_reading(smollm2_path):
    """Opening the 98 MB file must not read it into memory: RSS grows by far less than its size."""
    proc = psutil.Process()
    size = os.path.getsize(smollm2_path)
    before = proc.memory_info().rss
    infos = [fastspec.inspect(smollm2_path) for _ in range(3)]  # three opens of the same file
    for i in infos:
        assert i.config.n_layers == 30 and len(i.tensors) == 272
    grown = proc.memory_info().rss - before
    assert grown < size / 4, f"RSS grew {grown / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"
    # Dequantizing one small tensor touches only its pages.
    infos[0].tensor("blk.0.attn_norm.weight")
    assert proc.memory_info().rss - before < size / 4


@pytest.mark.real_model
def test_gemma3_config(gemma3_path):
    info = fastspec.inspect(gemma3_path)
    c = info.config
    assert (c.architecture, c.family, c.n_layers, c.n_embd, c.n_heads, c.n_kv_heads) == \
        ("gemma3", "gemma3", 18, 640, 4, 1)
    assert (c.head_dim, c.n_ff, c.vocab_size, c.sliding_window, c.sliding_window_pattern) == \
        (256, 2048, 262144, 512, 6)
    assert c.rope_theta == 1e6 and c.rope_local_theta == 10000.0
    assert c.tied_embeddings and c.norm_weight_plus_one and not c.rope_pairs_adjacent
    types = {t.type for t in info.tensors.values()}
    assert {"Q5_0", "Q4_K", "Q6_K", "Q8_0", "F32"} <= types
    for name in ("blk.0.attn_output.weight", "blk.0.ffn_down.weight", "blk.0.attn_q.weight"):
        assert np.isfinite(info.tensor(name)).all()
