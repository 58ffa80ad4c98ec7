"""Resource limits on hostile files (cpp/src/io/limits.h): a GGUF whose metadata or tensor table
would exceed the stated budget, or a safetensors header / JSON side file over its cap, is refused
with FormatError naming the file, the field and the sizes -- before allocating; and a 1 GB file of
garbage (sparse: it costs no disk) loads-or-refuses in well under a second with little memory.

The files are measured in one subprocess, so its peak RSS (ru_maxrss) covers only these loads."""
import json
import os
import struct
import subprocess
import sys

import pytest

from gguf_bytes import ARRAY, STRING, build, gguf_string, kv

U8 = 0  # GGUF value type uint8

GB = 1 << 30
ARCH = kv(b"general.architecture", STRING, gguf_string(b"llama"))

# (name, header bytes, sparse size (0: as is), message regex); every message starts with the path.
HOSTILE = [
    ("kv_count.gguf", build([ARCH], n_kv=10_000_000), GB,
     r"metadata count 10000000 exceeds the limit of 65536"),
    ("array_len.gguf", build([kv(b"tokenizer.ggml.scores", ARRAY, struct.pack("<IQ", U8, 1 << 25))]), GB,
     r"metadata 'tokenizer.ggml.scores': array of 33554432 elements exceeds the limit of 16777216"),
    ("string_array_memory.gguf", build([kv(b"tokenizer.ggml.tokens", ARRAY, struct.pack("<IQ", STRING, 1 << 23))]), GB,
     r"metadata 'tokenizer.ggml.tokens': array of 8388608 strings would take the metadata past its memory budget "
     r"\(268435456 more bytes with \d+ of 268435456 used\)"),
    ("nested_array_memory.gguf", build([kv(b"nested", ARRAY, struct.pack("<IQ", ARRAY, 1 << 22))]), GB,
     r"metadata 'nested': array of 4194304 arrays would take the metadata past its memory budget"),
    ("string_len.gguf", build([kv(b"tokenizer.chat_template", STRING, gguf_string(b"", length=1 << 25))]), GB,
     r"metadata 'tokenizer.chat_template': string length 33554432 exceeds the limit of 16777216 bytes"),
    ("tensor_count.gguf", build([ARCH], n_tensors=1 << 21), GB,
     r"tensor count 2097152 exceeds the limit of 1048576"),
    ("tensor_table_memory.gguf", build([ARCH], n_tensors=1 << 20), GB,
     r"tensor count 1048576 would take the tensor table past its memory budget \(\d+ more bytes with 0 of 268435456"),
    ("header.safetensors", struct.pack("<Q", 200_000_000) + b"{", GB,
     r"header length 200000000 is absurd \(limit 100000000 bytes\)"),
    ("garbage.gguf", b"GGUF\x03\0\0\0" + bytes(range(256)) * 4, GB, r"(impossible|exceeds|truncated|unknown|runs past)"),
    ("garbage.safetensors", bytes(range(255, -1, -1)) * 4, GB, r"header length \d+ is absurd"),
    ("zeros.safetensors", b"", GB, r"malformed JSON at byte 0"),
    ("garbage.bin", b"\x7fELF" + bytes(range(256)), GB, r"unrecognized model file"),
]

PROBE = r"""
import json, resource, sys, time
import fastspec
out = []
for path in sys.argv[1:]:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    try:
        fastspec.inspect(path).metadata
        msg, kind = "", "loaded"
    except (fastspec.FormatError, fastspec.ModelError) as e:
        msg, kind = str(e), type(e).__name__
    dt = time.perf_counter() - t0
    out.append(dict(path=path, kind=kind, msg=msg, seconds=dt,
                    peak_growth_mb=(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024))
print(json.dumps(out))
"""


def _write(path, head, size):
    with open(path, "wb") as f:
        f.write(head)
        if size:
            f.truncate(size)  # sparse: the rest reads as zeros and takes no disk


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    d = tmp_path_factory.mktemp("limits")
    paths = []
    for name, head, size, _ in HOSTILE:
        _write(d / name, head, size)
        paths.append(str(d / name))
    cfg_dir = d / "ckpt"  # a config.json over json_file_bytes_max beside a valid tiny checkpoint
    cfg_dir.mkdir()
    h = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    (cfg_dir / "model.safetensors").write_bytes(struct.pack("<Q", len(h)) + h + bytes(8))
    _write(cfg_dir / "config.json", b"{", 100 << 20)
    paths.append(str(cfg_dir))
    r = subprocess.run([sys.executable, "-c", PROBE, *paths], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    res = {os.path.basename(x["path"]): x for x in json.loads(r.stdout)}
    return res


@pytest.mark.parametrize("name,regex", [(h[0], h[3]) for h in HOSTILE] +
                         [("ckpt", r"config.json: JSON file of 104857600 bytes exceeds the limit of 67108864 bytes")])
def test_hostile_file_refused_fast_and_small(measured, name, regex):
    import re
    m = measured[name]
    assert m["kind"] == "FormatError", m
    assert m["msg"].startswith(m["path"]), m["msg"]  # names the file
    assert re.search(regex, m["msg"]), m["msg"]
    # functional limits, not benchmarks: far below what allocating the claimed sizes would take
    assert m["seconds"] < 2.0, m
    assert m["peak_growth_mb"] < 100, m


def test_budget_leaves_real_vocabularies_alone(tmp_path):
    """A 262k-token vocabulary (Gemma 3's size) with scores and types is within every limit."""
    import fastspec
    n = 262_144
    toks = b"".join(gguf_string(b"tok%06d" % i) for i in range(n))
    blob = build([ARCH, kv(b"tokenizer.ggml.tokens", ARRAY, struct.pack("<IQ", STRING, n) + toks),
                  kv(b"tokenizer.ggml.scores", ARRAY, struct.pack("<IQ", 6, n) + bytes(4 * n))])
    p = tmp_path / "vocab.gguf"
    p.write_bytes(blob)
    md = fastspec.inspect(str(p)).metadata
    assert len(md["tokenizer.ggml.tokens"]) == n and md["tokenizer.ggml.tokens"][-1] == "tok262143"
