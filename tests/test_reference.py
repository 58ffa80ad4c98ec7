"""The test-side ground truth checks itself: tests/reference (pure PyTorch) against Hugging Face
transformers on tiny random checkpoints, and the tiny-model fixtures (safetensors, GGUF,
tokenizer, K-quant writers) against transformers' and gguf's own readers.

What fastspec is later compared against is only as good as these agree:
- reference logits == transformers logits (llama +/- llama3/linear rope scaling, tied/untied,
  qwen2 biases, gemma3 with sequences longer than the sliding window, softcaps): prefill, one-token
  decode and multi-token calls on a warm cache, and truncate-then-forward == a fresh run;
- GGUF fixtures: names/types/metadata as llama.cpp's converter writes them; the dequantized
  weights write_gguf returns == what gguf reads back, == transformers' own GGUF loader (which
  un-permutes Q/K and subtracts Gemma's +1 independently), == the HF weights (F32 exactly,
  quantized within the type's error); the Q/K permutation round-trips and maps rotate-half RoPE
  to adjacent-pair RoPE;
- the sampling spec agrees with transformers' temperature/top-k/top-p warpers.
"""
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
gguf = pytest.importorskip("gguf")

import tiny_models as tm  # noqa: E402
from gguf.quants import dequantize  # noqa: E402
from reference import load_checkpoint, reference_model  # noqa: E402
from reference.sampling import greedy, processed_probs  # noqa: E402

torch.set_num_threads(1)


def need_transformers():
    """transformers (and accelerate, for GGUF loading) are test-only dependencies; skip without."""
    tf = pytest.importorskip("transformers")
    tf.logging.set_verbosity_error()
    return tf

# ---- tolerances (one table) ------------------------------------------------------------------
# Logits of the tiny models have a standard deviation of ~3; all logit tolerances are absolute.
TOL = {
    "ref32_vs_hf": 2e-4,          # reference (float32) vs transformers (float32): seen ~1e-5
    "ref64_vs_hf": 2e-4,          # reference (float64) vs transformers (float32): seen ~2e-5
    "chain_vs_full_32": 5e-5,     # chained calls vs one full forward, reference float32
    "chain_vs_full_64": 1e-10,    # same in float64
    "hf_cached_vs_ref": 2e-4,     # transformers with its KV cache vs the reference
    "hf_gguf_vs_ref": 2e-4,       # transformers loading our GGUF vs reference on returned weights
    # Relative RMS error of a stored weight vs the float32 original (random normal data).
    "weight_rel_rms": {"F32": 0.0, "F16": 1e-3, "BF16": 5e-3, "Q8_0": 1e-2, "Q6_K": 3e-2,
                       "Q5_0": 6e-2, "Q5_1": 5e-2, "Q4_1": 1e-1, "Q4_0": 1.2e-1, "Q4_K": 1e-1},
    "gemma_norm_plus1": 2e-6,     # rel. RMS of (float32(w + 1) - 1) vs w, norm weights ~0.1
    # Worst element error of our K-quant writers as a fraction of the 256-block's max |x|.
    "kquant_block_max": {"Q4_K": 0.07, "Q6_K": 0.02},
    "sampling_vs_hf": 1e-6,       # processed probabilities vs transformers' warpers
}

# (id, arch, tiny_config overrides)
CASES = [
    ("llama", "llama", {}),
    ("llama-llama3-rope", "llama", {"rope_scaling": tm.LLAMA3_ROPE_SCALING}),
    ("llama-linear-rope", "llama", {"rope_scaling": {"rope_type": "linear", "factor": 2.0}}),
    ("llama-tied-gqa4", "llama", {"tie_word_embeddings": True, "kv_heads": 1}),
    ("qwen2-bias", "qwen2", {}),
    ("gemma3", "gemma3", {}),
    # Gemma 3 has no attention softcap (transformers ignores attn_logit_softcapping, llama.cpp's
    # converter asserts it is None); the final-logit softcap and the pattern are real options.
    ("gemma3-softcap-qscale", "gemma3", {"final_logit_softcapping": 5.0,
                                         "query_pre_attn_scalar": 24, "n_layers": 3,
                                         "sliding_window_pattern": 3}),
]
N_TOK = 24  # > gemma3 sliding_window (8), so the window matters
SPLITS = [10, 1, 5, 1, 7]  # prefill, decode, several on a warm cache, decode, several


def make_cfg(arch, overrides):
    kw = dict(overrides)
    args = {k: kw.pop(k) for k in ("n_layers", "hidden", "heads", "kv_heads", "vocab") if k in kw}
    return tm.tiny_config(arch, **args, **kw)


def tokens(cfg, n=N_TOK, seed=0):
    return [int(t) for t in np.random.default_rng(seed).integers(0, cfg["vocab_size"], n)]


def hf_model(path, **kw):
    tf = need_transformers()
    m = tf.AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32,
                                                attn_implementation="eager", **kw)
    return m.eval()


def hf_logits(model, toks):
    with torch.no_grad():
        return model(torch.tensor([toks])).logits[0]


def assert_close(a, b, tol, what):
    diff = (torch.as_tensor(a).double() - torch.as_tensor(b).double()).abs().max().item()
    assert diff <= tol, f"{what}: max |diff| {diff:.3g} > {tol:.3g}"


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def checkpoint(request, tmp_path_factory):
    """(cfg, stored weights, dir) of a tiny F32 safetensors checkpoint."""
    case, arch, overrides = request.param
    cfg = make_cfg(arch, overrides)
    path = tmp_path_factory.mktemp(case)
    stored = tm.write_safetensors_checkpoint(path, cfg, tm.random_weights(cfg, seed=1))
    return cfg, stored, path


# ---- reference vs transformers ------------------------------------------------------------------

def test_reference_matches_transformers(checkpoint):
    cfg, weights, path = checkpoint
    model = hf_model(path)
    assert type(model).__name__ == cfg["architectures"][0]
    toks = tokens(cfg)
    expect = hf_logits(model, toks)
    for dtype, key in ((torch.float32, "ref32_vs_hf"), (torch.float64, "ref64_vs_hf")):
        ref = reference_model(weights, cfg, dtype=dtype)
        assert_close(ref.forward(toks, 0), expect, TOL[key], f"prefill {dtype}")
    # the reference also reads transformers 5's own config form (rope_parameters, per layer type)
    v5 = model.config.to_dict()
    assert "rope_parameters" in v5
    assert_close(reference_model(weights, v5).forward(toks, 0), expect, TOL["ref32_vs_hf"], "v5 cfg")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_chained_calls_equal_full_forward(checkpoint, dtype):
    """prefill, decode 1, several on a warm cache, ... == one forward over all tokens."""
    cfg, weights, _ = checkpoint
    toks = tokens(cfg)
    full = reference_model(weights, cfg, dtype=dtype).forward(toks, 0)
    ref, parts, pos = reference_model(weights, cfg, dtype=dtype), [], 0
    for n in SPLITS:
        parts.append(ref.forward(toks[pos:pos + n], pos))
        pos += n
        assert ref.n_cached == pos
    key = "chain_vs_full_32" if dtype == torch.float32 else "chain_vs_full_64"
    assert_close(torch.cat(parts), full, TOL[key], "chained vs full")


def test_transformers_cached_decode_matches_reference(checkpoint):
    """transformers' own KV cache (incl. its sliding-window cache for gemma3) agrees too."""
    cfg, weights, path = checkpoint
    model, toks = hf_model(path), tokens(cfg)
    full = reference_model(weights, cfg).forward(toks, 0)
    past, pos, parts = need_transformers().DynamicCache(config=model.config), 0, []
    with torch.no_grad():
        for n in SPLITS:
            out = model(torch.tensor([toks[pos:pos + n]]), past_key_values=past, use_cache=True)
            parts.append(out.logits[0])
            past, pos = out.past_key_values, pos + n
    assert_close(torch.cat(parts), full, TOL["hf_cached_vs_ref"], "HF cached vs reference")


def test_truncate_then_forward_equals_fresh_run(checkpoint):
    cfg, weights, _ = checkpoint
    toks, other = tokens(cfg), tokens(cfg, seed=5)
    ref = reference_model(weights, cfg, dtype=torch.float64)
    ref.forward(toks[:16], 0)
    ref.truncate(9)
    assert ref.n_cached == 9
    got = ref.forward(other[:6], 9)
    fresh = reference_model(weights, cfg, dtype=torch.float64).forward(toks[:9] + other[:6], 0)
    assert_close(got, fresh[9:], TOL["chain_vs_full_64"], "truncate + forward vs fresh")
    # start below the cached length rolls back implicitly; above it is an error
    ref.forward(toks[9:12], 9)
    assert_close(ref.forward(other[:6], 9), fresh[9:], TOL["chain_vs_full_64"], "implicit rollback")
    with pytest.raises(ValueError):
        ref.forward([1], ref.n_cached + 1)
    with pytest.raises(ValueError):
        ref.truncate(ref.n_cached + 1)


def test_fixtures_exercise_the_features():
    """Guard the fixtures: logits are not degenerate, and each feature under test changes them."""
    def run(cfg, w, n=N_TOK):
        return reference_model(w, cfg).forward(tokens(cfg, n), 0)

    cfg = tm.tiny_config("llama")
    w = tm.random_weights(cfg, seed=1)
    base = run(cfg, w)
    assert 1.0 < base.std().item() < 10.0
    assert len(set(base.argmax(-1).tolist())) > N_TOK // 2
    for field, value in (("rope_scaling", tm.LLAMA3_ROPE_SCALING),
                         ("rope_scaling", {"rope_type": "linear", "factor": 2.0})):
        assert (run(dict(cfg, **{field: value}), w) - base).abs().max() > 1.0, value

    g = tm.tiny_config("gemma3")
    gw = tm.random_weights(g, seed=1)
    gbase = run(g, gw)
    assert 1.0 < gbase.std().item() < 10.0
    assert g["layer_types"].count("full_attention") == 1 and g["layer_types"][5] == "full_attention"
    for change in ({"sliding_window": 1000}, {"layer_types": ["full_attention"] * 6},
                   {"rope_local_base_freq": 1e6}, {"rope_theta": 1e4},
                   {"query_pre_attn_scalar": 2 * g["head_dim"]}):
        assert (run(dict(g, **change), gw) - gbase).abs().max() > 0.5, change
    # within the window nothing changes: the first `sliding_window` positions see all keys
    wide = run(dict(g, sliding_window=1000), gw)
    assert_close(wide[:g["sliding_window"]], gbase[:g["sliding_window"]], 1e-5, "inside window")


# ---- safetensors variants -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,sharded", [("F16", False), ("BF16", False), ("F32", True)])
def test_safetensors_variants_load_in_transformers(tmp_path, dtype, sharded):
    cfg = tm.tiny_config("llama")
    w = tm.random_weights(cfg, seed=3)
    stored = tm.write_safetensors_checkpoint(tmp_path, cfg, w, dtype=dtype, sharded=sharded)
    if sharded:
        assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == \
            ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    rel = max(np.sqrt(((stored[k] - w[k]) ** 2).mean() / (w[k] ** 2).mean()) for k in w)
    assert rel <= TOL["weight_rel_rms"][dtype]
    loaded, cfg2 = load_checkpoint(tmp_path)
    assert cfg2["torch_dtype"] == tm.TORCH_DTYPE_NAMES[dtype]
    for k in stored:
        np.testing.assert_array_equal(loaded[k].float().numpy(), stored[k])
    toks = tokens(cfg)
    assert_close(reference_model(stored, cfg).forward(toks, 0), hf_logits(hf_model(tmp_path), toks),
                 TOL["ref32_vs_hf"], f"{dtype} checkpoint")


# ---- GGUF fixtures --------------------------------------------------------------------------------

GGUF_TYPES = ["F32", "F16", "BF16", "Q8_0", "Q5_0", "Q4_0", "Q4_1", "Q4_K", "Q6_K"]
# K-quants need rows that are multiples of 256.
KQ = dict(hidden=256, intermediate=512)


def gguf_cfg(arch, qtype):
    kw = dict(KQ) if qtype.endswith("_K") else {}
    if arch == "gemma3" and qtype.endswith("_K"):
        kw["head_dim"] = 64  # o_proj rows = 4 * 64 = 256
    if arch == "llama":
        kw["rope_scaling"] = tm.LLAMA3_ROPE_SCALING
    return tm.tiny_config(arch, **kw)


def read_gguf(path):
    """{name: (type name, dequantized float32 [rows, cols] or [n])}, {key: value}."""
    r = gguf.GGUFReader(str(path))
    tensors = {t.name: (t.tensor_type.name,
                        dequantize(t.data, t.tensor_type).reshape(tuple(int(d) for d in t.shape[::-1])))
               for t in r.tensors}
    kv = {f.name: f.contents() for f in r.fields.values()}
    return tensors, kv


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma3"])
@pytest.mark.parametrize("qtype", GGUF_TYPES)
def test_gguf_fixture_weights(tmp_path, arch, qtype):
    cfg = gguf_cfg(arch, qtype)
    w = tm.random_weights(cfg, seed=4)
    path = tmp_path / "m.gguf"
    deq = tm.write_gguf(path, cfg, w, qtype=qtype)
    tensors, kv = read_gguf(path)
    names = tm.gguf_tensor_names(cfg, w)
    gemma, llama = arch == "gemma3", arch == "llama"
    expect_names = {names[k] for k in w}
    if llama:
        expect_names.add("rope_freqs.weight")
    assert set(tensors) == expect_names
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    for hf, g in names.items():
        typ, data = tensors[g]
        assert typ == ("F32" if data.ndim == 1 else qtype), g
        if llama and (".q_proj." in hf or ".k_proj." in hf):
            data = tm.unpermute_qk(data, nh if ".q_proj." in hf else nkv)
        if gemma and hf.endswith("norm.weight"):
            data = data - np.float32(1)
            np.testing.assert_array_equal(tensors[g][1], w[hf] + np.float32(1))  # stored = w + 1
        np.testing.assert_array_equal(data, deq[hf], err_msg=hf)  # returned == stored
        if qtype == "F32" and not (gemma and hf.endswith("norm.weight")):
            np.testing.assert_array_equal(deq[hf], w[hf], err_msg=hf)
        rel = np.sqrt(((deq[hf] - w[hf]) ** 2).mean() / (w[hf] ** 2).mean())
        bound = TOL["weight_rel_rms"][qtype]
        if gemma and hf.endswith("norm.weight"):
            bound = max(bound, TOL["gemma_norm_plus1"])
        assert rel <= bound, (hf, rel)
    # metadata keys as the converter writes them
    a = tm.GGUF_ARCH[cfg["model_type"]]
    assert kv["general.architecture"] == a
    assert kv[f"{a}.block_count"] == cfg["num_hidden_layers"]
    assert kv[f"{a}.embedding_length"] == cfg["hidden_size"]
    assert kv[f"{a}.feed_forward_length"] == cfg["intermediate_size"]
    assert kv[f"{a}.attention.head_count"] == nh
    assert kv[f"{a}.attention.head_count_kv"] == nkv
    assert kv[f"{a}.rope.freq_base"] == pytest.approx(cfg["rope_theta"])
    assert kv[f"{a}.attention.layer_norm_rms_epsilon"] == pytest.approx(cfg["rms_norm_eps"])
    assert kv["general.file_type"] == getattr(gguf.LlamaFileType, tm.FILE_TYPES[qtype])
    if gemma:
        assert kv["gemma3.attention.sliding_window"] == cfg["sliding_window"]
        assert kv["gemma3.attention.key_length"] == cfg["head_dim"]
    if llama:
        assert kv["llama.rope.dimension_count"] == cfg["head_dim"]
        np.testing.assert_allclose(tensors["rope_freqs.weight"][1], tm.llama3_rope_freqs(cfg))
    assert tensors["token_embd.weight"][1].shape == (cfg["vocab_size"], cfg["hidden_size"])
    assert ("output.weight" in tensors) == (not cfg.get("tie_word_embeddings", gemma))


def test_kquant_requires_256_rows_or_fallback(tmp_path):
    cfg = tm.tiny_config("llama")  # hidden 64
    w = tm.random_weights(cfg)
    with pytest.raises(ValueError, match="multiple of 256"):
        tm.write_gguf(tmp_path / "a.gguf", cfg, w, qtype="Q4_K")
    tm.write_gguf(tmp_path / "b.gguf", cfg, w, qtype="Q6_K", fallback=True)
    tensors, _ = read_gguf(tmp_path / "b.gguf")
    assert tensors["blk.0.attn_q.weight"][0] == "Q8_0"


@pytest.mark.parametrize("arch,qtype", [("llama", "Q8_0"), ("llama", "Q4_K"), ("qwen2", "Q4_1"),
                                        ("gemma3", "F16"), ("gemma3", "Q6_K")])
def test_transformers_gguf_loader_sees_the_returned_weights(tmp_path, arch, qtype):
    """transformers' GGUF loader (its own un-permute and Gemma -1) reproduces write_gguf's
    returned weights bit for bit; where its config mapping is complete (llama and qwen2 without
    rope scaling) its logits match the reference run on those weights."""
    cfg = gguf_cfg(arch, qtype)
    cfg["rope_scaling"] = None  # transformers' GGUF config mapping ignores rope scaling
    w = tm.random_weights(cfg, seed=6)
    deq = tm.write_gguf(tmp_path / "m.gguf", cfg, w, qtype=qtype)
    pytest.importorskip("accelerate")  # transformers needs it to load a GGUF
    model = hf_model(tmp_path, gguf_file="m.gguf")
    sd = model.state_dict()
    for k, v in deq.items():
        np.testing.assert_array_equal(sd[k].numpy(), v, err_msg=k)
    if arch != "gemma3":  # the GGUF has no query_pre_attn_scalar; transformers then assumes 256
        toks = tokens(cfg)
        assert_close(hf_logits(model, toks), reference_model(deq, cfg).forward(toks, 0),
                     TOL["hf_gguf_vs_ref"], "HF from GGUF vs reference")


def adjacent_pair_rope(x, pos, inv_freq):
    """llama.cpp's normal (non-NeoX) RoPE: rotate pairs (2i, 2i+1) by pos * inv_freq[i].
    x [H, T, D]."""
    ang = pos.double()[:, None] * inv_freq.double()[None, :]
    cos, sin = ang.cos(), ang.sin()
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2], out[..., 1::2] = x0 * cos - x1 * sin, x0 * sin + x1 * cos
    return out


def test_qk_permutation_round_trips_and_maps_rope_layouts():
    from reference.llama import rope, rope_inv_freq
    rng = np.random.default_rng(7)
    n_head, n_kv, hd, n_in, T = 4, 2, 16, 32, 5
    for heads in (n_head, n_kv):
        wq = rng.standard_normal((heads * hd, n_in)).astype(np.float32)
        bq = rng.standard_normal(heads * hd).astype(np.float32)
        for arr in (wq, bq):
            p = tm.permute_qk(arr, heads)
            assert not np.array_equal(p, arr)
            np.testing.assert_array_equal(tm.unpermute_qk(p, heads), arr)
            np.testing.assert_array_equal(tm.permute_qk(tm.unpermute_qk(arr, heads), heads), arr)
        # rotate-half RoPE on HF rows == adjacent-pair RoPE on permuted rows (then un-permuted)
        x = torch.tensor(rng.standard_normal((T, n_in)))
        pos, inv = torch.arange(3, 3 + T), rope_inv_freq(10000.0, hd, None, 256, torch.float64)
        q_hf = (x @ torch.tensor(wq).double().T).view(T, heads, hd).transpose(0, 1)
        q_gg = (x @ torch.tensor(tm.permute_qk(wq, heads)).double().T).view(T, heads, hd).transpose(0, 1)
        a = rope(q_hf, pos, inv)
        b = adjacent_pair_rope(q_gg, pos, inv)
        b = torch.tensor(tm.unpermute_qk(b.transpose(0, 1).reshape(T, -1).numpy().T, heads).T)
        assert_close(a.transpose(0, 1).reshape(T, -1), b, 1e-12, "rope layouts")


@pytest.mark.parametrize("qtype", ["Q4_K", "Q6_K"])
def test_kquant_writers_round_trip_through_gguf_dequantize(qtype):
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((6, 512)) * 0.05).astype(np.float32)
    x[0, :256] = 0                                   # all-zero block
    x[1, :256] = np.abs(x[1, :256])                  # all positive (min 0)
    x[2, :256] = -np.abs(x[2, :256])                 # all negative
    x[3, :256] *= 1000                               # large scale
    x[3, 256:] *= 1e-2                               # small scale
    x[4, 100] = 5.0                                  # one outlier
    raw = (tm.quantize_q4_k if qtype == "Q4_K" else tm.quantize_q6_k)(x)
    qt = gguf.GGMLQuantizationType[qtype]
    assert raw.dtype == np.uint8 and raw.shape == (6, 2 * gguf.GGML_QUANT_SIZES[qt][1])
    d = dequantize(raw, qt).reshape(x.shape)
    assert np.all(np.isfinite(d))
    np.testing.assert_array_equal(d[0, :256], 0)
    err = np.abs(d - x).reshape(-1, 256).max(-1)
    peak = np.abs(x).reshape(-1, 256).max(-1)
    assert np.all(err <= TOL["kquant_block_max"][qtype] * peak + 1e-12), (err / np.maximum(peak, 1e-30))
    normal = x[5]
    rel = np.sqrt(((d[5] - normal) ** 2).mean() / (normal ** 2).mean())
    assert rel <= TOL["weight_rel_rms"][qtype]


# ---- tokenizer ------------------------------------------------------------------------------------

def test_tokenizer_gguf_and_json_agree(tmp_path):
    cfg = tm.tiny_config("llama")
    tok = tm.tiny_tokenizer(cfg["vocab_size"])
    assert len(tok["tokens"]) == cfg["vocab_size"] == len(set(tok["tokens"]))
    tm.write_gguf(tmp_path / "m.gguf", cfg, tm.random_weights(cfg), qtype="F32")
    tm.write_tokenizer_json(tmp_path, tok)
    _, kv = read_gguf(tmp_path / "m.gguf")
    assert kv["tokenizer.ggml.model"] == "gpt2" and kv["tokenizer.ggml.pre"] == "gpt2"
    assert kv["tokenizer.ggml.tokens"] == tok["tokens"]
    assert kv["tokenizer.ggml.token_type"][:5] == [3, 3, 3, 3, 1]
    assert kv["tokenizer.ggml.merges"] == [f"{a} {b}" for a, b in tok["merges"]]
    assert (kv["tokenizer.ggml.bos_token_id"], kv["tokenizer.ggml.eos_token_id"]) == (0, 1)
    assert kv["tokenizer.ggml.eot_token_id"] == 3
    assert kv["tokenizer.chat_template"] == tok["chat_template"]

    ht = need_transformers().AutoTokenizer.from_pretrained(str(tmp_path))
    assert len(ht) == cfg["vocab_size"]
    assert ht.convert_ids_to_tokens(list(range(len(ht)))) == tok["tokens"]
    assert (ht.bos_token_id, ht.eos_token_id) == (0, 1)
    text = "the cat is in the house, and<|im_end|> ünï 😀"
    ids = ht.encode(text)
    assert ids[:3] == [tok["tokens"].index(t) for t in ("t", "he", "Ġcat")]  # merges apply
    assert 3 in ids  # special token matched in text
    assert ht.decode(ids) == text
    chat = ht.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                  add_generation_prompt=True)
    assert chat == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


# ---- sampling spec --------------------------------------------------------------------------------

def test_sampling_spec_edge_cases():
    logits = np.array([1.0, 3.0, 3.0, 0.0, 2.0])
    assert greedy(logits) == 1                                  # tie -> lowest id
    np.testing.assert_array_equal(processed_probs(logits, 0.0, 2, 0.5), [0, 1, 0, 0, 0])
    p = processed_probs(logits, 1.0, top_k=1)
    np.testing.assert_array_equal(p, [0, 1, 0, 0, 0])           # top-k tie -> lowest id kept
    p = processed_probs(logits, 1.0, top_k=2)
    np.testing.assert_allclose(p, [0, 0.5, 0.5, 0, 0])
    e = np.exp(logits - 3)
    full = e / e.sum()
    np.testing.assert_allclose(processed_probs(logits, 1.0), full)
    np.testing.assert_allclose(processed_probs(logits, 1.0, top_k=0, top_p=1.0), full)
    # top-p: smallest prefix with mass >= top_p (the boundary token is included)
    np.testing.assert_allclose(processed_probs(logits, 1.0, top_p=full[1]), [0, 1, 0, 0, 0])
    two = processed_probs(logits, 1.0, top_p=full[1] + 1e-9)
    np.testing.assert_allclose(two, [0, 0.5, 0.5, 0, 0])
    assert processed_probs(logits, 1.0, top_p=0.0).tolist() == [0, 1, 0, 0, 0]
    t = processed_probs(logits, 0.5)
    np.testing.assert_allclose(t, np.exp(2 * logits - 6) / np.exp(2 * logits - 6).sum())
    assert processed_probs(np.random.default_rng(0).standard_normal(50), 0.7, 10, 0.9).sum() == \
        pytest.approx(1.0, abs=1e-12)


def test_sampling_spec_matches_transformers_warpers():
    need_transformers()
    from transformers.generation.logits_process import (TemperatureLogitsWarper, TopKLogitsWarper,
                                                        TopPLogitsWarper)
    rng = np.random.default_rng(9)
    for temperature, top_k, top_p in [(1.0, 0, 1.0), (0.7, 0, 1.0), (1.3, 20, 1.0),
                                      (0.8, 0, 0.9), (1.0, 50, 0.8), (0.5, 5, 0.95)]:
        logits = rng.standard_normal(300) * 3
        scores = torch.tensor(logits[None])
        scores = TemperatureLogitsWarper(temperature)(None, scores)
        if top_k:
            scores = TopKLogitsWarper(top_k)(None, scores)
        if top_p < 1.0:
            scores = TopPLogitsWarper(top_p)(None, scores)
        expect = torch.softmax(scores, -1)[0].numpy()
        got = processed_probs(logits, temperature, top_k, top_p)
        np.testing.assert_allclose(got, expect, atol=TOL["sampling_vs_hf"], rtol=0)
        assert np.array_equal(got > 0, expect > 0)
