"""`fastspec serve` on the real SmolLM2-135M-Instruct: the chat-template path through the openai
client (streaming and not) gives exactly `Engine.chat`'s greedy reply; a stop string cuts as the
engine does; the follow-up turn reuses the cached prefix and still changes no token."""
import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

import fastspec  # noqa: E402
from fastspec.server import ServerThread, build_state  # noqa: E402

pytestmark = [pytest.mark.real_model, pytest.mark.slow]

MSGS = [{"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Write a haiku about the sea."}]


@pytest.fixture(scope="module")
def engines(smollm2_path):
    ref = fastspec.Engine(smollm2_path, threads=2, context=1024)
    served = fastspec.Engine(smollm2_path, threads=2, context=1024, draft="ngram")
    return ref, served


@pytest.fixture(scope="module")
def server(engines, smollm2_path):
    state = build_state(smollm2_path, engine=engines[1], parallel=4, max_queue=8, prefix_cache_mb=64)
    with ServerThread(state) as srv:
        yield srv


def test_chat_template_path_equals_engine_chat(server, engines):
    ref, _ = engines
    c = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=300)
    want = ref.chat(MSGS, max_tokens=48)
    assert ref.tokenizer.encode_chat(MSGS) == ref.tokenize(ref.tokenizer.apply_chat_template(MSGS), add_special=False)
    r = c.chat.completions.create(model="SmolLM2-135M-Instruct.Q4_1.gguf", messages=MSGS, max_tokens=48,
                                  temperature=0)
    assert r.choices[0].message.content == want.text
    assert r.choices[0].finish_reason == want.finish_reason
    assert r.usage.completion_tokens == len(want.tokens)
    s = c.chat.completions.create(model="SmolLM2-135M-Instruct.Q4_1.gguf", messages=MSGS, max_tokens=48,
                                  temperature=0, stream=True, stream_options={"include_usage": True})
    chunks = list(s)
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == want.text
    assert chunks[-1].usage.completion_tokens == len(want.tokens)


def test_stop_string_and_follow_up_turn(server, engines):
    ref, _ = engines
    c = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=300)
    full = ref.chat(MSGS, max_tokens=48).text
    stop = full.split()[2]
    want = ref.chat(MSGS, max_tokens=48, stop=[stop])
    r = c.chat.completions.create(model="SmolLM2-135M-Instruct.Q4_1", messages=MSGS, max_tokens=48,  # the stem
                                  temperature=0, stop=[stop])
    assert r.choices[0].message.content == want.text and r.choices[0].finish_reason == "stop"
    turn2 = MSGS + [{"role": "assistant", "content": full}, {"role": "user", "content": "Now one about rain."}]
    r2 = c.chat.completions.create(model="SmolLM2-135M-Instruct.Q4_1", messages=turn2, max_tokens=32,
                                   temperature=0)
    assert r2.choices[0].message.content == ref.chat(turn2, max_tokens=32).text
    assert r2.usage.prompt_tokens_details.cached_tokens > len(ref.tokenizer.encode_chat(MSGS)) // 2
