"""AutoAWQ GEMM checkpoints: a virtual AWQ_INT4 "<prefix>.weight" [out, in] per qweight, dequantized
exactly like an independent numpy unpacker written here from AutoAWQ's layout.

AutoAWQ (awq/modules/linear/gemm.py, WQLinear_GEMM.from_linear) packs the int matrix
intweight [in, out] as: for col in range(out // 8): for i in range(8):
    qweight[:, col] |= intweight[:, col * 8 + AWQ_ORDER[i]] << (i * 4),   AWQ_ORDER = [0,2,4,6,1,3,5,7]
zeros [in/group, out] are packed the same way into qzeros, scales [in/group, out] are fp16, and
awq/utils/packing_utils.py dequantizes with unpack (shifts 0, 4, ..., 28) then reverse_awq_order
(AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7]) and W^T = (iweight - izeros) * scales.
"""
import json
import re

import numpy as np
import pytest

import fastspec

safetensors_numpy = pytest.importorskip("safetensors.numpy")

AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]
AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7]


def awq_pack(intweight):
    """[rows, out] uint values 0..15 -> int32 [rows, out/8] (AutoAWQ GEMM order)."""
    rows, out = intweight.shape
    packed = np.zeros((rows, out // 8), dtype=np.uint32)
    for col in range(out // 8):
        for i in range(8):
            packed[:, col] |= intweight[:, col * 8 + AWQ_ORDER[i]].astype(np.uint32) << (i * 4)
    return packed.view(np.int32)


def awq_unpack(packed):
    """int32 [rows, out/8] -> [rows, out] ints, following unpack_awq + reverse_awq_order."""
    shifts = np.arange(0, 32, 4, dtype=np.uint32)
    nibbles = (packed.view(np.uint32)[:, :, None] >> shifts[None, None, :]) & 15  # [rows, out/8, 8]
    flat = nibbles.reshape(packed.shape[0], -1)
    order = np.arange(flat.shape[1]).reshape(-1, 8)[:, AWQ_REVERSE_ORDER].reshape(-1)
    return flat[:, order].astype(np.int64)


def awq_dequantize(qweight, qzeros, scales, group):
    """W [out, in] in float32: (q - z) * s, groups along the input dimension."""
    iw = awq_unpack(qweight)                                   # [in, out]
    iz = np.repeat(awq_unpack(qzeros), group, axis=0)          # [in, out]
    s = np.repeat(scales.astype(np.float32), group, axis=0)    # [in, out]
    return ((iw - iz).astype(np.float32) * s).T


def make_awq_layer(rng, in_f, out_f, group):
    g = in_f if group == -1 else group
    q = rng.integers(0, 16, size=(in_f, out_f))
    z = rng.integers(0, 16, size=(in_f // g, out_f))
    s = (rng.uniform(0.001, 0.2, size=(in_f // g, out_f)) * rng.choice([-1, 1], size=(in_f // g, out_f)))
    return q, z, s.astype(np.float16)


def write_awq_checkpoint(path, layers, group, quant_extra=None, extra_tensors=None):
    """layers: {prefix: (q, z, s)} -> model.safetensors + config.json in `path`."""
    tensors = dict(extra_tensors or {})
    for prefix, (q, z, s) in layers.items():
        tensors[prefix + ".qweight"] = awq_pack(q)
        tensors[prefix + ".qzeros"] = awq_pack(z)
        tensors[prefix + ".scales"] = s
    safetensors_numpy.save_file(tensors, str(path / "model.safetensors"))
    qc = {"quant_method": "awq", "bits": 4, "group_size": group, "version": "gemm", "zero_point": True}
    qc.update(quant_extra or {})
    config = {"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4,
              "num_hidden_layers": 1, "quantization_config": qc}
    (path / "config.json").write_text(json.dumps(config))
    return tensors


def test_packer_roundtrip():
    rng = np.random.default_rng(0)
    q = rng.integers(0, 16, size=(5, 24))
    np.testing.assert_array_equal(awq_unpack(awq_pack(q)), q)
    # Nibble layout check by hand: column c of block 0 lives in nibble AWQ_REVERSE_ORDER[c].
    one = np.zeros((1, 8), dtype=np.int64)
    one[0, 1] = 15
    assert awq_pack(one).view(np.uint32)[0, 0] == 15 << (4 * 4)


@pytest.mark.parametrize("in_f,out_f,group", [(64, 48, 32), (128, 16, 128), (256, 8, 64), (32, 24, -1)])
def test_awq_dequantize_matches_numpy(tmp_path, in_f, out_f, group):
    rng = np.random.default_rng(in_f + out_f)
    prefix = "model.layers.0.self_attn.q_proj"
    q, z, s = make_awq_layer(rng, in_f, out_f, group)
    embed = rng.standard_normal((10, 64)).astype(np.float16)
    tensors = write_awq_checkpoint(tmp_path, {prefix: (q, z, s)}, group,
                                   extra_tensors={"model.embed_tokens.weight": embed})
    info = fastspec.inspect(tmp_path)

    spec = info.tensors[prefix + ".weight"]
    assert spec.type == "AWQ_INT4" and spec.shape == (out_f, in_f)
    parts = [tensors[prefix + sfx] for sfx in (".qweight", ".qzeros", ".scales")]
    assert spec.nbytes == sum(p.nbytes for p in parts)
    # The packed parts stay listed as plain tensors.
    assert info.tensors[prefix + ".qweight"].type == "I32"
    assert info.tensors[prefix + ".qzeros"].type == "I32"
    assert info.tensors[prefix + ".scales"].type == "F16"
    assert info.raw(prefix + ".qweight").tobytes() == parts[0].tobytes()
    np.testing.assert_array_equal(info.tensor("model.embed_tokens.weight"), embed.astype(np.float32))

    g = in_f if group == -1 else group
    want = awq_dequantize(*parts, g)
    got = info.tensor(prefix + ".weight")
    assert got.dtype == np.float32 and got.shape == (out_f, in_f)
    np.testing.assert_array_equal(got, want)
    # And against the unpacked source values directly (q, z, s never went through a packer).
    direct = ((q - np.repeat(z, g, axis=0)).astype(np.float32) * np.repeat(s.astype(np.float32), g, axis=0)).T
    np.testing.assert_array_equal(got, direct)


def test_awq_several_layers_and_no_config(tmp_path):
    rng = np.random.default_rng(7)
    layers = {f"model.layers.{i}.mlp.{n}": make_awq_layer(rng, 64, 32, 32)
              for i in range(2) for n in ("gate_proj", "up_proj")}
    write_awq_checkpoint(tmp_path, layers, 32)
    info = fastspec.inspect(tmp_path)
    virtual = [n for n, t in info.tensors.items() if t.type == "AWQ_INT4"]
    assert sorted(virtual) == sorted(p + ".weight" for p in layers)
    with pytest.raises(fastspec.ModelError, match="virtual"):
        info.raw(virtual[0])
    # Without quantization_config the parts are just int32/f16 tensors.
    (tmp_path / "config.json").unlink()
    assert not any(t.type == "AWQ_INT4" for t in fastspec.inspect(tmp_path).tensors.values())


@pytest.mark.parametrize("extra", [{"version": "gemv"}, {"bits": 8}, {"quant_method": "gptq"}])
def test_awq_other_variants_keep_raw_parts(tmp_path, extra):
    rng = np.random.default_rng(1)
    write_awq_checkpoint(tmp_path, {"p": make_awq_layer(rng, 64, 16, 32)}, 32, quant_extra=extra)
    info = fastspec.inspect(tmp_path)
    assert "p.weight" not in info.tensors and info.tensors["p.qweight"].type == "I32"


def _bad_awq_cases():
    q, z, s = make_awq_layer(np.random.default_rng(0), 64, 16, 32)
    # (id, tensors override, group, message)
    yield "no_qzeros", {"p.qzeros": None}, 32, r"AWQ tensor 'p.qweight': no 'p.qzeros' beside it"
    yield "no_scales", {"p.scales": None}, 32, r"AWQ tensor 'p.qweight': no 'p.scales' beside it"
    yield "scales_rows", {"p.scales": s[:1]}, 32, \
        r"AWQ tensor 'p.qweight': scales shape should be \[2, 16\] \(qweight \[64, 2\], qzeros \[2, 2\], " \
        r"scales \[1, 16\], group_size 32\)"
    yield "scales_cols", {"p.scales": s[:, :8]}, 32, r"scales shape should be \[2, 16\].*scales \[2, 8\]"
    yield "qzeros_shape", {"p.qzeros": awq_pack(z)[:, :1]}, 32, \
        r"qzeros shape should be \[2, 2\].*qzeros \[2, 1\]"
    yield "group_mismatch", {}, 48, r"in_features 64 is not a multiple of group_size 48"
    yield "scales_f32", {"p.scales": s.astype(np.float32)}, 32, r"scales must be F16 \[in/group, out\], got F32 \[2, 16\]"
    yield "qweight_i64", {"p.qweight": awq_pack(q).astype(np.int64)}, 32, r"qweight must be I32 \[in, out/8\], got I64"
    yield "qweight_3d", {"p.qweight": awq_pack(q).reshape(2, 32, 2)}, 32, r"qweight must be I32 \[in, out/8\], got I32 \[2, 32, 2\]"


BAD_AWQ = list(_bad_awq_cases())


@pytest.mark.parametrize("case", BAD_AWQ, ids=[c[0] for c in BAD_AWQ])
def test_awq_bad_parts(tmp_path, case):
    _, override, group, message = case
    q, z, s = make_awq_layer(np.random.default_rng(0), 64, 16, 32)
    tensors = {"p.qweight": awq_pack(q), "p.qzeros": awq_pack(z), "p.scales": s}
    for k, v in override.items():
        if v is None:
            del tensors[k]
        else:
            tensors[k] = np.ascontiguousarray(v)
    safetensors_numpy.save_file(tensors, str(tmp_path / "model.safetensors"))
    qc = {"quant_method": "awq", "bits": 4, "group_size": group, "version": "gemm"}
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "quantization_config": qc}))
    with pytest.raises(fastspec.ModelError, match=re.escape(str(tmp_path / "model.safetensors")) + ".*" + message):
        fastspec.inspect(tmp_path)


# ---- an AWQ model through the engine, parts at odd byte offsets ------------------------------------

def awq_quantize(w, group):
    """W [out, in] float32 -> (q [in, out], z [in/group, out], s f16 [in/group, out]): AutoAWQ's
    asymmetric 4-bit grid per (group of inputs, output), s = (max - min) / 15, z = round(-min / s)."""
    wt = w.T.astype(np.float64)                                   # [in, out]
    g = wt.reshape(-1, group, wt.shape[1])                        # [in/group, group, out]
    lo, hi = np.minimum(g.min(axis=1), 0), np.maximum(g.max(axis=1), 0)
    s = ((hi - lo) / 15).astype(np.float16)
    s = np.where(s == 0, np.float16(1e-3), s)
    z = np.clip(np.round(-lo / s.astype(np.float64)), 0, 15).astype(np.int64)
    q = np.clip(np.round(g / s.astype(np.float64)[:, None]) + z[:, None], 0, 15).astype(np.int64)
    return q.reshape(wt.shape), z, s


def save_safetensors_at_odd_offsets(path, aligned, packed):
    """One safetensors file: `aligned` tensors first (from offset 0), then a 1-byte U8 tensor, then
    `packed` -- so every packed tensor starts at an odd byte offset (the format aligns nothing)."""
    header, blobs, off = {}, [], 0
    items = list(aligned.items()) + [("pad.odd", np.zeros(1, np.uint8))] + list(packed.items())
    for name, arr in items:
        dt = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int32): "I32",
              np.dtype(np.uint8): "U8"}[arr.dtype]
        b = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # data starts 8-aligned: only the tensors' own offsets are odd
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))
    return {name: header[name]["data_offsets"][0] for name in header}


def test_awq_model_forward_at_odd_offsets_matches_reference(tmp_path):
    """Every linear layer AWQ (group 32), parts at odd offsets of the mapping: the engine's row
    unpacker (f32 matmul path) and the loader's matrix unpacker agree with the reference forward
    on the dequantized weights."""
    pytest.importorskip("torch")
    import tiny_models as tm
    from reference import reference_model

    from fastspec import _core

    group = 32
    cfg = tm.tiny_config("llama")
    w = tm.random_weights(cfg, seed=31)
    dense, packed, deq = {}, {}, dict(w)
    for name, arr in w.items():
        if name.endswith("_proj.weight"):
            prefix = name[:-len(".weight")]
            q, z, s = awq_quantize(arr, group)
            packed[prefix + ".qweight"], packed[prefix + ".qzeros"], packed[prefix + ".scales"] = \
                awq_pack(q), awq_pack(z), s
            deq[name] = awq_dequantize(awq_pack(q), awq_pack(z), s, group)
            assert np.abs(deq[name] - arr).max() < 0.2 * np.abs(arr).max()  # a real quantization of w
        else:
            dense[name] = arr
    offsets = save_safetensors_at_odd_offsets(tmp_path / "model.safetensors", dense, packed)
    assert all(offsets[n] % 2 == 1 for n in packed)
    qc = {"quant_method": "awq", "bits": 4, "group_size": group, "version": "gemm", "zero_point": True}
    (tmp_path / "config.json").write_text(json.dumps(dict(cfg, quantization_config=qc)))

    info = fastspec.inspect(tmp_path)
    for name in deq:
        if name.endswith("_proj.weight"):
            assert info.tensors[name].type == "AWQ_INT4"
            np.testing.assert_array_equal(info.tensor(name), deq[name], err_msg=name)

    o = _core.EngineOptions()
    o.threads, o.context, o.precision, o.kv_type = 2, 64, "f32", "f32"
    eng = _core.Engine(str(tmp_path), o)
    ref = reference_model(deq, cfg)
    ids = np.random.default_rng(0).integers(0, cfg["vocab_size"], size=10).tolist()
    ctx = eng.new_context()
    for a, b in ((0, 7), (7, 8), (8, 10)):
        got = ctx.forward(ids[a:b])
        want = ref.forward(ids[a:b], start=a).double().numpy()
        np.testing.assert_allclose(got, want, atol=2e-4, rtol=0, err_msg=f"tokens [{a}, {b})")


# ---- the integer W4A8 path: AWQ weights packed into the CPU kernels' panels (qpack.h) --------------

from fastspec import _core  # noqa: E402

PATHS = _core.cpu_paths()


def _awq_parts(rng, in_f, out_f, group):
    q, z, s = make_awq_layer(rng, in_f, out_f, group)
    return awq_pack(q), awq_pack(z), s.view(np.uint16), (q, z, s)


@pytest.mark.parametrize("in_f,out_f,group", [(576, 48, 64), (256, 40, 128), (64, 16, 32)])
def test_awq_int_kernel(in_f, out_f, group):
    """Dequantized from the panels == the numpy reference bit for bit (up to the sign of zero);
    every CPU path bit-equal to scalar, batch-invariant over 1..17 rows; the integer result close
    to x @ W.T (only the 8-bit activation rounding remains)."""
    rng = np.random.default_rng(in_f + out_f)
    qw, qz, sc, _ = _awq_parts(rng, in_f, out_f, group)
    W = awq_dequantize(qw, qz, sc.view(np.float16), group)
    x = rng.standard_normal((17, in_f)).astype(np.float32)
    y0, deq = _core._qdot_awq(qw, qz, sc, group, x, "scalar")
    np.testing.assert_array_equal(deq, W)
    ref = x.astype(np.float64) @ W.astype(np.float64).T
    err = np.abs(y0 - ref).max() / np.abs(ref).max()
    assert err < 2.5e-2, f"relative error {err:.3g} vs x @ W.T"
    for path in PATHS:
        y, _ = _core._qdot_awq(qw, qz, sc, group, x, path)
        assert np.array_equal(y.view(np.uint32), y0.view(np.uint32)), f"{path} differs from scalar"
        for t in (0, 5, 16):
            one, _ = _core._qdot_awq(qw, qz, sc, group, x[t : t + 1], path)
            assert np.array_equal(one[0].view(np.uint32), y[t].view(np.uint32)), f"{path} row {t} alone"


@pytest.mark.parametrize("group", [32, 64, 128, 256])
def test_awq_packed_size(group):
    """The panels store d (f16) and m (f32) once per group of 16 rows, then 16 bytes of codes per
    32 inputs (qpack.h): 16 + 6 / (group / 32) bytes per 32 weights, under Q4_0's 18 from group 128."""
    in_f = 1024
    rb = _core._awq_pack_row_bytes(in_f, group)
    assert rb == in_f // 32 * 16 + in_f // group * 6
    q4_0 = in_f // 32 * 18
    assert (rb < q4_0) == (group >= 128), (rb, q4_0)
    with pytest.raises(ValueError, match="576 inputs in groups of 128"):
        _core._awq_pack_row_bytes(576, 128)
