"""`fastspec perplexity`: non-overlapping windows scored by the engine, against the same windows
scored here by the pure-PyTorch reference model (tests/reference) on the same weights."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tiny_models as tm  # noqa: E402
from reference import reference_model  # noqa: E402

import fastspec  # noqa: E402
from fastspec import cli  # noqa: E402

torch.set_num_threads(1)
TEXT = ("the cat sat on the mat and the dog sat in the fog; then the cat ran to the dog and "
        "the dog ran to the cat, and is that the end? it is not: there is more text here. ") * 3


def reference_perplexity(weights, cfg, ids, context):
    nll, n = 0.0, 0
    for s in range(0, len(ids), context):
        w = ids[s:s + context]
        if len(w) < 2:
            continue
        ref = reference_model(weights, cfg, dtype=torch.float64)
        logp = torch.log_softmax(ref.forward(w, start=0), dim=-1)
        nll -= float(logp[torch.arange(len(w) - 1), torch.tensor(w[1:])].sum())
        n += len(w) - 1
    return math.exp(nll / n), n


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("ppl")
    cfg = tm.tiny_config("llama")
    stored = tm.write_safetensors_checkpoint(d, cfg, tm.random_weights(cfg, seed=9))
    return d, cfg, stored


@pytest.mark.parametrize("context", [16, 50])
def test_perplexity_matches_reference(model, context):
    d, cfg, stored = model
    eng = fastspec.Engine(d, threads=1, context=64, precision="f32", kv_type="f32")
    ids = eng.tokenize(TEXT, add_special=False)
    assert len(ids) % context >= 2  # a short last window is scored too
    want, n = reference_perplexity(stored, cfg, ids, context)
    r = fastspec.perplexity_eval.perplexity_windows(eng, TEXT, context)
    assert r.tokens == n and r.windows == -(-len(ids) // context)
    assert r.perplexity == pytest.approx(want, rel=1e-5)
    assert fastspec.perplexity(eng, TEXT, context) == r.perplexity
    assert r.perplexity > 1.0


def test_perplexity_cli_and_errors(model, tmp_path, capsys):
    d, _, _ = model
    f = tmp_path / "t.txt"
    f.write_text(TEXT)
    assert cli.main(["perplexity", str(d), str(f), "--context", "32", "--max-windows", "2", "-q"]) == 0
    out = capsys.readouterr()
    eng = fastspec.Engine(d, context=64)
    want = fastspec.perplexity_eval.perplexity_windows(eng, TEXT, 32, max_windows=2)
    assert float(out.out.strip()) == pytest.approx(want.perplexity, abs=1e-4)
    assert "62 tokens scored in 2 windows of 32" in out.err
    with pytest.raises(ValueError, match="context 128 exceeds the engine's context 64"):
        fastspec.perplexity(eng, TEXT, 128)
    with pytest.raises(ValueError, match="nothing to score"):
        fastspec.perplexity(eng, "a", 32)
    with pytest.raises(ValueError, match="at least 2"):
        fastspec.perplexity(eng, TEXT, 1)
    assert np.isfinite(fastspec.perplexity(eng, TEXT, 64))
