"""The plain sampler in C++: processed distribution (temperature, top-k, top-p) against an
independent numpy copy of the spec in spec/sampler.h, fixed-noise draws, seeded determinism."""
import numpy as np
import pytest

from fastspec import _core


def _opts(temperature=1.0, top_k=0, top_p=1.0):
    o = _core.SamplingOptions()
    o.temperature, o.top_k, o.top_p = temperature, top_k, top_p
    return o


def numpy_processed(logits, temperature, top_k, top_p):
    """(kept ids ascending, probs) from the one Python reference of the processed distribution."""
    from fastspec._sampling_ref import as_float32, processed_probs
    p = processed_probs(logits, as_float32(temperature), top_k, as_float32(top_p))
    keep = np.flatnonzero(p > 0)
    return keep, p[keep]


CASES = [(1.0, 0, 1.0), (0.7, 0, 1.0), (1.0, 5, 1.0), (0.7, 0, 0.9), (1.3, 20, 0.5), (0.5, 1, 1.0),
         (1.0, 0, 0.05), (0.0, 0, 1.0)]


@pytest.mark.parametrize("temperature,top_k,top_p", CASES)
def test_processed_distribution_matches_numpy_spec(temperature, top_k, top_p):
    rng = np.random.default_rng(7)
    for _ in range(5):
        logits = (rng.standard_normal(300) * 3).astype(np.float32)
        ids, probs = _core.processed_distribution(logits, _opts(temperature, top_k, top_p))
        ref_ids, ref_p = numpy_processed(logits, temperature, top_k, top_p)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_allclose(probs, ref_p, rtol=1e-5, atol=1e-7)


def test_fixed_noise_draws_are_inverse_cdf_over_ids():
    logits = np.log(np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32))
    o = _opts(1.0)
    # cumulative over ids ascending: 0.1, 0.3, 0.6, 1.0
    for u, expect in [(0.0, 0), (0.099, 0), (0.101, 1), (0.29, 1), (0.31, 2), (0.59, 2), (0.61, 3), (0.9999, 3)]:
        assert _core.sample_token(logits, o, u) == expect, u


def test_greedy_ties_take_the_lowest_id():
    logits = np.array([0.0, 5.0, 1.0, 5.0], dtype=np.float32)
    assert _core.sample_token(logits, _opts(0.0), 0.5) == 1


@pytest.mark.parametrize("field,value,pattern", [("temperature", -0.5, "temperature must be >= 0"),
                                                 ("top_p", 0.0, r"top_p must be in \(0, 1\]"),
                                                 ("top_p", 1.5, r"top_p must be in \(0, 1\]"),
                                                 ("top_k", -1, "top_k must be >= 0")])
def test_bad_sampling_parameters(field, value, pattern):
    o = _opts()
    setattr(o, field, value)
    with pytest.raises(ValueError, match=pattern):
        _core.processed_distribution(np.zeros(4, np.float32), o)
