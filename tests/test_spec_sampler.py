"""Exact tier of the rejection sampler: fastspec._core.rejection_sample against an independent numpy
copy of the algorithm (DESIGN.md "Speculative decoding"), with the randomness passed in.

    p_i = processed(p_logits[i])   (temperature, top-k, top-p exactly as the plain sampler)
    greedy: accept draft i iff it is argmax(p_logits[i]); first rejection i -> (i, argmax_i, recovered);
            all accepted -> (k, argmax_k, bonus)
    stochastic: accept draft d_i iff u_i * q_i[d_i] < p_i[d_i]; first rejection i -> draw from
            norm(max(0, p_i - q_i)) (p_i if that is empty) at u_k; all accepted -> draw p_k at u_k.

The processed distributions come from the one numpy spec, fastspec._sampling_ref, whose arithmetic
is the C++ plain sampler's (spec/sampler.cpp): float64, stored as float32 (np_processed); sums run
sequentially in float64 over ids ascending; an inverse-CDF draw returns the first id with
u * total < cumsum. So results must be *equal*, not close.
"""
import numpy as np
import pytest

from fastspec import _core
from fastspec._sampling_ref import as_float32, processed_probs

rejection_sample = getattr(_core, "rejection_sample", None)
pytestmark = pytest.mark.skipif(rejection_sample is None, reason="_core.rejection_sample is not built yet")


def opts(temperature=1.0, top_k=0, top_p=1.0):
    o = _core.SamplingOptions()
    o.temperature, o.top_k, o.top_p = temperature, top_k, top_p
    return o


# ---- the numpy copy -------------------------------------------------------------------------------

def seq_sum(x):
    """Sequential float64 sum (np.sum is pairwise; C++ adds left to right)."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.cumsum(x)[-1]) if len(x) else 0.0


def np_processed(logits, temperature, top_k=0, top_p=1.0):
    """Dense float64 [V] holding the float32 probabilities the plain sampler stores: the spec
    (fastspec._sampling_ref) at the engine's float32 temperature and top_p, rounded to float32."""
    p = processed_probs(np.asarray(logits, dtype=np.float32), as_float32(temperature), top_k, as_float32(top_p))
    return p.astype(np.float32).astype(np.float64)


def np_draw(probs, u):
    """Inverse CDF over ids ascending: first id with u * total < cumsum (last positive id if none)."""
    cum = np.cumsum(np.asarray(probs, dtype=np.float64))
    hit = np.nonzero(u * cum[-1] < cum)[0]
    if len(hit):
        return int(hit[0])
    return int(np.nonzero(probs > 0)[0][-1])


def np_rejection_sample(p_logits, q_probs, draft, temperature, top_k, top_p, uniforms):
    k = len(draft)
    if temperature == 0:
        for i in range(k):
            best = int(np.argmax(p_logits[i]))
            if draft[i] != best:
                return i, best, "recovered"
        return k, int(np.argmax(p_logits[k])), "bonus"
    for i in range(k):
        p = np_processed(p_logits[i], temperature, top_k, top_p)
        q = q_probs[i].astype(np.float64)
        d = int(draft[i])
        if uniforms[i] * q[d] < p[d]:
            continue
        r = np.maximum(0.0, p - q)
        if seq_sum(r) <= 0:
            r = p
        return i, np_draw(r, uniforms[k]), "recovered"
    return k, np_draw(np_processed(p_logits[k], temperature, top_k, top_p), uniforms[k]), "bonus"


def cpp(p_logits, q_probs, draft, o, uniforms):
    n, t, kind = rejection_sample(np.ascontiguousarray(p_logits, np.float32), np.ascontiguousarray(q_probs, np.float32),
                                  np.ascontiguousarray(draft, np.int32), o, np.ascontiguousarray(uniforms, np.float64))
    return int(n), int(t), str(kind)


# ---- random cases ---------------------------------------------------------------------------------

SAMPLING = [(0.0, 0, 1.0), (0.7, 0, 1.0), (1.0, 0, 1.0), (1.0, 5, 1.0), (1.0, 0, 0.8), (0.7, 10, 0.9),
            (1.3, 0, 0.5)]


def make_case(rng, V, k, temperature, top_k, top_p, q_kind, noise):
    """p_logits [k+1, V]; q [k, V] (the draft's processed distribution: dense from noisy logits, or
    one-hot as from the n-gram drafter); drafts drawn from q; uniforms [k+1]."""
    p_logits = (rng.standard_normal((k + 1, V)) * 2.5).astype(np.float32)
    q = np.zeros((k, V), np.float32)
    draft = np.zeros(k, np.int32)
    for i in range(k):
        if q_kind == "onehot":
            # the n-gram drafter proposes the target's favourite half the time
            d = int(np.argmax(p_logits[i])) if rng.random() < 0.5 else int(rng.integers(V))
            q[i, d] = 1.0
        else:
            ql = p_logits[i] + (rng.standard_normal(V) * noise).astype(np.float32)
            # the draft's distribution is processed with the same options (temperature 0: one-hot argmax)
            q[i] = np_processed(ql, temperature, top_k, top_p).astype(np.float32)
            qq = q[i].astype(np.float64)
            d = int(rng.choice(V, p=qq / qq.sum()))
        draft[i] = d
    return p_logits, q, draft, rng.random(k + 1)


@pytest.mark.parametrize("temperature,top_k,top_p", SAMPLING)
@pytest.mark.parametrize("q_kind", ["dense", "onehot"])
@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_rejection_sample_equals_numpy_copy(temperature, top_k, top_p, q_kind, k):
    rng = np.random.default_rng([k, int(temperature * 10), top_k, int(top_p * 10), q_kind == "dense"])
    o = opts(temperature, top_k, top_p)
    kinds = {"recovered": 0, "bonus": 0}
    for trial in range(60):
        V = 64 if trial % 3 else 300
        noise = [0.0, 0.3, 1.0, 3.0][trial % 4]
        p_logits, q, draft, u = make_case(rng, V, k, temperature, top_k, top_p, q_kind, noise)
        want = np_rejection_sample(p_logits, q, draft, temperature, top_k, top_p, u)
        got = cpp(p_logits, q, draft, o, u)
        assert got == want, (trial, V, noise, draft.tolist(), u.tolist())
        kinds[want[2]] += 1
    if q_kind == "dense":
        assert kinds["bonus"] > 0  # both outcomes were exercised (noise 0 means p == q)
    assert kinds["recovered"] > 0


def test_reference_processed_matches_cpp_processed():
    """The spec's p is the plain sampler's p (same kept set; float32 within one ulp, numpy's exp
    against the C library's), so the comparison above is one of the acceptance logic, not of two
    different distributions. Also at temperatures and top_p that are not float32 values."""
    rng = np.random.default_rng(5)
    cases = [s for s in SAMPLING if s[0] > 0] + [(0.3, 0, 0.7), (2.1, 3, 0.33), (1.0, 1, 1.0), (1.0, 0, 0.01)]
    for temperature, top_k, top_p in cases:
        for _ in range(20):
            logits = (rng.standard_normal(200) * 3).astype(np.float32)
            ids, probs = _core.processed_distribution(logits, opts(temperature, top_k, top_p))
            dense = np.zeros(200, np.float32)
            dense[ids] = probs
            mine = np_processed(logits, temperature, top_k, top_p).astype(np.float32)
            np.testing.assert_array_equal(dense > 0, mine > 0)
            np.testing.assert_array_max_ulp(dense, mine, maxulp=1)
            assert np.isclose(probs.astype(np.float64).sum(), 1.0, atol=1e-5)
    for _ in range(5):  # temperature 0: one-hot at the lowest maximal id
        logits = rng.integers(0, 3, 50).astype(np.float32)
        ids, probs = _core.processed_distribution(logits, opts(0.0))
        np.testing.assert_array_equal(np_processed(logits, 0.0)[ids], [1.0])
        assert list(ids) == [int(np.argmax(logits))]


# ---- edge cases -----------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature,top_k,top_p", [s for s in SAMPLING if s[0] > 0])
def test_p_equal_q_always_accepts(temperature, top_k, top_p):
    rng = np.random.default_rng(1)
    o = opts(temperature, top_k, top_p)
    for k in (1, 3, 8):
        for trial in range(20):
            p_logits, q, draft, u = make_case(rng, 50, k, temperature, top_k, top_p, "dense", 0.0)
            if trial % 2:
                u[:k] = 1.0 - 2.0 ** -53  # the largest uniform the generator makes still accepts
            got = cpp(p_logits, q, draft, o, u)
            assert got == np_rejection_sample(p_logits, q, draft, temperature, top_k, top_p, u)
            assert got[0] == k and got[2] == "bonus"


def test_one_hot_draft_on_a_token_the_target_excludes():
    """q(d) = 1 with p(d) = 0 (cut by top-k): always rejected, whatever the uniform; the residual is
    p itself (p - q is p except at d, where p is 0), so the recovered token is a draw from p."""
    rng = np.random.default_rng(2)
    V = 40
    o = opts(1.0, 4, 1.0)
    for _ in range(50):
        p_logits = (rng.standard_normal((2, V)) * 2).astype(np.float32)
        p0 = np_processed(p_logits[0], 1.0, 4)
        d = int(rng.choice(np.nonzero(p0 == 0)[0]))
        q = np.zeros((1, V), np.float32)
        q[0, d] = 1.0
        u = np.array([0.0, rng.random()])
        n, t, kind = cpp(p_logits, q, np.array([d]), o, u)
        assert (n, kind) == (0, "recovered")
        assert t == np_draw(p0, u[1]) and p0[t] > 0
        assert (n, t, kind) == np_rejection_sample(p_logits, q, [d], 1.0, 4, 1.0, u)


def test_one_hot_draft_underflowing_target_probability():
    """p(d) underflows to 0 without any filtering (logit far below the rest)."""
    V = 16
    p_logits = np.zeros((2, V), np.float32)
    p_logits[0, 7] = -300.0
    q = np.zeros((1, V), np.float32)
    q[0, 7] = 1.0
    for u1 in (0.0, 0.3, 0.999):
        got = cpp(p_logits, q, np.array([7]), opts(1.0), np.array([0.0, u1]))
        assert got == np_rejection_sample(p_logits, q, [7], 1.0, 0, 1.0, [0.0, u1])
        assert got[0] == 0 and got[1] != 7 and got[2] == "recovered"


def test_empty_residual_falls_back_to_p():
    """p == q and a rejected draft (q(d) = p(d) = 0 here): max(0, p - q) is all zero -> draw from p."""
    V = 30
    rng = np.random.default_rng(3)
    o = opts(1.0, 6, 1.0)
    for _ in range(30):
        p_logits = (rng.standard_normal((2, V)) * 2).astype(np.float32)
        p0 = np_processed(p_logits[0], 1.0, 6)
        q = p0[None].astype(np.float32)
        d = int(rng.choice(np.nonzero(p0 == 0)[0]))
        u = np.array([rng.random(), rng.random()])
        got = cpp(p_logits, q, np.array([d]), o, u)
        assert got == (0, np_draw(p0, u[1]), "recovered")
        assert got == np_rejection_sample(p_logits, q, [d], 1.0, 6, 1.0, u)


def test_residual_empty_by_rounding():
    """q one ulp above p on every kept id (the draft's float32 probabilities sum to slightly more than
    1): a uniform close to 1 rejects, and max(0, p - q) is zero everywhere -> draw from p."""
    V = 20
    rng = np.random.default_rng(4)
    o = opts(1.0)
    hits = 0
    for _ in range(40):
        p_logits = (rng.standard_normal((2, V)) * 1.5).astype(np.float32)
        ids, probs = _core.processed_distribution(p_logits[0], o)  # the target's own float32 p
        p0 = np.zeros(V, np.float32)
        p0[ids] = probs
        q = np.nextafter(p0, np.float32(2))[None].astype(np.float32)
        d = int(np.argmax(p0))
        u = np.array([1.0 - 2.0 ** -40, rng.random()])
        got = cpp(p_logits, q, np.array([d]), o, u)
        assert got == np_rejection_sample(p_logits, q, [d], 1.0, 0, 1.0, u)
        assert got[0] == 0 and got[2] == "recovered"
        assert got[1] == np_draw(p0.astype(np.float64), u[1])
        hits += 1
    assert hits == 40


def test_greedy_ties_and_uniforms_unused():
    V = 10
    p_logits = np.zeros((3, V), np.float32)
    p_logits[0, [2, 5]] = 4.0          # tie: argmax is 2
    p_logits[1, 6] = 1.0
    p_logits[2, [1, 8]] = 3.0
    o = opts(0.0)
    q = np.zeros((2, V), np.float32)
    q[0, 5] = q[1, 6] = 1.0
    for u in ([0.0, 0.0, 0.0], [0.999, 0.5, 0.1]):
        assert cpp(p_logits, q, np.array([5, 6]), o, np.array(u)) == (0, 2, "recovered")
        assert cpp(p_logits, q, np.array([2, 6]), o, np.array(u)) == (2, 1, "bonus")
        assert cpp(p_logits, q, np.array([2, 7]), o, np.array(u)) == (1, 6, "recovered")


def test_uniform_boundaries():
    """u = 0 accepts every draft with p(d) > 0; acceptance is strict (u * q < p)."""
    V = 8
    p_logits = np.log(np.array([[0.1, 0.2, 0.3, 0.4, 0, 0, 0, 0]] * 2, dtype=np.float64) + 1e-30).astype(np.float32)
    o = opts(1.0)
    p0 = np_processed(p_logits[0], 1.0)
    q = np.zeros((1, V), np.float32)
    q[0, 1] = np.float32(p0[1] * 2)  # accept iff u < p/q = 1/2 (up to float32 rounding of q)
    q[0, 0] = np.float32(1 - q[0, 1])
    for u0 in (0.0, 0.25, 0.4999, 0.5001, 0.75):
        u = np.array([u0, 0.6])
        want = np_rejection_sample(p_logits, q, [1], 1.0, 0, 1.0, u)
        assert cpp(p_logits, q, np.array([1]), o, u) == want
        assert want[0] == (1 if u0 < 0.5 else 0)


@pytest.mark.parametrize("bad", ["p_rows", "q_rows", "vocab", "uniforms"])
def test_shape_mismatch_is_an_error_not_a_crash(bad):
    k, V = 3, 12
    p = np.zeros((k + 1, V), np.float32)
    q = np.full((k, V), 1.0 / V, np.float32)
    d = np.zeros(k, np.int32)
    u = np.full(k + 1, 0.5)
    if bad == "p_rows":
        p = p[:k]
    elif bad == "q_rows":
        q = q[:k - 1]
    elif bad == "vocab":
        q = np.full((k, V + 1), 1.0 / V, np.float32)
    else:
        u = u[:k]
    with pytest.raises((ValueError, RuntimeError)):
        rejection_sample(p, q, d, opts(1.0), u)


def test_draft_id_out_of_range_is_an_error():
    p = np.zeros((2, 5), np.float32)
    q = np.full((1, 5), 0.2, np.float32)
    with pytest.raises(ValueError, match=r"draft\[0\] = 5 is outside the vocabulary \[0, 5\)"):
        rejection_sample(p, q, np.array([5], np.int32), opts(1.0), np.array([0.5, 0.5]))
