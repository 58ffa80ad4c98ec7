"""`fastspec audit`: checks on *your* model and drafter that speculation changes nothing.

    fastspec audit MODEL --draft DRAFT [--prompts N] [--samples N] [--k K] ...

Two checks, the exact and the distributional tier of DESIGN.md ("Tests"):

1. Greedy identity. For a few built-in prompts, greedy output with speculation must be token for
   token the engine's own plain greedy output. A divergence is reported with its token index, the
   two tokens and the target's top-2 logit margin at that position (a tiny margin points at
   numerics that differ between one-row and many-row passes; a large one at a logic bug).
2. Sampled tokens. `samples` short runs with speculation at a fixed k (one seed each). The engine
   samples the first token straight from the prefill, so the tokens that speculation produces
   first are tokens 2 and 3 (one draft/verify step). Their counts, given token 1, are compared
   with the *exact* plain conditional distribution computed from the target's logits
   (`Engine.logits`) and the processed distribution of the sampling spec (fastspec._sampling_ref,
   the one the plain sampler implements): a chi-square goodness-of-fit test stratified by token 1
   (the most frequent first tokens), over cells of expected count >= 5 (smaller ones lumped). A token the plain sampler can never produce (probability exactly 0, e.g.
   cut by top-k) fails at once.

The verdict is PASS when every greedy prompt is identical and the p-value is >= alpha.
The statistics helpers (`chi2_sf`, `chi_square_test`, `stratified_chi_square`, `two_token_distribution`)
are used by the test-suite as well. scipy is used for the chi-square survival function when installed; otherwise a
small own implementation (regularized upper incomplete gamma) gives the same figures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np

from ._sampling_ref import as_float32, processed_probs

# Prompts for the greedy check: prose, code, lists and repetition (so n-gram drafters fire too).
PROMPTS = [
    "The quick brown fox jumps over the lazy dog. The quick brown fox",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday. Monday, Tuesday,",
    "Once upon a time, in a small village by the sea, there lived",
    "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,",
    "Question: What is the capital of France?\nAnswer:",
    "for i in range(10):\n    print(i)\nfor j in range(10):\n    print(",
    "Roses are red, violets are blue, roses are red, violets are",
]
# The sampled check: a repetitive prompt, so that prompt-lookup drafters propose tokens.
SAMPLING_PROMPT = "one two three four one two three four one two three four one two"

SAMPLED_K = 2     # draft length of the sampled check when the audited k is adaptive
MAX_STRATA = 8    # sampled check: first tokens looked at (the most frequent)
MIN_STRATUM = 20  # ... and only those seen at least this often
ANY = "*"      # the second-token wildcard of a lumped cell: (t1, ANY)
OTHER = "other"  # the bin of all lumped cells


# ---- statistics -----------------------------------------------------------------------------------

def _gammaincc(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) (series below a + 1, continued fraction above;
    Numerical Recipes' gser / gcf), relative accuracy ~1e-14."""
    if x <= 0:
        return 1.0
    lg = math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(10000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - lg))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            break
    return math.exp(-x + a * math.log(x) - lg) * h


def chi2_sf(x: float, dof: float, *, use_scipy: bool = True) -> float:
    """P(X >= x) for X ~ chi-square(dof) (dof may be fractional)."""
    if x != x:
        return float("nan")
    if math.isinf(x):
        return 0.0
    if use_scipy:
        try:
            from scipy.stats import chi2  # optional; not a dependency
            return float(chi2.sf(x, dof))
        except ImportError:
            pass
    return _gammaincc(dof / 2.0, x / 2.0)


@dataclass
class ChiSquare:
    statistic: float
    dof: int
    p_value: float
    n: int
    bins: List[Tuple[Hashable, int, float]] = field(default_factory=list)  # (cell, observed, expected)
    impossible: List[Hashable] = field(default_factory=list)              # observed cells of probability 0

    def __str__(self) -> str:
        s = f"chi-square {self.statistic:.2f}, dof {self.dof}, p-value {self.p_value:.4g} ({self.n} samples)"
        if self.impossible:
            s += f"; outcomes the plain sampler can never produce: {self.impossible[:5]}"
        return s


def bin_cells(probs: Dict[Hashable, float], n: int, min_expected: float = 5.0) -> List[Tuple[Hashable, List[Hashable], float]]:
    """Bins for a chi-square test of n samples: (label, cells, expected count). Cells with expected
    count >= min_expected are bins of their own (most probable first); the others are lumped into
    one bin, OTHER (merged into the smallest kept bin when the lump itself is too small)."""
    total = float(sum(probs.values()))
    cells = sorted((c for c in probs if probs[c] > 0), key=lambda c: (-probs[c], repr(c)))
    kept = [c for c in cells if n * probs[c] / total >= min_expected]
    lumped = cells[len(kept):]
    bins: List[Tuple[Hashable, List[Hashable], float]] = [(c, [c], n * probs[c] / total) for c in kept]
    if lumped:
        e = sum(n * probs[c] / total for c in lumped)
        if e >= min_expected or not bins:
            bins.append((OTHER, lumped, e))
        else:
            label, cs, e0 = bins[-1]
            bins[-1] = ((label, OTHER), cs + lumped, e0 + e)
    return bins


def chi_square_test(observed: Dict[Hashable, int], probs: Dict[Hashable, float], *,
                    min_expected: float = 5.0) -> ChiSquare:
    """Pearson goodness of fit of counts `observed` against cell probabilities `probs` (normalized
    here), over bin_cells' bins. An observed cell absent from `probs` or of probability 0 makes the
    result impossible: statistic inf, p-value 0."""
    n = int(sum(observed.values()))
    impossible = [c for c, o in observed.items() if o > 0 and probs.get(c, 0.0) <= 0.0]
    if impossible:
        return ChiSquare(float("inf"), max(1, len(probs) - 1), 0.0, n, [], impossible)
    bins = [(label, sum(observed.get(c, 0) for c in cs), e) for label, cs, e in bin_cells(probs, n, min_expected)]
    if len(bins) < 2:
        return ChiSquare(0.0, 0, 1.0, n, bins)
    stat = float(sum((o - e) ** 2 / e for _, o, e in bins))
    dof = len(bins) - 1
    return ChiSquare(stat, dof, chi2_sf(stat, dof), n, bins)


def stratified_chi_square(observed: Dict[Hashable, Dict[Hashable, int]],
                          probs: Dict[Hashable, Dict[Hashable, float]], *, min_expected: float = 5.0) -> ChiSquare:
    """Conditional goodness of fit: for each stratum s (e.g. the first sampled token), the counts
    observed[s] against the conditional cell probabilities probs[s] with the stratum's own total;
    the statistics and degrees of freedom add up. Strata missing from `probs` are left out (choose
    them by something that does not depend on the cells, such as their size)."""
    stat, dof, n, bins, impossible = 0.0, 0, 0, [], []
    for s, obs in observed.items():
        if s not in probs:
            continue
        r = chi_square_test(obs, probs[s], min_expected=min_expected)
        n += r.n
        impossible += [(s, c) for c in r.impossible]
        stat += r.statistic
        dof += r.dof
        bins += [((s, label), o, e) for label, o, e in r.bins]
    if impossible:
        return ChiSquare(float("inf"), max(1, dof), 0.0, n, bins, impossible)
    return ChiSquare(stat, dof, chi2_sf(stat, dof) if dof else 1.0, n, bins)


def processed(logits_row: np.ndarray, temperature: float, top_k: int = 0, top_p: float = 1.0) -> Dict[int, float]:
    """{id: prob > 0} of the processed distribution for one row of logits: the sampling spec
    (fastspec._sampling_ref) at the float32 temperature and top_p the engine stores -- the plain
    sampler's distribution to within float32 rounding (tests/test_spec_sampler.py checks that)."""
    p = processed_probs(np.asarray(logits_row, dtype=np.float32), as_float32(temperature), int(top_k),
                        as_float32(top_p))
    return {int(i): float(p[i]) for i in np.flatnonzero(p)}


def two_token_distribution(logits_fn: Callable[[List[int]], np.ndarray], ids: Sequence[int], *,
                           temperature: float, top_k: int = 0, top_p: float = 1.0,
                           stop_ids: Sequence[int] = (), expand_min: float = 0.0, max_expand: int = 64,
                           processed_fn: Optional[Callable[..., Dict[int, float]]] = None
                           ) -> Dict[Tuple[int, object], float]:
    """The exact plain distribution of the next two tokens after `ids` as cells {(a, b): prob}.
    First tokens a with probability >= expand_min (at most max_expand of them, most probable first)
    get their second-token row from the logits of ids + [a]; every other first token is one lumped
    cell (a, ANY) (so is a stop token: generation ends after it). processed_fn(logits_row,
    temperature, top_k, top_p) -> {id: prob} defaults to the spec's (`processed`)."""
    proc = processed_fn or processed
    ids = [int(i) for i in ids]
    p1 = proc(logits_fn(ids)[-1], temperature, top_k, top_p)
    stop = set(int(s) for s in stop_ids)
    expand = [t for t in sorted(p1, key=lambda t: (-p1[t], t)) if p1[t] >= expand_min and t not in stop][:max_expand]
    cells: Dict[Tuple[int, object], float] = {}
    for a, pa in p1.items():
        if a not in expand and pa > 0:
            cells[(a, ANY)] = pa
    for a in expand:
        for b, pb in proc(logits_fn(ids + [a])[-1], temperature, top_k, top_p).items():
            if pb > 0:
                cells[(a, b)] = p1[a] * pb
    return cells


def cell_of(tokens: Sequence[int], cells: Dict[Tuple[int, object], float]) -> Tuple[int, object]:
    """The cell of two_token_distribution that the two tokens (or one, then a stop) fall in."""
    a = int(tokens[0])
    if (a, ANY) in cells or len(tokens) < 2:
        return (a, ANY)
    return (a, int(tokens[1]))


# ---- the audit ------------------------------------------------------------------------------------

@dataclass
class AuditResult:
    passed: bool
    greedy_ok: bool
    tokens_compared: int
    divergences: List[str]
    chi: Optional[ChiSquare]
    drafted: int
    accepted: int
    lines: List[str]


def _tok_repr(eng, t: int) -> str:
    try:
        return f"{t} {eng.detokenize([t])!r}"
    except Exception:  # noqa: BLE001 -- a report, not a failure
        return str(t)


def run_audit(model: str, draft: str, *, k: Optional[int] = None, prompts: int = 4, samples: int = 1000,
              max_tokens: int = 64, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
              alpha: float = 1e-3, seed: int = 0, threads: Optional[int] = None, context: int = 2048,
              tree_nodes: int = 0, lookup_min: int = 0, out: Callable[[str], None] = print) -> AuditResult:
    """Runs both checks; prints a report line by line through `out`; returns the figures.
    tree_nodes > 0: the drafter proposes token trees (Engine's tree_nodes); lookup_min > 0: prompt
    lookup first, the draft model or head elsewhere (Engine's lookup_min)."""
    from .engine import Engine

    if prompts < 0 or samples < 0:
        raise ValueError(f"prompts and samples must be >= 0 (got {prompts}, {samples})")
    if not (0 < alpha < 1):
        raise ValueError(f"alpha must be in (0, 1) (got {alpha})")
    lines: List[str] = []

    def say(s: str) -> None:
        lines.append(s)
        out(s)

    plain = Engine(model, threads=threads, context=context)
    spec = Engine(model, draft=draft, k=k, threads=threads, context=context, tree_nodes=tree_nodes,
                  lookup_min=lookup_min)
    say(f"fastspec audit: target {plain.path}")
    say(f"                draft  {draft} (k {'adaptive' if k is None else k}"
        f"{f', trees of <= {tree_nodes} nodes' if tree_nodes else ''}"
        f"{f', prompt lookup first (>= {lookup_min} tokens)' if lookup_min else ''})")
    drafted = accepted = 0

    # 1. greedy identity
    divergences: List[str] = []
    compared = 0
    chosen = PROMPTS[:prompts]  # at most len(PROMPTS)
    for n, text in enumerate(chosen):
        ids = plain.tokenize(text)
        a = plain.generate(ids, max_tokens=max_tokens).tokens
        g = spec.generate(ids, max_tokens=max_tokens)
        b = g.tokens
        drafted += int(g.stats.get("drafted", 0))
        accepted += int(g.stats.get("accepted", 0))
        j = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
        if j is None and len(a) != len(b):
            j = min(len(a), len(b))
        if j is None:
            compared += len(a)
            say(f"  greedy prompt {n + 1}: {len(a)} tokens identical "
                f"(drafted {int(g.stats.get('drafted', 0))}, accepted {int(g.stats.get('accepted', 0))})")
            continue
        compared += j
        row = plain.logits(ids + a[:j])[-1]
        top = np.argsort(-row.astype(np.float64), kind="stable")[:2]
        margin = float(row[top[0]]) - float(row[top[1]])
        pa = _tok_repr(plain, a[j]) if j < len(a) else "(end)"
        pb = _tok_repr(plain, b[j]) if j < len(b) else "(end)"
        msg = (f"greedy prompt {n + 1}: first divergence at generated token {j}: plain {pa}, "
               f"speculative {pb}; target top-2 logit margin {margin:.6g}")
        divergences.append(msg)
        say("  " + msg)
    greedy_ok = not divergences
    if prompts:
        say(f"greedy identity: {len(chosen)} prompts, {compared} tokens compared: "
            f"{'identical' if greedy_ok else f'{len(divergences)} divergent'}")

    # 2. sampled tokens vs the exact plain distribution. The engine samples the first token from the
    # prefill (no speculation), so the check is on the next two tokens -- the first speculative step
    # -- given the first: strata by token 1, cells (token 2, token 3).
    chi = None
    if samples:
        ks = k if k is not None else SAMPLED_K  # a fixed k, so the first decode step drafts
        sampler = spec if k is not None else Engine(model, draft=draft, k=ks, threads=threads, context=context,
                                                    tree_nodes=tree_nodes, lookup_min=lookup_min)
        ids = plain.tokenize(SAMPLING_PROMPT)
        stop_ids = sorted(plain.tokenizer.eos_ids)
        counts: Dict[int, Dict[Hashable, int]] = {}
        s_drafted = s_accepted = 0
        for s in range(samples):
            g = sampler.generate(ids, max_tokens=ks + 2, temperature=temperature, top_k=top_k, top_p=top_p,
                                 seed=seed + s)
            s_drafted += int(g.stats.get("drafted", 0))
            s_accepted += int(g.stats.get("accepted", 0))
            if g.tokens[0] in stop_ids or len(g.tokens) < 2:
                continue
            row = counts.setdefault(int(g.tokens[0]), {})
            key = tuple(g.tokens[1:3])
            row[key] = row.get(key, 0) + 1
        drafted += s_drafted
        accepted += s_accepted
        strata = sorted(counts, key=lambda t: -sum(counts[t].values()))[:MAX_STRATA]
        strata = [t for t in strata if sum(counts[t].values()) >= MIN_STRATUM]
        probs, observed = {}, {}
        for t in strata:
            n_t = sum(counts[t].values())
            cells = two_token_distribution(plain.logits, ids + [t], temperature=temperature, top_k=top_k,
                                           top_p=top_p, stop_ids=stop_ids, expand_min=min(0.5, 5.0 / n_t),
                                           max_expand=16)
            probs[t] = cells
            observed[t] = {}
            for key, c in counts[t].items():
                cell = cell_of(key, cells)
                observed[t][cell] = observed[t].get(cell, 0) + c
        chi = stratified_chi_square(observed, probs)
        say(f"sampled tokens: {samples} runs (k={ks}) at temperature {temperature:g}, top-k {top_k}, top-p {top_p:g}; "
            f"tokens 2-3 given token 1, {len(strata)} strata: {chi}")
        rate = f"{s_accepted / s_drafted:.3f}" if s_drafted else "n/a"
        say(f"  while sampling the drafter proposed {s_drafted} tokens, {s_accepted} accepted (rate {rate})")
        if s_drafted == 0:
            say("  note: the drafter proposed nothing here, so this check did not exercise speculation")
    sampled_ok = chi is None or chi.p_value >= alpha
    passed = greedy_ok and sampled_ok
    reasons = []
    if not greedy_ok:
        reasons.append("greedy output differs from plain decoding")
    if not sampled_ok:
        reasons.append(f"sampled tokens do not follow the plain distribution (p-value {chi.p_value:.3g} < {alpha:g})")
    say(f"verdict: {'PASS' if passed else 'FAIL'}" + (f" ({'; '.join(reasons)})" if reasons else ""))
    return AuditResult(passed, greedy_ok, compared, divergences, chi, drafted, accepted, lines)
