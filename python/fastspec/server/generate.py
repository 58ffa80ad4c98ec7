"""One generation: a scheduler request seen from the event loop.

`Job.pieces()` is an async iterator of `Piece`s (text released so far, with the logprobs of the
tokens behind it). The blocking `Request.next` runs in a worker thread (anyio.to_thread, GIL
released in C++), so the event loop never waits on the engine. Text is produced exactly as
`fastspec.Engine.stream` produces it: the streaming detokenizer continuing the prompt, end-of-turn
tokens dropped, stop strings cut (the match and what follows it are not sent, as OpenAI does).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, List, Optional, Tuple

import anyio

from .. import _core
from ..engine import _StopMatcher
from .errors import ApiError
from .protocol import Params

POLL_S = 0.25  # longest wait in one Request.next call (cancellation is seen within this)

TokenLogprob = Tuple[int, float, List[Tuple[int, float]]]  # (id, logprob, [(id, logprob), ...])


@dataclass
class Piece:
    text: str
    logprobs: List[TokenLogprob] = field(default_factory=list)


class Job:
    """Submits at construction (ApiError 400 / 503 from the scheduler's refusals)."""

    def __init__(self, state, params: Params, prompt_ids: List[int], t_arrival: Optional[float] = None):
        self.state, self.params, self.prompt_ids = state, params, prompt_ids
        self.t_arrival = time.perf_counter() if t_arrival is None else t_arrival
        self.t_first: Optional[float] = None
        self.t_last: Optional[float] = None
        self.tokens: List[int] = []
        self.text_parts: List[str] = []
        self.finish_reason: Optional[str] = None
        self.error: Optional[str] = None
        self.disconnected = False
        self._done_logged = False
        tok = state.tokenizer
        s = _core.SamplingOptions()
        s.temperature, s.top_k, s.top_p = params.temperature, params.top_k, params.top_p
        room = state.context - len(prompt_ids)
        s.max_tokens = max(1, room) if params.max_tokens is None else min(params.max_tokens, max(1, room))
        s.seed = int.from_bytes(os.urandom(8), "little") if params.seed is None else params.seed & (2**64 - 1)
        self.seed = s.seed
        param = "messages" if params.kind == "chat" else "prompt"
        try:
            self.req = state.scheduler.submit(prompt_ids, s, sorted(tok.eos_ids), params.draft, params.top_logprobs)
        except _core.QueueFullError as e:
            raise ApiError(503, f"the server is busy: {e}", type="server_busy", code="queue_full",
                           headers={"Retry-After": str(state.retry_after_s)}) from None
        except ValueError as e:
            msg = str(e)
            code = "context_length_exceeded" if "context" in msg and "prompt has" in msg else "invalid_value"
            raise ApiError(400, msg, param=param, code=code) from None
        self.id = self.req.id
        self._eos = tok.eos_ids
        self._decoder = tok.decoder(prompt_ids)
        self._matcher = _StopMatcher(params.stop)

    # ---- driving --------------------------------------------------------------------------------
    def cancel(self, disconnected: bool = False) -> None:
        if disconnected and self.finish_reason is None:
            self.disconnected = True
        self.req.cancel()

    async def pieces(self) -> AsyncIterator[Piece]:
        want_lp = self.params.top_logprobs >= 0
        try:
            while self.finish_reason is None:
                toks = await anyio.to_thread.run_sync(self.req.next, POLL_S, limiter=self.state.limiter)
                if toks:
                    now = time.perf_counter()
                    self.t_first = self.t_first or now
                    self.t_last = now
                    lps = self.req.logprobs() if want_lp else None
                    text, entries, stopped = [], [], False
                    for tok in toks:
                        idx = len(self.tokens)
                        self.tokens.append(tok)
                        if tok in self._eos:
                            continue
                        out, stopped = self._matcher.feed(self._decoder.push(tok))
                        text.append(out)
                        if lps is not None and idx < len(lps):
                            lp, top = lps[idx]
                            entries.append((tok, lp, top))
                        if stopped:
                            break
                    if stopped:
                        self.finish_reason = "stop"
                        self.req.cancel()  # the rest is not wanted: free the slot now
                    piece = Piece("".join(text), entries)
                    if piece.text or piece.logprobs:
                        self.text_parts.append(piece.text)
                        yield piece
                    if stopped:
                        return
                if self.req.finished:
                    reason = self.req.finish_reason
                    if reason.startswith("error"):
                        self.error = reason
                    tail, stopped = self._matcher.feed(self._decoder.flush())
                    tail += "" if stopped else self._matcher.flush()
                    self.finish_reason = "stop" if stopped else (reason if reason in ("stop", "length") else
                                                                 ("cancelled" if not self.error else "error"))
                    if tail:
                        self.text_parts.append(tail)
                        yield Piece(tail)
        finally:
            if self.finish_reason is None:  # abandoned (client gone, or the server stopping)
                self.req.cancel()
                self.finish_reason = "cancelled"

    async def run_to_end(self) -> str:
        async for _ in self.pieces():
            pass
        return "".join(self.text_parts)

    # ---- reporting ------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def usage(self) -> dict:
        st = self.req.stats
        n = len(self.tokens)
        return {
            "prompt_tokens": len(self.prompt_ids), "completion_tokens": n, "total_tokens": len(self.prompt_ids) + n,
            "prompt_tokens_details": {"cached_tokens": int(st["prefix_cached_tokens"])},
            "fastspec": {
                "drafted": int(st["drafted"]), "accepted": int(st["accepted"]),
                "acceptance_rate": st["accepted"] / st["drafted"] if st["drafted"] else 0.0,
                "accepted_by_position": [int(a) for a in st["accepted_by_position"]],
                "prefix_cached_tokens": int(st["prefix_cached_tokens"]),
                "queued_s": round(float(st["queued_s"]), 6), "seed": self.seed,
            },
        }

    def timings(self):
        """(time to first token, mean time per output token after the first, total), seconds; -1 = n/a."""
        end = self.t_last or time.perf_counter()
        ttft = (self.t_first - self.t_arrival) if self.t_first else -1.0
        n = len(self.tokens)
        tpot = (self.t_last - self.t_first) / (n - 1) if self.t_first and n > 1 else -1.0
        return ttft, tpot, end - self.t_arrival

    def done(self, status: int = 200) -> None:
        """Metrics and the request's log line, once."""
        if self._done_logged:
            return
        self._done_logged = True
        st = self.req.stats
        ttft, tpot, e2e = self.timings()
        n = len(self.tokens)
        reason = "cancelled" if self.disconnected else (self.finish_reason or "cancelled")
        self.state.metrics.generation_done(
            prompt_tokens=len(self.prompt_ids), tokens=n, drafted=int(st["drafted"]), accepted=int(st["accepted"]),
            accepted_by_position=st["accepted_by_position"], finish_reason=reason, ttft_s=ttft, tpot_s=tpot,
            e2e_s=e2e, disconnected=self.disconnected)
        gen_s = float(st["decode_s"]) - max(0.0, float(st["first_token_s"]) - float(st["queued_s"]))
        self.state.log_request({
            "id": self.id, "endpoint": self.params.kind, "status": status, "prompt_tokens": len(self.prompt_ids),
            "completion_tokens": n, "finish_reason": reason,
            "tok_per_s": round((n - 1) / gen_s, 1) if n > 1 and gen_s > 0 else 0.0,  # after the first token
            "ttft_s": round(ttft, 4), "total_s": round(e2e, 4),
            "drafted": int(st["drafted"]), "accepted": int(st["accepted"]),
            "acceptance": round(st["accepted"] / st["drafted"], 3) if st["drafted"] else 0.0,
            "prefix_cached_tokens": int(st["prefix_cached_tokens"]), "queued_s": round(float(st["queued_s"]), 4),
            "stream": self.params.stream, "disconnected": self.disconnected,
        })
