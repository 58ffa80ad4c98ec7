"""Continuous batching in the core (Engine.step_batch, engine.h; Transformer::forward_batch): many
sessions of one engine decode in ONE target pass per round, each with its own KV cache, sampler,
generator, drafter and speculation state, joining and leaving between rounds, long prompts
prefilled in chunks across rounds. Batch invariance across sequences: every session's tokens are
exactly those it gets alone (greedy and seeded sampling, plain and with n-gram drafts, chains and
token trees)."""
import random

import pytest

import tiny_models as tm
from fastspec import _core

pytest.importorskip("gguf")


def _engine(path, draft="", context=640):
    o = _core.EngineOptions()
    o.threads, o.context = 2, context
    s = _core.SpecOptions()
    s.draft = "ngram" if draft == "ngram-tree" else draft
    if draft:
        s.k_max = 4
    if draft == "ngram-tree":
        s.tree_nodes = 12
    return _core.Engine(str(path), o, s)


def _sampling(i, max_tokens):
    s = _core.SamplingOptions()
    s.max_tokens = max_tokens
    if i % 3 == 1:  # sampled, seeded
        s.temperature, s.top_k, s.seed = 0.9, 40, 1000 + i
    elif i % 3 == 2:
        s.temperature, s.top_p, s.seed = 0.7, 0.9, 2000 + i
    return s


def _prompt(i, vocab, rng):
    n = [3, 9, 30, 70, 300][i % 5] + i  # 300+: more than one pass of rows (chunked prefill)
    base = [rng.randrange(vocab) for _ in range(8)]
    return [base[(j * 7 + i) % 8] if j % 3 else rng.randrange(vocab) for j in range(n)]  # repeats for n-grams


def _alone(eng, prompt, sampling):
    s = eng.start(prompt, sampling, [])
    out = []
    while not s.finished:
        out += list(s.step())
    return out, s.finish_reason


def _batched(eng, jobs, join_after=0):
    """Runs (prompt, sampling) jobs with step_batch; the jobs past join_after start after 3 rounds."""
    sessions, outs = {}, {}
    pending = list(range(len(jobs)))
    rounds = 0
    while pending or any(not s.finished for s in sessions.values()):
        while pending and (rounds >= 3 or pending[0] < join_after or not join_after):
            i = pending.pop(0)
            sessions[i] = eng.start(jobs[i][0], jobs[i][1], [])
            outs[i] = []
        order = [i for i in sessions if not sessions[i].finished]
        k = rounds % max(1, len(order))
        order = order[k:] + order[:k]  # rotate, so a session that did not fit goes first next time
        ran = eng.step_batch([sessions[i] for i in order])
        assert ran >= 1 or not order
        for i in order:
            outs[i] += list(sessions[i].committed)
        rounds += 1
    return {i: (outs[i], sessions[i].finish_reason) for i in sessions}, rounds


@pytest.mark.parametrize("arch,qtype", [("llama", "Q4_0"), ("gemma3", "Q8_0"), ("llama", "Q4_K")])
@pytest.mark.parametrize("draft", ["", "ngram", "ngram-tree"])
def test_sixteen_sessions_batched_equal_alone(tmp_path, arch, qtype, draft):
    kw = dict(hidden=256, intermediate=512) if qtype.endswith("_K") else {}
    cfg = tm.tiny_config(arch, max_position_embeddings=1024, **kw)
    path = tmp_path / "m.gguf"
    tm.write_gguf(path, cfg, tm.random_weights(cfg, seed=5), qtype=qtype)
    eng = _engine(path, draft)
    rng = random.Random(3)
    jobs = [(_prompt(i, cfg["vocab_size"], rng), _sampling(i, 12 + (i * 5) % 20)) for i in range(16)]
    want = {i: _alone(eng, p, s) for i, (p, s) in enumerate(jobs)}
    got, rounds = _batched(eng, jobs, join_after=10)
    assert got == want
    assert rounds < sum(len(w[0]) for w in want.values())  # sessions really shared passes


def test_batch_budget_defers_and_reports(tmp_path):
    cfg = tm.tiny_config("llama", max_position_embeddings=1024)
    path = tmp_path / "m.gguf"
    tm.write_gguf(path, cfg, tm.random_weights(cfg, seed=1), qtype="Q8_0")
    eng = _engine(path)
    rows = _core.Engine.max_batch_rows
    prompts = [[(j * 13 + i) % cfg["vocab_size"] for j in range(rows - 10)] for i in range(3)]
    ss = [eng.start(p, _sampling(0, 4), []) for p in prompts]
    # round 1: the first prompt takes most of the pass, the second gets the rest (a chunk)
    assert eng.step_batch(ss) == 2
    assert list(ss[0].committed) and not list(ss[1].committed) and not list(ss[2].committed)
    while not all(s.finished for s in ss):
        eng.step_batch(ss)
    for s in ss:
        assert s.stats["tokens"] == 4 and s.finish_reason == "length"


def test_batch_rejects_foreign_and_repeated_sessions(tmp_path):
    cfg = tm.tiny_config("llama")
    path = tmp_path / "m.gguf"
    tm.write_gguf(path, cfg, tm.random_weights(cfg, seed=1), qtype="Q8_0")
    a, b = _engine(path), _engine(path)
    sa, sb = a.start([1, 2, 3], _sampling(0, 4), []), b.start([1, 2, 3], _sampling(0, 4), [])
    with pytest.raises(ValueError, match="session 1 does not belong to this engine"):
        a.step_batch([sa, sb])
    with pytest.raises(ValueError, match="session 1 is also session 0"):
        a.step_batch([sa, sa])
    assert a.step_batch([]) == 0


@pytest.mark.real_model
def test_real_model_batched_equal_alone(smollm2_path):
    import fastspec
    tok = fastspec.Tokenizer.from_model(smollm2_path)
    eng = _engine(smollm2_path, "ngram", context=512)
    texts = ["Name three rivers in Europe.", "Write a haiku about bread.", "What is 17 times 23?",
             "Repeat after me: the quick brown fox jumps over the lazy dog."]
    jobs = [(tok.encode_chat([{"role": "user", "content": t}]), _sampling(i, 24)) for i, t in enumerate(texts)]
    want = {i: _alone(eng, p, s) for i, (p, s) in enumerate(jobs)}
    got, _ = _batched(eng, jobs)
    assert got == want
