"""A Hugging Face config.json dict from a loaded model's ModelConfig (what `fastspec export` writes).

Field names are the classic ones (rope_theta, rope_scaling, rope_local_base_freq,
sliding_window_pattern): what checkpoints on the Hub carry, read by transformers 4 and 5 alike and
by fastspec's own config_hf.cpp. model_type: llama (llama, smollm and mistral GGUFs), qwen2,
gemma3_text. Rope scaling: linear is written; llama-3 scaling stored as a `rope_freqs.weight`
divisor tensor (what llama.cpp's converter leaves) has no exact config.json form and is refused.
"""
from __future__ import annotations

from typing import Optional

_MODEL_TYPES = {"llama": "llama", "smollm": "llama", "mistral": "llama", "qwen2": "qwen2", "gemma3": "gemma3_text"}
_ARCH_CLASS = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "gemma3_text": "Gemma3ForCausalLM"}
TORCH_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def _int_if_whole(x):
    return int(x) if float(x).is_integer() else x  # transformers' Gemma3 config wants an int here


def model_type_of(cfg, where: str) -> str:
    mt = _MODEL_TYPES.get(cfg.architecture)
    if mt is None:
        raise ValueError(f"{where}: architecture {cfg.architecture!r} cannot be exported "
                         f"(supported: {', '.join(sorted(_MODEL_TYPES))})")
    return mt


def hf_config(cfg, metadata: dict, dtype: str, where: str, *, has_bias: bool = False,
              has_rope_freqs: bool = False) -> dict:
    """config.json for ModelConfig `cfg` (fastspec.inspect(...).config) of the file `where`."""
    mt = model_type_of(cfg, where)
    if has_rope_freqs:
        raise ValueError(f"{where}: tensor 'rope_freqs.weight' (llama-3 rope scaling baked into per-frequency "
                         "divisors) has no exact config.json form; export supports unscaled and linear rope")
    bos: Optional[int] = metadata.get("tokenizer.ggml.bos_token_id")
    eos: Optional[int] = metadata.get("tokenizer.ggml.eos_token_id")
    out = {
        "architectures": [_ARCH_CLASS[mt]], "model_type": mt,
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.n_embd, "intermediate_size": cfg.n_ff,
        "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads, "head_dim": cfg.head_dim,
        "max_position_embeddings": cfg.context_length, "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta, "rope_scaling": None,
        "tie_word_embeddings": bool(cfg.tied_embeddings), "torch_dtype": TORCH_DTYPES[dtype],
        "bos_token_id": bos, "eos_token_id": eos,
    }
    rs = cfg.rope_scaling
    if rs["type"] == "linear":
        out["rope_scaling"] = {"rope_type": "linear", "factor": rs["factor"]}
    elif rs["type"]:
        raise ValueError(f"{where}: rope scaling {rs['type']!r} cannot be exported (supported: none, linear)")
    if cfg.rope_dim != cfg.head_dim:
        out["partial_rotary_factor"] = cfg.rope_dim / cfg.head_dim
    if mt == "llama":
        out.update(hidden_act="silu", attention_bias=bool(has_bias), mlp_bias=False)
    elif mt == "qwen2":
        out.update(hidden_act="silu", use_sliding_window=False, sliding_window=None,
                   max_window_layers=cfg.n_layers)
    else:  # gemma3_text
        pattern = cfg.sliding_window_pattern or 6
        out.update(hidden_activation="gelu_pytorch_tanh", attention_bias=False,
                   query_pre_attn_scalar=_int_if_whole(cfg.query_pre_attn_scalar or cfg.head_dim),
                   rope_local_base_freq=cfg.rope_local_theta or 10000.0,
                   sliding_window=cfg.sliding_window or None, sliding_window_pattern=pattern,
                   layer_types=["sliding_attention" if cfg.sliding_window and (i + 1) % pattern else "full_attention"
                                for i in range(cfg.n_layers)],
                   final_logit_softcapping=cfg.final_logit_softcap or None,
                   attn_logit_softcapping=cfg.attn_logit_softcap or None)
    return out
