"""Attention projection biases: each of q/k/v/o is applied iff its tensor is in the file, checked
against the PyTorch reference (tests/reference/llama.py, which adds a bias whenever the checkpoint
has one) on tiny random llama models, as safetensors and as GGUF.

ModelConfig.qkv_bias says the architecture declares q/k/v biases (qwen2; HF attention_bias=true);
then all three are required in every layer, so a file missing one is a ModelError naming the
tensor rather than a model that silently runs without it."""
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("gguf")

import tiny_models as tm  # noqa: E402
from reference import reference_model  # noqa: E402

import fastspec  # noqa: E402
from fastspec import _core  # noqa: E402

TOL = 2e-4  # F32 weights, f32 precision: the forward-test tolerance
PROJ = ("q", "k", "v", "o")


def _engine(path):
    o = _core.EngineOptions()
    o.threads, o.context = 2, 64
    o.precision, o.kv_type = "f32", "f32"
    return _core.Engine(str(path), o)


def _weights_with_biases(cfg, which, seed):
    """random_weights(cfg) plus large random biases on the projections in `which` only."""
    w = tm.random_weights(cfg, seed=seed)
    rng = np.random.default_rng(seed + 100)
    hd = tm.head_dim_of(cfg)
    rows = {"q": cfg["num_attention_heads"] * hd, "k": cfg["num_key_value_heads"] * hd,
            "v": cfg["num_key_value_heads"] * hd, "o": cfg["hidden_size"]}
    for i in range(cfg["num_hidden_layers"]):
        for n in which:
            w[f"model.layers.{i}.self_attn.{n}_proj.bias"] = rng.standard_normal(rows[n]).astype(np.float32)
    return w


def _write(tmp_path, fmt, cfg, w):
    """(path, the tensors as stored) of cfg + w written as an F32 GGUF or a safetensors checkpoint."""
    if fmt == "gguf":
        return tmp_path / "m.gguf", tm.write_gguf(tmp_path / "m.gguf", cfg, w, qtype="F32")
    return tmp_path / "ckpt", tm.write_safetensors_checkpoint(tmp_path / "ckpt", cfg, w)


def _check(eng, ref, cfg):
    ids = np.random.default_rng(0).integers(0, cfg["vocab_size"], size=12).tolist()
    ctx = eng.new_context()
    for a, b in ((0, 9), (9, 10), (10, 12)):  # prefill, decode, multi-token
        got = ctx.forward(ids[a:b])
        want = ref.forward(ids[a:b], start=a).double().numpy()
        np.testing.assert_allclose(got, want, atol=TOL, rtol=0, err_msg=f"tokens [{a}, {b})")


CASES = [("q",), ("k",), ("v",), ("o",), ("k", "v")]


@pytest.mark.parametrize("fmt", ["safetensors", "gguf"])
@pytest.mark.parametrize("which", CASES, ids=["".join(c) for c in CASES])
def test_partial_biases_match_reference(tmp_path, fmt, which):
    cfg = tm.tiny_config("llama")  # attention_bias false: nothing declared, biases applied when present
    w = _weights_with_biases(cfg, which, seed=11)
    path, stored = _write(tmp_path, fmt, cfg, w)
    for n in PROJ:
        assert (f"model.layers.0.self_attn.{n}_proj.bias" in stored) == (n in which)
    eng = _engine(path)
    assert not eng.config.qkv_bias
    _check(eng, reference_model(stored, cfg), cfg)


@pytest.mark.parametrize("fmt", ["safetensors", "gguf"])
def test_llama_attention_bias_includes_o_proj(tmp_path, fmt):
    """HF LlamaAttention with attention_bias=true has q, k, v and o_proj biases."""
    cfg = tm.tiny_config("llama", attention_bias=True)
    w = tm.random_weights(cfg, seed=12)
    assert "model.layers.1.self_attn.o_proj.bias" in w
    path, stored = _write(tmp_path, fmt, cfg, w)
    eng = _engine(path)
    assert eng.config.qkv_bias == (fmt == "safetensors")  # GGUF declares biases for qwen2 only
    _check(eng, reference_model(stored, cfg), cfg)


@pytest.mark.parametrize("fmt", ["safetensors", "gguf"])
@pytest.mark.parametrize("missing", ["q", "k", "v"])
def test_declared_bias_missing_is_model_error(tmp_path, fmt, missing):
    cfg = tm.tiny_config("qwen2")
    w = tm.random_weights(cfg, seed=13)
    del w[f"model.layers.1.self_attn.{missing}_proj.bias"]
    path, _ = _write(tmp_path, fmt, cfg, w)
    name = f"blk.1.attn_{missing}.bias" if fmt == "gguf" else f"model.layers.1.self_attn.{missing}_proj.bias"
    with pytest.raises(fastspec.ModelError, match=rf"missing tensor '{name}'"):
        _engine(path)


@pytest.mark.parametrize("fmt", ["safetensors", "gguf"])
@pytest.mark.parametrize("proj", ["gate", "up", "down"])
def test_mlp_bias_is_refused(tmp_path, fmt, proj):
    """MLP biases (llama mlp_bias=true) are not implemented: a clear ModelError, not a wrong model."""
    cfg = tm.tiny_config("llama")
    w = tm.random_weights(cfg, seed=14)
    rows = cfg["hidden_size"] if proj == "down" else cfg["intermediate_size"]
    w[f"model.layers.1.mlp.{proj}_proj.bias"] = np.ones(rows, dtype=np.float32)
    path, _ = _write(tmp_path, fmt, cfg, w)
    name = f"blk.1.ffn_{proj}.bias" if fmt == "gguf" else f"model.layers.1.mlp.{proj}_proj.bias"
    with pytest.raises(fastspec.ModelError, match=rf"'{name}' \(an MLP bias"):
        _engine(path)
