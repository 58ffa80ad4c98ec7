"""Writing a fastspec Tokenizer as Hugging Face tokenizer files (tokenizer.json, tokenizer_config.json,
generation_config.json), so that `Tokenizer.from_dir` and transformers' AutoTokenizer read back the
same ids. tokenizer.json is the `tokenizers` backend fastspec built (from GGUF metadata, see
tokenizer_load.py), saved as is: its post-processor already adds BOS when the model wants it.
"""
from __future__ import annotations

import json
import os
from typing import Optional

from .tokenizer import Tokenizer


def _write_json(path: str, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")


def write_tokenizer(tok: Tokenizer, out_dir: str, *, model_max_length: int = 0,
                    pad_id: Optional[int] = None) -> None:
    tok._backend.save(os.path.join(out_dir, "tokenizer.json"))
    text = tok.token_text
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False,
           "add_bos_token": tok.add_bos, "add_eos_token": tok.add_eos}
    if tok.bos_id is not None:
        cfg["bos_token"] = text(tok.bos_id)
    if tok.eos_id is not None:
        cfg["eos_token"] = text(tok.eos_id)
    if pad_id is not None and 0 <= pad_id < tok.vocab_size:
        cfg["pad_token"] = text(pad_id)
    if model_max_length:
        cfg["model_max_length"] = model_max_length
    if tok.chat_template:
        cfg["chat_template"] = tok.chat_template
    _write_json(os.path.join(out_dir, "tokenizer_config.json"), cfg)
    gen = {"bos_token_id": tok.bos_id, "eos_token_id": sorted(tok.eos_ids) if len(tok.eos_ids) > 1
           else (next(iter(tok.eos_ids)) if tok.eos_ids else None)}
    _write_json(os.path.join(out_dir, "generation_config.json"), gen)
