// Hugging Face config.json -> ModelConfig for the llama family (llama, mistral, qwen2, SmolLM2)
// and gemma3 (gemma3_text, or gemma3 with the text model under "text_config").
#pragma once
#include <string>

#include "fastspec/metadata.h"
#include "fastspec/model_config.h"

namespace fastspec {

// config_json: the parsed top-level object; path names config.json in error messages.
// Reads both the transformers 4 keys (rope_theta, rope_scaling, sliding_window_pattern,
// rope_local_base_freq) and the transformers 5 ones (rope_parameters, layer_types).
// Unknown model_type: architecture = model_type, family = "", common fields filled best-effort
// (no throw). Known families: a wrong-typed field throws FormatError naming the field and path.
ModelConfig config_from_hf(const MetaValue& config_json, const std::string& path);

}  // namespace fastspec
