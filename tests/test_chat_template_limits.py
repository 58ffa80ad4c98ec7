"""Chat-template rendering is bounded (python/fastspec/chat_template_limits.py): hostile templates --
long loops, huge strings and numbers, doubling, deep recursion, attribute access to internals -- are
refused quickly with ChatTemplateError (a ValueError), and real templates still render."""
import base64
import time

import pytest

from fastspec import chat_template
from fastspec.chat_template import ChatTemplateError
from fastspec.chat_template_limits import Limits

MSGS = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]


@pytest.mark.parametrize("source,match", [
    ("{% for i in range(10**9) %}{{ i }}{% endfor %}", r"Range too big"),
    ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", r"more than \d+ steps"),
    ("{% for a in messages %}{% for b in range(99999) %}{% for c in range(99) %}{% endfor %}{% endfor %}{% endfor %}",
     r"more than \d+ steps"),
    ("{{ 'a' * 10**9 }}", r"'\*' would make a value of 1000000000 characters"),
    ("{{ [1, 2] * 10**8 }}", r"'\*' would make a value of 200000000"),
    ("{{ 10 ** (10 ** 10) }}", r"'\*\*' would make an integer"),
    ("{{ 2 ** (2 ** 40) }}", r"'\*\*' would make an integer"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
     r"'~' would make a value of \d+ characters"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
     r"'\+' would make a value"),
    ("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + ['x' * 100000 ~ i] %}"
     "{% endfor %}", r"built more than \d+ characters in all|steps"),
    ("{{ 'x'.ljust(10**9) }}", r"str.ljust width 1000000000"),
    ("{{ 'x' | center(10**9) }}", r"filter center width 1000000000"),
    ("{{ 'x' | indent(10**9) }}", r"filter indent width"),
    ("{{ '%999999999d' % 1 }}", r"'%' format width 999999999"),
    ("{{ '%*d' % (999999999, 1) }}", r"'%' format width 999999999"),
    ("{{ '{:>999999999}'.format(1) }}", r"str.format field width 999999999"),
    ("{{ '%999999999d' | format(1) }}", r"'%' format width"),
    ("{{ ('a' * 100000) | replace('a', 'b' * 100000) }}", r"replace would make a value"),
    ("{{ ('a' * 100000).replace('', 'xxxxxxxxxxxxxxx') }}", r"replace would make a value"),
    ("{{ range(100000) | join('x' * 100000) }}", r"join would make a value"),
    ("{% for i in range(99999) %}{{ 'y' * 99999 }}{% endfor %}", r"output longer than|built more than"),
    ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", r"RecursionError"),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", r"unsafe"),
    ("{{ cycler.__init__.__globals__ }}", r"unsafe"),
    ("{{ messages.pop() }}", r"unsafe|not safely callable"),
    ("{{ lipsum(n=100000) }}", r"undefined|not callable|UndefinedError"),
    ("{{ 1 + 'a' }}", r"TypeError"),
])
def test_hostile_template_refused_quickly(source, match):
    t0 = time.perf_counter()
    with pytest.raises(ChatTemplateError, match=match) as e:
        chat_template.render(source, MSGS)
    assert str(e.value).startswith("chat template:")
    assert isinstance(e.value, ValueError)  # what callers (Tokenizer.apply_chat_template) document
    assert time.perf_counter() - t0 < Limits().seconds + 2.0


@pytest.mark.parametrize("source", ["{{ raise_exception.__globals__ }}", "{{ 'x' | attr('__class__') }}",
                                    "{{ messages[0].__class__ }}", "{{ namespace.__init__ }}"])
def test_internals_render_nothing(source):
    """Unsafe attributes are sandbox-undefined: printing them gives '' (using them raises)."""
    assert chat_template.render(source, MSGS) == ""


def test_wall_time_limit():
    """A loop under the step limit but over the time limit stops at the deadline."""
    src = "{% for i in range(100000) %}{{ ('x' * 5000) | replace('x', 'yz') | length }}{% endfor %}"
    t0 = time.perf_counter()
    with pytest.raises(ChatTemplateError, match=r"longer than 0.05 s|more than"):
        chat_template.render(src, MSGS, limits=Limits(seconds=0.05))
    assert time.perf_counter() - t0 < 2.0


def test_limits_scale_with_the_input():
    """A long conversation renders to a long prompt: the size limits grow with the input."""
    big = "w" * 3_000_000
    out = chat_template.render("{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}{% endfor %}",
                               [{"role": "user", "content": big}] * 2)
    assert len(out) == 2 * (len(big) + 6)


def test_real_template_features_still_render():
    src = ("{%- macro fmt(t) -%}{{ t | tojson(indent=2) }}{%- endmacro -%}{% for t in tools %}{{ fmt(t) }}"
           "{% endfor %}{% set ns = namespace(n=0) %}{% for m in messages %}{% if m.role == 'skip' %}{% continue %}"
           "{% endif %}{% set ns.n = ns.n + 1 %}{{ loop.index }}:{{ m.content | upper | replace('H', 'J') }}"
           "{{ '%s-%d' | format('a', 3) }}{{ '{:>4}'.format('x') }}{{ ('ab' * 3)[:4] }}{{ 'q'.center(5) }}"
           "{% endfor %}{{ ns.n }}{{ messages | map(attribute='role') | join(',') }}{{ 2 ** 10 }}")
    out = chat_template.render(src, MSGS + [{"role": "skip", "content": ""}], tools=[{"name": "f"}])
    assert out == ('{\n  "name": "f"\n}1:JIa-3   xabab  q  2:YOa-3   xabab  q  2user,assistant,skip1024')


# ---- findings of tests/fuzz/fuzz_chat_template.py ---------------------------------------------------

def test_fuzz_continue_outside_loop():
    """jinja2 let `{% continue %}` outside a loop through its parser and Python's compile() raised
    SyntaxError ('continue' not properly in loop), which escaped render()."""
    data = base64.b64decode("IDmgQP///////////////////20ucm9sZSA9PSAnc2tpcCcgJX17JSBjb250aW51ZSAlfSUge2Vu"
                            "ZGlmICV9e///////////////dHJpbSB9fQ==")
    with pytest.raises(ChatTemplateError, match=r"cannot compile: SyntaxError"):
        chat_template.render(data.decode("utf-8", "replace"), MSGS)
