"""atheris harness: chat-template rendering (python/fastspec/chat_template.py and its limits).

The input is the template source (UTF-8, invalid bytes replaced), rendered for a short fixed
conversation with tools. Contract: it renders to a string no longer than the output limit, or
raises ChatTemplateError; anything else (another exception, a hang past -timeout, a render past
the time limit by more than slack) is a finding. The seeds include real chat templates and the
hostile ones the sandbox must hold (tests/fuzz/make_seeds.py).

    python tests/fuzz/fuzz_chat_template.py -dict=tests/fuzz/jinja.dict CORPUS [SEEDS] -max_total_time=60
"""
import sys
import time

import atheris

import jinja2  # noqa: F401
from fastspec import chat_template
from fastspec.chat_template_limits import Limits, RenderGuard, input_chars

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi <b>there</b>"},
            {"role": "assistant", "content": "Hello!", "name": "bot"}, {"role": "user", "content": "ü" * 40}]
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"x": {"type": "int"}}}}]
LIMITS = Limits()
SLACK_S = 2.0  # scheduling noise on a shared machine; a real overrun is unbounded


def TestOneInput(data: bytes):
    source = data.decode("utf-8", "replace")
    t0 = time.monotonic()
    try:
        out = chat_template.render(source, MESSAGES, tools=TOOLS, bos_token="<s>", eos_token="</s>")
    except chat_template.ChatTemplateError:
        out = None
    dt = time.monotonic() - t0
    if dt > LIMITS.seconds + SLACK_S:
        raise AssertionError(f"render took {dt:.1f} s (limit {LIMITS.seconds} s)")
    if out is not None:
        limit = RenderGuard(LIMITS, input_chars(MESSAGES) + input_chars(TOOLS) + 10).output_chars
        if not isinstance(out, str) or len(out) > limit:
            raise AssertionError(f"render returned {type(out).__name__} of {len(out)} characters")


if __name__ == "__main__":
    # fastspec may be imported through an editable-install finder, which instrument_imports skips:
    # instrument every loaded function instead (fastspec, jinja2, the stdlib they use).
    atheris.instrument_all()
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
