"""Text <-> token ids, with the Hugging Face `tokenizers` library.

    tok = Tokenizer.from_model("SmolLM2-135M-Instruct.Q4_1.gguf")   # or a checkpoint folder
    ids = tok.encode("Hello")                  # BOS prepended when the model says so (add_bos)
    tok.decode(ids)                            # 'Hello'
    dec = tok.decoder(prompt_ids)              # streaming: dec.push(id) -> newly completed text
    tok.apply_chat_template([{"role": "user", "content": "Hi"}])

How GGUF vocabularies and checkpoint folders become a `tokenizers` backend: tokenizer_load.py.
Decoding uses a per-token byte table, so streaming is exact: detokenize.py. Chat templates:
chat_template.py. Runtime code imports no transformers and no torch.
"""
from __future__ import annotations

import os
from typing import Iterable, List, Optional, Sequence, Set

import tokenizers

from . import chat_template as _chat
from ._core import ModelError
from .detokenize import IncrementalDecoder, TextIncrementalDecoder
from .tokenizer_load import EOG_TOKEN_TEXTS, load_gguf, load_hf_dir

__all__ = ["Tokenizer", "IncrementalDecoder", "EOG_TOKEN_TEXTS"]


class Tokenizer:
    """A model's tokenizer. Build it with `from_model`, `from_gguf` or `from_dir`.

    Attributes: `vocab_size`, `bos_id`, `eos_id` (None when the model has none), `eos_ids` (every id
    that ends generation: eos plus end-of-turn tokens such as <|im_end|>, <end_of_turn>,
    <|endoftext|>), `add_bos` (whether `encode(text)` prepends BOS), `chat_template` (or None),
    `source` (the file or folder it came from).
    """

    def __init__(self, backend: tokenizers.Tokenizer, *, tokens: Sequence[Optional[str]],
                 pieces: Optional[List[bytes]], special_ids: Set[int], bos_id: Optional[int],
                 eos_id: Optional[int], eos_ids: Set[int], add_bos: bool, add_eos: bool,
                 chat_template: Optional[str], strip_first_space: bool = False, source: str = ""):
        self._backend = backend
        self._tokens = tokens
        self._pieces = pieces
        self._special_ids = frozenset(special_ids)
        self._strip_first_space = strip_first_space
        self.vocab_size: int = len(tokens)
        self.bos_id = bos_id
        self.eos_id = eos_id
        self.eos_ids: Set[int] = set(eos_ids)
        self.add_bos = bool(add_bos and bos_id is not None)
        self.add_eos = bool(add_eos and eos_id is not None)
        self.chat_template = chat_template
        self.source = source

    def __repr__(self) -> str:
        return (f"Tokenizer({self.source!r}, vocab_size={self.vocab_size}, bos_id={self.bos_id}, "
                f"eos_ids={sorted(self.eos_ids)}, add_bos={self.add_bos}, "
                f"chat_template={'yes' if self.chat_template else 'no'})")

    # ---- construction ---------------------------------------------------------------------------

    @classmethod
    def from_model(cls, path) -> "Tokenizer":
        """A .gguf file -> from_gguf; a checkpoint folder, .safetensors or *.index.json -> from_dir of
        its folder. A known model name (fastspec.models) is fetched first."""
        p = os.fspath(path)
        if not os.path.exists(p):
            from . import models
            p = models.path(p)
        if os.path.isdir(p):
            return cls.from_dir(p)
        if p.endswith(".gguf"):
            return cls.from_gguf(p)
        if p.endswith((".safetensors", ".json")):
            return cls.from_dir(os.path.dirname(os.path.abspath(p)))
        with open(p, "rb") as f:
            if f.read(4) == b"GGUF":
                return cls.from_gguf(p)
        raise ModelError(f"{p}: not a GGUF file or Hugging Face checkpoint; cannot find its tokenizer")

    @classmethod
    def from_gguf(cls, path_or_metadata) -> "Tokenizer":
        """From a GGUF file (path) or its metadata dict (`fastspec.inspect(path).metadata`)."""
        if isinstance(path_or_metadata, dict):
            md = path_or_metadata
            where = str(md.get("general.name") or "GGUF metadata")
        else:
            from .inspect import inspect
            where = os.fspath(path_or_metadata)
            if not os.path.exists(where):
                from . import models
                where = models.path(where)
            md = inspect(where).metadata
        return cls(**load_gguf(md, where))

    @classmethod
    def from_dir(cls, path) -> "Tokenizer":
        """From a Hugging Face checkpoint folder holding tokenizer.json."""
        return cls(**load_hf_dir(os.fspath(path)))

    # ---- text <-> ids ---------------------------------------------------------------------------

    def encode(self, text: str, *, add_special: bool = True) -> List[int]:
        """Token ids of `text`. Special tokens written in the text (`<|im_start|>`) become their ids.
        With add_special, BOS (and EOS) are added when the model's metadata says so."""
        if not isinstance(text, str):
            raise TypeError(f"encode() takes a str, got {type(text).__name__}")
        return self._backend.encode(text, add_special_tokens=add_special).ids

    def _check_id(self, i: int) -> None:
        if not 0 <= i < self.vocab_size:
            raise ValueError(f"token id {i} is outside the vocabulary [0, {self.vocab_size})")

    def decode(self, ids: Iterable[int], *, skip_special: bool = False) -> str:
        """The text of `ids`; skip_special drops control tokens (BOS, EOS, <|im_end|>, ...)."""
        ids = [int(i) for i in ids]
        for i in ids:
            self._check_id(i)
        if self._pieces is None:
            return self._backend.decode(ids, skip_special_tokens=skip_special)
        if skip_special:
            ids = [i for i in ids if i not in self._special_ids]
        pieces = self._pieces
        data = b"".join([pieces[i] for i in ids])
        if self._strip_first_space and ids and pieces[ids[0]][:1] == b" ":
            data = data[1:]
        return data.decode("utf-8", "replace")

    def token_text(self, id: int) -> str:  # noqa: A002 (API name)
        """The vocabulary entry of `id` as the model file spells it (e.g. 'Ġthe', '▁the', '<0x0A>')."""
        self._check_id(int(id))
        t = self._tokens[int(id)]
        return "" if t is None else t

    def token_bytes(self, id: int) -> bytes:  # noqa: A002
        """The bytes `id` contributes to decoded text (b'' for tokens without a byte table)."""
        self._check_id(int(id))
        if self._pieces is None:
            return self._backend.decode([int(id)], skip_special_tokens=False).encode("utf-8")
        return self._pieces[int(id)]

    def is_special(self, id: int) -> bool:  # noqa: A002
        return int(id) in self._special_ids

    def decoder(self, prompt_ids: Optional[Iterable[int]] = None, *, skip_special: bool = False):
        """A streaming decoder (`push(id) -> str`, `flush() -> str`) continuing after `prompt_ids`."""
        if self._pieces is None:
            return TextIncrementalDecoder(self, prompt_ids, skip_special=skip_special)
        return IncrementalDecoder(self, prompt_ids, skip_special=skip_special)

    # ---- chat -----------------------------------------------------------------------------------

    def _token_str(self, i: Optional[int]) -> Optional[str]:
        return None if i is None else self._tokens[i]

    def apply_chat_template(self, messages: List[dict], *, add_generation_prompt: bool = True, **context) -> str:
        """The prompt text for `messages` ([{"role": "user", "content": "..."}, ...]) rendered with the
        model's chat template (as transformers' apply_chat_template(..., tokenize=False)).
        Raises ValueError when the model has no chat template (base models)."""
        if not self.chat_template:
            raise ValueError(f"{self.source}: the model has no chat template (no tokenizer.chat_template / "
                             "chat_template in its tokenizer config); it is probably a base model: "
                             "give it plain text instead of chat messages")
        ctx = {"bos_token": self._token_str(self.bos_id) or "", "eos_token": self._token_str(self.eos_id) or ""}
        ctx.update(context)
        return _chat.render(self.chat_template, messages, add_generation_prompt=add_generation_prompt, **ctx)

    def encode_chat(self, messages: List[dict], *, add_generation_prompt: bool = True, **context) -> List[int]:
        """Ids of the rendered chat: special tokens in the template text parsed, BOS prepended only
        when the model adds one and the template did not already write it."""
        text = self.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, **context)
        ids = self.encode(text, add_special=False)
        if self.add_bos and (not ids or ids[0] != self.bos_id):
            ids.insert(0, self.bos_id)
        return ids
