// libFuzzer harness: config.json -> ModelConfig (config_hf.cpp), fed the way safetensors_load
// feeds it: json_parse of the file, then config_from_hf on the parsed object.
#include "fuzz_common.h"
#include "io/config_hf.h"
#include "io/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::expect_loads_or_refuses([&] {
    fastspec::MetaValue v = fastspec::json_parse(reinterpret_cast<const char*>(data), size, "config.json");
    if (v.kind != fastspec::MetaValue::Kind::Object) return;  // safetensors_load refuses these first
    fastspec::ModelConfig c = fastspec::config_from_hf(v, "config.json");
    // Unsigned: the fields are whatever the file says (the Transformer bounds them), and the sink
    // itself must not overflow.
    volatile uint64_t sink = static_cast<uint64_t>(c.n_layers) ^ static_cast<uint64_t>(c.n_embd) ^
                             static_cast<uint64_t>(c.head_dim) ^ static_cast<uint64_t>(c.rope_dim) ^
                             static_cast<uint64_t>(c.sliding_window_pattern);
    (void)sink;
  });
}
