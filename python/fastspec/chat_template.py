"""Chat templates: the model's Jinja template (GGUF `tokenizer.chat_template`, or `chat_template` in
tokenizer_config.json / chat_template.jinja) rendered the way Hugging Face transformers renders it:
a sandboxed Jinja environment with trim_blocks/lstrip_blocks, `raise_exception`, a `tojson` that
does not HTML-escape, `strftime_now`, loop controls and a no-op `{% generation %}` block.

A template comes from the model file, so it is untrusted input. Besides the sandbox (no attribute
access to internals, no underscore names, immutable containers), rendering is bounded
(chat_template_limits.py): wall time, steps (loop iterations, calls, filters, operators), the size
of every value it builds, the characters it builds in all, and the output. Every failure -- a
syntax error, the template's own raise_exception, a sandbox refusal, a limit, or any exception
the template's code raises (TypeError, RecursionError, MemoryError, ...) -- raises
`ChatTemplateError`, a ValueError subclass whose message starts with "chat template:"."""
from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes

from .chat_template_limits import BoundedSandbox, Limits, RenderGuard, input_chars


def _raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt):
    return datetime.now().strftime(fmt)


class _GenerationBlock(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}` marks assistant text for training masks; render the body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


class _Namespace(jinja2.utils.Namespace):
    """`namespace()` that refuses underscore attributes (no way to CPython internals)."""

    def __init__(*args, **kwargs):  # noqa: N805 (same signature trick as jinja2's Namespace)
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            _Namespace._check(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name, value):
        _Namespace._check(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check(name):
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(f"chat templates cannot set underscore attributes ({name!r})")


class ChatTemplateError(ValueError):
    """A chat template could not be rendered: syntax, raise_exception, sandbox, limits, or an error
    the template's own code raised. Subclasses ValueError (what callers caught before)."""


@lru_cache(maxsize=16)
def compile_template(source: str) -> jinja2.Template:
    env = BoundedSandbox(trim_blocks=True, lstrip_blocks=True,
                         extensions=[_GenerationBlock, jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.globals["namespace"] = _Namespace
    env.globals.pop("lipsum", None)  # generates arbitrary amounts of text; no chat template uses it
    env.guard_filters()
    return env.from_string(source)


def _plain(value: Any) -> Any:
    """A copy of the template inputs made of plain JSON-like types only (the sandbox sees no objects)."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    return f"<{type(value).__name__}>"


def render(source: str, messages, *, add_generation_prompt: bool = True, limits: Limits = None,
           **context) -> str:
    """Render `source` for `messages` (a list of {"role", "content", ...} dicts); `context` adds
    variables such as bos_token, eos_token, tools. Any template failure, including the template's
    own raise_exception (e.g. "roles must alternate") and the render limits (`limits`, default
    Limits(): see chat_template_limits.py), raises ChatTemplateError (a ValueError)."""
    messages = _plain(list(messages))
    for m in messages:
        if not isinstance(m, dict):
            raise TypeError(f"chat messages must be dicts with 'role' and 'content', got {m!r}")
    context.setdefault("tools", None)
    context.setdefault("documents", None)
    context = _plain(context)
    try:
        template = compile_template(source)
    except jinja2.TemplateError as e:  # syntax errors
        raise ChatTemplateError(f"chat template: {e}") from e
    except Exception as e:  # noqa: BLE001 -- Python's compile() of the generated code (SyntaxError:
        # "'continue' not properly in loop", found by fuzz_chat_template.py), RecursionError, MemoryError
        raise ChatTemplateError(f"chat template: cannot compile: {type(e).__name__}: {e}") from None
    guard = RenderGuard(limits or Limits(), input_chars(messages) + input_chars(context))
    try:
        with guard:
            return guard.collect(template.generate(messages=messages, add_generation_prompt=add_generation_prompt,
                                                   **context))
    except ChatTemplateError:
        raise
    except jinja2.TemplateError as e:  # raise_exception(...), sandbox refusals, limits
        raise ChatTemplateError(f"chat template: {e}") from e
    except Exception as e:  # noqa: BLE001 -- the template's own code failed (TypeError, RecursionError...)
        raise ChatTemplateError(f"chat template: {type(e).__name__}: {e}") from None
