"""The real Gemma 3 270M GGUF (mostly Q5_0, with Q4_K/Q6_K/Q8_0; sliding-window layers, q/k norms,
(1 + w) norms stored with the +1) against transformers loading the same file."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hf_cache import hf_float32_model  # noqa: E402

from fastspec import _core  # noqa: E402

pytestmark = [pytest.mark.real_model, pytest.mark.slow]

LOGIT_ATOL = 5e-2  # gemma's logits span ~[-30, 40]; differences are float32 summation order


def test_gemma3_logits_and_greedy_match_transformers(gemma3_path):
    model, tok = hf_float32_model("gemma3-270m")
    text = "The history of the Roman Empire spans many centuries, " * 60  # > 512 tokens: past the window
    ids = tok(text)["input_ids"][:600]
    o = _core.EngineOptions()
    o.threads, o.context = 2, 1024
    o.precision, o.kv_type = "f32", "f32"  # the reference precision matches transformers
    eng = _core.Engine(gemma3_path, o)
    with torch.no_grad():
        want = model(torch.tensor([ids])).logits[0].numpy()
    got = eng.logits(ids)
    err = np.abs(got - want).max()
    assert err < LOGIT_ATOL, f"max |fastspec - transformers| = {err}"
    assert (got.argmax(-1) == want.argmax(-1)).mean() > 0.99
