"""The C++ transformer forward against the pure-PyTorch reference (tests/reference) on tiny random
models: safetensors F32/F16/BF16 and GGUF F32/F16/Q8_0/Q4_0/Q4_1/Q5_0/Q4_K/Q6_K, for prefill,
one-token decode and multi-token calls on a warm cache; rollback; batch invariance (bit-equal
logits per token whether it runs alone or inside a multi-token call).

The reference runs on exactly the weights the file stores (dequantized), so quantization error
stays out of the comparison (Marlin-style)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")

import tiny_models as tm  # noqa: E402
from reference import reference_model  # noqa: E402

from fastspec import _core  # noqa: E402

torch.set_num_threads(1)

# Absolute logit tolerance (tiny-model logits have std ~3). One table for the file.
TOL = {"F32": 2e-4, "F16": 2e-4, "BF16": 2e-4, "Q8_0": 2e-4, "Q4_0": 2e-4, "Q4_1": 2e-4, "Q5_0": 2e-4,
       "Q4_K": 3e-4, "Q6_K": 3e-4}

CHAIN = [10, 1, 5, 1, 7]  # token counts of chained calls: prefill, decode, verify-like, decode, verify-like


def _engine(path, context=64, threads=2):
    o = _core.EngineOptions()
    o.threads, o.context = threads, context
    o.precision, o.kv_type = "f32", "f32"  # the reference precision: compared to tests/reference at TOL
    return _core.Engine(str(path), o)


def _config(arch, kquant):
    if kquant:  # K-quants need rows that are multiples of 256
        kw = dict(hidden=256, intermediate=512)
        if arch == "gemma3":
            kw["head_dim"] = 64
        return tm.tiny_config(arch, **kw)
    return tm.tiny_config(arch)


def _tokens(cfg, n, seed=0):
    return np.random.default_rng(seed).integers(0, cfg["vocab_size"], size=n).tolist()


def _check_chain(eng, ref, cfg, tol):
    ids = _tokens(cfg, sum(CHAIN))
    ctx = eng.new_context()
    pos = 0
    for n in CHAIN:
        got = ctx.forward(ids[pos:pos + n])
        want = ref.forward(ids[pos:pos + n], start=pos).double().numpy()
        np.testing.assert_allclose(got, want, atol=tol, rtol=0, err_msg=f"call of {n} tokens at position {pos}")
        pos += n
    assert ctx.length == pos


GGUF_CASES = [(a, q) for a in ("llama", "qwen2", "gemma3") for q in ("F32", "Q8_0", "Q4_0", "Q4_1")] + \
             [("llama", "F16"), ("llama", "Q5_0"), ("llama", "Q4_K"), ("llama", "Q6_K"), ("gemma3", "Q4_K")]


@pytest.mark.parametrize("arch,qtype", GGUF_CASES, ids=[f"{a}-{q}" for a, q in GGUF_CASES])
def test_gguf_forward_matches_reference(tmp_path, arch, qtype):
    cfg = _config(arch, qtype in ("Q4_K", "Q6_K"))
    deq = tm.write_gguf(tmp_path / "m.gguf", cfg, tm.random_weights(cfg, seed=1), qtype=qtype)
    _check_chain(_engine(tmp_path / "m.gguf"), reference_model(deq, cfg), cfg, TOL[qtype])


ST_CASES = [("llama", "F32"), ("llama", "F16"), ("llama", "BF16"), ("qwen2", "F32"), ("gemma3", "F32")]


@pytest.mark.parametrize("arch,dtype", ST_CASES, ids=[f"{a}-{d}" for a, d in ST_CASES])
def test_safetensors_forward_matches_reference(tmp_path, arch, dtype):
    cfg = _config(arch, False)
    stored = tm.write_safetensors_checkpoint(tmp_path / "ckpt", cfg, tm.random_weights(cfg, seed=2), dtype=dtype)
    _check_chain(_engine(tmp_path / "ckpt"), reference_model(stored, cfg), cfg, TOL[dtype])


def test_llama3_rope_scaling_both_formats(tmp_path):
    cfg = tm.tiny_config("llama", rope_scaling=dict(tm.LLAMA3_ROPE_SCALING))
    w = tm.random_weights(cfg, seed=3)
    deq = tm.write_gguf(tmp_path / "m.gguf", cfg, w, qtype="F32")
    _check_chain(_engine(tmp_path / "m.gguf"), reference_model(deq, cfg), cfg, TOL["F32"])
    stored = tm.write_safetensors_checkpoint(tmp_path / "ckpt", cfg, w)
    _check_chain(_engine(tmp_path / "ckpt"), reference_model(stored, cfg), cfg, TOL["F32"])


def test_gguf_and_safetensors_of_same_weights_agree(tmp_path):
    """llama.cpp's Q/K permutation is handled: the same weights give the same logits either way."""
    cfg = tm.tiny_config("llama")
    w = tm.random_weights(cfg, seed=4)
    tm.write_gguf(tmp_path / "m.gguf", cfg, w, qtype="F32")
    tm.write_safetensors_checkpoint(tmp_path / "ckpt", cfg, w)
    ids = _tokens(cfg, 12)
    a = _engine(tmp_path / "m.gguf").logits(ids)
    b = _engine(tmp_path / "ckpt").logits(ids)
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)


@pytest.mark.parametrize("arch,qtype", [("llama", "Q4_1"), ("gemma3", "Q8_0"), ("llama", "F16"), ("llama", "Q4_K")])
def test_batch_invariance_bit_exact(tmp_path, arch, qtype):
    """A token's logits are bit-equal whether computed alone (decode) or in a multi-token call."""
    cfg = _config(arch, qtype == "Q4_K")
    tm.write_gguf(tmp_path / "m.gguf", cfg, tm.random_weights(cfg, seed=5), qtype=qtype)
    eng = _engine(tmp_path / "m.gguf")
    ids = _tokens(cfg, 20)
    whole = eng.logits(ids)
    ctx = eng.new_context()
    one_by_one = np.concatenate([ctx.forward([t]) for t in ids])
    assert np.array_equal(whole.view(np.uint32), one_by_one.view(np.uint32))
    ctx2 = eng.new_context()
    mixed = np.concatenate([ctx2.forward(ids[:7]), ctx2.forward(ids[7:8]), ctx2.forward(ids[8:])])
    assert np.array_equal(whole.view(np.uint32), mixed.view(np.uint32))


def test_rollback_equals_fresh_prefill(tmp_path):
    cfg = tm.tiny_config("llama")
    tm.write_gguf(tmp_path / "m.gguf", cfg, tm.random_weights(cfg, seed=6), qtype="Q8_0")
    eng = _engine(tmp_path / "m.gguf")
    ids = _tokens(cfg, 16)
    ctx = eng.new_context()
    ctx.forward(ids[:10])
    ctx.forward(_tokens(cfg, 5, seed=9))  # a rejected draft
    ctx.truncate(10)
    got = ctx.forward(ids[10:])
    assert np.array_equal(got, eng.logits(ids)[10:])
    with pytest.raises(Exception, match="kv_cache_truncate"):
        ctx.truncate(100)


def test_forward_into_a_reused_buffer(tmp_path):
    """forward(ids, out=buf) writes the logits into buf and returns it (the same object): equal to a
    fresh forward; a buffer of the wrong shape, dtype or layout is a ValueError."""
    cfg = tm.tiny_config("llama")
    tm.write_gguf(tmp_path / "m.gguf", cfg, tm.random_weights(cfg, seed=7), qtype="Q8_0")
    eng = _engine(tmp_path / "m.gguf")
    ids = _tokens(cfg, 12)
    a, b = eng.new_context(), eng.new_context()
    buf = np.full((4, cfg["vocab_size"]), np.nan, np.float32)
    a.forward(ids[:8]), b.forward(ids[:8])
    got = b.forward(ids[8:], out=buf)
    assert got is buf and np.array_equal(buf, a.forward(ids[8:]))
    last = np.empty((1, cfg["vocab_size"]), np.float32)
    assert b.forward(ids[:1], logits="last", out=last) is last
    for bad in (np.empty((3, cfg["vocab_size"]), np.float32), np.empty((4, cfg["vocab_size"]), np.float64),
                np.empty((cfg["vocab_size"], 4), np.float32).T):
        with pytest.raises(ValueError, match="out must be"):
            b.forward(ids[:4], out=bad)


def test_unsupported_architecture_is_model_error(tmp_path):
    import fastspec

    cfg = tm.tiny_config("llama")
    tm.write_gguf(tmp_path / "m.gguf", cfg, tm.random_weights(cfg), qtype="F32")
    blob = (tmp_path / "m.gguf").read_bytes().replace(b"llama", b"mamba")  # arch string + key prefixes
    (tmp_path / "x.gguf").write_bytes(blob)
    with pytest.raises(fastspec.ModelError, match=r"unsupported architecture 'mamba'"):
        _engine(tmp_path / "x.gguf")
