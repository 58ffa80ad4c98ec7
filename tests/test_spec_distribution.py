"""Distributional tier: sampled output with speculation has exactly the target's distribution.

Setup. A tiny llama with a 32-token vocabulary (its own byte-level BPE tokenizer: 4 specials, 18
characters, 10 merges), a draft that is the same network with a sharper final norm (a different
model file sharing the tokenizer; its q differs from p everywhere, so rejections and residual draws
happen all the time), and a prompt ending in a repeated pattern (so the n-gram drafter proposes).

What is sampled. The engine samples token 1 straight from the prefill, without speculation; the
first speculative step (k = 2) then yields tokens 2 and 3 (accepted drafts, recovered token).
Each run is `generate(PROMPT, max_tokens=4, seed=i)`, and the test is on (token 2, token 3) given
token 1: a chi-square goodness of fit, stratified by token 1, against the *exact* plain conditional
distribution p(t2 | t1) p(t3 | t1, t2) computed from the target's logits (`Engine.logits`) and the
numpy spec of the processed distribution (fastspec._sampling_ref). Cells with expected count
< 5 are lumped per stratum (fastspec.audit.bin_cells). Accept when p-value >= ALPHA = 1e-3.
(With max_tokens = 2 no speculation would run at all: the step after the prefill may draft at most
max_tokens - 2 tokens.)

How many samples (power). The alternative to detect: in every stratum, 2 percentage points of
probability moved from the most probable bin to the second most probable one (total variation
0.02 of the (t2, t3) distribution). Its noncentrality is lambda = sum_s n_s * 0.02^2 * (1/p_s1 +
1/p_s2); the noncentral chi-square with the test's dof is approximated by Patnaik's scaled central
chi-square. `required_samples` returns the smallest N (in steps of 500) whose binning (which
depends on N) detects that shift with probability >= 0.9 at ALPHA; every configuration runs that N.
For these models N comes out near 4,000-9,000 per configuration (printed with -s).

Does the test bite? The same statistic, on the same number of samples, from a numpy simulation
of the speculative step driven by the same target and draft distributions (same k, the n-gram
drafter's model tests/reference/ngram.py -- checked against the C++ one in test_ngram_drafter.py --,
the draft's stop-when-unsure rule) must pass when the simulation is correct and fail
when it is broken: (a) on rejection draw from p instead of norm(max(0, p - q)); (b) top-p applied
to q but not to p in the acceptance test.
"""
import math
import time

import numpy as np
import pytest

pytest.importorskip("gguf")

import head_files  # noqa: E402
import tiny_models as tm  # noqa: E402
from reference.ngram import proposal as ngram_proposal  # noqa: E402

import fastspec  # noqa: E402
from fastspec._sampling_ref import as_float32, processed_probs  # noqa: E402
from fastspec.audit import ANY, bin_cells, chi2_sf, stratified_chi_square  # noqa: E402

V = 32
CHARS = list("etaoinsrhldcumwy") + ["Ġ", "Ċ"]
MERGES = [("t", "h"), ("e", "r"), ("Ġ", "t"), ("i", "n"), ("o", "n"), ("a", "n"), ("e", "n"), ("Ġ", "a"),
          ("r", "e"), ("a", "t")]
TARGET_GAIN, DRAFT_GAIN = 1.5, 2.2
PROMPT = [8, 23, 22, 10, 26, 25, 21, 16, 26, 29, 26, 29]  # chosen for ~50% n-gram acceptance
K = 2
MAX_TOKENS = K + 2
ALPHA = 1e-3
SHIFT, POWER = 0.02, 0.9
DRAFT_MIN_PROB = 0.3  # SpecOptions.draft_min_prob (the default)
SAMPLING = {"T0.7": (0.7, 0, 1.0), "T1.0": (1.0, 0, 1.0), "T1.0-topk5": (1.0, 5, 1.0), "T1.0-topp0.8": (1.0, 0, 0.8)}


def small_tokenizer():
    tokens = tm.SPECIAL_TOKENS + CHARS + [a + b for a, b in MERGES]
    assert len(tokens) == V
    return {"tokens": tokens, "types": [3] * 4 + [1] * (V - 4), "merges": MERGES, "bos_id": 0, "eos_id": 1,
            "eot_id": 3, "add_bos": False, "chat_template": tm.CHAT_TEMPLATE}


# ---- statistics -------------------------------------------------------------------------------------

def chi2_isf(alpha, dof):
    lo, hi = 0.0, dof + 100.0 * math.sqrt(dof) + 100.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if chi2_sf(mid, dof) > alpha else (lo, mid)
    return hi


def power_noncentral(dof, lam, alpha=ALPHA):
    """P(noncentral chi2(dof, lam) > critical value), Patnaik: ~ c * chi2(h)."""
    c = (dof + 2 * lam) / (dof + lam)
    h = (dof + lam) ** 2 / (dof + 2 * lam)
    return chi2_sf(chi2_isf(alpha, dof) / c, h)


def required_samples(strata, cond, shift=SHIFT, power=POWER, n_max=60000):
    """Smallest N (step 500) detecting the documented alternative with the given power.
    strata: {t1: probability}; cond: {t1: {cell: conditional probability}}."""
    for n in range(500, n_max + 1, 500):
        lam, dof = 0.0, 0
        for s, ps in strata.items():
            bins = bin_cells(cond[s], n * ps)
            if len(bins) < 2:
                continue
            dof += len(bins) - 1
            e = sorted((b[2] / (n * ps) for b in bins), reverse=True)
            lam += n * ps * shift ** 2 * (1 / e[0] + 1 / e[1])
        if dof and power_noncentral(dof, lam) >= power:
            return n, dof, lam
    raise AssertionError(f"more than {n_max} samples needed")


# ---- the world: models, logits tables, exact distributions ----------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("dist")
    cfg = tm.tiny_config("llama", vocab=V)
    w = tm.random_weights(cfg, seed=1)
    w["model.norm.weight"] = w["model.norm.weight"] * TARGET_GAIN
    wd = dict(w, **{"model.norm.weight": w["model.norm.weight"] * (DRAFT_GAIN / TARGET_GAIN)})
    tok = small_tokenizer()
    paths = {"target": str(d / "target.gguf"), "draft": str(d / "draft.gguf")}
    tm.write_gguf(paths["target"], cfg, w, qtype="F32", tokenizer=tok)
    tm.write_gguf(paths["draft"], cfg, wd, qtype="F32", tokenizer=tok)
    # draft heads for the target (random weights: their proposals are what they are; exactness holds)
    paths["medusa"], paths["eagle"] = str(d / "medusa.gguf"), str(d / "eagle.gguf")
    head_files.write_medusa_head(paths["medusa"], paths["target"], cfg, list(range(V)), K=2, seed=4)
    ew = head_files.eagle_weights(cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"],
                                  tm.head_dim_of(cfg), cfg["intermediate_size"], V, seed=5,
                                  w_sub=w.get("lm_head.weight", w["model.embed_tokens.weight"]) * TARGET_GAIN)
    head_files.write_eagle_head(paths["eagle"], paths["target"], cfg, list(range(V)), weights=ew)
    target = fastspec.Engine(paths["target"], threads=1, context=64)
    draft = fastspec.Engine(paths["draft"], threads=1, context=64)
    assert target.tokenizer.vocab_size == V
    stops = frozenset(target.tokenizer.eos_ids)

    def tables(eng):
        """rows[()] = logits after PROMPT, rows[(a,)] after PROMPT + [a], rows[(a, b)] after PROMPT + [a, b]."""
        rows = {(): eng.logits(PROMPT)[-1]}
        for a in range(V):
            lg = eng.logits(PROMPT + [a, 0])
            rows[(a,)] = lg[-2]
            for b in range(V):
                rows[(a, b)] = (lg if b == 0 else eng.logits(PROMPT + [a, b]))[-1]
        return rows

    return {"paths": paths, "target": target, "T": tables(target), "D": tables(draft), "stops": stops, "cache": {}}


def proc(world, kind, key, sampling):
    """Processed distribution (numpy spec, float64 [V]) of a table row, cached."""
    cache = world["cache"]
    if (kind, key, sampling) not in cache:
        T, top_k, top_p = sampling  # at the float32 values the engine stores
        cache[(kind, key, sampling)] = processed_probs(world[kind][key], as_float32(T), top_k, as_float32(top_p))
    return cache[(kind, key, sampling)]


def exact(world, sampling):
    """({t1: p(t1)}, {t1: {(t2, t3) or (t2, ANY): p(t2, t3 | t1)}}) of plain sampling."""
    p1 = proc(world, "T", (), sampling)
    strata, cond = {}, {}
    for a in range(V):
        if p1[a] <= 0 or a in world["stops"]:
            continue
        strata[a] = p1[a]
        cells = {}
        p2 = proc(world, "T", (a,), sampling)
        for b in np.nonzero(p2)[0]:
            b = int(b)
            if b in world["stops"]:
                cells[(b, ANY)] = p2[b]
                continue
            p3 = proc(world, "T", (a, b), sampling)
            for c in np.nonzero(p3)[0]:
                cells[(b, int(c))] = p2[b] * p3[c]
        cond[a] = cells
    return strata, cond


def tally(samples, stops):
    """[(t1, t2, t3?), ...] -> {t1: {(t2, t3) or (t2, ANY): count}} (runs whose t1 stops are left out)."""
    counts = {}
    for toks in samples:
        if toks[0] in stops:
            continue
        cell = (toks[1], ANY) if toks[1] in stops else (toks[1], toks[2])
        row = counts.setdefault(toks[0], {})
        row[cell] = row.get(cell, 0) + 1
    return counts


# ---- numpy simulation of the speculative step (correct and broken) ---------------------------------

def draw_at(probs, u):
    """Inverse CDF over ids ascending: the first id with u * total < cumsum."""
    return int(min(np.searchsorted(np.cumsum(probs), u * probs.sum(), side="right"), len(probs) - 1))


def draw(rng, probs):
    return draw_at(probs, rng.random())


def simulate(world, drafter, sampling, rule, n, seed=0):
    """n runs of PROMPT -> (t1, t2[, t3]) as the engine's schedule does them: t1 plain; a step drafting
    up to K; if it committed only t2 (and t2 is no stop), a step drafting up to 1 for t3.
    rule: "correct" | "no_residual" (rejection draws from p) | "top_p_q_only" (p without top-p) |
          "shared_uniform" (the model drafter's draw and the acceptance test use the same uniform)."""
    rng = np.random.default_rng(seed)
    T, top_k, top_p = sampling
    p_sampling = (T, top_k, 1.0) if rule == "top_p_q_only" else sampling
    stops = world["stops"]
    out = []

    def step(prefix, k):
        """prefix: the generated tokens so far (after PROMPT); returns the committed tokens."""
        if drafter == "ngram":
            drafts = ngram_proposal(PROMPT + prefix, k)
            qs = []
            for d in drafts:
                q = np.zeros(V)
                q[d] = 1.0
                qs.append(q)
        else:
            drafts, qs, us = [], [], []
            for i in range(k):
                logits = world["D"][tuple(prefix + drafts)].astype(np.float64)
                e = np.exp(logits - logits.max())
                if e.max() / e.sum() < DRAFT_MIN_PROB:
                    break
                q = proc(world, "D", tuple(prefix + drafts), sampling)
                u = rng.random()
                us.append(u)
                drafts.append(draw_at(q, u))
                qs.append(q)
        for i, (d, q) in enumerate(zip(drafts, qs)):
            p = proc(world, "T", tuple(prefix + drafts[:i]), p_sampling)
            u = us[i] if rule == "shared_uniform" else rng.random()
            if u * q[d] < p[d]:
                continue
            r = p if rule == "no_residual" else np.maximum(0.0, p - q)
            if r.sum() <= 0:
                r = p
            return drafts[:i] + [draw(rng, r)]
        if len(prefix + drafts) >= 3:  # the bonus would be token 4: not recorded
            return drafts
        return drafts + [draw(rng, proc(world, "T", tuple(prefix + drafts), p_sampling))]

    for _ in range(n):
        t1 = draw(rng, proc(world, "T", (), sampling))
        toks = [t1]
        if t1 not in stops:
            toks += step([t1], K)
            if len(toks) < 3 and toks[1] not in stops:
                toks += step(toks, 1)
        out.append(tuple(toks[:3]))
    return out


# ---- the tests -------------------------------------------------------------------------------------

def engine_samples(world, drafter, sampling, n):
    kind = drafter.split("-")[0]
    draft = {"ngram": "ngram", "model": world["paths"]["draft"]}.get(kind) or world["paths"][kind]
    trees = 6 if drafter.endswith("-tree") else 0  # token trees: the multi-candidate rule (spec/tree.h)
    lookup = 1 if "-lookup" in drafter else 0  # prompt lookup first, the head elsewhere
    eng = fastspec.Engine(world["paths"]["target"], draft=draft, k=K, threads=1, context=64, tree_nodes=trees,
                          lookup_min=lookup)
    T, top_k, top_p = sampling
    out, drafted, accepted, trees = [], 0, 0, 0
    for seed in range(n):
        g = eng.generate(PROMPT, max_tokens=MAX_TOKENS, temperature=T, top_k=top_k, top_p=top_p, seed=seed)
        out.append(tuple(g.tokens[:3]))
        drafted += g.stats["drafted"]
        trees += g.stats["tree_passes"]
        accepted += g.stats["accepted"]
    assert (trees > 0.2 * n) == drafter.endswith("-tree"), trees  # the trees really branch
    return out, drafted, accepted


@pytest.mark.slow
@pytest.mark.parametrize("drafter", ["model", "ngram", "ngram-tree", "eagle", "eagle-tree", "eagle-lookup", "medusa",
                                     "medusa-tree"])
@pytest.mark.parametrize("name", list(SAMPLING))
def test_speculative_sampling_has_the_target_distribution(world, drafter, name):
    sampling = SAMPLING[name]
    strata, cond = exact(world, sampling)
    n, dof, lam = required_samples(strata, cond)
    t0 = time.perf_counter()
    samples, drafted, accepted = engine_samples(world, drafter, sampling, n)
    elapsed = time.perf_counter() - t0
    # speculation really ran, with both outcomes (random heads accept little, trees per node less)
    assert drafted > 0.5 * n and accepted > 0.02 * drafted and accepted < 0.95 * drafted, (drafted, accepted)
    res = stratified_chi_square(tally(samples, world["stops"]), cond)
    print(f"\n{drafter} {name}: N={n} (designed dof {dof}, lambda {lam:.1f}) in {elapsed:.1f}s; "
          f"acceptance {accepted / drafted:.2f}; {res}")
    assert res.p_value >= ALPHA, res


@pytest.mark.parametrize("drafter", ["model", "ngram"])
@pytest.mark.parametrize("name", list(SAMPLING))
def test_the_chi_square_test_bites(world, drafter, name):
    """Same statistic, same N, on simulated samplers driven by the same p and q: the correct one
    passes, the broken ones are rejected."""
    sampling = SAMPLING[name]
    strata, cond = exact(world, sampling)
    n, _, _ = required_samples(strata, cond)
    ok = stratified_chi_square(tally(simulate(world, drafter, sampling, "correct", n, seed=1), world["stops"]), cond)
    assert ok.p_value >= ALPHA, ok
    bad = stratified_chi_square(tally(simulate(world, drafter, sampling, "no_residual", n, seed=1), world["stops"]), cond)
    print(f"\n{drafter} {name}: correct {ok}\n  no residual {bad}")
    assert bad.p_value < ALPHA, bad
    if sampling[2] < 1:
        bad = stratified_chi_square(tally(simulate(world, drafter, sampling, "top_p_q_only", n, seed=1),
                                          world["stops"]), cond)
        print(f"  top-p on q only {bad}")
        assert bad.p_value < ALPHA, bad
    if drafter == "model":
        bad = stratified_chi_square(tally(simulate(world, drafter, sampling, "shared_uniform", n, seed=1),
                                          world["stops"]), cond)
        print(f"  shared uniform {bad}")
        assert bad.p_value < ALPHA, bad


def exact_counts(strata, cond, n, rng, shift=0.0):
    """Counts of n runs drawn from the exact plain distribution, optionally with the documented
    alternative applied: `shift` of probability moved, in every stratum, from its most probable
    bin (a single cell) to its second most probable one."""
    ids = list(strata)
    n_s = rng.multinomial(n, np.array([strata[s] for s in ids]) / sum(strata.values()))
    counts = {}
    for s, m in zip(ids, n_s):
        if m == 0:
            continue
        cells = list(cond[s])
        p = np.array([cond[s][c] for c in cells])
        p = p / p.sum()
        if shift:
            bins = bin_cells(cond[s], m)
            if len(bins) >= 2:
                a, b = cells.index(bins[0][1][0]), cells.index(bins[1][1][0])
                moved = min(shift, p[a])
                p[a] -= moved
                p[b] += moved
        counts[s] = {c: int(x) for c, x in zip(cells, rng.multinomial(m, p)) if x}
    return counts


@pytest.mark.parametrize("name", list(SAMPLING))
def test_power_claim_holds_empirically(world, name):
    """With the N the power calculation picked, the documented 2% shift is rejected in most of 20
    replicates (designed power 0.9), and the unshifted distribution almost never (ALPHA)."""
    strata, cond = exact(world, SAMPLING[name])
    n, _, _ = required_samples(strata, cond)
    rng = np.random.default_rng(11)
    shifted = sum(stratified_chi_square(exact_counts(strata, cond, n, rng, SHIFT), cond).p_value < ALPHA
                  for _ in range(20))
    null = sum(stratified_chi_square(exact_counts(strata, cond, n, rng), cond).p_value < ALPHA for _ in range(20))
    print(f"\n{name}: N={n}: shift {SHIFT} rejected {shifted}/20, no shift rejected {null}/20")
    assert shifted >= 14 and null <= 1


def test_power_calculation_is_sane():
    """The Patnaik power against the known exact value (scipy's noncentral chi-square: scipy is in
    the test extra, so a missing scipy is an error here, not a skip) and the required N for a
    simple two-cell case."""
    import scipy.stats as stats
    for dof, lam in [(5, 20.0), (30, 50.0), (100, 80.0)]:
        exact_power = stats.ncx2.sf(stats.chi2.isf(ALPHA, dof), dof, lam)
        assert power_noncentral(dof, lam) == pytest.approx(exact_power, abs=0.02)
    n, dof, _ = required_samples({0: 1.0}, {0: {"a": 0.5, "b": 0.5}})
    # one dof, w^2 = 0.02^2 * 4: lambda = N * 0.0016 must reach ~ 21 for 90% power at 1e-3 (N ~ 13,000)
    assert dof == 1 and 12000 <= n <= 14500
