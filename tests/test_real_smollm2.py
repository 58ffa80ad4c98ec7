"""The real SmolLM2-135M-Instruct GGUF against Hugging Face transformers loading the same file
(it dequantizes to float32): logits on a 64-token prompt, and 64-token greedy generations."""
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hf_cache import hf_float32_model  # noqa: E402

from fastspec import _core  # noqa: E402

pytestmark = [pytest.mark.real_model, pytest.mark.slow]

# fastspec computes in float32 from the dequantized weights, like transformers; differences are
# summation order only. Absolute logit tolerance (SmolLM2 logits span ~[-20, 30]):
LOGIT_ATOL = 2e-2

PROMPTS = [
    "<|im_start|>user\nWrite a Python function that returns the n-th Fibonacci number.<|im_end|>\n"
    "<|im_start|>assistant\n",
    "The three most important inventions of the twentieth century were",
    "<|im_start|>user\nExplain in two sentences why the sky is blue.<|im_end|>\n<|im_start|>assistant\n",
]


@pytest.fixture(scope="module")
def hf():
    return hf_float32_model("smollm2-135m-instruct")


@pytest.fixture(scope="module")
def engine(smollm2_path):
    o = _core.EngineOptions()
    o.threads, o.context = 2, 512
    o.precision, o.kv_type = "f32", "f32"  # the reference precision matches transformers
    return _core.Engine(smollm2_path, o)


def test_logits_match_transformers(hf, engine):
    model, tok = hf
    text = " ".join(["The quick brown fox jumps over the lazy dog, while the cat watches from the window."] * 6)
    ids = tok(text)["input_ids"][:64]
    assert len(ids) == 64
    with torch.no_grad():
        want = model(torch.tensor([ids])).logits[0].numpy()
    got = engine.logits(ids)
    err = np.abs(got - want).max()
    assert err < LOGIT_ATOL, f"max |fastspec - transformers| = {err}"
    assert (got.argmax(-1) == want.argmax(-1)).all()


@pytest.mark.parametrize("k", range(len(PROMPTS)))
def test_greedy_64_tokens_identical_to_transformers(hf, engine, k):
    model, tok = hf
    ids = tok(PROMPTS[k])["input_ids"]
    with torch.no_grad():
        # An explicit mask: <|im_end|> is also the pad id, and HF would otherwise mask it out.
        x = torch.tensor([ids])
        out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=64, do_sample=False,
                             eos_token_id=None, pad_token_id=tok.eos_token_id)[0, len(ids):].tolist()
    s = _core.SamplingOptions()
    s.max_tokens = 64
    sess = engine.start(ids, s, [])
    got = []
    while not sess.finished:
        got += sess.step()
    if got != out:
        i = next(j for j, (a, b) in enumerate(zip(got, out)) if a != b)
        with torch.no_grad():
            lg = model(torch.tensor([ids + out[:i]])).logits[0, -1]
        top2 = torch.topk(lg, 2).values
        pytest.fail(f"prompt {k}: first difference at token {i} (fastspec {got[i]}, transformers {out[i]}); "
                    f"transformers' top-2 margin there = {float(top2[0] - top2[1]):.4g}")
