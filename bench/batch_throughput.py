"""Continuous batching in the core: aggregate generated tok/s of N concurrent sessions of one engine
(Engine.step_batch: one target pass per round for all of them) vs one session alone, same run.

    python bench/batch_throughput.py [--model smollm2-135m-instruct] [--streams 1,4,16]
                                     [--tokens 64] [--threads 2] [--draft ""|ngram] [--repeats 3]

Each stream gets its own chat prompt (distinct user messages), greedy, --tokens tokens (no stop
ids: every stream generates exactly that many). Wall clock from the first round (prefills
included) to the last token; time to first token = the round in which a stream got its first token.
Medians of --repeats. This is the core's batching alone (no server, no HTTP)."""
import argparse
import statistics
import time

import fastspec
from fastspec import _core

TOPICS = ["rivers", "bread", "the moon", "volcanoes", "chess", "bees", "glass", "trains", "salt", "owls",
          "copper", "tea", "maps", "clocks", "whales", "paper"]


def run(eng, prompts, tokens):
    s = _core.SamplingOptions()
    s.max_tokens = tokens
    sessions = [eng.start(p, s, []) for p in prompts]
    first = [None] * len(sessions)
    t0 = time.perf_counter()
    rounds = 0
    while not all(x.finished for x in sessions):
        live = [x for x in sessions if not x.finished]
        k = rounds % len(live)
        eng.step_batch(live[k:] + live[:k])
        now = time.perf_counter() - t0
        for i, x in enumerate(sessions):
            if first[i] is None and x.stats["tokens"] > 0:
                first[i] = now
        rounds += 1
    wall = time.perf_counter() - t0
    total = sum(x.stats["tokens"] for x in sessions)
    return total / wall, statistics.median(first), rounds


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--streams", default="1,4,16")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--draft", default="")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    path = str(fastspec.models.path(a.model))
    tok = fastspec.Tokenizer.from_model(path)
    o = _core.EngineOptions()
    o.threads, o.context = a.threads, 512
    sp = _core.SpecOptions()
    sp.draft = a.draft
    eng = _core.Engine(path, o, sp)
    prompts = [tok.encode_chat([{"role": "user", "content": f"Tell me three facts about {t}."}]) for t in TOPICS]
    run(eng, prompts[:2], 8)  # warm-up
    print(f"model {a.model}, threads {a.threads}, draft {a.draft or 'none'}, {a.tokens} tokens per stream, "
          f"medians of {a.repeats}")
    print("| streams | aggregate tok/s | vs 1 stream | median time to first token (ms) | rounds |")
    print("|---|---|---|---|---|")
    base = None
    for n in [int(x) for x in a.streams.split(",")]:
        res = [run(eng, [prompts[i % len(prompts)] for i in range(n)], a.tokens) for _ in range(a.repeats)]
        tps = statistics.median(r[0] for r in res)
        ttft = statistics.median(r[1] for r in res)
        base = base or tps
        print(f"| {n} | {tps:.1f} | {tps / base:.2f}x | {ttft * 1e3:.0f} | {res[0][2]} |")


if __name__ == "__main__":
    main()
