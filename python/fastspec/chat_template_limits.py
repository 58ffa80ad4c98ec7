"""Bounds on rendering an untrusted chat template (chat_template.py renders through these).

The sandbox alone stops attribute access to internals but not a template that loops for hours or
builds gigabytes (`{% for i in range(10**9) %}`, `'a' * 10**9`, `9 ** 9 ** 9`, a string doubled in
a loop). `BoundedSandbox` is jinja2's ImmutableSandboxedEnvironment plus a `RenderGuard` consulted
before and after every operation a template can repeat or grow a value with:

- every loop iteration (each `{% for %}` iterable is wrapped at compile time), call, attribute and
  item access, filter, binary operator and `~` concatenation is a *step*; steps and wall time are
  capped (`Limits.steps`, `Limits.seconds`);
- operations that can make a big value are checked *before* they run: `*` and `+` on strings and
  lists, `**` on integers, `%` formatting widths, `~`, `str.format` widths, width arguments of
  ljust/rjust/center/zfill/expandtabs and of the center/indent/wordwrap/truncate/tojson filters,
  replace and join (the result size is computed first);
- every value an operation returns is measured: one value may hold `value_chars` characters (or
  list items), and all values built during the render together `built_chars`, so a template can't
  keep thousands of large strings alive;
- the output is collected piece by piece up to `output_chars`.

The size limits scale with the input (a long conversation renders to a long prompt): a base of
1 Mi characters plus a multiple of the characters in messages and context. A refusal raises
`jinja2.exceptions.SecurityError`, which chat_template.render turns into ChatTemplateError.
"""
from __future__ import annotations

import functools
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer


@dataclass(frozen=True)
class Limits:
    """Render limits. Size limits are `base + per_input_char * (characters in the inputs)`."""
    seconds: float = 1.0            # wall time of one render (real templates: milliseconds)
    steps: int = 1_000_000          # loop iterations + calls + filters + operators + lookups
    base_chars: int = 1 << 20       # size allowance without any input
    output_per_input: int = 4       # output_chars = base + 4 * input
    built_per_input: int = 32       # built_chars = 16 * base + 32 * input (all new strings/lists)
    width_max: int = 10_000         # padding/indent widths, % and str.format field widths


_local = threading.local()


def current_guard() -> Optional["RenderGuard"]:
    return getattr(_local, "guard", None)


def _size(v: Any) -> int:
    return len(v) if isinstance(v, (str, bytes, list, tuple, dict)) else 0


def input_chars(v: Any) -> int:
    """Characters (and container items) in plain template inputs."""
    if isinstance(v, str):
        return len(v)
    if isinstance(v, dict):
        return len(v) + sum(input_chars(k) + input_chars(x) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return len(v) + sum(input_chars(x) for x in v)
    return 1


class RenderGuard:
    """The budget of one render; installed for the current thread with `with guard:`."""

    def __init__(self, limits: Limits, n_input: int):
        self.limits = limits
        self.output_chars = limits.base_chars + limits.output_per_input * n_input
        self.value_chars = self.output_chars
        self.built_chars = 16 * limits.base_chars + limits.built_per_input * n_input
        self.steps = 0
        self.built = 0
        self.deadline = 0.0

    def __enter__(self):
        self.deadline = time.monotonic() + self.limits.seconds
        self._prev = current_guard()
        _local.guard = self
        return self

    def __exit__(self, *exc):
        _local.guard = self._prev
        return False

    def refuse(self, what: str):
        raise SecurityError(f"render limit: {what}")

    def step(self):
        self.steps += 1
        if self.steps > self.limits.steps:
            self.refuse(f"more than {self.limits.steps} steps (loop iterations, calls, operators)")
        if (self.steps & 255) == 0 and time.monotonic() > self.deadline:
            self.refuse(f"rendering took longer than {self.limits.seconds:g} s")

    def will_make(self, n: int, what: str):
        """Before building a value of n characters/items."""
        if n > self.value_chars:
            self.refuse(f"{what} would make a value of {n} characters (limit {self.value_chars})")

    def made(self, v: Any) -> Any:
        """After an operation returned v: its size counts against the value and built limits."""
        n = _size(v)
        if n:
            if n > self.value_chars:
                self.refuse(f"a value of {n} characters (limit {self.value_chars})")
            self.built += n
            if self.built > self.built_chars:
                self.refuse(f"the template built more than {self.built_chars} characters in all")
        return v

    def width(self, n: Any, what: str):
        if isinstance(n, int) and not isinstance(n, bool) and abs(n) > self.limits.width_max:
            self.refuse(f"{what} width {n} (limit {self.limits.width_max})")

    def collect(self, pieces: Iterable[str]) -> str:
        out, n = [], 0
        for p in pieces:
            n += len(p)
            if n > self.output_chars:
                self.refuse(f"output longer than {self.output_chars} characters")
            out.append(p)
        return "".join(out)


def _guard() -> RenderGuard:
    g = current_guard()
    if g is None:  # a template rendered outside chat_template.render: single operations still bounded
        g = RenderGuard(Limits(), 0)
        g.deadline = time.monotonic() + g.limits.seconds
    return g


# `%` formatting fields and str.format fields: the numbers that set widths and precisions.
_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMAT_FIELD = re.compile(r"\{[^{}]*\}")
_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})
_WIDTH_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate", "tojson"})


def _check_percent(g: RenderGuard, fmt: str, args: Any):
    for m in _PERCENT_FIELD.finditer(fmt):
        for part in m.groups():
            if part == "*":
                vals = args if isinstance(args, tuple) else (args,)
                for v in vals:
                    g.width(v, "'%' format")
            elif part:
                g.width(int(part), "'%' format")


def _check_format(g: RenderGuard, fmt: str):
    for field in _FORMAT_FIELD.findall(fmt):
        for num in re.findall(r"\d+", field.split(":", 1)[1] if ":" in field else ""):
            g.width(int(num), "str.format field")


def _check_replace(g: RenderGuard, s: Any, old: Any, new: Any, count: Any = -1):
    if isinstance(s, str) and isinstance(old, str) and isinstance(new, str):
        hits = len(s) + 1 if old == "" else s.count(old)
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        g.will_make(len(s) + hits * (len(new) - len(old)), "replace")


def _check_join(g: RenderGuard, sep: Any, items: Any):
    if isinstance(sep, str) and hasattr(items, "__len__"):
        n = len(items)
        total = len(sep) * max(n - 1, 0)
        if isinstance(items, (list, tuple)):
            total += sum(_size(x) for x in items)
        g.will_make(total, "join")


class _GuardLoops(NodeTransformer):
    """Wraps every `{% for %}` iterable in environment.fastspec_guard_iter(...) and every `~` chain
    in environment.fastspec_concat(...) (compile time, on the template's AST)."""

    def visit_For(self, node):
        self.generic_visit(node)
        node.iter = nodes.Call(nodes.EnvironmentAttribute("fastspec_guard_iter"), [node.iter], [], None, None,
                               lineno=node.lineno)
        return node

    def visit_Concat(self, node):
        self.generic_visit(node)
        return nodes.Call(nodes.EnvironmentAttribute("fastspec_concat"), list(node.nodes), [], None, None,
                          lineno=node.lineno)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """ImmutableSandboxedEnvironment whose operations consult the thread's RenderGuard."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def _parse(self, source, name, filename):
        return _GuardLoops().visit(super()._parse(source, name, filename))

    def guard_filters(self):
        """Wraps every filter so it counts as a step, is pre-checked (widths, replace, join) and its
        result measured. Call once, after the filters are registered."""
        for name, f in list(self.filters.items()):
            self.filters[name] = _guarded_filter(name, f)

    # ---- hooks the compiled template calls -------------------------------------------------------

    def fastspec_guard_iter(self, iterable):
        g = _guard()
        g.step()
        for x in iterable:
            g.step()
            yield x

    def fastspec_concat(self, *parts):
        g = _guard()
        g.step()
        strs = [p if isinstance(p, str) else str(p) for p in parts]
        g.will_make(sum(len(p) for p in strs), "'~'")
        return g.made("".join(strs))

    def call_binop(self, context, operator, left, right):
        g = _guard()
        g.step()
        if operator == "*":
            seq, n = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(n, int) and isinstance(seq, (str, list, tuple)):
                g.will_make(len(seq) * max(n, 0), "'*'")
        elif operator == "+":
            if isinstance(left, (str, list, tuple)) and type(left) is type(right):
                g.will_make(len(left) + len(right), "'+'")
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
                bits = right * abs(left).bit_length()
                if bits > 64 * 1024:
                    g.refuse(f"'**' would make an integer of about {bits} bits")
        elif operator == "%" and isinstance(left, str):
            _check_percent(g, left, right)
        return g.made(super().call_binop(context, operator, left, right))

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja2's signature)
        g = _guard()
        g.step()
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if not isinstance(owner, str):
            return super().call(__context, __obj, *args, **kwargs)
        # str methods build new strings: pre-check the multiplying ones, measure the result
        if name in _WIDTH_METHODS:
            for v in list(args) + list(kwargs.values()):
                g.width(v, f"str.{name}")
        elif name == "replace" and len(args) >= 2:
            _check_replace(g, owner, *args[:3])
        elif name == "join" and args:
            _check_join(g, owner, args[0])
        return g.made(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj, attribute):
        _guard().step()
        return super().getattr(obj, attribute)

    def getitem(self, obj, argument):
        g = _guard()
        g.step()
        v = super().getitem(obj, argument)
        return g.made(v) if isinstance(argument, slice) else v

    def wrap_str_format(self, value):
        owner = getattr(value, "__self__", None)
        if isinstance(owner, str) and getattr(value, "__name__", "") in ("format", "format_map"):
            _check_format(_guard(), owner)
        return super().wrap_str_format(value)


def _guarded_filter(name: str, f):
    @functools.wraps(f)
    def run(*args, **kwargs):
        g = _guard()
        g.step()
        plain = [a for a in args if isinstance(a, (str, int, float, list, tuple, dict, range)) or a is None]
        if name in _WIDTH_FILTERS:
            for v in plain[1:] + list(kwargs.values()):
                g.width(v, f"filter {name}")
        elif name == "replace" and len(plain) >= 3:
            count = plain[3] if len(plain) > 3 else kwargs.get("count")
            _check_replace(g, *plain[:3], -1 if count is None else count)
        elif name == "join" and plain:
            _check_join(g, plain[1] if len(plain) > 1 else kwargs.get("d", ""), plain[0])
        elif name == "format" and plain and isinstance(plain[0], str):
            _check_percent(g, plain[0], tuple(plain[1:]))
        r = f(*args, **kwargs)
        return r if any(r is a for a in args) else g.made(r)  # a filter returning its input built nothing

    return run
