"""AWQ checkpoints the engine cannot run are refused with a fastspec.ModelError that names the packed
tensor, its shape, the setting and what is supported (io/awq_config.cpp, model/transformer.cpp);
mismatched part shapes name all three parts (test_awq.py::test_awq_bad_parts covers each)."""
import json

import numpy as np
import pytest

import tiny_models as tm

import fastspec

SUPPORTED = r"\(supported: quant_method awq, bits 4, version gemm, zero_point true, group_size dividing in_features"
QW = r"tensor 'model\.layers\.0\.self_attn\.q_proj\.qweight' I32 \[64, 8\] is a packed quantized weight fastspec cannot run: "


@pytest.fixture(scope="module")
def rtn_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("awqcfg")
    cfg = tm.tiny_config("llama")
    tm.write_safetensors_checkpoint(d / "fp", cfg, tm.random_weights(cfg, seed=4))
    fastspec.quantize(d / "fp", d / "q", "rtn", group=32, progress=False)
    return d / "q"


def _variant(src, dst, edit):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).symlink_to(f)
    (dst / "config.json").unlink()
    config = json.loads((src / "config.json").read_text())
    edit(config["quantization_config"], config)
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def test_quantize_output_runs(rtn_dir):
    eng = fastspec.Engine(rtn_dir, threads=1, context=32)
    assert len(eng.generate("the cat", max_tokens=4).tokens) == 4


CASES = [
    ("bits8", lambda q, c: q.update(bits=8), r"quantization_config\.bits is 8"),
    ("gemv", lambda q, c: q.update(version="GEMV"), r"quantization_config\.version is 'gemv'"),
    ("no_zero_point", lambda q, c: q.update(zero_point=False), r"quantization_config\.zero_point is false"),
    ("gptq", lambda q, c: q.update(quant_method="gptq"), r"quantization_config\.quant_method is 'gptq'"),
    ("no_bits", lambda q, c: q.pop("bits"), r"quantization_config has no 'bits' \(or 'w_bit'\)"),
    ("no_group", lambda q, c: q.pop("group_size"), r"quantization_config has no 'group_size' \(or 'q_group_size'\)"),
    ("no_method", lambda q, c: q.pop("quant_method"), r"quantization_config has no 'quant_method' string"),
    ("no_config", lambda q, c: c.pop("quantization_config"), r"config\.json has no quantization_config"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_unsupported_settings_refused_at_load(rtn_dir, tmp_path, case):
    _, edit, reason = case
    d = _variant(rtn_dir, tmp_path / "v", edit)
    info = fastspec.inspect(d)  # inspecting still works: the packed parts are plain tensors
    assert info.tensors["model.layers.0.self_attn.q_proj.qweight"].type == "I32"
    assert "model.layers.0.self_attn.q_proj.weight" not in info.tensors
    with pytest.raises(fastspec.ModelError, match=QW + reason + " " + SUPPORTED):
        fastspec.Engine(d, threads=1, context=32)


def test_w_bit_and_q_group_size_spellings(rtn_dir, tmp_path):
    def old_spelling(q, c):
        q["w_bit"], q["q_group_size"] = q.pop("bits"), q.pop("group_size")
    d = _variant(rtn_dir, tmp_path / "v", old_spelling)
    np.testing.assert_array_equal(fastspec.Engine(d, threads=1, context=32).logits([5, 6]),
                                  fastspec.Engine(rtn_dir, threads=1, context=32).logits([5, 6]))


def test_group_size_not_dividing_in_features(rtn_dir, tmp_path):
    d = _variant(rtn_dir, tmp_path / "v", lambda q, c: q.update(group_size=48))
    with pytest.raises(fastspec.ModelError, match=r"AWQ tensor 'model\.layers\.\d\.[a-z_.]+\.qweight': in_features "
                                                  r"\d+ is not a multiple of group_size 48"):
        fastspec.Engine(d, threads=1, context=32)


def test_group_size_disagreeing_with_the_parts(rtn_dir, tmp_path):
    d = _variant(rtn_dir, tmp_path / "v", lambda q, c: q.update(group_size=64))
    with pytest.raises(fastspec.ModelError, match=r"scales shape should be \[1, \d+\] \(qweight \[64, \d+\], qzeros "
                                                  r"\[2, \d+\], scales \[2, \d+\], group_size 64\)"):
        fastspec.inspect(d)
