"""Building a `tokenizers` backend and the tokenizer's metadata from model files.

- GGUF (`load_gguf`): the vocabulary in the metadata (`tokenizer.ggml.*`) is rebuilt the way llama.cpp
  reads it (and transformers converts it). `gpt2` = byte-level BPE with the file's merges and the
  pre-tokenizer regexes llama.cpp uses for `tokenizer.ggml.pre`; `llama` = SentencePiece-style BPE
  with byte fallback, merges from the file or, when it stores none (Gemma), derived from the
  vocabulary. CONTROL tokens become special tokens, USER_DEFINED ones added tokens: both are matched
  whole in text.
- Hugging Face checkpoint folder (`load_hf_dir`): tokenizer.json, with tokenizer_config.json (bos/eos,
  add_bos_token, chat_template), chat_template.jinja and generation_config.json (extra eos ids).

Both return the keyword arguments of `Tokenizer(...)`.
"""
from __future__ import annotations

import json
import os
import warnings
from typing import Dict, List, Optional

import tokenizers
from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers, processors

from ._core import ModelError
from .detokenize import byte_level_pieces, bytes_to_unicode, sentencepiece_pieces

# GGUF token types (llama.cpp's llama_token_type)
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6

# Token texts that end generation (llama.cpp's end-of-generation list), besides the eos id itself.
EOG_TOKEN_TEXTS = frozenset({
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>",
    "<|end_of_text|>", "<end_of_utterance>", "<｜end▁of▁sentence｜>",
})

# ---- byte-level pre-tokenizers by `tokenizer.ggml.pre` (llama.cpp's llm_tokenizer_bpe) -----------
_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
           r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_TEKKEN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
           r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
           r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_GPT4O = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
          r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
          r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def _pre_table() -> Dict[str, tuple]:
    """pre name -> (regexes splitting in turn, `isolated`; whether merges are skipped for whole-vocab words)."""
    table = {}

    def put(names, regexes, ignore_merges=False):
        for n in names.split():
            table[n] = (tuple(regexes), ignore_merges)

    put("gpt2 gpt-2 phi-2 mpt olmo jais roberta-bpe jina-es jina-de gigachat jina-v1-en jina-v2-es "
        "jina-v2-de jina-v2-code trillion", [_GPT2])
    # individual digits first, then GPT-2 (SmolLM2's tokenizer.json: Digits + ByteLevel)
    put("smollm starcoder refact command-r codeshell exaone minerva-7b", [r"\p{N}", _GPT2])
    put("llama3 llama-v3 llama-bpe falcon3 pixtral", [_LLAMA3], ignore_merges=True)
    put("dbrx smaug-bpe chatglm-bpe", [_LLAMA3])
    put("qwen2 stablelm2 megrez deepseek-r1-qwen", [_QWEN2])
    put("tekken", [_TEKKEN], ignore_merges=True)
    put("gpt-4o llama4", [_GPT4O])
    put("falcon", [r"[\p{P}\$\+<=>\^~\|`]+", _GPT2, r"[0-9][0-9][0-9]"])
    put("default", [r"[\p{P}\$\+<=>\^~\|]+", _GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"])
    return table


_PRE_SPLITS = _pre_table()
# byte-level vocabularies llama.cpp adds BOS to when the file does not say (tokenizer.ggml.add_bos_token)
_PRE_ADD_BOS = frozenset({"llama3", "llama-v3", "llama-bpe", "falcon3", "tekken", "chameleon"})


def _byte_level_pre_tokenizer(pre: str, where: str):
    if pre not in _PRE_SPLITS:
        warnings.warn(f"{where}: unknown tokenizer.ggml.pre {pre!r}; splitting text with the GPT-2 regex",
                      stacklevel=3)
        pre = "gpt2"
    regexes, ignore_merges = _PRE_SPLITS[pre]
    if regexes == (_GPT2,):
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), ignore_merges
    splits = [pre_tokenizers.Split(Regex(r), behavior="isolated") for r in regexes]
    return pre_tokenizers.Sequence(splits + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]), \
        ignore_merges


def _merges_from_vocab(vocab: Dict[str, int], spelled: List[str], scores: Optional[list]) -> List[tuple]:
    """BPE merges implied by a vocabulary: every split of a token into two tokens, best token first,
    as transformers' `generate_merges`: ordered by the token's score (None: by file position,
    earlier first), then by longer left part."""
    if scores is None and len(vocab) == len(spelled):
        # position order needs no sort: tokens in file order, each split longest-left first
        out = []
        append = out.append
        for tok in spelled:
            for k in range(len(tok) - 1, 0, -1):
                left = tok[:k]
                if left in vocab:
                    right = tok[k:]
                    if right in vocab:
                        append((left, right))
        return out
    rank = {t: -i for i, t in enumerate(spelled)} if scores is None else dict(zip(spelled, scores))
    merges = []
    for tok, s in rank.items():
        local = []
        for k in range(1, len(tok)):
            left, right = tok[:k], tok[k:]
            if left in vocab and right in vocab:
                local.append((left, right, s))
        if len(local) > 1:
            local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: (m[2], len(m[0]), len(m[1])), reverse=True)
    return [(m[0], m[1]) for m in merges]


def _as_list(x) -> Optional[list]:
    if x is None:
        return None
    return x.tolist() if hasattr(x, "tolist") else list(x)


def _opt_id(md: dict, key: str, n: int) -> Optional[int]:
    v = md.get(key)
    if v is None:
        return None
    v = int(v)
    return v if 0 <= v < n else None


# The value kind each tokenizer key must have (metadata from fastspec.inspect: a GGUF string that
# is not UTF-8 arrives as bytes; any key may hold any GGUF type in a hostile file).
_STR_LIST, _INT_LIST, _NUM_LIST, _INT, _STR, _FLAG = "strings", "integers", "numbers", "integer", "string", "bool"
_TOKENIZER_KEYS = {
    "tokenizer.ggml.tokens": _STR_LIST, "tokenizer.ggml.merges": _STR_LIST,
    "tokenizer.ggml.token_type": _INT_LIST, "tokenizer.ggml.scores": _NUM_LIST,
    "tokenizer.ggml.model": _STR, "tokenizer.ggml.pre": _STR, "tokenizer.chat_template": _STR,
    "general.architecture": _STR,
    "tokenizer.ggml.bos_token_id": _INT, "tokenizer.ggml.eos_token_id": _INT,
    "tokenizer.ggml.unknown_token_id": _INT, "tokenizer.ggml.padding_token_id": _INT,
    "tokenizer.ggml.eot_token_id": _INT, "tokenizer.ggml.eom_token_id": _INT,
    "tokenizer.ggml.add_bos_token": _FLAG, "tokenizer.ggml.add_eos_token": _FLAG,
    "tokenizer.ggml.add_space_prefix": _FLAG,
}


def _is_int(x) -> bool:
    return isinstance(x, int) or (hasattr(x, "dtype") and getattr(x.dtype, "kind", "") in "iub")


def _is_num(x) -> bool:
    return _is_int(x) or isinstance(x, float) or (hasattr(x, "dtype") and getattr(x.dtype, "kind", "") == "f")


def _check_kinds(md: dict, where: str) -> None:
    """ModelError naming the key when a tokenizer key holds the wrong kind of value (found by
    tests/fuzz/fuzz_tokenizer.py: a non-UTF-8 token arrived as bytes and crashed with AttributeError)."""
    for key, kind in _TOKENIZER_KEYS.items():
        v = md.get(key)
        if v is None:
            continue
        if kind in (_STR_LIST, _INT_LIST, _NUM_LIST):
            ok_elem = {_STR_LIST: lambda x: isinstance(x, str), _INT_LIST: _is_int, _NUM_LIST: _is_num}[kind]
            items = _as_list(v) if isinstance(v, (list, tuple)) or hasattr(v, "tolist") else None
            bad = None if items is not None else v
            if items is not None:
                bad = next((x for x in items if not ok_elem(x)), None)
                if bad is None:
                    continue
            what = "not valid UTF-8" if isinstance(bad, bytes) else f"a {type(bad).__name__}"
            raise ModelError(f"{where}: metadata '{key}' must be an array of {kind}; an element is {what}"
                             if items is not None else f"{where}: metadata '{key}' must be an array of {kind}")
        ok = {_STR: lambda x: isinstance(x, str), _INT: _is_int, _FLAG: lambda x: isinstance(x, (bool, int))}[kind](v)
        if not ok:
            what = "not valid UTF-8" if isinstance(v, bytes) else f"a {type(v).__name__}"
            raise ModelError(f"{where}: metadata '{key}' must be a {kind}, got {what}")


def _template_processor(add_bos: bool, add_eos: bool, bos: Optional[tuple], eos: Optional[tuple], where: str = ""):
    """A post-processor adding BOS and/or EOS (bos/eos are (text, id)). ModelError when a token's
    text cannot be written in tokenizers' template syntax ("<s::0": found by fuzz_tokenizer.py)."""
    if not ((add_bos and bos) or (add_eos and eos)):
        return None
    single, pair, special = [], [], []
    if add_bos and bos:
        single.append(f"{bos[0]}:0")
        special.append(bos)
    single.append("$A:0")
    if add_eos and eos:
        single.append(f"{eos[0]}:0")
        if eos != bos:
            special.append(eos)
    pair = single + [s.replace(":0", ":1").replace("$A", "$B") for s in single]
    try:
        return processors.TemplateProcessing(single=" ".join(single), pair=" ".join(pair), special_tokens=special)
    except ValueError as e:
        names = " / ".join(repr(t[0]) for t in special)
        raise ModelError(f"{where}: the BOS/EOS token {names} cannot be added by the tokenizer's post-processor "
                         f"(its text holds ':' or whitespace): {e}") from None


# ---- GGUF -------------------------------------------------------------------------------------------


def load_gguf(md: dict, where: str) -> dict:
    """Tokenizer(...) arguments from GGUF metadata; `where` names the file in errors."""
    _check_kinds(md, where)
    tokens = _as_list(md.get("tokenizer.ggml.tokens"))
    if not tokens:
        raise ModelError(f"{where}: the GGUF file has no tokenizer data (no tokenizer.ggml.tokens in its "
                         "metadata); use a GGUF converted with its vocabulary, or a checkpoint folder "
                         "with tokenizer.json")
    n = len(tokens)
    kind = md.get("tokenizer.ggml.model", "llama")
    types = _as_list(md.get("tokenizer.ggml.token_type")) or [TOKEN_NORMAL] * n
    if len(types) != n:
        raise ModelError(f"{where}: tokenizer.ggml.token_type has {len(types)} entries for {n} tokens")
    bos_id = _opt_id(md, "tokenizer.ggml.bos_token_id", n)
    eos_id = _opt_id(md, "tokenizer.ggml.eos_token_id", n)
    unk_id = _opt_id(md, "tokenizer.ggml.unknown_token_id", n)
    pad_id = _opt_id(md, "tokenizer.ggml.padding_token_id", n)
    pre = str(md.get("tokenizer.ggml.pre", "default") or "default")

    if kind == "gpt2":
        backend, added, strip_first = _gguf_byte_level(md, tokens, types, pre, where)
        add_bos_default = pre in _PRE_ADD_BOS
    elif kind == "llama":
        backend, added, strip_first = _gguf_sentencepiece(md, tokens, types, unk_id, where)
        add_bos_default = True
    else:
        raise ModelError(f"{where}: tokenizer model {kind!r} is not supported (fastspec reads 'gpt2' "
                         "byte-level BPE and 'llama' SentencePiece-style vocabularies)")

    add_bos = bool(md.get("tokenizer.ggml.add_bos_token", add_bos_default)) and bos_id is not None
    add_eos = bool(md.get("tokenizer.ggml.add_eos_token", False)) and eos_id is not None
    post = _template_processor(add_bos, add_eos, bos_id is not None and (tokens[bos_id], bos_id) or None,
                               eos_id is not None and (tokens[eos_id], eos_id) or None, where)
    if post is not None:
        backend.post_processor = post

    special = {i for i, t in enumerate(types) if t == TOKEN_CONTROL}
    special |= {i for i in (bos_id, eos_id, unk_id, pad_id) if i is not None}
    if kind == "gpt2":
        pieces = byte_level_pieces(tokens, added)
    else:
        pieces = sentencepiece_pieces(tokens, added | special, byte_fallback=True)
    eos_ids = {i for i in (eos_id, _opt_id(md, "tokenizer.ggml.eot_token_id", n),
                           _opt_id(md, "tokenizer.ggml.eom_token_id", n)) if i is not None}
    eos_ids |= {i for i, t in enumerate(tokens) if t in EOG_TOKEN_TEXTS}
    return dict(backend=backend, tokens=tokens, pieces=pieces, special_ids=special, bos_id=bos_id, eos_id=eos_id,
                eos_ids=eos_ids, add_bos=add_bos, add_eos=add_eos,
                chat_template=md.get("tokenizer.chat_template") or None, strip_first_space=strip_first,
                source=where)


def _bpe(where: str, **kwargs):
    """models.BPE(**kwargs); its refusals (a merge naming a token outside the vocabulary, found by
    tests/fuzz/fuzz_tokenizer.py) become ModelError -- tokenizers raises a plain Exception."""
    try:
        return models.BPE(**kwargs)
    except Exception as e:  # noqa: BLE001 (tokenizers' error type)
        raise ModelError(f"{where}: the GGUF vocabulary and merges do not form a BPE tokenizer: {e}") from None


def _gguf_byte_level(md, tokens, types, pre, where):
    """Byte-level BPE (`tokenizer.ggml.model == "gpt2"`): SmolLM2, Llama 3, Qwen 2, ..."""
    merges_raw = _as_list(md.get("tokenizer.ggml.merges"))
    if not merges_raw:
        raise ModelError(f"{where}: byte-level BPE vocabulary without tokenizer.ggml.merges")
    b2u = bytes_to_unicode()
    alphabet = set(b2u.values())
    spelled = [t if set(t) <= alphabet else "".join(b2u[b] for b in t.encode("utf-8")) for t in tokens]
    vocab = {t: i for i, t in enumerate(spelled)}
    merges = []
    for m in merges_raw:
        k = m.find(" ", 1)
        if k > 0:
            merges.append((m[:k], m[k + 1:]))
    pre_tok, ignore_merges = _byte_level_pre_tokenizer(pre, where)
    bpe = _bpe(where, vocab=vocab, merges=merges, continuing_subword_prefix="", end_of_word_suffix="",
               fuse_unk=False, ignore_merges=ignore_merges)
    backend = tokenizers.Tokenizer(bpe)
    backend.pre_tokenizer = pre_tok
    backend.decoder = decoders.ByteLevel()
    # CONTROL tokens are special; one spelled outside the byte alphabet is a converter mislabel
    # (transformers skips those too). USER_DEFINED tokens are matched whole but are not special.
    control = [i for i, t in enumerate(types) if t == TOKEN_CONTROL and set(tokens[i]) <= alphabet]
    user = [i for i, t in enumerate(types) if t == TOKEN_USER_DEFINED and vocab.get(tokens[i]) == i]
    backend.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False) for i in control])
    backend.add_tokens([AddedToken(tokens[i], special=False, normalized=False) for i in user])
    return backend, set(control) | set(user), False


def _gguf_sentencepiece(md, tokens, types, unk_id, where):
    """SentencePiece-style BPE with byte fallback (`tokenizer.ggml.model == "llama"`): Llama 2,
    Mistral, Gemma. Gemma files store no merges: they are derived from the vocabulary, best first
    by file position for Gemma (as transformers; its scores do not follow its merge order), by score
    otherwise. Gemma stores runs of spaces as real spaces; they are respelled with `▁` to take part
    in merges as SentencePiece's pieces do."""
    arch = str(md.get("general.architecture", ""))
    is_gemma = arch.startswith("gemma")
    present = set(tokens)
    spelled = []
    for t in tokens:
        if t and set(t) == {" "} and "\u2581" * len(t) not in present:
            t = "\u2581" * len(t)
        spelled.append(t)
    vocab = {t: i for i, t in enumerate(spelled)}
    merges_raw = _as_list(md.get("tokenizer.ggml.merges"))
    if merges_raw:
        merges = []
        for m in merges_raw:
            k = m.find(" ", 1)
            if k > 0:
                merges.append((m[:k], m[k + 1:]))
    else:
        scores = None if is_gemma else _as_list(md.get("tokenizer.ggml.scores"))
        merges = _merges_from_vocab(vocab, spelled, scores)
    unk = tokens[unk_id] if unk_id is not None else ("<unk>" if "<unk>" in vocab else None)
    bpe = _bpe(where, vocab=vocab, merges=merges, unk_token=unk, fuse_unk=True, byte_fallback=True)
    backend = tokenizers.Tokenizer(bpe)
    space_prefix = bool(md.get("tokenizer.ggml.add_space_prefix", True))
    dec = [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
    if space_prefix:
        backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
        dec.append(decoders.Strip(content=" ", left=1, right=0))
    else:
        backend.normalizer = normalizers.Replace(" ", "\u2581")
        backend.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
    backend.decoder = decoders.Sequence(dec)
    control = [i for i, t in enumerate(types) if t == TOKEN_CONTROL]
    user = [i for i, t in enumerate(types) if t == TOKEN_USER_DEFINED and spelled[i] == tokens[i]]
    backend.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False) for i in control])
    backend.add_tokens([AddedToken(tokens[i], special=False, normalized=False) for i in user])
    return backend, set(control) | set(user), space_prefix


# ---- Hugging Face checkpoint folder -----------------------------------------------------------------


def _read_json(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: cannot read JSON: {e}") from None
    return data if isinstance(data, dict) else {}


def _token_content(v) -> Optional[str]:
    if isinstance(v, dict):
        v = v.get("content")
    return v if isinstance(v, str) else None


def _ids(v) -> List[int]:
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return [int(x) for x in v]
    return [int(v)]


def _hf_chat_template(d: str, cfg: dict) -> Optional[str]:
    p = os.path.join(d, "chat_template.jinja")
    if os.path.exists(p):
        with open(p, encoding="utf-8") as f:
            return f.read()
    t = cfg.get("chat_template")
    if t is None:
        t = _read_json(os.path.join(d, "chat_template.json")).get("chat_template")
    if isinstance(t, list):  # [{"name": "default", "template": ...}, ...]
        named = {e.get("name"): e.get("template") for e in t if isinstance(e, dict)}
        t = named.get("default") or next(iter(named.values()), None)
    return t if isinstance(t, str) and t else None


def _classify_decoder(backend: tokenizers.Tokenizer):
    """('bytes', ...) for a byte-level decoder, ('spm', byte_fallback, strip_first) for the
    SentencePiece-style ones, ('text',) otherwise."""
    if backend.decoder is None:
        return ("text",)
    d = json.loads(backend.decoder.__getstate__())
    parts = d.get("decoders", [d]) if d.get("type") == "Sequence" else [d]
    kinds = [p.get("type") for p in parts]
    if kinds and all(k == "ByteLevel" for k in kinds):
        return ("bytes",)
    if kinds == ["Metaspace"]:
        p = parts[0]
        if p.get("replacement") != "\u2581":
            return ("text",)
        strip = p.get("prepend_scheme", "always" if p.get("add_prefix_space", True) else "never") != "never"
        return ("spm", False, strip)
    fallback = strip = False
    for p in parts:
        k = p.get("type")
        if k == "Replace" and p.get("pattern", {}).get("String") == "\u2581" and p.get("content") == " ":
            continue
        if k == "ByteFallback":
            fallback = True
        elif k == "Fuse":
            pass
        elif k == "Strip" and p.get("content") == " " and p.get("start") == 1 and p.get("stop") == 0 and p is parts[-1]:
            strip = True
        else:
            return ("text",)
    return ("spm", fallback, strip) if "Replace" in kinds else ("text",)


def load_hf_dir(d: str) -> dict:
    """Tokenizer(...) arguments from a Hugging Face checkpoint folder."""
    if not os.path.isdir(d):
        raise ModelError(f"{d}: not a folder (from_dir wants a Hugging Face checkpoint folder)")
    tj = os.path.join(d, "tokenizer.json")
    if not os.path.exists(tj):
        raise ModelError(f"{d}: no tokenizer.json in the checkpoint folder (fastspec reads Hugging Face "
                         "tokenizers from tokenizer.json)")
    try:
        backend = tokenizers.Tokenizer.from_file(tj)
    except Exception as e:  # tokenizers raises a plain Exception on bad JSON
        raise ModelError(f"{tj}: cannot load the tokenizer: {e}") from None
    cfg = _read_json(os.path.join(d, "tokenizer_config.json"))
    model_cfg = _read_json(os.path.join(d, "config.json"))
    gen_cfg = _read_json(os.path.join(d, "generation_config.json"))
    n = backend.get_vocab_size(with_added_tokens=True)
    tokens = [backend.id_to_token(i) for i in range(n)]

    def tok_id(key: str) -> Optional[int]:
        text = _token_content(cfg.get(key))
        i = backend.token_to_id(text) if text is not None else None
        if i is None:
            ids = _ids(model_cfg.get(f"{key}_id"))
            i = ids[0] if ids and 0 <= ids[0] < n else None
        return i

    bos_id, eos_id = tok_id("bos_token"), tok_id("eos_token")
    add_bos_cfg, add_eos_cfg = cfg.get("add_bos_token"), cfg.get("add_eos_token")
    if add_bos_cfg is not None or add_eos_cfg is not None:
        # the config's flags decide (as transformers' Llama/Gemma tokenizers rebuild their post-processor)
        probe = backend.encode("", add_special_tokens=True).ids
        add_bos = bool(add_bos_cfg) if add_bos_cfg is not None else (bos_id is not None and probe[:1] == [bos_id])
        add_eos = bool(add_eos_cfg) if add_eos_cfg is not None else (eos_id is not None and probe[-1:] == [eos_id])
        post = _template_processor(add_bos, add_eos, bos_id is not None and (tokens[bos_id], bos_id) or None,
                                   eos_id is not None and (tokens[eos_id], eos_id) or None, tj)
        if post is not None or (not add_bos and not add_eos):
            backend.post_processor = post
    probe = backend.encode("", add_special_tokens=True).ids
    add_bos = bos_id is not None and probe[:1] == [bos_id]
    add_eos = eos_id is not None and probe[-1:] == [eos_id] and (not add_bos or len(probe) > 1)

    added = backend.get_added_tokens_decoder()
    special = {i for i, t in added.items() if t.special}
    literal = set(added)
    kind = _classify_decoder(backend)
    strip_first = False
    if kind[0] == "bytes":
        pieces = byte_level_pieces(tokens, literal)
    elif kind[0] == "spm":
        pieces = sentencepiece_pieces(tokens, literal, byte_fallback=kind[1])
        strip_first = kind[2]
    else:
        pieces = None
    eos_ids = set(_ids(gen_cfg.get("eos_token_id"))) | ({eos_id} if eos_id is not None else set())
    eos_ids |= {i for i, t in added.items() if t.content in EOG_TOKEN_TEXTS}
    eos_ids = {i for i in eos_ids if 0 <= i < n}
    return dict(backend=backend, tokens=tokens, pieces=pieces, special_ids=special, bos_id=bos_id, eos_id=eos_id,
                eos_ids=eos_ids, add_bos=add_bos, add_eos=add_eos, chat_template=_hf_chat_template(d, cfg),
                strip_first_space=strip_first, source=d)
