"""EngineOptions::output_q8 (cpp/include/fastspec/options.h): an F16/BF16/F32 output layer (and
the embedding tied to it) quantized to Q8_0 at load in q8 precision. Close to the float output
layer, exact speculation, and a no-op where it does not apply (f32 precision, a Q8_0 file)."""
import numpy as np
import pytest

pytest.importorskip("gguf")

import tiny_models as tm  # noqa: E402

import fastspec  # noqa: E402

IDS = [5, 17, 42, 99, 7, 123, 64, 250, 11, 3, 77, 200]
PROMPT = "the cat sat on the mat and the cat sat on the mat and the"


@pytest.fixture(scope="module", params=[("llama", False), ("llama", True)], ids=["untied", "tied"])
def f16_path(request, tmp_path_factory):
    arch, tied = request.param
    cfg = tm.tiny_config(arch, vocab=320, tie_word_embeddings=tied)
    path = tmp_path_factory.mktemp("oq8") / "tiny_f16.gguf"
    tm.write_gguf(path, cfg, tm.random_weights(cfg, seed=21), qtype="F16")
    return str(path)


def test_output_q8_close_to_float_output(f16_path):
    ref = fastspec.Engine(f16_path).logits(IDS)
    q = fastspec.Engine(f16_path, output_q8=True).logits(IDS)
    assert q.shape == ref.shape
    assert not np.array_equal(q, ref), "output_q8 changed nothing: the output layer was not requantized"
    err = np.abs(q - ref).max() / np.abs(ref).max()
    assert err < 2e-2, f"relative logit error {err:.3g} (Q8_0 rounding of the output weights)"


def test_output_q8_speculation_exact(f16_path):
    plain = fastspec.Engine(f16_path, output_q8=True).generate(PROMPT, max_tokens=40).tokens
    spec = fastspec.Engine(f16_path, output_q8=True, draft="ngram").generate(PROMPT, max_tokens=40).tokens
    assert spec == plain


def test_output_q8_noop_in_f32_precision(f16_path):
    a = fastspec.Engine(f16_path, precision="f32").logits(IDS)
    b = fastspec.Engine(f16_path, precision="f32", output_q8=True).logits(IDS)
    assert np.array_equal(a.view(np.uint32), b.view(np.uint32))


def test_output_q8_noop_for_quantized_output(tmp_path):
    cfg = tm.tiny_config("llama", vocab=320)
    path = tmp_path / "tiny_q8.gguf"
    tm.write_gguf(path, cfg, tm.random_weights(cfg, seed=22), qtype="Q8_0")
    a = fastspec.Engine(str(path)).logits(IDS)
    b = fastspec.Engine(str(path), output_q8=True).logits(IDS)
    assert np.array_equal(a.view(np.uint32), b.view(np.uint32))
