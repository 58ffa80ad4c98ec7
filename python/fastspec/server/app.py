"""The ASGI app (Starlette): OpenAI-compatible endpoints over one engine's scheduler.

    POST /v1/chat/completions   POST /v1/completions   GET /v1/models   GET /v1/models/{id}
    GET /health                 GET /metrics (Prometheus text)

Every error is an OpenAI-style JSON body; no request can take the server down or touch another
request's stream (each request is its own scheduler Request, driven by its own task).
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from .errors import ApiError, bad_request
from .generate import Job, Piece
from .metrics import Metrics
from .protocol import Params, parse_json, parse_request

log = logging.getLogger("fastspec.server")

MAX_BODY_BYTES = 16 * 1024 * 1024
ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics")


@dataclass
class ServerState:
    """What the endpoints share: the engine's tokenizer and scheduler, names, metrics, logging."""

    scheduler: Any                   # fastspec._core.Scheduler
    tokenizer: Any                   # fastspec.Tokenizer
    context: int                     # positions per sequence (prompt + generated)
    model_name: str                  # the id /v1/models reports
    aliases: List[str] = field(default_factory=list)  # other names a request may use (path, file name)
    log_format: str = "text"
    retry_after_s: int = 1
    limiter: Optional[anyio.CapacityLimiter] = None  # worker threads waiting in Request.next
    thread_slots: int = 128
    metrics: Metrics = field(default_factory=Metrics)
    created: int = field(default_factory=lambda: int(time.time()))
    fingerprint: str = "fastspec"

    def knows(self, name: Optional[str]) -> bool:
        if name is None or name == "":
            return True
        low = name.lower()
        return any(low == n.lower() for n in [self.model_name, *self.aliases])

    def log_request(self, fields: Dict[str, Any]) -> None:
        """One line per request: text, or (log_format "json") the fields as one JSON object."""
        f = fields
        if "error" in f:
            line = f"req - {f['endpoint']} {f['status']} {f.get('code')}: {f['error']}"
        else:
            line = (f"req {f['id']} {f['endpoint']} {f['status']} prompt={f['prompt_tokens']} "
                    f"completion={f['completion_tokens']} finish={f['finish_reason']} {f['tok_per_s']:.1f} tok/s "
                    f"ttft={f['ttft_s']:.3f}s total={f['total_s']:.3f}s accept={f['acceptance']:.2f} "
                    f"({f['accepted']}/{f['drafted']}) prefix_cached={f['prefix_cached_tokens']} "
                    f"queued={f['queued_s']:.3f}s" + (" (client disconnected)" if f["disconnected"] else ""))
        log.info(line, extra={"fields": {"event": "request", **f}})


def _error_response(e: ApiError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status, headers=e.headers)


# ---- request -> prompt ids ---------------------------------------------------------------------

def _prompt_ids(state: ServerState, p: Params) -> List[int]:
    tok = state.tokenizer
    if p.kind == "chat":
        try:
            return tok.encode_chat(p.messages, add_generation_prompt=True)
        except ValueError as e:  # no chat template, or the template raised
            raise bad_request(str(e), "messages", "invalid_messages") from None
    if isinstance(p.prompt, str):
        return tok.encode(p.prompt)
    bad = [t for t in p.prompt if not 0 <= t < tok.vocab_size]
    if bad:
        raise bad_request(f"token id {bad[0]} in 'prompt' is outside the vocabulary [0, {tok.vocab_size})",
                          "prompt", "invalid_value")
    return list(p.prompt)


# ---- response bodies ---------------------------------------------------------------------------

def _token_str(tok, i: int) -> str:
    return tok.token_bytes(i).decode("utf-8", "replace")


def _chat_logprobs(state: ServerState, entries) -> dict:
    tok = state.tokenizer
    content = []
    for tid, lp, top in entries:
        b = tok.token_bytes(tid)
        content.append({"token": b.decode("utf-8", "replace"), "logprob": lp, "bytes": list(b),
                        "top_logprobs": [{"token": _token_str(tok, a), "logprob": alp,
                                          "bytes": list(tok.token_bytes(a))} for a, alp in top]})
    return {"content": content, "refusal": None}


def _completion_logprobs(state: ServerState, entries, offset: int) -> dict:
    tok = state.tokenizer
    out = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for tid, lp, top in entries:
        s = _token_str(tok, tid)
        out["tokens"].append(s)
        out["token_logprobs"].append(lp)
        out["top_logprobs"].append({_token_str(tok, a): alp for a, alp in top})
        out["text_offset"].append(offset)
        offset += len(s)
    return out


class _Chunks:
    """Builds the SSE chunk bodies of one streamed choice (chat.completion.chunk / text_completion)."""

    def __init__(self, state: ServerState, p: Params, rid: str, model: str):
        self.state, self.p, self.rid, self.model = state, p, rid, model
        self.created = int(time.time())
        self.offset = 0

    def _base(self, choices, usage=None) -> bytes:
        obj = "chat.completion.chunk" if self.p.kind == "chat" else "text_completion"
        d = {"id": self.rid, "object": obj, "created": self.created, "model": self.model,
             "system_fingerprint": self.state.fingerprint, "choices": choices}
        if self.p.include_usage:
            d["usage"] = usage
        return b"data: " + json.dumps(d, separators=(",", ":")).encode() + b"\n\n"

    def first(self) -> Optional[bytes]:
        if self.p.kind != "chat":
            return None
        return self._base([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                            "finish_reason": None}])

    def piece(self, pc: Piece) -> bytes:
        lp = None
        if self.p.top_logprobs >= 0:
            lp = (_chat_logprobs(self.state, pc.logprobs) if self.p.kind == "chat"
                  else _completion_logprobs(self.state, pc.logprobs, self.offset))
        self.offset += len(pc.text)
        if self.p.kind == "chat":
            return self._base([{"index": 0, "delta": {"content": pc.text}, "logprobs": lp, "finish_reason": None}])
        return self._base([{"index": 0, "text": pc.text, "logprobs": lp, "finish_reason": None}])

    def last(self, finish: str) -> bytes:
        if self.p.kind == "chat":
            return self._base([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}])
        return self._base([{"index": 0, "text": "", "logprobs": None, "finish_reason": finish}])

    def usage(self, usage: dict) -> bytes:
        return self._base([], usage)


class _EventStream(StreamingResponse):
    """SSE over a Job: `data: {...}\\n\\n` chunks, then `data: [DONE]`. Watches for the client going
    away the whole time (also while the request still waits for a slot) and cancels the job then."""

    media_type = "text/event-stream"

    def __init__(self, state: ServerState, job: Job, chunks: _Chunks):
        self.state, self.job, self.chunks = state, job, chunks
        super().__init__(self._body(), status_code=200, media_type=self.media_type,
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _body(self):
        first = self.chunks.first()
        if first:
            yield first
        async for pc in self.job.pieces():
            yield self.chunks.piece(pc)
        if self.job.error:
            err = ApiError(500, f"generation failed: {self.job.error}", type="server_error", code="engine_error")
            yield b"data: " + json.dumps(err.body()).encode() + b"\n\n"
        else:
            yield self.chunks.last(self.job.finish_reason or "stop")
            if self.chunks.p.include_usage:
                yield self.chunks.usage(self.job.usage())
        yield b"data: [DONE]\n\n"

    async def __call__(self, scope, receive, send) -> None:
        job = self.job
        body = self.body_iterator
        try:
            async with anyio.create_task_group() as tg:
                async def watch():
                    while True:
                        msg = await receive()
                        if msg["type"] == "http.disconnect":
                            job.cancel(disconnected=True)
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(watch)
                try:
                    await send({"type": "http.response.start", "status": self.status_code,
                                "headers": self.raw_headers})
                    async for chunk in body:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                except OSError:  # uvicorn's ClientDisconnected: the client left between two chunks
                    job.cancel(disconnected=True)
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await body.aclose()
                if job.finish_reason is None or job.finish_reason == "cancelled":
                    job.cancel(disconnected=job.finish_reason is None)
                job.done(499 if job.disconnected else 200)  # 499: the client closed the stream
                self.state.metrics.in_flight_add(-1)


# ---- endpoints ---------------------------------------------------------------------------------

async def _generate(request: Request, kind: str) -> Response:
    state: ServerState = request.app.state.fastspec
    t_arrival = time.perf_counter()
    endpoint = "chat" if kind == "chat" else "completion"
    try:
        if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
            raise ApiError(413, f"the request body exceeds {MAX_BODY_BYTES} bytes", code="body_too_large")
        p = parse_request(parse_json(await request.body()), kind)
        if not state.knows(p.model):
            raise ApiError(404, f"the model '{p.model}' does not exist: this server serves '{state.model_name}'",
                           param="model", code="model_not_found")
        ids = await anyio.to_thread.run_sync(_prompt_ids, state, p)
        job = await anyio.to_thread.run_sync(Job, state, p, ids, t_arrival)
    except ApiError as e:
        state.log_request({"endpoint": endpoint, "status": e.status, "code": e.code, "error": e.message})
        return _error_response(e)
    except ClientDisconnect:  # gone before its body arrived
        state.log_request({"endpoint": endpoint, "status": 499, "code": "client_disconnected",
                           "error": "the client left before sending the whole body"})
        return Response(status_code=499)
    model = p.model or state.model_name
    rid = ("chatcmpl-" if kind == "chat" else "cmpl-") + uuid.uuid4().hex[:24]
    state.metrics.in_flight_add(1)
    if p.stream:
        return _EventStream(state, job, _Chunks(state, p, rid, model))
    try:
        async with anyio.create_task_group() as tg:
            async def watch():
                while True:
                    msg = await request.receive()
                    if msg["type"] == "http.disconnect":
                        job.cancel(disconnected=True)
                        tg.cancel_scope.cancel()
                        return

            tg.start_soon(watch)
            await job.run_to_end()
            tg.cancel_scope.cancel()
    finally:
        state.metrics.in_flight_add(-1)
    if job.disconnected:
        job.done(499)
        return Response(status_code=499)
    if job.error:
        job.done(500)
        return _error_response(ApiError(500, f"generation failed: {job.error}", type="server_error",
                                        code="engine_error"))
    job.done(200)
    finish = job.finish_reason
    common = {"id": rid, "created": int(time.time()), "model": model, "system_fingerprint": state.fingerprint,
              "usage": job.usage()}
    if kind == "chat":
        lp = _chat_logprobs(state, _all_entries(job)) if p.top_logprobs >= 0 else None
        choice = {"index": 0, "message": {"role": "assistant", "content": job.text, "refusal": None},
                  "logprobs": lp, "finish_reason": finish}
        return JSONResponse({"object": "chat.completion", "choices": [choice], **common})
    lp = _completion_logprobs(state, _all_entries(job), 0) if p.top_logprobs >= 0 else None
    choice = {"index": 0, "text": job.text, "logprobs": lp, "finish_reason": finish}
    return JSONResponse({"object": "text_completion", "choices": [choice], **common})


def _all_entries(job: Job):
    """(id, logprob, top) of every text-bearing token the job consumed (end-of-turn tokens left out)."""
    lps = job.req.logprobs()
    return [(t, *lps[i]) for i, t in enumerate(job.tokens) if i < len(lps) and t not in job._eos]


async def chat_completions(request: Request) -> Response:
    return await _generate(request, "chat")


async def completions(request: Request) -> Response:
    return await _generate(request, "completion")


def _model_card(state: ServerState) -> dict:
    return {"id": state.model_name, "object": "model", "created": state.created, "owned_by": "fastspec"}


async def list_models(request: Request) -> Response:
    state: ServerState = request.app.state.fastspec
    return JSONResponse({"object": "list", "data": [_model_card(state)]})


async def get_model(request: Request) -> Response:
    state: ServerState = request.app.state.fastspec
    name = request.path_params["model"]
    if not state.knows(name):
        return _error_response(ApiError(404, f"the model '{name}' does not exist", param="model",
                                        code="model_not_found"))
    return JSONResponse(_model_card(state))


async def health(request: Request) -> Response:
    state: ServerState = request.app.state.fastspec
    st = state.scheduler.stats
    return JSONResponse({"status": "ok", "model": state.model_name, "active": st["active"], "queued": st["queued"],
                         "max_sequences": st["max_sequences"]})


async def metrics(request: Request) -> Response:
    state: ServerState = request.app.state.fastspec
    text = state.metrics.render(dict(state.scheduler.stats), state.model_name)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


# ---- errors and accounting ---------------------------------------------------------------------

async def _http_error(request: Request, exc: HTTPException) -> Response:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    msg = f"{request.method} {request.url.path}: {exc.detail}"
    return JSONResponse(ApiError(exc.status_code, msg, code=code).body(), status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return JSONResponse(ApiError(500, f"internal error: {type(exc).__name__}: {exc}", type="server_error").body(),
                        status_code=500)


class _CountRequests:
    """ASGI middleware: fastspec_requests_total{endpoint, status} for every HTTP answer."""

    def __init__(self, app, state: ServerState):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        endpoint = next((e for e in ENDPOINTS if path == e or path.startswith(e + "/")), "other")
        status = {"code": 500}

        async def send_counting(msg):
            if msg["type"] == "http.response.start":
                status["code"] = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            self.state.metrics.request_done(endpoint, status["code"])


def create_app(state: ServerState) -> Starlette:
    if state.limiter is None:
        state.limiter = anyio.CapacityLimiter(state.thread_slots)
    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", get_model, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error, Exception: _server_error})
    app.state.fastspec = state
    app.add_middleware(_CountRequests, state=state)
    return app
