"""The C++ n-gram drafter (cpp/src/spec/ngram_drafter.cpp) proposes exactly what the Python model
tests/reference/ngram.py proposes, on random token sequences, for several k and n-gram ranges.

The C++ proposals come from the engine's trace (SpecOptions.trace_path: one JSON line per target
pass with the position, k and the proposed tokens); the context of each proposal is the prompt
plus the tokens generated before that position. Prompts are random and the model has a 4-token
vocabulary, so suffixes recur at every distance, including copies that run off the end of the
context (a loop shorter than k)."""
import gc
import json

import numpy as np
import pytest

pytest.importorskip("gguf")

import tiny_models as tm  # noqa: E402
from reference.ngram import match, proposal  # noqa: E402

from fastspec import _core  # noqa: E402

SETTINGS = [(1, 4, 3), (1, 4, 6), (2, 3, 5), (3, 3, 4), (1, 1, 2), (2, 5, 1)]  # (ngram_min, ngram_max, k)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    cfg = tm.tiny_config("llama", vocab=4)  # generated tokens share the prompts' alphabet
    path = tmp_path_factory.mktemp("ngram") / "m.gguf"
    tm.write_gguf(path, cfg, tm.random_weights(cfg, seed=21), qtype="F32", tokenizer=False)
    return str(path)


def _traced_run(path, trace, prompt, n_min, n_max, k, max_tokens=10):
    """Greedy ngram-speculative generation; (generated ids, trace records)."""
    opts = _core.EngineOptions()
    opts.threads, opts.context = 1, 128
    spec = _core.SpecOptions()
    spec.draft, spec.k, spec.ngram_min, spec.ngram_max = "ngram", k, n_min, n_max
    spec.trace_path = str(trace)
    eng = _core.Engine(path, opts, spec)
    sampling = _core.SamplingOptions()
    sampling.temperature, sampling.max_tokens = 0.0, max_tokens
    session = eng.start(prompt, sampling, [])
    out = []
    while not session.finished:
        out += session.step()
    del session, eng  # the session owns the trace stream: closing it flushes
    gc.collect()
    with open(trace) as f:
        return out, [json.loads(line) for line in f]


@pytest.mark.parametrize("n_min,n_max,k", SETTINGS)
def test_cpp_proposals_equal_the_python_model(model, tmp_path, n_min, n_max, k):
    rng = np.random.default_rng(100 * n_min + 10 * n_max + k)
    checked = compared_nonempty = ran_off_end = 0
    for i in range(12):
        prompt = rng.integers(0, 4, size=int(rng.integers(1, 24))).tolist()
        trace = tmp_path / f"t{i}.jsonl"
        generated, records = _traced_run(model, trace, prompt, n_min, n_max, k)
        seq = prompt + generated
        for r in records:
            if r["k"] == 0:  # the step drafted nothing (the budget allowed no draft)
                continue
            ctx = seq[:r["position"]]
            want = proposal(ctx, r["k"], n_min, n_max)
            assert r["proposed"] == want, f"context {ctx}, k {r['k']}, ngram {n_min}..{n_max}"
            checked += 1
            compared_nonempty += bool(want)
            # the copy reached the end of the context and went on through its own proposal
            ran_off_end += bool(want) and match(ctx, n_min, n_max) + r["k"] > len(ctx)
    assert checked >= 12 and compared_nonempty >= 6, (checked, compared_nonempty)
    if k >= 3:
        assert ran_off_end > 0  # the case the earlier Python copy got wrong is exercised



def test_python_model_examples():
    assert proposal([5, 6, 7, 5, 6], 3) == [7, 5, 6]           # copy of what followed [5, 6]
    assert proposal([1, 2, 1, 2], 5) == [1, 2, 1, 2, 1]         # period 2 < k: through its own proposal
    assert proposal([3, 3], 4) == [3, 3, 3, 3]
    assert proposal([1, 2, 3], 2) == []                          # no earlier occurrence
    assert proposal([9], 2) == []
    assert proposal([4, 8, 1, 4, 9, 4], 2, n_min=2) == []       # only 1-gram matches, n_min 2
