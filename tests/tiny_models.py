"""Tiny random models for tests, written as HF safetensors checkpoints and as GGUF files.

Plain functions; tests wrap them in fixtures. numpy + gguf only (torch is not needed here).

    cfg = tiny_config("llama")                       # HF config.json dict ("llama"|"qwen2"|"gemma3")
    w = random_weights(cfg, seed=0)                  # {HF name: float32 ndarray}
    stored = write_safetensors_checkpoint(d, cfg, w, dtype="F16")   # + tokenizer files
    deq = write_gguf(d / "m.gguf", cfg, w, qtype="Q4_K")            # HF-named dequantized weights

`write_safetensors_checkpoint` and `write_gguf` return the float32 weights exactly as a loader
will see them (rounded to F16/BF16, or quantized and dequantized by `gguf.quants.dequantize`,
with the GGUF Q/K permutation and Gemma's +1 undone), so a test can run the reference on exactly
those weights and keep storage error out of the comparison.

GGUF layout follows llama.cpp's convert_hf_to_gguf.py: tensor names from gguf's own
TensorNameMap; llama-architecture Q/K rows permuted into adjacent-pair rotary order
(`permute_qk`); Gemma norm weights stored with +1; 1-D tensors (norms, biases, rope_freqs) F32;
2-D tensors in `qtype`; llama3 rope scaling as a `rope_freqs.weight` tensor of frequency divisors;
linear scaling as rope.scaling.type/factor keys. K-quants (Q4_K, Q6_K) need rows (the input
dimension) that are a multiple of 256: use hidden=256 and intermediate 512, or fallback=True to
store such tensors the way llama-quantize does (Q4_K -> Q5_0, Q6_K -> Q8_0).
"""
import json
import os
import struct

import numpy as np

# ---- configs -------------------------------------------------------------------------------------

LLAMA3_ROPE_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                       "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
# With head_dim 16 and theta 10000 the wavelengths (6.3, 20, 63, 199, ...) straddle 64/4 and 64/1,
# so high-, medium- and low-frequency bands all occur.


def tiny_config(arch="llama", n_layers=None, hidden=64, heads=4, kv_heads=2, vocab=320, *,
                intermediate=None, head_dim=None, **overrides):
    """An HF config.json dict for a tiny model (classic field names: rope_theta, rope_scaling,
    rope_local_base_freq, sliding_window_pattern -- what checkpoints on the Hub carry; transformers 5
    converts them to rope_parameters itself). overrides replace or add fields. Gemma 3 also gets
    an explicit layer_types list (computed from sliding_window_pattern unless given).
    Defaults: llama/qwen2 2 layers; gemma3 6 layers (5 sliding + 1 global), head_dim 2*hidden/heads,
    sliding_window 8, query_pre_attn_scalar = head_dim (llama.cpp assumes 1/sqrt(head_dim))."""
    intermediate = intermediate or 2 * hidden
    common = {
        "vocab_size": vocab, "hidden_size": hidden, "intermediate_size": intermediate,
        "num_attention_heads": heads, "num_key_value_heads": kv_heads,
        "bos_token_id": 0, "eos_token_id": 1, "torch_dtype": "float32",
    }
    if arch == "llama":
        cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", **common,
               "num_hidden_layers": n_layers or 2, "head_dim": head_dim or hidden // heads,
               "hidden_act": "silu", "max_position_embeddings": 256, "rms_norm_eps": 1e-5,
               "rope_theta": 10000.0, "rope_scaling": None, "tie_word_embeddings": False,
               "attention_bias": False, "mlp_bias": False}
    elif arch == "qwen2":
        cfg = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", **common,
               "num_hidden_layers": n_layers or 2, "hidden_act": "silu",
               "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
               "rope_scaling": None, "tie_word_embeddings": True, "use_sliding_window": False,
               "sliding_window": None, "max_window_layers": n_layers or 2}
        if head_dim is not None:
            cfg["head_dim"] = head_dim
    elif arch == "gemma3":
        n = n_layers or 6  # pattern 6: layers 0-4 sliding, layer 5 global
        hd = head_dim or 2 * hidden // heads  # != hidden/heads on purpose, as in real Gemma 3
        cfg = {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", **common,
               "num_hidden_layers": n, "head_dim": hd, "hidden_activation": "gelu_pytorch_tanh",
               "max_position_embeddings": 512, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
               "rope_local_base_freq": 10000.0, "rope_scaling": None, "sliding_window": 8,
               "sliding_window_pattern": 6, "query_pre_attn_scalar": hd,
               "final_logit_softcapping": None, "attn_logit_softcapping": None,
               "tie_word_embeddings": True, "attention_bias": False, "pad_token_id": None}
    else:
        raise ValueError(f"unknown arch {arch!r}")
    cfg.update(overrides)
    if arch == "gemma3":
        pattern = cfg.get("sliding_window_pattern", 6)
        cfg.setdefault("layer_types", ["sliding_attention" if (i + 1) % pattern else "full_attention"
                                       for i in range(cfg["num_hidden_layers"])])
    return cfg


def head_dim_of(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def is_gemma(cfg):
    return cfg["model_type"] in ("gemma3_text", "gemma3")


# ---- weights -------------------------------------------------------------------------------------

def random_weights(cfg, seed=0):
    """{HF name: float32 ndarray [out, in]} with gains chosen so that attention is neither uniform
    nor one-hot and logits have a standard deviation of a few units."""
    rng = np.random.default_rng(seed)
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd, nh, nkv = head_dim_of(cfg), cfg["num_attention_heads"], cfg["num_key_value_heads"]
    gemma = is_gemma(cfg)

    def mat(out, inp, gain=1.0):
        return (rng.standard_normal((out, inp)) * gain / np.sqrt(inp)).astype(np.float32)

    def norm(n):  # HF convention: llama applies w, gemma applies (1 + w)
        return (rng.standard_normal(n) * 0.1 + (0.0 if gemma else 1.0)).astype(np.float32)

    w = {"model.embed_tokens.weight": mat(V, H, 3.0)}
    bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm(H)
        w[p + "self_attn.q_proj.weight"] = mat(nh * hd, H, 1.5)
        w[p + "self_attn.k_proj.weight"] = mat(nkv * hd, H, 1.5)
        w[p + "self_attn.v_proj.weight"] = mat(nkv * hd, H)
        w[p + "self_attn.o_proj.weight"] = mat(H, nh * hd)
        if bias:
            for n, rows in (("q", nh * hd), ("k", nkv * hd), ("v", nkv * hd)):
                w[p + f"self_attn.{n}_proj.bias"] = (rng.standard_normal(rows) * 0.2).astype(np.float32)
            if cfg["model_type"] != "qwen2":  # qwen2 has no o_proj bias
                w[p + "self_attn.o_proj.bias"] = (rng.standard_normal(H) * 0.2).astype(np.float32)
        w[p + "post_attention_layernorm.weight"] = norm(H)
        w[p + "mlp.gate_proj.weight"] = mat(I, H)
        w[p + "mlp.up_proj.weight"] = mat(I, H)
        w[p + "mlp.down_proj.weight"] = mat(H, I)
        if gemma:
            w[p + "self_attn.q_norm.weight"] = (rng.standard_normal(hd) * 0.1 + 0.5).astype(np.float32)
            w[p + "self_attn.k_norm.weight"] = (rng.standard_normal(hd) * 0.1 + 0.5).astype(np.float32)
            w[p + "pre_feedforward_layernorm.weight"] = norm(H)
            w[p + "post_feedforward_layernorm.weight"] = norm(H)
    w["model.norm.weight"] = norm(H)
    if not cfg.get("tie_word_embeddings", gemma):
        w["lm_head.weight"] = mat(V, H, 3.0)
    return w


# ---- safetensors ---------------------------------------------------------------------------------

def round_to(arr, dtype):
    """float32 ndarray rounded to F32/F16/BF16, returned as (float32 values, raw bytes-able array)."""
    a = np.ascontiguousarray(arr, dtype=np.float32)
    if dtype == "F32":
        return a, a
    if dtype == "F16":
        h = a.astype(np.float16)
        return h.astype(np.float32), h
    if dtype == "BF16":  # round to nearest even, as torch and ggml do (no NaNs here)
        u = a.view(np.uint32).astype(np.uint64)
        b = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
        return (b.astype(np.uint32) << 16).view(np.float32), b
    raise ValueError(f"dtype {dtype!r}")


def save_safetensors(path, tensors, dtype="F32"):
    """Write {name: float32 ndarray} as one safetensors file of `dtype`; returns the stored values."""
    header, blobs, stored, off = {"__metadata__": {"format": "pt"}}, [], {}, 0
    for name in sorted(tensors):
        vals, raw = round_to(tensors[name], dtype)
        stored[name] = vals
        b = raw.tobytes()
        header[name] = {"dtype": dtype, "shape": list(raw.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    return stored


TORCH_DTYPE_NAMES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def write_safetensors_checkpoint(path, cfg, weights, dtype="F32", sharded=False, tokenizer=True):
    """config.json + model.safetensors (or 2 shards + model.safetensors.index.json) [+ tokenizer
    files]. Returns {HF name: float32 ndarray} as stored (rounded to dtype)."""
    os.makedirs(path, exist_ok=True)
    cfg = dict(cfg, torch_dtype=TORCH_DTYPE_NAMES[dtype])
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    names = sorted(weights)
    if cfg.get("tie_word_embeddings", is_gemma(cfg)):
        names = [n for n in names if n != "lm_head.weight"]
    if not sharded:
        stored = save_safetensors(os.path.join(path, "model.safetensors"),
                                  {n: weights[n] for n in names}, dtype)
    else:
        stored, weight_map, half = {}, {}, (len(names) + 1) // 2
        for k, part in enumerate((names[:half], names[half:])):
            fname = f"model-{k + 1:05d}-of-00002.safetensors"
            stored.update(save_safetensors(os.path.join(path, fname),
                                           {n: weights[n] for n in part}, dtype))
            weight_map.update({n: fname for n in part})
        total = sum(round_to(weights[n], dtype)[1].nbytes for n in names)
        with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    if tokenizer:
        write_tokenizer_json(path, tiny_tokenizer(cfg["vocab_size"]) if tokenizer is True else tokenizer)
    return stored


# ---- tokenizer -----------------------------------------------------------------------------------

def bytes_to_unicode():
    """GPT-2's byte -> printable character table (byte-level BPE token spelling)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


SPECIAL_TOKENS = ["<s>", "</s>", "<|im_start|>", "<|im_end|>"]
HAND_MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a"), ("e", "r"),
               ("o", "n"), ("Ġ", "s"), ("r", "e"), ("a", "t"), ("Ġ", "c"), ("e", "n"),
               ("Ġ", "w"), ("o", "r"), ("i", "s"), ("Ġ", "i"), ("Ġ", "f"), ("a", "n"),
               ("Ġa", "n"), ("Ġan", "d"), ("Ġi", "s"), ("Ġc", "at"), ("Ġ", "d"), ("e", "s")]
CHAT_TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
                 "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def tiny_tokenizer(vocab_size=320):
    """A gpt2-style byte-level BPE vocabulary of exactly vocab_size tokens:
    ids 0-3 the specials <s> </s> <|im_start|> <|im_end|> (control), ids 4-259 the 256 bytes
    (id = 4 + byte), then merges (a hand-picked handful, then letter pairs) up to vocab_size.
    bos = <s> (0), eos = </s> (1), eot = <|im_end|> (3); no BOS is added on encode."""
    b2u = bytes_to_unicode()
    tokens = SPECIAL_TOKENS + [b2u[b] for b in range(256)]
    if vocab_size < len(tokens) + 1:
        raise ValueError(f"vocab_size {vocab_size} < {len(tokens) + 1}")
    letters = "etaoinshrdlucmfwypvbgk"
    extra = [("Ġ", c) for c in letters] + [(a, b) for a in letters for b in letters]
    merges, seen = [], set(tokens)
    for a, b in HAND_MERGES + extra:
        if len(tokens) == vocab_size:
            break
        if a + b not in seen:
            merges.append((a, b))
            tokens.append(a + b)
            seen.add(a + b)
    if len(tokens) < vocab_size:
        raise ValueError(f"vocab_size {vocab_size} too large for the tiny tokenizer")
    return {"tokens": tokens, "types": [3] * len(SPECIAL_TOKENS) + [1] * (len(tokens) - 4),
            "merges": merges, "bos_id": 0, "eos_id": 1, "eot_id": 3, "add_bos": False,
            "chat_template": CHAT_TEMPLATE}


def write_tokenizer_json(path, tok=None):
    """tokenizer.json + tokenizer_config.json equivalent to the GGUF tokenizer metadata."""
    tok = tok or tiny_tokenizer()
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, t in enumerate(tok["tokens"])
             if tok["types"][i] == 3]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": True}
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
          "normalizer": None, "pre_tokenizer": byte_level,
          "post_processor": dict(byte_level, trim_offsets=False), "decoder": byte_level,
          "model": {"type": "BPE", "dropout": None, "unk_token": None,
                    "continuing_subword_prefix": None, "end_of_word_suffix": None,
                    "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                    "vocab": {t: i for i, t in enumerate(tok["tokens"])},
                    "merges": [list(m) for m in tok["merges"]]}}
    if tok["add_bos"]:
        bos = tok["tokens"][tok["bos_id"]]
        tj["post_processor"] = {"type": "TemplateProcessing",
                                "single": [{"SpecialToken": {"id": bos, "type_id": 0}},
                                           {"Sequence": {"id": "A", "type_id": 0}}],
                                "pair": [{"SpecialToken": {"id": bos, "type_id": 0}},
                                         {"Sequence": {"id": "A", "type_id": 0}},
                                         {"Sequence": {"id": "B", "type_id": 1}}],
                                "special_tokens": {bos: {"id": bos, "ids": [tok["bos_id"]],
                                                         "tokens": [bos]}}}
    with open(os.path.join(path, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, indent=1)
    tc = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": tok["tokens"][tok["bos_id"]],
          "eos_token": tok["tokens"][tok["eos_id"]], "add_bos_token": tok["add_bos"],
          "add_eos_token": False, "clean_up_tokenization_spaces": False,
          "model_max_length": 2048, "chat_template": tok["chat_template"]}
    with open(os.path.join(path, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tc, f, ensure_ascii=False, indent=1)


# ---- K-quant writers (gguf-py only dequantizes these) -------------------------------------------

QK_K = 256


def _f16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16)


def quantize_q4_k(x):
    """[rows, n*256] float32 -> uint8 [rows, n*144] in ggml's block_q4_K layout:
    f16 d, f16 dmin, 12 bytes of packed 6-bit (scale, min) for 8 sub-blocks of 32, 128 bytes of
    4-bit quants; value = d*sc*q - dmin*m. Scales: simple range fit, not ggml's search."""
    rows = x.shape[0]
    b = x.reshape(-1, 8, 32).astype(np.float32)                                # [nb, 8, 32]
    mn = np.minimum(b.min(-1), 0.0)
    mx = b.max(-1)
    m_f = -mn                                                                   # >= 0
    dmin = _f16(m_f.max(-1) / 63)                                               # [nb]
    dmin32 = dmin.astype(np.float32)
    m_q = np.where(dmin32[:, None] > 0, np.rint(m_f / np.where(dmin32 > 0, dmin32, 1)[:, None]), 0)
    m_q = np.clip(m_q, 0, 63)
    em = dmin32[:, None] * m_q                                                  # offset used
    need = (mx + em) / 15                                                       # scale to cover
    d = _f16(need.max(-1) / 63)
    d32 = d.astype(np.float32)
    sc = np.clip(np.ceil(need / np.where(d32 > 0, d32, 1)[:, None] - 1e-6), 0, 63)
    sc = np.where(d32[:, None] > 0, sc, 0)
    es = d32[:, None] * sc
    q = np.where(es[..., None] > 0, np.rint((b + em[..., None]) / np.where(es > 0, es, 1)[..., None]), 0)
    q = np.clip(q, 0, 15).astype(np.uint8).reshape(-1, 4, 2, 32)               # [nb, chunk, lo/hi, 32]
    qs = (q[:, :, 0] | (q[:, :, 1] << 4)).reshape(-1, 128)
    sc, m_q = sc.astype(np.uint8), m_q.astype(np.uint8)
    scales = np.empty((b.shape[0], 12), np.uint8)
    scales[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    scales[:, 4:8] = m_q[:, 0:4] | ((m_q[:, 4:8] >> 4) << 6)
    scales[:, 8:12] = (sc[:, 4:8] & 0xF) | ((m_q[:, 4:8] & 0xF) << 4)
    out = np.concatenate([d.view(np.uint8).reshape(-1, 2), dmin.view(np.uint8).reshape(-1, 2),
                          scales, qs], axis=1)
    return out.reshape(rows, -1)


def quantize_q6_k(x):
    """[rows, n*256] float32 -> uint8 [rows, n*210] in ggml's block_q6_K layout:
    128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 int8 sub-block scales, f16 d;
    value = d*sc*(q - 32) for 16 sub-blocks of 16."""
    rows = x.shape[0]
    b = x.reshape(-1, 16, 16).astype(np.float32)                               # [nb, 16, 16]
    idx = np.abs(b).argmax(-1)
    peak = np.take_along_axis(b, idx[..., None], -1)[..., 0]                    # signed extreme
    s_f = -peak / 32                                                            # peak -> q = -32
    d = _f16(np.abs(s_f).max(-1) / 127)
    d32 = d.astype(np.float32)
    sc = np.clip(np.rint(s_f / np.where(d32 > 0, d32, 1)[:, None]), -127, 127)
    es = d32[:, None] * sc
    q = np.where(es[..., None] != 0, np.rint(b / np.where(es != 0, es, 1)[..., None]), 0)
    q = (np.clip(q, -32, 31) + 32).astype(np.uint8).reshape(-1, 2, 4, 32)      # [nb, half, g, l]
    ql = np.concatenate([(q[:, :, 0] & 0xF) | ((q[:, :, 2] & 0xF) << 4),
                         (q[:, :, 1] & 0xF) | ((q[:, :, 3] & 0xF) << 4)], axis=2)  # [nb, 2, 64]
    qh = (q[:, :, 0] >> 4) | ((q[:, :, 1] >> 4) << 2) | ((q[:, :, 2] >> 4) << 4) | ((q[:, :, 3] >> 4) << 6)
    out = np.concatenate([ql.reshape(-1, 128), qh.reshape(-1, 64),
                          sc.astype(np.int8).view(np.uint8), d.view(np.uint8).reshape(-1, 2)], axis=1)
    return out.reshape(rows, -1)


# ---- GGUF ----------------------------------------------------------------------------------------

GGUF_ARCH = {"llama": "llama", "qwen2": "qwen2", "gemma3_text": "gemma3"}
FALLBACK = {"Q4_K": "Q5_0", "Q6_K": "Q8_0"}  # llama-quantize's choice for rows not % 256
FILE_TYPES = {"F32": "ALL_F32", "F16": "MOSTLY_F16", "BF16": "MOSTLY_BF16", "Q8_0": "MOSTLY_Q8_0",
              "Q4_0": "MOSTLY_Q4_0", "Q4_1": "MOSTLY_Q4_1", "Q5_0": "MOSTLY_Q5_0",
              "Q5_1": "MOSTLY_Q5_1", "Q4_K": "MOSTLY_Q4_K_S", "Q6_K": "MOSTLY_Q6_K"}


def permute_qk(w, n_head):
    """convert_hf_to_gguf's LlamaModel.permute: rotate-half rows -> adjacent-pair rows, per head.
    (Pass n_head_kv for K.) Works on [rows, cols] weights and [rows] biases."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_qk(w, n_head):
    """Inverse of permute_qk (what transformers does when it loads a llama GGUF)."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_tensor_names(cfg, hf_names=None):
    """{HF name: GGUF name} via gguf's TensorNameMap (what the converter uses)."""
    import gguf
    arch = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2,
            "gemma3_text": gguf.MODEL_ARCH.GEMMA3}[cfg["model_type"]]
    tmap = gguf.get_tensor_name_map(arch, cfg["num_hidden_layers"])
    names = {}
    for hf in hf_names if hf_names is not None else random_weights(cfg):
        g = tmap.get_name(hf, try_suffixes=(".weight", ".bias"))
        if g is None:
            raise KeyError(f"no GGUF name for {hf}")
        names[hf] = g
    return names


def _quantize(arr, qtype_name):
    """-> (raw array to store, GGMLQuantizationType, dequantized float32 of arr's shape)."""
    import gguf
    from gguf.quants import dequantize, quantize
    qt = gguf.GGMLQuantizationType[qtype_name]
    if qtype_name == "Q4_K":
        raw = quantize_q4_k(arr)
    elif qtype_name == "Q6_K":
        raw = quantize_q6_k(arr)
    else:
        raw = quantize(arr, qt)
    deq = dequantize(raw, qt).reshape(arr.shape).astype(np.float32)
    return raw, qt, deq


def write_gguf(path, cfg, weights, qtype="F32", tokenizer=True, overrides=None, fallback=False,
               name=None):
    """Write a GGUF as llama.cpp's converter (+ llama-quantize) would. Returns the weights as
    stored, dequantized, back in HF names and layout (un-permuted, Gemma norms minus 1).

    qtype: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q6_K for every 2-D tensor;
    overrides: {GGUF tensor name: qtype} exceptions; tokenizer: True (tiny_tokenizer), a
    tiny_tokenizer()-style dict, or False (no tokenizer metadata)."""
    import gguf
    mt = cfg["model_type"]
    arch = GGUF_ARCH[mt]
    gemma = is_gemma(cfg)
    nh, nkv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], head_dim_of(cfg)
    names = gguf_tensor_names(cfg, weights)
    tied = cfg.get("tie_word_embeddings", gemma)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(name or f"tiny-{arch}")
    w.add_file_type(getattr(gguf.LlamaFileType, FILE_TYPES[qtype]))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg["rope_theta"])
    if "head_dim" in cfg:
        w.add_key_length(hd)
        w.add_value_length(hd)
    if mt == "llama":
        w.add_vocab_size(cfg["vocab_size"])
        w.add_rope_dimension_count(hd)
    scaling = cfg.get("rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(scaling["factor"])
    elif kind == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_rope_freqs(cfg))
    elif kind not in (None, "default"):
        raise NotImplementedError(f"rope scaling {kind!r}")
    if gemma:
        if cfg.get("final_logit_softcapping"):
            w.add_final_logit_softcapping(cfg["final_logit_softcapping"])
        if cfg.get("sliding_window_pattern") != 1:
            w.add_sliding_window(cfg["sliding_window"])
    if tokenizer:
        add_tokenizer(w, tiny_tokenizer(cfg["vocab_size"]) if tokenizer is True else tokenizer)

    deq = {}
    for hf in sorted(weights, key=_tensor_order):
        if hf == "lm_head.weight" and tied:
            continue
        g = names[hf]
        arr = np.ascontiguousarray(weights[hf], dtype=np.float32)
        if gemma and hf.endswith("norm.weight"):
            arr = arr + np.float32(1.0)
        permuted = mt == "llama" and (".q_proj." in hf or ".k_proj." in hf)
        n_rot = nh if ".q_proj." in hf else nkv
        if permuted:
            arr = permute_qk(arr, n_rot)
        if arr.ndim == 1:
            raw, d = arr, arr.copy()
            w.add_tensor(g, raw)
        else:
            qn = (overrides or {}).get(g, qtype)
            if qn in FALLBACK and arr.shape[1] % QK_K:
                if not fallback:
                    raise ValueError(f"{g}: row length {arr.shape[1]} is not a multiple of 256 "
                                     f"for {qn} (use hidden=256, intermediate=512 or fallback=True)")
                qn = FALLBACK[qn]
            raw, qt, d = _quantize(arr, qn)
            w.add_tensor(g, raw, raw_dtype=qt)
        if permuted:
            d = unpermute_qk(d, n_rot)
        if gemma and hf.endswith("norm.weight"):
            d = d - np.float32(1.0)  # exact (Sterbenz): 1 + d reproduces the stored value
        deq[hf] = d
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return deq


def _tensor_order(hf):
    """Converter order: embeddings, blocks in order, final norm, output."""
    if hf.startswith("model.layers."):
        return (1, int(hf.split(".")[2]), hf)
    return (0 if "embed" in hf else 2, 0, hf)


def llama3_rope_freqs(cfg):
    """The converter's rope_freqs tensor: per-frequency divisors (1, factor, or smoothed)."""
    s, hd = cfg["rope_scaling"], head_dim_of(cfg)
    freqs = 1.0 / (cfg["rope_theta"] ** (np.arange(0, hd, 2, dtype=np.float32) / hd))
    old = s.get("original_max_position_embeddings", 8192)
    lo, hi, f = s.get("low_freq_factor", 1.0), s.get("high_freq_factor", 4.0), s.get("factor", 8.0)
    out = []
    for fr in freqs:
        wavelen = 2 * np.pi / fr
        if wavelen < old / hi:
            out.append(1.0)
        elif wavelen > old / lo:
            out.append(f)
        else:
            smooth = (old / wavelen - lo) / (hi - lo)
            out.append(1 / ((1 - smooth) / f + smooth))
    return np.asarray(out, dtype=np.float32)


def add_tokenizer(w, tok):
    """tokenizer.ggml.* keys as the converter's _set_vocab_gpt2 writes them."""
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt2")
    w.add_token_list(tok["tokens"])
    w.add_token_types(tok["types"])
    w.add_token_merges([f"{a} {b}" for a, b in tok["merges"]])
    w.add_bos_token_id(tok["bos_id"])
    w.add_eos_token_id(tok["eos_id"])
    if tok.get("eot_id") is not None:
        w.add_eot_token_id(tok["eot_id"])
    w.add_add_bos_token(tok["add_bos"])
    w.add_chat_template(tok["chat_template"])


def write_kernel_model(path, arch, qtype, seed=3):
    """A tiny model whose every 2-D weight has qtype (K-quants: hidden 256, intermediate 512 and,
    for gemma3, head_dim 64, so rows are whole 256-blocks). Returns its config."""
    kw = dict(hidden=256, intermediate=512) if qtype.endswith("_K") else {}
    if qtype.endswith("_K") and arch == "gemma3":
        kw["head_dim"] = 64
    cfg = tiny_config(arch, **kw)
    write_gguf(path, cfg, random_weights(cfg, seed=seed), qtype=qtype)
    return cfg
