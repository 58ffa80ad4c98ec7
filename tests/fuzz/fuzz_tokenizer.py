"""atheris harness: tokenizer construction from GGUF metadata (python/fastspec/tokenizer_load.py,
tokenizer.py, detokenize.py), fed the way Tokenizer.from_gguf is: the input is a GGUF file, read by
the engine's reader (fastspec.inspect), its metadata handed to load_gguf; a built tokenizer then
encodes and decodes a text (plain, with special tokens, streaming).

Contract: the file is refused with fastspec.FormatError / ModelError (by the reader or by the
tokenizer construction), or the tokenizer works; any other exception is a finding. Seeds: the
metadata-only tokenizer GGUFs of tests/fuzz/make_seeds.py (gpt2 BPE, SentencePiece, Gemma).

    python tests/fuzz/fuzz_tokenizer.py -dict=tests/fuzz/gguf.dict CORPUS [SEEDS] -max_total_time=60
"""
import os
import sys
import tempfile
import warnings

import atheris

import fastspec
from fastspec.tokenizer import Tokenizer
from fastspec.tokenizer_load import load_gguf

warnings.simplefilter("ignore")  # unknown tokenizer.ggml.pre warns by design
_DIR = tempfile.mkdtemp(prefix="fastspec-fuzz-tok-", dir=os.environ.get("FASTSPEC_FUZZ_SCRATCH") or None)
_PATH = os.path.join(_DIR, "input.gguf")
TEXT = "Hello wörld <|im_start|> 12 345\n\t  x <s> é😀"


def TestOneInput(data: bytes):
    with open(_PATH, "wb") as f:
        f.write(data)
    try:
        md = fastspec.inspect(_PATH).metadata
        tok = Tokenizer(**load_gguf(md, _PATH))
    except (fastspec.FormatError, fastspec.ModelError):
        return
    ids = tok.encode(TEXT)
    assert all(0 <= i < tok.vocab_size for i in ids), ids
    tok.decode(ids)
    tok.decode(ids, skip_special=True)
    dec = tok.decoder(ids[:2])
    for i in ids[2:]:
        dec.push(i)
    dec.flush()
    for i in range(min(tok.vocab_size, 8)):
        tok.token_bytes(i), tok.token_text(i), tok.is_special(i)


if __name__ == "__main__":
    # fastspec may be imported through an editable-install finder, which instrument_imports skips:
    # instrument every loaded function instead (fastspec, jinja2, the stdlib they use).
    atheris.instrument_all()
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
