"""The sampling spec for tests: fastspec._sampling_ref (the one implementation, in the package so
that `fastspec audit` uses it too), re-exported under the name the tests have always imported."""
from fastspec._sampling_ref import as_float32, greedy, processed_probs

__all__ = ["as_float32", "greedy", "processed_probs"]
