"""Draft heads vs n-gram vs plain decoding, one run, one machine (issue 11's table).

    python bench/compare_heads.py --model smollm2-135m-instruct \
        --eagle ~/.cache/fastspec/heads/smollm2-eagle.gguf --medusa ~/.cache/fastspec/heads/smollm2-medusa.gguf

Configurations: plain; n-gram chains and trees; each head given, chains and trees, alone and with
prompt lookup first (--lookup-min; adaptive k; with trees the controller measures chains and trees
of several node budgets and runs the best). Repeats are interleaved across configurations. Prompt groups:
open-ended chat and input-grounded (rewrite given code, quote a passage); none of these is in
the distillation prompts (tests/test_distill.py checks). Greedy and T=0.7 (fixed seeds, the same
for every configuration). Reported per group: decode tok/s (generated tokens after the first /
decode time, summed over the group's prompts), speedup over plain, tokens per target pass,
acceptance by draft position; greedy rows also say whether every output equals plain's.
"""
from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import fastspec  # noqa: E402
from fastspec.distill.data import prompt_ids  # noqa: E402  (numpy + the core; no torch)

CODE = '''def load_scores(path):
    scores = {}
    with open(path) as f:
        for row in f:
            name, value = row.strip().split(",")
            if name in scores:
                scores[name].append(int(value))
            else:
                scores[name] = [int(value)]
    return scores
'''
PASSAGE = ("The Golden Gate Bridge opened in May 1937. Its main span is 1,280 metres long, and its towers rise "
           "227 metres above the water. The bridge is painted a colour called International Orange, chosen "
           "partly because it stays visible in fog. About 112,000 vehicles cross it each day.")
PROMPTS = {
    "open chat": [
        "What are three good habits for staying healthy? Explain each briefly.",
        "Tell me a short story about a girl who finds a map in her grandmother's attic.",
        "How does a refrigerator keep food cold?",
        "What should I consider when choosing my first programming language?",
        "Write a friendly message inviting my neighbours to a picnic on Saturday.",
        "Why do leaves change colour in the fall?",
    ],
    "grounded": [
        "Rewrite this Python function with type hints and a docstring:\n\n" + CODE,
        "Passage:\n" + PASSAGE + "\n\nAnswer with exact quotes from the passage: when did the bridge open, "
        "how long is its main span, and how many vehicles cross it each day?",
        "Add comments to every line of this function:\n\n" + CODE,
    ],
}


def run(eng, ids_list, max_tokens, temperature, seed):
    tokens, decode_s, passes, drafted, accepted, by_pos, outs, trees, nodes = 0, 0.0, 0, 0, 0, [], [], 0, 0
    for i, ids in enumerate(ids_list):
        r = eng.generate(ids, max_tokens=max_tokens, temperature=temperature, seed=seed + i)
        st = r.stats
        tokens += st["tokens"] - 1
        decode_s += st["decode_s"]
        passes += st["target_passes"] - 1
        drafted, accepted = drafted + st["drafted"], accepted + st["accepted"]
        trees += st["tree_passes"]
        nodes += st["tree_nodes"]
        by_pos = [a + b for a, b in zip(by_pos, st["accepted_by_position"])] + \
            list(st["accepted_by_position"][len(by_pos):]) if by_pos else list(st["accepted_by_position"])
        outs.append(r.tokens)
    return dict(tps=tokens / decode_s if decode_s else 0.0, tpp=tokens / max(1, passes),
                acc=accepted / drafted if drafted else 0.0, by_pos=by_pos, rounds=passes, outs=outs,
                trees=trees / max(1, passes), nodes=nodes / max(1, trees))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--eagle", action="append", default=[],
                    help="an EAGLE head; repeatable, as LABEL=PATH to compare several heads in one run")
    ap.add_argument("--medusa", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="median decode tok/s over repeats")
    ap.add_argument("--tree-nodes", type=int, default=24)
    ap.add_argument("--temperatures", default="0,0.7")
    ap.add_argument("--lookup-min", type=int, default=3,
                    help="the '+ lookup' rows: prompt lookup first where the last N+ tokens occurred earlier, "
                         "the head elsewhere (0: no such rows)")
    a = ap.parse_args()
    kw = dict(threads=a.threads, context=2048)
    configs = {"plain": fastspec.Engine(a.model, **kw),
               "ngram chain": fastspec.Engine(a.model, draft="ngram", **kw),
               f"ngram tree{a.tree_nodes}": fastspec.Engine(a.model, draft="ngram", tree_nodes=a.tree_nodes, **kw)}
    heads = [(f"EAGLE {e.split('=', 1)[0]}" if "=" in e else "EAGLE head", e.split("=", 1)[-1]) for e in a.eagle]
    for name, path in heads + [("Medusa heads", a.medusa)]:
        if path:
            configs[f"{name} chain"] = fastspec.Engine(a.model, draft=path, **kw)
            configs[f"{name} tree{a.tree_nodes}"] = fastspec.Engine(a.model, draft=path, tree_nodes=a.tree_nodes, **kw)
            if a.lookup_min > 0:
                configs[f"{name} + lookup chain"] = fastspec.Engine(a.model, draft=path, lookup_min=a.lookup_min, **kw)
                configs[f"{name} + lookup tree{a.tree_nodes}"] = fastspec.Engine(
                    a.model, draft=path, lookup_min=a.lookup_min, tree_nodes=a.tree_nodes, **kw)
    print(f"model={a.model} threads={a.threads} max_tokens={a.max_tokens}, decode tok/s median of {a.repeats}")
    print("| prompts | T | configuration | decode tok/s | speedup | tokens/pass | acceptance | accepted by position "
          "(per round) | tree passes | nodes per tree | same as plain |")
    print("|---|---|---|---:|---:|---:|---:|---|---:|---:|---|")
    for group, prompts in PROMPTS.items():
        # chat-formatted where the model has a template, else plain text (this Gemma 3 file), as distill trains
        ids_list = [prompt_ids(configs["plain"], p) for p in prompts]
        for temp in (float(t) for t in a.temperatures.split(",")):
            base = None
            # repeats interleaved (every configuration once per round): this VM's speed drifts
            # over minutes, and consecutive repeats of one configuration would fold the drift into
            # its ratio to plain
            runs = {name: [] for name in configs}
            for _ in range(a.repeats):
                for name, eng in configs.items():
                    runs[name].append(run(eng, ids_list, a.max_tokens, temp, 1234))
            for name in configs:
                rs = runs[name]
                r = rs[0]
                tps = statistics.median(x["tps"] for x in rs)
                if name == "plain":
                    base = (tps, r["outs"])
                same = ("yes" if all(x["outs"] == base[1] for x in rs) else "NO") if temp == 0 else "-"
                bp = " ".join(f"{x / max(1, r['rounds']):.2f}" for x in r["by_pos"][:8]) if name != "plain" else "-"
                print(f"| {group} | {temp:g} | {name} | {tps:.1f} | {tps / base[0]:.2f}x | {r['tpp']:.2f} | "
                      f"{r['acc']:.2f} | {bp} | {100 * r['trees']:.0f}% | {r['nodes']:.1f} | {same} |", flush=True)


if __name__ == "__main__":
    main()
