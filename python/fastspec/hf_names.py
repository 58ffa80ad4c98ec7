"""Tensor names: GGUF (llama.cpp) -> Hugging Face transformers, for the families the engine runs.

The same pairs the C++ loader binds (cpp/src/model/transformer.cpp): `blk.N.attn_q.weight` <->
`model.layers.N.self_attn.q_proj.weight`, and so on. `ffn_norm` is llama's
post_attention_layernorm but gemma3's pre_feedforward_layernorm (gemma3's post_attention_norm is
the HF post_attention_layernorm).
"""
from __future__ import annotations

import re
from typing import Optional

_TOP = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}

_LAYER_COMMON = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm",
}
_LAYER = {
    "llama": dict(_LAYER_COMMON, ffn_norm="post_attention_layernorm"),
    "gemma3": dict(_LAYER_COMMON, ffn_norm="pre_feedforward_layernorm", attn_q_norm="self_attn.q_norm",
                   attn_k_norm="self_attn.k_norm", post_attention_norm="post_attention_layernorm",
                   post_ffw_norm="post_feedforward_layernorm"),
}

_BLK = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$")
_TOP_RE = re.compile(r"^([a-z_]+)\.(weight|bias)$")

# The linear layers of one decoder layer, in HF names (what AWQ quantizes).
LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def hf_name(gguf_name: str, family: str) -> Optional[str]:
    """The HF name of a GGUF tensor, or None when it has none (e.g. rope_freqs.weight)."""
    if family not in _LAYER:
        raise ValueError(f"family {family!r}: no tensor names known (supported: {', '.join(_LAYER)})")
    m = _BLK.match(gguf_name)
    if m:
        part = _LAYER[family].get(m.group(2))
        return None if part is None else f"model.layers.{m.group(1)}.{part}.{m.group(3)}"
    m = _TOP_RE.match(gguf_name)
    if m and m.group(1) in _TOP:
        return f"{_TOP[m.group(1)]}.{m.group(2)}"
    return None
