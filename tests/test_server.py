"""`fastspec serve` (python/fastspec/server/): the real server (uvicorn in a thread) on 127.0.0.1 and
a free port, driven by the real `openai` client and by raw HTTP. A small random model (no
end-of-turn token ever wins, so lengths are exact); the server's engine drafts with n-grams while
the expected outputs come from a plain `fastspec.Engine.generate`: speculation, batching and the
prefix cache must change no token."""
import http.client
import json
import random
import socket
import threading
import time

import numpy as np
import pytest

import tiny_models as tm

pytest.importorskip("gguf")
openai = pytest.importorskip("openai")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

import fastspec  # noqa: E402
from fastspec.server import ServerThread, build_state  # noqa: E402

CONTEXT = 2048
K = 4  # a fixed draft length: the adaptive one follows measured timings, so what is drafted would vary


def write_model(path, seed=7, n_layers=6, hidden=512):
    """A random llama (Q8_0, byte-level BPE tiny vocabulary with a chat template) whose output
    rows for the special tokens are zero: their logits are 0 while the best of 316 random logits is
    always above, so greedy decoding never ends early and max_tokens is reached exactly."""
    cfg = tm.tiny_config("llama", n_layers=n_layers, hidden=hidden, heads=8, kv_heads=4,
                         max_position_embeddings=CONTEXT)
    w = tm.random_weights(cfg, seed=seed)
    w["lm_head.weight"][:4] = 0
    tm.write_gguf(path, cfg, w, qtype="Q8_0")
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return str(write_model(tmp_path_factory.mktemp("serve") / "tiny-serve.gguf"))


@pytest.fixture(scope="module")
def ref(model_path):
    """The reference: plain decoding, one request at a time."""
    return fastspec.Engine(model_path, threads=1, context=CONTEXT)


@pytest.fixture(scope="module")
def ref_ngram(model_path):
    """The server's engine configuration alone: a sampled request's text for a seed depends on the
    drafter (the draws are consumed differently), so seeded outputs are compared with this."""
    return fastspec.Engine(model_path, threads=1, context=CONTEXT, draft="ngram", k=K)


@pytest.fixture(scope="module")
def server(model_path):
    eng = fastspec.Engine(model_path, threads=1, context=CONTEXT, draft="ngram", k=K)
    state = build_state(model_path, engine=eng, parallel=16, max_queue=64, prefix_cache_mb=64)
    with ServerThread(state) as srv:
        yield srv


@pytest.fixture()
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=120)


MODEL = "tiny-serve.gguf"


# ---- raw HTTP helpers (also used by the other test_server_* files) -----------------------------------

def http_request(url, method, path, body=None, raw=None, headers=None, timeout=60):
    """(status, headers dict, body bytes)."""
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    h = {"Content-Type": "application/json", **(headers or {})}
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    out = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    conn.close()
    return out


def post(url, path, body=None, raw=None):
    status, headers, data = http_request(url, "POST", path, body, raw)
    return status, headers, json.loads(data) if data else None


def metrics(url):
    """{name{labels}: value} of /metrics."""
    status, _, data = http_request(url, "GET", "/metrics")
    assert status == 200
    out = {}
    for line in data.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def sse_events(url, path, body, read_events=None):
    """POSTs a streaming request; returns the parsed `data:` events (stops after read_events and
    closes the connection abruptly when given)."""
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("POST", path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 200, r.read()
    assert r.getheader("content-type").startswith("text/event-stream")
    events = []
    buf = b""
    while True:
        line = r.readline()
        if not line:
            break
        buf += line
        if buf.endswith(b"\n\n"):
            assert buf.startswith(b"data: ")
            payload = buf[len(b"data: "):].strip()
            buf = b""
            events.append("[DONE]" if payload == b"[DONE]" else json.loads(payload))
            if read_events is not None and len(events) >= read_events:
                conn.sock.shutdown(socket.SHUT_RDWR)
                conn.close()
                return events
    conn.close()
    return events


def assert_error(status, body, want_status, param=None, code=None, message=None):
    assert status == want_status, body
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    if param is not None:
        assert err["param"] == param, err
    if code is not None:
        assert err["code"] == code, err
    if message is not None:
        assert message in err["message"], err


def prompt_text(i, n_words):
    rng = random.Random(i)
    words = ["sea", "wind", "salt", "tide", "rock", "gull", "wave", "sand", "foam", "reef"]
    return " ".join(rng.choice(words) for _ in range(n_words))


# ---- generation -------------------------------------------------------------------------------------

def test_completion_greedy_equals_engine_generate(client, ref):
    prompt = prompt_text(1, 12)
    r = client.completions.create(model=MODEL, prompt=prompt, max_tokens=40, temperature=0)
    want = ref.generate(prompt, max_tokens=40)
    assert r.choices[0].text == want.text
    assert r.choices[0].finish_reason == "length"
    assert r.object == "text_completion" and r.model == MODEL
    u = r.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (len(ref.tokenize(prompt)), 40,
                                                                      len(ref.tokenize(prompt)) + 40)
    fs = u.model_extra["fastspec"]
    assert fs["drafted"] >= fs["accepted"] >= 0 and "prefix_cached_tokens" in fs


def test_completion_streaming_equals_engine_generate(client, ref):
    prompt = prompt_text(2, 20)
    pieces, finish, usage = [], None, None
    for ch in client.completions.create(model=MODEL, prompt=prompt, max_tokens=50, temperature=0, stream=True,
                                        stream_options={"include_usage": True}):
        if ch.choices:
            pieces.append(ch.choices[0].text)
            finish = ch.choices[0].finish_reason or finish
        if ch.usage:
            usage = ch.usage
    assert "".join(pieces) == ref.generate(prompt, max_tokens=50).text
    assert finish == "length" and usage.completion_tokens == 50


def test_completion_token_id_prompt(client, ref):
    ids = ref.tokenize(prompt_text(3, 9))
    r = client.completions.create(model=MODEL, prompt=ids, max_tokens=20, temperature=0)
    assert r.choices[0].text == ref.generate(ids, max_tokens=20).text


def test_chat_greedy_equals_engine_generate(client, ref):
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt_text(4, 10)}]
    r = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=30, temperature=0)
    ids = ref.tokenizer.encode_chat(msgs)
    want = ref.generate(ids, max_tokens=30)
    assert r.choices[0].message.content == want.text and r.choices[0].message.role == "assistant"
    assert r.object == "chat.completion" and r.choices[0].finish_reason == "length"
    assert r.usage.prompt_tokens == len(ids) and r.usage.completion_tokens == 30
    assert ref.chat(msgs, max_tokens=30).text == want.text


def test_chat_streaming_equals_engine_generate(client, ref):
    text = prompt_text(5, 6)
    msgs = [{"role": "user", "content": [{"type": "text", "text": text[:7]}, {"type": "text", "text": text[7:]}]}]
    chunks = list(client.chat.completions.create(model=MODEL, messages=msgs, max_completion_tokens=25,
                                                 temperature=0, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    out = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert out == ref.generate(ref.tokenizer.encode_chat([{"role": "user", "content": text}]), max_tokens=25).text
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(c.usage is None for c in chunks)  # no include_usage


def test_sse_wire_format(server, ref):
    prompt = prompt_text(6, 5)
    events = sse_events(server.url, "/v1/completions", {"prompt": prompt, "max_tokens": 12, "temperature": 0,
                                                        "stream": True, "stream_options": {"include_usage": True}})
    assert events[-1] == "[DONE]"
    assert events[-2]["choices"] == [] and events[-2]["usage"]["completion_tokens"] == 12
    assert events[-3]["choices"][0]["finish_reason"] == "length"
    assert "".join(e["choices"][0]["text"] for e in events[:-2]) == ref.generate(prompt, max_tokens=12).text


def test_seeds_reproduce_and_equal_engine_generate(client, ref_ngram):
    ref = ref_ngram
    prompt = prompt_text(7, 8)
    kw = dict(model=MODEL, prompt=prompt, max_tokens=40, temperature=0.9, top_p=0.95, seed=1234,
              extra_body={"top_k": 40})
    a = client.completions.create(**kw).choices[0].text
    b = client.completions.create(**kw).choices[0].text
    c = client.completions.create(**{**kw, "seed": 99}).choices[0].text
    assert a == b != c
    assert a == ref.generate(prompt, max_tokens=40, temperature=0.9, top_p=0.95, top_k=40, seed=1234).text
    s = "".join(ch.choices[0].text for ch in client.completions.create(**kw, stream=True))
    assert s == a


def test_stop_strings_cut_like_engine(client, ref):
    prompt = prompt_text(8, 8)
    full = ref.generate(prompt, max_tokens=60).text
    stop = full[20:23]  # occurs in the output: the text is cut before its first occurrence
    assert stop and full.find(stop) <= 20
    want = ref.generate(prompt, max_tokens=60, stop=[stop])
    assert want.finish_reason == "stop"
    r = client.completions.create(model=MODEL, prompt=prompt, max_tokens=60, temperature=0, stop=stop)
    assert r.choices[0].text == want.text == full[:full.find(stop)]
    assert r.choices[0].finish_reason == "stop"
    s = client.completions.create(model=MODEL, prompt=prompt, max_tokens=60, temperature=0, stop=["zzzz", stop],
                                  stream=True)
    chunks = list(s)
    assert "".join(c.choices[0].text for c in chunks) == want.text
    assert chunks[-1].choices[0].finish_reason == "stop"


def _log_softmax_rows(ref, prompt_ids, tokens):
    logits = ref.logits(prompt_ids + tokens[:-1])[len(prompt_ids) - 1:].astype(np.float64)
    m = logits.max(axis=1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))


def test_chat_logprobs_equal_plain_decoding(client, ref):
    msgs = [{"role": "user", "content": "tide " * 12}]  # repeats: the n-gram drafter drafts
    r = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=64, temperature=0, logprobs=True,
                                       top_logprobs=3)
    ids = ref.tokenizer.encode_chat(msgs)
    g = ref.generate(ids, max_tokens=64)
    assert r.choices[0].message.content == g.text
    content = r.choices[0].logprobs.content
    assert len(content) == 64
    assert r.usage.model_extra["fastspec"]["accepted"] > 0  # some tokens came out of verify passes
    lsm = _log_softmax_rows(ref, ids, g.tokens)
    for j, (entry, tok) in enumerate(zip(content, g.tokens)):
        assert entry.bytes == list(ref.tokenizer.token_bytes(tok))
        assert abs(entry.logprob - lsm[j, tok]) < 1e-4
        top = list(np.argsort(-lsm[j], kind="stable")[:3])
        assert [bytes(t.bytes) for t in entry.top_logprobs] == [ref.tokenizer.token_bytes(t) for t in top]
        assert all(abs(t.logprob - lsm[j, i]) < 1e-4 for t, i in zip(entry.top_logprobs, top))
    assert b"".join(bytes(e.bytes) for e in content).decode("utf-8", "replace") == g.text


def test_completion_logprobs_streamed_equal_unstreamed(server, ref):
    body = {"prompt": prompt_text(9, 7), "max_tokens": 16, "temperature": 0, "logprobs": 2}
    status, _, full = post(server.url, "/v1/completions", body)
    assert status == 200
    lp = full["choices"][0]["logprobs"]
    assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == 16
    assert all(len(t) <= 2 for t in lp["top_logprobs"])
    events = sse_events(server.url, "/v1/completions", {**body, "stream": True})
    got = [x for e in events[:-1] if e["choices"][0]["logprobs"] for x in e["choices"][0]["logprobs"]["token_logprobs"]]
    assert got == lp["token_logprobs"]
    assert lp["text_offset"][0] == 0 and lp["text_offset"] == sorted(lp["text_offset"])


def test_sixteen_concurrent_streams_each_get_their_alone_text(server, ref, ref_ngram):
    """Mixed greedy / sampled, mixed prompt lengths, chat and completions, all at once: each stream's
    text is exactly what plain decoding alone gives (greedy) or with its seed (sampled)."""
    jobs = []
    for i in range(16):
        prompt = prompt_text(100 + i, 3 + 11 * (i % 5))
        sampled = i % 2 == 1
        kw = dict(max_tokens=20 + 3 * i, temperature=0.8 if sampled else 0.0, top_k=30 if sampled else 0,
                  seed=500 + i)
        jobs.append((i, prompt, kw))
    want = {}
    for i, prompt, kw in jobs:
        ids = ref.tokenizer.encode_chat([{"role": "user", "content": prompt}]) if i % 4 == 0 else ref.tokenize(prompt)
        want[i] = (ref_ngram if kw["temperature"] else ref).generate(ids, **kw).text
    got, errors = {}, []
    start = threading.Barrier(16)

    def run(i, prompt, kw):
        try:
            c = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=120)
            extra = {"top_k": kw["top_k"]}
            start.wait(30)
            if i % 4 == 0:
                s = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}],
                                              max_tokens=kw["max_tokens"], temperature=kw["temperature"],
                                              seed=kw["seed"], extra_body=extra, stream=True)
                got[i] = "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices)
            else:
                s = c.completions.create(model=MODEL, prompt=prompt, max_tokens=kw["max_tokens"],
                                         temperature=kw["temperature"], seed=kw["seed"], extra_body=extra,
                                         stream=True)
                got[i] = "".join(ch.choices[0].text for ch in s if ch.choices)
        except Exception as e:  # reported below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=run, args=j) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors
    assert got == want
    m = metrics(server.url)
    assert m["fastspec_active_sequences"] == 0 and m["fastspec_queue_depth"] == 0


def test_disconnect_mid_stream_frees_the_slot(server, ref):
    before = metrics(server.url)
    body = {"prompt": prompt_text(11, 4), "max_tokens": 1800, "temperature": 0, "stream": True}
    events = sse_events(server.url, "/v1/completions", body, read_events=3)
    assert len(events) == 3 and events[-1] != "[DONE]"
    deadline = time.monotonic() + 20
    while True:
        m = metrics(server.url)
        if m["fastspec_client_disconnects_total"] > before["fastspec_client_disconnects_total"] and \
                m["fastspec_active_sequences"] == 0:
            break
        assert time.monotonic() < deadline, "the disconnected request still holds its slot"
        time.sleep(0.05)
    assert m["fastspec_scheduler_cancelled_total"] > before["fastspec_scheduler_cancelled_total"]
    generated = m["fastspec_generation_tokens_total"] - before["fastspec_generation_tokens_total"]
    assert generated < 1800  # cancelled, not run to the end
    assert m['fastspec_finished_total{reason="cancelled"}'] >= 1
    # then more requests: all served, and the slots are free again afterwards
    prompts = [prompt_text(200 + i, 5 + i) for i in range(4)]
    outs = [None] * 4

    def run(i):
        status, _, body = post(server.url, "/v1/completions", {"prompt": prompts[i], "max_tokens": 10,
                                                               "temperature": 0})
        outs[i] = (status, body["choices"][0]["text"])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert outs == [(200, ref.generate(p, max_tokens=10).text) for p in prompts]
    assert metrics(server.url)["fastspec_active_sequences"] == 0


def test_disconnects_beside_other_streams_lose_nothing(server, ref):
    """Streams that close early while others run: the others get every token, in order."""
    bodies = [{"prompt": prompt_text(400 + i, 4 + 3 * i), "max_tokens": 40 if i % 3 else 1500, "temperature": 0,
               "stream": True} for i in range(6)]
    out = {}

    def run(i):
        if i % 3 == 0:  # 0 and 3 leave after two events
            out[i] = sse_events(server.url, "/v1/completions", bodies[i], read_events=2)
        else:
            ev = sse_events(server.url, "/v1/completions", bodies[i])
            out[i] = "".join(e["choices"][0]["text"] for e in ev if e != "[DONE]")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i in (1, 2, 4, 5):
        assert out[i] == ref.generate(bodies[i]["prompt"], max_tokens=40).text
    deadline = time.monotonic() + 20
    while metrics(server.url)["fastspec_active_sequences"] != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_disconnect_of_a_non_streaming_request_cancels_it(server):
    before = metrics(server.url)
    s = socket.create_connection((server.host, server.port))
    body = json.dumps({"prompt": prompt_text(12, 4), "max_tokens": 1800, "temperature": 0}).encode()
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    deadline = time.monotonic() + 20
    while metrics(server.url)["fastspec_active_sequences"] == 0:  # admitted
        assert time.monotonic() < deadline
        time.sleep(0.01)
    s.close()
    while True:
        m = metrics(server.url)
        if m["fastspec_client_disconnects_total"] > before["fastspec_client_disconnects_total"] and \
                m["fastspec_active_sequences"] == 0:
            break
        assert time.monotonic() < deadline, "the abandoned request still holds its slot"
        time.sleep(0.05)
    assert m["fastspec_generation_tokens_total"] - before["fastspec_generation_tokens_total"] < 1800


def test_prefix_cache_serves_the_next_chat_turn(client, ref, server):
    msgs = [{"role": "system", "content": "You are a sailor. " * 20}, {"role": "user", "content": "wind?"}]
    r1 = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=16, temperature=0)
    msgs2 = msgs + [{"role": "assistant", "content": r1.choices[0].message.content},
                    {"role": "user", "content": "and the tide?"}]
    r2 = client.chat.completions.create(model=MODEL, messages=msgs2, max_tokens=16, temperature=0)
    cached = r2.usage.prompt_tokens_details.cached_tokens
    assert cached == r2.usage.model_extra["fastspec"]["prefix_cached_tokens"]
    assert cached >= len(ref.tokenizer.encode_chat(msgs)) - 1
    assert r2.choices[0].message.content == ref.generate(ref.tokenizer.encode_chat(msgs2), max_tokens=16).text
    m = metrics(server.url)
    assert m["fastspec_prefix_cache_hits_total"] >= 1 and m["fastspec_prefix_cache_hit_tokens_total"] >= cached


def test_per_request_draft_off(client, ref):
    prompt = "reef " * 20
    on = client.completions.create(model=MODEL, prompt=prompt, max_tokens=30, temperature=0)
    off = client.completions.create(model=MODEL, prompt=prompt, max_tokens=30, temperature=0,
                                    extra_body={"draft": False})
    assert on.choices[0].text == off.choices[0].text == ref.generate(prompt, max_tokens=30).text
    assert off.usage.model_extra["fastspec"]["drafted"] == 0


def test_default_max_tokens_run_to_the_context_end(client, ref):
    ids = ref.tokenize(prompt_text(13, 3))
    long_ids = (ids * 1000)[: CONTEXT - 8]
    r = client.completions.create(model=MODEL, prompt=long_ids, max_tokens=100, temperature=0)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens <= 8


# ---- other endpoints --------------------------------------------------------------------------------

def test_models_health_and_metrics(server, client):
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL
    status, _, data = http_request(server.url, "GET", "/health")
    h = json.loads(data)
    assert status == 200 and h["status"] == "ok" and h["max_sequences"] == 16
    status, headers, data = http_request(server.url, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    text = data.decode()
    for name in ("fastspec_requests_total", "fastspec_generation_tokens_total",
                 "fastspec_time_to_first_token_seconds_bucket", "fastspec_time_per_output_token_seconds_bucket",
                 "fastspec_spec_acceptance_rate", "fastspec_spec_accepted_by_position_total", "fastspec_batch_size",
                 "fastspec_prefix_cache_hits_total", "fastspec_queue_depth", "fastspec_active_sequences"):
        assert f"\n{name}" in text, name
    m = metrics(server.url)
    assert m['fastspec_requests_total{endpoint="/v1/completions",status="200"}'] >= 1
    assert m['fastspec_time_to_first_token_seconds_bucket{le="+Inf"}'] == m["fastspec_time_to_first_token_seconds_count"]


def test_request_log_lines(server, caplog):
    with caplog.at_level("INFO", logger="fastspec.server"):
        status, _, _ = post(server.url, "/v1/completions", {"prompt": "sea", "max_tokens": 5, "temperature": 0})
        post(server.url, "/v1/completions", {"prompt": "sea", "max_tokens": 0})
    assert status == 200
    recs = [r for r in caplog.records if r.name == "fastspec.server" and hasattr(r, "fields")]
    ok = [r for r in recs if r.fields.get("status") == 200][-1]
    f = ok.fields
    assert f["completion_tokens"] == 5 and f["prompt_tokens"] >= 1 and "tok_per_s" in f and "acceptance" in f
    assert "prefix_cached_tokens" in f and f"req {f['id']} completion 200 prompt=" in ok.getMessage()
    assert any(r.fields.get("status") == 400 for r in recs)
    from fastspec.server.logs import JsonFormatter
    line = json.loads(JsonFormatter().format(ok))
    assert line["event"] == "request" and line["completion_tokens"] == 5 and line["level"] == "info"


# ---- bad requests: each an OpenAI-style error ------------------------------------------------------

CHAT = "/v1/chat/completions"
COMP = "/v1/completions"
USER = [{"role": "user", "content": "hi"}]


def test_malformed_json_is_400(server):
    status, _, body = post(server.url, CHAT, raw=b'{"messages": [')
    assert_error(status, body, 400, code="invalid_json", message="not valid JSON")


def test_non_object_json_is_400(server):
    status, _, body = post(server.url, COMP, raw=b"[1, 2]")
    assert_error(status, body, 400, code="invalid_json")


def test_unknown_field_is_400(server):
    status, _, body = post(server.url, CHAT, {"messages": USER, "temperatur": 0.5})
    assert_error(status, body, 400, param="temperatur", code="unknown_parameter")


def test_mistyped_field_is_400(server):
    status, _, body = post(server.url, CHAT, {"messages": USER, "temperature": "hot"})
    assert_error(status, body, 400, param="temperature", code="invalid_type")
    status, _, body = post(server.url, COMP, {"prompt": "x", "max_tokens": "12"})
    assert_error(status, body, 400, param="max_tokens", code="invalid_type")
    status, _, body = post(server.url, CHAT, {"messages": "hi"})
    assert_error(status, body, 400, param="messages", code="invalid_type")
    status, _, body = post(server.url, COMP, {"prompt": "x", "stream": "yes"})
    assert_error(status, body, 400, param="stream", code="invalid_type")


def test_negative_temperature_is_400(server):
    status, _, body = post(server.url, CHAT, {"messages": USER, "temperature": -0.1})
    assert_error(status, body, 400, param="temperature", code="invalid_value")


def test_temperature_above_two_is_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=USER, temperature=2.5)
    assert e.value.status_code == 400
    assert e.value.body["param"] == "temperature" and e.value.body["code"] == "invalid_value"


def test_top_p_zero_is_400(server):
    status, _, body = post(server.url, COMP, {"prompt": "x", "top_p": 0})
    assert_error(status, body, 400, param="top_p", code="invalid_value")


def test_top_p_above_one_is_400(server):
    status, _, body = post(server.url, CHAT, {"messages": USER, "top_p": 1.5})
    assert_error(status, body, 400, param="top_p", code="invalid_value")


def test_max_tokens_below_one_is_400(server):
    status, _, body = post(server.url, COMP, {"prompt": "x", "max_tokens": 0})
    assert_error(status, body, 400, param="max_tokens", code="invalid_value")
    status, _, body = post(server.url, CHAT, {"messages": USER, "max_completion_tokens": -3})
    assert_error(status, body, 400, param="max_completion_tokens", code="invalid_value")


def test_negative_top_k_is_400(server):
    status, _, body = post(server.url, COMP, {"prompt": "x", "top_k": -1})
    assert_error(status, body, 400, param="top_k", code="invalid_value")


def test_integers_too_large_for_the_core_are_400(server):
    for field, value in (("top_k", 2**40), ("top_k", 1e300), ("max_tokens", 1e300), ("max_tokens", 2**63),
                         ("seed", 2**64), ("seed", -(2**63) - 1)):
        status, _, body = post(server.url, COMP, {"prompt": "x", field: value})
        assert_error(status, body, 400, param=field, code="invalid_value")
    status, _, body = post(server.url, COMP, {"prompt": [5] * (CONTEXT - 4), "max_tokens": 2**62, "temperature": 0})
    assert status == 200 and body["choices"][0]["finish_reason"] == "length"  # runs to the context's end


def test_prompt_longer_than_the_context_is_400(server, client):
    status, _, body = post(server.url, COMP, {"prompt": [5] * (CONTEXT + 10), "max_tokens": 4})
    assert_error(status, body, 400, param="prompt", code="context_length_exceeded",
                 message=f"the prompt has {CONTEXT + 10} tokens but the context is {CONTEXT}")
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "wave " * CONTEXT}])
    assert e.value.body["code"] == "context_length_exceeded" and e.value.body["param"] == "messages"


def test_n_other_than_one_is_400(server):
    status, _, body = post(server.url, CHAT, {"messages": USER, "n": 2})
    assert_error(status, body, 400, param="n", code="unsupported_value")


def test_unknown_model_is_404(client, server):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-9", messages=USER)
    assert e.value.status_code == 404 and e.value.body["code"] == "model_not_found"
    status, _, body = post(server.url, COMP, {"model": "nope", "prompt": "x"})
    assert_error(status, body, 404, param="model", code="model_not_found", message="'nope' does not exist")
    status, _, data = http_request(server.url, "GET", "/v1/models/nope")
    assert_error(status, json.loads(data), 404, code="model_not_found")


def test_missing_or_empty_messages_is_400(server):
    status, _, body = post(server.url, CHAT, {"model": MODEL})
    assert_error(status, body, 400, param="messages", code="missing_required_parameter")
    status, _, body = post(server.url, CHAT, {"messages": []})
    assert_error(status, body, 400, param="messages")
    status, _, body = post(server.url, CHAT, {"messages": [{"role": "wizard", "content": "x"}]})
    assert_error(status, body, 400, param="messages[0].role")


def test_bad_stop_and_logprobs_combinations_are_400(server):
    status, _, body = post(server.url, COMP, {"prompt": "x", "stop": [1, 2]})
    assert_error(status, body, 400, param="stop", code="invalid_type")
    status, _, body = post(server.url, CHAT, {"messages": USER, "top_logprobs": 2})
    assert_error(status, body, 400, param="top_logprobs")
    status, _, body = post(server.url, CHAT, {"messages": USER, "logprobs": True, "top_logprobs": 21})
    assert_error(status, body, 400, param="top_logprobs", code="invalid_value")
    status, _, body = post(server.url, COMP, {"prompt": "x", "stream_options": {"include_usage": True}})
    assert_error(status, body, 400, param="stream_options")
    status, _, body = post(server.url, CHAT, {"messages": USER, "presence_penalty": 0.5})
    assert_error(status, body, 400, param="presence_penalty", code="unsupported_value")


def test_token_ids_outside_the_vocabulary_are_400(server, ref):
    status, _, body = post(server.url, COMP, {"prompt": [1, 2, ref.tokenizer.vocab_size + 3]})
    assert_error(status, body, 400, param="prompt", message="outside the vocabulary")


def test_unknown_route_and_method_are_json_errors(server):
    status, _, data = http_request(server.url, "GET", "/v1/nothing")
    assert_error(status, json.loads(data), 404, code="not_found")
    status, _, data = http_request(server.url, "GET", CHAT)
    assert_error(status, json.loads(data), 405, code="method_not_allowed")


def test_queue_full_is_503_with_retry_after(model_path, ref):
    eng = fastspec.Engine(model_path, threads=1, context=CONTEXT)
    state = build_state(model_path, engine=eng, parallel=1, max_queue=1, prefix_cache_mb=0)
    with ServerThread(state) as srv:
        results = {}
        long_body = {"prompt": prompt_text(14, 3), "max_tokens": 1500, "temperature": 0}

        def run(name):
            results[name] = post(srv.url, COMP, long_body)

        a = threading.Thread(target=run, args=("a",))
        a.start()
        deadline = time.monotonic() + 20
        while metrics(srv.url)["fastspec_active_sequences"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        b = threading.Thread(target=run, args=("b",))
        b.start()
        while metrics(srv.url)["fastspec_queue_depth"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        status, headers, body = post(srv.url, COMP, {"prompt": "x", "max_tokens": 2})
        assert_error(status, body, 503, code="queue_full")
        assert headers["retry-after"] == "1"
        client = openai.OpenAI(base_url=srv.base_url, api_key="none", max_retries=0, timeout=60)
        with pytest.raises(openai.APIStatusError) as e:
            client.completions.create(model=MODEL, prompt="x", max_tokens=2)
        assert e.value.status_code == 503
        a.join(60), b.join(60)
        want = ref.generate(long_body["prompt"], max_tokens=1500).text
        assert results["a"][0] == results["b"][0] == 200  # the refusals lost nobody's stream
        assert results["a"][2]["choices"][0]["text"] == results["b"][2]["choices"][0]["text"] == want
        m = metrics(srv.url)
        assert m['fastspec_requests_total{endpoint="/v1/completions",status="503"}'] == 2


def test_server_survives_garbage(server, ref):
    """Junk bytes, a wrong content length, huge numbers: each answered or dropped; serving goes on."""
    for raw in (b"\xff\xfe\x00", b'{"prompt": "x", "max_tokens": 1e400}', b'{"prompt": "x", "seed": 1e30}',
                b'{"prompt": {"a": 1}}', b'{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}'):
        for path in (CHAT, COMP):
            status, _, body = post(server.url, path, raw=raw)
            assert status == 400 and "error" in body
    s = socket.create_connection((server.host, server.port))
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"pro")
    s.close()
    s = socket.create_connection((server.host, server.port))
    s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
    s.recv(100)
    s.close()
    status, _, body = post(server.url, COMP, {"prompt": "sea", "max_tokens": 6, "temperature": 0})
    assert status == 200 and body["choices"][0]["text"] == ref.generate("sea", max_tokens=6).text


# ---- a bounded load test ----------------------------------------------------------------------------

def test_bounded_load_reports_latency(server, record_property, capsys):
    """64 requests from 8 client threads (127.0.0.1, a time limit; stops by itself): no errors;
    p50/p99 latency and time to first token reported (printed past pytest's capture, and recorded
    as properties: `--junitxml` keeps them); p99 asserted only under the test's own time limit,
    which a loaded 2-core CI machine cannot reach without the test failing anyway."""
    n_requests, n_clients, limit_s = 64, 8, 120.0
    lat, ttft, errors = [], [], []
    lock = threading.Lock()
    counter = iter(range(n_requests))
    t_end = time.monotonic() + limit_s

    def worker():
        c = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=60)
        while time.monotonic() < t_end:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            t0 = time.perf_counter()
            first = None
            try:
                s = c.completions.create(model=MODEL, prompt=prompt_text(300 + i, 2 + i % 20), max_tokens=8 + i % 24,
                                         temperature=0.7 if i % 3 else 0, seed=i, stream=True)
                for ch in s:
                    if first is None and ch.choices and ch.choices[0].text:
                        first = time.perf_counter() - t0
            except Exception as e:  # counted
                with lock:
                    errors.append(repr(e))
                continue
            with lock:
                lat.append(time.perf_counter() - t0)
                ttft.append(first if first is not None else lat[-1])

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(limit_s + 30)
    wall = time.monotonic() - t0
    assert not errors
    assert len(lat) == n_requests
    p = lambda xs, q: float(np.percentile(xs, q))  # noqa: E731
    figures = {"load_requests": n_requests, "load_clients": n_clients, "load_wall_s": round(wall, 3),
               "load_req_per_s": round(n_requests / wall, 2),
               "latency_p50_ms": round(p(lat, 50) * 1e3, 1), "latency_p99_ms": round(p(lat, 99) * 1e3, 1),
               "ttft_p50_ms": round(p(ttft, 50) * 1e3, 1), "ttft_p99_ms": round(p(ttft, 99) * 1e3, 1)}
    for name, value in figures.items():
        record_property(name, value)
    with capsys.disabled():
        print(f"\nload: {n_requests} requests, {n_clients} clients, {wall:.2f} s, {n_requests / wall:.1f} req/s; "
              f"latency p50 {figures['latency_p50_ms']:.1f} ms p99 {figures['latency_p99_ms']:.1f} ms; "
              f"ttft p50 {figures['ttft_p50_ms']:.1f} ms p99 {figures['ttft_p99_ms']:.1f} ms")
    assert p(lat, 99) < limit_s, figures
    assert p(ttft, 99) <= p(lat, 99)


def test_random_bodies_never_crash_the_server(server, ref):
    """300 bodies of random known and unknown fields with random JSON values: every answer is a 200
    or an OpenAI-style 400/404, never a 500, and serving goes on."""
    rng = random.Random(12)
    values = [None, True, False, -1, 0, 1, 2, 3, 0.5, 1.5, 2.5, -0.2, 1e300, -1e300, 2**40, 2**64, "x", "", [], [1, 2], ["a"], {},
              {"include_usage": True}, {"x": 1}, [{"role": "user", "content": "sea"}], [{"role": "user"}],
              [{"content": "x"}], [[1, 2]], ["a", "b"], MODEL, "other-model", 2**70]
    fields = ["model", "messages", "prompt", "temperature", "top_p", "top_k", "seed", "stop", "n", "stream",
              "stream_options", "logprobs", "top_logprobs", "max_completion_tokens", "echo", "user", "logit_bias",
              "presence_penalty", "draft", "bogus"]
    seen = set()
    for i in range(300):
        path = CHAT if i % 2 else COMP
        body = {"messages": USER} if path == CHAT else {"prompt": "sea"}
        body["max_tokens"] = rng.choice([1, 2, 3, 0, -1, "4", None, 1e300, 2**64]) if i % 3 == 0 else 2
        body.update({f: rng.choice(values) for f in rng.sample(fields, rng.randint(0, 4))})
        if body.get("stream") is True:
            body["stream"] = False  # keep the loop simple: non-streaming answers only
        status, _, data = http_request(server.url, "POST", path, body)
        seen.add(status)
        assert status in (200, 400, 404), (body, status, data[:300])
        if status != 200:
            assert_error(status, json.loads(data), status)
    assert 200 in seen and 400 in seen
    status, _, body = post(server.url, COMP, {"prompt": "sea", "max_tokens": 6, "temperature": 0})
    assert status == 200 and body["choices"][0]["text"] == ref.generate("sea", max_tokens=6).text
