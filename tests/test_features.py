"""Hidden-state features (Context.forward_features, model/transformer.h Features): what a draft
head is trained on and reads. Checked against transformers' output_hidden_states on the same tiny
checkpoints (every hidden state, llama and Gemma 3, in one call and in chained calls), and the
features change nothing else: the logits and the cache are bit-equal to a plain forward."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tiny_models as tm  # noqa: E402
from fastspec import _core  # noqa: E402

from test_reference import hf_model, make_cfg, tokens  # noqa: E402

torch.set_num_threads(1)
TOL = 2e-4  # absolute, float32 reference precision vs transformers float32 (hidden states std ~1)


def _engine(path, precision="f32"):
    o = _core.EngineOptions()
    o.threads, o.context, o.precision, o.kv_type = 2, 64, precision, "f32"
    return _core.Engine(str(path), o)


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_every_hidden_state_matches_transformers(tmp_path, arch):
    cfg = make_cfg(arch, {"n_layers": 3} if arch == "gemma3" else {})
    tm.write_safetensors_checkpoint(tmp_path, cfg, tm.random_weights(cfg, seed=1))
    n_layers = cfg["num_hidden_layers"]
    ids = tokens(cfg, 20)
    with torch.no_grad():
        hs = hf_model(tmp_path)(torch.tensor([ids]), output_hidden_states=True).hidden_states
    want = np.stack([h[0].numpy() for h in hs], axis=1)  # [T, n_layers + 1, d]
    layers = list(range(n_layers + 1))
    ctx = _engine(tmp_path).new_context()
    logits, got = ctx.forward_features(ids, layers)
    assert got.shape == (20, n_layers + 1, cfg["hidden_size"])
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
    # chained calls (prefill, decode, a verify-sized call) record the same states
    ctx2 = _engine(tmp_path).new_context()
    parts = [ctx2.forward_features(ids[a:b], [n_layers, 1])[1] for a, b in ((0, 12), (12, 13), (13, 20))]
    np.testing.assert_allclose(np.concatenate(parts), want[:, [n_layers, 1]], atol=TOL, rtol=0)


def test_features_change_nothing_else(tmp_path):
    cfg = make_cfg("llama", {})
    tm.write_safetensors_checkpoint(tmp_path, cfg, tm.random_weights(cfg, seed=2))
    eng = _engine(tmp_path, precision="q8")
    ids = tokens(cfg, 30, seed=3)
    a, b = eng.new_context(), eng.new_context()
    la = a.forward(ids[:25])
    lb, feats = b.forward_features(ids[:25], [2, 0, cfg["num_hidden_layers"]])
    assert np.array_equal(la, lb)
    assert np.array_equal(a.forward(ids[25:]), b.forward(ids[25:]))  # the caches are the same
    assert feats.shape == (25, 3, cfg["hidden_size"]) and np.isfinite(feats).all()
    _, last = eng.new_context().forward_features(ids[:25], [2], logits="last")
    assert np.array_equal(last[:, 0], feats[:, 0])
    with pytest.raises(ValueError, match="hidden state"):
        eng.new_context().forward_features(ids[:3], [cfg["num_hidden_layers"] + 1])
    with pytest.raises(ValueError, match="layers is empty"):
        eng.new_context().forward_features(ids[:3], [])
