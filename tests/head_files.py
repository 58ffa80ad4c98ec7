"""Random draft-head GGUFs (EAGLE, Medusa) for a given target, in the layout of
cpp/src/model/eagle_head.h and medusa_head.h, and a numpy reference of each head's math. The heads
that `fastspec distill` trains are tested in tests/test_distill.py; these test the C++ side."""
import numpy as np

from fastspec import _core
from test_reference import make_cfg

# The tiny llama target of the head tests (test_draft_heads.py, test_distill.py) and a head
# vocabulary subset of it (ascending ids).
CFG = make_cfg("llama", {"vocab": 320})
D, NH, NKV = CFG["hidden_size"], CFG["num_attention_heads"], CFG["num_key_value_heads"]
HD = D // NH
VOCAB_IDS = sorted(np.random.default_rng(5).choice(320, 200, replace=False).tolist())


def _common(w, kind, target, vocab_ids, feature_layer, feature_layers=None):
    sha, vh = _core.target_tie(str(target))
    w.add_string("fastspec.head.kind", kind)
    w.add_string("fastspec.head.target_sha256", sha)
    w.add_string("fastspec.head.vocab_hash", vh)
    w.add_string("fastspec.head.target_name", str(target).rsplit("/", 1)[-1])
    w.add_uint32("fastspec.head.feature_layer", int(feature_layer))
    if feature_layers is not None:
        w.add_array("fastspec.head.feature_layers", [int(x) for x in feature_layers])
    w.add_array("fastspec.head.vocab_ids", [int(i) for i in vocab_ids])


def eagle_weights(d, n_heads, n_kv, hd, ff, v_sub, seed=0, w_sub=None, n_feat=1):
    rng = np.random.default_rng(seed)

    def mat(o, i, gain=1.0):
        return (rng.standard_normal((o, i)) * gain / np.sqrt(i)).astype(np.float32)

    extra = {"fastspec_eagle.feat.weight": mat(d, n_feat * d)} if n_feat > 1 else {}
    return {
        **extra,
        "token_embd.weight": mat(v_sub, d, 4.0) if w_sub is None else np.asarray(w_sub, np.float32),
        "output_norm.weight": (1 + 0.1 * rng.standard_normal(d)).astype(np.float32),
        "blk.0.attn_norm.weight": (1 + 0.1 * rng.standard_normal(d)).astype(np.float32),
        "blk.0.ffn_norm.weight": (1 + 0.1 * rng.standard_normal(d)).astype(np.float32),
        "blk.0.attn_q.weight": mat(n_heads * hd, d, 2.0), "blk.0.attn_k.weight": mat(n_kv * hd, d, 2.0),
        "blk.0.attn_v.weight": mat(n_kv * hd, d), "blk.0.attn_output.weight": mat(d, n_heads * hd),
        "blk.0.ffn_gate.weight": mat(ff, d), "blk.0.ffn_up.weight": mat(ff, d), "blk.0.ffn_down.weight": mat(d, ff),
        "fastspec_eagle.fc.weight": mat(d, 2 * d), "fastspec_eagle.fc.bias": (0.1 * rng.standard_normal(d)).astype(np.float32),
    }


def write_eagle_head(path, target, cfg, vocab_ids, seed=0, feature_layer=None, weights=None, eps=1e-5, theta=10000.0,
                     feature_layers=None):
    """An EAGLE head for target (a tiny model of HF config cfg); returns its weights. feature_layers:
    an EAGLE-3 head's target states (written as metadata; with several, a random W_feat)."""
    import gguf
    d, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or d // nh
    ff = cfg["intermediate_size"]
    wts = weights or eagle_weights(d, nh, nkv, hd, ff, len(vocab_ids), seed, n_feat=len(feature_layers or [0]))
    a = "fastspec-eagle"
    w = gguf.GGUFWriter(str(path), a)
    w.add_string("general.name", "test EAGLE head")
    for k, v in {"block_count": 1, "embedding_length": d, "feed_forward_length": ff, "attention.head_count": nh,
                 "attention.head_count_kv": nkv, "attention.key_length": hd, "attention.value_length": hd,
                 "context_length": 256, "vocab_size": len(vocab_ids)}.items():
        w.add_uint32(f"{a}.{k}", v)
    w.add_float32(f"{a}.rope.freq_base", theta)
    w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", eps)
    last = cfg["num_hidden_layers"] if feature_layer is None else feature_layer
    _common(w, "eagle", target, vocab_ids, last, feature_layers)
    for name, t in wts.items():
        w.add_tensor(name, t)
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
    return wts


def write_medusa_head(path, target, cfg, vocab_ids, K=3, seed=0):
    import gguf
    d = cfg["hidden_size"]
    rng = np.random.default_rng(seed)
    wts = {"token_embd.weight": (rng.standard_normal((len(vocab_ids), d)) * 4 / np.sqrt(d)).astype(np.float32)}
    for i in range(K):
        wts[f"fastspec_medusa.{i}.weight"] = (rng.standard_normal((d, d)) / np.sqrt(d)).astype(np.float32)
        wts[f"fastspec_medusa.{i}.bias"] = (0.1 * rng.standard_normal(d)).astype(np.float32)
    a = "fastspec-medusa"
    w = gguf.GGUFWriter(str(path), a)
    for k, v in {"embedding_length": d, "vocab_size": len(vocab_ids), "head_count": K, "context_length": 256}.items():
        w.add_uint32(f"{a}.{k}", v)
    _common(w, "medusa", target, vocab_ids, cfg["num_hidden_layers"])
    for name, t in wts.items():
        w.add_tensor(name, t)
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
    return wts


# ---- numpy references ------------------------------------------------------------------------------

def _rms(x, w, eps):
    return x / np.sqrt(np.mean(x.astype(np.float64) ** 2, -1, keepdims=True) + eps) * w


def _rope(x, pos, theta):  # x [T, h, hd], rotate-half
    hd = x.shape[-1]
    inv = theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    ang = pos[:, None] * inv[None, :]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], -1)


def eagle_reduce(W, states):
    """F [T, d] of an EAGLE-3 head from the target's states [T, n_feat * d] (F itself for n_feat 1)."""
    Wf = W.get("fastspec_eagle.feat.weight")
    return states if Wf is None else states.astype(np.float64) @ Wf.T


def eagle_ref(W, emb, feat, nh, nkv, hd, eps=1e-5, theta=10000.0):
    """(logits [T, V_sub], g [T, d]) of rows 0..T-1 (float64); feat: F_t (eagle_reduce's)."""
    T = emb.shape[0]
    x = np.concatenate([emb, feat], 1).astype(np.float64) @ W["fastspec_eagle.fc.weight"].T + W["fastspec_eagle.fc.bias"]
    h = _rms(x, W["blk.0.attn_norm.weight"], eps)
    pos = np.arange(T, dtype=np.float64)
    q = _rope((h @ W["blk.0.attn_q.weight"].T).reshape(T, nh, hd), pos, theta)
    k = _rope((h @ W["blk.0.attn_k.weight"].T).reshape(T, nkv, hd), pos, theta)
    v = (h @ W["blk.0.attn_v.weight"].T).reshape(T, nkv, hd)
    g = nh // nkv
    out = np.zeros((T, nh, hd))
    mask = np.tril(np.ones((T, T), bool))
    for i in range(nh):
        s = q[:, i] @ k[:, i // g].T / np.sqrt(hd)
        s = np.where(mask, s, -np.inf)
        p = np.exp(s - s.max(1, keepdims=True))
        out[:, i] = (p / p.sum(1, keepdims=True)) @ v[:, i // g]
    x = x + out.reshape(T, nh * hd) @ W["blk.0.attn_output.weight"].T
    h2 = _rms(x, W["blk.0.ffn_norm.weight"], eps)
    a = h2 @ W["blk.0.ffn_gate.weight"].T
    y = x + ((a / (1 + np.exp(-a))) * (h2 @ W["blk.0.ffn_up.weight"].T)) @ W["blk.0.ffn_down.weight"].T
    gg = _rms(y, W["output_norm.weight"], eps)
    return gg @ W["token_embd.weight"].T, gg


def medusa_ref(W, feat, K):
    """logits [T, K, V_sub]."""
    out = []
    for i in range(K):
        u = feat.astype(np.float64) @ W[f"fastspec_medusa.{i}.weight"].T + W[f"fastspec_medusa.{i}.bias"]
        out.append((feat + u / (1 + np.exp(-u))) @ W["token_embd.weight"].T)
    return np.stack(out, 1)
