"""Seed corpora for the fuzz harnesses, written from the files the tests write (tests/tiny_models.py,
tests/gguf_bytes.py, tests/test_fuzz.py's valid files) plus real-shaped chat templates and the
hostile ones the sandbox must hold. Generated at run time; nothing binary is committed.

    python tests/fuzz/make_seeds.py OUT_DIR      # OUT_DIR/<harness>/seed-*
"""
import json
import os
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/

import tiny_models as tm  # noqa: E402
from gguf_bytes import ARRAY, STRING, U32, build, f32_tensor_file, gguf_string, kv, tensor_info  # noqa: E402

SEP = b"\n=FSFZ=\n"  # fuzz_safetensors.cpp's section separator

HARNESSES = ("gguf", "safetensors", "json", "config_hf", "tokenizer", "chat_template")

CHAT_TEMPLATES = [
    tm.CHAT_TEMPLATE,
    # SmolLM2 / ChatML with a default system prompt
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    # Llama 3 style
    "{{ bos_token }}{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
    # Gemma style, with raise_exception and namespace
    "{{ bos_token }}{% set ns = namespace(first=true) %}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% set ns.first = false %}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}",
    # tools, tojson, macros, filters, strftime_now, generation blocks, loop controls
    "{%- macro fmt(t) -%}{{ t | tojson(indent=2) }}{%- endmacro -%}{%- if tools -%}{%- for t in tools -%}"
    "{{ fmt(t) }}{%- endfor -%}{%- endif -%}{{ strftime_now('%Y') | length }}{% for m in messages %}"
    "{% if m.role == 'skip' %}{% continue %}{% endif %}{% generation %}{{ m.content | upper | replace('A', 'b') }}"
    "{% endgeneration %}{{ m.get('name', 'x') }}{{ messages | map(attribute='role') | join(',') }}"
    "{{ (m.content * 2)[:10] }}{{ '%s-%d' | format('a', 3) }}{% endfor %}",
    # hostile: loops, huge outputs, attribute access to internals
    "{% for i in range(10**9) %}{{ i }}{% endfor %}",
    "{{ 'a' * 10**9 }}",
    "{{ 9 ** 9 ** 9 }}",
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ messages.__class__ }}{{ raise_exception.__globals__ }}{{ cycler.__init__.__globals__ }}",
    "{{ 'x'.ljust(10**9) }}{{ 'x' | center(10**9) }}{{ '%999999999d' % 1 }}{{ '{:>999999999}'.format(1) }}",
    "{{ (messages * 100000000) | length }}{{ range(100000) | join(',') | replace('', 'xxxxxxxxxx') }}",
]

CONFIGS = [
    tm.tiny_config("llama"), tm.tiny_config("qwen2"), tm.tiny_config("gemma3"),
    {"model_type": "mistral", "sliding_window": None, "hidden_size": 64, "num_attention_heads": 4},
    {"model_type": "gemma3", "text_config": {"model_type": "gemma3_text", "hidden_size": 64,
                                              "rope_parameters": {"full_attention": {"rope_theta": 1e6},
                                                                  "sliding_attention": {"rope_theta": 1e4}}}},
    {"model_type": "llama", "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                             "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
     "partial_rotary_factor": 0.5, "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}},
    {"model_type": "unknown", "hidden_size": "x", "layer_types": ["sliding_attention", "full_attention"]},
]


def _tiny(arch):
    hidden = 32
    return tm.tiny_config(arch, n_layers=1, hidden=hidden, heads=2, kv_heads=1, vocab=272, intermediate=32)


def _gguf_seeds(tmp):
    out = []
    for arch, qtype in (("llama", "Q8_0"), ("qwen2", "F16"), ("gemma3", "Q4_0")):
        cfg = _tiny(arch)
        p = os.path.join(tmp, f"{arch}.gguf")
        tm.write_gguf(p, cfg, tm.random_weights(cfg, seed=1), qtype=qtype, tokenizer=arch != "gemma3")
        out.append(open(p, "rb").read())
    import gguf
    import numpy as np
    p = os.path.join(tmp, "kinds.gguf")  # every value type, nested arrays, K-quant tensor
    w = gguf.GGUFWriter(p, "llama")
    w.add_uint8("u8", 1), w.add_int8("i8", -1), w.add_uint16("u16", 2), w.add_int16("i16", -2)
    w.add_int64("i64", -5), w.add_uint64("u64", 5), w.add_float64("f64", 0.5), w.add_bool("b", True)
    w.add_array("nested", [[1, 2], [3]])
    w.add_array("floats", [0.5, 1.5])
    w.add_uint32("general.alignment", 64)
    w.add_tensor("q4k", np.zeros((1, 144), dtype=np.uint8), raw_dtype=gguf.GGMLQuantizationType.Q4_K)
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
    out.append(open(p, "rb").read())
    arch = kv(b"general.architecture", STRING, gguf_string(b"llama"))
    out.append(f32_tensor_file())
    out.append(build([arch, kv(b"tokenizer.ggml.tokens", ARRAY, struct.pack("<IQ", STRING, 2) +
                               gguf_string(b"a") + gguf_string(b"b"))],
                     [tensor_info(b"a", [4], 0, 0), tensor_info(b"b", [2, 2], 1, 32)], b"\0" * 40))
    out.append(build([arch, kv(b"llama.block_count", U32, struct.pack("<I", 1))]))
    return out


def _st_file(header, data=b""):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def _safetensors_seeds(tmp):
    out = []
    for arch, sharded in (("llama", False), ("qwen2", True)):
        cfg = _tiny(arch)
        d = os.path.join(tmp, f"st-{arch}")
        tm.write_safetensors_checkpoint(d, cfg, tm.random_weights(cfg, seed=2), dtype="F16", sharded=sharded,
                                        tokenizer=False)
        config = open(os.path.join(d, "config.json"), "rb").read()
        if not sharded:
            out.append(SEP.join([config, b"", open(os.path.join(d, "model.safetensors"), "rb").read()]))
        else:
            index = json.load(open(os.path.join(d, "model.safetensors.index.json")))
            files = sorted(set(index["weight_map"].values()))
            rename = {f: f"s{k}.safetensors" for k, f in enumerate(files)}
            index["weight_map"] = {t: rename[f] for t, f in index["weight_map"].items()}
            shards = [open(os.path.join(d, f), "rb").read() for f in files]
            out.append(SEP.join([config, json.dumps(index).encode()] + shards))
    small = _st_file({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                      "b": {"dtype": "BF16", "shape": [4], "data_offsets": [24, 32]},
                      "__metadata__": {"format": "pt"}}, bytes(range(32)))
    out.append(SEP.join([b"", b"", small]))
    awq_cfg = json.dumps({"model_type": "llama", "quantization_config": {"quant_method": "awq", "bits": 4,
                                                                          "group_size": 8, "version": "GEMM"}})
    awq = _st_file({"l.qweight": {"dtype": "I32", "shape": [8, 1], "data_offsets": [0, 32]},
                    "l.qzeros": {"dtype": "I32", "shape": [1, 1], "data_offsets": [32, 36]},
                    "l.scales": {"dtype": "F16", "shape": [1, 8], "data_offsets": [36, 52]}}, b"\1" * 52)
    out.append(SEP.join([awq_cfg.encode(), b"", awq]))
    return out


def _tokenizer_seeds(tmp):
    """Metadata-only GGUF files holding tokenizers (fuzz_tokenizer.py reads them with the engine's
    reader): gpt2 byte-level BPE (tiny_models), SentencePiece-style with scores and byte tokens,
    and Gemma-style (no merges)."""
    import gguf
    out = []

    def write(name, fill):
        p = os.path.join(tmp, name)
        w = gguf.GGUFWriter(p, "llama")
        fill(w)
        w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
        out.append(open(p, "rb").read())

    tok = tm.tiny_tokenizer(272)
    write("gpt2.gguf", lambda w: tm.add_tokenizer(w, tok))

    def spm(w, merges, arch=None):
        pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + \
            ["\u2581", "\u2581a", "ab", "\u2581ab", "b", "a", "  ", "<start_of_turn>"]
        types = [2, 3, 3] + [6] * 256 + [1] * 6 + [4, 3]
        w.add_tokenizer_model("llama")
        w.add_token_list(pieces)
        w.add_token_types(types)
        w.add_token_scores([float(-i) for i in range(len(pieces))])
        if merges:
            w.add_token_merges(["\u2581 a", "a b", "\u2581 ab"])
        w.add_bos_token_id(1), w.add_eos_token_id(2), w.add_unk_token_id(0)
        w.add_add_bos_token(True), w.add_add_eos_token(False), w.add_add_space_prefix(arch is None)
        w.add_chat_template(CHAT_TEMPLATES[3])

    write("spm.gguf", lambda w: spm(w, True))
    write("gemma.gguf", lambda w: (spm(w, False, "gemma3"), w.add_string("general.architecture", "gemma3")))
    return out


def write_corpora(out_dir):
    """Writes OUT_DIR/<harness>/seed-NNN for every harness; returns {harness: folder}."""
    dirs = {h: os.path.join(out_dir, h) for h in HARNESSES}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        seeds = {
            "gguf": _gguf_seeds(tmp),
            "safetensors": _safetensors_seeds(tmp),
            "config_hf": [json.dumps(c, indent=1).encode() for c in CONFIGS],
            "tokenizer": _tokenizer_seeds(tmp),
            "chat_template": [t.encode() for t in CHAT_TEMPLATES],
        }
        seeds["json"] = seeds["config_hf"] + [
            s.split(SEP)[1] for s in seeds["safetensors"] if s.split(SEP)[1]] + [
            b'[1, -0, 1e400, -1e-400, 18446744073709551615, "\\ud83d\\ude00\\u00e9\\n", true, false, null, {}]',
            "{\"\u00fc\": \"\u20ac\U0001F600\"}".encode()]
    for h, blobs in seeds.items():
        for k, b in enumerate(blobs):
            with open(os.path.join(dirs[h], f"seed-{k:03d}"), "wb") as f:
                f.write(b)
    return dirs


if __name__ == "__main__":
    for h, d in write_corpora(sys.argv[1]).items():
        print(h, len(os.listdir(d)), d)
