"""Draft heads in C++ (cpp/src/model/eagle_head.h, medusa_head.h, spec/eagle_drafter.cpp,
spec/medusa_drafter.cpp): the tie to the target (sha256, vocabulary hash) against hashlib, each
head's math against a numpy reference, the features the drafter reads against the target's true
hidden states (through the trace: every proposal recomputed), greedy identity with heads, and the
errors: a head for another target, a head passed as the target."""
import hashlib
import json
import os

import numpy as np
import pytest

import fastspec
import head_files as hf
import tiny_models as tm
from fastspec import _core

from head_files import CFG, D, HD, NH, NKV, VOCAB_IDS
from reference.ngram import proposal
from test_reference import tokens


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    p = tmp_path_factory.mktemp("heads") / "target.gguf"
    tm.write_gguf(p, CFG, tm.random_weights(CFG, seed=1), qtype="F32")
    return p


@pytest.fixture(scope="module")
def eagle(target):
    p = target.parent / "eagle.gguf"
    return p, hf.write_eagle_head(p, target, CFG, VOCAB_IDS, seed=2)


# an EAGLE-3 head: three target states per position (low, mid, high), reduced by W_feat
FL3 = [0, 1, CFG["num_hidden_layers"]]


@pytest.fixture(scope="module")
def eagle3(target):
    p = target.parent / "eagle3.gguf"
    return p, hf.write_eagle_head(p, target, CFG, VOCAB_IDS, seed=6, feature_layers=FL3)


@pytest.fixture(scope="module")
def medusa(target):
    p = target.parent / "medusa.gguf"
    return p, hf.write_medusa_head(p, target, CFG, VOCAB_IDS, K=3, seed=3)


def test_target_tie_matches_hashlib(target, tmp_path):
    sha, vh = _core.target_tie(str(target))
    assert sha == hashlib.sha256(target.read_bytes()).hexdigest()
    toks = fastspec.inspect(target).metadata["tokenizer.ggml.tokens"]
    assert vh == hashlib.sha256(b"".join(t.encode() + b"\0" for t in toks)).hexdigest()
    # a sharded safetensors checkpoint: its shards' bytes in name order; no GGUF tokens
    tm.write_safetensors_checkpoint(tmp_path, CFG, tm.random_weights(CFG, seed=1), sharded=True)
    shards = sorted(f for f in os.listdir(tmp_path) if f.endswith(".safetensors"))
    assert len(shards) > 1
    h = hashlib.sha256()
    for f in shards:
        h.update((tmp_path / f).read_bytes())
    assert _core.target_tie(str(tmp_path)) == (h.hexdigest(), hashlib.sha256(b"vocab_size=320").hexdigest())


@pytest.mark.parametrize("T", [1, 19, 300])  # 300: two chunks of the head's pass
def test_eagle_head_matches_numpy(eagle, T):
    path, W = eagle
    rng = np.random.default_rng(T)
    emb, feat = rng.standard_normal((2, T, D)).astype(np.float32)
    head = _core.DraftHead(str(path), threads=2, precision="f32")
    assert head.kind == "eagle" and head.vocab_ids == VOCAB_IDS and head.n_embd == D
    logits, g = head.forward(emb, feat)
    want_l, want_g = hf.eagle_ref(W, emb, feat, NH, NKV, HD)
    np.testing.assert_allclose(g, want_g, atol=2e-4, rtol=0)
    np.testing.assert_allclose(logits, want_l, atol=1e-3, rtol=0)


def test_eagle3_head_matches_numpy(eagle3):
    path, W = eagle3
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((13, D)).astype(np.float32)
    states = rng.standard_normal((13, 3 * D)).astype(np.float32)  # [s_low | s_mid | s_high] per row
    head = _core.DraftHead(str(path), threads=2, precision="f32")
    assert head.feature_layers == FL3 and head.feature_layer == FL3[-1]
    logits, g = head.forward(emb, states)
    want_l, want_g = hf.eagle_ref(W, emb, hf.eagle_reduce(W, states), NH, NKV, HD)
    np.testing.assert_allclose(g, want_g, atol=2e-4, rtol=0)
    np.testing.assert_allclose(logits, want_l, atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match=rf"feat must be float32 \[T, {3 * D}\]"):
        head.forward(emb, states[:, :D])  # one state per row is not what this head reads


def test_medusa_head_matches_numpy(medusa):
    path, W = medusa
    feat = np.random.default_rng(0).standard_normal((7, D)).astype(np.float32)
    head = _core.DraftHead(str(path), threads=2, precision="f32")
    assert head.kind == "medusa"
    logits, _ = head.forward(feat)
    np.testing.assert_allclose(logits, hf.medusa_ref(W, feat, 3), atol=1e-3, rtol=0)


def test_head_for_another_target_raises(eagle, target, tmp_path):
    other = tmp_path / "other.gguf"
    tm.write_gguf(other, CFG, tm.random_weights(CFG, seed=9), qtype="F32")  # same vocabulary, other weights
    with pytest.raises(fastspec.ModelError) as e:
        fastspec.Engine(other, draft=str(eagle[0]), threads=1)
    msg = str(e.value)
    assert str(eagle[0]) in msg and str(other) in msg and "target.gguf" in msg
    assert _core.target_tie(str(target))[0] in msg and _core.target_tie(str(other))[0] in msg
    assert "weights differ" in msg and "fastspec distill" in msg
    _core.DraftHead(str(eagle[0])).check_target(str(target))  # its own target passes


def test_head_as_target_raises(eagle):
    with pytest.raises(fastspec.ModelError, match="draft head"):
        fastspec.Engine(eagle[0], threads=1)


def test_malformed_head_metadata(target, tmp_path):
    p = tmp_path / "bad.gguf"
    hf.write_eagle_head(p, target, CFG, VOCAB_IDS[::-1], seed=2)  # descending ids
    with pytest.raises(fastspec.FormatError, match="ascending"):
        _core.DraftHead(str(p))
    hf.write_eagle_head(p, target, CFG, VOCAB_IDS, seed=2, feature_layers=[0, 1])  # does not end with feature_layer
    with pytest.raises(fastspec.FormatError, match="feature_layers ends with 1"):
        _core.DraftHead(str(p))
    W = hf.eagle_weights(D, NH, NKV, HD, CFG["intermediate_size"], len(VOCAB_IDS), seed=2)  # no W_feat
    hf.write_eagle_head(p, target, CFG, VOCAB_IDS, weights=W, feature_layers=FL3)
    with pytest.raises(fastspec.ModelError, match="fastspec_eagle.feat.weight"):
        _core.DraftHead(str(p))
    hf.write_eagle_head(p, target, CFG, VOCAB_IDS, seed=2, feature_layer=9, feature_layers=[0, 9])
    with pytest.raises(fastspec.ModelError, match="reads hidden state 9"):
        fastspec.Engine(target, draft=str(p), threads=1)


def _engine(target, draft, **kw):
    return fastspec.Engine(target, draft=None if draft is None else str(draft), threads=2, precision="f32",
                           kv_type="f32", context=256, **kw)


@pytest.mark.parametrize("kind", ["eagle", "medusa", "eagle-tree", "medusa-tree", "eagle-lookup", "medusa-lookup-tree",
                                  "eagle3", "eagle3-tree"])
@pytest.mark.parametrize("k", [None, 3])
def test_greedy_identity_with_heads(target, eagle, eagle3, medusa, kind, k):
    head = (eagle3 if kind.startswith("eagle3") else eagle if kind.startswith("eagle") else medusa)[0]
    kw = dict(k=k, draft_min_prob=0.0, tree_nodes=12 if kind.endswith("-tree") else 0,
              lookup_min=2 if "-lookup" in kind else 0)
    plain = _engine(target, None)
    for seed in range(3):
        # a fresh engine per prompt: adaptive k starts from the costs an engine measured in earlier
        # generations and may rightly decline to draft there
        spec = _engine(target, head, **kw)
        prompt = tokens(CFG, 5 + 9 * seed, seed=seed)
        a = plain.generate(prompt, max_tokens=48)
        b = spec.generate(prompt, max_tokens=48)
        assert b.tokens == a.tokens
        assert b.stats["drafted"] > 0
        if kw["tree_nodes"]:
            assert b.stats["tree_passes"] > 0 and b.stats["tree_nodes"] > b.stats["tree_passes"]  # they branch
        again = spec.generate(prompt, max_tokens=48)  # its prompt now comes from the prefix cache
        assert again.tokens == a.tokens and again.stats["prefix_cached_tokens"] > 0
        assert again.stats["drafted"] > 0 or k is None


def test_lookup_first_drafts_copies_where_they_exist(target, eagle, tmp_path):
    """lookup_min: each proposal is prompt lookup's chain where the context's last lookup_min+ tokens
    occurred earlier, else the head's drafts; both happen in one generation (lookup_min 1: over 320
    ids a 60-token context often holds the last token before)."""
    trace = tmp_path / "trace.jsonl"
    prompt = tokens(CFG, 24, seed=5)
    gen = _engine(target, eagle[0], k=3, draft_min_prob=0.0, lookup_min=1, trace=trace).generate(prompt, max_tokens=60)
    seq = prompt + gen.tokens
    copied = headed = 0
    for line in trace.read_text().splitlines():
        rec = json.loads(line)
        if rec["k"] <= 0:
            continue
        want = proposal(seq[:rec["position"]], rec["k"], 1, 4)  # the n-gram drafter's own rule
        if want:
            assert rec["proposed"] == want, rec
            copied += 1
        else:
            assert rec["proposed"], rec  # the head drafted (draft_min_prob 0: it always does)
            headed += 1
    assert copied > 0 and headed > 0, (copied, headed)


@pytest.mark.parametrize("kind", ["eagle-lookup-tree", "medusa-tree"])
def test_scheduler_with_heads_gives_each_request_its_alone_tokens(target, eagle, medusa, kind):
    """`fastspec serve --draft HEAD --tree-nodes N --lookup-min M`: requests batched by the scheduler
    (continuous batching: each session's head drafts its own tree) get exactly the tokens they get
    alone, greedy and seeded sampling."""
    head = eagle[0] if kind.startswith("eagle") else medusa[0]
    eng = _engine(target, head, draft_min_prob=0.0, tree_nodes=12, lookup_min=2 if "lookup" in kind else 0)
    prompts = [tokens(CFG, 5 + 7 * i, seed=10 + i) for i in range(6)]

    def sampling(i):
        s = _core.SamplingOptions()
        s.max_tokens = 24 + i
        if i % 2:
            s.temperature, s.top_p, s.seed = 0.8, 0.9, 40 + i
        return s

    want = []
    for i, p in enumerate(prompts):
        s = eng._core.start(p, sampling(i), [], True)
        out = []
        while not s.finished:
            out += list(s.step())
        want.append(out)
    opts = _core.SchedulerOptions()
    opts.max_sequences, opts.prefix_cache_mb = 4, 0
    sched = _core.Scheduler(eng._core, opts)
    try:
        reqs = [sched.submit(p, sampling(i), []) for i, p in enumerate(prompts)]
        got = []
        for r in reqs:
            out = []
            while not r.finished:
                out += r.next(60.0)
            got.append(out)
        assert got == want
        st = sched.stats
        assert st["finished"] == 6 and st["rounds"] < sum(len(w) for w in want)
    finally:
        sched.close()


def test_sampled_with_heads_runs(target, eagle, medusa):
    for head in (eagle[0], medusa[0]):
        g = _engine(target, head, draft_min_prob=0.0).generate(tokens(CFG, 9), max_tokens=40, temperature=0.8,
                                                               top_p=0.9, seed=3)
        assert (len(g.tokens) == 40 or g.finish_reason == "stop") and g.stats["drafted"] > 0
        assert all(0 <= t < 320 for t in g.tokens)


@pytest.mark.parametrize("kind", ["eagle", "eagle3"])
def test_eagle_drafts_read_the_true_features(target, eagle, eagle3, tmp_path, kind):
    """Every proposal of a greedy run is the head's chain recomputed from scratch: rows 0..L-2 from
    the target's true hidden states of the committed context (EAGLE-3: the three it reads, reduced
    by W_feat), then its own g fed back."""
    path, W = eagle3 if kind == "eagle3" else eagle
    layers = FL3 if kind == "eagle3" else [CFG["num_hidden_layers"]]
    trace = tmp_path / "trace.jsonl"
    prompt = tokens(CFG, 11, seed=4)
    gen = _engine(target, path, k=4, draft_min_prob=0.0, trace=trace).generate(prompt, max_tokens=40)
    seq = prompt + gen.tokens
    ctx_eng = _engine(target, None)._core
    ids = np.array(VOCAB_IDS)
    checked = 0
    for line in trace.read_text().splitlines():
        rec = json.loads(line)
        if not rec["proposed"]:
            continue
        L = rec["position"]  # the context length when drafting
        ctx = seq[:L]
        c = ctx_eng.new_context()
        _, f = c.forward_features(ctx[:L - 1], [0] + layers)
        E, F = f[:, 0], hf.eagle_reduce(W, f[:, 1:].reshape(L - 1, -1))
        emb, feat = [*E[1:L - 1]], [*F[:L - 2]]
        emb.append(None)  # E(c_{L-1}): the last context token
        last = np.asarray(ctx_eng.new_context().forward_features([ctx[L - 1]], [0])[1][0, 0])
        emb[-1] = last
        feat.append(F[L - 2])
        want = []
        for _ in range(len(rec["proposed"])):
            lg, g = hf.eagle_ref(W, np.array(emb), np.array(feat), NH, NKV, HD)
            tok = int(ids[np.argmax(lg[-1])])
            want.append(tok)
            emb.append(np.asarray(ctx_eng.new_context().forward_features([tok], [0])[1][0, 0]))
            feat.append(g[-1])
        assert rec["proposed"] == want, (L, rec["proposed"], want)
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("kind", ["eagle", "medusa", "eagle-lookup"])
def test_audit_with_heads(target, eagle, medusa, kind, capsys):
    """`fastspec audit` with a head: greedy identity and the chi-square on the first step."""
    from fastspec import cli

    head = (eagle if kind.startswith("eagle") else medusa)[0]
    lookup = ["--lookup-min", "1"] if kind.endswith("-lookup") else []
    rc = cli.main(["audit", str(target), "--draft", str(head), "--k", "2", "--prompts", "2", "--samples", "400",
                   "--max-tokens", "24", "--threads", "1", "--context", "256", *lookup])
    out = capsys.readouterr().out
    assert rc == 0 and "verdict: PASS" in out, out
    assert ("prompt lookup first" in out) == bool(lookup), out
    assert "chi-square" in out
