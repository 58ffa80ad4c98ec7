"""`fastspec convert`: GGUF -> GGUF in F16 / Q8_0 / Q4_0, metadata and tensor order kept."""
import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf.quants import dequantize, quantize  # noqa: E402

import fastspec  # noqa: E402
import tiny_models as tm  # noqa: E402
from fastspec import cli  # noqa: E402
from fastspec.convert import TYPES, convert  # noqa: E402

FILE_TYPE = "general.file_type"


def _fields(path):
    """{key: (GGUF value types, python value)} as the gguf package reads them."""
    def value(f):
        try:
            return f.contents()
        except UnicodeDecodeError:  # contents() decodes strings strictly; compare the bytes then
            return f.parts[-1].tobytes()

    r = gguf.GGUFReader(str(path))
    return {k: ([t.name for t in f.types], value(f)) for k, f in r.fields.items() if not k.startswith("GGUF.")}


def _expected(arr, type_name):
    """What the converted tensor must dequantize to: gguf's own quantize + dequantize."""
    qt = gguf.GGMLQuantizationType[type_name]
    return dequantize(quantize(arr, qt), qt).reshape(arr.shape)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    d = tmp_path_factory.mktemp("convert")
    cfg = tm.tiny_config("llama")
    tm.write_gguf(d / "src.gguf", cfg, tm.random_weights(cfg, seed=3), qtype="Q4_1")
    return d / "src.gguf"


@pytest.mark.parametrize("typ", list(TYPES))
def test_convert_metadata_tensors_and_values(tiny_llama, tmp_path, typ):
    out = tmp_path / f"out.{typ}.gguf"
    counts = convert(tiny_llama, out, typ, progress=None)
    qname = TYPES[typ][0]

    src_f, out_f = _fields(tiny_llama), _fields(out)
    assert list(out_f) == list(src_f)  # same keys, same order
    for k in src_f:
        if k != FILE_TYPE:
            assert out_f[k] == src_f[k], k  # exact value types and values
    assert out_f[FILE_TYPE] == (["UINT32"], int(gguf.LlamaFileType[TYPES[typ][1]]))
    a, b = fastspec.inspect(tiny_llama), fastspec.inspect(out)
    assert {k: v for k, v in b.metadata.items() if k != FILE_TYPE} == \
        {k: v for k, v in a.metadata.items() if k != FILE_TYPE}

    assert list(b.tensors) == list(a.tensors)
    for name, spec in a.tensors.items():
        got = b.tensors[name]
        want_type = qname if len(spec.shape) == 2 else "F32"
        assert (got.shape, got.type) == (spec.shape, want_type), name
        src = a.tensor(name)
        want = src if want_type == "F32" else _expected(src, want_type)
        assert np.array_equal(b.tensor(name), want), name  # bit for bit (no NaNs here)
        if want_type != "F32":
            stored = quantize(src, gguf.GGMLQuantizationType[want_type]).view(np.uint8).ravel()
            assert np.array_equal(b.raw(name), stored), name
    assert counts == {qname: 16, "F32": 5}


@pytest.mark.parametrize("typ", list(TYPES))
def test_converted_model_runs_and_f16_logits_match(tiny_llama, tmp_path, typ):
    out = tmp_path / f"out.{typ}.gguf"
    convert(tiny_llama, out, typ, progress=None)
    eng = fastspec.Engine(str(out), threads=1)
    g = eng.generate([0, 5, 9, 17, 3], max_tokens=6)
    assert len(g.tokens) >= 1
    if typ == "f16":  # conversion fidelity: compare in the float32 reference precision
        ids = [0, 5, 9, 17, 3, 44, 101]
        ref = fastspec.Engine(str(tiny_llama), threads=1, precision="f32").logits(ids)
        got = fastspec.Engine(str(out), threads=1, precision="f32").logits(ids)
        np.testing.assert_allclose(got, ref, atol=1e-2, rtol=0)


def test_gemma3_tied_embeddings(tmp_path):
    cfg = tm.tiny_config("gemma3")
    tm.write_gguf(tmp_path / "g.gguf", cfg, tm.random_weights(cfg, seed=1), qtype="Q8_0")
    convert(tmp_path / "g.gguf", tmp_path / "g4.gguf", "q4_0", progress=None)
    a, b = fastspec.inspect(tmp_path / "g.gguf"), fastspec.inspect(tmp_path / "g4.gguf")
    assert "output.weight" not in b.tensors and b.tensors["token_embd.weight"].type == "Q4_0"
    assert np.array_equal(b.tensor("token_embd.weight"), _expected(a.tensor("token_embd.weight"), "Q4_0"))
    assert len(fastspec.Engine(str(tmp_path / "g4.gguf"), threads=1).generate([0, 7, 8], max_tokens=4).tokens) >= 1


def test_rows_not_a_multiple_of_32_stay_f32(tmp_path):
    # hidden 48: every matrix reading the residual stream has rows of 48; ffn_down (96) quantizes.
    cfg = tm.tiny_config("llama", hidden=48, heads=4, kv_heads=2)
    tm.write_gguf(tmp_path / "s.gguf", cfg, tm.random_weights(cfg), qtype="F16")
    convert(tmp_path / "s.gguf", tmp_path / "o.gguf", "q8_0", progress=None)
    a, b = fastspec.inspect(tmp_path / "s.gguf"), fastspec.inspect(tmp_path / "o.gguf")
    assert b.tensors["blk.0.attn_q.weight"].type == "F32"
    assert b.tensors["token_embd.weight"].type == "F32"
    assert b.tensors["blk.0.ffn_down.weight"].type == "Q8_0"
    assert np.array_equal(b.tensor("blk.0.attn_q.weight"), a.tensor("blk.0.attn_q.weight"))
    assert np.array_equal(b.tensor("blk.0.ffn_down.weight"), _expected(a.tensor("blk.0.ffn_down.weight"), "Q8_0"))


def test_value_types_alignment_and_odd_strings(tmp_path):
    src = tmp_path / "kv.gguf"
    w = gguf.GGUFWriter(str(src), "llama")
    w.add_custom_alignment(64)
    w.add_uint8("x.u8", 200)
    w.add_int16("x.i16", -3)
    w.add_uint64("x.u64", 2**63 + 5)
    w.add_float64("x.f64", 0.1)
    w.add_float32("x.f32", 0.1)
    w.add_bool("x.bool", True)
    w.add_key_value("x.bytes", b"\xff\xferaw", gguf.GGUFValueType.STRING)  # not UTF-8
    w.add_key_value("x.empty", "", gguf.GGUFValueType.STRING)
    w.add_key_value("x.u16s", [1, 2, 65535], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.UINT16)
    w.add_key_value("x.f64s", [0.5, 0.1], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.FLOAT64)
    w.add_key_value("x.strs", ["a", "", "c"], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.STRING)
    rng = np.random.default_rng(0)
    w.add_tensor("a.weight", rng.standard_normal((3, 64)).astype(np.float32))
    w.add_tensor("b.bias", rng.standard_normal(5).astype(np.float32))
    w.add_tensor("c.weight", rng.standard_normal((2, 40)).astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    out = tmp_path / "kv.q4.gguf"
    convert(src, out, "q4_0", progress=None)
    src_f, out_f = _fields(src), _fields(out)
    # No general.file_type in the source: it is added; so is the quantization version.
    assert list(out_f) == list(src_f) + [FILE_TYPE, "general.quantization_version"]
    for k in src_f:
        assert out_f[k] == src_f[k], k
    assert src_f["x.bytes"] == (["STRING"], b"\xff\xferaw")
    assert fastspec.inspect(out).metadata["x.bytes"] == b"\xff\xferaw"
    r = gguf.GGUFReader(str(out))
    assert r.alignment == 64 and all(t.data_offset % 64 == 0 for t in r.tensors)
    b = fastspec.inspect(out)
    assert [(n, t.type) for n, t in b.tensors.items()] == [("a.weight", "Q4_0"), ("b.bias", "F32"),
                                                           ("c.weight", "F32")]
    a = fastspec.inspect(src)
    assert np.array_equal(b.tensor("c.weight"), a.tensor("c.weight"))
    assert np.array_equal(b.tensor("a.weight"), _expected(a.tensor("a.weight"), "Q4_0"))


def test_cli_progress_and_errors(tiny_llama, tmp_path, capsys):
    out = tmp_path / "o.gguf"
    assert cli.main(["convert", str(tiny_llama), str(out), "--type", "q8_0"]) == 0
    err = capsys.readouterr().err
    assert "[ 1/21] token_embd.weight" in err and "Q4_1 -> Q8_0" in err and "wrote " in err

    with pytest.raises(SystemExit) as e:
        cli.main(["convert", str(tiny_llama), str(out), "--type", "q5_k"])
    assert e.value.code == 2 and "invalid choice: 'q5_k'" in capsys.readouterr().err

    missing = tmp_path / "missing.gguf"
    assert cli.main(["convert", str(missing), str(out), "--type", "f16"]) == 2
    assert f"{missing}: no such file" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="missing.gguf"):
        convert(missing, out, "f16")

    with pytest.raises(ValueError, match="output is the input"):
        convert(tiny_llama, tiny_llama, "f16", progress=None)
    with pytest.raises(ValueError, match="unknown type 'q4_k'"):
        convert(tiny_llama, out, "q4_k", progress=None)


def test_failed_conversion_leaves_no_file(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUX" + b"\0" * 40)
    with pytest.raises(fastspec.FormatError, match="bad.gguf"):
        convert(bad, tmp_path / "o.gguf", "q4_0", progress=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.gguf"]


@pytest.mark.real_model
@pytest.mark.slow
def test_real_smollm2_f16_target_and_q4_0_draft(smollm2_path, tmp_path):
    """The real target/draft pair: F16 and Q4_0 copies of SmolLM2. Reported, not over-asserted.
    Measured (the source is Q4_1, so Q4_0 re-quantizes 4-bit values): the Q4_0 copy's greedy
    first 8 tokens can differ from the first token on, while its teacher-forced top-1 agreement
    with the F16 copy along the F16 greedy path is ~0.4-0.7 -- roughly a draft's acceptance rate."""
    f16, q4 = tmp_path / "smol.f16.gguf", tmp_path / "smol.q4_0.gguf"
    convert(smollm2_path, f16, "f16", progress=None)
    convert(smollm2_path, q4, "q4_0", progress=None)
    assert fastspec.inspect(q4).tensors["token_embd.weight"].type == "Q4_0"
    target, draft = fastspec.Engine(str(f16), threads=2), fastspec.Engine(str(q4), threads=2)
    prompt = 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n'
    a = target.generate(prompt, max_tokens=8).tokens
    b = draft.generate(prompt, max_tokens=8).tokens
    ids = target.tokenize(prompt) + a
    n = len(ids) - len(a)
    top1 = (target.logits(ids)[n - 1:-1].argmax(1) == draft.logits(ids)[n - 1:-1].argmax(1)).mean()
    same = sum(x == y for x, y in zip(a, b))
    print(f"\nf16  {a}\nq4_0 {b}\nfree-run agreement {same}/8, teacher-forced top-1 agreement {top1:.2f}")
    assert len(a) == 8 and len(b) == 8
    assert top1 >= 0.25  # a usable (if weak) draft; measured 0.72 on this prompt
