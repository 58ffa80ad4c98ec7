// Resource limits of the model-file readers: what a hostile file may make fastspec allocate.
// Every reader checks these BEFORE it allocates, and refuses with a FormatError naming the file,
// the field and the sizes. The numbers are far above any real model (see each comment) and far
// below what would hurt a machine; they are the stated budget of issue 8 item 5.
//
// Why a budget and not only "every size fits in the file": an element that takes a few bytes in
// the file can take ~20x that in memory (a 13-byte GGUF key/value becomes a ~250-byte entry, an
// 8-byte empty string a 32-byte std::string), so a 1 GB file could otherwise ask for ~20 GB.
#pragma once
#include <cstdint>

namespace fastspec {

// ---- GGUF ------------------------------------------------------------------------------------
// Key/value pairs in one file. Real files hold 20-60.
constexpr uint64_t gguf_kv_count_max = 1u << 16;
// Tensor infos in one file. A 405B dense model has ~1.1k; MoE files with per-expert tensors ~100k.
constexpr uint64_t gguf_tensor_count_max = 1u << 20;
// Elements of one metadata array. The largest real ones are vocabularies and merges (<= ~1M).
constexpr uint64_t gguf_array_len_max = 1u << 24;
// Bytes of one metadata string (chat templates, the longest real ones, are < 100 KB).
constexpr uint64_t gguf_string_bytes_max = 1u << 24;
// Memory the parsed metadata may take (keys, values, containers; estimated from the sizes of the
// C++ objects before each allocation). Llama 3's 128k-token vocabulary + 280k merges take ~30 MB.
constexpr uint64_t gguf_metadata_memory_max = 256ull << 20;
// Memory the parsed tensor table may take (infos, names, shapes, the name index).
constexpr uint64_t gguf_tensor_table_memory_max = 256ull << 20;
// Nesting of arrays of arrays.
constexpr int gguf_array_depth_max = 16;

// ---- safetensors / JSON ----------------------------------------------------------------------
// The JSON header of one .safetensors file (real headers: ~100 bytes per tensor, < 1 MB).
constexpr uint64_t safetensors_header_max = 100000000;
// A JSON side file (config.json, model.safetensors.index.json, ...): real ones are < 1 MB.
constexpr uint64_t json_file_bytes_max = 64ull << 20;
// JSON nesting of arrays/objects.
constexpr int json_depth_max = 256;
// Values per JSON document: ~10 per safetensors tensor entry, so 200k tensors in one file; bounds
// the parsed tree of a hostile 100 MB header to ~400 MB (each MetaValue is ~180 bytes).
constexpr uint64_t json_values_max = 1u << 21;

}  // namespace fastspec
