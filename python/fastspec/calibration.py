"""Calibration token windows for the quantizer.

The default text ships with fastspec: `fastspec/data/calibration.txt`, ~98 KB of the Jargon File
4.4.7 lexicon (public domain; from Debian's dict-jargon package), its leading `#` comment lines
dropped. The text is tokenized whole (no BOS) and cut into consecutive non-overlapping windows of
`seqlen` tokens; the first `n_samples` windows are used. Too little text for the request is a
ValueError that says how many tokens there are and how many are needed -- before any work.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

DEFAULT_PATH = os.path.join(os.path.dirname(__file__), "data", "calibration.txt")


def read_text(path: Optional[str] = None) -> str:
    p = DEFAULT_PATH if path is None else os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"{p}: no such calibration text file")
    with open(p, encoding="utf-8") as f:
        text = f.read()
    if path is None:
        lines = text.split("\n")
        while lines and lines[0].startswith("#"):
            lines.pop(0)
        text = "\n".join(lines).lstrip("\n")
    return text


def windows(tokenizer, text: str, n_samples: int, seqlen: int, where: str = "calibration text") -> np.ndarray:
    """int64 [n_samples, seqlen] token ids."""
    if n_samples < 1 or seqlen < 2:
        raise ValueError(f"calibration needs n_samples >= 1 and seqlen >= 2, got {n_samples} and {seqlen}")
    ids = tokenizer.encode(text, add_special=False)
    need = n_samples * seqlen
    if len(ids) < need:
        raise ValueError(f"{where}: {len(ids)} tokens, too short for {n_samples} samples of {seqlen} tokens "
                         f"({need} needed); give a longer --calib text or fewer/shorter samples")
    return np.asarray(ids[:need], dtype=np.int64).reshape(n_samples, seqlen)
