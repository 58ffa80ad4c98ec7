"""safetensors checkpoints: tensors read back bit-identical to what the `safetensors` package wrote
(single file, sharded index, directory), header metadata, config.json -> ModelConfig, and the
JSON parser's value semantics (checked against Python's json module)."""
import json
import math

import numpy as np
import pytest

import fastspec

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def _bits(a):
    """Bit patterns of a float array, so NaN payloads and -0.0 compare exactly."""
    a = np.ascontiguousarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def _special(dtype):
    info = np.finfo(dtype)
    return np.array([0.0, -0.0, np.inf, -np.inf, np.nan, info.max, -info.max, info.tiny,
                     info.tiny * info.eps, 1.0, -2.5], dtype=dtype)  # tiny * eps: smallest subnormal


SHAPES = [(), (0,), (0, 3), (7,), (3, 5), (2, 3, 4), (1, 1, 1, 9)]


@pytest.mark.parametrize("dtype,type_name", [(np.float32, "F32"), (np.float16, "F16")])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_float_tensors_bit_identical(tmp_path, dtype, type_name, shape):
    rng = np.random.default_rng(1)
    a = rng.standard_normal(shape).astype(dtype)
    tensors = {"w": a, "special": _special(dtype)}
    p = tmp_path / "model.safetensors"
    safetensors_numpy.save_file(tensors, str(p))

    info = fastspec.inspect(p)
    assert info.format == "safetensors"
    for name, arr in tensors.items():
        spec = info.tensors[name]
        assert spec.shape == arr.shape and spec.type == type_name and spec.nbytes == arr.nbytes
        got = info.tensor(name)
        assert got.dtype == np.float32 and got.shape == arr.shape
        np.testing.assert_array_equal(_bits(got), _bits(arr.astype(np.float32)))
        assert info.raw(name).tobytes() == arr.tobytes()


def test_bf16_bit_identical(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    w = (torch.randn(5, 33, generator=g) * 100).to(torch.bfloat16)
    special = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1e-40, 3e38],
                           dtype=torch.bfloat16)
    p = tmp_path / "model.safetensors"
    save_file({"w": w, "special": special}, str(p))
    info = fastspec.inspect(p)
    for name, t in (("w", w), ("special", special)):
        assert info.tensors[name].type == "BF16" and info.tensors[name].shape == tuple(t.shape)
        want = t.float().numpy()
        np.testing.assert_array_equal(_bits(info.tensor(name)), _bits(want))
        assert info.raw(name).tobytes() == t.view(torch.int16).numpy().tobytes()


@pytest.mark.parametrize("dtype,type_name", [
    (np.int8, "I8"), (np.int16, "I16"), (np.int32, "I32"), (np.int64, "I64"), (np.uint8, "U8"),
    (np.bool_, "BOOL"), (np.float64, "F64")])
def test_other_dtypes_stored(tmp_path, dtype, type_name):
    rng = np.random.default_rng(2)
    if dtype == np.bool_:
        a = rng.integers(0, 2, size=(3, 8)).astype(np.bool_)
    elif dtype == np.float64:
        a = rng.standard_normal((3, 8))
    else:
        lim = np.iinfo(dtype)
        a = rng.integers(lim.min, lim.max, size=(3, 8), dtype=dtype, endpoint=True)
    p = tmp_path / "model.safetensors"
    safetensors_numpy.save_file({"x": a}, str(p))
    info = fastspec.inspect(p)
    assert info.tensors["x"].type == type_name and info.tensors["x"].shape == (3, 8)
    assert info.raw("x").tobytes() == a.tobytes()
    np.testing.assert_array_equal(info.tensor("x"), a.astype(np.float32))


def test_raw_is_readonly_view_and_offsets(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.arange(5, dtype=np.int32)
    p = tmp_path / "m.safetensors"
    safetensors_numpy.save_file({"a": a, "b": b}, str(p))
    info = fastspec.inspect(p)
    blob = p.read_bytes()
    for name, arr in (("a", a), ("b", b)):
        raw = info.raw(name)
        assert raw.dtype == np.uint8 and raw.shape == (arr.nbytes,) and not raw.flags.writeable
        spec = info.tensors[name]
        assert blob[spec.offset:spec.offset + spec.nbytes] == arr.tobytes()


def _write_sharded(tmp_path, config=None):
    rng = np.random.default_rng(3)
    shards = {
        "model-00001-of-00002.safetensors": {"embed": rng.standard_normal((6, 4)).astype(np.float16),
                                             "l0.w": rng.standard_normal((4, 4)).astype(np.float32)},
        "model-00002-of-00002.safetensors": {"l1.w": rng.standard_normal((4, 4)).astype(np.float32),
                                             "norm": np.ones(4, np.float32)},
    }
    weight_map = {}
    for fname, tensors in shards.items():
        safetensors_numpy.save_file(tensors, str(tmp_path / fname), metadata={"format": "pt"})
        weight_map.update({name: fname for name in tensors})
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    if config is not None:
        (tmp_path / "config.json").write_text(json.dumps(config))
    return {k: v for t in shards.values() for k, v in t.items()}


@pytest.mark.parametrize("via", ["index", "directory"])
def test_sharded_checkpoint(tmp_path, via):
    tensors = _write_sharded(tmp_path, config={"model_type": "llama", "hidden_size": 4,
                                               "num_attention_heads": 2, "num_hidden_layers": 2})
    path = tmp_path / "model.safetensors.index.json" if via == "index" else tmp_path
    info = fastspec.inspect(path)
    assert set(info.tensors) == set(tensors)
    for name, arr in tensors.items():
        np.testing.assert_array_equal(_bits(info.tensor(name)), _bits(arr.astype(np.float32)))
        assert info.raw(name).tobytes() == arr.tobytes()
    assert info.config.n_layers == 2 and info.config.family == "llama"
    assert info.metadata["safetensors.format"] == "pt" and info.metadata["hidden_size"] == 4


@pytest.mark.parametrize("name", ["model.safetensors", "weights.safetensors"])
def test_directory_with_single_file(tmp_path, name):
    a = np.arange(4, dtype=np.float32)
    safetensors_numpy.save_file({"a": a}, str(tmp_path / name), metadata={"k": "v"})
    info = fastspec.inspect(tmp_path)
    np.testing.assert_array_equal(info.tensor("a"), a)
    assert info.metadata == {"safetensors.k": "v"}  # no config.json: header metadata only
    assert info.config.architecture == "" and info.config.family == ""


# ---- config.json -> ModelConfig ------------------------------------------------------------------

SMOLLM2 = {  # HuggingFaceTB/SmolLM2-135M-Instruct (transformers 4 style)
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "bos_token_id": 1,
    "eos_token_id": 2, "head_dim": 64, "hidden_act": "silu", "hidden_size": 576,
    "intermediate_size": 1536, "max_position_embeddings": 8192, "model_type": "llama",
    "num_attention_heads": 9, "num_hidden_layers": 30, "num_key_value_heads": 3,
    "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 100000, "tie_word_embeddings": True,
    "torch_dtype": "bfloat16", "vocab_size": 49152}
QWEN2 = {  # Qwen/Qwen2.5-0.5B-Instruct
    "architectures": ["Qwen2ForCausalLM"], "hidden_size": 896, "intermediate_size": 4864,
    "max_position_embeddings": 32768, "max_window_layers": 21, "model_type": "qwen2",
    "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
    "tie_word_embeddings": True, "use_sliding_window": False, "vocab_size": 151936}
GEMMA3_4B = {  # google/gemma-3-4b-it: the text model nested, most fields left at their defaults
    "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
    "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
                    "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
                    "sliding_window": 1024},
    "vision_config": {"hidden_size": 1152, "model_type": "siglip_vision_model"}}
GEMMA3_270M = {  # google/gemma-3-270m (gemma3_text, transformers 4 style)
    "model_type": "gemma3_text", "hidden_size": 640, "intermediate_size": 2048, "head_dim": 256,
    "num_attention_heads": 4, "num_key_value_heads": 1, "num_hidden_layers": 18,
    "max_position_embeddings": 32768, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06,
    "rope_local_base_freq": 10000.0, "rope_scaling": None, "rope_theta": 1000000.0,
    "sliding_window": 512, "sliding_window_pattern": 6, "final_logit_softcapping": None,
    "attn_logit_softcapping": None, "vocab_size": 262144}
LLAMA31 = {  # meta-llama/Llama-3.1-8B-Instruct
    "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
    "max_position_embeddings": 131072, "num_attention_heads": 32, "num_hidden_layers": 32,
    "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "tie_word_embeddings": False, "vocab_size": 128256}
MISTRAL = {"model_type": "mistral", "hidden_size": 4096, "num_attention_heads": 32,
           "num_hidden_layers": 32, "num_key_value_heads": 8, "sliding_window": 4096,
           "rope_scaling": {"type": "linear", "factor": 2.0}}

CONFIG_CASES = {
    "smollm2": (SMOLLM2, dict(
        architecture="llama", family="llama", n_layers=30, n_embd=576, n_heads=9, n_kv_heads=3,
        head_dim=64, n_ff=1536, vocab_size=49152, context_length=8192, rope_theta=100000.0,
        rope_dim=64, norm_eps=1e-5, tied_embeddings=True, qkv_bias=False, sliding_window=0,
        rope_pairs_adjacent=False, norm_weight_plus_one=False), {"type": ""}),
    "qwen2": (QWEN2, dict(
        architecture="qwen2", family="llama", n_layers=24, n_embd=896, n_heads=14, n_kv_heads=2,
        head_dim=64, n_ff=4864, vocab_size=151936, context_length=32768, rope_theta=1e6,
        norm_eps=1e-6, tied_embeddings=True, qkv_bias=True, sliding_window=0), {"type": ""}),
    "gemma3_nested": (GEMMA3_4B, dict(
        architecture="gemma3", family="gemma3", n_layers=34, n_embd=2560, n_heads=8, n_kv_heads=4,
        head_dim=256, n_ff=10240, vocab_size=262208, context_length=131072, rope_theta=1e6,
        rope_local_theta=10000.0, norm_eps=1e-6, tied_embeddings=True, sliding_window=1024,
        sliding_window_pattern=6, query_pre_attn_scalar=256.0, final_logit_softcap=0.0,
        attn_logit_softcap=0.0, norm_weight_plus_one=False), {"type": "linear", "factor": 8.0}),
    "gemma3_text": (GEMMA3_270M, dict(
        architecture="gemma3_text", family="gemma3", n_layers=18, n_embd=640, n_heads=4,
        n_kv_heads=1, head_dim=256, rope_dim=256, n_ff=2048, vocab_size=262144,
        context_length=32768, rope_theta=1e6, rope_local_theta=10000.0, sliding_window=512,
        sliding_window_pattern=6, query_pre_attn_scalar=256.0, tied_embeddings=True), {"type": ""}),
    "llama3_rope": (LLAMA31, dict(
        architecture="llama", family="llama", n_kv_heads=8, head_dim=128, rope_theta=500000.0,
        norm_eps=1e-5, context_length=131072, tied_embeddings=False),
        {"type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
         "original_context": 8192}),
    "mistral": (MISTRAL, dict(
        architecture="mistral", family="llama", n_kv_heads=8, head_dim=128, n_ff=14336,
        sliding_window=4096, sliding_window_pattern=0, vocab_size=32000),
        {"type": "linear", "factor": 2.0}),
    "unknown": ({"model_type": "phi3", "hidden_size": 3072, "num_hidden_layers": "oops"}, dict(
        architecture="phi3", family="", n_embd=3072, n_layers=0), {"type": ""}),
}


def _check_config(cfg, fields, rope):
    for k, v in fields.items():
        got = getattr(cfg, k)
        assert (got == pytest.approx(v)) if isinstance(v, float) else (got == v), (k, got, v)
    for k, v in rope.items():
        assert cfg.rope_scaling[k] == v, (k, cfg.rope_scaling)


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_config_from_hf(tmp_path, case):
    config, fields, rope = CONFIG_CASES[case]
    safetensors_numpy.save_file({"w": np.zeros(2, np.float32)}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(config))
    info = fastspec.inspect(tmp_path)
    _check_config(info.config, fields, rope)
    # config.json's top-level entries are the metadata (nested objects kept as dicts).
    assert {k: info.metadata[k] for k in config} == config


def _transformers_configs():
    """Configs written by transformers itself (v5 writes rope_parameters and layer_types)."""
    tf = pytest.importorskip("transformers")
    yield "llama3", tf.LlamaConfig(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
        max_position_embeddings=16384, rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}), dict(
        family="llama", n_heads=4, n_kv_heads=2, head_dim=16, rope_theta=500000.0), {
        "type": "llama3", "factor": 8.0, "original_context": 8192}
    yield "gemma3_text", tf.Gemma3TextConfig(
        hidden_size=64, num_attention_heads=2, num_key_value_heads=1, head_dim=32,
        num_hidden_layers=12, sliding_window=128, vocab_size=100), dict(
        family="gemma3", n_layers=12, head_dim=32, sliding_window=128, sliding_window_pattern=6,
        rope_theta=1e6, rope_local_theta=10000.0, tied_embeddings=True), {"type": ""}
    yield "qwen2", tf.Qwen2Config(hidden_size=64, num_attention_heads=4, num_key_value_heads=4,
                                  num_hidden_layers=2, tie_word_embeddings=True), dict(
        family="llama", qkv_bias=True, tied_embeddings=True, head_dim=16), {"type": ""}


@pytest.mark.parametrize("case", ["llama3", "gemma3_text", "qwen2"])
def test_config_written_by_transformers(tmp_path, case):
    _, hf, fields, rope = next(c for c in _transformers_configs() if c[0] == case)
    hf.to_json_file(str(tmp_path / "config.json"))
    safetensors_numpy.save_file({"w": np.zeros(2, np.float32)}, str(tmp_path / "model.safetensors"))
    cfg = fastspec.inspect(tmp_path).config
    _check_config(cfg, dict(fields, n_embd=hf.hidden_size, n_layers=hf.num_hidden_layers,
                            n_ff=hf.intermediate_size, vocab_size=hf.vocab_size,
                            context_length=hf.max_position_embeddings, norm_eps=hf.rms_norm_eps),
                  rope)


# ---- JSON value semantics -----------------------------------------------------------------------

JSON_DOCS = [
    '{"a": [1, -2, 3.5, 1e-06, -0.0, 2E+3, true, false, null], "b": {"c": {"d": []}}, "e": {}}',
    '{"s": "tab\\t nl\\n quote\\" bs\\\\ slash\\/ \\b\\f\\r", "u": "\\u00e9\\u4e2d\\ud83d\\ude00"}',
    '{"raw": "é中😀 plain UTF-8", "": "empty key", "ws": 1}   \n\t ',
    '{"i64max": 9223372036854775807, "i64min": -9223372036854775808, "u64max": 18446744073709551615}',
    '{"deep": ' + "[" * 200 + "]" * 200 + "}",
]


@pytest.mark.parametrize("doc", JSON_DOCS, ids=range(len(JSON_DOCS)))
def test_json_values_match_python(tmp_path, doc):
    safetensors_numpy.save_file({"w": np.zeros(1, np.float32)}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(doc, encoding="utf-8")
    assert fastspec.inspect(tmp_path).metadata == json.loads(doc)


@pytest.mark.parametrize("text,want", [
    ("18446744073709551616", 18446744073709551616.0),     # past uint64: a float
    ("-9223372036854775809", -9223372036854775809.0),     # past int64: a float
    ("123456789012345678901234567890", 1.2345678901234568e29),
    ("1e400", math.inf), ("-1e400", -math.inf), ("1e-400", 0.0), ("4.9e-324", 5e-324),
    ("0.1", 0.1), ("2.2250738585072014e-308", 2.2250738585072014e-308),
])
def test_json_number_overflow_becomes_float(tmp_path, text, want):
    safetensors_numpy.save_file({"w": np.zeros(1, np.float32)}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text('{"x": %s}' % text)
    got = fastspec.inspect(tmp_path).metadata["x"]
    assert isinstance(got, float) and got == want


def test_header_metadata_unicode(tmp_path):
    p = tmp_path / "model.safetensors"
    meta = {"format": "pt", "name": "é 中 😀", "quote\"key": "a\\b\n"}
    safetensors_numpy.save_file({"w": np.zeros(1, np.float32)}, str(p), metadata=meta)
    info = fastspec.inspect(p)
    assert info.metadata == {"safetensors." + k: v for k, v in meta.items()}


def _random_json_value(rnd, depth=0):
    k = rnd.randrange(7 if depth < 5 else 4)
    if k == 0:
        return rnd.choice([None, True, False])
    if k == 1:
        return rnd.randint(-2**70, 2**70) if rnd.random() < 0.5 else rnd.randint(-1000, 1000)
    if k == 2:
        return rnd.uniform(-1.0, 1.0) * 10.0 ** rnd.randint(-320, 300)
    if k == 3:
        ranges = [(32, 127), (0, 32), (0x80, 0xD7FF), (0xE000, 0xFFFF), (0x10000, 0x10FFFF)]
        return "".join(chr(rnd.randrange(*rnd.choice(ranges))) for _ in range(rnd.randrange(10)))
    if k in (4, 5):
        return [_random_json_value(rnd, depth + 1) for _ in range(rnd.randrange(5))]
    return {f"k{i}": _random_json_value(rnd, depth + 1) for i in range(rnd.randrange(5))}


def _as_parsed(v):
    """What fastspec yields for a Python value: integers past int64/uint64 become floats."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return v if -2**63 <= v < 2**64 else float(v)
    if isinstance(v, list):
        return [_as_parsed(x) for x in v]
    if isinstance(v, dict):
        return {k: _as_parsed(x) for k, x in v.items()}
    return v


@pytest.mark.parametrize("seed", range(5))
def test_json_random_documents_match_python(tmp_path, seed):
    import random
    rnd = random.Random(seed)
    doc = {f"v{i}": _random_json_value(rnd) for i in range(40)}
    safetensors_numpy.save_file({"w": np.zeros(1, np.float32)}, str(tmp_path / "model.safetensors"))
    text = json.dumps(doc, ensure_ascii=seed % 2 == 0, indent=rnd.choice([None, 1]))
    (tmp_path / "config.json").write_bytes(text.encode("utf-8"))
    assert fastspec.inspect(tmp_path).metadata == _as_parsed(json.loads(text))


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma3_text"])
def test_checkpoint_saved_by_transformers(tmp_path, arch):
    """A tiny random model written by transformers' save_pretrained: every state_dict tensor is
    read back bit-identical, and the config (incl. qwen2's q/k/v biases) matches."""
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("transformers")
    torch.manual_seed(0)
    common = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=50, max_position_embeddings=128)
    if arch == "llama":
        cfg = tf.LlamaConfig(**common, tie_word_embeddings=False)
        model = tf.LlamaForCausalLM(cfg)
    elif arch == "qwen2":
        cfg = tf.Qwen2Config(**common, tie_word_embeddings=True)
        model = tf.Qwen2ForCausalLM(cfg)
    else:
        cfg = tf.Gemma3TextConfig(**common, head_dim=16, sliding_window=16)
        model = tf.Gemma3ForCausalLM(cfg)
    model = model.to(torch.bfloat16 if arch == "qwen2" else torch.float32)
    model.save_pretrained(str(tmp_path), safe_serialization=True)

    info = fastspec.inspect(tmp_path)
    c = info.config
    assert (c.architecture, c.n_layers, c.n_embd, c.n_heads, c.n_kv_heads, c.n_ff, c.vocab_size) == \
        (arch, 2, 32, 4, 2, 64, 50)
    assert c.family == ("gemma3" if arch == "gemma3_text" else "llama")
    assert c.qkv_bias == (arch == "qwen2")
    assert c.tied_embeddings == (arch != "llama")
    state = {k: v for k, v in model.state_dict().items()}
    if c.tied_embeddings:
        state.pop("lm_head.weight", None)  # save_pretrained drops the tied copy
    assert set(info.tensors) == set(state)
    if arch == "qwen2":
        assert info.tensors["model.layers.0.self_attn.q_proj.bias"].shape == (32,)
    for name, t in state.items():
        want = t.float().numpy()
        np.testing.assert_array_equal(_bits(info.tensor(name)), _bits(want), err_msg=name)
