"""Token trees through fastspec.Engine (SpecOptions.tree_nodes with the n-gram drafter): greedy
output identical to plain greedy decoding (the exact tier) on tiny llama and Gemma 3 models and
on the real SmolLM2, in every precision and KV type; seeded sampling reproducible; the trees really
branch and their stats and trace are reported. The acceptance rule alone: test_tree_sampler.py;
tree attention alone: test_tree_attention.py; batched sessions with trees: test_batch.py."""
import json

import pytest

pytest.importorskip("gguf")

import tiny_models as tm  # noqa: E402

import fastspec  # noqa: E402

from test_spec_engine import peaked_weights  # noqa: E402

CTX = 320
# continuations that differ after a shared word, so the n-gram drafter has several matches
PROMPTS = {
    "branching": "the cat sat on the mat. the dog ran to the cat. the cat ran to the dog. the dog sat on the",
    "repetitive": "a b c a b d a b c a b d a b e a b",
    "text": "héllo wörld — 日本語 🙂 code: def f(x):\n    return x",
}


@pytest.fixture(scope="module", params=["llama", "gemma3"])
def model(request, tmp_path_factory):
    cfg = tm.tiny_config(request.param, vocab=400, tie_word_embeddings=False)
    path = str(tmp_path_factory.mktemp("tree") / f"{request.param}.gguf")
    tm.write_gguf(path, cfg, peaked_weights(cfg, 11), qtype="Q8_0")
    return path


@pytest.mark.parametrize("k,tree_nodes", [(2, 4), (4, 16), (8, 63), (None, 24)], ids=str)
def test_greedy_trees_equal_plain(model, k, tree_nodes):
    plain = fastspec.Engine(model, threads=1, context=CTX)
    eng = fastspec.Engine(model, draft="ngram", k=k, tree_nodes=tree_nodes, threads=1, context=CTX)
    trees = 0
    for name, prompt in PROMPTS.items():
        g = eng.generate(prompt, max_tokens=64)
        assert g.tokens == plain.generate(prompt, max_tokens=64).tokens, (name, k, tree_nodes)
        trees += g.stats["tree_passes"]
        assert g.stats["tree_nodes"] >= g.stats["tree_passes"]
    if k is not None:
        assert trees > 0  # the trees really branched


@pytest.mark.parametrize("precision,kv_type", [("q8", "f16"), ("q8", "f32"), ("f32", "f16"), ("f32", "f32")])
def test_greedy_trees_in_every_precision(model, precision, kv_type):
    opts = dict(threads=2, context=CTX, precision=precision, kv_type=kv_type)
    plain = fastspec.Engine(model, **opts)
    eng = fastspec.Engine(model, draft="ngram", k=4, tree_nodes=12, **opts)
    for name, prompt in PROMPTS.items():
        assert eng.generate(prompt, max_tokens=48).tokens == plain.generate(prompt, max_tokens=48).tokens, name


def test_seeded_sampling_with_trees(model):
    eng = fastspec.Engine(model, draft="ngram", k=4, tree_nodes=12, threads=1, context=CTX)
    for temperature, top_k, top_p in ((0.7, 0, 1.0), (1.0, 20, 0.9)):
        a = eng.generate(PROMPTS["branching"], max_tokens=40, temperature=temperature, top_k=top_k, top_p=top_p,
                         seed=7)
        b = eng.generate(PROMPTS["branching"], max_tokens=40, temperature=temperature, top_k=top_k, top_p=top_p,
                         seed=7)
        assert a.tokens == b.tokens
        assert a.stats["drafted"] > 0


def test_tree_trace_and_limits(model, tmp_path):
    trace = tmp_path / "t.jsonl"
    eng = fastspec.Engine(model, draft="ngram", k=4, tree_nodes=16, threads=1, context=CTX, trace=str(trace))
    eng.generate(PROMPTS["branching"], max_tokens=32)
    lines = [json.loads(x) for x in trace.read_text().splitlines()]
    trees = [x for x in lines if "parent" in x]
    assert trees
    for x in trees:
        assert len(x["parent"]) == len(x["proposed"]) <= 16
        assert all(-1 <= p < i for i, p in enumerate(x["parent"]))
        assert x["accepted"] <= 4
    for bad in (-1, 64):
        with pytest.raises(ValueError, match="tree_nodes"):
            fastspec.Engine(model, draft="ngram", tree_nodes=bad)


def test_audit_with_trees(model, capsys):
    from fastspec import cli
    rc = cli.main(["audit", model, "--draft", "ngram", "--k", "3", "--tree-nodes", "8", "--prompts", "2",
                   "--samples", "300", "--max-tokens", "24", "--threads", "1", "--context", "256"])
    out = capsys.readouterr().out
    assert rc == 0 and "verdict: PASS" in out and "trees of <= 8 nodes" in out, out


def test_smollm2_greedy_trees_equal_plain(smollm2_path):
    plain = fastspec.Engine(smollm2_path, threads=2, context=1024)
    eng = fastspec.Engine(smollm2_path, draft="ngram", k=6, tree_nodes=24, threads=2, context=1024)
    prompts = ["Repeat this list twice: apples, pears, plums, figs. apples, pears,",
               "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n\ndef mul(a, b):\n"]
    trees = 0
    for p in prompts:
        g = eng.generate(p, max_tokens=96)
        assert g.tokens == plain.generate(p, max_tokens=96).tokens, p
        trees += g.stats["tree_passes"]
    assert trees > 0
