"""Writing a trained head as GGUF in the layout the core reads (cpp/src/model/eagle_head.h,
medusa_head.h; tests/head_files.py writes random heads the same way):
    general.architecture      fastspec-eagle | fastspec-medusa
    <arch>.*                  the llama keys of a 1-layer model (EAGLE) / embedding_length,
                              vocab_size, head_count (Medusa)
    fastspec.head.kind, target_sha256, vocab_hash, target_name, feature_layer, vocab_ids
                              the tie to the target (the core refuses another target)
    fastspec.head.feature_layers   an EAGLE-3 head's states, low to high (only when several)
    fastspec.head.train_tokens, train_seconds, train_loss, train_steps   how it was distilled
Matrices in f16 / q8_0 / f32; norms and biases always f32."""
from __future__ import annotations

import os
from typing import Dict, Sequence

import numpy as np

from .. import _core

DTYPES = ("f16", "q8_0", "f32")


def _store(w, name: str, a: np.ndarray, dtype: str) -> None:
    import gguf
    from gguf.quants import quantize
    a = np.ascontiguousarray(a, np.float32)
    if a.ndim == 1 or dtype == "f32":
        w.add_tensor(name, a)
    elif dtype == "f16":
        w.add_tensor(name, a.astype(np.float16))
    elif dtype == "q8_0" and a.shape[-1] % 32 == 0:
        q = quantize(a, gguf.GGMLQuantizationType.Q8_0)
        w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    else:  # rows not a multiple of Q8_0's 32-blocks
        w.add_tensor(name, a.astype(np.float16))


def write(path: str, *, kind: str, target: str, tensors: Dict[str, np.ndarray], vocab_ids: Sequence[int],
          feature_layer: int, dtype: str, arch_keys: Dict[str, object], train: Dict[str, float],
          feature_layers: Sequence[int] = ()) -> None:
    """arch_keys: '<key>': value under the architecture prefix (ints as uint32, floats as float32).
    feature_layers: the target states an EAGLE-3 head reads, ascending, ending with feature_layer
    (written only when several)."""
    import gguf
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES} (got {dtype!r})")
    arch = f"fastspec-{kind}"
    tmp = str(path) + ".tmp"
    w = gguf.GGUFWriter(tmp, arch)
    w.add_string("general.name", f"fastspec {kind} head for {os.path.basename(str(target).rstrip('/'))}")
    for k, v in arch_keys.items():
        (w.add_float32 if isinstance(v, float) else w.add_uint32)(f"{arch}.{k}", v)
    sha, vh = _core.target_tie(str(target))
    w.add_string("fastspec.head.kind", kind)
    w.add_string("fastspec.head.target_sha256", sha)
    w.add_string("fastspec.head.vocab_hash", vh)
    w.add_string("fastspec.head.target_name", os.path.basename(str(target).rstrip("/")))
    w.add_uint32("fastspec.head.feature_layer", int(feature_layer))
    if len(feature_layers) > 1:
        if list(feature_layers) != sorted(set(feature_layers)) or int(feature_layers[-1]) != int(feature_layer):
            raise ValueError(f"feature_layers {list(feature_layers)} must ascend and end with {feature_layer}")
        w.add_array("fastspec.head.feature_layers", [int(x) for x in feature_layers])
    w.add_array("fastspec.head.vocab_ids", [int(i) for i in vocab_ids])
    w.add_uint64("fastspec.head.train_tokens", int(train.get("tokens", 0)))
    w.add_uint32("fastspec.head.train_steps", int(train.get("steps", 0)))
    w.add_float32("fastspec.head.train_seconds", float(train.get("seconds", 0.0)))
    w.add_float32("fastspec.head.train_loss", float(train.get("loss", 0.0)))
    for name, a in tensors.items():
        _store(w, name, a, dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, path)
