"""Pure-PyTorch reference forward for Gemma 3 text models (HF model_type "gemma3_text").

Same API as RefLlama: RefGemma3(weights, cfg).forward(tokens, start) -> logits [T, vocab];
truncate(n). Weights use HF names and HF's norm convention (the stored norm weight w is applied
as (1 + w); GGUF files store 1 + w).

Differences from llama: embeddings scaled by sqrt(hidden_size), rounded to float32 first as HF
does (pass embed_scale_dtype=torch.bfloat16 to mimic HF running a bf16 model); (1 + w) RMSNorm;
RMSNorm on q and k per head before RoPE; four norms per layer (input, post-attention,
pre-feedforward, post-feedforward); gelu-tanh gated MLP; attention scale
query_pre_attn_scalar ** -0.5; "sliding_attention" layers see only keys with
q_pos - k_pos < sliding_window and use the local RoPE base (10000), "full_attention" layers the
global rope_theta (and rope scaling, if any); optional attention / final logit softcaps.
Layer types: cfg["layer_types"], else every sliding_window_pattern-th layer (default 6) is global.
"""
import torch
import torch.nn.functional as F

from .llama import CachedModel, attention, rms_norm, rope, rope_inv_freq, rope_params, to_tensors


def gemma3_layer_types(cfg):
    if cfg.get("layer_types"):
        return list(cfg["layer_types"])
    pattern = cfg.get("sliding_window_pattern", 6)
    return ["sliding_attention" if (i + 1) % pattern else "full_attention"
            for i in range(cfg["num_hidden_layers"])]


class RefGemma3(CachedModel):
    def __init__(self, weights, cfg, dtype=torch.float32, embed_scale_dtype=torch.float32):
        self.cfg, self.dtype, self.w = cfg, dtype, to_tensors(weights, dtype)
        self.n_layers = cfg["num_hidden_layers"]
        self.n_head, self.n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.head_dim = cfg.get("head_dim") or cfg["hidden_size"] // self.n_head
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.layer_types = gemma3_layer_types(cfg)
        self.window = cfg["sliding_window"]
        self.scale = cfg.get("query_pre_attn_scalar", self.head_dim) ** -0.5
        self.attn_cap = cfg.get("attn_logit_softcapping")
        self.final_cap = cfg.get("final_logit_softcapping")
        max_pos = cfg.get("max_position_embeddings", 131072)
        self.inv_freq = {}
        for kind in ("global", "local"):
            theta, scaling = rope_params(cfg, kind)
            self.inv_freq[kind] = rope_inv_freq(theta, self.head_dim, scaling, max_pos, dtype)
        self.embed_scale = torch.tensor(cfg["hidden_size"] ** 0.5, dtype=torch.float32) \
            .to(embed_scale_dtype).to(dtype)
        tied = cfg.get("tie_word_embeddings", True)  # Gemma3TextConfig's default is tied
        self.out = self.w["model.embed_tokens.weight" if tied else "lm_head.weight"]
        self.reset()

    def norm(self, x, name):
        return rms_norm(x, 1.0 + self.w[name + ".weight"], self.eps)

    def lin(self, x, name):
        return F.linear(x, self.w[name + ".weight"], self.w.get(name + ".bias"))

    def _forward(self, toks, start):
        w, hd, T = self.w, self.head_dim, len(toks)
        pos = torch.arange(start, start + T)
        x = w["model.embed_tokens.weight"][toks] * self.embed_scale                # [T, n_embd]
        for i in range(self.n_layers):
            p, local = f"model.layers.{i}.", self.layer_types[i] == "sliding_attention"
            inv_freq = self.inv_freq["local" if local else "global"]
            h = self.norm(x, p + "input_layernorm")
            q = self.lin(h, p + "self_attn.q_proj").view(T, self.n_head, hd).transpose(0, 1)
            k = self.lin(h, p + "self_attn.k_proj").view(T, self.n_kv, hd).transpose(0, 1)
            v = self.lin(h, p + "self_attn.v_proj").view(T, self.n_kv, hd).transpose(0, 1)
            q, k = self.norm(q, p + "self_attn.q_norm"), self.norm(k, p + "self_attn.k_norm")
            q, k = rope(q, pos, inv_freq), rope(k, pos, inv_freq)
            k, v = self.cache.append(i, k, v)                                      # [Hkv, S, hd]
            a = attention(q, k, v, pos, torch.arange(k.shape[1]), self.scale,
                          window=self.window if local else None, softcap=self.attn_cap)
            a = self.lin(a.transpose(0, 1).reshape(T, -1), p + "self_attn.o_proj")
            x = x + self.norm(a, p + "post_attention_layernorm")
            h = self.norm(x, p + "pre_feedforward_layernorm")
            g = F.gelu(self.lin(h, p + "mlp.gate_proj"), approximate="tanh")
            g = g * self.lin(h, p + "mlp.up_proj")
            x = x + self.norm(self.lin(g, p + "mlp.down_proj"), p + "post_feedforward_layernorm")
        logits = self.norm(x, "model.norm") @ self.out.T                             # [T, vocab]
        if self.final_cap is not None:
            logits = torch.tanh(logits / self.final_cap) * self.final_cap
        return logits
