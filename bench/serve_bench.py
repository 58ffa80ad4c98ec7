"""Serving benchmark: `fastspec serve` vs llama-cpp-python's own OpenAI server, same GGUF, same machine.

    python bench/serve_bench.py [--model PATH] [--levels 1,4,16] [--rounds 2] [--max-tokens 128]
                                [--threads 2] [--context 2048] [--skip-llama] [--json out.json]

Each server runs as a subprocess on 127.0.0.1 (a free port), is warmed up with one request, then
for each concurrency level C, C client threads each send `rounds` streaming chat requests one after
the other (unique greedy prompts, max_tokens fixed). Reported per level: aggregate generated tok/s
(all completion tokens / wall time of the level) and the median time to first token (request sent
-> first content chunk). Completion tokens are counted by re-tokenizing each reply with the model's
own tokenizer, the same way for both servers (llama-cpp-python's stream carries no usage).

Configurations: fastspec plain and `--draft ngram`; llama-cpp-python plain and with its
prompt-lookup drafts (`--draft_model prompt-lookup-decoding`), `--interrupt_requests False` (so
concurrent requests queue instead of cancelling each other: it serves one sequence at a time).

Multi-turn: a conversation (long system prompt, a question, the reply, a follow-up question); the
follow-up turn's time to first token with the prefix cache (`--prefix-cache-mb 256`) and without
(`--prefix-cache-mb 0`), median over a few conversations (distinct system prompts); llama-cpp-python
as it ships (it keeps the last prompt's K/V in its one context and reuses the common prefix).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.expanduser("~/.cache/fastspec/SmolLM2-135M-Instruct.Q4_1.gguf")
TOPICS = ["a lighthouse keeper", "a lost robot", "a dragon who cannot fly", "the first city on Mars", "a talking cat",
          "a haunted library", "a time-travelling chef", "a river that flows uphill", "a clockmaker's apprentice",
          "an island of giants", "a shy ghost", "the last tree on Earth", "a desert caravan", "a pirate astronomer",
          "a village under the ice", "a musician who hears colours", "a submarine crew", "an old map",
          "a forgotten moon base", "a painter in Paris"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name: str, cmd: List[str], port: int, log_path: str):
        self.name, self.cmd, self.port = name, cmd, port
        self.log = open(log_path, "w")
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout: float = 300.0) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log.name}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/v1/models")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def stream_chat(port: int, messages, max_tokens: int, model: str) -> Dict:
    """One streaming chat request: {"ttft": s, "total": s, "text": str}."""
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/chat/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {r.read()[:300]!r}")
    ttft, parts = None, []
    while True:
        line = r.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            break
        ev = json.loads(payload)
        for ch in ev.get("choices") or []:
            piece = (ch.get("delta") or {}).get("content") or ""
            if piece:
                if ttft is None:
                    ttft = time.perf_counter() - t0
                parts.append(piece)
    c.close()
    total = time.perf_counter() - t0
    return {"ttft": ttft if ttft is not None else total, "total": total, "text": "".join(parts)}


def story(n: int) -> list:
    return [{"role": "user", "content": f"Story number {n}: write a long, detailed story about {TOPICS[n % len(TOPICS)]}."}]


def run_level(port: int, model: str, tok, conc: int, rounds: int, max_tokens: int, base: int) -> Dict:
    results, errors = [], []
    lock = threading.Lock()
    barrier = threading.Barrier(conc)

    def client(i: int):
        barrier.wait()
        for r in range(rounds):
            try:
                res = stream_chat(port, story(base + i * rounds + r), max_tokens, model)
            except Exception as e:  # reported
                with lock:
                    errors.append(repr(e))
                continue
            with lock:
                results.append(res)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(conc)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    tokens = sum(len(tok.encode(x["text"], add_special=False)) for x in results)
    return {"concurrency": conc, "requests": len(results), "errors": errors, "wall_s": wall, "tokens": tokens,
            "tok_per_s": tokens / wall, "ttft_median_s": statistics.median(x["ttft"] for x in results),
            "ttft_p90_s": sorted(x["ttft"] for x in results)[max(0, -(-9 * len(results) // 10) - 1)]}


SYSTEM = ("You are {who}, a patient assistant on a ship. You answer questions about sailing, weather, knots, "
          "navigation by the stars, the history of the sea, the habits of sea birds and the care of wooden boats. "
          "Always be precise, explain every term you use, give one concrete example, and keep a friendly tone. ")


def multi_turn(port: int, model: str, n_conv: int, sys_repeat: int) -> Dict:
    who = ["Ada", "Bram", "Cleo", "Dov", "Eli", "Fen", "Gus"]
    ttft1, ttft2 = [], []
    for k in range(n_conv):
        msgs = [{"role": "system", "content": SYSTEM.format(who=who[k % len(who)]) * sys_repeat},
                {"role": "user", "content": "How do I tie a bowline knot?"}]
        r1 = stream_chat(port, msgs, 48, model)
        msgs2 = msgs + [{"role": "assistant", "content": r1["text"]},
                        {"role": "user", "content": "And how do I untie it after it has been loaded?"}]
        r2 = stream_chat(port, msgs2, 16, model)
        ttft1.append(r1["ttft"])
        ttft2.append(r2["ttft"])
    return {"first_turn_ttft_median_s": statistics.median(ttft1), "follow_up_ttft_median_s": statistics.median(ttft2),
            "follow_up_ttft_s": ttft2}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--levels", default="1,4,16")
    ap.add_argument("--rounds", type=int, default=2, help="requests per client thread, one after the other")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--context", type=int, default=2048)
    ap.add_argument("--conversations", type=int, default=3)
    ap.add_argument("--system-repeat", type=int, default=6, help="system prompt length (x ~55 tokens)")
    ap.add_argument("--skip-llama", action="store_true")
    ap.add_argument("--only", default="", help="comma list of configurations to run (default: all)")
    ap.add_argument("--json", default=None, help="write every figure here")
    ap.add_argument("--logs", default="/tmp/serve_bench", help="server logs folder")
    args = ap.parse_args(argv)
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import fastspec

    tok = fastspec.Tokenizer.from_model(args.model)
    levels = [int(x) for x in args.levels.split(",")]
    os.makedirs(args.logs, exist_ok=True)
    name = os.path.basename(args.model)

    def fastspec_cmd(port, draft=None, prefix_mb=256):
        cmd = [sys.executable, "-m", "fastspec", "serve", "--model", args.model, "--port", str(port),
               "--parallel", str(max(levels)), "--context", str(args.context), "--threads", str(args.threads),
               "--prefix-cache-mb", str(prefix_mb), "--max-queue", "256"]
        return cmd + (["--draft", draft] if draft else [])

    def llama_cmd(port, draft=False):
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", args.model, "--port", str(port),
               "--n_ctx", str(args.context), "--n_threads", str(args.threads), "--n_threads_batch", str(args.threads),
               "--interrupt_requests", "False", "--verbose", "False"]
        return cmd + (["--draft_model", "prompt-lookup-decoding", "--logits_all", "True"] if draft else [])

    configs = [("fastspec", lambda p: fastspec_cmd(p)), ("fastspec --draft ngram", lambda p: fastspec_cmd(p, "ngram"))]
    if not args.skip_llama:
        configs += [("llama-cpp-python", lambda p: llama_cmd(p)),
                    ("llama-cpp-python prompt-lookup", lambda p: llama_cmd(p, True))]
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    out: Dict = {"model": args.model, "levels": levels, "rounds": args.rounds, "max_tokens": args.max_tokens,
                 "threads": args.threads, "context": args.context, "throughput": {}, "multi_turn": {}}
    base = 0
    for label, make in configs:
        if only and label not in only:
            continue
        port = free_port()
        srv = Server(label, make(port), port, os.path.join(args.logs, label.replace(" ", "_") + ".log"))
        try:
            srv.wait_ready()
            stream_chat(port, story(9999), 16, name)  # warm-up
            rows = []
            for c in levels:
                res = run_level(port, name, tok, c, args.rounds, args.max_tokens, base)
                base += 1000
                rows.append(res)
                print(f"{label:32s} {c:3d} streams: {res['tok_per_s']:7.1f} tok/s, ttft median "
                      f"{res['ttft_median_s'] * 1e3:7.1f} ms ({res['requests']} requests, {res['tokens']} tokens, "
                      f"{res['wall_s']:.1f} s{', errors: ' + str(res['errors'][:2]) if res['errors'] else ''})",
                      flush=True)
            out["throughput"][label] = rows
        finally:
            srv.stop()
    mt_configs = [("fastspec, prefix cache", lambda p: fastspec_cmd(p, None, 256)),
                  ("fastspec, no prefix cache", lambda p: fastspec_cmd(p, None, 0))]
    if not args.skip_llama:
        mt_configs.append(("llama-cpp-python", lambda p: llama_cmd(p)))
    for label, make in mt_configs:
        if only and label not in only and "multi" not in only:
            continue
        port = free_port()
        srv = Server(label, make(port), port, os.path.join(args.logs, "mt_" + label.replace(" ", "_").replace(",", "") + ".log"))
        try:
            srv.wait_ready()
            stream_chat(port, story(9998), 8, name)
            res = multi_turn(port, name, args.conversations, args.system_repeat)
            out["multi_turn"][label] = res
            print(f"multi-turn {label:28s} first turn ttft {res['first_turn_ttft_median_s'] * 1e3:7.1f} ms, "
                  f"follow-up ttft {res['follow_up_ttft_median_s'] * 1e3:7.1f} ms", flush=True)
        finally:
            srv.stop()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
