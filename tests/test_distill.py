"""`fastspec distill` (python/fastspec/distill/): the PyTorch heads compute what the C++ heads
compute (a head written by head_gguf is read by the core and by load_head to the same numbers; the
unrolled training steps are exactly the rows the C++ drafter's cache holds while drafting), a
head trained in seconds on a tiny model drafts better than an untrained one and keeps greedy
output identical, a second run resumes, the CLI works, and the shipped prompts are many and
disjoint from the benchmark's."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastspec  # noqa: E402
import tiny_models as tm  # noqa: E402
from fastspec import _core  # noqa: E402
from fastspec.distill import data, head_gguf, heads  # noqa: E402

from head_files import CFG, D, HD, NH, NKV, VOCAB_IDS  # noqa: E402

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    p = tmp_path_factory.mktemp("distill") / "target.gguf"
    w = tm.random_weights(CFG, seed=1)
    w["model.embed_tokens.weight"] *= 4  # the current token dominates the next: a head can learn it in seconds
    tm.write_gguf(p, CFG, w, qtype="F32")
    return p


def _random_eagle(seed=0, n_feat=1):
    torch.manual_seed(seed)
    shape = heads.EagleShape(D, NH, NKV, HD, CFG["intermediate_size"], len(VOCAB_IDS), eps=1e-5, theta=10000.0)
    h = heads.EagleHead(shape, torch.randn(len(VOCAB_IDS), D), n_feat=n_feat)
    with torch.no_grad():  # away from the identity-like init: every weight matters
        for p in h.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return h.eval()


def _write(h, path, target, kind="eagle", dtype="f32", feature_layers=()):
    if kind == "eagle":
        s = h.shape
        keys = {"block_count": 1, "embedding_length": s.d, "feed_forward_length": s.ff, "attention.head_count": s.n_heads,
                "attention.head_count_kv": s.n_kv, "attention.key_length": s.head_dim,
                "attention.value_length": s.head_dim, "context_length": 256, "vocab_size": s.v_sub,
                "rope.freq_base": s.theta, "attention.layer_norm_rms_epsilon": s.eps}
    else:
        keys = {"embedding_length": D, "vocab_size": len(VOCAB_IDS), "head_count": h.w.shape[0], "context_length": 256}
    head_gguf.write(path, kind=kind, target=target, tensors=heads.named_matrices(h), vocab_ids=VOCAB_IDS,
                    feature_layer=CFG["num_hidden_layers"], dtype=dtype, arch_keys=keys, train={"tokens": 5},
                    feature_layers=feature_layers)


def test_torch_eagle_equals_core_and_round_trips(target, tmp_path):
    h = _random_eagle()
    path = tmp_path / "e.gguf"
    _write(h, path, target)
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((23, D)).astype(np.float32)
    feat = rng.standard_normal((23, D)).astype(np.float32)
    got_l, got_g = _core.DraftHead(str(path)).forward(emb, feat)
    with torch.no_grad():
        want_l, want_g = h(torch.from_numpy(emb)[None], torch.from_numpy(feat)[None])
        back = heads.load_head(str(path))
        again_l, _ = back(torch.from_numpy(emb)[None], torch.from_numpy(feat)[None])
    np.testing.assert_allclose(got_l, want_l[0].numpy(), atol=2e-4, rtol=1e-4)
    np.testing.assert_allclose(got_g, want_g[0].numpy(), atol=2e-4, rtol=1e-4)
    np.testing.assert_array_equal(again_l.numpy(), want_l.numpy())
    assert back.meta["fastspec.head.train_tokens"] == 5
    assert _core.DraftHead(str(path)).vocab_ids == VOCAB_IDS


def test_torch_eagle3_equals_core_and_round_trips(target, tmp_path):
    """An EAGLE-3 head (W_feat over three target states per row): torch, the core and load_head agree."""
    layers = [0, 1, CFG["num_hidden_layers"]]
    h = _random_eagle(5, n_feat=len(layers))
    path = tmp_path / "e3.gguf"
    _write(h, path, target, feature_layers=layers)
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((17, D)).astype(np.float32)
    states = rng.standard_normal((17, 3 * D)).astype(np.float32)
    core = _core.DraftHead(str(path))
    assert core.feature_layers == layers
    got_l, got_g = core.forward(emb, states)
    with torch.no_grad():
        want_l, want_g = h(torch.from_numpy(emb)[None], torch.from_numpy(states)[None])
        back = heads.load_head(str(path))
        again_l, _ = back(torch.from_numpy(emb)[None], torch.from_numpy(states)[None])
    assert back.n_feat == 3
    np.testing.assert_allclose(got_l, want_l[0].numpy(), atol=2e-4, rtol=1e-4)
    np.testing.assert_allclose(got_g, want_g[0].numpy(), atol=2e-4, rtol=1e-4)
    np.testing.assert_array_equal(again_l.numpy(), want_l.numpy())
    with pytest.raises(ValueError, match="must ascend"):
        _write(h, tmp_path / "bad.gguf", target, feature_layers=[1, 0, CFG["num_hidden_layers"]])


def test_unrolled_steps_are_the_drafters_rows(target, tmp_path):
    """Row (s, j) of EagleHead.unroll = the last row of a causal pass over the true rows 0..j
    followed by drafting rows fed g: what eagle_drafter.cpp's cache holds at drafting step s."""
    h = _random_eagle(1)
    path = tmp_path / "e.gguf"
    _write(h, path, target)
    core = _core.DraftHead(str(path))
    rng = np.random.default_rng(1)
    T, S = 12, 3
    emb = rng.standard_normal((T + S - 1, D)).astype(np.float32)
    feat = rng.standard_normal((T, D)).astype(np.float32)
    with torch.no_grad():
        outs = h.unroll(torch.from_numpy(emb)[None], torch.from_numpy(feat)[None], S)
    for j in (0, 4, T - 1):
        e_rows, f_rows = list(emb[: j + 1]), list(feat[: j + 1])
        for s in range(S):
            logits, g = core.forward(np.stack(e_rows), np.stack(f_rows))
            np.testing.assert_allclose(logits[-1], outs[s][0][0, j].numpy(), atol=3e-4, rtol=1e-4)
            if s + 1 < S:
                e_rows.append(emb[j + s + 1])  # the next drafting row: E of the drafted token, this row's g
                f_rows.append(g[-1])


def test_torch_medusa_equals_core(target, tmp_path):
    torch.manual_seed(3)
    h = heads.MedusaHead(D, 3, torch.randn(len(VOCAB_IDS), D))
    with torch.no_grad():
        h.w.normal_(0, 0.2), h.b.normal_(0, 0.1)
    path = tmp_path / "m.gguf"
    _write(h, path, target, kind="medusa", dtype="f16")
    feat = np.random.default_rng(2).standard_normal((9, D)).astype(np.float32)
    got, _ = _core.DraftHead(str(path)).forward(feat, None)
    with torch.no_grad():
        want = heads.load_head(str(path))(torch.from_numpy(feat)[None])[0].numpy()
    np.testing.assert_allclose(got, want, atol=2e-4, rtol=1e-4)  # the f16 file read the same by both


def test_q8_0_head_is_read_by_the_core(target, tmp_path):
    h = _random_eagle(2)
    p32, p8 = tmp_path / "f32.gguf", tmp_path / "q8.gguf"
    _write(h, p32, target)
    _write(h, p8, target, dtype="q8_0")
    assert os.path.getsize(p8) < 0.5 * os.path.getsize(p32)
    rng = np.random.default_rng(3)
    emb, feat = (rng.standard_normal((7, D)).astype(np.float32) for _ in range(2))
    a, _ = _core.DraftHead(str(p32)).forward(emb, feat)
    b, _ = _core.DraftHead(str(p8)).forward(emb, feat)
    with torch.no_grad():
        c, _ = heads.load_head(str(p8))(torch.from_numpy(emb)[None], torch.from_numpy(feat)[None])
    np.testing.assert_allclose(b, c[0].numpy(), atol=2e-3, rtol=1e-3)  # the same Q8_0 values on both sides
    assert np.abs(a - b).max() < 0.1 * np.abs(a).max()  # and close to the f32 head


def _prompts(path, n=24):
    path.write_text("# tiny\n" + "\n".join(f"prompt number {i} about things {i * 7}" for i in range(n)) + "\n")
    return str(path)


def _acceptance(target, draft, prompts):
    eng = fastspec.Engine(str(target), draft=draft, k=3, threads=1, context=256, draft_min_prob=0.0)
    plain = fastspec.Engine(str(target), threads=1, context=256)
    acc, drafted = 0, 0
    for p in prompts:
        ids = data.prompt_ids(eng, p)  # chat-formatted, as distill trained
        r = eng.generate(ids, max_tokens=40)
        assert r.tokens == plain.generate(ids, max_tokens=40).tokens  # greedy output unchanged
        acc, drafted = acc + r.stats["accepted"], drafted + r.stats["drafted"]
    return acc / max(1, drafted)


@pytest.mark.parametrize("variant", ["eagle", "medusa", "eagle3"])
def test_head_trained_in_seconds_drafts_better_and_resumes(target, tmp_path, variant):
    from fastspec.distill import distill, feature_layers

    kind = "medusa" if variant == "medusa" else "eagle"
    features = "eagle3" if variant == "eagle3" else "last"
    prompts = _prompts(tmp_path / "p.txt")
    out = tmp_path / f"{kind}.gguf"
    work = tmp_path / "work"
    lines = []
    s = distill(str(target), str(out), kind=kind, minutes=0.25, prompts=prompts, max_new=40, work_dir=str(work),
                dtype="f32", vocab=200, threads=1, medusa_heads=3, steps=2, data_fraction=0.3, lr=3e-3,
                features=features, progress=lines.append)
    assert s["steps"] > 3 and s["train_tokens"] > 1000 and np.isfinite(s["loss"])
    assert any("ETA" in ln for ln in lines) and any(ln.startswith("train:") for ln in lines)
    head = _core.DraftHead(str(out))
    assert head.kind == kind and len(head.vocab_ids) == 200
    assert head.feature_layers == feature_layers(features, CFG["num_hidden_layers"])
    head.check_target(str(target))  # tied to its target
    # an untrained head of the same shape, for comparison
    untrained = tmp_path / "untrained.gguf"
    if kind == "eagle":
        _write(_random_eagle(4), untrained, target)
    else:
        h = heads.MedusaHead(D, 3, torch.randn(len(VOCAB_IDS), D))
        _write(h, untrained, target, kind="medusa")
    evalp = [f"prompt number {i} about things {i * 7}" for i in (3, 11, 17)]  # training prompts
    a_trained, a_random = _acceptance(target, str(out), evalp), _acceptance(target, str(untrained), evalp)
    assert a_trained > max(0.04, 3 * a_random), (a_trained, a_random)  # a random target's text: hard to guess
    # a second run resumes: no new data for its pass-0 shards, training continues from the checkpoint
    shards = data.shards(str(work))
    lines2 = []
    s2 = distill(str(target), str(out), kind=kind, minutes=0.3, prompts=prompts, max_new=40, work_dir=str(work),
                 dtype="f32", vocab=200, threads=1, medusa_heads=3, steps=2, data_fraction=0.01, lr=3e-3,
                 features=features, progress=lines2.append)
    assert any("resumed at step" in ln for ln in lines2)
    assert s2["steps"] > s["steps"] and set(shards) <= set(data.shards(str(work)))
    sub_dir = kind if features == "last" else f"{kind}-{features}"
    assert json.load(open(work / sub_dir / "vocab.json")) == head.vocab_ids
    if variant == "eagle3":  # this work dir's data holds three states: a one-state EAGLE head needs another
        with pytest.raises(ValueError, match="records target states"):
            distill(str(target), str(out), kind="eagle", minutes=0.3, prompts=prompts, work_dir=str(work),
                    progress=lambda s: None)


def test_work_dir_of_another_target_is_refused(target, tmp_path):
    from fastspec.distill import distill

    other = tmp_path / "other.gguf"
    tm.write_gguf(other, CFG, tm.random_weights(CFG, seed=9), qtype="F32")
    work = tmp_path / "w"
    work.mkdir()
    (work / "meta.json").write_text(json.dumps({"target_sha256": _core.target_tie(str(other))[0], "data_seconds": 0}))
    with pytest.raises(ValueError, match="another target"):
        distill(str(target), str(tmp_path / "h.gguf"), minutes=0.1, work_dir=str(work), progress=lambda s: None)
    with pytest.raises(fastspec.ModelError, match="draft head"):
        _write(_random_eagle(), tmp_path / "e.gguf", target)
        distill(str(tmp_path / "e.gguf"), str(tmp_path / "h.gguf"), minutes=0.1, progress=lambda s: None)


def test_cli_distill(target, tmp_path):
    out = tmp_path / "cli.gguf"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-m", "fastspec", "distill", str(target), "--out", str(out), "--minutes",
                        "0.1", "--prompts", _prompts(tmp_path / "p.txt", 8), "--max-new", "16", "--vocab", "100",
                        "--threads", "1", "--work-dir", str(tmp_path / "w"), "--dtype", "q8_0"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ETA" in r.stderr and "wrote" in r.stderr
    assert _core.DraftHead(str(out)).kind == "eagle"


def test_shipped_prompts_are_many_and_disjoint_from_the_benchmark():
    train = data.read_prompts()
    assert len(train) >= 300 and len(set(train)) == len(train)
    spec = importlib.util.spec_from_file_location("compare_heads", os.path.join(ROOT, "bench", "compare_heads.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    evalp = [p for group in bench.PROMPTS.values() for p in group]
    assert evalp and not set(evalp) & set(train)
    words = lambda s: set(s.lower().split())  # noqa: E731
    for e in evalp:  # and not near-copies: no training prompt shares 80% of an eval prompt's words
        assert all(len(words(e) & words(t)) < 0.8 * len(words(e)) for t in train), e


def test_read_prompts_escapes(tmp_path):
    p = tmp_path / "p.txt"
    p.write_text("# comment\n\nline one\\nline two\nback\\\\slash\n")
    assert data.read_prompts(str(p)) == ["line one\nline two", "back\\slash"]
