"""`fastspec export`: GGUF -> Hugging Face checkpoint. The exported weights equal what the GGUF holds
(dequantized, Q/K un-permuted, Gemma norms minus 1: tiny_models.write_gguf returns exactly those), and
transformers on the export gives the logits fastspec computes on the GGUF (precision f32)."""
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import tiny_models as tm  # noqa: E402

import fastspec  # noqa: E402
from fastspec import cli  # noqa: E402

torch.set_num_threads(1)
transformers.logging.set_verbosity_error()
TEXT = "the cat is in the house, and the dog is in the garden. <|im_start|>user\nhello<|im_end|>"
LOGIT_ATOL = 1e-4  # tiny models, float32 on both sides: summation order only


def _engine_logits(path, ids):
    return fastspec.Engine(path, threads=1, context=128, precision="f32", kv_type="f32").logits(ids)


def _hf_logits(d, ids):
    model = transformers.AutoModelForCausalLM.from_pretrained(str(d), dtype=torch.float32).eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].numpy()


@pytest.mark.parametrize("arch,qtype", [("llama", "Q8_0"), ("llama", "F32"), ("qwen2", "Q4_0"), ("gemma3", "Q8_0")])
def test_export_matches_gguf_and_transformers(tmp_path, arch, qtype):
    cfg = tm.tiny_config(arch)
    deq = tm.write_gguf(tmp_path / "m.gguf", cfg, tm.random_weights(cfg, seed=5), qtype=qtype)
    out = tmp_path / "hf"
    sizes = fastspec.export(str(tmp_path / "m.gguf"), out, dtype="f32", progress=None)

    info = fastspec.inspect(out)
    assert info.format == "safetensors"
    assert set(info.tensors) == set(sizes) == set(deq)
    for name, want in deq.items():
        assert info.tensors[name].type == "F32"
        np.testing.assert_array_equal(info.tensor(name), want, err_msg=name)

    tok = fastspec.Tokenizer.from_model(tmp_path / "m.gguf")
    ids = tok.encode(TEXT)
    assert fastspec.Tokenizer.from_dir(out).encode(TEXT) == ids
    assert transformers.AutoTokenizer.from_pretrained(str(out))(TEXT)["input_ids"] == ids
    tc = json.loads((out / "tokenizer_config.json").read_text())
    assert tc["chat_template"] == tm.CHAT_TEMPLATE

    want = _engine_logits(str(tmp_path / "m.gguf"), ids)
    np.testing.assert_allclose(_hf_logits(out, ids), want, atol=LOGIT_ATOL, rtol=0)
    np.testing.assert_allclose(_engine_logits(str(out), ids), want, atol=LOGIT_ATOL, rtol=0)


@pytest.mark.parametrize("dtype,st", [("f16", "F16"), ("bf16", "BF16")])
def test_export_half_types(tmp_path, dtype, st):
    cfg = tm.tiny_config("llama")
    deq = tm.write_gguf(tmp_path / "m.gguf", cfg, tm.random_weights(cfg, seed=2), qtype="F16")
    assert cli.main(["export", str(tmp_path / "m.gguf"), str(tmp_path / "hf"), "--dtype", dtype]) == 0
    info = fastspec.inspect(tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["torch_dtype"] == {"f16": "float16", "bf16": "bfloat16"}[dtype]
    for name, want in deq.items():
        assert info.tensors[name].type == st
        np.testing.assert_array_equal(info.tensor(name), tm.round_to(want, st)[0], err_msg=name)
    assert oct(os.stat(tmp_path / "hf" / "model.safetensors").st_mode & 0o777) != "0o600"


def test_export_bad_input(tmp_path):
    cfg = tm.tiny_config("llama")
    w = tm.random_weights(cfg, seed=1)
    tm.write_safetensors_checkpoint(tmp_path / "st", cfg, w)
    with pytest.raises(ValueError, match="not a GGUF file"):
        fastspec.export(tmp_path / "st", tmp_path / "out", progress=None)
    tm.write_gguf(tmp_path / "m.gguf", cfg, w)
    with pytest.raises(ValueError, match="unknown dtype 'q4'"):
        fastspec.export(tmp_path / "m.gguf", tmp_path / "out", dtype="q4")
    cfg3 = tm.tiny_config("llama", rope_scaling=tm.LLAMA3_ROPE_SCALING)
    tm.write_gguf(tmp_path / "l3.gguf", cfg3, tm.random_weights(cfg3, seed=1))
    with pytest.raises(ValueError, match="rope_freqs.weight"):
        fastspec.export(tmp_path / "l3.gguf", tmp_path / "out", progress=None)
    assert cli.main(["export", str(tmp_path / "l3.gguf"), str(tmp_path / "out")]) == 2


@pytest.mark.real_model
@pytest.mark.slow
def test_export_smollm2_matches_transformers(smollm2_path, tmp_path):
    out = tmp_path / "smollm2"
    fastspec.export(smollm2_path, out, dtype="f32", progress=None)
    tok = fastspec.Tokenizer.from_model(out)
    ids = tok.encode("The three most important inventions of the twentieth century were the")
    assert ids == fastspec.Tokenizer.from_model(smollm2_path).encode(
        "The three most important inventions of the twentieth century were the")
    want = _engine_logits(smollm2_path, ids)
    got = _hf_logits(out, ids)
    assert np.abs(got - want).max() < 2e-2  # test_real_smollm2's LOGIT_ATOL
    assert (got.argmax(-1) == want.argmax(-1)).all()
