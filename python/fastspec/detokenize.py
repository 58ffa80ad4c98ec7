"""Token ids -> text: per-token byte tables, full decoding and streaming (incremental) decoding.

Every vocabulary fastspec meets spells its tokens in one of two ways:

- byte-level BPE (GPT-2, SmolLM2, Llama 3, Qwen): each character of a token stands for one byte
  through GPT-2's `bytes_to_unicode` table;
- SentencePiece style (Llama 2, Gemma): `▁` is a space, `<0xXX>` is the raw byte XX (byte fallback),
  everything else is the UTF-8 text itself.

Either way a token is a fixed byte string, so the text of a sequence is the UTF-8 decoding of the
concatenated bytes (invalid bytes -> U+FFFD, one per maximal invalid subsequence, as Python and
Rust's `from_utf8_lossy` both do). That makes decoding exactly streamable: a UTF-8 incremental
decoder fed token by token emits every character once it is complete and the concatenation of its
pieces equals the full decode, always. Added/special tokens (`<|im_end|>`, `<start_of_turn>`) are
their literal text, as in llama.cpp and Hugging Face.

SentencePiece vocabularies that prepend a space to the input (`add_space_prefix`, Llama 2) strip one
leading space from the first token decoded; Gemma 3 does not.

Vocabularies whose decoder is neither (WordPiece, ...) fall back to the `tokenizers` decoder and a
prefix/read-offset streaming scheme (as vLLM and TGI do).
"""
from __future__ import annotations

import codecs
import re
from functools import lru_cache
from typing import Iterable, List, Optional, Sequence

_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict:
    """GPT-2's map byte -> printable character used to spell byte-level BPE tokens."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict:
    return {c: b for b, c in bytes_to_unicode().items()}


def byte_level_pieces(tokens: Sequence[Optional[str]], literal: Iterable[int]) -> List[bytes]:
    """Bytes of each token of a byte-level BPE vocabulary; ids in `literal` (added tokens) are their
    UTF-8 text. A token using characters outside the byte alphabet is taken as UTF-8 text too."""
    inv = unicode_to_bytes()
    lit = set(literal)
    out = []
    for i, t in enumerate(tokens):
        if t is None:
            out.append(b"")
        elif i in lit:
            out.append(t.encode("utf-8"))
        else:
            try:
                out.append(bytes(inv[c] for c in t))
            except KeyError:
                out.append(t.encode("utf-8"))
    return out


def sentencepiece_pieces(tokens: Sequence[Optional[str]], literal: Iterable[int], byte_fallback: bool = True) -> List[bytes]:
    """Bytes of each token of a SentencePiece-style vocabulary: `▁` -> space, `<0xXX>` -> byte XX;
    ids in `literal` (added/control tokens) are their UTF-8 text as is."""
    lit = set(literal)
    out = []
    for i, t in enumerate(tokens):
        if t is None:
            out.append(b"")
        elif i in lit:
            out.append(t.encode("utf-8"))
        elif byte_fallback and len(t) == 6 and _BYTE_TOKEN.fullmatch(t):
            out.append(bytes((int(t[3:5], 16),)))
        else:
            out.append(t.replace("\u2581", " ").encode("utf-8"))
    return out


class IncrementalDecoder:
    """Streaming detokenizer: `push(id)` returns the newly completed text ("" while a UTF-8
    character is still incomplete), `flush()` whatever remains at the end.

    The concatenation of all pieces equals `tokenizer.decode(ids)` exactly with no prompt, and
    `tokenizer.decode(prompt_ids + ids)` minus the decoded prompt with one (that ends on a whole
    character). A piece never ends inside a UTF-8 character and contains U+FFFD only where the full
    decode has one (invalid bytes). `prompt_ids` gives the context the generated tokens continue
    (it decides SentencePiece's leading-space stripping); its text is not emitted.
    """

    def __init__(self, tokenizer, prompt_ids: Optional[Iterable[int]] = None, *, skip_special: bool = False):
        self._tok = tokenizer
        self._skip = skip_special
        self._pieces = tokenizer._pieces
        self._special = tokenizer._special_ids
        self._strip_first = tokenizer._strip_first_space
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._first = True  # no token emitted yet (SentencePiece leading-space stripping)
        for i in (() if prompt_ids is None else prompt_ids):
            # The prompt's text is not emitted, but a character it leaves incomplete is finished
            # (and emitted) by the first tokens pushed.
            self._utf8.decode(self._bytes(int(i)))

    def _bytes(self, token_id: int) -> bytes:
        self._tok._check_id(token_id)
        if self._skip and token_id in self._special:
            return b""
        b = self._pieces[token_id]
        if self._first:
            self._first = False
            if self._strip_first and b[:1] == b" ":
                b = b[1:]
        return b

    def push(self, token_id: int) -> str:
        return self._utf8.decode(self._bytes(int(token_id)))

    def flush(self) -> str:
        out = self._utf8.decode(b"", final=True)
        self._utf8.reset()
        return out


class TextIncrementalDecoder:
    """Streaming for vocabularies without a byte table: decode a window [prefix:] with the
    `tokenizers` decoder and emit only the suffix past [prefix:read] once it does not end in U+FFFD."""

    def __init__(self, tokenizer, prompt_ids: Optional[Iterable[int]] = None, *, skip_special: bool = False):
        self._tok = tokenizer
        self._skip = skip_special
        self._ids: List[int] = [int(i) for i in (() if prompt_ids is None else prompt_ids)][-8:]
        for i in self._ids:
            tokenizer._check_id(i)
        self._prefix = 0
        self._read = len(self._ids)

    def _dec(self, ids) -> str:
        return self._tok._backend.decode(ids, skip_special_tokens=self._skip)

    def _advance(self, final: bool) -> str:
        old = self._dec(self._ids[self._prefix:self._read])
        new = self._dec(self._ids[self._prefix:])
        if len(new) > len(old) and new.startswith(old) and (final or not new.endswith("\ufffd")):
            self._prefix, self._read = self._read, len(self._ids)
            return new[len(old):]
        return ""

    def push(self, token_id: int) -> str:
        token_id = int(token_id)
        self._tok._check_id(token_id)
        self._ids.append(token_id)
        return self._advance(final=False)

    def flush(self) -> str:
        return self._advance(final=True)
