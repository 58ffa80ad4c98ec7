"""Token ids of a text file, for `fastspec-bench --prompt-ids` (C++ never tokenizes).

    python bench/prompt_ids.py MODEL TEXT_FILE [--chat] [--max N] > ids.txt
    fastspec-bench --target MODEL --draft ngram --prompt-ids ids.txt

MODEL is a path or a known name; --chat wraps the text as one user message in the model's chat
template (with the assistant prompt), as `fastspec run` does.
"""
import argparse

import fastspec

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("model", help="model path or known name (its tokenizer is used)")
p.add_argument("text", help="text file to tokenize")
p.add_argument("--chat", action="store_true", help="apply the chat template (one user message)")
p.add_argument("--max", type=int, default=0, help="keep the first N ids (0 = all)")
a = p.parse_args()
tok = fastspec.Tokenizer.from_model(fastspec.models.path(a.model))
with open(a.text, encoding="utf-8") as f:
    text = f.read()
ids = tok.encode_chat([{"role": "user", "content": text}]) if a.chat else tok.encode(text)
print(" ".join(map(str, ids[: a.max] if a.max else ids)))
