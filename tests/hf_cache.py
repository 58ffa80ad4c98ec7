"""Hugging Face transformers copies of the real GGUF models, for reference comparisons.

transformers needs ~30 s to dequantize a GGUF; the float32 result is saved once under
~/.cache/fastspec/hf/ (see DESIGN.md) and reloaded from there (file-locked for parallel workers).
"""
import fcntl
import os

from fastspec import models


def hf_float32_model(name: str):
    """(model, tokenizer) of transformers for a known fastspec model name, float32, eval mode."""
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(1)
    gguf_path = models.path(name, quiet=True)
    cache = models.cache_dir() / "hf" / f"{name}-f32"
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(str(cache) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cache / "config.json").exists():
            d, f = os.path.split(gguf_path)
            model = transformers.AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
            tok = transformers.AutoTokenizer.from_pretrained(d, gguf_file=f)
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(str(cache))
            tok.save_pretrained(str(cache))
    model = transformers.AutoModelForCausalLM.from_pretrained(str(cache), torch_dtype=torch.float32).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(cache))
    return model, tok
