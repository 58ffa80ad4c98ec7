"""One Engine shared by several threads, and the lifetime of streams: calls on one engine are
serialized by its compute lock (cpp/include/fastspec/engine.h, "Threads"), so concurrent
generate/stream/logits calls take turns, never hang, and give the same tokens as when run alone;
finished, cancelled, failing and abandoned streams all free their C++ session."""
import gc
import os
import threading

import numpy as np
import pytest

pytest.importorskip("gguf")

import tiny_models as tm  # noqa: E402

import fastspec  # noqa: E402
from fastspec import _core  # noqa: E402

HANG_S = 60  # a test thread still running after this long is a hang (the runs take well under 1 s)


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    cfg = tm.tiny_config("llama", vocab=400)
    path = tmp_path_factory.mktemp("threads") / "tiny.gguf"
    tm.write_gguf(path, cfg, tm.random_weights(cfg, seed=5), qtype="Q8_0")
    return str(path)


def _run_threads(fns):
    """Runs each fn in its own daemon thread; returns their results, failing on a hang or an error."""
    results, errors = [None] * len(fns), []

    def wrap(i, fn):
        try:
            results[i] = fn()
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(i, fn), daemon=True) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG_S)
    assert not any(t.is_alive() for t in threads), f"threads still running after {HANG_S} s: a hang"
    assert not errors, errors
    return results


PROMPTS = ["one engine", "two threads", "no deadlock here", "take turns", "a b c d e f", "hello", "x y", "z"]


@pytest.mark.parametrize("draft", [None, "ngram"])
@pytest.mark.parametrize("threads", [1, 2])
def test_concurrent_generate_on_one_engine(tiny_path, draft, threads):
    """8 threads x generate on one engine (the case that used to deadlock): no hang, and each
    thread's greedy tokens equal the same prompt's tokens run alone."""
    eng = fastspec.Engine(tiny_path, threads=threads, context=256, draft=draft)
    alone = [eng.generate(p, max_tokens=24).tokens for p in PROMPTS]
    together = _run_threads([lambda p=p: eng.generate(p, max_tokens=24).tokens for p in PROMPTS])
    assert together == alone


def test_concurrent_streams_logits_and_contexts(tiny_path):
    """Streams, logits() and Context.forward() from different threads at once on one engine."""
    eng = fastspec.Engine(tiny_path, threads=2, context=256)
    ids = eng.tokenize("logits from another thread")
    ref_logits = eng.logits(ids)
    ref_text = eng.generate("streaming", max_tokens=30).text

    def stream():
        return "".join(eng.stream("streaming", max_tokens=30))

    def logits():
        return [np.array_equal(eng.logits(ids), ref_logits) for _ in range(10)]

    def context():
        ctx = eng._core.new_context()
        return np.array_equal(np.concatenate([ctx.forward([t]) for t in ids]), ref_logits)

    out = _run_threads([stream, logits, context, stream, logits, context])
    assert out[0] == out[3] == ref_text
    assert all(out[1]) and all(out[4])
    assert out[2] and out[5]


def test_interleaved_streams_in_one_thread(tiny_path):
    """Two live streams on one engine advanced alternately: each as if alone (own KV cache)."""
    eng = fastspec.Engine(tiny_path, threads=1, context=256)
    a_alone = eng.generate("first stream", max_tokens=20).text
    b_alone = eng.generate("second one", max_tokens=20).text
    streams = {"a": eng.stream("first stream", max_tokens=20), "b": eng.stream("second one", max_tokens=20)}
    pieces = {"a": [], "b": []}
    while streams:
        for name in list(streams):  # one piece from each live stream in turn
            piece = next(streams[name], None)
            if piece is None:
                del streams[name]
            else:
                pieces[name].append(piece)
    assert ("".join(pieces["a"]), "".join(pieces["b"])) == (a_alone, b_alone)


def _live():
    return _core._live_sessions(), _core._live_contexts()


def test_streams_free_their_sessions(tiny_path):
    """Finished, broken-off, raising and abandoned (never closed, garbage-collected) streams all
    destroy their C++ session."""
    eng = fastspec.Engine(tiny_path, threads=1, context=256)
    gc.collect()
    base = _live()
    eng.generate("finished", max_tokens=5)
    for i, _ in enumerate(eng.stream("broken off", max_tokens=50)):
        if i == 2:
            break
    with pytest.raises(RuntimeError, match="consumer failed"):
        for i, _ in enumerate(eng.stream("raising", max_tokens=50)):
            if i == 1:
                raise RuntimeError("consumer failed")
    abandoned = eng.stream("abandoned", max_tokens=50)
    next(abandoned)
    assert _live()[0] == base[0] + 1  # the abandoned stream's session is alive while referenced
    del abandoned
    gc.collect()
    ctx = eng._core.new_context()
    ctx.forward([1, 2, 3])
    assert _live() == (base[0], base[1] + 1)
    del ctx
    assert _live() == base


@pytest.mark.slow
def test_thousand_streams_keep_rss_flat(tiny_path):
    """1,000 streams of the four kinds on one engine: no session leaks and RSS grows < 5 MB."""
    psutil = pytest.importorskip("psutil")
    eng = fastspec.Engine(tiny_path, threads=1, context=128)
    proc = psutil.Process(os.getpid())

    def one(i):
        kind = i % 4
        if kind == 0:
            eng.generate(f"run {i}", max_tokens=8)
        elif kind == 1:
            for j, _ in enumerate(eng.stream(f"cancel {i}", max_tokens=50)):
                if j == 2:
                    break
        elif kind == 2:
            try:
                for _ in eng.stream(f"raise {i}", max_tokens=50):
                    raise KeyError(i)
            except KeyError:
                pass
        else:
            g = eng.stream(f"abandon {i}", max_tokens=50)
            next(g, None)
            del g

    for i in range(200):  # warm-up: allocator pools, caches, lazily built tables
        one(i)
    gc.collect()
    base_live, rss0 = _live(), proc.memory_info().rss
    for i in range(1000):
        one(i)
    gc.collect()
    growth_mb = (proc.memory_info().rss - rss0) / 2**20
    assert _live() == base_live
    assert growth_mb < 5, f"RSS grew {growth_mb:.1f} MB over 1,000 streams"


def test_options_are_checked_by_the_core(tiny_path):
    """One source of truth for argument checks: the core's messages reach Python as ValueError,
    before the model file is read."""
    missing = tiny_path + ".does-not-exist"
    for kwargs, pattern in [(dict(context=1), "context must be >= 2"), (dict(threads=-1), "threads must be >= 0"),
                            (dict(k=-2), "k must be >= 1"), (dict(precision="f8"), "precision must be"),
                            (dict(kv_type="q4"), "kv_type must be")]:
        with pytest.raises(ValueError, match=pattern):
            fastspec.Engine(tiny_path, **kwargs)
        with pytest.raises(ValueError, match=pattern):  # checked before opening the file
            fastspec._core.Engine(missing, _opts(**kwargs), _spec(**kwargs))
    eng = fastspec.Engine(tiny_path, threads=1, context=16)
    with pytest.raises(ValueError, match="the prompt has 16 tokens but the context is 16"):
        eng.generate([3] * 16)
    with pytest.raises(ValueError, match="17 tokens exceed the context of 16"):
        eng.logits([3] * 17)
    ctx = eng._core.new_context()
    ctx.forward([3] * 10)
    with pytest.raises(ValueError, match="10 cached \\+ 7 new tokens exceed the context of 16"):
        ctx.forward([3] * 7)


def _opts(**kw):
    o = _core.EngineOptions()
    for name in ("context", "threads", "precision", "kv_type"):
        if name in kw:
            setattr(o, name, kw[name])
    return o


def _spec(**kw):
    s = _core.SpecOptions()
    if "k" in kw:
        s.k = kw["k"]
    return s


# ---- the thread pool's load adaptation (cpp/src/backend/cpu/thread_pool.h) ----------------------

def test_pool_goes_solo_when_the_worker_is_held_up():
    """A worker that comes back 3 ms late from a job (its core held by another process: simulated
    by a sleep) has cost the caller a scheduler slice: the pool switches to the caller alone."""
    assert _core._pool_solo_switches(jobs=20, worker_delay_us=3000) >= 1


SOLO_JOBS, WINDOW = 3000, 64  # SoloPolicy::kSoloJobs, kWindowJobs (cpp/src/backend/cpu/thread_pool.h)


def test_pool_policy_one_lost_slice_goes_solo_at_once_then_probes_again():
    solo, switches = _core._pool_policy([3000.0] + [5.0] * (SOLO_JOBS + 10), own_us=100.0)
    assert switches == 1
    assert not solo[0] and all(solo[1:1 + SOLO_JOBS]) and not any(solo[1 + SOLO_JOBS:])


def test_pool_policy_small_waits_switch_over_a_window_only_when_they_outweigh_the_work():
    # 300 us waits against 100 us of own work per job: slow, decided at the end of a window
    solo, switches = _core._pool_policy([300.0] * (WINDOW + 5), own_us=100.0)
    assert switches == 1 and not any(solo[:WINDOW]) and all(solo[WINDOW:])
    # 20 us waits (a normal wake) against 100 us: the workers pay, never solo
    solo, switches = _core._pool_policy([20.0] * (10 * WINDOW), own_us=100.0)
    assert switches == 0 and not any(solo)


def test_pool_policy_doubles_the_solo_period_while_the_machine_stays_busy():
    # slow job, solo for SOLO_JOBS, a probe (slow again), solo for 2 * SOLO_JOBS, a probe
    n = 1 + SOLO_JOBS + 1 + 2 * SOLO_JOBS + 1
    solo, switches = _core._pool_policy([3000.0] * n, own_us=100.0)
    assert switches == 3
    assert sum(solo) == 3 * SOLO_JOBS and not solo[SOLO_JOBS + 1] and not solo[-1]


def test_pool_policy_disabled_never_goes_solo():
    solo, switches = _core._pool_policy([3000.0] * 200, own_us=100.0, enabled=False)
    assert switches == 0 and not any(solo)
