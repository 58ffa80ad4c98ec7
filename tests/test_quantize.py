"""`fastspec quantize`: the AutoAWQ GEMM packer (round trips, against test_awq's independent packer),
the AWQ search beating round-to-nearest on the layers' outputs over calibration activations, the
checkpoints loading into the engine (logits vs the reference forward on the dequantized weights;
greedy identical with and without speculation), and bad input refused before any work."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import test_awq as ref_awq  # noqa: E402  (the independent numpy packer written from AutoAWQ's code)
import tiny_models as tm  # noqa: E402
from reference import reference_model  # noqa: E402

import fastspec  # noqa: E402
from fastspec import awq_pack, cli  # noqa: E402

torch.set_num_threads(1)
GROUP = 32
CALIB = dict(n_samples=6, seqlen=64, search_tokens=128)


# ---- packing ------------------------------------------------------------------------------------

def test_pack_unpack_round_trip_and_layout():
    rng = np.random.default_rng(0)
    q = rng.integers(0, 16, size=(7, 40))
    packed = awq_pack.pack(q)
    assert packed.dtype == np.int32 and packed.shape == (7, 5)
    np.testing.assert_array_equal(packed, ref_awq.awq_pack(q))
    np.testing.assert_array_equal(awq_pack.unpack(packed), q)
    np.testing.assert_array_equal(ref_awq.awq_unpack(packed), q)
    one = np.zeros((1, 8), np.int64)
    one[0, 2] = 9  # value 2 lives in nibble 1 (AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7])
    assert awq_pack.pack(one).view(np.uint32)[0, 0] == 9 << 4
    with pytest.raises(ValueError, match="multiple of 8"):
        awq_pack.pack(q[:, :12])
    with pytest.raises(ValueError, match="0..15"):
        awq_pack.pack(q + 1)


def test_rtn_grid_and_loader_agree(tmp_path):
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((48, 128)) * np.array([1.0, 5.0])[rng.integers(0, 2, 128)]).astype(np.float32)
    q, z, s = awq_pack.quantize_rtn(w, GROUP)
    assert q.shape == (128, 48) and z.shape == s.shape == (4, 48) and s.dtype == np.float16
    deq = awq_pack.dequantize(q, z, s, GROUP)
    step = np.repeat(s.astype(np.float32), GROUP, axis=0).T
    assert (np.abs(deq - w) <= step * 0.5 + 1e-6).mean() > 0.99  # round to nearest on the grid
    parts = awq_pack.pack_linear(w, GROUP)
    np.testing.assert_array_equal(awq_pack.unpack_linear(*parts, GROUP), deq)
    np.testing.assert_array_equal(ref_awq.awq_dequantize(*parts, GROUP), deq)
    # and the core's loader reads the same matrix
    layers = {"model.layers.0.self_attn.q_proj": (q, z, s)}
    ref_awq.write_awq_checkpoint(tmp_path, layers, GROUP)
    np.testing.assert_array_equal(fastspec.inspect(tmp_path).tensor("model.layers.0.self_attn.q_proj.weight"), deq)


# ---- a tiny model with activation outliers --------------------------------------------------------

def outlier_model(d, seed=3):
    """A tiny llama whose RMSNorm weights have a few large channels, as real LLMs' activations do."""
    cfg = tm.tiny_config("llama", hidden=64, intermediate=128, vocab=320)
    w = tm.random_weights(cfg, seed=seed)
    rng = np.random.default_rng(seed)
    for l in range(cfg["num_hidden_layers"]):
        for n in ("input_layernorm", "post_attention_layernorm"):
            v = w[f"model.layers.{l}.{n}.weight"]
            v[rng.choice(64, 4, replace=False)] *= 12.0
    w["model.norm.weight"] = w["model.norm.weight"] * 2.0  # peaked enough for drafts to be accepted
    stored = tm.write_safetensors_checkpoint(d, cfg, w, dtype="F32")
    return cfg, stored


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    d = tmp_path_factory.mktemp("quant")
    cfg, stored = outlier_model(d / "fp")
    res = {m: fastspec.quantize(d / "fp", d / m, m, group=GROUP, progress=False, **CALIB) for m in ("awq", "rtn")}
    return d, cfg, stored, res


def test_awq_layer_error_below_rtn(quantized):
    _, cfg, _, res = quantized
    errs = res["awq"].errors
    assert set(errs) == {f"{l}.{g}" for l in range(2) for g in ("qkv", "o", "gate_up", "down")}
    for name, (rtn, awq) in errs.items():
        assert awq <= rtn * 1.001, (name, rtn, awq)
    assert sum(a for _, a in errs.values()) < 0.8 * sum(r for r, _ in errs.values())
    assert res["rtn"].errors == {}


def test_awq_beats_rtn_independently_on_layer0(quantized):
    """Layer 0's q/k/v outputs on calibration tokens, computed here in numpy from each checkpoint's
    stored (dequantized) weights -- AWQ's scaled RMSNorm included -- vs the float checkpoint."""
    d, cfg, stored, _ = quantized
    from fastspec import calibration

    tok = fastspec.Tokenizer.from_dir(d / "fp")
    ids = calibration.windows(tok, calibration.read_text(), 6, 64).reshape(-1)

    def qkv(path):
        info = fastspec.inspect(path)
        x = info.tensor("model.embed_tokens.weight")[ids].astype(np.float64)
        h = x / np.sqrt((x * x).mean(-1, keepdims=True) + cfg["rms_norm_eps"])
        h = h * info.tensor("model.layers.0.input_layernorm.weight")
        return np.concatenate([h @ info.tensor(f"model.layers.0.self_attn.{n}_proj.weight").T for n in "qkv"], 1)

    want = qkv(d / "fp")
    err = {m: ((qkv(d / m) - want) ** 2).mean() for m in ("awq", "rtn")}
    assert err["awq"] < 0.8 * err["rtn"], err
    info = fastspec.inspect(d / "awq")
    assert info.tensors["model.layers.0.self_attn.q_proj.weight"].type == "AWQ_INT4"
    assert info.tensors["model.layers.0.input_layernorm.weight"].type == "F16"


def test_checkpoint_layout_and_config(quantized):
    d, cfg, _, _ = quantized
    for m in ("awq", "rtn"):
        config = json.loads((d / m / "config.json").read_text())
        assert config["quantization_config"] == {"quant_method": "awq", "bits": 4, "group_size": GROUP,
                                                 "zero_point": True, "version": "gemm",
                                                 "modules_to_not_convert": None}
        info = fastspec.inspect(d / m)
        p = "model.layers.1.mlp.down_proj"
        assert info.tensors[p + ".qweight"].shape == (128, 8) and info.tensors[p + ".qweight"].type == "I32"
        assert info.tensors[p + ".qzeros"].shape == (4, 8)
        assert info.tensors[p + ".scales"].shape == (4, 64) and info.tensors[p + ".scales"].type == "F16"
        assert (d / m / "tokenizer.json").is_file() and (d / m / "tokenizer_config.json").is_file()


@pytest.mark.parametrize("method", ["awq", "rtn"])
def test_engine_logits_match_reference_on_dequantized_weights(quantized, method):
    d, cfg, _, _ = quantized
    info = fastspec.inspect(d / method)
    deq = {n: info.tensor(n) for n, t in info.tensors.items() if t.type in ("AWQ_INT4", "F16")}
    eng = fastspec.Engine(d / method, threads=1, context=64, precision="f32", kv_type="f32")
    ids = eng.tokenize("the cat and the dog are in the house")
    want = reference_model(deq, cfg).forward(ids, start=0).double().numpy()
    np.testing.assert_allclose(eng.logits(ids), want, atol=1e-3, rtol=0)  # outlier channels: logits ~10


@pytest.mark.parametrize("draft", ["ngram", "rtn"])
@pytest.mark.parametrize("k", [2, None], ids=lambda k: f"k{k}")
@pytest.mark.parametrize("precision", ["q8", "f32"])
def test_awq_greedy_identical_with_speculation(quantized, draft, k, precision):
    d, _, _, _ = quantized
    opts = dict(threads=1, context=128, precision=precision)
    plain = fastspec.Engine(d / "awq", **opts)
    spec = fastspec.Engine(d / "awq", draft="ngram" if draft == "ngram" else str(d / draft), k=k, **opts)
    drafted = 0
    for prompt in ("the cat and the cat and the cat and the", "a"):
        want = plain.generate(prompt, max_tokens=40)
        got = spec.generate(prompt, max_tokens=40)
        assert got.tokens == want.tokens, prompt
        drafted += got.stats["drafted"]
    if k is not None:
        assert drafted > 0


def test_cli_quantize_rtn(quantized, tmp_path):
    d, _, _, _ = quantized
    assert cli.main(["quantize", str(d / "fp"), str(tmp_path / "q"), "--method", "rtn", "--group", "64"]) == 0
    assert json.loads((tmp_path / "q" / "config.json").read_text())["quantization_config"]["group_size"] == 64


# ---- bad input: refused before any work ------------------------------------------------------------

def test_bad_input(quantized, tmp_path):
    d, _, _, _ = quantized
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"tensor 'model.layers.0.self_attn.q_proj.weight' \[64, 64\]: in_features 64 "
                                         r"is not a multiple of group_size 48"):
        fastspec.quantize(d / "fp", out, "rtn", group=48, progress=False)
    with pytest.raises(ValueError, match="unknown method 'gptq'"):
        fastspec.quantize(d / "fp", out, "gptq")
    short = tmp_path / "short.txt"
    short.write_text("a few words only")
    with pytest.raises(ValueError, match=r"short.txt: \d+ tokens, too short for 6 samples of 64 tokens \(384 needed\)"):
        fastspec.quantize(d / "fp", out, "awq", calib=str(short), group=GROUP, progress=False, **CALIB)
    with pytest.raises(ValueError, match="already an AWQ checkpoint"):
        fastspec.quantize(d / "awq", out, "rtn", group=GROUP)
    with pytest.raises(ValueError, match="not a Hugging Face checkpoint folder"):
        fastspec.quantize(tmp_path / "nothing", out, "rtn")
    g = tm.tiny_config("gemma3")
    tm.write_safetensors_checkpoint(tmp_path / "gemma", g, tm.random_weights(g, seed=1))
    with pytest.raises(ValueError, match="quantize supports the llama family.*'gemma3_text'"):
        fastspec.quantize(tmp_path / "gemma", out, "awq", group=GROUP, progress=False)
    assert not out.exists()  # nothing was written
    assert cli.main(["quantize", str(d / "fp"), str(out), "--method", "rtn", "--group", "48"]) == 2


# ---- the real model ---------------------------------------------------------------------------------

@pytest.mark.real_model
@pytest.mark.slow
def test_smollm2_int4_greedy_identical_with_speculation(smollm2_path, tmp_path):
    """SmolLM2 exported and quantized (RTN, group 64: the same checkpoint layout AWQ writes; the AWQ
    search itself takes minutes, see bench/perplexity_awq.py), greedy with and without speculation."""
    fastspec.export(smollm2_path, tmp_path / "f16", progress=None)
    fastspec.quantize(tmp_path / "f16", tmp_path / "q", "rtn", group=64, progress=False)
    prompt = "<|im_start|>user\nRewrite with type hints: def add(a, b): return a + b<|im_end|>\n<|im_start|>assistant\n"
    plain = fastspec.Engine(tmp_path / "q", threads=2, context=512)
    want = plain.generate(prompt, max_tokens=48).tokens
    assert len(want) > 8
    for draft in ("ngram", smollm2_path):
        eng = fastspec.Engine(tmp_path / "q", draft=draft, threads=2, context=512)
        assert eng.generate(prompt, max_tokens=48).tokens == want, draft
