"""fastspec.Engine: text in, text out, over the C++ core.

    eng = fastspec.Engine("smollm2-135m-instruct")
    for piece in eng.stream("Hello", max_tokens=32):
        print(piece, end="", flush=True)
    print(eng.last_stats)

Python only tokenizes, detokenizes and matches stop strings; every tensor op runs in C++ with
the GIL released.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from . import _core, models
from .tokenizer import Tokenizer

Prompt = Union[str, Sequence[int]]


@dataclass
class Generation:
    """The result of Engine.generate: the text, the generated ids and the run's statistics."""

    text: str
    tokens: List[int]
    stats: Dict[str, float] = field(default_factory=dict)
    finish_reason: str = ""


class _StopMatcher:
    """Holds back text that may be the start of a stop string; reports the cut when one appears."""

    def __init__(self, stops: Sequence[str]):
        self.stops = [s for s in stops if s]
        self.pending = ""

    def feed(self, piece: str):
        """Returns (text safe to emit, stopped)."""
        self.pending += piece
        if not self.stops:
            out, self.pending = self.pending, ""
            return out, False
        cut = min((i for i in (self.pending.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            out, self.pending = self.pending[:cut], ""
            return out, True
        hold = 0
        for s in self.stops:
            for n in range(min(len(s) - 1, len(self.pending)), 0, -1):
                if self.pending.endswith(s[:n]):
                    hold = max(hold, n)
                    break
        out = self.pending[: len(self.pending) - hold]
        self.pending = self.pending[len(self.pending) - hold:]
        return out, False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


def _check_same_tokenizer(target: Tokenizer, draft: Tokenizer, draft_path: str, target_path: str) -> None:
    """A draft must produce the target's token ids: same vocabulary, special ids and token texts."""
    from . import ModelError

    who = f"draft {draft_path!r} cannot draft for {target_path!r}: "
    if draft.vocab_size != target.vocab_size:
        raise ModelError(who + f"vocabulary size {draft.vocab_size} vs {target.vocab_size}")
    if (draft.bos_id, draft.eos_id) != (target.bos_id, target.eos_id):
        raise ModelError(who + f"special tokens bos/eos {draft.bos_id}/{draft.eos_id} vs {target.bos_id}/{target.eos_id}")
    for i in range(target.vocab_size):
        if draft.token_text(i) != target.token_text(i):
            raise ModelError(who + f"token {i} is {draft.token_text(i)!r} vs {target.token_text(i)!r}")


def _is_draft_head(path: str) -> bool:
    """A fastspec draft head (GGUF architecture fastspec-eagle / fastspec-medusa)."""
    if not str(path).endswith(".gguf"):
        return False
    return _core.ModelFile(str(path)).config.architecture.startswith("fastspec-")


class Engine:
    """A loaded model. `target` is a path (GGUF, safetensors checkpoint) or a known model name."""

    def __init__(self, target: Union[str, "os.PathLike[str]"], *, draft: Optional[str] = None,
                 k: Optional[int] = None, threads: Optional[int] = None, context: int = 4096,
                 trace: Optional[str] = None, k_max: int = 8, precision: Optional[str] = None,
                 kv_type: Optional[str] = None, output_q8: bool = False, prefix_cache_mb: int = 64,
                 tree_nodes: int = 0, draft_min_prob: Optional[float] = None, lookup_min: int = 0,
                 verify_row_cost: Optional[float] = None):
        """draft: None (plain decoding), "ngram" (prompt lookup), a draft model (path or known
        name) sharing the target's tokenizer, or a draft head distilled from this target
        (`fastspec distill`: EAGLE or Medusa, a GGUF tied to the target by its sha256; another
        target's head raises ModelError). k: draft tokens per step, fixed; None (or 0) = adaptive.
        draft_min_prob: model and head drafters stop drafting once their own top probability falls
        below it (None: the core's default, 0: always draft k).
        verify_row_cost: with temperature > 0 the controller picks k from a fixed cost model (a
        seed must give the same text, so no timings): one more verify row costs this fraction of
        a plain pass (None: the core's default, measured on a 2-core CPU; lower it on a GPU).
        Greedy sessions measure the real cost instead. Output stays exact either way.
        lookup_min: with a draft model or head, prompt lookup drafts first wherever the context's
        last lookup_min or more tokens occurred earlier (the answer is copying the prompt: quoted
        passages, rewritten code), the model or head elsewhere; 0 = off.
        tree_nodes: with draft="ngram" or a head, propose token trees of up to this many nodes
        (n-gram: the continuations of several earlier matches; EAGLE: EAGLE-2's dynamic tree;
        Medusa: every head's top tokens, the likeliest paths first), verified in one pass under a tree mask (k is then the depth);
        0 = chains. With a fixed k every drafted step proposes a tree; with adaptive k the
        controller measures trees against chains and runs the better. Output is unchanged
        (greedy identical, sampled exact).
        trace: a JSONL file receiving one line per target pass (proposal and outcome).
        precision: "q8" (8-bit activations, integer dots: fast, the default) or "f32" (float32
        activations: the reference precision). kv_type: "f16" or "f32" KV cache. None takes the
        core's default (EngineOptions in cpp/include/fastspec/options.h). output_q8: quantize an
        F16/BF16/F32 output layer to Q8_0 at load (q8 precision; faster decode, slightly other logits).
        prefix_cache_mb: K/V of finished generations kept (0 = off) so that a prompt starting with
        their tokens -- the next chat turn -- copies them instead of prefilling; no token changes
        (stats["prefix_cached_tokens"], engine.prefix_cache_stats).

        Arguments are validated once, by the C++ core (a ValueError names the bad value).
        Threads: one Engine may be shared by several Python threads; its compute calls are
        serialized (each stream step, logits() call) with the GIL released while waiting, so
        concurrent streams take turns and never deadlock (cpp/include/fastspec/engine.h)."""
        self.path = models.path(target)
        if _is_draft_head(self.path):
            raise _core.ModelError(f"{self.path}: is a draft head, not a model: pass it as draft= with the "
                                   "target it was distilled from")
        self.tokenizer = Tokenizer.from_model(self.path)
        spec = _core.SpecOptions()
        spec.k = 0 if k is None else k
        spec.k_max = k_max
        spec.tree_nodes = tree_nodes
        spec.lookup_min = lookup_min
        spec.trace_path = os.fspath(trace) if trace else ""
        self.draft = draft
        if draft_min_prob is not None:
            spec.draft_min_prob = float(draft_min_prob)
        if verify_row_cost is not None:
            spec.verify_row_cost = float(verify_row_cost)
        if draft is not None and draft != "ngram":
            draft_path = models.path(draft)
            if not _is_draft_head(draft_path):  # a head has no tokenizer: the core checks its tie instead
                _check_same_tokenizer(self.tokenizer, Tokenizer.from_model(draft_path), draft_path, self.path)
            spec.draft = draft_path
        elif draft == "ngram":
            spec.draft = "ngram"
        opts = _core.EngineOptions()
        opts.threads = threads or 0
        opts.context = context
        opts.precision = precision or opts.precision
        opts.kv_type = kv_type or opts.kv_type
        opts.output_q8 = bool(output_q8)
        opts.prefix_cache_mb = prefix_cache_mb
        self._core = _core.Engine(self.path, opts, spec)
        self.last_stats: Optional[Dict[str, float]] = None

    @property
    def config(self):
        return self._core.config

    @property
    def prefix_cache_stats(self) -> Dict[str, int]:
        """lookups, hits, hit_tokens, entries, bytes, budget_bytes of the prefix cache."""
        return dict(self._core.prefix_cache_stats)

    @property
    def context(self) -> int:
        return self._core.context

    # ---- text <-> ids ----------------------------------------------------------------------------
    def tokenize(self, text: str, *, add_special: bool = True) -> List[int]:
        return self.tokenizer.encode(text, add_special=add_special)

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """float32 [len(ids), vocab]: the model's logits for `ids` from a fresh context."""
        return self._core.logits([int(i) for i in ids])

    # ---- generation ------------------------------------------------------------------------------
    def stream(self, prompt: Prompt, *, max_tokens: int = 256, temperature: float = 0.0, top_k: int = 0,
               top_p: float = 1.0, seed: Optional[int] = None, stop: Optional[Sequence[str]] = None,
               _result: Optional[Generation] = None) -> Iterator[str]:
        """Yields text pieces as tokens are decoded. Breaking out of the loop cancels the run."""
        ids = self.tokenize(prompt) if isinstance(prompt, str) else [int(i) for i in prompt]
        if isinstance(stop, str):
            stop = [stop]
        sampling = _core.SamplingOptions()  # checked by the core in start() (ValueError)
        sampling.temperature, sampling.top_k, sampling.top_p = temperature, top_k, top_p
        sampling.max_tokens = max_tokens
        sampling.seed = int.from_bytes(os.urandom(8), "little") if seed is None else int(seed) & (2**64 - 1)
        session = self._core.start(ids, sampling, sorted(self.tokenizer.eos_ids))
        decoder = self.tokenizer.decoder(ids)
        matcher = _StopMatcher(stop or [])
        generated: List[int] = []
        text_parts: List[str] = []
        finish = ""
        t0 = time.perf_counter()
        try:
            while not session.finished:
                for tok in session.step():
                    generated.append(tok)
                    if tok in self.tokenizer.eos_ids:
                        continue
                    out, stopped = matcher.feed(decoder.push(tok))
                    if out:
                        text_parts.append(out)
                        yield out
                    if stopped:
                        finish = "stop"
                        break
                if finish:
                    break
            if not finish:
                finish = session.finish_reason
                tail, stopped = matcher.feed(decoder.flush())
                tail += "" if stopped else matcher.flush()
                if tail:
                    text_parts.append(tail)
                    yield tail
        finally:
            stats = dict(session.stats)
            stats["wall_s"] = time.perf_counter() - t0
            n = stats["tokens"]
            stats["tokens_per_s"] = (n - 1) / stats["decode_s"] if n > 1 and stats["decode_s"] > 0 else 0.0
            stats["prefill_tokens_per_s"] = stats["prompt_tokens"] / stats["prefill_s"] if stats["prefill_s"] > 0 else 0.0
            stats["acceptance_rate"] = stats["accepted"] / stats["drafted"] if stats["drafted"] else 0.0
            decode_passes = stats["target_passes"] - 1
            stats["tokens_per_pass"] = (n - 1) / decode_passes if decode_passes > 0 else float(n)
            self.last_stats = stats
            if _result is not None:
                _result.text, _result.tokens, _result.stats = "".join(text_parts), generated, stats
                _result.finish_reason = finish or "cancelled"

    def generate(self, prompt: Prompt, **kwargs) -> Generation:
        """Runs to completion; returns Generation(text, tokens, stats, finish_reason)."""
        result = Generation("", [])
        for _ in self.stream(prompt, _result=result, **kwargs):
            pass
        return result

    def chat(self, messages: List[Dict[str, str]], *, stream: bool = False, **kwargs):
        """Renders the model's chat template (add_generation_prompt) and generates the reply."""
        prompt = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
        ids = self.tokenize(prompt, add_special=False)
        return self.stream(ids, **kwargs) if stream else self.generate(ids, **kwargs)
