"""The n-gram (prompt lookup) drafter, in Python: a model of cpp/src/spec/ngram_drafter.cpp.

    proposal(ctx, k, n_min=1, n_max=4) -> list of k token ids, or [] when nothing matches
    match(ctx, n_min=1, n_max=4)       -> where the copy starts in ctx (None: no match)

For n from min(n_max, len(ctx) - 1) down to n_min: find the most recent earlier occurrence of the
context's last n tokens (a start j with j + n < len(ctx), scanning j downwards); the proposal is
what followed it, k tokens. When the copy runs off the end of the context it continues through
its own proposal (token t of the copy is ctx[t] for t < len(ctx), else proposal[t - len(ctx)]), so
a repeating pattern shorter than k still gives k tokens. No match: []. As in the C++ constructor,
n_min is at least 1 and n_max at least n_min.

tests/test_ngram_drafter.py checks this model against the C++ drafter's proposals (the engine's
trace) on random sequences, so the simulation in test_spec_distribution.py drafts what the engine
drafts.
"""


def match(ctx, n_min=1, n_max=4):
    """Index in ctx where the copy starts (just after the matched occurrence), or None."""
    n_min = max(1, n_min)
    n_max = max(n_min, n_max)
    L = len(ctx)
    for n in range(min(n_max, L - 1), n_min - 1, -1):
        suffix = ctx[L - n:]
        for j in range(L - n - 1, -1, -1):
            if ctx[j:j + n] == suffix:
                return j + n
    return None


def proposal(ctx, k, n_min=1, n_max=4):
    ctx = list(ctx)
    start = match(ctx, n_min, n_max)
    if start is None:
        return []
    out = []
    for t in range(start, start + k):
        out.append(ctx[t] if t < len(ctx) else out[t - len(ctx)])
    return out
