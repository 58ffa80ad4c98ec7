"""A hand-rolled GGUF byte builder (independent of the gguf package), for bad-input tests.

Every field can be overridden so a test can write exactly the malformation it checks.
"""
import struct

U32, I32, F32, BOOL, STRING, ARRAY, U64 = 4, 5, 6, 7, 8, 9, 10


def gguf_string(s: bytes, length=None) -> bytes:
    return struct.pack("<Q", len(s) if length is None else length) + s


def kv(key: bytes, vtype: int, payload: bytes) -> bytes:
    return gguf_string(key) + struct.pack("<I", vtype) + payload


def tensor_info(name: bytes, ne, ggml_type: int, offset: int, n_dims=None) -> bytes:
    n = len(ne) if n_dims is None else n_dims
    return gguf_string(name) + struct.pack("<I", n) + b"".join(struct.pack("<Q", d) for d in ne) + \
        struct.pack("<II", ggml_type, 0)[:4] + struct.pack("<Q", offset)


def build(kvs=(), tensors=(), data=b"", *, magic=b"GGUF", version=3, n_tensors=None, n_kv=None,
          alignment=32) -> bytes:
    """kvs: encoded kv entries; tensors: encoded tensor infos; data: the data section."""
    head = magic + struct.pack("<I", version)
    head += struct.pack("<QQ", len(tensors) if n_tensors is None else n_tensors,
                        len(kvs) if n_kv is None else n_kv)
    head += b"".join(kvs) + b"".join(tensors)
    pad = (-len(head)) % alignment
    return head + b"\0" * pad + data


def f32_tensor_file(n=8, name=b"w") -> bytes:
    """A valid file with one F32 tensor of n elements."""
    arch = kv(b"general.architecture", STRING, gguf_string(b"llama"))
    return build([arch], [tensor_info(name, [n], 0, 0)], struct.pack(f"<{n}f", *range(n)))
