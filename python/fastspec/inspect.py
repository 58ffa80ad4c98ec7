"""`fastspec.inspect(path)`: look inside a model file without loading it into memory."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

from . import _core


@dataclass(frozen=True)
class TensorSpec:
    """One stored tensor: `shape` is row-major (numpy order; GGUF's ne[] reversed)."""

    name: str
    shape: Tuple[int, ...]
    type: str  # "F32", "Q4_K", "AWQ_INT4", ...
    nbytes: int  # bytes stored in the file
    offset: int  # byte offset of the data in its file


class ModelInfo:
    """An opened (memory-mapped) GGUF file or safetensors checkpoint.

    - `config`: the ModelConfig (attributes `architecture`, `n_layers`, `n_embd`, `n_heads`,
      `n_kv_heads`, `head_dim`, `n_ff`, `vocab_size`, `context_length`, `rope_theta`, ...).
    - `metadata`: dict of the file's metadata (GGUF key/values, or config.json entries).
    - `tensors`: dict name -> TensorSpec, in file order.
    - `tensor(name)`: float32 ndarray of the tensor's shape (dequantized).
    - `raw(name)`: the stored bytes as a read-only uint8 view of the mapped file (no copy).
    """

    def __init__(self, path: "str | os.PathLike[str]"):
        self.path = os.fspath(path)
        self._file = _core.ModelFile(self.path)
        self._metadata = None
        self._tensors = None

    @property
    def format(self) -> str:
        return self._file.format

    @property
    def config(self):
        return self._file.config

    @property
    def metadata(self) -> dict:
        if self._metadata is None:
            self._metadata = self._file.metadata()
        return self._metadata

    @property
    def tensors(self) -> Dict[str, TensorSpec]:
        if self._tensors is None:
            self._tensors = {
                name: TensorSpec(name, tuple(shape), typ, nbytes, offset)
                for name, shape, typ, nbytes, offset in self._file.tensor_infos()
            }
        return self._tensors

    def tensor(self, name: str) -> np.ndarray:
        return self._file.dequantize(name)

    def raw(self, name: str) -> np.ndarray:
        return self._file.raw(name)

    def __repr__(self) -> str:
        c = self.config
        return (f"ModelInfo({self.path!r}, format={self.format!r}, architecture={c.architecture!r}, "
                f"n_layers={c.n_layers}, n_embd={c.n_embd}, tensors={len(self.tensors)})")


def inspect(path: "str | os.PathLike[str]") -> ModelInfo:
    """Open a model file (GGUF, .safetensors, index.json or checkpoint directory) for inspection.

    Raises fastspec.FormatError (a ValueError) when the file is malformed, FileNotFoundError when
    it does not exist.
    """
    return ModelInfo(path)
