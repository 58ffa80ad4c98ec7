"""Test-side ground truth: pure-PyTorch model forwards and the sampling spec.

    from reference import reference_model, RefLlama, RefGemma3
    ref = reference_model(weights, cfg)        # picks the class from cfg["model_type"]
    logits = ref.forward(tokens, start=0)      # torch.Tensor [T, vocab]; chain further calls
    ref.truncate(n)                            # roll the KV cache back

    from reference.sampling import processed_probs, greedy

(pytest puts tests/ on sys.path, so test modules import `reference` and `tiny_models` directly.)
"""
import json
import os

import torch

from .gemma3 import RefGemma3
from .llama import RefLlama

LLAMA_TYPES = ("llama", "qwen2", "mistral")
GEMMA3_TYPES = ("gemma3_text", "gemma3")


def reference_model(weights, cfg, dtype=torch.float32, **kwargs):
    """weights: dict of HF names -> arrays/tensors; cfg: HF config.json dict."""
    mt = cfg.get("model_type", "llama")
    if mt in LLAMA_TYPES:
        return RefLlama(weights, cfg, dtype=dtype, **kwargs)
    if mt in GEMMA3_TYPES:
        return RefGemma3(weights, cfg.get("text_config", cfg), dtype=dtype, **kwargs)
    raise NotImplementedError(f"no reference for model_type {mt!r}")


def load_checkpoint(path):
    """(weights, cfg) from an HF directory: config.json + model.safetensors or sharded index."""
    from safetensors.torch import load_file
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    weights = {}
    for name in files:
        weights.update(load_file(os.path.join(path, name)))
    return weights, cfg


def reference_from_dir(path, dtype=torch.float32, **kwargs):
    weights, cfg = load_checkpoint(path)
    return reference_model(weights, cfg, dtype=dtype, **kwargs)


__all__ = ["RefLlama", "RefGemma3", "reference_model", "load_checkpoint", "reference_from_dir"]
