"""Parses and checks the JSON bodies of /v1/chat/completions and /v1/completions.

Every problem is an ApiError(400) that names the field (`param`): malformed JSON, a field we do not
know, a value of the wrong type, or one out of range. Values are checked here, before anything is
queued, so a bad request never reaches the scheduler.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

from .errors import bad_request

MAX_STOPS = 16
MAX_TOP_LOGPROBS = 20
INT32_MAX, INT64_MAX = 2**31 - 1, 2**63 - 1  # the core's field types (SamplingOptions)
ROLES = ("system", "developer", "user", "assistant", "tool")


@dataclass
class Params:
    """One generation request, checked. kind: "chat" or "completion"."""

    kind: str
    model: Optional[str] = None
    messages: Optional[List[Dict[str, str]]] = None
    prompt: Union[str, List[int], None] = None
    max_tokens: Optional[int] = None        # None: up to the end of the context
    temperature: float = 1.0                # OpenAI's default
    top_p: float = 1.0
    top_k: int = 0                          # extension: 0 = off
    seed: Optional[int] = None              # None: a random seed
    stop: List[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    top_logprobs: int = -1                  # -1: no logprobs; else alternatives per token
    draft: bool = True                      # extension: speculation on/off for this request


_MISSING = object()


def _type_name(v: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(v), "number" if isinstance(v, (int, float)) else type(v).__name__)


def _wrong_type(name: str, want: str, v: Any):
    return bad_request(f"'{name}' must be {want}, got {_type_name(v)} {json.dumps(v)[:60]}", name, "invalid_type")


def _get(body: dict, name: str):
    v = body.get(name, _MISSING)
    return _MISSING if v is None else v  # JSON null means "the default", as OpenAI takes it


def _int(body: dict, name: str, default, lo=None, hi=None):
    v = _get(body, name)
    if v is _MISSING:
        return default
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise _wrong_type(name, "an integer", v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise bad_request(f"'{name}' must be {rng}, got {v}", name)
    return v


def _float(body: dict, name: str, default, lo, hi, lo_open=False):
    v = _get(body, name)
    if v is _MISSING:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _wrong_type(name, "a number", v)
    v = float(v)
    if not math.isfinite(v) or v > hi or v < lo or (lo_open and v == lo):
        raise bad_request(f"'{name}' must be in {'(' if lo_open else '['}{lo:g}, {hi:g}], got {v:g}", name)
    return v


def _bool(body: dict, name: str, default: bool) -> bool:
    v = _get(body, name)
    if v is _MISSING:
        return default
    if not isinstance(v, bool):
        raise _wrong_type(name, "a boolean", v)
    return v


def _only_default(body: dict, name: str, ok) -> None:
    """An OpenAI field we accept only at its default (penalties, logit_bias, tools, ...)."""
    v = _get(body, name)
    if v is not _MISSING and not ok(v):
        raise bad_request(f"'{name}' = {json.dumps(v)[:60]} is not supported by this server", name, "unsupported_value")


_ZERO = (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v == 0)
_EMPTY = (lambda v: v in ({}, []))
_ANY_STR = (lambda v: isinstance(v, str))
_ANY_BOOL = (lambda v: isinstance(v, bool))
_ANY_OBJ = (lambda v: isinstance(v, dict))

_IGNORED = {  # accepted at these values, ignored
    "presence_penalty": _ZERO, "frequency_penalty": _ZERO, "logit_bias": _EMPTY, "user": _ANY_STR,
    "response_format": (lambda v: v == {"type": "text"}), "store": (lambda v: v is False),
    "metadata": _ANY_OBJ, "tools": _EMPTY, "tool_choice": (lambda v: v == "none"),
    "parallel_tool_calls": _ANY_BOOL, "service_tier": _ANY_STR,
}
_COMMON = {"model", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop", "n", "stream",
           "stream_options", "logprobs", "draft"}
CHAT_FIELDS = _COMMON | {"messages", "max_completion_tokens", "top_logprobs"} | set(_IGNORED)
COMPLETION_FIELDS = _COMMON | {"prompt", "echo", "suffix", "best_of"} | {
    "presence_penalty", "frequency_penalty", "logit_bias", "user"}


def parse_json(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad_request(f"the request body is not valid JSON: {e}", None, "invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request(f"the request body must be a JSON object, got {_type_name(body)}", None, "invalid_json")
    return body


def _content(m: dict, i: int) -> str:
    name = f"messages[{i}].content"
    c = m.get("content")
    if c is None:
        return ""
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        parts = []
        for j, p in enumerate(c):
            if not isinstance(p, dict) or p.get("type") != "text" or not isinstance(p.get("text"), str):
                raise bad_request(f"'{name}[{j}]' must be a text part {{\"type\": \"text\", \"text\": ...}} "
                                  "(this server handles text only)", name, "invalid_type")
            parts.append(p["text"])
        return "".join(parts)
    raise _wrong_type(name, "a string or an array of text parts", c)


def _messages(body: dict) -> List[Dict[str, str]]:
    msgs = _get(body, "messages")
    if msgs is _MISSING:
        raise bad_request("'messages' is required", "messages", "missing_required_parameter")
    if not isinstance(msgs, list):
        raise _wrong_type("messages", "an array of messages", msgs)
    if not msgs:
        raise bad_request("'messages' must not be empty", "messages")
    out = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise _wrong_type(f"messages[{i}]", "an object", m)
        role = m.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise bad_request(f"'messages[{i}].role' must be one of {', '.join(ROLES)}, got {json.dumps(role)}",
                              f"messages[{i}].role")
        out.append({"role": "system" if role == "developer" else role, "content": _content(m, i)})
    return out


def _prompt(body: dict) -> Union[str, List[int]]:
    p = _get(body, "prompt")
    if p is _MISSING:
        raise bad_request("'prompt' is required", "prompt", "missing_required_parameter")
    if isinstance(p, list) and len(p) == 1 and isinstance(p[0], (str, list)):
        p = p[0]  # a batch of one
    if isinstance(p, str):
        return p
    if isinstance(p, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in p):
        if not p:
            raise bad_request("'prompt' must not be empty", "prompt")
        return [int(t) for t in p]
    if isinstance(p, list) and p and all(isinstance(t, (str, list)) for t in p):
        raise bad_request("a batch of several prompts is not supported: send one prompt per request", "prompt",
                          "unsupported_value")
    raise _wrong_type("prompt", "a string or an array of token ids", p)


def _stop(body: dict) -> List[str]:
    s = _get(body, "stop")
    if s is _MISSING:
        return []
    if isinstance(s, str):
        s = [s]
    if not isinstance(s, list) or not all(isinstance(x, str) for x in s):
        raise _wrong_type("stop", "a string or an array of strings", s)
    if len(s) > MAX_STOPS:
        raise bad_request(f"'stop' may hold at most {MAX_STOPS} strings, got {len(s)}", "stop")
    return [x for x in s if x]


def parse_request(body: dict, kind: str) -> Params:
    """kind: "chat" (/v1/chat/completions) or "completion" (/v1/completions)."""
    known = CHAT_FIELDS if kind == "chat" else COMPLETION_FIELDS
    for k in body:
        if k not in known:
            raise bad_request(f"unrecognized request argument supplied: '{k}'", k, "unknown_parameter")
    p = Params(kind)
    model = _get(body, "model")
    if model is not _MISSING and not isinstance(model, str):
        raise _wrong_type("model", "a string", model)
    p.model = None if model is _MISSING else model
    if kind == "chat":
        p.messages = _messages(body)
        mt = _int(body, "max_completion_tokens", None, lo=1, hi=INT64_MAX)
        p.max_tokens = mt if mt is not None else _int(body, "max_tokens", None, lo=1, hi=INT64_MAX)
    else:
        p.prompt = _prompt(body)
        p.max_tokens = _int(body, "max_tokens", 16, lo=1, hi=INT64_MAX)  # OpenAI's default for completions
    p.temperature = _float(body, "temperature", 1.0, 0.0, 2.0)
    p.top_p = _float(body, "top_p", 1.0, 0.0, 1.0, lo_open=True)
    p.top_k = _int(body, "top_k", 0, lo=0, hi=INT32_MAX)
    p.seed = _int(body, "seed", None, lo=-(2**63), hi=2**64 - 1)
    p.stop = _stop(body)
    n = _int(body, "n", 1)
    if n != 1:
        raise bad_request(f"'n' must be 1 (one choice per request), got {n}", "n", "unsupported_value")
    p.stream = _bool(body, "stream", False)
    so = _get(body, "stream_options")
    if so is not _MISSING:
        if not isinstance(so, dict):
            raise _wrong_type("stream_options", "an object", so)
        for k in so:
            if k != "include_usage":
                raise bad_request(f"unrecognized argument 'stream_options.{k}'", f"stream_options.{k}",
                                  "unknown_parameter")
        if not p.stream:
            raise bad_request("'stream_options' is only allowed when 'stream' is true", "stream_options")
        p.include_usage = _bool(so, "include_usage", False)
    p.draft = _bool(body, "draft", True)
    if kind == "chat":
        want = _bool(body, "logprobs", False)
        top = _int(body, "top_logprobs", None, lo=0, hi=MAX_TOP_LOGPROBS)
        if top is not None and not want:
            raise bad_request("'top_logprobs' needs 'logprobs': true", "top_logprobs")
        p.top_logprobs = (top or 0) if want else -1
        for name, ok in _IGNORED.items():
            _only_default(body, name, ok)
    else:
        lp = _int(body, "logprobs", None, lo=0, hi=MAX_TOP_LOGPROBS)
        p.top_logprobs = -1 if lp is None else lp
        _only_default(body, "echo", lambda v: v is False)
        _only_default(body, "suffix", lambda v: v == "")
        _only_default(body, "best_of", lambda v: v == 1 and not isinstance(v, bool))
        for name in ("presence_penalty", "frequency_penalty", "logit_bias", "user"):
            _only_default(body, name, _IGNORED[name])
    return p
