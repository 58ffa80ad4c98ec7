"""fastspec.Engine on tiny random GGUF models (with an embedded byte-level BPE tokenizer):
streaming, stop conditions, seeds, bad input, GIL release."""
import threading

import numpy as np
import pytest

pytest.importorskip("gguf")

import tiny_models as tm  # noqa: E402

import fastspec  # noqa: E402


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    cfg = tm.tiny_config("llama", vocab=400)
    path = tmp_path_factory.mktemp("tiny") / "tiny.gguf"
    tm.write_gguf(path, cfg, tm.random_weights(cfg, seed=11), qtype="Q8_0")
    return str(path)


@pytest.fixture(scope="module")
def eng(tiny_path):
    return fastspec.Engine(tiny_path, threads=2, context=256)


PROMPT = "héllo wörld — 日本語 🙂 code: def f(x):\n    return x"


def test_stream_concatenates_to_generate(eng):
    pieces = list(eng.stream(PROMPT, max_tokens=40))
    gen = eng.generate(PROMPT, max_tokens=40)
    assert "".join(pieces) == gen.text
    assert len(gen.tokens) == 40 or gen.finish_reason == "stop"
    assert gen.text == eng.detokenize([t for t in gen.tokens if t not in eng.tokenizer.eos_ids])
    assert all("\ufffd" not in p for p in pieces) or "\ufffd" in gen.text
    for key in ("tokens", "target_passes", "tokens_per_s", "prefill_s", "decode_s"):
        assert key in gen.stats
    assert gen.stats["tokens"] == len(gen.tokens)
    assert eng.last_stats["tokens"] == len(gen.tokens)


def test_sampled_stream_never_splits_characters(eng):
    # Sampling at high temperature picks raw byte tokens, so multi-byte characters span tokens.
    for seed in range(5):
        pieces = list(eng.stream(PROMPT, max_tokens=60, temperature=1.5, seed=seed))
        text = eng.generate(PROMPT, max_tokens=60, temperature=1.5, seed=seed).text
        assert "".join(pieces) == text
        for p in pieces:
            assert p.encode("utf-8").decode("utf-8") == p
            if "\ufffd" in p:
                assert "\ufffd" in text


def test_seeds(eng):
    a = eng.generate(PROMPT, max_tokens=30, temperature=1.0, seed=123).tokens
    b = eng.generate(PROMPT, max_tokens=30, temperature=1.0, seed=123).tokens
    c = eng.generate(PROMPT, max_tokens=30, temperature=1.0, seed=124).tokens
    assert a == b
    assert a != c


def test_greedy_equals_argmax_of_logits(eng):
    ids = eng.tokenize(PROMPT)
    gen = eng.generate(ids, max_tokens=8)
    logits = eng.logits(ids + gen.tokens[:-1])
    assert [int(t) for t in logits[len(ids) - 1:].argmax(-1)] == gen.tokens


def test_stop_string_cuts_text(eng):
    full = eng.generate(PROMPT, max_tokens=40).text
    if len(full) < 6:
        pytest.skip("tiny model produced too little text")
    stop = full[3:6]
    cut = eng.generate(PROMPT, max_tokens=40, stop=[stop])
    assert cut.text == full[:full.index(stop)]
    assert cut.finish_reason == "stop"


def test_break_cancels_cleanly(eng):
    for k, _ in enumerate(eng.stream(PROMPT, max_tokens=100)):
        if k == 2:
            break
    assert eng.last_stats is not None and eng.last_stats["tokens"] < 100
    assert eng.generate(PROMPT, max_tokens=3).stats["tokens"] == 3  # the engine is reusable


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(temperature=-0.1), "temperature"), (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"),
    (dict(top_k=-1), "top_k"), (dict(max_tokens=0), "max_tokens")])
def test_bad_sampling_parameters(eng, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        eng.generate(PROMPT, **kwargs)


def test_prompt_longer_than_context(eng):
    ids = [5] * 300
    with pytest.raises(ValueError, match=r"300 tokens but the context is 256"):
        eng.generate(ids)


def test_gguf_without_tokenizer(tmp_path):
    cfg = tm.tiny_config("llama")
    tm.write_gguf(tmp_path / "notok.gguf", cfg, tm.random_weights(cfg), qtype="F32", tokenizer=False)
    with pytest.raises(fastspec.ModelError, match=r"notok.gguf.*tokenizer"):
        fastspec.Engine(str(tmp_path / "notok.gguf"))


def test_gil_released_during_compute(tmp_path):
    """While one thread is inside a long C++ call, another thread keeps running Python."""
    cfg = tm.tiny_config("llama", hidden=256, intermediate=768, n_layers=4, vocab=400)
    tm.write_gguf(tmp_path / "m.gguf", cfg, tm.random_weights(cfg), qtype="F32")
    e = fastspec.Engine(str(tmp_path / "m.gguf"), threads=1, context=256)
    ids = np.random.default_rng(0).integers(0, 400, 250).tolist()
    done = threading.Event()
    spins = 0

    def work():
        try:
            e.logits(ids)
        finally:
            done.set()

    th = threading.Thread(target=work)
    th.start()
    while not done.is_set():
        spins += 1  # runs only while the worker does not hold the GIL
    th.join()
    assert spins > 1000
